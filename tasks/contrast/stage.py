"""Contrastive evaluation: every intervention against the control, on the same logged rounds.

For each intervention (:mod:`recause.tasks.contrast.interventions`) and the control (the policy
that logged the evaluation rounds): every off-policy estimator's value with a bootstrap CI, the
**paired lift** over the control (the same bootstrap resamples for both, so the CI of the
difference is honest; :mod:`recause.tasks.contrast.estimation`), beyond-accuracy metrics of what
each policy shows and a **contrastive two-sample critic** (:mod:`recause.tasks.contrast.beyond`).
On the synthetic world each value is also scored against the exact truth, including how much of
it the recommendation *caused*.

:func:`run_contrast` is the stage's entry (pure: data and policies in, a result out);
:func:`contrast_interventions` is its core on explicit :class:`PolicySources`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from recause.models.world.scm import SyntheticWorld
from recause.tasks.contrast.beyond import beyond_accuracy, critic_auc, sample_lists
from recause.tasks.contrast.config import ContrastConfig
from recause.tasks.contrast.estimation import (
    Rounds,
    caused_estimates,
    compressed_from,
    effective_sample_size,
    estimate,
    fit_reward_model,
    logged_rounds,
    start_compress,
)
from recause.tasks.contrast.interventions import InterventionSpec, SlotPolicy, control_policy
from recause.tasks.contrast.result import ContrastResult, assemble
from recause.tasks.contrast.simulated import add_simulated
from recause.tasks.contrast.sources import PolicySources, on_policy_values, outcome_label, policy_sources
from recause.tasks.data.schema import Dataset
from recause.tasks.data.split import Split
from recause.tasks.evaluate import PolicySet
from recause.tasks.features.build import TextFeatures
from recause.tasks.shards import MapShards, in_order
from recause.tasks.simulate.answers import EditAnswer, EditValues, answer_from_values, edit_values, exact_answer
from recause.tasks.simulate.edits import Embed, EditContext, FeatureEdit
from recause.tasks.simulate.simulator import SimEstimate, Simulator, estimates_from_values, member_round_values
from recause.tasks.simulate.stage import SimulateResult

UPLIFT_SCORES = "gnn_causal_uplift"
"""The scored policy whose scores are the causal GNN's τ̂(u, i): each policy's caused outcome is estimated with them."""

MIN_CRITIC_USERS = 10
"""The critic's held-out AUC needs at least 10 lists per world (:func:`recause.models.critic.two_sample_auc`)."""


def run_contrast(
    split: Split, dataset: Dataset, policy_sets: Sequence[PolicySet], features: TextFeatures | None,
    config: ContrastConfig, seed: int, simulation: SimulateResult | None = None, embed: Embed | None = None,
    map_shards: MapShards = in_order,
) -> ContrastResult | str:
    """The stage: interventions built from the stages' policies, estimated against the control on
    ``split``'s held-out logged rounds; a reason string when the data cannot support it.

    ``simulation``: the simulate stage's result — its simulator adds a value to every policy and
    answers the feature edits; ``embed``: the text encoder, for item rewrites; ``map_shards``: how the
    shards run (:func:`contrast_interventions`).
    """
    sources = policy_sources(split, dataset, policy_sets, features, seed)
    deployed = [spec.deploys for spec in config.interventions if spec.deploys is not None]
    context = None
    if simulation is not None:
        context = EditContext(split, dataset, features, simulation.simulator.states, embed)
    return contrast_interventions(
        split, sources, config, randomized_policy=dataset.meta.randomized_policy, outcome=outcome_label(dataset.meta),
        world=dataset.world, known_values=on_policy_values(dataset, deployed),
        user_repr=features.user_vectors if features is not None else None, seed=seed, simulation=simulation, edit_context=context,
        map_shards=map_shards,
    )


