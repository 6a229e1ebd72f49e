r"""The synthetic world: a seeded structural causal model of recommending, with exact ground truth.

For user u and item i (indices), with topic interests :math:`\theta_u` (Dirichlet), item topic mix
:math:`\phi_i` (1–3 topics), item quality :math:`q_i`, standardised log Zipf popularity :math:`z_i`
(correlated with quality), user log-activity :math:`\alpha_u` and confounding strength :math:`c`:

.. math::

    a(u,i) &= \log(\epsilon + T\,\langle\theta_u, \phi_i\rangle)
        \quad\text{(interest match; } a \approx 0 \text{ for an average pair)}\\
    p_0(u,i) &= \sigma\big(\operatorname{logit}(\text{organic\_rate}) + w_{oa}\,a + c\,w_{op}\,z_i
        + w_{act}\,\alpha_u\big) \\
    r(u,i) &= \sigma\big(\operatorname{logit}(\text{persuasion\_rate}) + w_{ra}\,a + w_{rq}\,q_i\big) \\
    p_1(u,i) &= r + (1 - r)\,\rho\,p_0, \qquad \tau(u,i) = p_1 - p_0 = r(1-\rho p_0) - (1-\rho)\,p_0

- :math:`p_0 = P(Y=1 \mid do(E=0))`: the user finds and engages with the item on their own
  (organic discovery rises with interest, popularity and activity).
- :math:`p_1 = P(Y=1 \mid do(E=1))` in the top slot: the recommendation persuades with
  probability r; if it does not, the user may still find the item later, but a dismissed
  recommendation leaves only a share ρ of the organic chance (``organic_after_dismissal``).
- In slot k the user examines the item with probability :math:`\kappa_k = k^{-\eta}`; unexamined,
  it is as if not shown, so :math:`P(Y=1 \mid \text{shown in slot } k) = p_0 + \kappa_k\,\tau`.
- :math:`\tau` takes both signs: recommending an item a user would find anyway (popular, high
  :math:`p_0`) but is not persuaded by burns it (τ < 0); a relevant niche item gains most.
- Popularity confounds: it raises exposure (logging policy) and :math:`p_0`, not the persuasion,
  so the click-through rate of recommended items overstates what recommending causes, and
  ranking by :math:`p_1` differs from ranking by :math:`\tau`.

Logging policy: each of a session's K slots is an independent draw from
:math:`\pi_0(i \mid u) = (1-\varepsilon)\,\mathrm{softmax}_i(c\,\beta_p z_i + \beta_a \hat a(u,i))
+ \varepsilon / n_{items}`, where :math:`\hat a` uses a noisy copy of the user's interests (the
production model's imperfect knowledge). Independent slots keep every propensity exact:
P(item i in slot k | u) = π0(i|u) and P(u exposed to i in S_u sessions) = 1 − (1 − π0)^{K S_u};
the price is that a slate may (rarely, on a large catalogue) repeat an item.

The world holds no data frames and does no I/O; :mod:`recause.tasks.data.synthetic` turns it into
tables.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from recause.models.world.text import MAX_TOPICS, TOPIC_NAMES, item_texts, profile_texts, search_queries

_AFFINITY_FLOOR = 0.05  # ε in a(u,i): keeps log finite for pairs with no shared topic
_EPOCH = pd.Timestamp("2026-01-01", tz="UTC")
SEGMENTS = ("light", "regular", "heavy")


class WorldConfig(BaseModel):
    """Every knob of the synthetic world. Sizes, confounding and organic rate are the main ones."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    n_users: int = Field(3000, ge=2, description="Number of users.")
    n_items: int = Field(2000, ge=2, description="Number of items.")
    n_topics: int = Field(20, ge=2, le=MAX_TOPICS, description="Latent topics (each has a vocabulary).")
    slate_size: int = Field(10, ge=1, le=100, description="Slots K per logged session.")
    mean_sessions: float = Field(10.0, gt=0, description="Mean logged sessions per user.")
    days: float = Field(30.0, gt=0, description="Length of the logging period in days.")

    interest_concentration: float = Field(
        0.3, gt=0, description="Dirichlet concentration of user interests (small = few, strong interests)."
    )
    confounding: float = Field(
        1.0, ge=0, description="Strength c of popularity's effect on exposure and organic discovery."
    )
    organic_rate: float = Field(
        0.002, gt=0, lt=1, description="P(Y=1 | do(E=0)) for an average user, item and interest match."
    )
    persuasion_rate: float = Field(
        0.03, gt=0, lt=1, description="r: P(a shown item persuades) for an average interest match and quality."
    )
    organic_after_dismissal: float = Field(
        0.5, ge=0, le=1, description="ρ: share of the organic chance left after a dismissed recommendation (1 = τ ≥ 0)."
    )
    position_bias: float = Field(1.0, ge=0, description="η in the examination probability k^-η of slot k.")
    exploration: float = Field(0.1, gt=0, le=1, description="Uniform share ε of the logging policy (positivity).")
    logging_knowledge: float = Field(
        20.0, gt=0, description="How well the logging policy knows interests (Dirichlet concentration around θ_u)."
    )
    popularity_quality_corr: float = Field(0.5, ge=-1, le=1, description="Correlation of popularity and quality.")
    zipf_exponent: float = Field(1.0, gt=0, description="Zipf exponent of item popularity.")
    activity_spread: float = Field(0.5, ge=0, description="Std of users' log-activity.")

    organic_interest_weight: float = Field(1.0, description="w_oa: interest in organic discovery.")
    organic_popularity_weight: float = Field(0.9, description="w_op: popularity in organic discovery (× c).")
    organic_activity_weight: float = Field(0.5, description="w_act: activity in organic discovery.")
    persuasion_interest_weight: float = Field(0.8, description="w_ra: interest in persuasion.")
    persuasion_quality_weight: float = Field(0.5, description="w_rq: quality in persuasion.")
    logging_popularity_weight: float = Field(0.5, description="β_p: popularity in the logging score (× c).")
    logging_interest_weight: float = Field(1.0, description="β_a: estimated interest in the logging score.")


