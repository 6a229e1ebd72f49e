"""The simulate stage's logic: slates from logged rows, feature edits and their exact truth on a tiny
world (computed item by item here), the simulator's intervals, and a seeded fit on a small world."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from recause.models.world.scm import SyntheticWorld, WorldConfig
from recause.tasks.config import ConfigurationError
from recause.tasks.simulate.answers import exact_answer, exact_round_values
from recause.tasks.simulate.data import group_slates
from recause.tasks.simulate.data import States
from recause.tasks.simulate.edits import EditContext, FeatureEdit, _shift, profile_rewrite, re_ranked, resolve_topic
from recause.tasks.simulate.simulator import estimate_from_members

warnings.filterwarnings("ignore", message=".*[Ss]parse.*")


def test_slates_are_runs_of_a_users_rising_positions_with_their_weight() -> None:
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    rows = pd.DataFrame({
        "user": [0, 0, 0, 0, 1], "item": [3, 1, 2, 0, 2], "positive": [True, False, False, True, False],
        "exposed": [True, True, True, True, True], "position": [1, 2, 1, 3, 2], "propensity": [0.5, 0.25, 0.1, 0.25, 0.2],
        "timestamp": [t0, t0 + pd.Timedelta(seconds=1), t0 + pd.Timedelta(hours=5), t0 + pd.Timedelta(hours=5, seconds=2), t0],
    })
    slates = group_slates(rows, n_items=4, n_positions=3, reference_mix=0.5, max_weight=3.0)
    # user 0: [pos 1, pos 2] then, five hours later, [pos 1, pos 3]; user 1: [pos 2]
    assert slates.user.tolist() == [0, 0, 1]
    assert slates.items.tolist() == [[3, 1, -1], [2, -1, 0], [-1, 2, -1]]
    assert slates.clicks.tolist() == [[1, 0, 0], [0, 0, 1], [0, 0, 0]]
    # w = min(Π_k ((1 − α) + α / (n π0)), w_max) with α = 0.5, n = 4
    first = (0.5 + 0.5 / (4 * 0.5)) * (0.5 + 0.5 / (4 * 0.25))  # 0.75 × 1.0
    second = min((0.5 + 0.5 / (4 * 0.1)) * (0.5 + 0.5 / (4 * 0.25)), 3.0)  # 1.75 × 1.0
    assert np.allclose(slates.weight, [first, second, 0.5 + 0.5 / (4 * 0.2)])


def test_interest_shifts_move_the_topic_share_as_stated() -> None:
    theta = np.array([[0.6, 0.4, 0.0], [0.0, 0.5, 0.5]])
    toward = _shift(theta, topic=2, delta=0.5)  # (1 − δ)θ + δ e_2
    assert np.allclose(toward, [[0.3, 0.2, 0.5], [0.0, 0.25, 0.75]])
    away = _shift(theta, topic=1, delta=-0.5)  # θ_1 halves, then renormalised
    assert np.allclose(away, [[0.6 / 0.8, 0.2 / 0.8, 0.0], [0.0, 0.25 / 0.75, 0.5 / 0.75]])
    assert np.allclose(_shift(theta, 0, -1.0)[1], theta[1]) and _shift(theta, 0, -1.0)[0, 0] == 0.0


def _tiny_world() -> SyntheticWorld:
    return SyntheticWorld.create(WorldConfig(n_users=3, n_items=4, n_topics=2, slate_size=2, mean_sessions=2), seed=3)


def _round_value(world: SyntheticWorld, policy_world: SyntheticWorld, user: int, slot: int) -> float:
    """Σ_i π0(i|u) (p0 + κ_k τ), one item at a time (π0 from ``policy_world``, outcomes from ``world``)."""
    pi = policy_world.logging_policy(np.array([user]))[0]
    kappa = world.examination(2)[slot]
    total = 0.0
    for item in range(4):
        p0 = world.p_outcome_if_not_exposed(np.array([user]), np.array([item]), pairs=True)[0]
        p1 = world.p_outcome_if_exposed(np.array([user]), np.array([item]), pairs=True)[0]
        total += pi[item] * (p0 + kappa * (p1 - p0))
    return total


def test_the_exact_truth_of_an_interest_shift_item_by_item() -> None:
    world = _tiny_world()
    ids = np.arange(4)
    users, slots = np.array([0, 1, 2, 2]), np.array([0, 1, 0, 1])
    shifted = world.with_interests(np.array([1]), _shift(world.theta[[1]], 0, 0.6), _shift(world.theta_hat[[1]], 0, 0.6))
    assert np.allclose(shifted.theta_hat[1], _shift(world.theta_hat[[1]], 0, 0.6)[0]) and np.allclose(shifted.theta[0], world.theta[0])
    base, total, direct = exact_answer(world, FeatureEdit(world=shifted), "logging", np.arange(3), ids, users, slots, 2)
    by_hand = lambda outcome_world, policy_world: np.mean([_round_value(outcome_world, policy_world, u, k) for u, k in zip(users, slots)])  # noqa: E731
    assert base == pytest.approx(by_hand(world, world))
    assert direct == pytest.approx(by_hand(shifted, world))  # the same slates, outcomes under the edit
    assert total == pytest.approx(by_hand(shifted, shifted))  # the logging policy re-ranks too
    assert total != pytest.approx(direct)
    rounds = exact_round_values(world, FeatureEdit(world=shifted), "logging", np.arange(3), ids, users, slots, 2)
    assert rounds["direct"][1] == pytest.approx(_round_value(shifted, world, 1, 1))  # round by round, too
    assert rounds["total"][3] == pytest.approx(_round_value(shifted, shifted, 2, 1))
    assert np.allclose(rounds["control"][[0, 2]], [_round_value(world, world, 0, 0), _round_value(world, world, 2, 0)])


def test_the_exact_truth_of_a_population_shift_reweights_the_rounds() -> None:
    world = _tiny_world()
    users, slots = np.array([0, 1, 2, 2]), np.array([0, 1, 0, 1])
    weight = np.array([3.0, 1.0, 0.5])
    base, total, direct = exact_answer(world, FeatureEdit(user_weight=weight), "logging", np.arange(3), np.arange(4), users, slots, 2)
    values = np.array([_round_value(world, world, u, k) for u, k in zip(users, slots)])
    assert base == pytest.approx(values.mean())
    assert total == direct == pytest.approx((values * weight[users]).sum() / weight[users].sum())


def test_a_profile_rewrite_embeds_the_new_text_for_the_segment_and_leaves_the_world_as_it_was() -> None:
    from types import SimpleNamespace

    world = _tiny_world()
    states = States(np.zeros((3, 2), np.float32), np.zeros((4, 2), np.float32), "features", np.eye(3)[:, :2], np.eye(4)[:, :2],
                    None, np.array([0, 1, 1]), ("light", "heavy"))
    embedded: list[list[str]] = []
    context = EditContext(None, SimpleNamespace(world=world), SimpleNamespace(), states,
                          lambda texts: embedded.append(texts) or np.array([[3.0, 4.0]] * len(texts)))
    edit = profile_rewrite(context, "heavy", "I run every morning")
    assert embedded == [["I run every morning"]] and edit.user_rows.tolist() == [1, 2]
    assert np.allclose(edit.user_vectors, [[0.6, 0.8], [0.6, 0.8]]) and edit.world is world
    users, slots = np.array([0, 1, 2, 2]), np.array([0, 1, 0, 1])
    base, total, direct = exact_answer(world, edit, "logging", np.arange(3), np.arange(4), users, slots, 2)
    assert base == total == direct  # what users write does not move what they want
    with pytest.raises(ConfigurationError, match="segment 'nobody'"):
        profile_rewrite(context, "nobody", "text")
    no_text = EditContext(None, SimpleNamespace(world=world), None, states, None)
    assert "needs text features" in profile_rewrite(no_text, "heavy", "text")


def test_re_ranking_moves_the_control_as_the_imitation_moves() -> None:
    control = np.array([[0.5, 0.3, 0.2]])
    before = np.log(np.array([[0.2, 0.3, 0.5]]))
    assert np.allclose(re_ranked(control, before, before), control)
    after = before + np.log(np.array([[2.0, 1.0, 1.0]]))  # the imitation doubles item 0's odds
    assert np.allclose(re_ranked(control, before, after), np.array([[1.0, 0.3, 0.2]]) / 1.5)


def test_topics_are_named_by_number_or_by_one_topics_term() -> None:
    class Features:
        topics = pd.DataFrame({"topic": [0, 1, 2], "label": ["coffee / espresso", "running / trail", "trail / hiking"],
                               "terms": ["coffee, espresso, beans", "running, trail, shoes", "trail, hiking, boots"]})

    assert resolve_topic(Features, "1") == 1 and resolve_topic(Features, "Espresso") == 0 and resolve_topic(Features, "boots") == 2
    with pytest.raises(ConfigurationError, match="'trail': 2 topics have that term.*0: coffee / espresso"):
        resolve_topic(Features, "trail")
    with pytest.raises(ConfigurationError, match="'tea': no topic has that term"):
        resolve_topic(Features, "tea")


def test_every_topic_an_intervention_names_is_checked_before_training() -> None:
    from recause.tasks.contrast.config import ContrastConfig
    from recause.tasks.contrast.interventions import check_topics

    class Features:
        topics = pd.DataFrame({"topic": [0, 1], "label": ["coffee / espresso", "running / trail"],
                               "terms": ["coffee, espresso", "running, trail"]})

    def specs(*interventions: dict) -> list:
        return ContrastConfig(interventions=list(interventions)).interventions

    check_topics(specs({"kind": "user_edit", "name": "more-coffee", "topic": "coffee"},
                       {"kind": "item_edit", "name": "to-trail", "topic": "0", "set_topics": ["trail"]},
                       {"kind": "user_edit", "name": "new-text", "text": "I like tea"},
                       {"kind": "policy_swap", "name": "popular", "policy": "popularity"}), Features)
    with pytest.raises(ConfigurationError, match="'tea': no topic has that term"):
        check_topics(specs({"kind": "item_edit", "name": "to-tea", "topic": "coffee", "set_topics": ["tea"]}), Features)
    with pytest.raises(ConfigurationError, match="'darjeeling': no topic has that term"):
        check_topics(specs({"kind": "user_edit", "name": "more-tea", "topic": "darjeeling"}), Features)


def test_intervals_pair_the_members_and_the_rounds() -> None:
    same = [np.full(50, 0.04), np.full(50, 0.04)]
    control = [np.full(50, 0.02), np.full(50, 0.02)]
    value, lift = estimate_from_members(same, None, 100, 0.05, 0, control)
    assert (value.value, value.low, value.high) == pytest.approx((0.04, 0.04, 0.04))
    assert (lift.value, lift.low, lift.high) == pytest.approx((1.0, 1.0, 1.0))  # doubled, with nothing uncertain
    spread = [np.full(50, 0.03), np.full(50, 0.05)]  # two members that disagree
    value, _ = estimate_from_members(spread, None, 400, 0.05, 0)
    assert value.value == pytest.approx(0.04) and value.low == pytest.approx(0.03) and value.high == pytest.approx(0.05)
    weighted, _ = estimate_from_members([np.r_[np.zeros(25), np.ones(25)]], np.r_[np.ones(25), 3 * np.ones(25)], 50, 0.05, 0)
    assert weighted.value == pytest.approx(0.75)


@pytest.mark.slow
def test_a_seeded_simulator_on_a_small_world_reports_its_fidelity(one_thread) -> None:
    from recause.tasks.data.split import SplitConfig, split_dataset
    from recause.tasks.data.synthetic import load_synthetic
    from recause.tasks.simulate.config import SimulateConfig
    from recause.tasks.simulate.stage import run_simulate

    data = load_synthetic(WorldConfig(n_users=150, n_items=60, n_topics=4, slate_size=4, mean_sessions=6), seed=2)
    split = split_dataset(data, SplitConfig(), seed=2)
    config = SimulateConfig(epochs=2, ensemble=2, user_epochs=5, imitation_epochs=1, batch_size=64)
    first = run_simulate(split, data, None, None, config, seed=7, threads=1)
    again = run_simulate(split, data, None, None, config, seed=7, threads=1)
    assert first.metrics["simulator/pehe"] == again.metrics["simulator/pehe"]  # seeded end to end
    assert first.simulator.size == 2 and first.metrics["simulator/states"] == "features"
    positions = first.fidelity.positions
    assert positions["position"].tolist() == [1, 2, 3, 4] and (positions["n"] > 0).all()
    assert first.fidelity.counts["real_share"].sum() == pytest.approx(1.0)
    assert 0.0 <= first.metrics["simulator/c2st_auc"] <= 1.0 and first.metrics["simulator/pehe"] > 0
    sampled = first.simulator.sample_clicks(0, _held(split, first), seed=1)
    assert set(np.unique(sampled)) <= {0.0, 1.0}


def test_the_response_models_epoch_is_capped_at_epoch_slates(one_thread) -> None:
    """epoch_slates = 100 with batches of 32: each epoch of every member runs ⌈100 / 32⌉ = 4 steps, fewer
    than a pass over the small world's training slates; without the cap, a whole pass."""
    from recause.tasks.data.split import SplitConfig, split_dataset
    from recause.tasks.data.synthetic import load_synthetic
    from recause.tasks.simulate.config import SimulateConfig
    from recause.tasks.simulate.fit import fit_simulator

    data = load_synthetic(WorldConfig(n_users=150, n_items=60, n_topics=4, slate_size=4, mean_sessions=6), seed=2)
    split = split_dataset(data, SplitConfig(), seed=2)
    for cap in (100, None):
        config = SimulateConfig(epochs=2, ensemble=1, user_epochs=2, imitation_epochs=1, batch_size=32, epoch_slates=cap)
        history = fit_simulator(split, data, None, config, seed=7, threads=1).histories[0]
        assert history["steps_per_pass"] > 4
        assert history["steps_per_epoch"] == (4 if cap else history["steps_per_pass"])


