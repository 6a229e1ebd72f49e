"""The uplift selection criterion on validation data (tasks/train/data.UpliftCriterion): with no
ground truth it must rank the true uplift ranking above a random one and a reversed one."""

from __future__ import annotations

import numpy as np
import pytest

from recause.models.world.scm import WorldConfig
from recause.tasks.data.split import SplitConfig, split_dataset
from recause.tasks.data.synthetic import load_synthetic
from recause.tasks.train.data import UpliftCalibration, UpliftCriterion, affine_calibration, slope_interval


@pytest.fixture(scope="module")
def world_split():
    config = WorldConfig(n_users=1500, n_items=100, n_topics=4, mean_sessions=6.0, persuasion_rate=0.2, organic_rate=0.05)
    dataset = load_synthetic(config, seed=5)
    return dataset, split_dataset(dataset, SplitConfig(), seed=5)


def scorer(world, split, tau_of):
    users, items = split.users.ids.astype(np.int64), split.items.ids.astype(np.int64)
    p0 = lambda u: world.p_outcome_if_not_exposed(users[u], items)  # noqa: E731

    def score(u: np.ndarray, head: str) -> np.ndarray:
        if head == "unexposed":
            return p0(u)
        if head == "exposed":
            return p0(u) + tau_of(u)
        return world.exposure_propensity(users[u], items)

    return score


def test_the_criterion_orders_rankings_as_the_truth_does(world_split) -> None:
    dataset, split = world_split
    world = dataset.world
    users, items = split.users.ids.astype(np.int64), split.items.ids.astype(np.int64)
    tau = lambda u: world.uplift(users[u], items)  # noqa: E731
    noise = np.random.default_rng(0).normal(size=(split.n_users, split.n_items))
    criterion = UpliftCriterion(split, propensity_head=True, depths=(None, 50))
    assert criterion.usable
    right = criterion(scorer(world, split, tau))
    random = criterion(scorer(world, split, lambda u: noise[u]))
    reversed_ = criterion(scorer(world, split, lambda u: -tau(u)))
    for name in ("val/auuc_ipw", "val/auuc_ipw_at_50"):
        assert right[name] > random[name] > reversed_[name], (name, right, random, reversed_)
    per_user = criterion.per_user(scorer(world, split, tau))[None]
    assert per_user.shape == (len(np.unique(split.val["user"])),) and per_user.mean() == pytest.approx(right["val/auuc_ipw"])
    # the last call's users stay for the epoch choice, once: a check scores them once for both
    assert criterion.take_last()[None].mean() == pytest.approx(reversed_["val/auuc_ipw"]) and criterion.take_last() is None


def test_without_logged_propensities_there_is_no_criterion(world_split) -> None:
    dataset, split = world_split
    from dataclasses import replace

    bare = replace(split, val=split.val.assign(propensity=np.nan))
    assert not UpliftCriterion(bare, propensity_head=False).usable
    assert UpliftCriterion(bare, propensity_head=False)(lambda u, h: np.zeros((len(u), split.n_items))) == {}
    assert isinstance(UpliftCriterion(bare, propensity_head=False).calibration(lambda u, h: np.zeros((len(u), split.n_items)), 1.0), str)


def test_the_calibrations_least_squares_by_hand() -> None:
    """τ̂ = (0, 1, 2, 3), Γ = (0, 0, 4, 0): mean τ̂ 1.5, Var 1.25, mean Γ 1, mean Γτ̂ 2, so b = (2 − 1.5)/1.25
    = 0.4 and a = 1 − 0.4 · 1.5 = 0.4; a τ̂ that does not vary, or a slope that is not positive, is refused."""
    fit = affine_calibration(4, 6.0, 14.0, 4.0, 8.0)
    assert isinstance(fit, UpliftCalibration)
    assert (fit.intercept, fit.slope) == pytest.approx((0.4, 0.4))
    np.testing.assert_allclose(fit(np.array([0.0, 3.0], np.float32)), [0.4, 1.6], rtol=1e-6)
    assert fit(np.zeros(2, np.float32)).dtype == np.float32
    assert "does not vary" in affine_calibration(4, 4.0, 4.0, 4.0, 8.0)
    assert "not positive" in affine_calibration(4, 6.0, 14.0, 4.0, 0.0)  # Γ on the lowest τ̂ only: b < 0


