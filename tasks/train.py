"""Training the causal GNN (DESIGN §1, "causal GNN"): configuration, plan, Lightning fit, scoring.

:func:`train_model` takes a :class:`~tasks.split.Split` (plus the dataset's metadata and, when the
data have text, :class:`~tasks.features.TextFeatures`), builds the graph and the objective the
data support, trains with Lightning and returns a :class:`TrainedModel`, whose policies plug into
the evaluation harness (:class:`models.policies.Policy`).

What is trained (``variant``):

- ``causal``: the shared-representation model of :mod:`models.causal`. Where the log holds
  outcomes without exposure (``meta.has_unexposed_outcomes``: the synthetic world), propensity,
  f1 and f0 are learned jointly with targeted regularisation and uplift τ̂ = f1 - f0 is reported;
  where exposed rows carry both outcomes but nothing unexposed is observed (Coat, Open Bandit),
  debiased relevance f1 is learned with a doubly robust / inverse-propensity loss and uplift is
  *not identifiable*; where every row is a positive and exposure is unknown (MovieLens), nothing
  can be corrected and the model is a BPR ranker.
- ``naive``: the same architecture without causal correction: BPR on every positive row (exposed
  or not), or plain cross-entropy on the exposed rows where they carry both outcomes.
- ``t_learner``: two separate networks, one per arm, each fitted to its own arm's outcomes
  (needs unexposed outcomes).

The identification rule (:func:`identification`): uplift is reported only when
``meta.has_unexposed_outcomes``; otherwise ``causal/identifiable`` is false and no uplift exists.
"""

from __future__ import annotations

import contextlib
import copy
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.policies import FunctionPolicy, Policy
from tasks.datasets.schema import DatasetMeta
from tasks.split import Split

Variant = Literal["causal", "naive", "t_learner"]
RelevanceLoss = Literal["auto", "none", "ips", "snips", "dr", "sndr"]


