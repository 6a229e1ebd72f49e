r"""Reward models q̂(x, a, k) ≈ E[r | x, a, k] for the model-based off-policy estimators (DM, DR, ...).

:class:`CrossFittedLogistic` is the regression model of Open Bandit Pipeline's ``RegressionModel``
with a logistic-regression base model: features are the round's context concatenated with the
action's features, one model per position when ``len_list > 1``, and K-fold cross-fitting (each
round is predicted by models that never saw it; Narita, Yasui & Yata, "Debiased Off-Policy
Evaluation for Recommendation Systems", RecSys 2021, arXiv:2002.08536). With the same folds,
features and solver settings it returns obp's predictions.

Unlike obp, a fold whose training rows at some position hold a single class (e.g. no click at
all, common with click rates of 0.4%) does not fail: that model predicts the class's rate (0 or 1)
for every action. scikit-learn is imported lazily, inside :meth:`CrossFittedLogistic.fit_predict`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LinearLogit:
    """A fitted logistic model split by feature block: logit = context @ w_context + action_features @ w_action + b.

    ``constant`` set means the training labels held one class: predict it everywhere.
    """

    w_context: np.ndarray  # (d_context,)
    w_action: np.ndarray  # (d_action,)
    intercept: float
    constant: float | None = None

    def predict_all_actions(self, context: np.ndarray, action_context: np.ndarray) -> np.ndarray:
        """(n, n_actions) P(r = 1 | x_i, a) for every action."""
        n, n_actions = context.shape[0], action_context.shape[0]
        if self.constant is not None:
            return np.full((n, n_actions), self.constant)
        logit = (context @ self.w_context)[:, None] + (action_context @ self.w_action)[None, :] + self.intercept
        return 1.0 / (1.0 + np.exp(-logit))


@dataclass(frozen=True)
class CrossFitted:
    """The models of a cross-fit: ``models[fold][position]``; ``fold_of[i]`` = the fold holding round i out."""

    models: list[list[LinearLogit]]
    fold_of: np.ndarray
    action_context: np.ndarray

    @property
    def n_rounds(self) -> int:
        return len(self.fold_of)

    def predict_with_fold(self, context: np.ndarray, fold: int = 0, position: int = 0) -> np.ndarray:
        """(n, n_actions) q̂ for new rounds (not among the fitted ones) from one fold's model at ``position``.

        ``context``: (n, d_context) features of the new rounds. Every fold's model saw a different
        part of the data; any one of them is a valid out-of-sample predictor for new rounds.
        """
        return self.models[fold][position].predict_all_actions(_as_features(context), self.action_context)

    def predict(self, rows: np.ndarray, context: np.ndarray) -> np.ndarray:
        """(len(rows), n_actions, len_list) out-of-fold q̂ for ``rows``; ``context`` holds all rounds' features."""
        rows = np.asarray(rows)
        context = _as_features(context)
        out = np.zeros((len(rows), self.action_context.shape[0], len(self.models[0])))
        for fold, per_position in enumerate(self.models):
            mine = np.flatnonzero(self.fold_of[rows] == fold)
            if mine.size == 0:
                continue
            for k, model in enumerate(per_position):
                out[mine, :, k] = model.predict_all_actions(context[rows[mine]], self.action_context)
        return out


