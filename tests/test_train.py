"""Training the causal GNN: the identification rule, the plan per kind of data, the seeded smoke
training against ground truth, the T-learner, neighbour sampling, checkpoints and the effect map."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from models.world import WorldConfig
from tasks.causal_report import calibration_error, causal_effect_map, truth_metrics, user_segments, write_effect_map
from tasks.datasets.schema import DatasetMeta, rating_study_meta
from tasks.datasets.synthetic import load_synthetic
from tasks.evaluate import EvaluationConfig, causal_metrics_of
from tasks.split import SplitConfig, split_dataset
from tasks.train import TrainConfig, identification, make_plan, train_model, train_models

warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
pytestmark = pytest.mark.usefixtures("one_thread")
SMALL = WorldConfig(n_users=300, n_items=200, n_topics=8, mean_sessions=8)
FAST = dict(batch_size=2048, num_layers=0, init_std=0.01, graph_edges="positives", epochs=20, patience=5)


@pytest.fixture(scope="module")
def world_split():
    dataset = load_synthetic(SMALL, seed=1)
    return dataset, split_dataset(dataset, SplitConfig(), seed=1)


def bow_features(split, dataset):
    """Text features from the pipeline's own function with a cheap lexical encoder (hashed words)."""
    from sklearn.feature_extraction.text import HashingVectorizer

    from tasks.features import FeaturesConfig, build_text_features

    vectorizer = HashingVectorizer(n_features=256, alternate_sign=False, norm="l2")
    embed = lambda texts: vectorizer.transform(list(texts)).toarray().astype(np.float32)  # noqa: E731
    config = FeaturesConfig(n_topics=8, max_phrases=200)
    return build_text_features(split, dataset.items, dataset.users, embed, config, has_timestamps=True, seed=1)


def meta(name: str, unexposed: bool) -> DatasetMeta:
    return DatasetMeta(name, "binary", (0.0, 1.0), 1.0, unexposed, None, True, ("user_id", "item_id"))


# ---------------------------------------------------------------------------------------------- identification
@pytest.mark.parametrize(
    ("data_meta", "identifiable"),
    [(meta("synthetic", True), True), (meta("movielens-100k", False), False), (rating_study_meta("coat", {}, ()), False)],
)
def test_uplift_is_identifiable_only_with_unexposed_outcomes(data_meta: DatasetMeta, identifiable: bool) -> None:
    rule = identification(data_meta)
    assert rule.identifiable is identifiable
    assert rule.summary()["causal/identifiable"] is identifiable
    assert ("not identifiable" in rule.reason) is not identifiable


def coat_like_split(seed: int = 0):
    """A tiny MNAR-train / random-test rating study: 20 users × 15 items."""
    from tasks.datasets.schema import Dataset

    rng = np.random.default_rng(seed)
    rows = []
    for policy, n in (("self-selected", 6), ("random", 4)):
        for u in range(20):
            for i in rng.choice(15, n, replace=False):
                rows.append((u, int(i), float(rng.integers(1, 6)), policy))
    inter = pd.DataFrame(rows, columns=["user_id", "item_id", "outcome", "policy"])
    inter["timestamp"], inter["exposed"], inter["propensity"] = pd.NaT, True, 0.4
    data = Dataset(inter, pd.DataFrame({"item_id": range(15)}), pd.DataFrame({"user_id": range(20)}),
                   rating_study_meta("coat-like", {}, ()))
    return data, split_dataset(data, SplitConfig(), seed)


def test_without_unexposed_outcomes_the_model_has_no_uplift() -> None:
    data, split = coat_like_split()
    plan = make_plan(TrainConfig(), split, data.meta)
    assert plan.objective.weighting == "dr" and "unexposed" not in plan.heads and plan.monitor == "val/auc"
    model = train_model(split, data.meta, TrainConfig(epochs=2, batch_size=64, dim=8, num_layers=1))
    assert model.uplift_policy() is None and not model.identifiable
    with pytest.raises(ValueError, match="not identifiable"):
        model.uplift(np.arange(3))
    scores = model.relevance_policy().scores(np.arange(4))
    assert scores.shape == (4, 15) and ((scores > 0) & (scores < 1)).all()
    naive = make_plan(TrainConfig(variant="naive"), split, data.meta)
    assert naive.objective.weighting == "none" and set(naive.heads) == {"exposed"}
    with pytest.raises(ValueError, match="t_learner.*lacks"):
        make_plan(TrainConfig(variant="t_learner"), split, data.meta)


def test_config_rejects_a_neighbour_list_of_the_wrong_depth() -> None:
    with pytest.raises(ValueError, match="one per layer"):
        TrainConfig(sampling="neighbor", num_layers=2, num_neighbors=[5, 5, 5])


# ---------------------------------------------------------------------------------------------- smoke training
def test_causal_variant_beats_naive_on_causal_precision(world_split) -> None:
    dataset, split = world_split
    features = bow_features(split, dataset)
    evaluation = EvaluationConfig()
    naive = train_model(split, dataset.meta, TrainConfig(variant="naive", seed=1, **FAST), features=features)
    causal = train_model(split, dataset.meta, TrainConfig(variant="causal", seed=1, **FAST), features=features)
    cp_naive = causal_metrics_of(naive.relevance_policy(), split, dataset.world, evaluation)["causal/cp_at_10"]
    cp_causal = causal_metrics_of(causal.uplift_policy(), split, dataset.world, evaluation)["causal/cp_at_10"]
    assert causal.identifiable and cp_causal > 1.1 * cp_naive > 0
    truth = truth_metrics(dataset.world, split, causal.uplift, causal.propensity)
    assert truth["causal/pehe"] < 0.04 and truth["propensity/calibration_error"] < 0.03
    assert causal.summary()["model/monitor"] == "val/outcome_loss"