def test_a_fall_of_val_loss_below_min_delta_does_not_reset_the_members_patience(one_thread) -> None:
    """min_delta = 1 (no epoch's fall can reach it): after the first check, patience 2 ends the fit at 3 epochs of
    the 12 allowed, where min_delta = 0 lets a slowly falling val/loss run on; the best epoch's weights are
    still the lowest val/loss seen."""
    from recause.tasks.data.split import SplitConfig, split_dataset
    from recause.tasks.data.synthetic import load_synthetic
    from recause.tasks.simulate.config import SimulateConfig
    from recause.tasks.simulate.fit import fit_response, training_data

    data = load_synthetic(WorldConfig(n_users=150, n_items=60, n_topics=4, slate_size=4, mean_sessions=6), seed=2)
    split = split_dataset(data, SplitConfig(), seed=2)
    histories = {}
    for min_delta in (0.0, 1.0):
        config = SimulateConfig(epochs=12, patience=2, min_delta=min_delta, batch_size=32, lr=3e-4, mode="ipw_likelihood")
        histories[min_delta] = fit_response(training_data(split, data, None, config), config, seed=7, threads=1).history
    assert histories[1.0]["epochs"] == 3 and 0 <= histories[1.0]["best_epoch"] <= 2
    assert histories[0.0]["epochs"] > 3


