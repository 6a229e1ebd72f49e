"""The simulator's answers to feature edits, and the synthetic world's exact ones, on the evaluation rounds.

For an edit and the control policy (the policy that logged the rounds), per round r = (u, k):

- the control's value :math:`V = \\sum_i \\pi(i|u)\\,\\mu(u,i,k)` with :math:`\\mu = p_0 + \\kappa_k (p_1 - p_0)`;
- the **direct** value: the same :math:`\\pi`, outcomes :math:`\\mu'` under the edited features;
- the **total** value: the control re-ranked under the edited features, :math:`\\pi'`, and :math:`\\mu'`.

The simulator answers with each ensemble member (its :math:`\\hat\\mu` from edited states; :math:`\\pi'`
the control moved by its logging-policy imitation, :func:`~recause.tasks.simulate.edits.re_ranked`),
the world exactly (its edited interests or topics, its logging policy with the edited estimates).
A population shift re-weights the rounds; direct and total then coincide.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from recause.models.world.scm import SyntheticWorld
from recause.tasks.contrast.interventions import SlotFree
from recause.tasks.simulate.edits import FeatureEdit, re_ranked
from recause.tasks.simulate.simulator import SimEstimate, Simulator, SlotPolicy, estimate_from_members, member_round_values


@dataclass(frozen=True)
class EditAnswer:
    """The simulator's total and direct values with intervals, their lifts over the control, and
    (synthetic world) the exact values. Lifts are relative: value / control value − 1."""

    total: SimEstimate
    total_lift: SimEstimate
    direct: SimEstimate
    direct_lift: SimEstimate
    true_control: float | None = None
    true_total: float | None = None
    true_direct: float | None = None
    per_round: dict[str, np.ndarray] | None = None  # "control"/"direct"/"total": (R,) ensemble-mean value per round


def _re_ranked_policy(control: SlotPolicy, simulator: Simulator, user_state: np.ndarray, item_state: np.ndarray | None) -> SlotPolicy:
    """The control moved by the imitation's change between the original and the edited states."""
    per_user = getattr(control, "per_user", None)
    if per_user is None:
        raise ValueError("re-ranking needs a control policy that is the same in every slot")

    def moved(users: np.ndarray) -> np.ndarray:
        before = simulator.imitated_log_policy(simulator.states.user[users])
        after = simulator.imitated_log_policy(user_state[users], item_state)
        return re_ranked(per_user(users), before, after)

    return SlotFree(moved)


@dataclass(frozen=True)
class EditValues:
    """Each ensemble member's (R,) values on the rounds under an edit: ``direct`` (the control's slates) and ``total``
    (the control re-ranked); ``weight`` the rounds' (R,) weights, None when the edit shifts no population."""

    direct: list[np.ndarray]
    total: list[np.ndarray]
    weight: np.ndarray | None


def edit_values(simulator: Simulator, edit: FeatureEdit, control: SlotPolicy, control_kind: str, user: np.ndarray,
                slot: np.ndarray) -> EditValues:
    """The simulator's values of the rounds (``user``, ``slot``) under ``edit``: one edit's shard of the contrast stage
    (pure, no randomness). The control's own values are :func:`~recause.tasks.simulate.simulator.member_round_values`."""
    user_state, item_state = edit.states(simulator.states)
    moved = control if control_kind != "logging" or simulator.imitation is None else \
        _re_ranked_policy(control, simulator, user_state, item_state)
    direct = [simulator.round_values(m, control, user, slot, user_state, item_state) for m in range(simulator.size)]
    total = [simulator.round_values(m, moved, user, slot, user_state, item_state) for m in range(simulator.size)]
    return EditValues(direct, total, None if edit.user_weight is None else edit.user_weight[user])