def contrast_interventions(
    split: Split,
    sources: PolicySources,
    config: ContrastConfig,
    *,
    randomized_policy: str | None,
    outcome: str,
    world: SyntheticWorld | None = None,
    known_values: Mapping[str, float] | None = None,
    user_repr: np.ndarray | None = None,
    seed: int = 0,
    simulation: SimulateResult | None = None,
    edit_context: EditContext | None = None,
    map_shards: MapShards = in_order,
) -> ContrastResult | str:
    """Estimate every intervention against the control on the same rounds; a reason string if impossible.

    ``known_values``: deployed policy -> its true value where the data hold one (Open Bandit: the
    Bernoulli-TS log's click rate); on the synthetic world every policy's truth is exact.
    ``simulation`` / ``edit_context``: the simulator and what feature edits are made from.
    ``map_shards``: how the shards run — every policy's two-action form by runs of users, the
    simulator's values one per policy and its answers one per edit, the off-policy estimates and
    bootstraps one per estimator (:mod:`recause.tasks.shards`; every shard is seeded by ``seed`` alone,
    so the numbers do not depend on it). The first three are submitted before this stage's own work and read
    after it, so on a parallel runner the two run at once: the simulator's (at priority -1: read last) before the
    reward model is fitted, the two-action forms (which need it) right after.
    """
    rounds = logged_rounds(split, randomized_policy, config.max_rounds, seed)
    if isinstance(rounds, str):
        return rounds
    policies: dict[str, SlotPolicy] = {"control": control_policy(rounds.control, sources)}
    specs: dict[str, InterventionSpec | None] = {"control": None}
    skipped: dict[str, str] = {}
    edits: dict[str, FeatureEdit] = {}
    for spec in config.interventions:
        if spec.is_feature_edit:
            edit = spec.edit(edit_context) if edit_context is not None else (
                "a feature edit needs the user simulator (simulate.enabled, and the simulate stage must have run)")
            if isinstance(edit, str):
                skipped[spec.name] = edit
            else:
                edits[spec.name] = edit
            continue
        if spec.deploys == rounds.control:
            skipped[spec.name] = f"it is the control: the evaluation rounds were logged by the {spec.deploys} policy"
            continue
        built = spec.build(sources)
        if isinstance(built, str):
            skipped[spec.name] = built
        else:
            policies[spec.name], specs[spec.name] = built, spec
    # Shards first, read last: on a parallel runner they compute while this stage does its own work. The
    # simulator's need nothing of this stage, so they go before the reward model is fitted (compress needs
    # it), but they are read last: compress and the estimators, read early, run ahead of them where queued.
    started = None
    if simulation is not None:
        started = start_simulated(simulation.simulator, policies, edits, rounds, config, seed, map_shards)
    reward_model, context = fit_reward_model(rounds, split.n_users, sources.log_popularity, config.reward_folds, seed)
    truth_world = (world, split.users.ids.astype(np.int64), split.items.ids.astype(np.int64)) if world is not None else None
    compressing = start_compress(policies, rounds, reward_model, context, truth_world, uplift=sources.scores.get(UPLIFT_SCORES),
                                 map_shards=map_shards)

    item_repr = sources.item_vectors
    if item_repr is None:  # no text: a fixed random projection of item ids tells lists apart
        item_repr = np.random.default_rng([seed, 19]).standard_normal((sources.n_items, 32)) / np.sqrt(32)
    pop_z = (sources.log_popularity - sources.log_popularity.mean()) / (sources.log_popularity.std() or 1.0)
    rng = np.random.default_rng([seed, 23])
    users = np.unique(rounds.user)
    users = np.sort(rng.choice(users, size=min(config.critic_users, len(users)), replace=False))
    shown = {name: p(users, np.zeros(len(users), np.int64)) for name, p in policies.items()}  # first slot
    critic_skipped = None
    if len(users) >= MIN_CRITIC_USERS:
        critic = critic_auc(shown, users, "control", rounds, reward_model, split.n_users, item_repr, user_repr, pop_z, config, seed)
    else:
        critic = {name: float("nan") for name in policies if name != "control"}
        critic_skipped = (f"the two-sample critic needs the lists of at least {MIN_CRITIC_USERS} users to train and "
                          f"test on; the logged rounds hold {len(users)}")
    k = min(config.k, sources.n_items)
    beyond = {name: beyond_accuracy(sample_lists(p, k, rng), sources.n_items, sources.log_popularity, sources.item_vectors)
              for name, p in shown.items()}

    compressed = compressed_from(compressing)
    estimated_caused = caused_estimates(compressed, rounds, "control", config.alpha)
    ess = {name: effective_sample_size(c, rounds) for name, c in compressed.items()}
    references = {name for name, spec in specs.items() if spec is not None and str(spec.deploys).startswith("oracle")}
    truth: dict[str, float] = {}
    caused: dict[str, float] = {}
    caused_seen: dict[str, float] = {}
    for name, spec in specs.items():
        if world is not None:
            truth[name] = float(compressed[name].truth.mean())
            caused[name] = float(compressed[name].caused.mean())
            caused_seen[name] = float(compressed[name].caused_seen.mean())
        elif spec is not None and known_values and spec.deploys in known_values:
            truth[name] = float(known_values[spec.deploys])
    lifts = estimate(compressed, rounds, "control", config, seed, map_shards)
    result = assemble(policies, lifts, truth, caused, critic, beyond, rounds, skipped, config, outcome, estimated_caused,
                      ess, references, caused_seen)
    if critic_skipped is not None:
        result = replace(result, metrics=result.metrics | {"contrast/critic_skipped": critic_skipped})
    if started is None:
        return result
    exact = exact_answers(started.edits, rounds, truth_world)  # before the wait for the simulator's shards
    return add_simulated(result, *finish_simulated(started, exact), outcome, simulation.fidelity.passed, simulation.fidelity.reason)


