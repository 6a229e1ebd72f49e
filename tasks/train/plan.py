"""What the causal GNN stage fits, decided before any training: identification, objective, heads.

What is trained (``variant``):

- ``causal``: the shared-representation model of :mod:`recause.models.gnn.heads`. Where the log
  holds outcomes without exposure (``meta.has_unexposed_outcomes``: the synthetic world),
  propensity, f1 and f0 are learned jointly with targeted regularisation and uplift τ̂ = f1 − f0
  is reported; where exposed rows carry both outcomes but nothing unexposed is observed (Coat,
  Open Bandit), debiased relevance f1 is learned with a doubly robust / inverse-propensity loss
  and uplift is *not identifiable*; where every row is a positive and exposure is unknown
  (MovieLens), nothing can be corrected and the model is a BPR ranker.
- ``naive``: the same architecture without causal correction: BPR on every positive row (exposed
  or not), or plain cross-entropy on the exposed rows where they carry both outcomes.
- ``t_learner``: two separate networks, one per arm, each fitted to its own arm's outcomes
  (needs unexposed outcomes).

The identification rule (:func:`identification`): uplift is reported only when
``meta.has_unexposed_outcomes``; otherwise ``causal/identifiable`` is false and no uplift exists.
Each model is planned once (:func:`plan_model`): its objective, heads and monitor, and its
settings resolved for the regime (:func:`recause.tasks.train.config.resolve`). Where uplift is
identified the monitor is ``val/auuc_ipw``, the uplift ranking's Qini area estimated on the
validation log with the logged propensities (:class:`recause.tasks.train.data.UpliftCriterion`):
on the tuning world (seed 0) its best epoch had 98.5% of the best true CP@10 (Spearman 0.85 with
CP@10 over epochs), the outcome likelihood's 77% (bench/uplift_criterion.py). Being noisy, it
chooses the epoch after training (:class:`recause.tasks.train.callbacks.EpochChoice`) rather than
stopping it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from recause.tasks.data.schema import DatasetMeta
from recause.tasks.data.split import Split
from recause.tasks.train.config import Regime, ResolvedTrainConfig, TrainConfig, Variant, resolve
from recause.tasks.train.data import criterion_usable, has_labelled_exposure


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


@dataclass(frozen=True)
class Plan:
    """What one fit optimises and watches (decided before any training)."""

    objective: object  # recause.models.gnn.module.Objective
    heads: dict[str, str]
    encoders: tuple[str, ...]
    monitor: str
    mode: Literal["min", "max"]
    graph_edges: str
    identification: Identification
    note: str
    regime: Regime = "ranking"


@dataclass(frozen=True)
class ModelSpec:
    """One model to fit: its name, its settings (resolved once) and its plan."""

    name: str
    config: ResolvedTrainConfig
    plan: Plan


@dataclass(frozen=True)
class _Design:
    """The objective's arguments (all but the L2 and exposure weights, which come with the regime), heads, note."""

    objective: dict[str, Any]
    heads: dict[str, str]
    note: str

    @property
    def regime(self) -> Regime:
        if self.objective["kind"] == "bpr":
            return "ranking"
        return "uplift" if self.objective.get("unexposed", False) else "debias"


def _design(config: TrainConfig, variant: Variant, split: Split, meta: DatasetMeta) -> _Design:
    """The objective and heads ``variant`` gets on these data (see the module docstring)."""
    ident = identification(meta)
    labelled = has_labelled_exposure(split.train)
    organic = ident.identifiable and bool((~split.train["exposed"].fillna(False).astype(bool) & split.train["positive"]).any())
    if variant == "t_learner" and not (organic and labelled):
        raise ValueError(f"variant 't_learner' needs labelled exposed rows and unexposed outcomes; {meta.name} lacks them")
    if variant == "naive" or not labelled:
        if labelled and not organic:
            return _Design({"kind": "causal", "weighting": "none"}, {"exposed": "shared"},
                           "naive: unweighted cross-entropy on exposed rows")
        return _Design({"kind": "bpr"}, {"exposed": "shared"},
                       "BPR on every positive row" + ("" if labelled else " (no exposure information to correct with)"))
    if variant == "t_learner":
        return _Design({"kind": "causal", "weighting": "none", "unexposed": True, "detach_control": True,
                        "unexposed_weight": config.unexposed_weight},
                       {"exposed": "treated", "unexposed": "control"}, "T-learner: one network per arm")
    weighting = config.relevance_loss if config.relevance_loss != "auto" else ("none" if organic else "dr")
    heads = {"exposed": "shared", "propensity": "shared"}
    if organic:
        heads["unexposed"] = "shared"
    if weighting in ("dr", "sndr"):
        heads["imputation"] = "shared"
    objective = {
        "kind": "causal", "weighting": weighting, "propensity": config.propensity, "clip": config.clip,
        "train_propensity": True, "unexposed": organic, "targeted_weight": config.targeted_weight if organic else 0.0,
        "unexposed_weight": config.unexposed_weight,
    }
    note = f"causal: {weighting} exposed-row loss, learned exposure" + (", f0 and targeted regularisation" if organic else "")
    return _Design(objective, heads, note)