@dataclass(frozen=True)
class CrossFittedLogistic:
    """K-fold cross-fitted logistic regression of reward on [context, action features], per position.

    Parameters
    ----------
    n_actions : number of actions.
    len_list : positions; one model per position when > 1 (obp's ``RegressionModel``).
    n_folds : K of the cross-fitting, >= 1 (1 = fit and predict on all rounds).
    random_state : seed of the fold shuffle (``sklearn.model_selection.KFold(shuffle=True)``) and the solver.
    max_iter, C : of ``sklearn.linear_model.LogisticRegression`` (lbfgs, L2).
    """

    n_actions: int
    len_list: int = 1
    n_folds: int = 3
    random_state: int = 12345
    max_iter: int = 1000
    C: float = 1.0

    def __post_init__(self) -> None:
        if self.n_actions < 1 or self.len_list < 1:
            raise ValueError(f"n_actions and len_list must be >= 1, got {self.n_actions} and {self.len_list}")
        if self.n_folds < 1:
            raise ValueError(f"n_folds must be >= 1, got {self.n_folds}")
        if self.C <= 0 or self.max_iter < 1:
            raise ValueError(f"C must be > 0 and max_iter >= 1, got C={self.C}, max_iter={self.max_iter}")

    def fit_predict(
        self,
        context: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        position: np.ndarray | None = None,
        action_context: np.ndarray | None = None,
    ) -> np.ndarray:
        """Out-of-fold predictions q̂(x_i, a, k) for every round, action and position.

        Parameters
        ----------
        context : (n, d_context) float, the round's features; a ``scipy.sparse`` matrix is kept sparse
            (e.g. one-hot user ids).
        action : (n,) int in [0, n_actions), the logged action.
        reward : (n,) in {0, 1}.
        position : (n,) int in [0, len_list), 0-based; None = all 0.
        action_context : (n_actions, d_action) action features; None = one-hot of the action id.

        Returns
        -------
        (n, n_actions, len_list) float in [0, 1]: row i is predicted by the models of the fold
        that holds i out.
        """
        fitted = self.fit_folds(context, action, reward, position, action_context)
        return fitted.predict(np.arange(fitted.n_rounds), context)

    def fit_folds(
        self,
        context: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        position: np.ndarray | None = None,
        action_context: np.ndarray | None = None,
    ) -> CrossFitted:
        """Fit the per-fold, per-position models; predict later, in blocks of rounds, with
        :meth:`CrossFitted.predict` (memory ``block × n_actions`` instead of ``n × n_actions``)."""
        context, action, reward, position, action_context = self._check(
            context, action, reward, position, action_context
        )
        n = context.shape[0]
        fold_of = np.zeros(n, dtype=np.int64)
        models: list[list[LinearLogit]] = []
        for fold, (train, test) in enumerate(self._folds(n)):
            fold_of[test] = fold
            per_position = []
            for k in range(self.len_list):
                rows = train[position[train] == k]
                if rows.size == 0:
                    raise ValueError(f"no training rounds at position {k} in a fold; use fewer folds or check position")
                per_position.append(self._fit(_hstack(context[rows], action_context[action[rows]]), reward[rows], context.shape[1]))
            models.append(per_position)
        return CrossFitted(models, fold_of, action_context)

    def _folds(self, n: int) -> list[tuple[np.ndarray, np.ndarray]]:
        if self.n_folds == 1:
            every = np.arange(n)
            return [(every, every)]
        from sklearn.model_selection import KFold

        return list(KFold(n_splits=self.n_folds, shuffle=True, random_state=self.random_state).split(np.zeros(n)))

    def _fit(self, features: np.ndarray, labels: np.ndarray, d_context: int) -> LinearLogit:
        d_action = features.shape[1] - d_context
        classes = np.unique(labels)
        if classes.size == 1:  # obp's LogisticRegression raises here
            return LinearLogit(np.zeros(d_context), np.zeros(d_action), 0.0, constant=float(classes[0]))
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=self.C, max_iter=self.max_iter, random_state=self.random_state)
        model.fit(features, labels)
        coef = model.coef_[0]
        return LinearLogit(coef[:d_context], coef[d_context:], float(model.intercept_[0]))

    def _check(
        self,
        context: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        position: np.ndarray | None,
        action_context: np.ndarray | None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        context = _as_features(context)
        if context.ndim != 2:
            raise ValueError(f"context must be 2-D (n_rounds, d_context), got shape {context.shape}")
        n = context.shape[0]
        action, reward = np.asarray(action), np.asarray(reward, dtype=np.float64)
        if action.shape != (n,) or reward.shape != (n,):
            raise ValueError(
                f"action and reward must have shape ({n},) like context, got {action.shape} and {reward.shape}"
            )
        if not np.isin(reward, (0.0, 1.0)).all():
            raise ValueError("reward must be binary (0/1) for a logistic reward model")
        if not np.issubdtype(action.dtype, np.integer) or action.min() < 0 or action.max() >= self.n_actions:
            raise ValueError(f"action must be integers in [0, n_actions={self.n_actions})")
        position = np.zeros(n, dtype=np.int64) if position is None or self.len_list == 1 else np.asarray(position)
        if position.shape != (n,) or not np.issubdtype(position.dtype, np.integer):
            raise ValueError(f"position must be ({n},) integers, got shape {position.shape} dtype {position.dtype}")
        if position.min() < 0 or position.max() >= self.len_list:
            raise ValueError(
                f"position must lie in [0, len_list={self.len_list}), found {position.min()}..{position.max()}"
            )
        if action_context is None:
            action_context = np.eye(self.n_actions)
        action_context = np.asarray(action_context, dtype=np.float64)
        if action_context.ndim != 2 or action_context.shape[0] != self.n_actions:
            raise ValueError(
                f"action_context must be (n_actions={self.n_actions}, d_action), got {action_context.shape}"
            )
        values = context.data if _is_sparse(context) else context
        if not (np.isfinite(values).all() and np.isfinite(action_context).all()):
            raise ValueError("context and action_context must be finite (no NaN or inf)")
        return context, action.astype(np.int64), reward, position.astype(np.int64), action_context


def _is_sparse(x: object) -> bool:
    return hasattr(x, "tocsr") and hasattr(x, "nnz")


def _as_features(x: object) -> np.ndarray:
    """Dense float64 array, or a CSR matrix when ``x`` is ``scipy.sparse``."""
    if _is_sparse(x):
        return x.tocsr().astype(np.float64)  # type: ignore[union-attr]
    return np.asarray(x, dtype=np.float64)


def _hstack(context: np.ndarray, action_features: np.ndarray) -> np.ndarray:
    if _is_sparse(context):
        from scipy import sparse

        return sparse.hstack([context, sparse.csr_matrix(action_features)], format="csr")
    return np.c_[context, action_features]