@pytest.mark.slow
def test_t_learner_fits_one_network_per_arm(world_split) -> None:
    dataset, split = world_split
    model = train_model(split, dataset.meta, TrainConfig(variant="t_learner", **(FAST | {"epochs": 3})))
    assert set(model.module.model.encoders) == {"treated", "control"} and model.identifiable
    assert np.isfinite(model.uplift(np.arange(5))).all()


@pytest.mark.parametrize("variant", ["naive", "causal"])
def test_neighbour_sampling_trains_end_to_end(world_split, variant: str, tmp_path) -> None:
    dataset, split = world_split
    config = TrainConfig(variant=variant, sampling="neighbor", num_layers=2, num_neighbors=[5, 5], epochs=2,
                         batch_size=2048, dim=16)
    model = train_model(split, dataset.meta, config, checkpoint_dir=tmp_path)
    assert model.history["epochs"] == 2 and (tmp_path / "best.ckpt").is_file()
    assert np.isfinite(model.relevance(np.arange(10))).all()


# ---------------------------------------------------------------------------------------------- reports
def test_effect_map_by_hand() -> None:
    tau = np.array([[0.1, 0.2, 0.3, 9.0], [0.3, 0.4, 0.5, 9.0], [-0.2, 0.0, 0.2, 9.0]])
    # segments: users 0, 1 -> "light", user 2 -> "heavy"; topics: item 0 -> "a", items 1, 2 -> "b", item 3 none
    frame = causal_effect_map(lambda users: tau[users], np.array([0, 0, 1]), np.array([0, 1, 1, -1]),
                              ["light", "heavy"], ["a", "b"], user_batch=2)
    assert frame.loc["light", "a"] == pytest.approx((0.1 + 0.3) / 2)
    assert frame.loc["light", "b"] == pytest.approx((0.2 + 0.3 + 0.4 + 0.5) / 4)
    assert frame.loc["heavy", "a"] == pytest.approx(-0.2)
    assert frame.loc["heavy", "b"] == pytest.approx(0.1)


def test_effect_map_files(tmp_path) -> None:
    frame = pd.DataFrame([[0.1, -0.2]], index=pd.Index(["light"], name="segment"), columns=pd.Index(["a", "b"], name="topic"))
    csv, png = write_effect_map(frame, tmp_path)
    assert pd.read_csv(csv, index_col=0).loc["light", "b"] == pytest.approx(-0.2)
    assert png.stat().st_size > 1000


def test_segments_from_the_world_or_from_activity(world_split) -> None:
    dataset, split = world_split
    codes, names = user_segments(dataset.users, split)
    assert names == ["light", "regular", "heavy"] and codes.shape == (split.n_users,)
    codes, names = user_segments(dataset.users.drop(columns="segment"), split)
    assert set(np.unique(codes)) <= {0, 1, 2} and len(np.unique(codes)) == 3


def test_calibration_error_by_hand() -> None:
    # two bins: [0.1, 0.2] vs truth [0.1, 0.4] -> |0.15 - 0.25| = 0.1; [0.6, 0.8] vs [0.6, 0.8] -> 0
    assert calibration_error(np.array([0.1, 0.2, 0.6, 0.8]), np.array([0.1, 0.4, 0.6, 0.8]), bins=2) == pytest.approx(0.05)


def test_truth_metrics_of_the_truth_are_zero(world_split) -> None:
    dataset, split = world_split
    world, ids = dataset.world, split.items.ids.astype(np.int64)
    users = split.users.ids.astype(np.int64)
    out = truth_metrics(world, split, lambda u: world.uplift(users[u], ids),
                        lambda u: world.exposure_propensity(users[u], ids), user_batch=128)
    assert out["causal/pehe"] == pytest.approx(0.0, abs=1e-12) and out["propensity/mae"] == pytest.approx(0.0, abs=1e-12)
    assert out["causal/ate_abs_error"] == pytest.approx(0.0, abs=1e-12)


def test_the_stage_trains_what_the_data_support_and_says_why_not_the_rest() -> None:
    data, split = coat_like_split()
    models = train_models(split, data.meta, TrainConfig(epochs=1, batch_size=64, dim=8, num_layers=1))
    assert set(models.models) == {"gnn_causal", "gnn_naive"}
    assert "lacks" in models.skipped["gnn_t_learner"] and "not identifiable" in models.skipped["gnn_causal_uplift"]
    assert set(models.policies()) == {"gnn_causal", "gnn_naive"}
    summary = models.summary()
    assert summary["causal/identifiable"] is False and summary["gnn/gnn_causal/model/objective"].startswith("causal: dr")


def test_a_reference_with_the_causal_objective_is_not_trained_twice() -> None:
    data, split = coat_like_split()
    implicit = data.interactions.assign(exposed=False, outcome=5.0)  # every row a positive, nothing exposed
    from tasks.datasets.schema import Dataset

    data = Dataset(implicit, data.items, data.users, meta("implicit", False))
    split = split_dataset(data, SplitConfig(), 0)
    models = train_models(split, data.meta, TrainConfig(epochs=1, batch_size=64, dim=8, num_layers=1, compare=["naive"]))
    assert set(models.models) == {"gnn_causal"} and "same objective" in models.skipped["gnn_naive"]
