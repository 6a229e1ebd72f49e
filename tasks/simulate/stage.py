"""The simulate stage: fit the simulator on the training split and measure its fidelity on held-out slates.

:func:`run_simulate` is the stage's entry (pure: data and the causal GNN in, the simulator and its
report out). The interventions it answers are compared in the contrast stage, beside the off-policy
estimates (:mod:`recause.tasks.contrast.stage`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from recause.tasks.data.schema import Dataset
from recause.tasks.data.split import Split
from recause.tasks.features.build import TextFeatures
from recause.tasks.simulate.config import SimulateConfig
from recause.tasks.simulate.data import Slates, group_slates
from recause.tasks.simulate.fidelity import Fidelity, fidelity, resample_from_truth, two_sample_aucs
from recause.tasks.simulate.fit import fit_simulator
from recause.tasks.simulate.simulator import Simulator


@dataclass(frozen=True)
class SimulateResult:
    """The fitted simulator, its fidelity report and the stage's flat metrics."""

    simulator: Simulator
    fidelity: Fidelity
    metrics: dict[str, float | str | bool]


def held_out_slates(split: Split, n_positions: int) -> Slates:
    """The validation and test parts' logged slates (the logging policy's, on Coat and Open Bandit the random ones)."""
    return group_slates(pd.concat([split.val, split.test], ignore_index=True), split.n_items, n_positions,
                        reference_mix=0.0, max_weight=1.0)


def expected_clicks(simulator: Simulator, slates: Slates) -> np.ndarray:
    """(S, K) the ensemble's click probabilities of the logged slates (members averaged, slate noise
    integrated out) — the probabilities every value the simulator reports is built from."""
    import torch

    out = np.zeros(slates.clicks.shape)
    with torch.no_grad():
        for g in simulator.generators:
            a, b = g.logits(torch.as_tensor(simulator.states.user[slates.user]), torch.as_tensor(slates.items),
                            users=torch.as_tensor(slates.user))
            out += g.expected_click_probability(a, b, torch.as_tensor(slates.positions)).double().numpy() / simulator.size
    return out * slates.mask


def ensemble_clicks(simulator: Simulator, slates: Slates, seed: int) -> np.ndarray:
    """(S, K) clicks drawn from the ensemble as one generator: each slate answered by a member drawn at random."""
    member = np.random.default_rng([seed, 59]).integers(0, simulator.size, len(slates))
    out = np.zeros(slates.clicks.shape)
    for m in range(simulator.size):
        rows = np.flatnonzero(member == m)
        if rows.size:
            out[rows] = simulator.sample_clicks(m, slates.subset(rows), seed + m)
    return out


def run_simulate(split: Split, dataset: Dataset, features: TextFeatures | None, gnn, config: SimulateConfig, *,
                 seed: int, threads: int, logger_for: Callable[[str], object] | None = None,
                 checkpoint_root: Path | None = None, on_member: Callable | None = None) -> SimulateResult | str:
    """Fit the simulator (on the causal GNN's states and heads when ``gnn`` is given) and check it;
    the reason, instead, when the data hold no responses to learn (no exposed rows with both outcomes).

    The fidelity check compares the ensemble's simulated clicks (each slate answered by a member drawn
    at random) with the held-out real ones; on the synthetic world it also scores the ensemble's
    p̂1 − p̂0 against the true uplift (PEHE).
    """
    from recause.tasks.train.data import has_labelled_exposure

    if not has_labelled_exposure(split.train):
        return (f"{dataset.meta.name}: the training log has no exposed rows with both outcomes (shown and not clicked, "
                "shown and clicked), so there are no responses to simulate")
    simulator = fit_simulator(split, dataset, features, config, seed=seed, threads=threads, gnn=gnn,
                              logger_for=logger_for, checkpoint_root=checkpoint_root, on_member=on_member)
    start = time.perf_counter()
    held = held_out_slates(split, simulator.n_positions)
    if len(held) == 0:
        raise ValueError(f"{dataset.meta.name}: no held-out slates to check the simulator on")
    simulated = ensemble_clicks(simulator, held, seed)
    expected = expected_clicks(simulator, held)
    world = dataset.world
    perfect = None
    if world is not None:
        uid, iid = split.users.ids.astype(np.int64), split.items.ids.astype(np.int64)
        kappa = world.examination(simulator.n_positions)

        def truth(users: np.ndarray, items: np.ndarray, positions: np.ndarray) -> np.ndarray:
            p0, p1 = world.potential_outcomes(uid[users], iid[items], pairs=True)
            return p0 + kappa[positions] * (p1 - p0)

        perfect = resample_from_truth(held, truth, seed)
    report = fidelity(held, held.clicks, simulated, expected, perfect, simulator.states.user, simulator.states.item,
                      max_auc=config.max_c2st_auc, max_calibration_error=config.max_calibration_error, seed=seed)
    metrics = {"simulator/mode": config.mode, "simulator/members": float(simulator.size),
               "simulator/states": simulator.states.source, "simulator/held_out_slates": float(len(held))}
    metrics |= report.metrics()
    for m, history in enumerate(simulator.histories):
        metrics |= {f"simulator/member_{m}/{k}": v for k, v in history.items()}
    metrics["simulator/train_seconds"] = float(sum(h["seconds"] for h in simulator.histories))
    noise = np.mean([g.noise_scale().detach().numpy() for g in simulator.generators], axis=0)
    metrics["simulator/noise_scale_organic"], metrics["simulator/noise_scale_exposed"] = float(noise[0]), float(noise[1])
    metrics |= user_generator_fidelity(simulator, config, seed)
    if world is not None:
        metrics |= exposure_effect_error(simulator, split, world)
    metrics |= {f"simulator/seconds/{part}": float(v) for part, v in simulator.seconds.items()}
    metrics["simulator/seconds/checks"] = time.perf_counter() - start  # fidelity, user-generator and effect checks
    return SimulateResult(simulator, report, metrics)


def user_generator_fidelity(simulator: Simulator, config: SimulateConfig, seed: int) -> dict[str, float]:
    """Two-sample AUC of generated users against real ones, segment by segment in the real mix."""
    import torch

    states = simulator.states
    conditions = torch.as_tensor(np.random.default_rng([seed, 41]).choice(states.user_condition, size=config.generated_users))
    generated = simulator.user_generator.sample(conditions, torch.Generator().manual_seed(seed)).double().numpy()
    real = states.user[np.random.default_rng([seed, 43]).choice(len(states.user), size=min(config.generated_users, len(states.user)), replace=False)]
    aucs = two_sample_aucs(real, generated, seed)
    return {f"simulator/user_c2st_auc_{k}": v for k, v in aucs.items()}


def exposure_effect_error(simulator: Simulator, split: Split, world, block: int = 512) -> dict[str, float]:
    """PEHE of the simulator's P(Y=1 | do(E=1)) − P(Y=1 | do(E=0)) against the true uplift, ensemble mean, all pairs."""
    uid, iid = split.users.ids.astype(np.int64), split.items.ids.astype(np.int64)
    sq = 0.0
    for start in range(0, split.n_users, block):
        users = np.arange(start, min(start + block, split.n_users))
        effect = np.zeros((len(users), split.n_items))
        for m in range(simulator.size):
            p0, p1 = simulator.potential_outcomes(m, simulator.states.user[users], users=users)
            effect += (p1 - p0) / simulator.size
        sq += float(((effect - world.uplift(uid[users], iid)) ** 2).sum())
    return {"simulator/pehe": float(np.sqrt(sq / (split.n_users * split.n_items)))}