class TrainConfig(BaseModel):
    """Settings of the causal GNN stage."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    variant: Variant = Field("causal", description="causal (shared representation, corrected losses), naive (same "
                             "network, no correction) or t_learner (one network per arm).")
    encoder: Literal["lightgcn", "sage", "gat"] = Field("lightgcn", description="Graph encoder (models.gnn).")
    dim: int = Field(64, ge=4, le=1024, description="Node state size.")
    num_layers: int | None = Field(None, ge=0, le=8, description="Propagation layers; None = by regime (AUTO).")
    use_text: bool = Field(True, description="Add a projection of the text embeddings to the initial node states.")
    graph_edges: Literal["auto", "positives", "all"] = Field(
        "auto", description="Edges: positive rows, or all training rows (the exposure graph, ~8x the edges on "
        "the synthetic world and as much slower); auto = positives.")
    epochs: int = Field(300, ge=1, description="Maximum epochs (early stopping usually ends sooner).")
    patience: int | None = Field(None, ge=1, description="Validation checks without improvement before stopping; None = by regime.")
    val_every: int = Field(1, ge=1, description="Epochs between validation checks.")
    monitor: str | None = Field(None, description="Validation metric for early stopping and the best checkpoint; "
                                "None = val/auc (randomized split), val/ndcg_at_20 (ranking), val/outcome_loss (causal: "
                                "the held-out likelihood of the outcome models).")
    batch_size: int | None = Field(None, ge=1, description="Rows per step (the main rows: positives or exposed rows); None = by regime.")
    negatives: int = Field(1, ge=1, le=256, description="Negative items per positive (BPR).")
    lr: float | None = Field(None, gt=0, description="Adam learning rate; None = by regime.")
    l2: float | None = Field(None, ge=0, description="L2 penalty on the ID embeddings of a batch's nodes (LightGCN's); None = by regime.")
    weight_decay: float = Field(0.0, ge=0, description="Weight decay of the dense parameters (text projection, heads).")
    init_std: float | None = Field(None, gt=0, description="Std of the ID-embedding initialisation; None = by regime.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the node states while training.")
    relevance_loss: RelevanceLoss = Field(
        "auto", description="Exposed-row loss of the causal variant: none, ips, snips, dr, sndr; auto = dr without "
        "unexposed outcomes, none with them (the shared model already conditions on the state).")
    propensity: Literal["learned", "logged"] = Field("learned", description="Propensities for the weighted losses.")
    clip: float = Field(0.05, ge=0, lt=1, description="Lower bound of the propensity in inverse weights.")
    propensity_weight: float = Field(1.0, ge=0, description="Weight of the exposure (propensity) likelihood.")
    unexposed_weight: float = Field(1.0, ge=0, description="Weight of the unexposed-outcome likelihood.")
    targeted_weight: float = Field(0.1, ge=0, description="Weight of DragonNet's targeted regularisation.")
    sampling: Literal["full", "neighbor"] = Field("full", description="Full-graph propagation every step, or "
                                                  "PyG neighbour sampling for graphs too large for it.")
    num_neighbors: list[int] = Field([10, 10, 10], description="Neighbours sampled per hop (one per layer; -1 = all).")
    threads: int | None = Field(None, ge=1, description="torch intra-op threads; None = the run's runtime.threads "
                                "(1 outside the flow; one is fastest on 2-core machines).")
    seed: int | None = Field(None, ge=0, description="Seed of initialisation and batch order; None = the run's "
                             "runtime.seed (0 outside the flow).")
    accelerator: str = Field("auto", description="Lightning accelerator: auto, cpu, gpu.")
    enable_progress_bar: bool = Field(False, description="Lightning's progress bar.")
    enabled: bool = Field(True, description="Train the causal GNN in the flow (the stage is skipped, and says so, if False).")
    compare: list[Literal["naive", "t_learner"]] = Field(
        ["naive", "t_learner"], description="Reference models trained beside the causal one for the harness (the "
        "T-learner only where uplift is identifiable).")

    @property
    def run_seed(self) -> int:
        return 0 if self.seed is None else self.seed

    @property
    def run_threads(self) -> int:
        return 1 if self.threads is None else self.threads

    @model_validator(mode="after")
    def _neighbours_per_layer(self) -> TrainConfig:
        if self.sampling == "neighbor" and self.num_layers is not None and len(self.num_neighbors) != self.num_layers:
            raise ValueError(f"num_neighbors has {len(self.num_neighbors)} hops but num_layers is {self.num_layers}; give one per layer")
        return self


Regime = Literal["ranking", "debias", "uplift"]

AUTO: dict[str, dict[str, float | int]] = {
    # implicit positives, BPR (MovieLens; the naive reference): LightGCN's usual settings
    "ranking": {"num_layers": 3, "batch_size": 2048, "lr": 1e-3, "init_std": 0.1, "l2": 1e-4, "patience": 10},
    # labelled exposures, IPS/DR relevance (Coat, Open Bandit): no propagation won on Coat's validation AUC
    "debias": {"num_layers": 0, "batch_size": 2048, "lr": 1e-3, "init_std": 0.1, "l2": 1e-4, "patience": 10},
    # exposure + f1 + f0 (synthetic world): the outcome heads overfit within a few epochs, so small
    # initial IDs, strong ID L2, large batches and a short patience (bench/causal_synthetic.py)
    "uplift": {"num_layers": 0, "batch_size": 8192, "lr": 2e-3, "init_std": 0.01, "l2": 0.1, "patience": 3},
}
"""Settings left at None take these values by the plan's regime (:func:`resolve`)."""


def resolve(config: TrainConfig, regime: Regime) -> TrainConfig:
    """``config`` with every None setting of :data:`AUTO` filled in for ``regime``."""
    filled = {k: v for k, v in AUTO[regime].items() if getattr(config, k) is None}
    resolved = copy_config(config, **filled) if filled else config
    if resolved.sampling == "neighbor" and len(resolved.num_neighbors) != resolved.num_layers:
        raise ValueError(f"num_neighbors has {len(resolved.num_neighbors)} hops but the {regime} regime uses "
                         f"{resolved.num_layers} layers; give one per layer or set num_layers")
    return resolved


# ---------------------------------------------------------------------------------------------- identification
@dataclass(frozen=True)
class Identification:
    """Whether uplift is identifiable from the data, and why."""

    identifiable: bool
    reason: str

    def summary(self) -> dict[str, bool | str]:
        return {"causal/identifiable": self.identifiable, "causal/identification": self.reason}


def identification(meta: DatasetMeta) -> Identification:
    """The identification rule: uplift needs outcomes of unexposed pairs.

    τ(u,i) = P(Y=1 | do(E=1)) - P(Y=1 | do(E=0)); the second term is identified (given no
    unmeasured confounding given the graph state, and positivity) only from outcomes observed
    *without* exposure, i.e. when ``meta.has_unexposed_outcomes``.
    """
    if meta.has_unexposed_outcomes:
        return Identification(True, f"{meta.name}: the log holds outcomes of unexposed pairs, which identify "
                              "P(Y=1 | do(E=0)) and so the uplift (given the graph state, with positivity).")
    return Identification(False, f"{meta.name}: no outcomes without exposure, so P(Y=1 | do(E=0)) and the uplift "
                          "are not identifiable from this data; only debiased relevance is reported.")


