r"""The causal recommender's training recipe (Lightning): objective, losses, optimiser, scoring.

Estimands, for user u and item i with graph states :math:`h_u, h_i` (:mod:`recause.models.gnn.encoders`):

- **propensity** :math:`g(u,i) = P(E=1 \mid u, i)`, the probability that the pair is exposed over
  the logging period, through an exposure intensity :math:`\lambda(u,i)` and
  :math:`g = 1 - e^{-\lambda}` (:func:`~recause.models.gnn.losses.cloglog_log_probs`);
- **outcome if exposed** :math:`f_1(u,i) \approx P(Y=1 \mid do(E=1))` in the top slot: the
  *debiased relevance*;
- **outcome if not exposed** :math:`f_0(u,i) \approx P(Y=1 \mid do(E=0))`, learned only where the
  data contain outcomes of unexposed pairs (organic finds);
- **uplift** :math:`\hat\tau(u,i) = f_1 - f_0`, the effect of recommending i to u;
- an **imputation** head m(u,i) (the naive outcome model of exposed rows) for doubly robust losses.

They are causal effects only under **consistency** (the logged outcome of an exposed pair is its
potential outcome Y(1), of an unexposed one Y(0)), **positivity** (0 < g < 1 for the pairs ranked)
and **no unmeasured confounding given the graph state**: :math:`E \perp (Y(0), Y(1)) \mid h_u, h_i`.
Exposed rows in slot k follow the examination hypothesis with an organic baseline,
:math:`P(Y=1 \mid \text{slot } k) = f_0 + \kappa_k (f_1 - f_0)`, :math:`\kappa_1 = 1` (learned κ).

Architecture (:mod:`recause.models.gnn.heads`): TARNet/DragonNet-style — one shared
representation (the encoder) feeding every head, trained jointly with targeted regularisation —
or, for the T-learner baseline, one encoder per arm.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import lightning as L
import numpy as np
import torch
from torch import Tensor

from recause.models.gnn.losses import (
    bce_prob,
    bpr_loss,
    cloglog_log_probs,
    dr_loss,
    examined_probability,
    ips_loss,
    logged_intensity_loss,
    population_nll,
    targeted_regularisation,
    thinned_log_probs,
)
from recause.models.gnn.encoders import BipartiteGraph
from recause.models.gnn.heads import CausalRecommender
from recause.models.gnn.item_offsets import shift_logits

Weighting = Literal["none", "ips", "snips", "dr", "sndr"]


@dataclass(frozen=True)
class Objective:
    """What the training step optimises (see :class:`CausalModule`).

    ``kind`` "bpr": implicit ranking of the ``exposed`` head. ``kind`` "causal": outcome of
    exposed rows (``weighting``: none / ips / snips / dr / sndr, with ``propensity`` learned by the
    propensity head or logged), the exposure model when ``train_propensity``, the unexposed outcome
    when ``unexposed``, targeted regularisation with weight ``targeted_weight``, and, with weight
    ``logged_propensity_weight``, the exposure model's regression on the log's propensities
    (:func:`~recause.models.gnn.losses.logged_intensity_loss`, on exposed rows that carry one).
    ``detach_control``: the exposed-row likelihood does not train f0 (T-learner).
    """

    kind: Literal["bpr", "causal"] = "bpr"
    weighting: Weighting = "none"
    propensity: Literal["learned", "logged"] = "learned"
    clip: float = 0.01
    train_propensity: bool = False
    unexposed: bool = False
    targeted_weight: float = 0.0
    propensity_weight: float = 1.0
    logged_propensity_weight: float = 0.0
    unexposed_weight: float = 1.0
    detach_control: bool = False
    l2: float = 1e-4

    def __post_init__(self) -> None:
        if self.weighting != "none" and self.propensity == "learned" and not self.train_propensity:
            raise ValueError(f"weighting={self.weighting!r} with learned propensities needs train_propensity=True")
        if self.targeted_weight > 0 and not (self.unexposed and self.train_propensity):
            raise ValueError("targeted regularisation needs both the unexposed outcome and the propensity head")
        if not 0.0 <= self.clip < 1.0:
            raise ValueError(f"clip must lie in [0, 1), got {self.clip}")
        if self.logged_propensity_weight > 0 and not self.train_propensity:
            raise ValueError("the regression on the logged propensities needs the exposure model (train_propensity=True)")


ScoreFn = Callable[[np.ndarray, str], np.ndarray]


class CausalModule(L.LightningModule):
    """Training recipe: losses, optimiser, metrics. The network is a :class:`CausalRecommender`.

    ``graph`` is the full training graph (kept off the state dict, moved to the device at fit).
    ``val_objective`` replaces the objective on validation batches (e.g. no weighting where the
    validation rows were exposed at random).
    ``val_metrics(score_fn)`` returns extra validation metrics (e.g. ``val/ndcg_at_20``), given
    ``score_fn(users, head) -> (n, n_items)`` probabilities (logits for the ``bpr`` objective).
    ``zero_start_lr``: the learning rate of the zero-started heads' V maps (:class:`~recause.models.gnn.heads.PairHead`'s
    ``zero_start``) as a multiple of ``lr``: how fast their own user–item term grows from nothing.
    """

    def __init__(self, model: CausalRecommender, graph: BipartiteGraph, objective: Objective, lr: float = 1e-3,
                 weight_decay: float = 0.0, val_metrics: Callable[[ScoreFn], dict[str, float]] | None = None,
                 val_objective: Objective | None = None, zero_start_lr: float = 1.0):
        super().__init__()
        if zero_start_lr <= 0:
            raise ValueError(f"zero_start_lr must be positive, got {zero_start_lr}")
        self.model, self.graph, self.train_objective = model, graph, objective
        self.val_objective = val_objective or objective
        self.lr, self.weight_decay, self.val_metrics, self.zero_start_lr = lr, weight_decay, val_metrics, zero_start_lr
        self._eval_states: dict[str, Tensor] | None = None
        self.snapshots: list[CausalRecommender] = []  # scored as one mean when set (use_snapshots)
        self._snapshot_states: list[dict[str, Tensor]] | None = None
        self.item_offsets: dict[str, np.ndarray] = {}  # head -> (n_items,) logit offsets (use_item_offsets)

    @property
    def objective(self) -> Objective:
        return self.train_objective if self.training else self.val_objective

    # ------------------------------------------------------------------ steps
    def model_step(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
        """Loss and its parts for one batch (train and validation share it)."""
        graph, to_global = self._graph_of(batch)
        states = self.model.states(graph)
        obj, parts = self.objective, {}
        if "bpr_u" in batch:
            negatives = batch["bpr_n"] if batch["bpr_n"].dim() == 2 else batch["bpr_n"].unsqueeze(1)
            # one call: the user states are projected once for the positive and the negatives
            logits = self.model.logit(states, "exposed", batch["bpr_u"], torch.cat([batch["bpr_p"].unsqueeze(1), negatives], 1))
            neg = logits[:, 1:] if batch["bpr_n"].dim() == 2 else logits[:, 1]
            parts["bpr"] = bpr_loss(logits[:, 0], neg)
            nodes = torch.cat([batch["bpr_u"], batch["bpr_p"], batch["bpr_n"].reshape(-1)])
            parts["l2"] = obj.l2 * self.model.id_embedding_norm(to_global(nodes)) / batch["bpr_u"].numel()
        if "exp_u" in batch:
            parts |= self._causal_parts(states, batch)
            nodes = torch.cat([batch[k] for k in ("exp_u", "exp_i", "uni_u", "uni_i")])
            parts["l2"] = obj.l2 * self.model.id_embedding_norm(to_global(nodes)) / batch["exp_u"].numel()
        return sum(parts.values()), parts

    def _causal_parts(self, states: dict[str, Tensor], b: dict[str, Tensor]) -> dict[str, Tensor]:
        obj, parts = self.objective, {}
        keys = [k for k in ("exp_u", "exp_i", "pos_u", "pos_i", "org_u", "org_i", "uni_u", "uni_i") if k in b]
        tables = self.model.tables(states, torch.unique(torch.cat([b[k] for k in keys])))
        m = _Tabled(self.model, tables)
        sig = torch.sigmoid
        f1 = sig(m.logit(states, "exposed", b["exp_u"], b["exp_i"]))
        kappa = m.examination(b["exp_slot"])
        f0 = torch.zeros_like(f1)
        if obj.unexposed:
            f0 = sig(m.logit(states, "unexposed", b["exp_u"], b["exp_i"]))
            f0 = f0.detach() if obj.detach_control else f0
        q = examined_probability(f0, f1, kappa)
        row_loss = bce_prob(q, b["exp_y"])
        if obj.weighting == "none":
            parts["exposed"] = row_loss.mean()
        else:
            g = b["exp_lp"] if obj.propensity == "logged" else self._propensity(m, states, b["exp_u"], b["exp_i"], b["exp_r"]).detach()
            kw = dict(clip=obj.clip, self_normalise=obj.weighting in ("snips", "sndr"), observed_share=float(b["exp_share"]),
                      row_weight=b["exp_pw"])
            if obj.weighting in ("ips", "snips"):
                parts["exposed"] = ips_loss(row_loss, g, **kw)
            else:
                m_row = examined_probability(f0.detach(), sig(m.logit(states, "imputation", b["exp_u"], b["exp_i"])), kappa)
                f1_uni = sig(m.logit(states, "exposed", b["uni_u"], b["uni_i"]))
                m_uni = sig(m.logit(states, "imputation", b["uni_u"], b["uni_i"]))
                parts["exposed"] = dr_loss(q, b["exp_y"], g, m_row, f1_uni, m_uni, **kw)
                parts["imputation"] = bce_prob(m_row, b["exp_y"]).mean()
        if obj.train_propensity:
            log_p, _ = cloglog_log_probs(m.logit(states, "propensity", b["pos_u"], b["pos_i"]), b["pos_r"])
            _, log_q = cloglog_log_probs(m.logit(states, "propensity", b["uni_u"], b["uni_i"]), b["uni_r"])
            parts["propensity"] = obj.propensity_weight * population_nll(log_p, log_q, 1.0 - b["uni_e"], float(b["pos_share"]))
            if obj.logged_propensity_weight > 0:
                x = m.logit(states, "propensity", b["exp_u"], b["exp_i"])
                parts["logged_propensity"] = obj.logged_propensity_weight * logged_intensity_loss(
                    x, b["exp_lp"], b["exp_r"], b["exp_pw"])
        if obj.unexposed:
            log_p, _ = thinned_log_probs(m.logit(states, "unexposed", b["org_u"], b["org_i"]), b["org_r"])
            _, log_q = thinned_log_probs(m.logit(states, "unexposed", b["uni_u"], b["uni_i"]), b["uni_r"])
            negative = (1.0 - b["uni_e"]) * (1.0 - b["uni_f"])
            parts["unexposed"] = obj.unexposed_weight * population_nll(log_p, log_q, negative, float(b["org_share"]))
        if obj.targeted_weight > 0:
            treated = b["uni_e"]
            p1 = sig(m.logit(states, "exposed", b["uni_u"], b["uni_i"]))
            p0 = sig(m.logit(states, "unexposed", b["uni_u"], b["uni_i"]))
            q1 = examined_probability(p0, p1, m.mean_examination())
            q = torch.where(treated > 0, q1, b["uni_r"] * p0)
            y = torch.where(treated > 0, b["uni_y1"], b["uni_f"])
            g = self._propensity(m, states, b["uni_u"], b["uni_i"], b["uni_r"])
            parts["targeted"] = obj.targeted_weight * targeted_regularisation(y, q, treated, g, m.epsilon)
        return parts

    @staticmethod
    def _propensity(m, states: dict[str, Tensor], users: Tensor, items: Tensor, exposure: Tensor | float = 1.0) -> Tensor:
        """P(exposed within a share ``exposure`` of the log) = 1 - exp(-exposure · λ)."""
        log_p, _ = cloglog_log_probs(m.logit(states, "propensity", users, items), exposure)
        return log_p.exp()

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        self.forget_states()
        loss, parts = self.model_step(batch)
        n = self._batch_size(batch)
        # under DDP each process sees a shard: the epoch means are synced (once per epoch; a no-op in one process)
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=n, prog_bar=True, sync_dist=True)
        for name, value in parts.items():
            self.log(f"train/{name}", value, on_step=False, on_epoch=True, batch_size=n, sync_dist=True)
        return loss

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        # every process validates on the whole set with the same weights: no sync needed
        loss, parts = self.model_step(batch)
        n = self._batch_size(batch)
        self.log("val/loss", loss, on_epoch=True, batch_size=n, prog_bar=True)
        for name, value in parts.items():
            self.log(f"val/{name}", value, on_epoch=True, batch_size=n)
        outcome = [parts[k] for k in ("exposed", "unexposed") if k in parts]
        if outcome:  # the outcome models' likelihood alone: what early stopping of the causal objective watches
            self.log("val/outcome_loss", sum(outcome), on_epoch=True, batch_size=n)

    def on_validation_epoch_end(self) -> None:
        if self.val_metrics is not None and not self.trainer.sanity_checking:
            for name, value in self.val_metrics(self.scores).items():
                self.log(name, float(value), prog_bar=name.endswith(("auc", "ndcg_at_20")))
        self.forget_states()

    def configure_optimizers(self):
        """Adam; ID embeddings without weight decay (their L2 is in the loss, per batch); the
        examination probabilities, ε and the exposure covariate's scales — a handful of scalars with
        tiny gradients — at 30× the rate; the zero-started heads' V maps at ``zero_start_lr`` × the rate."""
        named = dict(self.named_parameters())
        embeddings = [p for n, p in named.items() if n.endswith("input.embedding.weight")]
        scalars = list({id(p): p for p in (self.model.examination_logit, self.model.epsilon,
                                           *self.model.exposure_scale.values())}.values())  # a shared scale once
        started = [head.item.weight for head in self.model.heads.values() if head.zero_start]
        taken = {id(p) for p in embeddings + scalars + started}
        others = [p for p in named.values() if id(p) not in taken]
        return torch.optim.Adam([
            {"params": embeddings, "weight_decay": 0.0},
            {"params": scalars, "weight_decay": 0.0, "lr": 30 * self.lr},
            {"params": others, "weight_decay": self.weight_decay},
            {"params": started, "weight_decay": self.weight_decay, "lr": self.zero_start_lr * self.lr},
        ], lr=self.lr)

    # ------------------------------------------------------------------ scoring
    def forget_states(self) -> None:
        """Drop the cached eval-mode states (after the weights change, e.g. a restored checkpoint), the
        snapshots' too."""
        self._eval_states = self._snapshot_states = None

    @torch.no_grad()
    def full_states(self, text: Tensor | None = None) -> dict[str, Tensor]:
        """Node states of the full graph in eval mode (cached until the next training step); with
        ``text`` (n_users + n_items, t), the states the graph would have with that text (not cached)."""
        if text is not None:
            was_training = self.training
            self.eval()
            states = self.model.states(self.full_graph(), text.to(self.device))
            self.train(was_training)
            return states
        if self._eval_states is None:
            was_training = self.training
            self.eval()
            self._eval_states = self.model.states(self.full_graph())
            self.train(was_training)
        return self._eval_states

    @torch.no_grad()
    def scores(self, users: np.ndarray, head: str) -> np.ndarray:
        """(n, n_items) scores of ``head`` for user indices ``users``.

        Probabilities for outcome heads (``exposed``, ``unexposed``, ``imputation``), except under
        the ``bpr`` objective, whose ``exposed`` head is a ranking logit; P(E=1) over the whole
        log for ``propensity``.
        With snapshots (:meth:`use_snapshots`), the mean of the snapshots' scores; with item offsets for the head
        (:meth:`use_item_offsets`), that probability shifted by its item's offset on the logit scale.
        """
        n_u, device = self.model.n_users, self.device
        items = torch.arange(self.graph.n_items, device=device) + n_u
        u = torch.as_tensor(np.asarray(users), dtype=torch.long, device=device)
        if not self.snapshots:
            out = self._grid_scores(self.model, self.full_states(), head, u, items).double().cpu().numpy()
        else:
            if self._snapshot_states is None:
                graph = self.full_graph()
                self._snapshot_states = [model.states(graph) for model in self.snapshots]
            total = sum(self._grid_scores(model, states, head, u, items).double()
                        for model, states in zip(self.snapshots, self._snapshot_states))
            out = (total / len(self.snapshots)).cpu().numpy()
        offsets = self.item_offsets.get(head)
        return out if offsets is None else shift_logits(out, offsets)

    def use_item_offsets(self, offsets: dict[str, np.ndarray]) -> None:
        """Score each named head's probability as σ(logit p + e_i) with its per-item offsets (n_items,) — f1's
        empirical-Bayes item effects (:mod:`recause.models.gnn.item_offsets`); an empty dict removes them. Only
        :meth:`scores` reads them (the training steps, the node states and the folded heads do not)."""
        for head, e in offsets.items():
            if head not in self.model.heads or head == "propensity" or np.shape(e) != (self.graph.n_items,):
                raise ValueError(f"item offsets need an outcome head and (n_items,) = ({self.graph.n_items},) values, "
                                 f"got {head!r} with shape {np.shape(e)}")
        self.item_offsets = {head: np.asarray(e, np.float64) for head, e in offsets.items()}

    def _grid_scores(self, model: CausalRecommender, states: dict[str, Tensor], head: str, users: Tensor,
                     items: Tensor) -> Tensor:
        logits = model.grid(states, head, users, items)
        if head == "propensity":
            return -torch.expm1(-logits.exp())
        if head == "exposed" and self.objective.kind == "bpr":
            return logits
        return torch.sigmoid(logits)

    def use_snapshots(self, states: Sequence[dict[str, Tensor]]) -> None:
        """Score as a snapshot ensemble: :meth:`scores` becomes the mean, head by head, of the scores of
        models with these weights (this module's ``state_dict()`` s, e.g. of several validation checks),
        each in eval mode; the module's own weights stay as they are and serve everything else (the
        node states, the examination, the checkpoint). An empty sequence scores with the module's own
        weights again. The copies share the module's text buffers."""
        shared = {id(buffer): buffer for buffer in self.model.buffers()}
        models = []
        for state in states:
            model = copy.deepcopy(self.model, memo=dict(shared))
            model.load_state_dict({k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")})
            models.append(model.to(self.device).eval().requires_grad_(False))
        self.snapshots, self._snapshot_states = models, None

    def full_graph(self) -> BipartiteGraph:
        """The training graph on the module's device (moved there on first use)."""
        if self.graph.adjacency.device != self.device:
            self.graph = self.graph.to(self.device)
        return self.graph

    # ------------------------------------------------------------------ helpers
    def _graph_of(self, batch: dict[str, Tensor]) -> tuple[BipartiteGraph, Callable[[Tensor], Tensor]]:
        if "sub_nodes" not in batch:
            return self.full_graph(), (lambda nodes: nodes)
        full = self.full_graph()
        sub = BipartiteGraph.from_sample(full.n_users, full.n_items, batch["sub_nodes"], batch["sub_edges"], full.degree)
        return sub, (lambda nodes: batch["sub_nodes"][nodes])

    @staticmethod
    def _batch_size(batch: dict[str, Tensor]) -> int:
        key = "bpr_u" if "bpr_u" in batch else "exp_u"
        return int(batch[key].numel())


class _Tabled:
    """A :class:`CausalRecommender` view whose ``logit`` gathers from precomputed head tables."""

    def __init__(self, model: CausalRecommender, tables):
        self.model, self.tables = model, tables

    def logit(self, states, head, users, items):
        return self.model.logit(states, head, users, items, self.tables)

    def __getattr__(self, name):
        return getattr(self.model, name)


def logit(p: float) -> float:
    """log(p / (1 - p)) of a base rate, for head biases."""
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def log_intensity(p: float) -> float:
    """log(-log(1 - p)): the propensity head's bias for an exposure rate p."""
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(-math.log1p(-p))
