r"""The causal recommender's network: graph encoder(s) feeding four bilinear pair heads.

Heads (:data:`HEADS`), each a :class:`PairHead` on the states of one encoder:

- ``propensity``: the exposure intensity λ(u,i), with g = P(E=1 | u,i) = 1 − e^{−λ};
- ``exposed``: f1(u,i) ≈ P(Y=1 | do(E=1)) in the top slot (the debiased relevance);
- ``unexposed``: f0(u,i) ≈ P(Y=1 | do(E=0));
- ``imputation``: the naive outcome model m(u,i) of exposed rows (doubly robust losses).

Each head is bilinear in the states, so scoring a user against the whole catalogue is one matrix
product. Outcome heads may also read the exposure model as a covariate (``exposure_covariate``): their
logit adds :math:`s_h\,\tilde\lambda(u,i)`, with a learned scale :math:`s_h` that starts at 0 and

.. math:: \tilde\lambda(u,i) = \langle U(h_u - \bar h_U),\; V(h_i - \bar h_I)\rangle

the propensity head's log-intensity with its user and item main effects removed (double-centred over
the population: :math:`\bar h_U`, :math:`\bar h_I` are the mean user and item states) and its gradient
stopped. It is the practice of putting the estimated propensity into the outcome model (Hahn, Murray
and Carvalho, *Bayesian Analysis* 2020): the outcome heads, fitted on few outcomes, inherit the
user–item structure the exposure model learns from every impression. Centring keeps the exposure
model's item effects (popularity, which drives exposure but not persuasion) out of it: each outcome
head learns its own item and user effects from outcomes. The scale may be one for f1 and f0
(``shared_exposure_scale``), and a head's may vary by item (``item_exposure_scale``: :math:`s_h + \delta_h[i]`).

The training recipe (losses, optimiser, metrics) is :mod:`recause.models.gnn.module`.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from recause.models.gnn.encoders import BipartiteGraph, GraphEncoder

HEADS = ("exposed", "unexposed", "propensity", "imputation")

HeadKind = Literal["bilinear", "dot"]

EXPOSURE = "exposure covariate"
"""The key of the exposure covariate's factors in :meth:`CausalRecommender.tables` (not a head's name)."""


class PairHead(nn.Module):
    r"""A bilinear pair score :math:`s(u,i) = \langle U h_u, V h_i\rangle + a^\top h_u + b^\top h_i + c`.

    Initialised with U = V = I and a = b = 0, so it starts as LightGCN's dot product plus a
    constant ``bias`` (set it to the logit of the base rate for a calibrated start). ``kind="dot"``
    keeps it there: :math:`s = \langle h_u, h_i\rangle + c`, LightGCN's plain inner product.
    ``zero_start``: V starts at 0 instead (U at I, so V's gradient is not 0), and the bilinear term
    grows from nothing — the head starts as its main effects (and whatever covariate its model adds).
    """

    def __init__(self, dim: int, bias: float = 0.0, kind: HeadKind = "bilinear", zero_start: bool = False):
        super().__init__()
        if kind not in ("bilinear", "dot"):
            raise ValueError(f"head kind must be 'bilinear' or 'dot', got {kind!r}")
        if zero_start and kind == "dot":
            raise ValueError("a dot head has no bilinear map to start at zero (zero_start needs kind='bilinear')")
        self.kind, self.zero_start = kind, zero_start
        self.user = nn.Linear(dim, dim, bias=False) if kind == "bilinear" else nn.Identity()
        self.item = nn.Linear(dim, dim, bias=False) if kind == "bilinear" else nn.Identity()
        self.user_bias = nn.Linear(dim, 1)
        self.item_bias = nn.Linear(dim, 1, bias=False)
        self.initial_bias = bias
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.kind == "bilinear":
            nn.init.eye_(self.user.weight)
            (nn.init.zeros_ if self.zero_start else nn.init.eye_)(self.item.weight)
        nn.init.zeros_(self.user_bias.weight)
        nn.init.constant_(self.user_bias.bias, self.initial_bias)
        nn.init.zeros_(self.item_bias.weight)
        if self.kind == "dot":  # LightGCN's plain inner product plus the constant: no state-dependent biases
            self.user_bias.weight.requires_grad_(False)
            self.item_bias.weight.requires_grad_(False)

    def forward(self, h_user: Tensor, h_item: Tensor) -> Tensor:
        """Aligned pairs: (..., d) and (..., d) broadcastable -> (...) logits."""
        return (self.user_table(h_user) * self.item_table(h_item)).sum(-1)

    def user_table(self, h: Tensor) -> Tensor:
        """(n, d+2) user-side factors [U h, aᵀh + c, 1]: a pair's logit is their dot product with the item side."""
        return torch.cat([self.user(h), self.user_bias(h), torch.ones_like(h[..., :1])], dim=-1)

    def item_table(self, h: Tensor) -> Tensor:
        """(n, d+2) item-side factors [V h, 1, bᵀh]."""
        return torch.cat([self.item(h), torch.ones_like(h[..., :1]), self.item_bias(h)], dim=-1)

    def grid(self, h_user: Tensor, h_item: Tensor) -> Tensor:
        """Every user against every item: (n, d), (m, d) -> (n, m) logits."""
        return self.user_table(h_user) @ self.item_table(h_item).T

    def interaction(self, h_user: Tensor, h_item: Tensor) -> Tensor:
        """The bilinear term alone, :math:`\langle U h_u, V h_i\rangle`: aligned (..., d) pairs -> (...)."""
        return (self.user(h_user) * self.item(h_item)).sum(-1)

    def interaction_grid(self, h_user: Tensor, h_item: Tensor) -> Tensor:
        """The bilinear term of every user against every item: (n, d), (m, d) -> (n, m)."""
        return self.user(h_user) @ self.item(h_item).T


class CausalRecommender(nn.Module):
    """Encoder(s) plus pair heads. ``head_encoder`` maps each head to the encoder it reads.

    Parameters
    ----------
    encoders : name -> :class:`~recause.models.gnn.encoders.GraphEncoder`; one ``"shared"`` encoder (TARNet /
        DragonNet) or one per arm (T-learner).
    head_encoder : head name (subset of :data:`HEADS`) -> encoder name.
    head_bias : initial constant of each head (e.g. logit of its base rate).
    n_slots : slate positions (0 = the data have none); κ_1 = 1, κ_k = σ(θ_k) for k ≥ 2.
    dropout : dropout on the node states while training.
    head_kind : ``bilinear`` (every head, default) or ``dot`` (LightGCN's inner product, :class:`PairHead`).
    exposure_covariate : heads whose logit adds s_h · λ̃(u,i), the ``propensity`` head's log exposure
        intensity double-centred over the population (:meth:`exposure_interaction`), with a learned
        scale s_h that starts at 0. Needs the full graph's states (not a sampled subgraph).
    shared_exposure_scale : one scale s for every head that reads the covariate instead of one per head. For f1 and
        f0 the covariate then shifts both potential outcomes' logits alike — it is prognostic, as Bayesian causal
        forests put the estimated propensity into the prognostic function μ(x) and not into the effect τ(x) (Hahn,
        Murray and Carvalho, 2020) — and the effect's own dependence on the user–item pair comes from the heads' own
        terms (and the links' curvature).
    item_exposure_scale : heads (among ``exposure_covariate``) whose scale also has a free deviation per item,
        :math:`(s + \delta_h[i])\,\tilde\lambda(u,i)`, each :math:`\delta_h[i]` starting at 0: how much interest the
        exposure model sees raises an outcome may differ by item (where organic discovery is high, a
        recommendation adds less to it). A δ moves only where its item's f1 enters the loss (the item's impressions, the
        uniform pairs of the targeted regularisation), so a rarely shown item's stays near 0.
    zero_start : heads whose own bilinear term starts at zero (:class:`PairHead`'s ``zero_start``) instead of the
        states' dot product: an outcome head that reads the exposure covariate then starts as its main effects plus
        the covariate, and its own user–item term grows only as far as its outcomes carry it before early stopping.
    """

    def __init__(self, encoders: dict[str, GraphEncoder], head_encoder: dict[str, str],
                 head_bias: dict[str, float] | None = None, n_slots: int = 0, dropout: float = 0.0,
                 head_kind: HeadKind = "bilinear", exposure_covariate: tuple[str, ...] = (),
                 shared_exposure_scale: bool = False, item_exposure_scale: tuple[str, ...] = (),
                 zero_start: tuple[str, ...] = ()):
        super().__init__()
        unknown = set(head_encoder) - set(HEADS)
        if unknown or not set(head_encoder.values()) <= set(encoders):
            raise ValueError(f"heads must be among {HEADS} and read one of {sorted(encoders)}, got {head_encoder}")
        dims = {e.dim for e in encoders.values()}
        if len(dims) != 1:
            raise ValueError(f"all encoders must share one state size, got {sorted(dims)}")
        self.encoders = nn.ModuleDict(encoders)
        self.head_encoder = dict(head_encoder)
        dim, bias = dims.pop(), head_bias or {}
        if not set(zero_start) <= set(head_encoder):
            raise ValueError(f"zero_start names heads among {sorted(head_encoder)}, got {tuple(zero_start)}")
        self.heads = nn.ModuleDict({h: PairHead(dim, bias.get(h, 0.0), head_kind, zero_start=h in zero_start)
                                    for h in head_encoder})
        covariate = tuple(exposure_covariate)
        if covariate and ("propensity" not in head_encoder or not set(covariate) <= set(head_encoder) - {"propensity"}):
            raise ValueError(f"exposure_covariate needs the propensity head and names other heads, got {covariate} "
                             f"with heads {sorted(head_encoder)}")
        shared = nn.Parameter(torch.zeros(())) if shared_exposure_scale else None
        # shared: the same Parameter under every head's key (the state dict lists it per head, the optimiser once)
        self.exposure_scale = nn.ParameterDict({h: shared if shared is not None else nn.Parameter(torch.zeros(()))
                                                for h in covariate})
        if not set(item_exposure_scale) <= set(covariate):
            raise ValueError(f"item_exposure_scale names heads that read the exposure covariate ({covariate}), "
                             f"got {tuple(item_exposure_scale)}")
        n_items = next(iter(encoders.values())).n_items
        self.item_exposure_scale = nn.ParameterDict({h: nn.Parameter(torch.zeros(n_items)) for h in item_exposure_scale})
        self.examination_logit = nn.Parameter(torch.zeros(max(n_slots - 1, 0)))
        self.epsilon = nn.Parameter(torch.zeros(()))  # targeted regularisation's fluctuation
        self.dropout = nn.Dropout(dropout)

    @property
    def n_users(self) -> int:
        return next(iter(self.encoders.values())).n_users

    def states(self, graph: BipartiteGraph, text: Tensor | None = None) -> dict[str, Tensor]:
        """Final node states of every encoder: name -> (graph.n_nodes, d) (dropout in training);
        ``text`` (n_users + n_items, t) replaces the nodes' stored text embeddings."""
        return {name: self.dropout(enc(graph, text)) for name, enc in self.encoders.items()}

    def tables(self, states: dict[str, Tensor], nodes: Tensor) -> dict[str, tuple[Tensor, Tensor, Tensor]]:
        """Per head, the user- and item-side factors of ``nodes`` (sorted unique node positions):
        (nodes, user table, item table); pair logits are then gathers and a dot product. With the exposure
        covariate, ``EXPOSURE`` holds its factors, U(h − h̄_U) and V(h − h̄_I) of the propensity head, detached."""
        out = {}
        for head, module in self.heads.items():
            h = states[self.head_encoder[head]][nodes]
            out[head] = (nodes, module.user_table(h), module.item_table(h))
        if self.exposure_scale:
            centred_user, centred_item = self._centred(states)
            propensity = self.heads["propensity"]
            with torch.no_grad():
                out[EXPOSURE] = (nodes, propensity.user(centred_user[nodes]), propensity.item(centred_item[nodes]))
        return out

    def logit(self, states: dict[str, Tensor], head: str, users: Tensor, items: Tensor, tables=None) -> Tensor:
        """Head logits of aligned node positions; ``items`` may be (B, k) against (B,) users.

        With ``tables`` (from :meth:`tables`), gathers precomputed factors instead of projecting
        every pair's states: one projection per node and head per step.
        """
        if tables is not None:
            own = _gathered(tables[head], users, items)
        else:
            s = states[self.head_encoder[head]]
            h_u = s[users]
            if items.dim() == 2:
                h_u = h_u.unsqueeze(1)
            own = self.heads[head](h_u, s[items])
        if head not in self.exposure_scale:
            return own
        if tables is not None:
            covariate = _gathered(tables[EXPOSURE], users, items)
        else:
            centred_user, centred_item = self._centred(states)
            if items.dim() == 2:
                users = users.unsqueeze(1)
            covariate = self.heads["propensity"].interaction(centred_user[users], centred_item[items]).detach()
        return own + self._scale(head, items) * covariate

    def grid(self, states: dict[str, Tensor], head: str, users: Tensor, items: Tensor) -> Tensor:
        """(n_users_in_block, n_items) logits of node positions ``users`` × ``items``."""
        s = states[self.head_encoder[head]]
        own = self.heads[head].grid(s[users], s[items])
        if head not in self.exposure_scale:
            return own
        return own + self._scale(head, items).unsqueeze(0) * self.exposure_interaction(states, users, items)

    def _scale(self, head: str, items: Tensor) -> Tensor:
        """The covariate's scale of ``head`` at item node positions ``items`` (any shape): s_h, plus δ_h[i] where the
        head has per-item deviations (then shaped like ``items``)."""
        scale = self.exposure_scale[head]
        if head in self.item_exposure_scale:
            scale = scale + self.item_exposure_scale[head][items - self.n_users]
        return scale

    def exposure_interaction(self, states: dict[str, Tensor], users: Tensor, items: Tensor) -> Tensor:
        r"""(n_users_in_block, n_items) :math:`\tilde\lambda(u,i) = \langle U(h_u - \bar h_U), V(h_i - \bar h_I)\rangle`:
        the propensity head's log-intensity at node positions ``users`` × ``items`` less its user and item
        means over the population (for a bilinear score the double-centred score is exactly this), without
        gradient."""
        centred_user, centred_item = self._centred(states)
        return self.heads["propensity"].interaction_grid(centred_user[users], centred_item[items]).detach()

    @torch.no_grad()
    def standalone_heads(self, mean_user: Tensor, mean_item: Tensor) -> dict[str, PairHead]:
        r"""Every head as one bilinear :class:`PairHead` of the node states alone, the exposure covariate
        folded in where a head reads it (exactly, given the population's mean states ``mean_user``,
        ``mean_item`` (d,)): with :math:`P = U_p^\top V_p` of the propensity head and scale s,

        .. math:: \langle Uh_u, Vh_i\rangle + a^\top h_u + b^\top h_i + c + s\,(h_u - \bar h_U)^\top P\,(h_i - \bar h_I)
                  = h_u^\top (U^\top V + sP)\, h_i + (a - sP\bar h_I)^\top h_u + (b - sP^\top \bar h_U)^\top h_i
                  + c + s\,\bar h_U^\top P\,\bar h_I .

        For a model that hands its heads on (the simulator starts from the outcome heads). Per-item deviations of
        the scale (``item_exposure_scale``) are not a bilinear term of the states and are left out: there the folded
        head is the model's with every :math:`\delta_h[i] = 0`, a start rather than a copy."""
        out = {}
        for name, head in self.heads.items():
            if name not in self.exposure_scale:
                out[name] = head
                continue
            dim = mean_user.numel()
            eye = torch.eye(dim, dtype=mean_user.dtype, device=mean_user.device)
            weight = lambda m: m.weight if isinstance(m, nn.Linear) else eye  # noqa: E731  (the dot kind: identity)
            propensity, scale = self.heads["propensity"], self.exposure_scale[name]
            p = weight(propensity.user).T @ weight(propensity.item)
            folded = PairHead(dim, 0.0, "bilinear").to(device=mean_user.device, dtype=mean_user.dtype)
            folded.user.weight.copy_(eye)
            folded.item.weight.copy_(weight(head.user).T @ weight(head.item) + scale * p)
            folded.user_bias.weight.copy_(head.user_bias.weight - scale * (p @ mean_item)[None, :])
            folded.user_bias.bias.copy_(head.user_bias.bias + scale * (mean_user @ p @ mean_item))
            folded.item_bias.weight.copy_(head.item_bias.weight - scale * (p.T @ mean_user)[None, :])
            out[name] = folded
        return out

    def _centred(self, states: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
        """The propensity encoder's states less the mean user state and less the mean item state, detached:
        two (n_nodes, d) tensors indexed by node position (the first for user rows, the second for item rows)."""
        s = states[self.head_encoder["propensity"]].detach()
        n_users = self.n_users
        if s.shape[0] != n_users + next(iter(self.encoders.values())).n_items:
            raise ValueError("the exposure covariate needs the full graph's node states (not a sampled subgraph)")
        return s - s[:n_users].mean(0), s - s[n_users:].mean(0)

    def examination(self, slot: Tensor) -> Tensor:
        """κ of each 0-based ``slot`` (B,); 1 for slot 0 and for rows without a slot (-1)."""
        kappa = torch.cat([torch.ones(1, device=slot.device), torch.sigmoid(self.examination_logit)])
        return torch.where(slot >= 0, kappa[slot.clamp(0, kappa.numel() - 1)], torch.ones_like(slot, dtype=kappa.dtype))

    def mean_examination(self) -> Tensor:
        return torch.cat([torch.ones(1, device=self.epsilon.device), torch.sigmoid(self.examination_logit)]).mean()

    def id_embedding_norm(self, global_ids: Tensor) -> Tensor:
        """Σ over encoders of the squared norms of these nodes' ID embeddings."""
        return sum(enc.input.embedding(global_ids).pow(2).sum() for enc in self.encoders.values())


def _gathered(table: tuple[Tensor, Tensor, Tensor], users: Tensor, items: Tensor) -> Tensor:
    """Pair scores from one entry of :meth:`CausalRecommender.tables`: (nodes, user side, item side) gathered at
    node positions ``users`` (B,) and ``items`` (B,) or (B, k), then a dot product."""
    nodes, user_side, item_side = table
    a = user_side[torch.searchsorted(nodes, users)]
    b = item_side[torch.searchsorted(nodes, items)]
    if items.dim() == 2:
        a = a.unsqueeze(1)
    return (a * b).sum(-1)
