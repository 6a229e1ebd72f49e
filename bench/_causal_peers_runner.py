"""Fit CausalML's and EconML's meta-learners on one setting's rows; run inside ``.venv-causal`` by ``bench/vs_causalml.py``.

    .venv-causal/bin/python bench/_causal_peers_runner.py IN.npz OUT.npz

``IN.npz`` holds (float32 unless said):

- ``user_x`` (n_users, du) and ``item_x`` (n_items, di): per-entity features;
- ``user_emb`` (n_users, d) and ``item_emb`` (n_items, d): the text embeddings whose dot product is
  one more feature of a pair;
- ``users``, ``items`` (n,) int64, ``treatment`` (n,) int 0/1, ``outcome`` (n,) float: the training rows;
- ``learners`` (k,) str: names from :data:`LEARNERS` to fit, in order; ``seed`` () int.

The propensity P(T=1 | x) of the rows is estimated (no known propensity: T=0 rows are a sample of
unexposed pairs, a design quantity no log records): one boosted classifier, clipped to [0.01, 0.99],
shared by CausalML's X, DR and R learners for fitting and, on the grid, X's and R's prediction.

A pair's features (:func:`pair_features`, the same for every learner and for the grid):
``[user_x[u], item_x[i], <user_emb[u], item_emb[i]>]``.

Every base model is LightGBM of one fixed size (:data:`GBM`: 100 trees, 31 leaves, depth 6, learning rate
0.1, one thread), the same for every learner and setting; no tuning. ``OUT.npz`` holds ``tau_hat``
(k, n_users, n_items) float32 (each learner's τ̂ on the full grid), ``learners`` (k,) str,
``fit_seconds`` (k,) (fit, including the shared propensity model's fit for the learners that use
it), ``predict_seconds`` (k,) (the whole grid, including the shared propensity's prediction for the
learners that use it; the pair features, built once per block for all, are left out) and ``versions``
(the libraries' versions).
"""

from __future__ import annotations

import _common  # noqa: F401  (one thread for every math library, before numpy: the benchmarks' prelude)

import abc
import sys
import time
import warnings
from dataclasses import dataclass, field
from importlib.metadata import version

import numpy as np

GBM = {"n_estimators": 100, "num_leaves": 31, "max_depth": 6, "learning_rate": 0.1, "n_jobs": 1, "verbose": -1}
CLIP = 0.01  # propensities are clipped to [CLIP, 1 - CLIP] before any learner divides by them
GRID_BLOCK = 400  # users per block when predicting the full grid (400 × n_items rows at once)


def regressor(seed: int):
    from lightgbm import LGBMRegressor

    return LGBMRegressor(random_state=seed, **GBM)


def classifier(seed: int):
    from lightgbm import LGBMClassifier

    return LGBMClassifier(random_state=seed, **GBM)