def calibration_case(world_split):
    """(world, split, τ of user indices (n, n_items), the criterion with the propensity head, mean κ)."""
    dataset, split = world_split
    world = dataset.world
    users, items = split.users.ids.astype(np.int64), split.items.ids.astype(np.int64)
    criterion = UpliftCriterion(split, propensity_head=True)
    return world, split, (lambda u: world.uplift(users[u], items)), criterion, world.examination().mean()


def test_the_calibration_puts_a_badly_scaled_uplift_on_the_effects_scale(world_split) -> None:
    """Fitted on the validation log alone: the uplift 2τ + 0.01 and the true τ calibrate to the same values
    (the fit is affine-equivariant), and the calibrated PEHE is far below the badly scaled one's."""
    world, split, tau, criterion, kappa = calibration_case(world_split)
    scaled = criterion.calibration(scorer(world, split, lambda u: 2 * tau(u) + 0.01), kappa, level=None)
    plain = criterion.calibration(scorer(world, split, tau), kappa, level=None)
    assert isinstance(scaled, UpliftCalibration) and isinstance(plain, UpliftCalibration)
    everyone = np.arange(split.n_users)
    truth = tau(everyone)
    np.testing.assert_allclose(scaled(2 * truth + 0.01), plain(truth), atol=1e-9)
    pehe = lambda estimate: float(np.sqrt(np.mean((estimate - truth) ** 2)))  # noqa: E731
    assert pehe(scaled(2 * truth + 0.01)) < pehe(2 * truth + 0.01) / 3


def test_the_calibration_maps_only_a_slope_the_log_tells_from_one(world_split) -> None:
    """With its bootstrap interval: the true τ (slope 1 in expectation) is left as trained and says why;
    a tenth-scale τ is mapped, with an interval that excludes 1 and holds the point slope (the intervals are
    wide: on this world the true τ's is about 0.15 to 1.4)."""
    world, split, tau, criterion, kappa = calibration_case(world_split)
    plain = criterion.calibration(scorer(world, split, tau), kappa)
    assert isinstance(plain, str) and "does not tell" in plain and "left as trained" in plain
    shrunk = criterion.calibration(scorer(world, split, lambda u: 0.1 * tau(u)), kappa)
    assert isinstance(shrunk, UpliftCalibration) and 1.0 < shrunk.slope_low < shrunk.slope < shrunk.slope_high


def test_the_calibration_leaves_an_uplift_the_log_cannot_tell_from_noise(world_split) -> None:
    """An estimate unrelated to τ (fixed Gaussian noise per pair, sd 1): its slope's interval is narrow around 0
    and excludes 1, and the map, which would flatten it toward the mean uplift, is not applied — the reason says
    so; without the interval rule (``level`` None) the same fit is a map of slope near 0."""
    world, split, tau, criterion, kappa = calibration_case(world_split)
    noise = np.random.default_rng(0).standard_normal((split.n_users, split.n_items))
    left = criterion.calibration(scorer(world, split, lambda u: noise[u]), kappa)
    assert isinstance(left, str) and "from 0" in left and "left as trained" in left
    low, high = (float(v) for v in left.split("CI ")[1].split(" over")[0].split(" to "))
    assert low <= 0.0 < high < 1.0
    forced = criterion.calibration(scorer(world, split, lambda u: noise[u]), kappa, level=None)
    assert isinstance(forced, UpliftCalibration) or "not positive" in forced


def test_the_slope_interval_by_construction() -> None:
    """Identical users: every resample has the same slope (0.4, the by-hand fit's), so the interval is that
    point; users that disagree give an interval around the pooled slope."""
    one = np.array([4.0, 6.0, 14.0, 4.0, 8.0])
    low, high = slope_interval(np.tile(one, (50, 1)))
    assert (low, high) == pytest.approx((0.4, 0.4))
    rng = np.random.default_rng(0)
    sums = np.tile(one, (200, 1))
    sums[:, 4] += rng.normal(0.0, 2.0, 200)  # each user's Σ Γτ̂ off by noise
    pooled = affine_calibration(*sums.sum(axis=0)).slope
    low, high = slope_interval(sums)
    assert low < pooled < high and high - low < 1.0
