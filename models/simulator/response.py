r"""The response generator: the joint clicks of a whole slate, given who is shown what and where.

A user's state :math:`x_u` and an item's state :math:`x_i` (the causal GNN's node states, or
features and text embeddings) pass through towers :math:`T_u, T_i` (identity for GNN states) to
:math:`h_u, h_i`; two bilinear pair heads (:class:`~recause.models.gnn.heads.PairHead`) give logits,
and one noise draw :math:`\varepsilon \sim N(0, 1)` per slate, shared by its slots, shifts them:

.. math::

    p_0 &= \sigma(a(h_u, h_i) + s_0\varepsilon) \quad\text{(the user finds the item anyway: } P(Y=1 \mid do(E=0))\text{)}\\
    p_1 &= \sigma(b(h_u, h_i) + s_1\varepsilon) \quad\text{(} P(Y=1 \mid do(E=1)) \text{ in the top slot)}\\
    P(c_k = 1 \mid \varepsilon) &= p_0 + \kappa_k\,(p_1 - p_0), \qquad \kappa_1 = 1,\ \kappa_k = \sigma(\theta_k)

— the examination hypothesis with an organic baseline, the causal GNN's outcome model
(:mod:`recause.models.gnn.module`), from which the generator can start (:meth:`ResponseGenerator.start_from`:
its pre-training). Clicks of one slate are drawn given a common :math:`\varepsilon`, so they are
dependent (a slate-level propensity to engage); :math:`s_0, s_1 \ge 0` are learned, and zero makes
them independent given (u, i, k). Without outcomes of unexposed pairs (``has_base=False``: Coat,
Open Bandit) :math:`p_0 = 0` and the model is the position-based click model :math:`\kappa_k p_1`.
Scoring a block of users against the whole catalogue is one matrix product per head; expectations
over :math:`\varepsilon` use Gauss–Hermite quadrature.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from recause.models.gnn.heads import PairHead

HEADS = ("base", "exposed")


_MATCH_FLOOR = 0.05  # ε of the interest match: an item off every topic of the user keeps a floor


def tower(in_dim: int, dim: int, depth: int) -> nn.Module:
    """A state's map into the heads' space: identity (``depth`` 0, states already there), linear or a two-layer MLP."""
    if depth == 0:
        if in_dim != dim:
            raise ValueError(f"an identity tower needs states of the heads' size {dim}, got {in_dim}")
        return nn.Identity()
    if depth == 1:
        return nn.Linear(in_dim, dim)
    return nn.Sequential(nn.Linear(in_dim, 2 * dim), nn.ReLU(), nn.Linear(2 * dim, dim))


class ResponseGenerator(nn.Module):
    """G(clicks of a slate | user state, item states, positions, ε).

    Parameters
    ----------
    user_dim : width of a user state.
    item_state : (n_items, d_i) float, the catalogue's item states (a buffer; an item edit passes
        replacements to the scoring methods instead of changing it).
    n_positions : slate positions K (1 for data without positions).
    dim : size of the heads' space.
    has_base : whether the data identify p0 (outcomes of unexposed pairs).
    depth : tower depth (0 = identity: states are GNN states of size ``dim``).
    n_users : known users with a learned residual in the heads' space (0 = none).
    item_residuals : whether items have one (states that already hold an ID embedding, as GNN states do, need none).
    base_rate, exposed_rate : the heads' initial base rates.
    n_topics : T > 0 when each state ends with side features — a user's topic shares q_u (T) and
        activity, an item's topic mix φ_i (T) and popularity — entering every logit as
        :math:`w_1 \log(\epsilon + T\langle q_u, \phi_i\rangle) + w_2\,\mathrm{pop}_i + w_3\,\mathrm{act}_u + w_4`
        (weights start at 0). An interest or topic edit changes q or φ exactly as it changes the world's θ or φ.
    """

    def __init__(self, user_dim: int, item_state: Tensor, n_positions: int, dim: int = 32, has_base: bool = True,
                 depth: int = 1, n_users: int = 0, base_rate: float = 0.01, exposed_rate: float = 0.05, n_topics: int = 0,
                 item_residuals: bool = True):
        super().__init__()
        n_items, item_dim = item_state.shape
        self.n_positions, self.has_base, self.dim, self.n_topics = n_positions, has_base, dim, n_topics
        self.register_buffer("item_state", item_state.to(torch.float32), persistent=False)
        side = n_topics + 1 if n_topics else 0  # a state ends with its side features: topic shares, then a count
        self.user_tower, self.item_tower = tower(user_dim - side, dim, depth), tower(item_dim - side, dim, depth)
        # per head, the weights of [log(ε + T⟨q_u, φ_i⟩), item popularity, user activity, 1] (0: the heads alone)
        self.side_weight = nn.Parameter(torch.zeros(2, 4)) if n_topics else None
        self.heads = nn.ModuleDict({"base": PairHead(dim, _logit(base_rate)), "exposed": PairHead(dim, _logit(exposed_rate))})
        self.item_residual = nn.Parameter(torch.zeros(n_items, dim)) if item_residuals else None
        self.user_residual = nn.Parameter(torch.zeros(n_users, dim)) if n_users else None
        self.examination_logit = nn.Parameter(torch.zeros(max(n_positions - 1, 0)))
        self.noise_log_scale = nn.Parameter(torch.full((2,), -2.0))  # s = exp(.) ≈ 0.14 at the start

    @torch.no_grad()
    def start_from(self, heads: dict[str, PairHead], examination_logit: Tensor | None = None) -> None:
        """Pre-training: copy the causal GNN's outcome heads (``unexposed`` -> base, ``exposed`` -> exposed)
        and its examination, so the generator starts as the GNN's outcome model on its node states."""
        for mine, theirs in (("base", "unexposed"), ("exposed", "exposed")):
            if theirs in heads:
                self.heads[mine].load_state_dict(heads[theirs].state_dict())
        if examination_logit is not None and examination_logit.numel() == self.examination_logit.numel():
            self.examination_logit.copy_(examination_logit)

    # ------------------------------------------------------------------ states in the heads' space
    def _main(self, state: Tensor) -> Tensor:
        return state if not self.n_topics else state[..., : state.shape[-1] - self.n_topics - 1]

    def _side(self, user_side: Tensor, item_side: Tensor, grid: bool) -> Tensor:
        """(..., 2) per head: w · [log(ε + T⟨q_u, φ_i⟩), popularity_i, activity_u, 1] — the interest match of
        the user's topic shares q and the item's topic mix φ, as the affinity of a topic model enters.
        ``user_side``/``item_side``: the side features [topic shares, count], (n, T+1) and (m, T+1) for a
        grid, or aligned (B, K, T+1) each."""
        t = self.n_topics
        q, act = user_side[..., :t], user_side[..., t]
        phi, pop = item_side[..., :t], item_side[..., t]
        if grid:
            match = q @ phi.T  # (n, m)
            act, pop = act[:, None].expand_as(match), pop[None, :].expand_as(match)
        else:
            match = (q * phi).sum(-1)  # (B, K)
        features = torch.stack([torch.log(_MATCH_FLOOR + t * match.clamp_min(0)), pop, act, torch.ones_like(pop)], dim=-1)
        return features @ self.side_weight.T

    def user_h(self, user_state: Tensor, users: Tensor | None = None) -> Tensor:
        """(n, dim): the tower's output plus known users' residuals (``users`` (n,) indices, -1 = none)."""
        h = self.user_tower(self._main(user_state))
        if self.user_residual is not None and users is not None:
            h = h + (users >= 0).to(h.dtype)[:, None] * self.user_residual[users.clamp_min(0)]
        return h

    def item_h(self, item_state: Tensor | None = None, items: Tensor | None = None) -> Tensor:
        """(m, dim) or items-shaped (..., dim): the catalogue's (or ``item_state``'s) items in the heads' space."""
        state = self._main(self.item_state if item_state is None else item_state)
        h = self.item_tower(state if items is None else state[items])
        if self.item_residual is None:
            return h
        return h + (self.item_residual if items is None else self.item_residual[items])

    def logits(self, user_state: Tensor, items: Tensor, item_state: Tensor | None = None,
               users: Tensor | None = None, side: tuple[Tensor, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """(a, b) logits of aligned slates: ``user_state`` (B, d_u), ``items`` (B, K) -> two (B, K).

        ``side``: per-slot side features (user (B, K, T+1), item (B, K, T+1)) in place of the states'
        own (training uses cross-fitted ones, so a click never informs its own features).
        """
        hu = self.user_h(user_state, users)[:, None, :]
        hi = self.item_h(item_state, items.clamp_min(0))
        a, b = self.heads["base"](hu, hi), self.heads["exposed"](hu, hi)
        if self.side_weight is not None:
            if side is None:
                width = self.n_topics + 1
                state = self.item_state if item_state is None else item_state
                side = (user_state[:, None, -width:].expand(*items.shape, width), state[items.clamp_min(0)][..., -width:])
            extra = self._side(*side, grid=False)
            a, b = a + extra[..., 0], b + extra[..., 1]
        return a, b

    def grid_logits(self, user_state: Tensor, item_state: Tensor | None = None,
                    users: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(a, b) of every user in the block against every item: (n, d_u) -> two (n, n_items)."""
        hu, hi = self.user_h(user_state, users), self.item_h(item_state)
        a, b = self.heads["base"].grid(hu, hi), self.heads["exposed"].grid(hu, hi)
        if self.side_weight is not None:
            width = self.n_topics + 1
            state = self.item_state if item_state is None else item_state
            extra = self._side(user_state[:, -width:], state[:, -width:], grid=True)
            a, b = a + extra[..., 0], b + extra[..., 1]
        return a, b

    # ------------------------------------------------------------------ probabilities
    def examination(self) -> Tensor:
        """(K,) κ_k, the chance a shown item in slot k is examined (κ_1 = 1)."""
        return torch.cat([torch.ones(1, device=self.noise_log_scale.device), torch.sigmoid(self.examination_logit)])

    def noise_scale(self) -> Tensor:
        """(2,) s_0, s_1: the slate noise's weight on each head's logit."""
        return self.noise_log_scale.exp()

    def click_probability(self, a: Tensor, b: Tensor, positions: Tensor, noise: Tensor | float = 0.0) -> Tensor:
        """P(c = 1) at 0-based ``positions`` (same shape as a, b; -1 = no position, as slot 1) given slate ``noise``."""
        s = self.noise_scale()
        p1 = torch.sigmoid(b + s[1] * noise)
        kappa = self.examination()[positions.clamp(0, self.n_positions - 1)]
        if not self.has_base:
            return kappa * p1
        p0 = torch.sigmoid(a + s[0] * noise)
        return p0 + kappa * (p1 - p0)

    def sample(self, user_state: Tensor, items: Tensor, positions: Tensor, generator: torch.Generator | None = None,
               temperature: float = 0.5, item_state: Tensor | None = None, users: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Clicks of slates: (hard 0/1 clicks with straight-through gradients, their probabilities), each (B, K).

        One ε per slate; each click a Bernoulli draw by the Gumbel–sigmoid trick, hard in the forward
        pass and relaxed (``temperature``) in the backward pass, so a discriminator sees exact 0/1.
        """
        a, b = self.logits(user_state, items, item_state, users)
        noise = torch.randn(items.shape[0], 1, generator=generator, device=a.device)
        p = self.click_probability(a, b, positions, noise).clamp(1e-6, 1 - 1e-6)
        u = torch.rand(p.shape, generator=generator, device=p.device).clamp(1e-6, 1 - 1e-6)
        soft = torch.sigmoid((torch.log(p) - torch.log1p(-p) + torch.log(u) - torch.log1p(-u)) / temperature)
        return _StraightThrough.apply(soft), p

    def expected_click_probability(self, a: Tensor, b: Tensor, positions: Tensor, nodes: int = 8) -> Tensor:
        """E_ε[P(c = 1 | ε)] by Gauss–Hermite quadrature with ``nodes`` points (same shape as a, b)."""
        out = torch.zeros_like(a)
        for x, w in _quadrature(nodes):
            out = out + w * self.click_probability(a, b, positions, x)
        return out

    def potential_outcomes(self, user_state: Tensor, item_state: Tensor | None = None, nodes: int = 8,
                           users: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(p̂0, p̂1), each (n, n_items): P(Y=1 | do(E=0)) and P(Y=1 | do(E=1)) in the top slot, ε integrated out."""
        a, b = self.grid_logits(user_state, item_state, users)
        s = self.noise_scale()
        p1 = sum(w * torch.sigmoid(b + s[1] * x) for x, w in _quadrature(nodes))
        if not self.has_base:
            return torch.zeros_like(p1), p1
        p0 = sum(w * torch.sigmoid(a + s[0] * x) for x, w in _quadrature(nodes))
        return p0, p1


class SlateCritic(nn.Module):
    """D(user, slate, clicks) -> a score (WGAN critic): a set function over the slate's slots.

    Each slot becomes h features from [user state, item state, position, click, click × item state];
    the slate is their masked mean and max, the click count and share, then an MLP.
    """

    def __init__(self, user_dim: int, item_dim: int, n_positions: int, hidden: int = 64):
        super().__init__()
        self.position = nn.Embedding(n_positions, 8)
        self.slot = nn.Sequential(nn.Linear(user_dim + 2 * item_dim + 8 + 1, hidden), nn.LeakyReLU(0.2),
                                  nn.Linear(hidden, hidden), nn.LeakyReLU(0.2))
        self.head = nn.Sequential(nn.Linear(2 * hidden + 2, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    def forward(self, user_state: Tensor, item_state: Tensor, positions: Tensor, clicks: Tensor, mask: Tensor) -> Tensor:
        """(B, d_u), (B, K, d_i), (B, K) long, (B, K) float, (B, K) bool -> (B,)."""
        k = item_state.shape[1]
        c = (clicks * mask).unsqueeze(-1)
        x = torch.cat([user_state.unsqueeze(1).expand(-1, k, -1), item_state, c * item_state,
                       self.position(positions.clamp_min(0)), c], dim=-1)
        h = self.slot(x)
        m = mask.unsqueeze(-1).to(h.dtype)
        n = m.sum(1).clamp_min(1.0)
        mean = (h * m).sum(1) / n
        top = torch.where(m > 0, h, torch.full_like(h, -1e4)).max(1).values
        count = c.sum(1)
        return self.head(torch.cat([mean, top, count, count / n], dim=-1)).squeeze(-1)


class _StraightThrough(torch.autograd.Function):
    """Exact 0/1 (soft > 0.5) forward, the relaxed sample's gradient backward."""

    @staticmethod
    def forward(ctx, soft: Tensor) -> Tensor:
        return (soft > 0.5).to(soft.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        return grad


def _quadrature(nodes: int) -> list[tuple[float, float]]:
    """Gauss–Hermite nodes and weights for E over N(0, 1)."""
    x, w = np.polynomial.hermite_e.hermegauss(nodes)
    return list(zip(x.tolist(), (w / w.sum()).tolist()))


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))
