"""Interventions as a discriminated union on ``kind``, and what the contrast stage reads off the data:
the Open Bandit Bernoulli-TS prior on the dataset, on-policy values, the outcome's name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from recause.flows.config import build_config
from recause.tasks.contrast.config import ContrastConfig
from recause.tasks.contrast.interventions import POLICY_BUILDERS, PolicySwap
from recause.tasks.contrast.sources import on_policy_values, outcome_label
from recause.tasks.data.open_bandit import read_bts_prior
from recause.tasks.data.schema import BetaPrior, Dataset, DatasetMeta, rating_study_meta


def test_a_spec_without_kind_is_a_policy_swap_and_an_unknown_kind_is_an_error() -> None:
    config = ContrastConfig(interventions=[{"name": "lt", "policy": "popularity_penalty", "strength": 2.0},
                                           {"kind": "policy_swap", "name": "r", "policy": "random"}])
    first, second = config.interventions
    assert isinstance(first, PolicySwap) and first.kind == "policy_swap" and first.strength == 2.0
    assert isinstance(second, PolicySwap) and second.deploys == "random"
    with pytest.raises(ValidationError, match="does not match any of the expected tags: 'policy_swap', 'user_edit'"):
        ContrastConfig(interventions=[{"kind": "user-edit", "name": "x"}])
    with pytest.raises(ValidationError, match="either shifts interest toward a topic .topic, delta. or replaces profile text"):
        ContrastConfig(interventions=[{"kind": "user_edit", "name": "x"}])
    with pytest.raises(ValidationError, match="either shifts interest"):
        ContrastConfig(interventions=[{"kind": "user_edit", "name": "x", "topic": "coffee", "text": "I like tea"}])
    with pytest.raises(ValidationError, match="either items .ids. or a topic"):
        ContrastConfig(interventions=[{"kind": "item_edit", "name": "x", "items": [1], "topic": "coffee", "text": "t"}])
    with pytest.raises(ValidationError, match="population weights must be ≥ 0"):
        ContrastConfig(interventions=[{"kind": "population_shift", "name": "x", "weights": {"heavy": -1.0}}])
    with pytest.raises(ValidationError, match="policy"):
        ContrastConfig(interventions=[{"name": "x", "policy": "no-such-policy"}])


def test_interventions_round_trip_through_set_overrides() -> None:
    config = build_config("smoke", overrides=["contrast.interventions=[{name: lt, policy: popularity_penalty, base: logging}]"])
    [spec] = config.contrast.interventions
    assert (spec.kind, spec.name, spec.policy, spec.base) == ("policy_swap", "lt", "popularity_penalty", "logging")
    again = ContrastConfig.model_validate(config.contrast.model_dump(mode="json"))
    assert again == config.contrast


def test_every_policy_with_its_own_rule_has_one_builder() -> None:
    # the rest rank by their scores; the builders are exactly the policies that are not score rankings
    assert set(POLICY_BUILDERS) == {"random", "logging", "bts", "popularity_penalty", "diversity"}


def test_the_bts_prior_is_read_by_item_id_and_aligned_to_any_order(tmp_path: Path) -> None:
    path = tmp_path / "prior_bts.yaml"
    path.write_text("all:\n  alpha: [1.0, 2.0, 3.0]\n  beta: [10.0, 20.0, 30.0]\nmen:\n  alpha: [5.0]\n  beta: [6.0]\n")
    prior = read_bts_prior(path, "all")
    alpha, beta = prior.aligned(np.array([2, 0]))
    assert alpha.tolist() == [3.0, 1.0] and beta.tolist() == [30.0, 10.0]
    assert prior.aligned(np.array([0, 3])) is None  # item 3 has no prior
    assert read_bts_prior(tmp_path / "absent.yaml", "all") is None
    path.write_text("all:\n  alpha: [1.0]\n")
    with pytest.raises(ValueError, match="prior_bts.yaml: expected"):
        read_bts_prior(path, "all")
    with pytest.raises(ValueError, match="positive"):
        BetaPrior(np.arange(2), np.array([1.0, 0.0]), np.array([1.0, 1.0]))


def test_the_open_bandit_loader_puts_the_prior_on_the_dataset(data_root: Path) -> None:
    from recause.tasks.data.open_bandit import load_open_bandit

    dataset = load_open_bandit(data_root / "open-bandit", "all")
    assert dataset.bts_prior is not None and len(dataset.bts_prior.alpha) == 80
    # the first values of ZOZO's published prior for campaign "all"
    assert dataset.bts_prior.alpha[:3].tolist() == [47.0, 8.0, 62.0]


def test_on_policy_values_are_the_positive_share_of_a_policys_own_rows() -> None:
    rows = pd.DataFrame({"policy": ["random", "random", "bts", "bts", "bts", "bts"], "outcome": [1, 0, 1, 0, 0, 0.0]})
    meta = DatasetMeta("x", "binary", (0.0, 1.0), 1.0, False, "random", True, ("policy",))
    dataset = Dataset(rows, pd.DataFrame({"item_id": [0]}), pd.DataFrame({"user_id": [0]}), meta)
    # bts: 1 click in 4 rows; random is the randomized policy (the control), not a deployable value
    assert on_policy_values(dataset, ["bts", "random", "popularity"]) == {"bts": 0.25}
    ratings = rating_study_meta("coat", {}, ())
    assert outcome_label(meta) == "click rate" and outcome_label(ratings) == "share of outcomes >= 4"
