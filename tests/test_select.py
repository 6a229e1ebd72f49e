"""Model choice with uncertainty (tasks/train/select.py): the learned model only when its advantage's
bootstrap interval lies above zero."""

from __future__ import annotations

import numpy as np
import pytest

from recause.tasks.train.select import paired_bootstrap, select


def test_paired_bootstrap_brackets_the_mean_difference() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(1.0, 1.0, 2000)
    b = a - 0.1 + rng.normal(0, 0.05, 2000)  # paired: the difference is 0.1 ± small noise
    mean, low, high = paired_bootstrap(a, b)
    assert mean == pytest.approx(0.1, abs=0.01) and low < mean < high and high - low < 0.02
    with pytest.raises(ValueError, match="aligned"):
        paired_bootstrap(a[:1], b[:1])


def test_the_learned_model_needs_an_advantage_beyond_its_interval() -> None:
    rng = np.random.default_rng(1)
    base = rng.normal(0, 1, 500)
    clear = select("gnn_causal", base + 0.5, "gnn_t_learner", base, "val/auuc_ipw")
    assert clear.name == "gnn_causal" and clear.low > 0 and "beats gnn_t_learner by +0.5" in clear.reason
    noisy = select("gnn_causal", base + 0.01 + rng.normal(0, 1, 500), "gnn_t_learner", base, "val/auuc_ipw")
    assert noisy.name == "gnn_t_learner" and noisy.low < 0 < noisy.high and "the simpler gnn_t_learner is kept" in noisy.reason
    summary = noisy.summary()
    assert summary["uplift/model"] == "gnn_t_learner" and summary["uplift/selection_advantage_low"] == noisy.low


def test_epoch_choice_takes_the_criterions_best_from_the_likelihoods_best_on() -> None:
    from recause.tasks.train.callbacks import EpochChoice

    choice = EpochChoice(criterion=None)
    choice.epochs, choice.losses = [0, 1, 2, 3], [0.30, 0.20, 0.25, 0.27]  # the likelihood's best: epoch 2 (index 1)
    choice.values = [np.full(5, 9.0), np.full(5, 1.0), np.full(5, 2.0), np.full(5, 1.5)]  # epoch 1's 9.0 is before it
    index, reason = choice.choose()
    assert index == 2 and reason.startswith("epoch 3: best on val/auuc_ipw (2) among the epochs from the val/outcome_loss best (epoch 2")
    choice.values[1] = np.full(5, 3.0)  # nothing later beats the likelihood's own epoch
    assert choice.choose()[0] == 1
    assert list(choice.window()) == [1, 2, 3]  # a snapshot ensemble's checks: from the likelihood's best to the stop
    # replayed from records (the benches): the same choice
    replayed = EpochChoice.replay([0.30, 0.20, 0.25, 0.27], [np.full(5, 9.0), np.full(5, 3.0), np.full(5, 2.0), np.full(5, 1.5)])
    assert replayed.choose() == choice.choose() and replayed.epochs == [0, 1, 2, 3]


def test_the_headline_cp_is_the_acting_uplift_models() -> None:
    from recause.flows.pipeline import uplift_headline

    summary = {"model/name": "logging", "causal/cp_at_10": 0.04, "uplift/model": "gnn_causal",
               "gnn/gnn_causal_uplift/causal/cp_at_10": 0.125, "gnn/gnn_t_learner_uplift/causal/cp_at_10": 0.07}
    assert uplift_headline(summary)["causal/cp_at_10"] == 0.125
    assert uplift_headline(summary)["causal/cp_at_10_policy"] == "gnn_causal_uplift"
    plain = {"model/name": "logging", "causal/cp_at_10": 0.04}
    assert uplift_headline(plain) == plain | {"causal/cp_at_10_policy": "logging"}