# ---------------------------------------------------------------------------------------------- plan
@dataclass(frozen=True)
class Plan:
    """What :func:`train_model` will fit for a config on a split (decided before any training)."""

    objective: object  # models.causal.Objective
    heads: dict[str, str]
    encoders: tuple[str, ...]
    monitor: str
    mode: Literal["min", "max"]
    graph_edges: str
    identification: Identification
    note: str
    regime: Regime = "ranking"


def make_plan(config: TrainConfig, split: Split, meta: DatasetMeta) -> Plan:
    """The objective, heads and monitor the data support (see the module docstring)."""
    from models.causal import Objective
    from tasks.train_data import has_labelled_exposure

    ident = identification(meta)
    labelled = has_labelled_exposure(split.train)
    organic = ident.identifiable and bool((~split.train["exposed"].fillna(False).astype(bool) & split.train["positive"]).any())
    ranking = split.kind == "per_user"
    l2 = 0.0  # set below, once the regime is known
    if config.variant == "t_learner" and not (organic and labelled):
        raise ValueError(f"variant 't_learner' needs labelled exposed rows and unexposed outcomes; {meta.name} lacks them")
    if config.variant == "naive" or not labelled:
        if labelled and not organic:
            objective, note = Objective("causal", weighting="none", l2=l2), "naive: unweighted cross-entropy on exposed rows"
            heads = {"exposed": "shared"}
        else:
            objective, heads = Objective("bpr", l2=l2), {"exposed": "shared"}
            note = "BPR on every positive row" + ("" if labelled else " (no exposure information to correct with)")
    elif config.variant == "t_learner":
        objective = Objective("causal", weighting="none", unexposed=True, detach_control=True,
                              unexposed_weight=config.unexposed_weight, l2=l2)
        heads, note = {"exposed": "treated", "unexposed": "control"}, "T-learner: one network per arm"
    else:
        weighting = config.relevance_loss if config.relevance_loss != "auto" else ("none" if organic else "dr")
        heads = {"exposed": "shared", "propensity": "shared"}
        if organic:
            heads["unexposed"] = "shared"
        if weighting in ("dr", "sndr"):
            heads["imputation"] = "shared"
        objective = Objective(
            "causal", weighting=weighting, propensity=config.propensity, clip=config.clip, train_propensity=True,
            unexposed=organic, targeted_weight=config.targeted_weight if organic else 0.0,
            propensity_weight=config.propensity_weight, unexposed_weight=config.unexposed_weight, l2=l2,
        )
        note = f"causal: {weighting} exposed-row loss, learned exposure" + (", f0 and targeted regularisation" if organic else "")
    regime: Regime = "ranking" if objective.kind == "bpr" else ("uplift" if objective.unexposed else "debias")
    objective = replace(objective, l2=config.l2 if config.l2 is not None else float(AUTO[regime]["l2"]))
    encoders = tuple(dict.fromkeys(heads.values()))
    if config.monitor is not None:
        monitor = config.monitor
    elif not ranking:
        monitor = "val/auc"
    elif objective.kind == "bpr":
        monitor = "val/ndcg_at_20"
    else:
        monitor = "val/outcome_loss"
    mode = "min" if monitor.endswith("loss") else "max"
    edges = config.graph_edges
    if edges == "auto":
        edges = "positives"
    return Plan(objective, heads, encoders, monitor, mode, edges, ident, note, regime)


# ---------------------------------------------------------------------------------------------- trained model
@dataclass
class TrainedModel:
    """A fitted model and its scores. Scores are (n_users_in_block, n_items) numpy arrays over the
    split's user/item indices; probabilities except the BPR ranker's logits."""

    module: object  # models.causal.CausalModule
    config: TrainConfig
    plan: Plan
    name: str
    history: dict[str, float] = field(default_factory=dict)

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
        """τ̂(u,i) = f1 - f0, the effect of recommending i to u; only when identifiable."""
        self._require_uplift()
        return self.module.scores(users, "exposed") - self.module.scores(users, "unexposed")

    def propensity(self, users: np.ndarray) -> np.ndarray:
        """ĝ(u,i) = P(E=1 | u, i) over the whole logging period (causal variant)."""
        if "propensity" not in self.plan.heads:
            raise ValueError(f"model {self.name!r} has no propensity head (variant {self.config.variant!r})")
        return self.module.scores(users, "propensity")

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
    config: TrainConfig


