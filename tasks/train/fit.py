"""Fitting the causal GNN: graph, module and loaders from a plan, the Lightning fit, the fitted model.

:func:`fit_model` takes a :class:`~recause.tasks.train.plan.ModelSpec` (what to fit, every setting
resolved), a :class:`~recause.tasks.data.split.Split` (plus the dataset's metadata and, when the
data have text, :class:`~recause.tasks.features.build.TextFeatures`), builds the graph and the
objective, trains with Lightning and returns a :class:`TrainedModel`, whose policies plug into the
evaluation harness (:class:`recause.models.policies.scores.Policy`). :func:`train_models` fits the
stage's set (the causal model and its references); :func:`train_model` plans and fits one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from recause.models.policies.scores import FunctionPolicy, Policy
from recause.tasks.data.schema import DatasetMeta
from recause.tasks.data.split import Split
from recause.tasks.evaluate import PolicySet
from recause.tasks.train.config import AUTO, ResolvedTrainConfig, TrainConfig
from recause.tasks.train.plan import Identification, ModelSpec, Plan, plan_model, plan_models
from recause.tasks.train.select import Selection, select

if TYPE_CHECKING:
    import pandas as pd

    from recause.tasks.train.data import UpliftCalibration, UpliftCriterion


# ---------------------------------------------------------------------------------------------- trained model
@dataclass
class TrainedModel:
    """A fitted model and its scores. Scores are (n_users_in_block, n_items) numpy arrays over the
    split's user/item indices; probabilities except the BPR ranker's logits."""

    module: object  # recause.models.gnn.module.CausalModule
    config: ResolvedTrainConfig
    plan: Plan
    name: str
    history: dict[str, float] = field(default_factory=dict)
    curves: list[dict[str, float]] = field(default_factory=list)  # per epoch: epoch, train/loss, val/… (EpochCurves)
    calibration: UpliftCalibration | None = None  # τ̂'s affine map fitted on the validation log (fit_model)

    @property
    def identifiable(self) -> bool:
        return "unexposed" in self.plan.heads

    def relevance(self, users: np.ndarray) -> np.ndarray:
        """Debiased relevance f1(u,i) ≈ P(Y=1 | do(E=1)) (naive/BPR: the ranking score)."""
        return self.module.scores(users, "exposed")

    def p_outcome_if_not_exposed(self, users: np.ndarray) -> np.ndarray:
        """f0(u,i) ≈ P(Y=1 | do(E=0)); only when identifiable."""
        self._require_uplift()
        return self.module.scores(users, "unexposed")

    def uplift(self, users: np.ndarray) -> np.ndarray:
        """τ̂(u,i), the effect of recommending i to u: :meth:`raw_uplift` through :attr:`calibration` when
        there is one (an increasing affine map: each user's ranking is the raw one); only when identifiable."""
        raw = self.raw_uplift(users)
        return raw if self.calibration is None else self.calibration(raw)

    def raw_uplift(self, users: np.ndarray) -> np.ndarray:
        """f1 - f0 as the heads give it (n_users_in_block, n_items); only when identifiable."""
        self._require_uplift()
        return self.module.scores(users, "exposed") - self.module.scores(users, "unexposed")

    def propensity(self, users: np.ndarray) -> np.ndarray:
        """ĝ(u,i) = P(E=1 | u, i) over the whole logging period (causal variant)."""
        if "propensity" not in self.plan.heads:
            raise ValueError(f"model {self.name!r} has no propensity head (variant {self.config.variant!r})")
        return self.module.scores(users, "propensity")

    def examination(self) -> np.ndarray:
        """(n_slots,) κ_k, the learned probability that slot k is examined (κ_1 = 1); ``[1.0]`` without slots."""
        logits = self.module.model.examination_logit.detach().cpu().double().numpy()
        return np.r_[1.0, 1.0 / (1.0 + np.exp(-logits))]

    def node_states(self, text: np.ndarray | None = None, encoder: str = "shared") -> np.ndarray:
        """(n_users + n_items, dim) the encoder's final node states (users first), optionally as they
        would be with ``text`` (n_users + n_items, t) in place of the nodes' text embeddings."""
        import torch

        override = None if text is None else torch.as_tensor(np.asarray(text), dtype=torch.float32)
        return self.module.full_states(override)[encoder].detach().cpu().double().numpy()

    def relevance_policy(self, name: str | None = None) -> Policy:
        """Ranks by :meth:`relevance` (the debiased relevance policy)."""
        return FunctionPolicy(name or self.name, self.relevance)

    def uplift_policy(self, name: str | None = None) -> Policy | None:
        """Ranks by :meth:`uplift`; None when the data do not identify it."""
        return FunctionPolicy(name or f"{self.name}_uplift", self.uplift) if self.identifiable else None

    def summary(self) -> dict[str, float | str | bool]:
        """Training facts for the run summary (prefix-free; the caller namespaces them)."""
        settings = {f"model/{k}": getattr(self.config, k) for k in AUTO[self.plan.regime]}
        return {"model/name": self.name, "model/objective": self.plan.note, "model/monitor": self.plan.monitor,
                "model/regime": self.plan.regime, **settings,
                **{f"train/{k}": v for k, v in self.history.items()}}

    def _require_uplift(self) -> None:
        if not self.identifiable:
            raise ValueError(f"uplift is not identifiable for model {self.name!r}: {self.plan.identification.reason}")




# ---------------------------------------------------------------------------------------------- build + fit
@dataclass
class Built:
    """Everything :func:`train_model` fits: the module, its loaders and the plan."""

    module: object
    train_loader: object
    val_loader: object
    plan: Plan
    config: ResolvedTrainConfig


def build(spec: ModelSpec, split: Split, meta: DatasetMeta, features=None, criterion=None) -> Built:
    """The Lightning module and loaders of ``spec`` on ``split`` (no training); ``criterion``: the
    :class:`~recause.tasks.train.data.UpliftCriterion` to validate with where uplift is identified (one
    is made when None)."""
    from recause.models.gnn.module import CausalModule, log_intensity, logit
    from recause.models.gnn.heads import CausalRecommender
    from recause.models.gnn.batches import EpochBatches, LinkBatches, ShardedChunks, bpr_batch, causal_batch, fixed_batches, loader, localiser
    from recause.models.gnn.encoders import ENCODERS, BipartiteGraph
    from recause.tasks.train import data as td

    plan, config = spec.plan, spec.config
    obj = plan.objective
    slots = plan.objective.kind == "causal" and config.variant != "naive"
    train = td.interaction_data(split.train, split, meta, td.retention(split, "train"), slots=slots)
    val = td.interaction_data(split.val, split, meta, td.retention(split, "val"), slots=slots)
    graph = BipartiteGraph.from_pairs(*td.graph_pairs(split.train, plan.graph_edges), split.n_users, split.n_items)
    text = None
    if config.use_text and features is not None:
        text = td.text_matrix(features.user_vectors, features.item_vectors)
    encoder = ENCODERS[config.encoder]
    encoders = {name: encoder(split.n_users, split.n_items, config.dim, config.num_layers, text, config.init_std)
                for name in plan.encoders}
    covariate = exposure_covariate(config, plan)
    model = CausalRecommender(encoders, plan.heads, _head_bias(train, obj, logit, log_intensity), n_slots=train.n_slots,
                              dropout=config.dropout, head_kind=config.head, exposure_covariate=covariate,
                              shared_exposure_scale=config.exposure_scale == "shared",
                              item_exposure_scale=("exposed",) if config.exposure_item_scale and covariate else (),
                              zero_start=covariate if config.outcome_interaction_start == "zero" else ())
    validator = td.debias_validator(split) if split.kind == "randomized" else td.ranking_validator(split)
    if "unexposed" in plan.heads and split.kind == "per_user":  # uplift identified: its own criterion too
        validator = td.combined(validator, criterion or td.UpliftCriterion(split, "propensity" in plan.heads))
    val_obj = obj
    if split.kind == "randomized" and obj.kind == "causal":
        val_obj = replace(obj, weighting="none")  # validation rows were exposed at random: no weights
    module = CausalModule(model, graph, obj, config.lr, config.weight_decay, validator, val_obj,
                          zero_start_lr=config.outcome_interaction_lr)

    if obj.kind == "bpr":
        n_rows = train.positive_user.numel()
        make = lambda rows, g, d=train: bpr_batch(d, rows, config.negatives, g)  # noqa: E731
        make_val = lambda rows, g, d=val: bpr_batch(d, rows, config.negatives, g)  # noqa: E731
        n_val = val.positive_user.numel()
    else:
        n_rows = train.exposed.user.numel()
        make = lambda rows, g, d=train: causal_batch(d, rows, config.batch_size, g)  # noqa: E731
        make_val = lambda rows, g, d=val: causal_batch(d, rows, config.batch_size, g)  # noqa: E731
        n_val = 0 if val.exposed is None else val.exposed.user.numel()
        if val_obj.unexposed and not val.has_organic:
            n_val = 0
    if config.sampling == "neighbor" and obj.kind == "bpr":
        from recause.models.gnn.sampling import link_neighbor_loader

        # under DDP, seeded batches of indices each process takes its share of; else PyG's own shuffle
        chunks = ShardedChunks(n_rows, config.batch_size, config.seed) if config.strategy != "auto" else None
        batches = LinkBatches(link_neighbor_loader(train.positive_user, train.positive_item, split.n_users, split.n_items,
                                                   config.num_neighbors, config.batch_size, config.negatives,
                                                   batch_sampler=chunks))
    else:
        local = None
        if config.sampling == "neighbor":
            from recause.models.gnn.sampling import homogeneous_data, neighbor_sampler

            users, items = td.graph_pairs(split.train, plan.graph_edges)
            local = localiser(neighbor_sampler(homogeneous_data(users, items, split.n_users, split.n_items),
                                               config.num_neighbors), graph)
        batches = EpochBatches(n_rows, config.batch_size, make, config.seed, local)
    val_batches = fixed_batches(n_val, config.batch_size, make_val, config.seed + 1) if n_val else []
    return Built(module, loader(batches), loader(val_batches) if val_batches else None, plan, config)


def exposure_covariate(config: ResolvedTrainConfig, plan: Plan) -> tuple[str, ...]:
    """The heads that read the exposure model's centred log-intensity (``gnn.exposure_covariate``): f1 and f0
    where f0 is learned beside the propensity head; none otherwise (the debias regime has no f0). The resolved
    setting is already off for the T-learner, whose arms stay apart, and for a sampled subgraph, which has no
    population means to centre on (:func:`~recause.tasks.train.config.resolve`)."""
    if not (config.exposure_covariate and {"propensity", "unexposed"} <= set(plan.heads)):
        return ()
    return ("exposed", "unexposed")


def _head_bias(data, objective, logit, log_intensity) -> dict[str, float]:
    """Initial head constants: the logit (log-intensity) of each head's base rate."""
    r = float(data.retention[data.retention > 0].mean()) if bool((data.retention > 0).any()) else 1.0
    bias = {}
    if data.exposed is not None and objective.kind == "causal":
        rate = float(data.exposed.label.mean())
        bias["exposed"] = bias["imputation"] = logit(rate)
        bias["propensity"] = log_intensity(min(data.exposed_pairs[0].numel() / data.population / r, 0.99))
    if data.has_organic:
        bias["unexposed"] = logit(data.organic_pairs.numel() / data.population / r)
    return bias


def fit_model(spec: ModelSpec, split: Split, meta: DatasetMeta, features=None, logger=None,
              checkpoint_dir: Path | None = None, callbacks: Sequence[object] = ()) -> TrainedModel:
    """Fit ``spec`` on ``split`` and return it with the best validation weights.

    ``logger``: a Lightning logger (the flow passes an ``MLFlowLogger``); None logs nothing.
    ``checkpoint_dir``: where Lightning writes the best checkpoint; None keeps the best weights in
    memory only. ``callbacks``: extra Lightning callbacks (e.g. a benchmark's per-epoch truth). Threads are set to ``spec.config.threads`` for the call and restored afterwards.
    """
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    from recause.models.gnn.batches import epoch_steps, patience_checks
    from recause.tasks.train.callbacks import (BestWeights, EpochChoice, EpochCurves, EpochTimer, ProcessThreads,
                                               quiet_lightning, torch_threads)
    from recause.tasks.train.data import UpliftCriterion
    from recause.tasks.train.distributed import check_here, trainer_arguments

    plan, config = spec.plan, spec.config
    check_here(config, config.threads)  # a strategy this machine cannot run fails here, before anything is built
    with torch_threads(config.threads):
        L.seed_everything(config.seed, workers=False, verbose=False)
        # the uplift criterion is noisy: stop on the outcome likelihood, then choose the epoch (EpochChoice);
        # the validator and the choice share one criterion, so each check scores the users once
        criterion = UpliftCriterion(split, "propensity" in plan.heads) if plan.monitor == "val/auuc_ipw" else None
        built = build(spec, split, meta, features, criterion)
        choice = EpochChoice(criterion) if criterion is not None else None
        stop_on, stop_mode = ("val/outcome_loss", "min") if choice is not None else (plan.monitor, plan.mode)
        best = BestWeights(stop_on, stop_mode)
        timer, curves = EpochTimer(), EpochCurves()
        callbacks = [ProcessThreads(config.threads), timer, best, curves, *([choice] if choice is not None else []), *callbacks]
        per_pass = len(built.train_loader)
        steps = epoch_steps(per_pass, config.epoch_rows, config.batch_size)
        patience = patience_checks(config.patience, config.patience_rows, steps * config.batch_size * config.val_every)
        if built.val_loader is not None:
            callbacks.append(EarlyStopping(stop_on, patience=patience, mode=stop_mode, check_finite=False))
        if checkpoint_dir is not None:
            callbacks.append(ModelCheckpoint(dirpath=checkpoint_dir, filename="best", monitor=stop_on, mode=stop_mode, save_top_k=1))
        start = time.perf_counter()
        with quiet_lightning():
            trainer = L.Trainer(
                max_epochs=config.epochs, accelerator=config.accelerator, **trainer_arguments(config),
                logger=logger if logger is not None else False, callbacks=callbacks,
                enable_checkpointing=checkpoint_dir is not None, enable_progress_bar=config.enable_progress_bar,
                enable_model_summary=False, num_sanity_val_steps=0, check_val_every_n_epoch=config.val_every,
                limit_train_batches=steps, log_every_n_steps=max(1, steps // 2),
            )
            trainer.fit(built.module, train_dataloaders=built.train_loader, val_dataloaders=built.val_loader)
        best.restore(built.module)
        history = {
            "epochs": float(trainer.current_epoch), "best_epoch": float(best.epoch), f"best_{stop_on}": best.value,
            "seconds": time.perf_counter() - start, "seconds_per_epoch": timer.mean, "steps_per_epoch": float(steps),
            "steps_per_pass": float(per_pass), "patience": float(patience),
        }
        saved: dict = {}  # what the best checkpoint gets beyond Lightning's (written once, below)
        if choice is not None and choice.losses:
            index, reason = choice.choose()
            choice.restore(built.module, index)
            window = choice.window() if config.snapshots else range(0)
            snapshots = [choice.states[i] for i in window]
            # the checkpoint holds the chosen epoch, not the likelihood's best, and the window's state dicts
            saved |= {"state_dict": {k: v.detach().cpu().clone() for k, v in built.module.state_dict().items()},
                      "epoch": choice.epochs[index], "recause_epoch_choice": reason}
            history |= {"best_epoch": float(choice.epochs[index]), "best_val/auuc_ipw": float(choice.values[index].mean()),
                        "epoch_choice": reason}
            if snapshots:
                built.module.use_snapshots(snapshots)
                saved["recause_snapshots"] = list(snapshots)
                history |= {"snapshots": float(len(window)), "snapshot_window": (
                    f"scores averaged over the {len(window)} checks of epochs {choice.epochs[window[0]] + 1}–"
                    f"{choice.epochs[window[-1]] + 1} (from the val/outcome_loss best to the stop)")}
        for head, scale in built.module.model.exposure_scale.items():  # how much each outcome head leans on exposure
            history[f"exposure_scale_{head}"] = float(scale.detach())
        for head, deviation in built.module.model.item_exposure_scale.items():  # how much the scale varies by item
            history[f"exposure_item_scale_std_{head}"] = float(deviation.detach().std())
        built.module.forget_states()  # states cached under the last epoch's weights
        built.module.eval()
        model = TrainedModel(built.module, config, plan, spec.name, history, curves.rows)
        if config.outcome_item_offset_sd > 0 and model.identifiable:  # before the calibration: τ̂ is then final
            offsets, history["item_offsets"] = outcome_item_offsets(model, split.train, config.outcome_item_offset_sd)
            if offsets is not None:
                built.module.use_item_offsets({"exposed": offsets})
                history["item_offset_std"] = float(offsets.std())
                saved["recause_item_offsets"] = {"exposed": offsets}
        if saved and checkpoint_dir is not None and (Path(checkpoint_dir) / "best.ckpt").exists():
            _update_checkpoint(Path(checkpoint_dir) / "best.ckpt", saved)
        if criterion is not None and model.identifiable:
            model.calibration, history["uplift_calibration"] = calibrate_uplift(model, criterion)
            if model.calibration is not None:
                history |= {"uplift_calibration_intercept": model.calibration.intercept,
                            "uplift_calibration_slope": model.calibration.slope}
    return model


def outcome_item_offsets(model: TrainedModel, frame: pd.DataFrame, prior_sd: float,
                         user_batch: int = 512) -> tuple[np.ndarray | None, str]:
    """f1's per-item logit offsets (n_items,) fitted by empirical Bayes on the impressions of ``frame`` (the training
    log: ``user``, ``item``, ``exposed``, ``outcome``, optional 1-based ``position``) with the model's f1, f0 and
    learned examination held fixed (:func:`~recause.models.gnn.item_offsets.fit_item_offsets`), and what was done,
    for the run's history; None (and why) when the log holds no impression."""
    from recause.models.gnn.item_offsets import fit_item_offsets, logits

    if model.module.item_offsets:
        raise ValueError(f"model {model.name!r} already has item offsets: they are fitted on its network's f1 alone")
    exposed = frame[frame["exposed"].to_numpy(bool)]
    if exposed.empty:
        return None, "no training impression to fit f1's item offsets on: f1 left as trained"
    users, items = exposed["user"].to_numpy(np.int64), exposed["item"].to_numpy(np.int64)
    clicked = exposed["outcome"].to_numpy(np.float64)
    kappa = np.ones(len(exposed))
    if "position" in exposed.columns and exposed["position"].notna().all():
        examination = model.examination()
        kappa = examination[np.clip(exposed["position"].to_numpy(np.int64) - 1, 0, len(examination) - 1)]
    f1, f0 = np.empty(len(exposed)), np.empty(len(exposed))
    order = np.argsort(users, kind="stable")
    ordered, everyone = users[order], np.unique(users)
    for start in range(0, len(everyone), user_batch):  # the two heads' grids one block of users at a time
        block = everyone[start : start + user_batch]
        lo, hi = np.searchsorted(ordered, [block[0], block[-1] + 1])
        these = order[lo:hi]
        at = np.searchsorted(block, users[these])
        f1[these] = model.relevance(block)[at, items[these]]
        f0[these] = model.p_outcome_if_not_exposed(block)[at, items[these]]
    offsets = fit_item_offsets(logits(f1), f0, kappa, clicked, items, model.module.graph.n_items, prior_sd)
    shown = np.bincount(items, minlength=len(offsets)) > 0
    return offsets, (f"f1's logit offset per item, empirical Bayes on {len(exposed):,} training impressions of "
                     f"{int(shown.sum()):,} items (prior sd {prior_sd:g}): sd {offsets.std():.3g}, from "
                     f"{offsets.min():.3g} to {offsets.max():.3g}")


def calibrate_uplift(model: TrainedModel, criterion: UpliftCriterion) -> tuple[UpliftCalibration | None, str]:
    """The affine map of ``model``'s τ̂ onto τ fitted on the validation log (:meth:`UpliftCriterion.calibration`,
    with the model's mean learned examination κ̄), and what was done, for the run's history.

    Raw f1 − f0 is not on τ's scale: on the synthetic tuning world (seed 0) its spread was 0.044 against
    a least-squares slope onto τ of 0.35, and its PEHE 0.0421 against 0.0305 calibrated (0.0304 with the
    map fitted on the truth). Rankings, and so CP@10 and the Qini areas, do not change."""
    kappa = float(model.examination().mean())
    fitted = criterion.calibration(model.module.scores, kappa)
    if isinstance(fitted, str):
        return None, fitted
    return fitted, (f"τ̂ = {fitted.intercept:.4g} + {fitted.slope:.4g} × (f1 − f0), least squares on the validation "
                    f"log's inverse-propensity pseudo-outcomes (mean examination {kappa:.3f}; slope's 95% bootstrap CI "
                    f"{fitted.slope_low:.3g} to {fitted.slope_high:.3g})")


def _update_checkpoint(path: Path, entries: dict) -> None:
    """Put ``entries`` in Lightning's best checkpoint at ``path``: the chosen epoch's weights (``state_dict``, ``epoch``;
    Lightning kept the outcome likelihood's best), ``recause_epoch_choice``, under ``recause_snapshots`` the state dicts
    the model scores as the mean of (``CausalModule.use_snapshots``), under ``recause_item_offsets`` f1's per-item offsets
    (``CausalModule.use_item_offsets``)."""
    import torch

    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    checkpoint.update(entries)
    torch.save(checkpoint, path)


def train_model(split: Split, meta: DatasetMeta, config: TrainConfig, features=None, logger=None,
                checkpoint_dir: Path | None = None, name: str | None = None, *, seed: int, threads: int,
                callbacks: Sequence[object] = ()) -> TrainedModel:
    """Plan the model ``config`` describes (``config.variant``) and fit it: :func:`plan_model` + :func:`fit_model`."""
    spec = plan_model(config, split, meta, seed=seed, threads=threads, name=name)
    return fit_model(spec, split, meta, features, logger, checkpoint_dir, callbacks)



# ---------------------------------------------------------------------------------------------- the stage's models
@dataclass
class ModelSet:
    """The causal GNN and its reference models, fitted on one split.

    ``models``: name (``gnn_causal``, ``gnn_naive``, ``gnn_t_learner``) -> fitted model;
    ``skipped``: name -> why it was not trained (or, for ``gnn_causal_uplift``, not reported).
    """

    models: dict[str, TrainedModel]
    identification: Identification
    skipped: dict[str, str] = field(default_factory=dict)
    selection: Selection | None = None

    @property
    def causal(self) -> TrainedModel | None:
        return self.models.get("gnn_causal")

    @property
    def chosen(self) -> TrainedModel | None:
        """The model the run acts on (recommendations): the selection's, else the causal GNN."""
        return self.models.get(self.selection.name) if self.selection is not None else self.causal

    def policies(self) -> dict[str, Policy]:
        """Harness policies: each model's relevance ranking (``gnn_causal`` is the debiased
        relevance f1) and, where identifiable, the uplift rankings ``<name>_uplift`` of the models
        that estimate f0 (the naive model has no f0)."""
        out: dict[str, Policy] = {}
        for name, model in self.models.items():
            out[name] = model.relevance_policy(name)
            uplift = model.uplift_policy(f"{name}_uplift")
            if uplift is not None:
                out[uplift.name] = uplift
        return out

    def policy_set(self) -> PolicySet:
        """The models' policies for the harness, under the ``gnn`` prefix."""
        return PolicySet("gnn", self.policies(), dict(self.skipped))

    def summary(self) -> dict[str, float | str | bool]:
        out: dict[str, float | str | bool] = dict(self.identification.summary())
        if self.selection is not None:
            out |= self.selection.summary()
        for name, model in self.models.items():
            out |= {f"gnn/{name}/{k}": v for k, v in model.summary().items() if k != "model/name"}
        out |= {f"gnn/{name}/skipped": reason for name, reason in self.skipped.items()}
        return out


def train_models(split: Split, meta: DatasetMeta, config: TrainConfig, features=None, *, seed: int, threads: int,
                 logger_for: Callable[[str], object] | None = None, checkpoint_root: Path | None = None,
                 on_model: Callable[[str, TrainedModel], None] | None = None) -> ModelSet:
    """Fit the causal model and the ``config.compare`` references the data support (:func:`plan_models`).

    ``logger_for(name)`` -> a Lightning logger per model (or None); ``checkpoint_root / name`` holds
    each model's best checkpoint; ``on_model(name, model)`` is called after each fit (progress).
    """
    plans = plan_models(config, split, meta, seed=seed, threads=threads)
    models: dict[str, TrainedModel] = {}
    for spec in plans.specs:
        model = fit_model(spec, split, meta, features,
                          logger=logger_for(spec.name) if logger_for is not None else None,
                          checkpoint_dir=checkpoint_root / spec.name if checkpoint_root is not None else None)
        models[spec.name] = model
        if on_model is not None:
            on_model(spec.name, model)
    return ModelSet(models, plans.identification, dict(plans.skipped), choose_model(models, split, seed))


SELECTION_DEPTH: int | None = None
"""Depth of the Qini area model selection compares (None = the whole catalogue; bench/uplift_criterion.py)."""


def choose_model(models: dict[str, TrainedModel], split: Split, seed: int) -> Selection | None:
    """The causal GNN or the simpler T-learner, by the uplift criterion with a bootstrap interval
    (:func:`recause.tasks.train.select.select`); a one-line reason where there is nothing to compare."""
    from recause.tasks.train.data import UpliftCriterion, metric_name

    causal, baseline = models.get("gnn_causal"), models.get("gnn_t_learner")
    if causal is None:
        return None
    criterion = metric_name(SELECTION_DEPTH)
    if not causal.identifiable or split.kind != "per_user":
        return Selection("gnn_causal", "uplift is not identified here, so there is no uplift criterion to choose by: the "
                         "causal GNN (debiased relevance) is used as trained", "none")
    if baseline is None:
        return Selection("gnn_causal", "no simpler uplift model was trained to compare with (train.compare has no t_learner)",
                         criterion)
    rule = UpliftCriterion(split, propensity_head=False, depths=(SELECTION_DEPTH,))
    if not rule.usable:
        return Selection("gnn_causal", "the validation log has no positive impressions with logged propensities to "
                         "score uplift on: the causal GNN is used as trained", "none")
    values = {name: rule.per_user(m.module.scores, propensity=causal.propensity)[SELECTION_DEPTH]
              for name, m in (("gnn_causal", causal), ("gnn_t_learner", baseline))}
    return select("gnn_causal", values["gnn_causal"], "gnn_t_learner", values["gnn_t_learner"], criterion, seed=seed)
