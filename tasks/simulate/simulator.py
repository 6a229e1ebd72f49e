"""A fitted simulator and what it answers: expected clicks of any policy on given rounds, under the
features as they are or as an intervention edits them, and sampled slates of clicks.

The unit of every value is the one the off-policy estimators use: the expected outcome per logged
round (per shown slot), averaged over the evaluation rounds (optionally re-weighted, for a
population shift). Each ensemble member answers on its own; intervals come from bootstrap
resamples of the rounds paired with ensemble members drawn at random (:func:`estimate_from_members`),
so they cover both the sampling of rounds and the disagreement between training seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from recause.tasks.simulate.data import Slates, States

SlotPolicy = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (users (R,), slots (R,)) -> (R, n_items)


@dataclass
class Simulator:
    """An ensemble of response generators over the same states, a user generator and a policy imitation."""

    generators: list
    states: States
    imitation: object | None
    user_generator: object | None
    n_positions: int
    histories: list[dict] = field(default_factory=list)
    mode: str = "gan"
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall seconds of each part of the fit: ``members``, ``user_gan``, ``imitation``."""

    @property
    def size(self) -> int:
        return len(self.generators)

    def examination(self, member: int) -> np.ndarray:
        """(K,) the member's examination probabilities κ_k."""
        import torch

        with torch.no_grad():
            return self.generators[member].examination().double().numpy()

    def potential_outcomes(self, member: int, user_state: np.ndarray, item_state: np.ndarray | None = None,
                           users: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(p̂0, p̂1) of users with states (n, d_u) against every item: two (n, n_items) arrays.
        ``users`` (n,) split indices of known users (their learned residuals apply; None or -1: none)."""
        import torch

        with torch.no_grad():
            p0, p1 = self.generators[member].potential_outcomes(
                torch.as_tensor(user_state), None if item_state is None else torch.as_tensor(item_state),
                users=None if users is None else torch.as_tensor(users))
        return p0.double().numpy(), p1.double().numpy()

    def round_values(self, member: int, policy: SlotPolicy, user: np.ndarray, slot: np.ndarray,
                     user_state: np.ndarray | None = None, item_state: np.ndarray | None = None, block: int = 256) -> np.ndarray:
        """(R,) expected clicks of ``policy`` on rounds (``user``, 0-based ``slot``): Σ_i π(i|u,k) [p̂0 + κ_k (p̂1 − p̂0)].

        ``user_state`` (n_users, d_u) / ``item_state`` (n_items, d_i) replace the fitted states (an edit).
        """
        states = self.states.user if user_state is None else user_state
        kappa = self.examination(member)
        out = np.empty(len(user))
        order = np.argsort(user, kind="stable")
        unique = np.unique(user)
        sorted_users = user[order]
        for start in range(0, len(unique), block):
            users = unique[start : start + block]
            lo, hi = np.searchsorted(sorted_users, [users[0], users[-1] + 1])
            rows = order[lo:hi]
            p0, p1 = self.potential_outcomes(member, states[users], item_state, users)
            inverse = np.searchsorted(users, user[rows])
            k = np.minimum(slot[rows], len(kappa) - 1)
            per_user = getattr(policy, "per_user", None)  # a slot-free policy: once per user, not per round
            if per_user is not None:
                dist = per_user(users)  # (U, n_items)
                base = np.einsum("ui,ui->u", dist, p0)[inverse]
                effect = np.einsum("ui,ui->u", dist, p1 - p0)[inverse]
            else:
                dist = policy(user[rows], slot[rows])  # (R, n_items)
                base = np.einsum("ri,ri->r", dist, p0[inverse])
                effect = np.einsum("ri,ri->r", dist, (p1 - p0)[inverse])
            out[rows] = base + kappa[k] * effect
        return out

    def sample_clicks(self, member: int, slates: Slates, seed: int, user_state: np.ndarray | None = None) -> np.ndarray:
        """(S, K) simulated clicks for the logged ``slates`` (padding slots are 0)."""
        import torch

        states = self.states.user if user_state is None else user_state
        g = torch.Generator().manual_seed(seed)
        out = np.zeros(slates.clicks.shape)
        with torch.no_grad():
            for start in range(0, len(slates), 4096):
                rows = slice(start, start + 4096)
                clicks, _ = self.generators[member].sample(
                    torch.as_tensor(states[slates.user[rows]]), torch.as_tensor(slates.items[rows]),
                    torch.as_tensor(slates.positions[rows]), g, users=torch.as_tensor(slates.user[rows]))
                out[rows] = clicks.double().numpy() * slates.mask[rows]
        return out

    def imitated_log_policy(self, user_state: np.ndarray, item_state: np.ndarray | None = None) -> np.ndarray:
        """(n, n_items) log π̂0(i | u) of the logging-policy imitation for users with states ``user_state``."""
        import torch

        with torch.no_grad():
            return self.imitation(torch.as_tensor(user_state), None if item_state is None else torch.as_tensor(item_state)).double().numpy()


@dataclass(frozen=True)
class SimEstimate:
    """A simulated value: the ensemble mean and a percentile interval."""

    value: float
    low: float
    high: float


def estimate_from_members(values: Sequence[np.ndarray], weight: np.ndarray | None, n_bootstrap: int, alpha: float,
                          seed: int, control: Sequence[np.ndarray] | None = None,
                          control_weight: np.ndarray | None = None) -> tuple[SimEstimate, SimEstimate | None]:
    """The value (and, with ``control``, the relative lift over it) from per-member round values.

    ``values``: per member, (R,) expected clicks per round; ``weight`` (R,) round weights (None =
    equal; a population shift re-weights them), ``control_weight`` the control's (None = equal).
    Each bootstrap replicate resamples the rounds and draws one member, the same draws for the
    control, so the lift's interval is paired.
    """
    rng = np.random.default_rng([seed, 29])
    n = len(values[0])
    w = np.ones(n) if weight is None else np.asarray(weight, dtype=np.float64)
    cw = np.ones(n) if control_weight is None else np.asarray(control_weight, dtype=np.float64)

    def mean(v: np.ndarray, weights: np.ndarray, rows: np.ndarray | None = None) -> float:
        return float(np.average(v if rows is None else v[rows], weights=weights if rows is None else weights[rows]))

    point = float(np.mean([mean(v, w) for v in values]))
    reps, lift_reps = np.empty(n_bootstrap), np.empty(n_bootstrap)
    for b in range(n_bootstrap):
        rows, m = rng.integers(0, n, n), int(rng.integers(len(values)))
        reps[b] = mean(values[m], w, rows)
        if control is not None:
            lift_reps[b] = reps[b] / mean(control[m], cw, rows) - 1.0
    q = (100 * alpha / 2, 100 * (1 - alpha / 2))
    value = SimEstimate(point, *np.percentile(reps, q).tolist())
    if control is None:
        return value, None
    base = float(np.mean([mean(v, cw) for v in control]))
    return value, SimEstimate(point / base - 1.0, *np.percentile(lift_reps, q).tolist())


def member_round_values(policy: SlotPolicy, simulator: Simulator, user: np.ndarray, slot: np.ndarray) -> list[np.ndarray]:
    """Each ensemble member's (R,) expected clicks of ``policy`` on the rounds (``user``, ``slot``): one
    policy's shard of the contrast stage (pure, no randomness; :func:`estimates_from_values` reads them)."""
    return [simulator.round_values(m, policy, user, slot) for m in range(simulator.size)]


def estimates_from_values(per_policy: Mapping[str, Sequence[np.ndarray]], control: str, *, n_bootstrap: int, alpha: float,
                          seed: int) -> dict[str, tuple[SimEstimate, SimEstimate | None]]:
    """Every policy's simulated value on the rounds and its lift over ``control`` (None for the control), from each
    policy's per-member (R,) round values (:func:`member_round_values`): the bootstrap draws from ``seed`` alone."""
    return {name: estimate_from_members(values, None, n_bootstrap, alpha, seed, None if name == control else per_policy[control])
            for name, values in per_policy.items()}