@dataclass(frozen=True)
class StartedSimulation:
    """The simulator's shards of :func:`simulate_interventions`, submitted (:func:`start_simulated`) and not yet read."""

    policies: list[str]
    values: Sequence[list[np.ndarray]]  # per policy, per member (R,) round values (member_round_values)
    edits: dict[str, FeatureEdit]
    edit_values: Sequence[EditValues]  # per edit
    boot: dict[str, float | int]  # n_bootstrap, alpha, seed


def start_simulated(simulator: Simulator, policies: Mapping[str, SlotPolicy], edits: Mapping[str, FeatureEdit],
                    rounds: Rounds, config: ContrastConfig, seed: int, map_shards: MapShards = in_order) -> StartedSimulation:
    """Submit the simulator's shards: one per policy (its values on the rounds), one per edit (its values under the
    edit; the control's come from its policy's shard), at priority -1 (:mod:`recause.tasks.shards`): the stage reads
    them last."""
    boot = dict(n_bootstrap=min(config.n_bootstrap, 200), alpha=config.alpha, seed=seed)
    common = dict(simulator=simulator, control=policies["control"], control_kind=rounds.control, user=rounds.user, slot=rounds.slot)
    # The edits first: each makes two passes over the rounds per member (a policy's values one), and a long shard
    # started last leaves the other workers idle while it finishes.
    under_edits = map_shards(_edit_values, list(edits.values()), common, priority=-1)
    values = map_shards(member_round_values, list(policies.values()), {"simulator": simulator, "user": rounds.user, "slot": rounds.slot},
                        priority=-1)
    return StartedSimulation(list(policies), values, dict(edits), under_edits, boot)


def exact_answers(edits: Mapping[str, FeatureEdit], rounds: Rounds, truth_world: tuple[SyntheticWorld, np.ndarray, np.ndarray] | None
                  ) -> dict[str, tuple[float, float, float]]:
    """Each edit's exact (control, total, direct) value in the synthetic world (``truth_world``: the world and the
    split's user and item ids as its integer indices); empty elsewhere (other datasets' ids need not be integers)."""
    if truth_world is None:
        return {}
    world, uid, iid = truth_world
    return {name: exact_answer(world, edit, rounds.control, uid, iid, rounds.user, rounds.slot, rounds.n_slots)
            for name, edit in edits.items()}


def finish_simulated(started: StartedSimulation, exact: Mapping[str, tuple[float, float, float]]
                     ) -> tuple[dict[str, tuple[SimEstimate, SimEstimate | None]], dict[str, EditAnswer]]:
    """The simulator's value of every policy (and lift over the control) and its answer to every edit from
    the shards' results, each answer with its edit's exact values where ``exact`` (:func:`exact_answers`) has them.
    The edits' answers come first: they need only the control's shard (submitted first of its map) and theirs."""
    base = started.values[started.policies.index("control")]
    answers = {}
    for name, under_edit in zip(started.edits, started.edit_values):
        answer = answer_from_values(base, under_edit, **started.boot)
        if name in exact:
            control, total, direct = exact[name]
            answer = replace(answer, true_control=control, true_total=total, true_direct=direct)
        answers[name] = answer
    values = estimates_from_values(dict(zip(started.policies, started.values)), "control", **started.boot)
    return values, answers


def simulate_interventions(simulation: SimulateResult, policies: Mapping[str, SlotPolicy], edits: Mapping[str, FeatureEdit],
                           rounds: Rounds, truth_world: tuple[SyntheticWorld, np.ndarray, np.ndarray] | None,
                           config: ContrastConfig, seed: int, map_shards: MapShards = in_order):
    """The simulator's value of every policy and its answer to every edit (:func:`start_simulated`, then
    :func:`finish_simulated`): the values by policy, the answers by edit."""
    started = start_simulated(simulation.simulator, policies, edits, rounds, config, seed, map_shards)
    return finish_simulated(started, exact_answers(started.edits, rounds, truth_world))


def _edit_values(edit: FeatureEdit, **common) -> EditValues:
    """One edit's shard of :func:`simulate_interventions`: :func:`~recause.tasks.simulate.answers.edit_values`."""
    return edit_values(edit=edit, **common)
