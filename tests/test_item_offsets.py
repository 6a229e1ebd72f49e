"""f1's per-item offsets by empirical Bayes (recause.models.gnn.item_offsets), pinned by hand."""

from __future__ import annotations

import numpy as np
import pytest

from recause.models.gnn.item_offsets import fit_item_offsets, shift_logits


def objective(e: float, logit_f1, f0, kappa, y, prior_sd: float) -> float:
    """The one item's log posterior of the module docstring, up to a constant."""
    p1 = 1.0 / (1.0 + np.exp(-(logit_f1 + e)))
    q = f0 + kappa * (p1 - f0)
    return float(np.sum(y * np.log(q) + (1 - y) * np.log(1 - q)) - e**2 / (2 * prior_sd**2))


def test_without_examination_or_organic_chance_the_offset_solves_the_logistic_map_equation() -> None:
    """f0 = 0 and κ = 1 make the click model logistic: at the MAP, Σ_j (y_j − σ(ℓ_j + e)) = e / σ² for each item.
    Item 0: 3 clicks of 4 at ℓ = 0; item 1: 0 of 2 at ℓ = 1; item 2: no impressions, so 0."""
    items = np.array([0, 0, 0, 0, 1, 1])
    logit_f1 = np.array([0.0, 0.0, 0.0, 0.0, 1.0, 1.0])
    y = np.array([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    e = fit_item_offsets(logit_f1, np.zeros(6), np.ones(6), y, items, 3, prior_sd=0.5)
    sigmoid = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    assert 3 - 4 * sigmoid(e[0]) == pytest.approx(e[0] / 0.25, abs=1e-10)
    assert -2 * sigmoid(1.0 + e[1]) == pytest.approx(e[1] / 0.25, abs=1e-10)
    assert e[2] == 0.0 and e[0] > 0 > e[1]
    # a vague prior: the item's own maximum likelihood, logit(3/4) = log 3; a tight one keeps the network's estimate
    vague = fit_item_offsets(logit_f1, np.zeros(6), np.ones(6), y, items, 3, prior_sd=1e3)
    assert vague[0] == pytest.approx(np.log(3.0), abs=1e-4)
    tight = fit_item_offsets(logit_f1, np.zeros(6), np.ones(6), y, items, 3, prior_sd=1e-3)
    assert np.abs(tight).max() < 1e-5
    # more evidence moves an item further at the same prior
    many = fit_item_offsets(np.zeros(40), np.zeros(40), np.ones(40), np.tile([1.0, 1.0, 1.0, 0.0], 10), np.zeros(40, int), 1, 0.5)
    assert e[0] < many[0] < np.log(3.0)


def test_with_examination_and_organic_chance_the_offset_is_the_posterior_mode() -> None:
    """Clicks = f0 + κ (σ(ℓ + e) − f0): the fitted offset is where the one-item log posterior peaks (a grid of
    100,001 points over ±5 agrees to its spacing), for items shown in slots of κ 1, 0.6 and 0.3."""
    rng = np.random.default_rng(3)
    n = 60
    items = rng.integers(0, 2, n)
    logit_f1, f0 = rng.normal(-1.0, 0.5, n), rng.uniform(0.01, 0.2, n)
    kappa = rng.choice([1.0, 0.6, 0.3], n)
    y = (rng.random(n) < 0.4).astype(float)
    e = fit_item_offsets(logit_f1, f0, kappa, y, items, 2, prior_sd=0.7)
    grid = np.linspace(-5, 5, 100_001)
    for i in range(2):
        rows = items == i
        values = [objective(g, logit_f1[rows], f0[rows], kappa[rows], y[rows], 0.7) for g in grid[::100]]
        coarse = grid[::100][int(np.argmax(values))]
        fine = grid[(grid > coarse - 0.02) & (grid < coarse + 0.02)]
        best = fine[int(np.argmax([objective(g, logit_f1[rows], f0[rows], kappa[rows], y[rows], 0.7) for g in fine]))]
        assert e[i] == pytest.approx(best, abs=2e-4)


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="prior_sd"):
        fit_item_offsets(np.zeros(2), np.zeros(2), np.ones(2), np.zeros(2), np.zeros(2, int), 1, 0.0)
    with pytest.raises(ValueError, match="aligned"):
        fit_item_offsets(np.zeros(2), np.zeros(3), np.ones(2), np.zeros(2), np.zeros(2, int), 1, 0.5)


def test_shift_logits_by_hand() -> None:
    p = np.array([[0.5, 0.2], [0.9, 0.5]])
    np.testing.assert_allclose(shift_logits(p, np.zeros(2)), p)
    np.testing.assert_allclose(shift_logits(p, np.array([np.log(3.0), 0.0]))[:, 0], [0.75, 27 / 28])
