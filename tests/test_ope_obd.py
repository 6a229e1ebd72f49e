"""Open Bandit Dataset: our estimators reproduce Open Bandit Pipeline's published OBD numbers.

obp's quickstart (campaign "all"): Bernoulli TS with the ZOZOTOWN prior evaluated on the
uniform-random logs, reward model LogisticRegression(max_iter=1000, random_state=12345) per
position with 3-fold cross-fitting (random_state=12345); obp reports DM 0.003545, IPW 0.004553,
SNIPW 0.004776, DR 0.004728. The action distribution is simulated (n_sim = 100,000 here and in
obp), so IPW/SNIPW/DR carry Monte-Carlo error: over 10 independent simulations their estimates
have a standard deviation of ≈1.8e-5 (bench/obd_ope.py), and the tolerance below is 3·√2 times it
(two independent simulations, ours and obp's), rounded up to 1e-4; DM's is ≈3e-6 (tolerance 3e-5).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from recause.models.policies.bandit import bernoulli_ts_action_dist
from recause.models.ope.estimators import (
    DirectMethod,
    DoublyRobust,
    InverseProbabilityWeighting,
    SelfNormalizedInverseProbabilityWeighting,
)
from recause.models.ope.comparison import estimate_all
from recause.models.ope.reward_models import CrossFittedLogistic

OBP = {"dm": (0.003545, 3e-5), "ipw": (0.004553, 1e-4), "snipw": (0.004776, 1e-4), "dr": (0.004728, 1e-4)}


@pytest.mark.integration
def test_obd_estimates_reproduce_open_bandit_pipeline(data_root: Path) -> None:
    from sklearn.preprocessing import LabelEncoder

    folder = data_root / "open-bandit"
    log = pd.read_csv(folder / "random" / "all" / "all.csv.gz", index_col=0).sort_values("timestamp")  # obp's row order
    items = pd.read_csv(folder / "random" / "all" / "item_context.csv", index_col=0)
    context = pd.get_dummies(log.loc[:, log.columns.str.contains("user_feature")], drop_first=True).to_numpy(np.float64)
    categorical = items.drop(columns=["item_id", "item_feature_0"]).apply(LabelEncoder().fit_transform)
    action_context = pd.concat([categorical, items[["item_feature_0"]]], axis=1).to_numpy(np.float64)
    prior = yaml.safe_load((folder / "prior_bts.yaml").read_text())["all"]
    reward = log["click"].to_numpy(np.float64)
    action = log["item_id"].to_numpy(np.int64)
    position = log["position"].to_numpy(np.int64) - 1  # 1..3 -> 0..2

    dist = bernoulli_ts_action_dist(np.array(prior["alpha"]), np.array(prior["beta"]), 3, n_sim=100_000,
                                    random_state=12345, n_rounds=len(log))
    q_hat = CrossFittedLogistic(n_actions=80, len_list=3, n_folds=3, random_state=12345, max_iter=1000).fit_predict(
        context, action, reward, position, action_context)
    estimators = [DirectMethod(), InverseProbabilityWeighting(), SelfNormalizedInverseProbabilityWeighting(), DoublyRobust()]
    out = estimate_all(estimators, reward=reward, action=action, position=position,
                       pscore=log["propensity_score"].to_numpy(np.float64), action_dist=dist,
                       estimated_rewards_by_reg_model=q_hat, n_bootstrap_samples=200, random_state=0)
    truth = pd.read_csv(folder / "bts" / "all" / "all.csv.gz", index_col=0)["click"].mean()
    assert truth == pytest.approx(0.0042)
    for name, (published, tolerance) in OBP.items():
        assert out[name].value == pytest.approx(published, abs=tolerance), name
    assert out["dr"].covers(truth)
