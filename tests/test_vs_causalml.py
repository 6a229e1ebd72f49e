"""The pure helpers of ``bench/vs_causalml.py`` (no peer venv): the meta-learners' rows from a train
log and the normalised AUUC, on frames small enough to check by hand."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


@pytest.fixture
def vs_causalml(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module("vs_causalml")


def train_log() -> pd.DataFrame:
    # 2 users × 3 items, pair = user * 3 + item: pair 0 shown twice (second positive), pair 5 shown once
    # (negative), pair 1 an organic find; pairs 1, 2, 3, 4 were never shown
    return pd.DataFrame({"user": [0, 0, 1, 0], "item": [0, 0, 2, 1],
                         "exposed": [True, True, True, False], "positive": [False, True, False, True]})


def test_rows_are_the_exposed_pairs_and_a_sample_of_the_never_exposed(vs_causalml) -> None:
    rows = vs_causalml.meta_learner_rows(train_log(), n_users=2, n_items=3, control_ratio=2.0, seed=0)
    pairs = rows.users * 3 + rows.items
    treated = rows.treatment == 1
    assert dict(zip(pairs[treated].tolist(), rows.outcome[treated].tolist())) == {0: 1.0, 5: 0.0}
    # 2 × 2 treated = 4 controls: all four never-shown pairs, only the organic find positive
    assert dict(zip(pairs[~treated].tolist(), rows.outcome[~treated].tolist())) == {1: 1.0, 2: 0.0, 3: 0.0, 4: 0.0}
    assert rows.counts() == {"treated": 2, "control": 4, "treated_positive": 1, "control_positive": 1}


def test_rows_refuse_more_controls_than_never_exposed_pairs(vs_causalml) -> None:
    with pytest.raises(ValueError, match="6 control pairs asked for, only 4 were never exposed"):
        vs_causalml.meta_learner_rows(train_log(), n_users=2, n_items=3, control_ratio=3.0, seed=0)


def test_normalised_auuc_is_one_for_the_truth_and_minus_one_reversed(vs_causalml) -> None:
    tau = np.array([[0.3, -0.1, 0.1], [0.2, 0.0, -0.2]])
    assert vs_causalml.normalised_auuc(tau, tau) == pytest.approx(1.0)
    # over the whole catalogue (depth D = I) the Qini weights of ranks r and I + 1 - r cancel:
    # w(r) + w(I + 1 - r) = (I - r + 1)/I + r/I - (I + 1)/I = 0, so the reversed ranking scores -1
    assert vs_causalml.normalised_auuc(-tau, tau) == pytest.approx(-1.0)


def test_result_ratio_is_inf_where_every_peer_harms(vs_causalml) -> None:
    def row(learner: str, cp: float, pehe: float, seed: int) -> dict:
        return {"seed": seed, "confounding": 1.0, "learner": learner, "cp_at_10": cp, "pehe": pehe}

    rows = [row("causalml_t", 0.04, 0.037, 1), row("econml_dr", 0.05, 0.036, 1), row("recause_gnn_causal", 0.10, 0.035, 1),
            row("causalml_t", -0.20, 0.078, 2), row("recause_gnn_causal", 0.05, 0.054, 2)]
    # best peers 0.05 and -0.20 (mean -0.075); GNN 0.10 and 0.05 (mean 0.075); ratios 2 and inf; gaps 0.05 and 0.25
    assert vs_causalml.summary(rows) == ("RESULT best_peer_cp=-0.0750 gnn_cp=0.0750 min_gnn_cp_vs_best_peer=2.0000 "
                                         "min_gnn_cp_minus_best_peer=0.0500 gnn_pehe_below_best_peer_all=True settings=2")