def pair_features(user_x: np.ndarray, item_x: np.ndarray, user_emb: np.ndarray, item_emb: np.ndarray,
                  users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """(n, du + di + 1) float32: the user's and the item's features and their embeddings' dot product."""
    dot = np.einsum("nd,nd->n", user_emb[users], item_emb[items])[:, None]
    return np.hstack([user_x[users], item_x[items], dot]).astype(np.float32)


@dataclass
class Peer(abc.ABC):
    """One learner behind a common interface: ``fit`` on rows, ``effect`` τ̂ (n,) of new rows.

    ``propensity``: the learner takes the shared propensity estimates (CausalML's X, DR and R);
    EconML's learners cross-fit their own treatment model.
    """

    name: str
    seed: int
    propensity: bool = False
    model: object = field(default=None, init=False)

    @abc.abstractmethod
    def fit(self, x: np.ndarray, t: np.ndarray, y: np.ndarray, p: np.ndarray | None) -> None:
        """Fit on rows ``x`` (n, d), treatment ``t`` (n,), outcome ``y`` (n,), shared propensity ``p`` (n,) or None."""

    @abc.abstractmethod
    def effect(self, x: np.ndarray, p: np.ndarray | None) -> np.ndarray:
        """τ̂ (n,) of rows ``x``."""


@dataclass
class CausalMLPeer(Peer):
    """CausalML's ``Base{S,T,X,DR,R}Regressor`` with the GBM regressor as every base learner."""

    kind: str = "S"

    def fit(self, x, t, y, p):
        from causalml.inference import meta

        cls = {"S": meta.BaseSRegressor, "T": meta.BaseTRegressor, "X": meta.BaseXRegressor,
               "DR": meta.BaseDRRegressor, "R": meta.BaseRRegressor}[self.kind]
        kwargs = {"random_state": self.seed} if self.kind == "R" else {}  # R: 5 folds (its default)
        self.model = cls(learner=regressor(self.seed), **kwargs)
        if self.kind == "R":
            self.model.cv_n_jobs = 1  # BaseRRegressor does not pass it on; the base's -1 would fork a process per core
        if self.kind == "DR":
            self.model.fit(x, t, y, p=p, seed=self.seed)  # 3 cross-fitting folds (fixed in CausalML)
        elif self.propensity:
            self.model.fit(x, t, y, p=p)
        else:
            self.model.fit(x, t, y)

    def effect(self, x, p):
        if self.kind in ("X", "R"):
            return np.ravel(self.model.predict(x, p=p))
        return np.ravel(self.model.predict(x))


@dataclass
class EconMLPeer(Peer):
    """EconML's ``DRLearner`` (GBM outcome, propensity and final models) or ``LinearDML`` (GBM nuisances,
    CATE linear in the features), both cross-fitted on 2 folds."""

    kind: str = "DRLearner"

    def fit(self, x, t, y, p):
        if self.kind == "DRLearner":
            from econml.dr import DRLearner

            self.model = DRLearner(model_propensity=classifier(self.seed), model_regression=regressor(self.seed),
                                   model_final=regressor(self.seed), min_propensity=CLIP, cv=2, random_state=self.seed)
        else:
            from econml.dml import LinearDML

            self.model = LinearDML(model_y=regressor(self.seed), model_t=classifier(self.seed), discrete_treatment=True,
                                   cv=2, random_state=self.seed)
        self.model.fit(y, t, X=x)

    def effect(self, x, p):
        return np.ravel(self.model.effect(x))


LEARNERS = {
    "causalml_s": lambda seed: CausalMLPeer("causalml_s", seed, kind="S"),
    "causalml_t": lambda seed: CausalMLPeer("causalml_t", seed, kind="T"),
    "causalml_x": lambda seed: CausalMLPeer("causalml_x", seed, propensity=True, kind="X"),
    "causalml_dr": lambda seed: CausalMLPeer("causalml_dr", seed, propensity=True, kind="DR"),
    "causalml_r": lambda seed: CausalMLPeer("causalml_r", seed, propensity=True, kind="R"),
    "econml_dr": lambda seed: EconMLPeer("econml_dr", seed, kind="DRLearner"),
    "econml_ldml": lambda seed: EconMLPeer("econml_ldml", seed, kind="LinearDML"),
}


def run(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Fit every requested learner on the rows and predict τ̂ on the full grid (see the module docstring)."""
    seed = int(inputs["seed"])
    entity = (inputs["user_x"], inputs["item_x"], inputs["user_emb"], inputs["item_emb"])
    x = pair_features(*entity, inputs["users"], inputs["items"])
    t, y = inputs["treatment"].astype(np.int64), inputs["outcome"].astype(np.float64)
    n_users, n_items = inputs["user_x"].shape[0], inputs["item_x"].shape[0]

    start = time.perf_counter()
    propensity_model = classifier(seed).fit(x, t)
    p = np.clip(propensity_model.predict_proba(x)[:, 1], CLIP, 1 - CLIP)
    propensity_seconds = time.perf_counter() - start

    names = [str(n) for n in inputs["learners"]]
    peers, fit_seconds = [], np.zeros(len(names))
    for k, name in enumerate(names):
        peers.append(LEARNERS[name](seed))
        start = time.perf_counter()
        peers[k].fit(x, t, y, p if peers[k].propensity else None)
        fit_seconds[k] = time.perf_counter() - start + (propensity_seconds if peers[k].propensity else 0.0)
        print(f"{name}: fit {fit_seconds[k]:.1f} s", file=sys.stderr, flush=True)

    # one pass over the grid: each block's features and propensities are built once for every learner
    tau_hat = np.empty((len(names), n_users, n_items), dtype=np.float32)
    predict_seconds = np.zeros(len(names))
    for lo in range(0, n_users, GRID_BLOCK):
        block = np.arange(lo, min(lo + GRID_BLOCK, n_users))
        xg = pair_features(*entity, np.repeat(block, n_items), np.tile(np.arange(n_items), len(block)))
        start = time.perf_counter()
        pg = np.clip(propensity_model.predict_proba(xg)[:, 1], CLIP, 1 - CLIP) if any(q.propensity for q in peers) else None
        shared = time.perf_counter() - start
        for k, peer in enumerate(peers):
            start = time.perf_counter()
            tau_hat[k, block] = peer.effect(xg, pg if peer.propensity else None).reshape(len(block), n_items)
            predict_seconds[k] += time.perf_counter() - start + (shared if peer.propensity else 0.0)
    for k, name in enumerate(names):
        print(f"{name}: grid {predict_seconds[k]:.1f} s, mean tau_hat {tau_hat[k].mean():+.4f}", file=sys.stderr, flush=True)
    versions = " ".join(f"{lib}={version(lib)}" for lib in ("causalml", "econml", "lightgbm", "scikit-learn"))
    return {"tau_hat": tau_hat, "learners": np.array(names), "fit_seconds": fit_seconds,
            "predict_seconds": predict_seconds, "versions": np.array(versions)}


if __name__ == "__main__":
    warnings.filterwarnings("ignore")
    with np.load(sys.argv[1]) as f:
        loaded = {k: f[k] for k in f.files}
    np.savez(sys.argv[2], **run(loaded))
