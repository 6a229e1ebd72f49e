"""The recommender as an MLflow model: saved as a pyfunc, registered as ``recause-<dataset>``, served.

:class:`RecauseRecommender` answers ``{"user_id": ...}`` rows (parameter ``k``) with the same lists the
``recommend`` stage wrote to ``recommendations.parquet``: it holds the stage's :class:`~recause.tasks.recommend.stage.Servable`
(each user's best ``recommend.candidates`` items under the chosen strategy with their scores and τ̂,
what each user has, item notes, popularity: users × candidates, never users × items) and runs the
same :func:`~recause.tasks.recommend.lists.recommend`, so a request's ``k`` may not exceed the
candidates kept. A user it does not know gets the most
popular items, labelled ``popularity (cold user)``. The GNN checkpoints travel with it, each under its
own name (``checkpoints/<model>/best.ckpt``), for inspection; answering needs only the arrays.

:func:`register` adds a version to the Model Registry and moves the alias ``champion`` to it only when
its metric of record beats the current champion's (the value is kept as a version tag).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd

from recause.mlflow_config.tracking import global_tracking_uri_kept

CHAMPION = "champion"
METRIC_TAG = "recause.metric_of_record"
VALUE_TAG = "recause.metric_value"


def model_name(dataset: str) -> str:
    """``recause-<dataset>`` (``dir:/x/logs`` → ``recause-dir-logs``)."""
    from recause.mlflow_config.tracking import experiment_name

    return experiment_name("recause", dataset).replace("/", "-")


ITEM_UPLIFT = ("item_uplift", "item_uplift_low", "item_uplift_high")
"""Columns of the served items table holding each item's mean uplift over users and its interval."""


