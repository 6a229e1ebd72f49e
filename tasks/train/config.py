"""Settings of the causal GNN stage: what a user sets (:class:`TrainConfig`) and what a fit runs with
(:class:`ResolvedTrainConfig`, every setting decided once).

Settings left at ``None`` take their value from the training *regime* the data call for
(:data:`AUTO`); the seed and the thread count come from the run (``runtime.seed``,
``runtime.threads``), their only home. :func:`resolve` does both, once per model.
"""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from recause.tasks.config import Section

Variant = Literal["causal", "naive", "t_learner"]
RelevanceLoss = Literal["auto", "none", "ips", "snips", "dr", "sndr"]
Regime = Literal["ranking", "debias", "uplift"]

AUTO: dict[str, dict[str, float | int | str | bool]] = {
    # implicit positives, BPR (MovieLens; the naive reference): LightGCN's inner-product head, 8 negatives,
    # lr 2e-3, ID L2 1e-4 — the best validation NDCG@20 of bench/vs_recbole.py's sweep on MovieLens-100K
    # (seed-0 split; the bilinear head peaked earlier and lower); patience 20 checks = its 10 checks of 2 epochs
    "ranking": {"num_layers": 3, "batch_size": 2048, "lr": 2e-3, "init_std": 0.1, "l2": 1e-4, "patience": 20,
                "head": "dot", "negatives": 8, "exposure_covariate": False, "propensity_weight": 1.0, "snapshots": False,
                "logged_propensity_weight": 0.0, "exposure_scale": "per_head", "exposure_item_scale": False,
                "outcome_interaction_start": "identity", "outcome_interaction_lr": 1.0,
                "outcome_item_offset_sd": 0.0},
    # labelled exposures, IPS/DR relevance (Coat, Open Bandit): no propagation won on Coat's validation AUC
    "debias": {"num_layers": 0, "batch_size": 2048, "lr": 1e-3, "init_std": 0.1, "l2": 1e-4, "patience": 10,
               "head": "bilinear", "negatives": 1, "exposure_covariate": False, "propensity_weight": 1.0,
               "snapshots": False, "logged_propensity_weight": 0.0, "exposure_scale": "per_head",
               "exposure_item_scale": False, "outcome_interaction_start": "identity", "outcome_interaction_lr": 1.0,
               "outcome_item_offset_sd": 0.0},
    # exposure + f1 + f0 (synthetic world): the outcome heads overfit within a few epochs, so small
    # initial IDs, strong ID L2 and large batches; training stops 10 checks after the outcome
    # likelihood's best, and the uplift ranking peaks a few epochs after it (bench/uplift_criterion.py).
    # The outcome heads read the exposure model's centred log-intensity (exposure_covariate) and the
    # exposure likelihood weighs 5×: the exposure model learns users' interests from every impression,
    # the outcome heads only from the few outcomes (uplift CP@10 / oracle on the tuning world, seed 0,
    # two training seeds each: 0.572, 0.576 → 0.659, 0.653; at confounding 2: 0.41, 0.29 → 0.53, 0.42)
    # The uplift estimate is a snapshot ensemble: every head's scores averaged over the checks from the
    # likelihood's best to the stop, 10 checks after it (bench/uplift_epochs.py, CP@10 / oracle on the
    # tuning world, five training seeds: the chosen check at patience 6, mean 0.655 and minimum 0.643 →
    # the ensemble at patience 10, 0.668 and 0.665; at confounding 2, 0.467 and 0.418 → 0.506 and 0.496).
    # One scale of the covariate for f1 and f0 (it is prognostic, shifting both logits alike) and the exposure model
    # regressed on the logged propensities at weight 0.3 (bench/uplift_sweep.py, five training seeds: mean 0.669 →
    # 0.683 at confounding 1, 0.504 → 0.578 at confounding 2; the shared scale alone 0.669 and 0.567).
    # f1's scale with a free deviation per item (bench/uplift_sweep.py --only no-item-scale base, five training seeds: 0.683 →
    # 0.684 at confounding 1, 0.578 → 0.611 at confounding 2; f1's within-item correlation with the true p1 over the top
    # popularity decile 0.64 → 0.67 on the first seed at c = 2).
    # f1's and f0's own bilinear term starts at zero (V = 0), so the outcome heads start as their main effects plus the
    # covariate and grow their own user–item term from the outcomes (bench/uplift_sweep.py --only identity-start base,
    # five training seeds: 0.684 → 0.691 at confounding 1, 0.611 → 0.613 at confounding 2; every c = 1 seed above every
    # identity-start one). That term then learns at 0.3× the rate (--only own-lr-1 base, five training seeds: 0.691 →
    # 0.686 at confounding 1, 0.613 → 0.619 at confounding 2; the ten runs' mean 0.652 → 0.653).
    # After training, f1 gets a logit offset per item fitted by empirical Bayes on the training impressions, prior sd 0.5
    # (recause.models.gnn.item_offsets; bench/uplift_sweep.py --only no-item-offsets base, five training seeds: 0.686 →
    # 0.702 at confounding 1, 0.619 → 0.632 at confounding 2) — f1's item effects, which only a median of 1–2 clicks an
    # item reveal, were its weakest part (they correlated 0.71 with the truth's, f0's 0.994).
    "uplift": {"num_layers": 0, "batch_size": 8192, "lr": 2e-3, "init_std": 0.01, "l2": 0.1, "patience": 10,
               "head": "bilinear", "negatives": 1, "exposure_covariate": True, "propensity_weight": 5.0,
               "snapshots": True, "logged_propensity_weight": 0.3, "exposure_scale": "shared",
               "exposure_item_scale": True, "outcome_interaction_start": "zero", "outcome_interaction_lr": 0.3,
               "outcome_item_offset_sd": 0.5},
}
"""Settings left at None take these values by the plan's regime (:func:`resolve`)."""


