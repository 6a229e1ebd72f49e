r"""An imitation of the logging policy on features: :math:`\hat\pi_0(i \mid u) = \mathrm{softmax}_i(\langle P x_u, Q x_i \rangle + q_i)`.

Fitted by cross-entropy on the logged impressions (each one a draw from :math:`\pi_0(\cdot \mid u)`),
it re-ranks when a user's or an item's features are edited — what the *total* effect of a feature
edit needs (the policy responds to the edit), where the *direct* effect keeps the slates fixed.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class PolicyImitation(nn.Module):
    """(n, d_u) user states -> (n, n_items) log-probabilities of the imitated logging policy."""

    def __init__(self, user_dim: int, item_state: Tensor, hidden: int = 32, n_topics: int = 0):
        super().__init__()
        self.hidden, self.n_topics = hidden, n_topics
        self.register_buffer("item_state", item_state.to(torch.float32), persistent=False)
        self.user = nn.Sequential(nn.Linear(user_dim, 2 * hidden), nn.ReLU(), nn.Linear(2 * hidden, hidden))
        self.item = nn.Sequential(nn.Linear(item_state.shape[1], 2 * hidden), nn.ReLU(), nn.Linear(2 * hidden, hidden))
        self.item_bias = nn.Parameter(torch.zeros(item_state.shape[0]))
        # with topic side features (see ResponseGenerator), the affinity log(ε + T⟨q_u, φ_i⟩) a topic-aware policy ranks by
        self.match_weight = nn.Parameter(torch.zeros(())) if n_topics else None

    def forward(self, user_state: Tensor, item_state: Tensor | None = None) -> Tensor:
        state = self.item_state if item_state is None else item_state
        scores = self.user(user_state) @ self.item(state).T / math.sqrt(self.hidden) + self.item_bias
        if self.match_weight is not None:
            t = self.n_topics
            match = user_state[:, -t - 1 : -1] @ state[:, -t - 1 : -1].T
            scores = scores + self.match_weight * torch.log(0.05 + t * match.clamp_min(0))
        return torch.log_softmax(scores, dim=-1)

    def loss(self, user_state: Tensor, items: Tensor) -> Tensor:
        """Mean negative log-likelihood of the logged items (B,) shown to users with states (B, d_u)."""
        return -self(user_state).gather(1, items[:, None]).mean()