@dataclass(frozen=True)
class PolicyValue:
    """Exact value of a policy in the world, per impression (slot), session-weighted over users.

    ``value``: expected outcome per shown slot, E[p0 + κ_k τ] (what an off-policy estimator
    of the logged reward estimates). ``incremental``: expected outcome *caused* per slot,
    E[κ_k τ] (engagement that would not have happened without the recommendation).
    """

    value: float
    incremental: float


@dataclass(frozen=True, eq=False)
class SyntheticWorld:
    """Latent parameters of one seeded world. Build with :meth:`create`.

    Arrays: ``theta`` (n_users, n_topics), ``theta_hat`` (n_users, n_topics) the logging policy's
    estimate, ``phi`` (n_items, n_topics), ``quality`` (n_items,), ``popularity_z`` (n_items,),
    ``log_activity`` (n_users,), ``sessions`` (n_users,) realised logged sessions, ``segment``
    (n_users,) index into :data:`SEGMENTS`.
    """

    config: WorldConfig
    seed: int
    theta: np.ndarray
    theta_hat: np.ndarray
    phi: np.ndarray
    quality: np.ndarray
    popularity_z: np.ndarray
    log_activity: np.ndarray
    sessions: np.ndarray
    segment: np.ndarray

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(cls, config: WorldConfig, seed: int) -> SyntheticWorld:
        """Draw the latent world for ``config`` from ``seed`` (the run's seed: its one home)."""
        rng = np.random.default_rng([seed, 0])
        n_u, n_i, n_t = config.n_users, config.n_items, config.n_topics

        theta = rng.dirichlet(np.full(n_t, config.interest_concentration), size=n_u)
        theta_hat = np.stack([rng.dirichlet(config.logging_knowledge * t + 0.05) for t in theta])

        phi = np.zeros((n_i, n_t))
        n_item_topics = rng.choice([1, 2, 3], size=n_i, p=[0.5, 0.35, 0.15])
        for row, k in enumerate(n_item_topics):
            topics = rng.choice(n_t, size=min(k, n_t), replace=False)
            phi[row, topics] = rng.dirichlet(np.ones(len(topics)) * 2.0)

        quality = rng.standard_normal(n_i)
        rho = config.popularity_quality_corr
        latent = rho * quality + np.sqrt(1 - rho**2) * rng.standard_normal(n_i)
        rank = np.empty(n_i)
        rank[np.argsort(-latent)] = np.arange(1, n_i + 1)
        log_pop = -config.zipf_exponent * np.log(rank)
        popularity_z = (log_pop - log_pop.mean()) / log_pop.std()

        log_activity = rng.normal(0.0, config.activity_spread, size=n_u)
        log_activity -= log_activity.mean()
        rate = config.mean_sessions * np.exp(log_activity) / np.exp(log_activity).mean()
        sessions = np.maximum(1, rng.poisson(rate))
        cuts = np.quantile(log_activity, [1 / 3, 2 / 3])
        segment = np.searchsorted(cuts, log_activity).astype(np.int8)
        return cls(config, seed, theta, theta_hat, phi, quality, popularity_z, log_activity, sessions, segment)

    @property
    def n_users(self) -> int:
        return self.config.n_users

    @property
    def n_items(self) -> int:
        return self.config.n_items

    # ------------------------------------------------------------------ interventions on features
    def with_interests(self, users: np.ndarray, theta: np.ndarray, theta_hat: np.ndarray | None = None) -> SyntheticWorld:
        """The world where ``users`` have interests ``theta`` (n, n_topics) — do(θ_u := θ'_u) — and the
        logging policy's estimate of them is ``theta_hat`` (default: unchanged). Rows must be distributions."""
        users = np.asarray(users, dtype=np.int64)
        new_theta = self.theta.copy()
        new_theta[users] = _distributions("theta", theta, len(users), self.config.n_topics)
        new_hat = self.theta_hat
        if theta_hat is not None:
            new_hat = self.theta_hat.copy()
            new_hat[users] = _distributions("theta_hat", theta_hat, len(users), self.config.n_topics)
        return replace(self, theta=new_theta, theta_hat=new_hat)

    def with_item_topics(self, items: np.ndarray, phi: np.ndarray) -> SyntheticWorld:
        """The world where ``items`` have topic mixes ``phi`` (n, n_topics): do(φ_i := φ'_i)."""
        items = np.asarray(items, dtype=np.int64)
        new_phi = self.phi.copy()
        new_phi[items] = _distributions("phi", phi, len(items), self.config.n_topics)
        return replace(self, phi=new_phi)

    def item_texts_for(self, phi: np.ndarray, seed: int = 0) -> pd.DataFrame:
        """Titles, descriptions and categories the world's text generator writes for topic mixes ``phi``
        (n, n_topics): the text of an item rewritten to those topics. Columns ``title, text, categories``."""
        titles, texts, categories = item_texts(np.asarray(phi, dtype=np.float64), np.random.default_rng([self.seed, 5, seed]))
        return pd.DataFrame({"title": titles, "text": texts, "categories": categories})

    # ------------------------------------------------------------------ structural equations
    def _affinity(self, theta: np.ndarray, users: np.ndarray, items: np.ndarray, pairs: bool) -> np.ndarray:
        if pairs:
            dot = np.einsum("nt,nt->n", theta[users], self.phi[items])
        else:
            dot = theta[users] @ self.phi[items].T
        return np.log(_AFFINITY_FLOOR + self.config.n_topics * dot)

    def potential_outcomes(self, users: np.ndarray, items: np.ndarray, pairs: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(p0, p1) = (P(Y=1 | do(E=0)), P(Y=1 | do(E=1)) in the top slot), shaped (n,) for aligned
        ``pairs`` or (n_users, n_items) for a grid; both in one pass (they share the affinity)."""
        cfg = self.config
        users, items = np.asarray(users), np.asarray(items)
        a = self._affinity(self.theta, users, items, pairs)
        act = self.log_activity[users] if pairs else self.log_activity[users][:, None]
        z, q = self.popularity_z[items], self.quality[items]
        if not pairs:
            z, q = z[None, :], q[None, :]
        logit_p0 = _logit(cfg.organic_rate) + cfg.organic_interest_weight * a
        logit_p0 = logit_p0 + cfg.confounding * cfg.organic_popularity_weight * z + cfg.organic_activity_weight * act
        logit_r = _logit(cfg.persuasion_rate) + cfg.persuasion_interest_weight * a + cfg.persuasion_quality_weight * q
        p0, r = _sigmoid(logit_p0), _sigmoid(logit_r)
        return p0, r + (1.0 - r) * cfg.organic_after_dismissal * p0

    def p_outcome_if_not_exposed(self, users: np.ndarray, items: np.ndarray, pairs: bool = False) -> np.ndarray:
        """p0 = P(Y=1 | do(E=0)): (n_users, n_items) for a grid, (n,) when ``pairs``."""
        return self.potential_outcomes(users, items, pairs)[0]

    def p_outcome_if_exposed(self, users: np.ndarray, items: np.ndarray, pairs: bool = False) -> np.ndarray:
        """p1 = P(Y=1 | do(E=1)) in the top slot: (n_users, n_items), or (n,) when ``pairs``."""
        return self.potential_outcomes(users, items, pairs)[1]

    def uplift(self, users: np.ndarray, items: np.ndarray, pairs: bool = False) -> np.ndarray:
        """τ = p1 − p0, the causal effect of recommending i to u (top slot); in (−1, 1)."""
        p0, p1 = self.potential_outcomes(users, items, pairs)
        return p1 - p0

    def main_topics(self, items: np.ndarray) -> np.ndarray:
        """(n,) each item's strongest topic: the label the text-topic clusters are scored against."""
        return np.argmax(self.phi[np.asarray(items, dtype=np.int64)], axis=1)

    def examination(self, n_slots: int | None = None) -> np.ndarray:
        """κ_k = k^-η for k = 1..K: probability a shown item in slot k is examined. Shape (K,)."""
        k = np.arange(1, (n_slots or self.config.slate_size) + 1, dtype=np.float64)
        return k ** -self.config.position_bias

    def logging_policy(self, users: np.ndarray) -> np.ndarray:
        """π0(i | u) for every item: (n_users, n_items), rows sum to 1, all entries ≥ ε / n_items."""
        cfg = self.config
        users = np.asarray(users)
        a_hat = self._affinity(self.theta_hat, users, np.arange(self.n_items), pairs=False)
        score = cfg.confounding * cfg.logging_popularity_weight * self.popularity_z[None, :]
        score = score + cfg.logging_interest_weight * a_hat
        score -= score.max(axis=1, keepdims=True)
        soft = np.exp(score)
        soft /= soft.sum(axis=1, keepdims=True)
        return (1 - cfg.exploration) * soft + cfg.exploration / self.n_items

    def exposure_propensity(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """P(E=1 | u, i) = 1 − (1 − π0(i|u))^(K·S_u), exposure over the logged period. (n_users, n_items)."""
        users = np.asarray(users)
        pi0 = self.logging_policy(users)[:, np.asarray(items)]
        draws = (self.config.slate_size * self.sessions[users])[:, None]
        return -np.expm1(draws * np.log1p(-pi0))

    # ------------------------------------------------------------------ policy values
    def session_weights(self, users: np.ndarray) -> np.ndarray:
        """Share of logged sessions per user: the population an off-policy estimate refers to."""
        w = self.sessions[np.asarray(users)].astype(np.float64)
        return w / w.sum()

    def slate_values(self, users: np.ndarray, slates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-user expected (outcome, caused outcome) per slot of a fixed slate.

        ``slates``: (n_users, K) item indices in slot order. Returns two (n_users,) arrays:
        mean over slots of p0 + κ_k τ, and of κ_k τ.
        """
        users, slates = np.asarray(users), np.asarray(slates)
        n, k = slates.shape
        flat_u = np.repeat(users, k)
        p0, p1 = self.potential_outcomes(flat_u, slates.ravel(), pairs=True)
        p0, tau = p0.reshape(n, k), (p1 - p0).reshape(n, k)
        caused = tau * self.examination(k)[None, :]
        return (p0 + caused).mean(axis=1), caused.mean(axis=1)

    def distribution_values(self, users: np.ndarray, action_dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-user expected (outcome, caused outcome) per slot of a stochastic policy.

        ``action_dist``: (n_users, n_items, K), each [u, :, k] a distribution over items.
        """
        users = np.asarray(users)
        if action_dist.shape[:2] != (len(users), self.n_items):
            raise ValueError(
                f"action_dist has shape {action_dist.shape}, expected ({len(users)}, {self.n_items}, K)"
            )
        p0, p1 = self.potential_outcomes(users, np.arange(self.n_items), pairs=False)
        tau = p1 - p0
        kappa = self.examination(action_dist.shape[2])
        caused = np.einsum("uik,ui,k->u", action_dist, tau, kappa) / action_dist.shape[2]
        return np.einsum("uik,ui->u", action_dist, p0) / action_dist.shape[2] + caused, caused

    def policy_value_of_scores(self, scores: np.ndarray, users: np.ndarray | None = None) -> PolicyValue:
        """Exact value of showing each user the top-K items by ``scores`` (n_users, n_items)."""
        users = np.arange(self.n_users) if users is None else np.asarray(users)
        k = self.config.slate_size
        slates = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        value, caused = self.slate_values(users, slates)
        w = self.session_weights(users)
        return PolicyValue(float(w @ value), float(w @ caused))

    def policy_value_of_distribution(self, action_dist: np.ndarray, users: np.ndarray | None = None) -> PolicyValue:
        """Exact value of a stochastic slot-wise policy ``action_dist`` (n_users, n_items, K)."""
        users = np.arange(self.n_users) if users is None else np.asarray(users)
        value, caused = self.distribution_values(users, action_dist)
        w = self.session_weights(users)
        return PolicyValue(float(w @ value), float(w @ caused))

    def logging_policy_value(self, users: np.ndarray | None = None, block: int = 1024) -> PolicyValue:
        """Exact value of the stochastic logging policy itself (every slot drawn from π0)."""
        users = np.arange(self.n_users) if users is None else np.asarray(users)
        kappa = self.examination().mean()
        w = self.session_weights(users)
        value = caused = 0.0
        for start in range(0, len(users), block):
            part = users[start : start + block]
            pi0 = self.logging_policy(part)
            p0, p1 = self.potential_outcomes(part, np.arange(self.n_items), pairs=False)
            per_user_caused = kappa * np.einsum("ui,ui->u", pi0, p1 - p0)
            value += float(w[start : start + block] @ (np.einsum("ui,ui->u", pi0, p0) + per_user_caused))
            caused += float(w[start : start + block] @ per_user_caused)
        return PolicyValue(value, caused)

    # ------------------------------------------------------------------ observable tables
    def users_table(self) -> pd.DataFrame:
        rng = np.random.default_rng([self.seed, 2])
        return pd.DataFrame(
            {
                "user_id": np.arange(self.n_users, dtype=np.int64),
                "profile_text": profile_texts(self.theta, rng),
                "segment": pd.Categorical.from_codes(self.segment, SEGMENTS),
                "activity": np.exp(self.log_activity),
            }
        )

    def items_table(self) -> pd.DataFrame:
        rng = np.random.default_rng([self.seed, 3])
        titles, texts, categories = item_texts(self.phi, rng)
        return pd.DataFrame(
            {"item_id": np.arange(self.n_items, dtype=np.int64), "title": titles, "text": texts, "categories": categories}
        )

    def simulate_logs(self, block_users: int | None = None) -> pd.DataFrame:
        """Logged interactions: every impression of the logging policy, and organic finds.

        Impressions: ``exposed=True``, ``position`` 1..K, ``propensity`` = π0(i|u), ``policy="logging"``,
        outcome ~ Bernoulli(p0 + κ_k τ). Organic finds: pairs never shown to the user, found
        with probability p0; only positives are logged (``exposed=False, outcome=1``, with the
        search ``query``), as a real log would.
        """
        rng = np.random.default_rng([self.seed, 1])
        block = block_users or max(1, 4_000_000 // self.n_items)
        parts = [self._simulate_block(np.arange(s, min(s + block, self.n_users)), rng) for s in range(0, self.n_users, block)]
        return pd.concat(parts, ignore_index=True)

    def _simulate_block(self, users: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
        cfg, k, n_items = self.config, self.config.slate_size, self.n_items
        period = cfg.days * 86_400.0
        pi0 = self.logging_policy(users)  # (B, I)

        # impressions: S_u sessions x K independent slots, inverse-CDF sampling on offset rows
        n_sess = self.sessions[users]
        row = np.repeat(np.arange(len(users)), n_sess * k)
        cdf = np.cumsum(pi0, axis=1)
        cdf /= cdf[:, -1:]
        flat = (cdf + np.arange(len(users))[:, None]).ravel()
        hit = np.searchsorted(flat, row + rng.random(len(row)) * (1 - 1e-12), side="right")
        item = np.minimum(hit - row * n_items, n_items - 1)
        slot = np.tile(np.arange(k), int(n_sess.sum()))
        session_start = np.repeat(rng.random(int(n_sess.sum())) * period, k)
        user = users[row]
        p0, p1 = self.potential_outcomes(user, item, pairs=True)
        p_click = p0 + self.examination(k)[slot] * (p1 - p0)
        shown = pd.DataFrame(
            {
                "user_id": user.astype(np.int64),
                "item_id": item.astype(np.int64),
                "seconds": session_start + slot,
                "exposed": True,
                "outcome": (rng.random(len(row)) < p_click).astype(np.float64),
                "position": pd.array(slot + 1, dtype="Int64"),
                "propensity": pi0[row, item],
                "policy": "logging",
            }
        )

        # organic finds among pairs never shown
        p0_grid = self.p_outcome_if_not_exposed(users, np.arange(n_items))
        p0_grid[row, item] = 0.0
        found_row, found_item = np.nonzero(rng.random(p0_grid.shape) < p0_grid)
        organic = pd.DataFrame(
            {
                "user_id": users[found_row].astype(np.int64),
                "item_id": found_item.astype(np.int64),
                "seconds": rng.random(len(found_row)) * period,
                "exposed": False,
                "outcome": 1.0,
                "position": pd.array([pd.NA] * len(found_row), dtype="Int64"),
                "propensity": np.nan,
                "policy": None,
                "query": search_queries(self.phi, found_item, rng),
            }
        )
        logs = pd.concat([shown, organic], ignore_index=True)
        logs["timestamp"] = _EPOCH + pd.to_timedelta(logs.pop("seconds"), unit="s")
        logs["policy"] = logs["policy"].astype("string")
        logs["query"] = logs["query"].astype("string")
        return logs.sort_values(["user_id", "timestamp"], kind="stable", ignore_index=True)


def _distributions(name: str, rows: np.ndarray, n: int, n_topics: int) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float64)
    if rows.shape != (n, n_topics):
        raise ValueError(f"{name} must have shape ({n}, {n_topics}), got {rows.shape}")
    if (rows < 0).any() or not np.allclose(rows.sum(axis=1), 1.0):
        raise ValueError(f"every row of {name} must be a distribution over topics (non-negative, summing to 1)")
    return rows


def _logit(p: float) -> float:
    return float(np.log(p / (1.0 - p)))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))