class RecauseRecommender(mlflow.pyfunc.PythonModel):
    """Top-k lists per requested ``user_id`` (params: ``k``), from the saved arrays."""

    def load_context(self, context) -> None:
        from scipy import sparse

        from recause.tasks.recommend.config import RecommendConfig
        from recause.tasks.recommend.lists import Candidates, ItemNotes

        a = context.artifacts
        arrays = np.load(a["arrays"])
        self.candidates = Candidates(arrays["items"].astype(np.int64), arrays["scores"],
                                     arrays["uplift"] if "uplift" in arrays.files else None)
        self.popularity = arrays["popularity"]
        self.has = sparse.load_npz(a["has"]).tocsr()
        items = pd.read_parquet(a["items"])
        bands = items[list(ITEM_UPLIFT)].to_numpy(np.float64) if set(ITEM_UPLIFT) <= set(items.columns) else None
        self.notes = ItemNotes(items["item_id"].to_numpy(), items["title"].tolist(), items["topic"].tolist(),
                               [k.split(", ") if k else [] for k in items["keywords"]], bands)
        self.user_ids = pd.read_parquet(a["users"])["user_id"].to_numpy()
        self.index = {str(u): i for i, u in enumerate(self.user_ids)}
        self.meta = json.loads(Path(a["meta"]).read_text())
        self.config = RecommendConfig.model_validate(self.meta["config"])

    def predict(self, context, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        from recause.tasks.recommend.lists import COLUMNS, cold_start, recommend

        k = int((params or {}).get("k") or self.config.k)
        if k <= 0:
            raise ValueError(f"k must be a positive number of items, got {k}")
        if k > self.candidates.size:
            raise ValueError(f"k must be at most {self.candidates.size}, the items this model keeps per user "
                             f"(recommend.candidates when it was trained), got {k}")
        config = self.config.model_copy(update={"k": k})
        asked = [str(u) for u in model_input["user_id"].tolist()]
        known = [u for u in asked if u in self.index]
        frames = []
        if known:
            rows = np.array([self.index[u] for u in known])
            frames.append(recommend(self.candidates, rows, self.user_ids[rows], self.has, self.notes, config, self.meta["seed"],
                                    self.meta["strategy"], self.meta["label"]))
        cold = [u for u in asked if u not in self.index]
        if cold:
            frames.append(cold_start(cold, self.popularity, self.notes, k))
        out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
        out["user_id"] = out["user_id"].astype(str)
        out["item_id"] = out["item_id"].astype(str)
        return out[COLUMNS]


def save_recommender(path: Path, servable, checkpoints: dict[str, Path], dataset: str) -> Path:
    """Write the pyfunc model to ``path`` (a new folder): the candidate arrays, item and user tables,
    meta, checkpoints; signature and input example included."""
    from mlflow.models import infer_signature
    from scipy import sparse

    from recause.tasks.recommend.lists import recommend

    path = Path(path)
    staging = path.parent / f".{path.name}-artifacts"
    staging.mkdir(parents=True, exist_ok=True)
    kept = servable.candidates
    index = np.int32 if servable.has.shape[1] < 2**31 else np.int64
    arrays = {"items": kept.items.astype(index), "scores": kept.scores, "popularity": servable.popularity}
    if kept.uplift is not None:
        arrays["uplift"] = kept.uplift
    np.savez_compressed(staging / "arrays.npz", **arrays)
    sparse.save_npz(staging / "has.npz", servable.has.tocsr())
    n = servable.notes
    items = pd.DataFrame({"item_id": n.ids, "title": list(n.titles) if n.titles is not None else [""] * len(n.ids),
                          "topic": list(n.topics) if n.topics is not None else [""] * len(n.ids),
                          "keywords": [", ".join(k) for k in n.keywords] if n.keywords is not None else [""] * len(n.ids)})
    if n.item_uplift is not None:
        items[list(ITEM_UPLIFT)] = n.item_uplift
    items.to_parquet(staging / "items.parquet", index=False)
    pd.DataFrame({"user_id": servable.user_ids}).to_parquet(staging / "users.parquet", index=False)
    meta = {"dataset": dataset, "strategy": servable.chosen.strategy, "label": servable.chosen.label,
            "fallback": servable.chosen.fallback, "seed": servable.seed, "config": servable.config.model_dump(mode="json")}
    (staging / "meta.json").write_text(json.dumps(meta, indent=2))
    artifacts = {name: str(staging / f) for name, f in (("arrays", "arrays.npz"), ("has", "has.npz"), ("items", "items.parquet"),
                                                         ("users", "users.parquet"), ("meta", "meta.json"))}
    if checkpoints:  # one folder: checkpoints/<model>/best.ckpt, each under its own name
        import shutil

        for name, ckpt in checkpoints.items():
            (staging / "checkpoints" / name).mkdir(parents=True, exist_ok=True)
            shutil.copy2(ckpt, staging / "checkpoints" / name / Path(ckpt).name)
        artifacts["checkpoints"] = str(staging / "checkpoints")
    example = pd.DataFrame({"user_id": [str(servable.user_ids[0])]})
    sample = recommend(kept, np.array([0]), servable.user_ids[:1], servable.has, servable.notes, servable.config,
                       servable.seed, servable.chosen.strategy, servable.chosen.label)
    sample["user_id"], sample["item_id"] = sample["user_id"].astype(str), sample["item_id"].astype(str)
    import warnings

    with warnings.catch_warnings():  # "integer columns cannot hold missing values": rank never is
        warnings.filterwarnings("ignore", message=".*[Ii]nteger column.*")
        signature = infer_signature(example, sample, params={"k": int(servable.config.k)})
    mlflow.pyfunc.save_model(str(path), python_model=RecauseRecommender(), artifacts=artifacts, signature=signature,
                             input_example=example)
    import shutil

    shutil.rmtree(staging, ignore_errors=True)
    return path


@dataclass(frozen=True)
class Registered:
    """A new model version and whether it took the ``champion`` alias (with the reason)."""

    name: str
    version: str
    champion: bool
    reason: str


def register(client, name: str, source: str, run_id: str, metric: str, value: float | None,
             higher_is_better: bool = True) -> Registered:
    """Register ``source`` (``runs:/<id>/model``) as a new version of ``name``; move ``champion`` to it
    when there is no champion yet, or its ``metric`` beats the champion's value."""
    from mlflow.exceptions import MlflowException

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, description="Recause recommendations (pyfunc): top-k per user_id, param k.")
    tags = {METRIC_TAG: metric} | ({VALUE_TAG: repr(float(value))} if value is not None else {})
    version = client.create_model_version(name, source, run_id, tags=tags).version
    try:
        current = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        current = None
    if current is None:
        client.set_registered_model_alias(name, CHAMPION, version)
        return Registered(name, str(version), True, "the first version: no champion yet")
    theirs = current.tags.get(VALUE_TAG)
    if value is None:
        return Registered(name, str(version), False, f"this run has no {metric}; champion stays version {current.version}")
    if theirs is None or current.tags.get(METRIC_TAG) != metric:
        better = True
        why = f"the champion (version {current.version}) has no {metric} to compare"
    else:
        better = value > float(theirs) if higher_is_better else value < float(theirs)
        why = f"{metric} {value:.4g} against the champion's (version {current.version}) {float(theirs):.4g}"
    if better:
        client.set_registered_model_alias(name, CHAMPION, version)
    return Registered(name, str(version), better, why)


def champion_lists(tracking_uri: str, dataset: str, users: list[str], k: int | None) -> tuple[pd.DataFrame, str]:
    """The registered champion's lists for ``users`` and which version answered (a LookupError if
    there is no champion for ``dataset`` in ``tracking_uri``)."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    name = model_name(dataset)
    try:
        version = MlflowClient(tracking_uri=tracking_uri).get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        raise LookupError(f"no champion of {name!r} in {tracking_uri}: run `recause run --dataset {dataset}` first "
                          "(a finished run registers its recommender)") from None
    with global_tracking_uri_kept():
        mlflow.set_tracking_uri(tracking_uri)  # models:/ resolves through the process-wide URI
        model = mlflow.pyfunc.load_model(f"models:/{name}@{CHAMPION}")
    params = {"k": int(k)} if k is not None else None
    return model.predict(pd.DataFrame({"user_id": users}), params=params), f"{name} version {version.version}"