def build(split: Split, meta: DatasetMeta, config: TrainConfig, features=None) -> Built:
    """The Lightning module and loaders for ``split`` (no training)."""
    from models.causal import CausalModule, CausalRecommender, log_intensity, logit
    from models.causal_data import EpochBatches, LinkBatches, bpr_batch, causal_batch, fixed_batches, loader, localiser
    from models.gnn import ENCODERS, BipartiteGraph
    from tasks import train_data as td

    plan = make_plan(config, split, meta)
    config = resolve(config, plan.regime)
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
    model = CausalRecommender(encoders, plan.heads, _head_bias(train, obj, logit, log_intensity), n_slots=train.n_slots,
                              dropout=config.dropout)
    validator = td.debias_validator(split) if split.kind == "randomized" else td.ranking_validator(split)
    val_obj = obj
    if split.kind == "randomized" and obj.kind == "causal":
        val_obj = replace(obj, weighting="none")  # validation rows were exposed at random: no weights
    module = CausalModule(model, graph, obj, config.lr, config.weight_decay, validator, val_obj)

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
        from models.sampling import link_neighbor_loader

        batches = LinkBatches(link_neighbor_loader(train.positive_user, train.positive_item, split.n_users, split.n_items,
                                                   config.num_neighbors, config.batch_size, config.negatives))
    else:
        local = None
        if config.sampling == "neighbor":
            from models.sampling import homogeneous_data, neighbor_sampler

            users, items = td.graph_pairs(split.train, plan.graph_edges)
            local = localiser(neighbor_sampler(homogeneous_data(users, items, split.n_users, split.n_items),
                                               config.num_neighbors), graph)
        batches = EpochBatches(n_rows, config.batch_size, make, config.run_seed, local)
    val_batches = fixed_batches(n_val, config.batch_size, make_val, config.run_seed + 1) if n_val else []
    return Built(module, loader(batches), loader(val_batches) if val_batches else None, plan, config)


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


def train_model(split: Split, meta: DatasetMeta, config: TrainConfig, features=None, logger=None,
                checkpoint_dir: Path | None = None, name: str | None = None) -> TrainedModel:
    """Fit the model ``config`` describes on ``split`` and return it with the best validation weights.

    ``logger``: a Lightning logger (the flow passes an ``MLFlowLogger``); None logs nothing.
    ``checkpoint_dir``: where Lightning writes the best checkpoint; None keeps the best weights in
    memory only. Threads are set to ``config.run_threads`` for the call and restored afterwards.
    """
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    with _threads(config.run_threads):
        L.seed_everything(config.run_seed, workers=False, verbose=False)
        built = build(split, meta, config, features)
        plan, config = built.plan, built.config
        best = BestWeights(plan.monitor, plan.mode)
        timer = EpochTimer()
        callbacks = [timer, best]
        if built.val_loader is not None:
            callbacks.append(EarlyStopping(plan.monitor, patience=config.patience, mode=plan.mode, check_finite=False))
        if checkpoint_dir is not None:
            callbacks.append(ModelCheckpoint(dirpath=checkpoint_dir, filename="best", monitor=plan.monitor, mode=plan.mode, save_top_k=1))
        start = time.perf_counter()
        with _quiet_lightning():
            trainer = L.Trainer(
                max_epochs=config.epochs, accelerator=config.accelerator, devices=1,
                logger=logger if logger is not None else False, callbacks=callbacks,
                enable_checkpointing=checkpoint_dir is not None, enable_progress_bar=config.enable_progress_bar,
                enable_model_summary=False, num_sanity_val_steps=0, check_val_every_n_epoch=config.val_every,
                log_every_n_steps=max(1, len(built.train_loader) // 2),
            )
            trainer.fit(built.module, train_dataloaders=built.train_loader, val_dataloaders=built.val_loader)
        best.restore(built.module)
        built.module.eval()
        history = {
            "epochs": float(trainer.current_epoch), "best_epoch": float(best.epoch), f"best_{plan.monitor}": best.value,
            "seconds": time.perf_counter() - start, "seconds_per_epoch": timer.mean, "steps_per_epoch": float(len(built.train_loader)),
        }
    return TrainedModel(built.module, config, plan, name or f"gnn_{config.variant}", history)


# ---------------------------------------------------------------------------------------------- callbacks
def _callback_base():
    from lightning.pytorch.callbacks import Callback

    return Callback


class BestWeights(_callback_base()):
    """Keeps the weights of the best validation check in memory and restores them after fit."""

    def __init__(self, monitor: str, mode: str):
        self.monitor, self.mode = monitor, mode
        self.value, self.epoch, self.state = float("nan"), -1, None

    def on_validation_end(self, trainer, module) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is None or trainer.sanity_checking:
            return
        value = float(value)
        better = value < self.value if self.mode == "min" else value > self.value
        if self.state is None or better:
            self.value, self.epoch = value, trainer.current_epoch
            self.state = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}

    def restore(self, module) -> None:
        if self.state is not None:
            module.load_state_dict(self.state)
            module._eval_states = None


