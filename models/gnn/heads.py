r"""The causal recommender's network: graph encoder(s) feeding four bilinear pair heads.

Heads (:data:`HEADS`), each a :class:`PairHead` on the states of one encoder:

- ``propensity``: the exposure intensity λ(u,i), with g = P(E=1 | u,i) = 1 − e^{−λ};
- ``exposed``: f1(u,i) ≈ P(Y=1 | do(E=1)) in the top slot (the debiased relevance);
- ``unexposed``: f0(u,i) ≈ P(Y=1 | do(E=0));
- ``imputation``: the naive outcome model m(u,i) of exposed rows (doubly robust losses).

Each head is bilinear in the states, so scoring a user against the whole catalogue is one matrix
product. The training recipe (losses, optimiser, metrics) is :mod:`recause.models.gnn.module`.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from recause.models.gnn.encoders import BipartiteGraph, GraphEncoder

HEADS = ("exposed", "unexposed", "propensity", "imputation")

HeadKind = Literal["bilinear", "dot"]


class PairHead(nn.Module):
    r"""A bilinear pair score :math:`s(u,i) = \langle U h_u, V h_i\rangle + a^\top h_u + b^\top h_i + c`.

    Initialised with U = V = I and a = b = 0, so it starts as LightGCN's dot product plus a
    constant ``bias`` (set it to the logit of the base rate for a calibrated start). ``kind="dot"``
    keeps it there: :math:`s = \langle h_u, h_i\rangle + c`, LightGCN's plain inner product.
    """

    def __init__(self, dim: int, bias: float = 0.0, kind: HeadKind = "bilinear"):
        super().__init__()
        if kind not in ("bilinear", "dot"):
            raise ValueError(f"head kind must be 'bilinear' or 'dot', got {kind!r}")
        self.kind = kind
        self.user = nn.Linear(dim, dim, bias=False) if kind == "bilinear" else nn.Identity()
        self.item = nn.Linear(dim, dim, bias=False) if kind == "bilinear" else nn.Identity()
        self.user_bias = nn.Linear(dim, 1)
        self.item_bias = nn.Linear(dim, 1, bias=False)
        self.initial_bias = bias
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.kind == "bilinear":
            nn.init.eye_(self.user.weight)
            nn.init.eye_(self.item.weight)
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
    """

    def __init__(self, encoders: dict[str, GraphEncoder], head_encoder: dict[str, str],
                 head_bias: dict[str, float] | None = None, n_slots: int = 0, dropout: float = 0.0,
                 head_kind: HeadKind = "bilinear"):
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
        self.heads = nn.ModuleDict({h: PairHead(dim, bias.get(h, 0.0), head_kind) for h in head_encoder})
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
        (nodes, user table, item table); pair logits are then gathers and a dot product."""
        out = {}
        for head, module in self.heads.items():
            h = states[self.head_encoder[head]][nodes]
            out[head] = (nodes, module.user_table(h), module.item_table(h))
        return out

    def logit(self, states: dict[str, Tensor], head: str, users: Tensor, items: Tensor, tables=None) -> Tensor:
        """Head logits of aligned node positions; ``items`` may be (B, k) against (B,) users.

        With ``tables`` (from :meth:`tables`), gathers precomputed factors instead of projecting
        every pair's states: one projection per node and head per step.
        """
        if tables is not None:
            nodes, user_side, item_side = tables[head]
            a = user_side[torch.searchsorted(nodes, users)]
            b = item_side[torch.searchsorted(nodes, items)]
            if items.dim() == 2:
                a = a.unsqueeze(1)
            return (a * b).sum(-1)
        s = states[self.head_encoder[head]]
        h_u = s[users]
        if items.dim() == 2:
            h_u = h_u.unsqueeze(1)
        return self.heads[head](h_u, s[items])

    def grid(self, states: dict[str, Tensor], head: str, users: Tensor, items: Tensor) -> Tensor:
        """(n_users_in_block, n_items) logits of node positions ``users`` × ``items``."""
        s = states[self.head_encoder[head]]
        return self.heads[head].grid(s[users], s[items])

    def examination(self, slot: Tensor) -> Tensor:
        """κ of each 0-based ``slot`` (B,); 1 for slot 0 and for rows without a slot (-1)."""
        kappa = torch.cat([torch.ones(1, device=slot.device), torch.sigmoid(self.examination_logit)])
        return torch.where(slot >= 0, kappa[slot.clamp(0, kappa.numel() - 1)], torch.ones_like(slot, dtype=kappa.dtype))

    def mean_examination(self) -> Tensor:
        return torch.cat([torch.ones(1, device=self.epsilon.device), torch.sigmoid(self.examination_logit)]).mean()

    def id_embedding_norm(self, global_ids: Tensor) -> Tensor:
        """Σ over encoders of the squared norms of these nodes' ID embeddings."""
        return sum(enc.input.embedding(global_ids).pow(2).sum() for enc in self.encoders.values())