class TrainConfig(Section):
    """Settings of the causal GNN stage (``None`` = by regime, see :data:`AUTO`)."""

    variant: Variant = Field("causal", description="causal (shared representation, corrected losses), naive (same "
                             "network, no correction) or t_learner (one network per arm).")
    encoder: Literal["lightgcn", "sage", "gat"] = Field("lightgcn", description="Graph encoder (recause.models.gnn.encoders).")
    dim: int = Field(64, ge=4, le=1024, description="Node state size.")
    head: Literal["bilinear", "dot"] | None = Field(
        None, description="Pair heads: bilinear (learned projections and per-node biases) or dot (LightGCN's plain "
        "inner product plus a constant); None = by regime (dot for ranking, bilinear elsewhere).")
    num_layers: int | None = Field(None, ge=0, le=8, description="Propagation layers; None = by regime (AUTO).")
    use_text: bool = Field(True, description="Add a projection of the text embeddings to the initial node states.")
    graph_edges: Literal["auto", "positives", "all"] = Field(
        "auto", description="Edges: positive rows, or all training rows (the exposure graph, ~8x the edges on "
        "the synthetic world and as much slower); auto = positives.")
    epochs: int = Field(300, ge=1, description="Maximum epochs (early stopping usually ends sooner).")
    epoch_rows: int | None = Field(
        1_000_000, ge=1, description="Most training rows per epoch: on a larger log each epoch is a fresh random "
        "part of this many rows (batches of the epoch's own shuffle), so validation checks, patience and the chosen "
        "epoch come at a fixed amount of work whatever the log's size; None = every row every epoch.")
    patience: int | None = Field(None, ge=1, description="Validation checks without improvement before stopping; None = by regime.")
    patience_rows: int | None = Field(
        2_000_000, ge=1, description="Most training rows early stopping waits through for an improvement: the "
        "patience in checks is cut to ⌈patience_rows / rows per check⌉ (never below the smaller of 3 and the patience) when a "
        "check is that much work — only on logs of several hundred thousand rows; None = gnn.patience alone.")
    val_every: int = Field(1, ge=1, description="Epochs between validation checks.")
    monitor: str | None = Field(None, description="Validation metric for early stopping and the best checkpoint; "
                                "None = val/auc (randomized split), val/ndcg_at_20 (ranking), val/auuc_ipw (uplift "
                                "identified: the inverse-propensity Qini area of the uplift ranking on the validation log), "
                                "else val/outcome_loss (the held-out likelihood of the outcome models).")
    batch_size: int | None = Field(None, ge=1, description="Rows per step (the main rows: positives or exposed rows); None = by regime.")
    negatives: int | None = Field(None, ge=1, le=256, description="Negative items per positive (BPR); None = by regime.")
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
    propensity_weight: float | None = Field(None, ge=0, description="Weight of the exposure (propensity) likelihood; "
                                            "None = by regime (5 for uplift, 1 elsewhere).")
    exposure_scale: Literal["shared", "per_head"] | None = Field(
        None, description="With the exposure covariate: one learned scale for f1 and f0 (shared: the covariate is "
        "prognostic, shifting both potential outcomes' logits alike) or one per head. None = by regime.")
    exposure_item_scale: bool | None = Field(
        None, description="With the exposure covariate: f1's scale of it also gets a free deviation per item, starting "
        "at 0 — how much the interest the exposure model sees raises the outcome of a recommendation may differ by item "
        "(a popular item users find on their own gains less from it). None = by regime.")
    outcome_interaction_start: Literal["identity", "zero"] | None = Field(
        None, description="With the exposure covariate: how f1's and f0's own user–item (bilinear) term starts — "
        "identity (the node states' dot product, as every other head) or zero (the heads start as their main effects "
        "plus the covariate, and their own term grows from the outcomes). None = by regime.")
    outcome_interaction_lr: float | None = Field(
        None, gt=0, description="With outcome_interaction_start=zero: the learning rate of f1's and f0's zero-started "
        "map as a multiple of lr (how fast their own user–item term grows). None = by regime; 1 wherever the start is "
        "identity.")
    outcome_item_offset_sd: float | None = Field(
        None, ge=0, description="The causal variant with f0 (uplift): after training, f1 gets a logit offset per item "
        "fitted by empirical Bayes on the training impressions with everything else fixed — a random intercept with "
        "this prior standard deviation (an item with many impressions moves to what its clicks say, a rarely shown one "
        "stays at the network's estimate); 0 = off. None = by regime (0.5 for uplift, 0 elsewhere).")
    logged_propensity_weight: float | None = Field(
        None, ge=0, description="Weight of the exposure model's regression on the log's propensities (the squared "
        "error of its log-intensity against the one each exposed row's logged propensity implies; rows without one "
        "are skipped); 0 = off. None = by regime.")
    exposure_covariate: bool | None = Field(
        None, description="The causal variant's outcome heads (f1, f0) add s·λ̃(u,i): the exposure model's "
        "log-intensity less its user and item means over the population, gradient stopped, with a learned scale s "
        "starting at 0 (the estimated propensity as a covariate of the outcome model); only where f0 is learned and "
        "with gnn.sampling=full. None = by regime (on for uplift).")
    snapshots: bool | None = Field(
        None, description="Where the uplift criterion chooses the epoch: score as a snapshot ensemble, every head's "
        "scores the mean over the models of the validation checks from the outcome likelihood's best to the stop (the "
        "chosen check's weights still give the node states, the examination and the checkpoint). None = by regime "
        "(on for uplift).")
    unexposed_weight: float = Field(1.0, ge=0, description="Weight of the unexposed-outcome likelihood.")
    targeted_weight: float = Field(0.1, ge=0, description="Weight of DragonNet's targeted regularisation.")
    sampling: Literal["full", "neighbor"] = Field("full", description="Full-graph propagation every step, or "
                                                  "PyG neighbour sampling for graphs too large for it.")
    num_neighbors: list[int] = Field([10, 10, 10], description="Neighbours sampled per hop (one per layer; -1 = all).")
    accelerator: str = Field("auto", description="Lightning accelerator: auto, cpu, gpu.")
    strategy: Literal["auto", "ddp_fork"] = Field(
        "auto", description="auto: one training process; ddp_fork: Lightning's DDP in gnn.devices forked processes "
        "per node, each on a shard of every batch, gradients averaged (gloo on CPU); see tasks/train/distributed.py.")
    devices: int = Field(1, ge=1, le=256, description="Training processes per node: CPU processes (each with "
                         "runtime.threads torch threads) or GPUs; more than 1 needs gnn.strategy=ddp_fork.")
    num_nodes: int = Field(1, ge=1, le=1024, description="Machines training together (ddp_fork; each runs the same "
                           "command with MASTER_ADDR, MASTER_PORT and NODE_RANK set).")
    enable_progress_bar: bool = Field(False, description="Lightning's progress bar.")
    enabled: bool = Field(True, description="Train the causal GNN in the flow (the stage is skipped, and says so, if False).")
    compare: list[Literal["naive", "t_learner"]] = Field(
        ["naive", "t_learner"], description="Reference models trained beside the causal one for the harness (the "
        "T-learner only where uplift is identifiable).")

    @model_validator(mode="after")
    def _neighbours_per_layer(self) -> TrainConfig:
        if self.sampling == "neighbor" and self.num_layers is not None and len(self.num_neighbors) != self.num_layers:
            raise ValueError(f"num_neighbors has {len(self.num_neighbors)} hops but num_layers is {self.num_layers}; give one per layer")
        return self