class EpochTimer(_callback_base()):
    """Wall seconds of each training epoch (training steps only, not validation)."""

    def __init__(self):
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer, module) -> None:
        self._start = time.perf_counter()

    def on_validation_start(self, trainer, module) -> None:
        if self._start:
            self.seconds.append(time.perf_counter() - self._start)
            self._start = 0.0

    def on_train_epoch_end(self, trainer, module) -> None:
        if self._start:
            self.seconds.append(time.perf_counter() - self._start)
            self._start = 0.0

    @property
    def mean(self) -> float:
        return float(np.mean(self.seconds)) if self.seconds else float("nan")


@contextlib.contextmanager
def _threads(n: int):
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def _quiet_lightning():
    import logging
    import warnings

    names = ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning.pytorch.utilities.rank_zero")
    levels = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(num_workers|does not have many workers|Sparse|sparse|LeafSpec).*")
        try:
            yield
        finally:
            for n, level in levels.items():
                logging.getLogger(n).setLevel(level)


def copy_config(config: TrainConfig, **changes) -> TrainConfig:
    """A validated copy of ``config`` with ``changes``."""
    return TrainConfig.model_validate(copy.deepcopy(config.model_dump()) | changes)


# ---------------------------------------------------------------------------------------------- the stage's work
@dataclass
class ModelSet:
    """The causal GNN and its reference models, fitted on one split.

    ``models``: name (``gnn_causal``, ``gnn_naive``, ``gnn_t_learner``) -> fitted model;
    ``skipped``: name -> why it was not trained.
    """

    models: dict[str, TrainedModel]
    identification: Identification
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def causal(self) -> TrainedModel | None:
        return self.models.get("gnn_causal")

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

    def summary(self) -> dict[str, float | str | bool]:
        out: dict[str, float | str | bool] = dict(self.identification.summary())
        for name, model in self.models.items():
            out |= {f"gnn/{name}/{k}": v for k, v in model.summary().items() if k != "model/name"}
        out |= {f"gnn/{name}/skipped": reason for name, reason in self.skipped.items()}
        return out


def train_models(split: Split, meta: DatasetMeta, config: TrainConfig, features=None, logger_for=None,
                 checkpoint_root: Path | None = None, on_model=None) -> ModelSet:
    """Fit the causal model and the ``config.compare`` references the data support.

    ``logger_for(name)`` -> a Lightning logger per model (or None); ``checkpoint_root / name`` holds
    each model's best checkpoint; ``on_model(name, model)`` is called after each fit (progress).
    A reference whose objective would equal the causal model's (no exposure information to correct
    with, e.g. MovieLens) is not trained twice: it is skipped and the reason says so.
    """
    ident = identification(meta)
    causal_plan = make_plan(config, split, meta)
    models: dict[str, TrainedModel] = {}
    skipped: dict[str, str] = {}
    for variant in ["causal", *dict.fromkeys(config.compare)]:
        name = f"gnn_{variant}"
        variant_config = copy_config(config, variant=variant)
        try:
            plan = make_plan(variant_config, split, meta)
        except ValueError as err:
            skipped[name] = str(err)
            continue
        if variant != "causal" and plan.objective == causal_plan.objective and plan.heads == causal_plan.heads:
            skipped[name] = f"same objective as gnn_causal on {meta.name} ({plan.note})"
            continue
        model = train_model(split, meta, variant_config, features,
                            logger=logger_for(name) if logger_for is not None else None,
                            checkpoint_dir=checkpoint_root / name if checkpoint_root is not None else None, name=name)
        models[name] = model
        if on_model is not None:
            on_model(name, model)
    if "gnn_causal" in models and not ident.identifiable:
        skipped["gnn_causal_uplift"] = ident.reason
    return ModelSet(models, ident, skipped)