def plan_model(config: TrainConfig, split: Split, meta: DatasetMeta, *, seed: int, threads: int,
               variant: Variant | None = None, name: str | None = None) -> ModelSpec:
    """Plan one model (``variant``, default ``config.variant``) and resolve its settings, once.

    Raises ValueError when the data cannot support the variant (the reason says why).
    """
    from recause.models.gnn.module import Objective

    variant = variant or config.variant
    design = _design(config, variant, split, meta)
    resolved = resolve(config, variant, design.regime, seed, threads)
    if not design.objective.get("train_propensity"):  # no exposure model to regress (the T-learner, BPR): say so
        resolved = resolved.model_copy(update={"logged_propensity_weight": 0.0})
    objective = Objective(**design.objective, l2=resolved.l2, propensity_weight=resolved.propensity_weight,
                          logged_propensity_weight=resolved.logged_propensity_weight)
    if config.monitor is not None:
        monitor = config.monitor
    elif split.kind != "per_user":
        monitor = "val/auc"
    elif objective.kind == "bpr":
        monitor = "val/ndcg_at_20"
    elif "unexposed" in design.heads and criterion_usable(split):
        monitor = "val/auuc_ipw"  # uplift identified: the ranking's Qini on the validation log (bench/uplift_criterion.py)
    else:
        monitor = "val/outcome_loss"
    plan = Plan(
        objective, design.heads, tuple(dict.fromkeys(design.heads.values())), monitor,
        "min" if monitor.endswith("loss") else "max", "positives" if config.graph_edges == "auto" else config.graph_edges,
        identification(meta), design.note, design.regime,
    )
    return ModelSpec(name or f"gnn_{variant}", resolved, plan)


@dataclass(frozen=True)
class ModelPlans:
    """The models the stage will fit (the causal one first), and why the others are not fitted."""

    specs: tuple[ModelSpec, ...]
    identification: Identification
    skipped: dict[str, str]


def plan_models(config: TrainConfig, split: Split, meta: DatasetMeta, *, seed: int, threads: int) -> ModelPlans:
    """The causal model and the ``config.compare`` references the data support.

    A reference whose objective would equal the causal model's (no exposure information to correct
    with, e.g. MovieLens) is not planned twice: it is skipped and the reason says so. Where uplift
    is not identifiable, the causal model's uplift policy is skipped with the identification's reason.
    """
    ident = identification(meta)
    specs: list[ModelSpec] = []
    skipped: dict[str, str] = {}
    for variant in ["causal", *dict.fromkeys(config.compare)]:
        name = f"gnn_{variant}"
        try:
            spec = plan_model(config, split, meta, seed=seed, threads=threads, variant=variant, name=name)
        except ValueError as err:
            skipped[name] = str(err)
            continue
        causal = specs[0].plan if specs and specs[0].name == "gnn_causal" else None
        if causal is not None and spec.plan.objective == causal.objective and spec.plan.heads == causal.heads:
            skipped[name] = f"same objective as gnn_causal on {meta.name} ({spec.plan.note})"
            continue
        specs.append(spec)
    if specs and specs[0].name == "gnn_causal" and not ident.identifiable:
        skipped["gnn_causal_uplift"] = ident.reason
    return ModelPlans(tuple(specs), ident, skipped)
