"""The cross-fitted logistic reward model: obp's construction, out-of-fold predictions, single-class folds."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from recause.models.ope.reward_models import CrossFittedLogistic


def _data(n: int = 240, n_actions: int = 4, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    context = rng.normal(size=(n, 3))
    action = rng.integers(0, n_actions, n)
    position = rng.integers(0, 2, n)
    logit = context[:, 0] + 0.5 * action - 1.0 - 0.5 * position
    reward = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    return dict(context=context, action=action, reward=reward, position=position)


def test_one_fold_equals_sklearn_on_context_and_one_hot_action_per_position() -> None:
    data = _data()
    q = CrossFittedLogistic(n_actions=4, len_list=2, n_folds=1).fit_predict(**data)
    assert q.shape == (240, 4, 2)
    for k in range(2):
        at_k = data["position"] == k
        features = np.c_[data["context"], np.eye(4)[data["action"]]][at_k]
        model = LogisticRegression(max_iter=1000, random_state=12345).fit(features, data["reward"][at_k])
        for a in range(4):
            expected = model.predict_proba(np.c_[data["context"], np.tile(np.eye(4)[a], (240, 1))])[:, 1]
            np.testing.assert_allclose(q[:, a, k], expected, atol=1e-12)


def test_predictions_are_out_of_fold() -> None:
    """Changing one round's label changes only the predictions of rounds in the other folds."""
    data = _data(seed=1)
    model = CrossFittedLogistic(n_actions=4, len_list=2, n_folds=3, random_state=0)
    before = model.fit_predict(**data)
    flipped = dict(data, reward=data["reward"].copy())
    flipped["reward"][0] = 1.0 - flipped["reward"][0]
    after = model.fit_predict(**flipped)
    np.testing.assert_array_equal(after[0], before[0])
    assert not np.allclose(after, before)


def test_a_fold_whose_training_labels_are_one_class_predicts_that_class() -> None:
    # one click in 30 rounds: the fold holding it out trains on zeros only (obp's LogisticRegression raises)
    rng = np.random.default_rng(2)
    n = 30
    reward = np.zeros(n)
    reward[7] = 1.0
    data = dict(context=rng.normal(size=(n, 2)), action=rng.integers(0, 3, n), reward=reward)
    model = CrossFittedLogistic(n_actions=3, n_folds=3, random_state=0)
    q = model.fit_predict(**data)
    from sklearn.model_selection import KFold

    for train, test in KFold(3, shuffle=True, random_state=0).split(np.zeros(n)):
        if reward[train].sum() == 0:
            assert 7 in test
            np.testing.assert_array_equal(q[test], 0.0)
        else:
            assert ((q[test] > 0) & (q[test] < 1)).all()
    # a position that never saw a click at all: predicts 0 there, fits the other position normally
    position = np.r_[np.zeros(15, dtype=int), np.ones(15, dtype=int)]
    reward2 = np.r_[rng.integers(0, 2, 15).astype(float), np.zeros(15)]
    q2 = CrossFittedLogistic(n_actions=3, len_list=2, n_folds=1).fit_predict(data["context"], data["action"], reward2, position)
    np.testing.assert_array_equal(q2[:, :, 1], 0.0)
    assert ((q2[:, :, 0] > 0) & (q2[:, :, 0] < 1)).all()


def test_sparse_context_gives_the_dense_predictions() -> None:
    from scipy import sparse

    data = _data(seed=3)
    dense = CrossFittedLogistic(n_actions=4, n_folds=2, random_state=1).fit_predict(**data)
    as_sparse = dict(data, context=sparse.csr_matrix(data["context"]))
    sparse_q = CrossFittedLogistic(n_actions=4, n_folds=2, random_state=1).fit_predict(**as_sparse)
    np.testing.assert_allclose(sparse_q, dense, atol=1e-6)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"reward": np.full(240, 0.5)}, r"reward must be binary"),
        ({"action": np.full(240, 4)}, r"action must be integers in \[0, n_actions=4\)"),
        ({"position": np.full(240, 2)}, r"position must lie in \[0, len_list=2\)"),
        ({"context": np.full((240, 3), np.nan)}, r"context and action_context must be finite"),
        ({"action_context": np.eye(3)}, r"action_context must be \(n_actions=4, d_action\)"),
        ({"reward": np.zeros(10)}, r"action and reward must have shape \(240,\)"),
    ],
)
def test_bad_inputs_are_named(change: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CrossFittedLogistic(n_actions=4, len_list=2, n_folds=1).fit_predict(**{**_data(), **change})


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="n_folds must be >= 1"):
        CrossFittedLogistic(n_actions=4, n_folds=0)
    with pytest.raises(ValueError, match="C must be > 0"):
        CrossFittedLogistic(n_actions=4, C=0.0)