def answer_from_values(base: list[np.ndarray], values: EditValues, *, n_bootstrap: int, alpha: float, seed: int) -> EditAnswer:
    """The answer to an edit from the control's per-member (R,) values ``base`` and the edit's (:func:`edit_values`):
    values and lifts with paired bootstrap intervals (the same resamples for the control)."""
    total_value, total_lift = estimate_from_members(values.total, values.weight, n_bootstrap, alpha, seed, base)
    direct_value, direct_lift = estimate_from_members(values.direct, values.weight, n_bootstrap, alpha, seed, base)
    per_round = {"control": np.mean(base, axis=0), "direct": np.mean(values.direct, axis=0), "total": np.mean(values.total, axis=0)}
    return EditAnswer(total_value, total_lift, direct_value, direct_lift, per_round=per_round)


def answer_edit(simulator: Simulator, edit: FeatureEdit, control: SlotPolicy, control_kind: str, user: np.ndarray,
                slot: np.ndarray, *, n_bootstrap: int, alpha: float, seed: int) -> EditAnswer:
    """The simulator's answer to ``edit`` on the rounds (``user``, ``slot``) under ``control``, all in one call."""
    base = member_round_values(control, simulator, user, slot)
    values = edit_values(simulator, edit, control, control_kind, user, slot)
    return answer_from_values(base, values, n_bootstrap=n_bootstrap, alpha=alpha, seed=seed)


def world_round_values(world: SyntheticWorld, policy: Callable[[np.ndarray], np.ndarray], user_ids: np.ndarray,
                       item_ids: np.ndarray, user: np.ndarray, slot: np.ndarray, n_slots: int, block: int = 256) -> np.ndarray:
    """(R,) exact expected outcome per round: Σ_i π(i|u) (p0 + κ_k τ) in ``world``; ``policy(users)`` ->
    (B, n_items) over the split's items; ``user_ids``/``item_ids`` map split indices to world ids."""
    kappa = world.examination(n_slots)
    out = np.empty(len(user))
    unique = np.unique(user)
    for start in range(0, len(unique), block):
        users = unique[start : start + block]
        rows = np.flatnonzero(np.isin(user, users))
        p0, p1 = world.potential_outcomes(user_ids[users], item_ids)
        dist = policy(users)
        inverse = np.searchsorted(users, user[rows])
        out[rows] = (np.einsum("ui,ui->u", dist, p0)[inverse]
                     + kappa[np.minimum(slot[rows], n_slots - 1)] * np.einsum("ui,ui->u", dist, p1 - p0)[inverse])
    return out


def exact_answer(world: SyntheticWorld, edit: FeatureEdit, control_kind: str, user_ids: np.ndarray, item_ids: np.ndarray,
                 user: np.ndarray, slot: np.ndarray, n_slots: int) -> tuple[float, float, float]:
    """(control value, total value, direct value) of ``edit`` in the synthetic world, exactly."""
    values = exact_round_values(world, edit, control_kind, user_ids, item_ids, user, slot, n_slots)
    weight = None if edit.user_weight is None else edit.user_weight[user]
    mean = lambda v: float(np.average(v, weights=weight))  # noqa: E731
    return float(values["control"].mean()), mean(values["total"]), mean(values["direct"])


def exact_round_values(world: SyntheticWorld, edit: FeatureEdit, control_kind: str, user_ids: np.ndarray,
                       item_ids: np.ndarray, user: np.ndarray, slot: np.ndarray, n_slots: int) -> dict[str, np.ndarray]:
    """"control"/"direct"/"total": (R,) exact expected outcome per round of the control, and under ``edit``
    with the control's slates kept (direct) or re-ranked by the edited world's logging policy (total)."""
    edited = edit.world if edit.world is not None else world

    def control_of(w: SyntheticWorld) -> Callable[[np.ndarray], np.ndarray]:
        if control_kind != "logging":
            return lambda users: np.full((len(users), len(item_ids)), 1.0 / len(item_ids))
        return lambda users: _renormalised(w.logging_policy(user_ids[users])[:, item_ids])

    return {"control": world_round_values(world, control_of(world), user_ids, item_ids, user, slot, n_slots),
            "direct": world_round_values(edited, control_of(world), user_ids, item_ids, user, slot, n_slots),
            "total": world_round_values(edited, control_of(edited), user_ids, item_ids, user, slot, n_slots)}


def _renormalised(p: np.ndarray) -> np.ndarray:
    return p / p.sum(axis=1, keepdims=True)