class ResolvedTrainConfig(TrainConfig):
    """Every setting of one fit decided: the regime's values filled in, the run's seed and threads.

    Frozen: built once by :func:`resolve` and passed down unchanged.
    """

    model_config = ConfigDict(frozen=True)

    regime: Regime = Field(..., description="The training regime the data called for.")
    num_layers: int = Field(..., ge=0, le=8)
    patience: int = Field(..., ge=1)
    batch_size: int = Field(..., ge=1)
    lr: float = Field(..., gt=0)
    l2: float = Field(..., ge=0)
    init_std: float = Field(..., gt=0)
    head: Literal["bilinear", "dot"] = Field(...)
    negatives: int = Field(..., ge=1, le=256)
    propensity_weight: float = Field(..., ge=0)
    logged_propensity_weight: float = Field(..., ge=0)
    exposure_covariate: bool = Field(...)
    exposure_scale: Literal["shared", "per_head"] = Field(...)
    exposure_item_scale: bool = Field(...)
    outcome_interaction_start: Literal["identity", "zero"] = Field(...)
    outcome_interaction_lr: float = Field(..., gt=0)
    outcome_item_offset_sd: float = Field(..., ge=0)
    snapshots: bool = Field(...)
    seed: int = Field(..., ge=0, description="Seed of initialisation and batch order (the run's).")
    threads: int = Field(..., ge=1, description="torch intra-op threads (the run's).")