def test_the_user_gans_epochs_fit_in_user_steps() -> None:
    from recause.tasks.simulate.config import SimulateConfig
    from recause.tasks.simulate.fit import user_epochs

    config = SimulateConfig(user_epochs=150, user_steps=4000)
    assert user_epochs(config, 12) == 150  # the default world: 12 batches of users, 1,800 steps
    assert user_epochs(config, 188) == 21  # 48,000 users: 21 epochs, 3,948 steps
    assert user_epochs(config, 5000) == 1 and user_epochs(config.model_copy(update={"user_steps": None}), 188) == 150


def test_the_imitations_epoch_is_capped_at_imitation_rows(one_thread, monkeypatch) -> None:
    """imitation_rows = 2,500 of a log with more shown rows: each of 2 epochs runs ⌈2,500 / 1,024⌉ = 3 batches."""
    from recause.models.simulator.policy import PolicyImitation
    from recause.tasks.data.split import SplitConfig, split_dataset
    from recause.tasks.data.synthetic import load_synthetic
    from recause.tasks.simulate.config import SimulateConfig
    from recause.tasks.simulate.fit import fit_policy_imitation, training_data

    data = load_synthetic(WorldConfig(n_users=400, n_items=60, n_topics=4, slate_size=4, mean_sessions=6), seed=2)
    split = split_dataset(data, SplitConfig(), seed=2)
    shown = int(split.train["exposed"].fillna(False).sum())
    assert shown > 4 * 1024
    calls: list[int] = []
    loss = PolicyImitation.loss
    monkeypatch.setattr(PolicyImitation, "loss", lambda self, u, i: calls.append(len(i)) or loss(self, u, i))
    for cap, batches in ((2_500, 2 * 3), (None, 2 * -(-shown // 1024))):
        calls.clear()
        config = SimulateConfig(imitation_epochs=2, imitation_rows=cap)
        fit_policy_imitation(split, training_data(split, data, None, config).states, config, seed=1, threads=1)
        assert len(calls) == batches and sum(calls) == 2 * (cap or shown)


def _tiny_simulation():
    """A one-member simulator of a small synthetic world, its split, and 1,000 logged rounds."""
    from recause.tasks.contrast.estimation import logged_rounds
    from recause.tasks.data.split import SplitConfig, split_dataset
    from recause.tasks.data.synthetic import load_synthetic
    from recause.tasks.simulate.config import SimulateConfig
    from recause.tasks.simulate.stage import run_simulate

    data = load_synthetic(WorldConfig(n_users=80, n_items=30, n_topics=3, slate_size=3, mean_sessions=4), seed=4)
    split = split_dataset(data, SplitConfig(), seed=4)
    simulation = run_simulate(split, data, None, None, SimulateConfig(epochs=1, ensemble=1, user_epochs=2, imitation_epochs=1,
                                                                      batch_size=64), seed=4, threads=1)
    return simulation, split, logged_rounds(split, None, 1000, 4)


def test_simulated_answers_need_no_integer_ids_outside_the_synthetic_world(one_thread) -> None:
    # Open Bandit's user ids are hashes: only the synthetic world's ids may be cast to its indices
    from dataclasses import replace

    from recause.tasks.contrast.config import ContrastConfig
    from recause.tasks.contrast.estimation import logged_rounds
    from recause.tasks.contrast.interventions import SlotFree
    from recause.tasks.contrast.stage import simulate_interventions
    from recause.tasks.data.schema import IdIndex

    simulation, split, _ = _tiny_simulation()
    hashed = replace(split, users=IdIndex(np.array([f"{u:012x}" for u in split.users.ids], dtype=object)))
    rounds = logged_rounds(hashed, None, 1000, 4)
    uniform = SlotFree(lambda users: np.full((len(users), split.n_items), 1.0 / split.n_items))
    weights = np.ones(split.n_users)
    weights[: split.n_users // 2] = 2.0
    values, answers = simulate_interventions(simulation, {"control": uniform}, {"half": FeatureEdit(user_weight=weights)},
                                             rounds, None, ContrastConfig(n_bootstrap=50), seed=4)
    assert answers["half"].true_control is None and np.isfinite(answers["half"].total_lift.value)
    assert set(values) == {"control"}


def test_the_stages_edit_answers_reuse_the_controls_values_and_equal_one_call_each(one_thread) -> None:
    """The contrast stage's edits take the control's values from its policy's shard: the answers are answer_edit's."""
    from recause.tasks.contrast.config import ContrastConfig
    from recause.tasks.contrast.interventions import SlotFree
    from recause.tasks.contrast.stage import simulate_interventions
    from recause.tasks.simulate.answers import answer_edit

    simulation, split, rounds = _tiny_simulation()
    sim = simulation.simulator
    control = SlotFree(lambda users: np.linspace(1.0, 2.0, split.n_items)[None, :].repeat(len(users), 0) / 45.0)
    weights = np.ones(split.n_users)
    weights[::3] = 3.0
    edits = {"thirds": FeatureEdit(user_weight=weights), "moved": FeatureEdit(user_weight=np.linspace(0.1, 5.0, split.n_users))}
    config = ContrastConfig(n_bootstrap=50)
    _, answers = simulate_interventions(simulation, {"control": control}, edits, rounds, None, config, seed=4)
    for name, edit in edits.items():
        one = answer_edit(sim, edit, control, rounds.control, rounds.user, rounds.slot, n_bootstrap=50, alpha=config.alpha, seed=4)
        got = answers[name]
        assert (got.total, got.total_lift, got.direct, got.direct_lift) == (one.total, one.total_lift, one.direct, one.direct_lift)
        assert all(np.array_equal(got.per_round[k], one.per_round[k]) for k in one.per_round)
    assert answers["moved"].direct_lift.value != 0.0  # the edit moved the values: the comparison is not of two zeros


def _held(split, result):
    from recause.tasks.simulate.stage import held_out_slates

    return held_out_slates(split, result.simulator.n_positions)