def resolve(config: TrainConfig, variant: Variant, regime: Regime, seed: int, threads: int) -> ResolvedTrainConfig:
    """``config`` for ``variant`` with every None setting of :data:`AUTO` filled in for ``regime``."""
    filled = {k: v for k, v in AUTO[regime].items() if getattr(config, k) is None}
    resolved = ResolvedTrainConfig.model_validate(
        config.model_dump() | filled | {"variant": variant, "regime": regime, "seed": seed, "threads": threads}
    )
    if resolved.exposure_covariate and (variant != "causal" or resolved.sampling != "full"):
        # only the shared-representation model on the full graph reads it (tasks/train/fit.py::exposure_covariate)
        resolved = resolved.model_copy(update={"exposure_covariate": False})
    if not resolved.exposure_covariate and resolved.exposure_item_scale:  # a deviation of a scale that is not there
        resolved = resolved.model_copy(update={"exposure_item_scale": False})
    if resolved.outcome_interaction_start == "zero" and resolved.head == "dot" and config.outcome_interaction_start:
        raise ValueError("gnn.outcome_interaction_start=zero needs gnn.head=bilinear (a dot head has no map to start "
                         "at zero)")
    if not resolved.exposure_covariate or resolved.head == "dot" or resolved.outcome_interaction_start == "identity":
        # without the covariate a zero start leaves the outcome heads nothing of the pair to start from; a dot head
        # (the regime's default left in place) has no map to start at zero; and no zero-started map, nothing to slow
        resolved = resolved.model_copy(update={"outcome_interaction_start": "identity", "outcome_interaction_lr": 1.0})
    if variant != "causal" and resolved.outcome_item_offset_sd > 0:
        # the reference models stay as they are: the naive ranker has no f1 probability, the T-learner is the simpler
        # baseline the causal model is chosen over (tasks/train/select.py)
        resolved = resolved.model_copy(update={"outcome_item_offset_sd": 0.0})
    if resolved.sampling == "neighbor" and len(resolved.num_neighbors) != resolved.num_layers:
        raise ValueError(f"num_neighbors has {len(resolved.num_neighbors)} hops but the {regime} regime uses "
                         f"{resolved.num_layers} layers; give one per layer or set num_layers")
    return resolved
