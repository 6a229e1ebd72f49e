"""Training the causal GNN: the identification rule, the plan per kind of data, the seeded smoke
training against ground truth, the T-learner, neighbour sampling, checkpoints and the effect map."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from recause.flows.artifacts import write_effect_map
from recause.models.gnn.item_offsets import shift_logits
from recause.models.world.scm import WorldConfig
from recause.tasks.data.schema import DatasetMeta, rating_study_meta
from recause.tasks.data.split import SplitConfig, split_dataset
from recause.tasks.data.synthetic import load_synthetic
from recause.tasks.evaluate import EvaluationConfig, causal_metrics_of
from recause.tasks.train.config import AUTO, TrainConfig
from recause.tasks.train.fit import exposure_covariate, outcome_item_offsets, train_model, train_models
from recause.tasks.train.plan import identification, plan_model, plan_models
from recause.tasks.train.report import calibration_error, causal_effect_map, truth_metrics, user_segments

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

    from recause.tasks.features.build import build_text_features
    from recause.tasks.features.config import FeaturesConfig

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
    from recause.tasks.data.schema import Dataset

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


class Recorder:
    """A Lightning logger that keeps every logged metrics dict in memory (built lazily: imports lightning)."""

    def __new__(cls):
        from lightning.pytorch.loggers.logger import Logger

        class _Recorder(Logger):
            def __init__(self):
                super().__init__()
                self.rows: list[dict[str, float]] = []

            @property
            def name(self) -> str:
                return "recorder"

            @property
            def version(self) -> int:
                return 0

            def log_metrics(self, metrics, step=None) -> None:
                self.rows.append(dict(metrics))

            def log_hyperparams(self, params, *args, **kwargs) -> None:
                pass

        return _Recorder()


def test_without_unexposed_outcomes_the_model_has_no_uplift() -> None:
    data, split = coat_like_split()
    plan = plan_model(TrainConfig(), split, data.meta, seed=0, threads=1).plan
    assert plan.objective.weighting == "dr" and "unexposed" not in plan.heads and plan.monitor == "val/auc"
    model = train_model(split, data.meta, TrainConfig(epochs=2, batch_size=64, dim=8, num_layers=1), seed=0, threads=1)
    assert model.uplift_policy() is None and not model.identifiable
    with pytest.raises(ValueError, match="not identifiable"):
        model.uplift(np.arange(3))
    scores = model.relevance_policy().scores(np.arange(4))
    assert scores.shape == (4, 15) and ((scores > 0) & (scores < 1)).all()
    np.testing.assert_allclose(scores, model.relevance(np.arange(15))[:4])  # the policy ranks by f1 itself
    naive = plan_model(TrainConfig(variant="naive"), split, data.meta, seed=0, threads=1).plan
    assert naive.objective.weighting == "none" and set(naive.heads) == {"exposed"}
    with pytest.raises(ValueError, match="t_learner.*lacks"):
        plan_model(TrainConfig(variant="t_learner"), split, data.meta, seed=0, threads=1)


def test_best_epoch_and_metric_agree_with_the_logged_history_and_the_restored_weights() -> None:
    """Early stopping on val/auc: the reported best is the first maximum of the logged curve, training
    stopped ``patience`` checks after it, and the returned weights score exactly that value again."""
    data, split = coat_like_split()
    recorder, patience, max_epochs = Recorder(), 2, 12
    config = TrainConfig(epochs=max_epochs, batch_size=64, dim=8, num_layers=1, patience=patience, lr=0.1)
    model = train_model(split, data.meta, config, logger=recorder, seed=2, threads=1)
    rows = [row for row in recorder.rows if "val/auc" in row]  # one per validation check, i.e. per epoch
    curve = [row["val/auc"] for row in rows]
    history = model.history
    assert [int(row["epoch"]) for row in rows] == list(range(len(curve))) and history["epochs"] == len(curve)
    assert history["epochs"] < max_epochs  # early stopping ended it ...
    best = max(curve)
    assert history["best_val/auc"] == pytest.approx(best, abs=1e-7)
    assert history["best_epoch"] == curve.index(best)
    assert history["epochs"] - 1 - history["best_epoch"] == patience
    assert 0 < history["best_epoch"] and curve[-1] < best  # ... after a better epoch than the first and the last
    # the returned weights are the best check's: they score exactly what was logged then, not what the last epoch did
    again = model.module.val_metrics(model.module.scores)
    assert again == pytest.approx({k: rows[int(history["best_epoch"])][k] for k in again}, abs=1e-6)
    assert again["val/auc"] != pytest.approx(curve[-1], abs=1e-6)
    assert history["steps_per_epoch"] == np.ceil(len(split.train) / 64)  # every self-selected row once per epoch


def test_plans_follow_the_identification_rule(world_split) -> None:
    """Objective, heads, monitor and regime of every variant on the three kinds of data, and the
    settings each plan resolves (regime defaults for what the user left unset, the run's seed/threads)."""
    dataset, split = world_split
    assert split.kind == "per_user" and dataset.meta.has_unexposed_outcomes

    # synthetic world: unexposed outcomes identify f0 -> uplift regime, no weighting needed
    causal = plan_model(TrainConfig(lr=5e-3), split, dataset.meta, seed=11, threads=2)
    obj = causal.plan.objective
    assert (obj.kind, obj.weighting, obj.unexposed, obj.train_propensity) == ("causal", "none", True, True)
    assert obj.targeted_weight == TrainConfig().targeted_weight > 0 and obj.l2 == AUTO["uplift"]["l2"]
    assert causal.plan.heads == {"exposed": "shared", "propensity": "shared", "unexposed": "shared"}
    assert causal.plan.encoders == ("shared",) and causal.plan.identification.identifiable
    assert (causal.plan.monitor, causal.plan.mode, causal.plan.regime) == ("val/auuc_ipw", "max", "uplift")
    resolved = causal.config
    assert (resolved.seed, resolved.threads, resolved.regime, resolved.variant) == (11, 2, "uplift", "causal")
    assert resolved.lr == 5e-3  # set by the user: kept
    for key in ("num_layers", "batch_size", "init_std", "l2", "patience", "propensity_weight", "exposure_covariate",
                "snapshots", "logged_propensity_weight", "exposure_scale", "exposure_item_scale", "outcome_interaction_start",
                "outcome_interaction_lr", "outcome_item_offset_sd"):
        assert getattr(resolved, key) == AUTO["uplift"][key], key
    with pytest.raises(Exception):  # resolved once, then frozen
        resolved.lr = 1.0
    # the uplift regime: the exposure likelihood weighs 5x and f1, f0 read the exposure model's log-intensity
    assert obj.propensity_weight == resolved.propensity_weight == 5.0
    assert exposure_covariate(resolved, causal.plan) == ("exposed", "unexposed")
    mine = plan_model(TrainConfig(exposure_covariate=False, propensity_weight=2.0), split, dataset.meta, seed=0, threads=1)
    assert exposure_covariate(mine.config, mine.plan) == () and mine.plan.objective.propensity_weight == 2.0
    assert resolved.exposure_item_scale and not mine.config.exposure_item_scale  # no covariate, no deviation of its scale
    # f1's and f0's own term starts at zero beside the covariate; without it (or with a dot head) as the dot product
    assert resolved.outcome_interaction_start == "zero" and mine.config.outcome_interaction_start == "identity"
    assert resolved.outcome_interaction_lr == 0.3 and mine.config.outcome_interaction_lr == 1.0  # nothing to slow down
    dot = plan_model(TrainConfig(head="dot"), split, dataset.meta, seed=0, threads=1)
    assert dot.config.outcome_interaction_start == "identity"
    with pytest.raises(ValueError, match="needs gnn.head=bilinear"):
        plan_model(TrainConfig(head="dot", outcome_interaction_start="zero"), split, dataset.meta, seed=0, threads=1)
    # the regression on the log's propensities (0.3 in the uplift regime) reaches the exposure model's objective;
    # the user's weight wins; one covariate scale for f1 and f0
    assert obj.logged_propensity_weight == 0.3 and resolved.exposure_scale == "shared"
    logged = plan_model(TrainConfig(logged_propensity_weight=0.0, exposure_scale="per_head"), split, dataset.meta, seed=0, threads=1)
    assert logged.plan.objective.logged_propensity_weight == logged.config.logged_propensity_weight == 0.0
    assert logged.config.exposure_scale == "per_head"

    naive = plan_model(TrainConfig(variant="naive"), split, dataset.meta, seed=0, threads=1)
    assert naive.plan.objective.kind == "bpr" and naive.plan.heads == {"exposed": "shared"}
    assert (naive.plan.monitor, naive.plan.mode, naive.plan.regime) == ("val/ndcg_at_20", "max", "ranking")
    assert naive.config.num_layers == AUTO["ranking"]["num_layers"] and naive.name == "gnn_naive"
    assert resolved.snapshots and not naive.config.snapshots  # a snapshot ensemble only where the uplift criterion chooses

    t_learner = plan_model(TrainConfig(variant="t_learner"), split, dataset.meta, seed=0, threads=1)
    obj = t_learner.plan.objective
    assert (obj.weighting, obj.unexposed, obj.detach_control) == ("none", True, True)
    assert t_learner.plan.heads == {"exposed": "treated", "unexposed": "control"}
    assert t_learner.plan.encoders == ("treated", "control") and t_learner.plan.monitor == "val/auuc_ipw"
    assert exposure_covariate(t_learner.config, t_learner.plan) == () and not t_learner.config.exposure_covariate  # arms apart
    assert t_learner.plan.objective.logged_propensity_weight == t_learner.config.logged_propensity_weight == 0.0  # no exposure model
    # f1's per-item offsets: the causal model's in the uplift regime; the references stay as they are
    assert resolved.outcome_item_offset_sd == 0.5 and t_learner.config.outcome_item_offset_sd == 0.0
    assert naive.config.outcome_item_offset_sd == 0.0

    # rating study: exposed rows carry both outcomes, nothing unexposed -> debiased relevance only
    data, coat = coat_like_split()
    assert coat.kind == "randomized" and not identification(data.meta).identifiable
    dr_spec = plan_model(TrainConfig(), coat, data.meta, seed=0, threads=1)
    dr = dr_spec.plan
    assert exposure_covariate(dr_spec.config, dr) == () and dr.objective.propensity_weight == 1.0  # no f0 to read it
    assert (dr.objective.kind, dr.objective.weighting, dr.objective.unexposed, dr.objective.targeted_weight) == ("causal", "dr", False, 0.0)
    assert dr.heads == {"exposed": "shared", "propensity": "shared", "imputation": "shared"}
    assert (dr.monitor, dr.mode, dr.regime) == ("val/auc", "max", "debias") and dr.objective.l2 == AUTO["debias"]["l2"]
    ips = plan_model(TrainConfig(relevance_loss="ips"), coat, data.meta, seed=0, threads=1).plan
    assert ips.objective.weighting == "ips" and ips.heads == {"exposed": "shared", "propensity": "shared"}
    naive = plan_model(TrainConfig(variant="naive"), coat, data.meta, seed=0, threads=1).plan
    assert (naive.objective.kind, naive.objective.weighting, naive.regime) == ("causal", "none", "debias")
    custom = plan_model(TrainConfig(monitor="val/loss"), coat, data.meta, seed=0, threads=1).plan
    assert (custom.monitor, custom.mode) == ("val/loss", "min")

    # implicit positives, exposure unknown: nothing to correct with -> a BPR ranker, the naive one skipped
    implicit = data.interactions.assign(exposed=False, outcome=5.0)
    from recause.tasks.data.schema import Dataset

    data = Dataset(implicit, data.items, data.users, meta("implicit", False))
    split = split_dataset(data, SplitConfig(), 0)
    plans = plan_models(TrainConfig(), split, data.meta, seed=0, threads=1)
    assert [s.name for s in plans.specs] == ["gnn_causal"]
    bpr = plans.specs[0].plan
    assert bpr.objective.kind == "bpr" and bpr.regime == "ranking" and bpr.heads == {"exposed": "shared"}
    assert bpr.monitor == ("val/ndcg_at_20" if split.kind == "per_user" else "val/auc")
    assert set(plans.skipped) == {"gnn_naive", "gnn_t_learner", "gnn_causal_uplift"}


def test_config_rejects_a_neighbour_list_of_the_wrong_depth() -> None:
    with pytest.raises(ValueError, match="one per layer"):
        TrainConfig(sampling="neighbor", num_layers=2, num_neighbors=[5, 5, 5])


# ---------------------------------------------------------------------------------------------- smoke training
def test_an_epoch_of_a_log_larger_than_epoch_rows_is_a_fresh_random_part_of_it() -> None:
    """epoch_rows = 40 on the ~100 training rows, batches of 16: each epoch runs ⌈40 / 16⌉ = 3 steps, not
    the whole pass, and the epochs see different rows (each is the first 3 batches of a new shuffle)."""
    import lightning as L

    from recause.models.gnn.batches import epoch_steps

    assert epoch_steps(8, None, 64) == 8 and epoch_steps(8, 200, 64) == 4 and epoch_steps(3, 200, 64) == 3
    assert epoch_steps(8, 1, 64) == 1

    class Rows(L.Callback):
        def __init__(self) -> None:
            self.steps: dict[int, int] = {}
            self.seen: dict[int, set[tuple[int, int]]] = {}

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            epoch = trainer.current_epoch
            self.steps[epoch] = self.steps.get(epoch, 0) + 1
            self.seen.setdefault(epoch, set()).update(zip(batch["exp_u"].tolist(), batch["exp_i"].tolist()))

    data, split = coat_like_split()
    rows = Rows()
    config = TrainConfig(epochs=3, batch_size=16, dim=8, num_layers=1, patience=5, lr=0.1, epoch_rows=40)
    model = train_model(split, data.meta, config, seed=2, threads=1, callbacks=[rows])
    per_pass = int(np.ceil(len(split.train) / 16))
    assert per_pass > 3 and model.history["steps_per_pass"] == per_pass and model.history["steps_per_epoch"] == 3
    assert rows.steps == {0: 3, 1: 3, 2: 3}
    assert 0 < len(rows.seen[0]) <= 3 * 16 and rows.seen[0] != rows.seen[1]  # a part of the rows, a new one each epoch


def test_patience_is_cut_to_patience_rows_of_work_but_never_below_three_checks() -> None:
    """patience_checks: 20 checks of 80 k rows (MovieLens) stay 20 under 2 M rows; checks of a capped
    million rows wait ⌈2 M / 1 M⌉ = 2, raised to the floor of 3; a patience below the floor is kept.
    In a fit, the early stopping waits the cut patience: it stops within 3 checks of its best."""
    from recause.models.gnn.batches import patience_checks

    assert patience_checks(20, 2_000_000, 80_000) == 20 and patience_checks(20, None, 10**9) == 20
    assert patience_checks(6, 2_000_000, 1_000_000) == 3 and patience_checks(20, 2_000_000, 465_000) == 5
    assert patience_checks(2, 2_000_000, 1_000_000) == 2 and patience_checks(6, 2_000_000, 250_000) == 6

    data, split = coat_like_split()
    for patience_rows, expected in ((1, 3), (None, 8)):
        config = TrainConfig(epochs=60, batch_size=16, dim=8, num_layers=1, patience=8, lr=0.1, patience_rows=patience_rows)
        history = train_model(split, data.meta, config, seed=2, threads=1).history
        assert history["patience"] == expected
        assert history["epochs"] < 60 and history["epochs"] - history["best_epoch"] <= expected + 1


def test_causal_variant_beats_naive_on_causal_precision(world_split) -> None:
    dataset, split = world_split
    features = bow_features(split, dataset)
    evaluation = EvaluationConfig()
    naive = train_model(split, dataset.meta, TrainConfig(variant="naive", **FAST), features=features, seed=1, threads=1)
    causal = train_model(split, dataset.meta, TrainConfig(variant="causal", **FAST), features=features, seed=1, threads=1)
    cp_naive = causal_metrics_of(naive.relevance_policy(), split, dataset.world, evaluation)["causal/cp_at_10"]
    cp_causal = causal_metrics_of(causal.uplift_policy(), split, dataset.world, evaluation)["causal/cp_at_10"]
    assert causal.identifiable and cp_causal > 1.1 * cp_naive > 0
    truth = truth_metrics(dataset.world, split, causal.uplift, causal.propensity)
    assert truth["causal/pehe"] < 0.04 and truth["propensity/calibration_error"] < 0.03
    assert causal.summary()["model/monitor"] == "val/auuc_ipw" and causal.summary()["model/snapshots"] is True
    assert causal.history["snapshots"] == len(causal.module.snapshots) >= 1 and "checks of epochs" in causal.history["snapshot_window"]
    deviation = causal.module.model.item_exposure_scale["exposed"]  # f1's per-item deviations of the covariate's scale
    assert float(deviation.std()) > 0 and causal.history["exposure_item_scale_std_exposed"] == pytest.approx(float(deviation.std()))
    # f1's per-item offsets (empirical Bayes on the training impressions): f1 is the network's shifted on the logit
    # scale, f0 is not; an item never shown in training keeps the network's f1
    offsets = causal.module.item_offsets["exposed"]
    assert set(causal.module.item_offsets) == {"exposed"} and offsets.shape == (split.n_items,) and offsets.std() > 0
    assert causal.history["item_offset_std"] == pytest.approx(offsets.std()) and "prior sd 0.5" in causal.history["item_offsets"]
    users = np.arange(7)
    shifted, f0 = causal.relevance(users), causal.p_outcome_if_not_exposed(users)
    causal.module.use_item_offsets({})
    np.testing.assert_allclose(shifted, shift_logits(causal.relevance(users), offsets), rtol=1e-10)
    np.testing.assert_array_equal(causal.p_outcome_if_not_exposed(users), f0)
    causal.module.use_item_offsets({"exposed": offsets})
    shown = np.bincount(split.train.loc[split.train["exposed"], "item"].to_numpy(), minlength=split.n_items) > 0
    assert np.all(offsets[~shown] == 0.0)
    with pytest.raises(ValueError, match="item offsets need"):
        causal.module.use_item_offsets({"propensity": offsets})
    with pytest.raises(ValueError, match="item offsets need"):
        causal.module.use_item_offsets({"exposed": offsets[:-1]})
    with pytest.raises(ValueError, match="already has item offsets"):
        outcome_item_offsets(causal, split.train, 0.5)


@pytest.mark.slow
def test_t_learner_fits_one_network_per_arm(world_split) -> None:
    dataset, split = world_split
    model = train_model(split, dataset.meta, TrainConfig(variant="t_learner", **(FAST | {"epochs": 3})), seed=0, threads=1)
    assert set(model.module.model.encoders) == {"treated", "control"} and model.identifiable
    users = np.arange(5)
    f1, f0 = model.relevance(users), model.p_outcome_if_not_exposed(users)
    np.testing.assert_allclose(model.raw_uplift(users), f1 - f0)
    assert model.calibration is not None and model.calibration.slope > 0, model.history["uplift_calibration"]
    np.testing.assert_allclose(model.uplift(users), model.calibration.intercept + model.calibration.slope * (f1 - f0), rtol=1e-5)
    # one network per arm: moving the control network's weights moves f0 only, never f1
    assert model.history["snapshots"] == len(model.module.snapshots) >= 1  # the uplift regime scores a snapshot ensemble
    with torch.no_grad():
        for network in model.module.snapshots:
            for parameter in network.encoders["control"].parameters():
                parameter.add_(0.5)
    model.module.forget_states()
    np.testing.assert_array_equal(model.relevance(users), f1)
    assert np.abs(model.p_outcome_if_not_exposed(users) - f0).max() > 1e-3


@pytest.mark.parametrize("variant", ["naive", "causal"])
def test_neighbour_sampling_trains_end_to_end(world_split, variant: str, tmp_path) -> None:
    dataset, split = world_split
    config = TrainConfig(variant=variant, sampling="neighbor", num_layers=2, num_neighbors=[5, 5], epochs=2,
                         batch_size=2048, dim=16)
    model = train_model(split, dataset.meta, config, checkpoint_dir=tmp_path, seed=0, threads=1)
    assert model.history["epochs"] == 2
    # the checkpoint Lightning kept is the best validation check's: same epoch, same score, same weights as returned
    checkpoint = torch.load(tmp_path / "best.ckpt", map_location="cpu", weights_only=False)
    assert checkpoint["epoch"] == model.history["best_epoch"]
    kept = next(v for k, v in checkpoint["callbacks"].items() if k.startswith("ModelCheckpoint"))
    if model.plan.monitor == "val/auuc_ipw":  # uplift: stopped on the likelihood, the epoch chosen after (EpochChoice)
        assert kept["monitor"] == "val/outcome_loss" and checkpoint["recause_epoch_choice"] == model.history["epoch_choice"]
        assert len(checkpoint["recause_snapshots"]) == len(model.module.snapshots) >= 1  # what the scores average
        np.testing.assert_array_equal(checkpoint["recause_item_offsets"]["exposed"], model.module.item_offsets["exposed"])
    else:
        monitor = model.plan.monitor
        assert kept["monitor"] == monitor and float(kept["best_model_score"]) == pytest.approx(model.history[f"best_{monitor}"], rel=1e-6)
    state = model.module.state_dict()
    assert checkpoint["state_dict"].keys() == state.keys()
    for name, value in checkpoint["state_dict"].items():
        torch.testing.assert_close(value, state[name], rtol=0, atol=0, msg=name)
    scores = model.relevance(np.arange(10))
    assert np.isfinite(scores).all() and scores.std() > 0


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
    from matplotlib import colormaps
    from matplotlib.image import imread

    frame = pd.DataFrame([[0.1, -0.2]], index=pd.Index(["light"], name="segment"), columns=pd.Index(["a", "b"], name="topic"))
    csv, png = write_effect_map(frame, tmp_path)
    assert (csv.name, png.name) == ("causal_effect_map.csv", "causal_effect_map.png")
    back = pd.read_csv(csv, index_col="segment")
    back.columns.name = "topic"
    pd.testing.assert_frame_equal(back, frame)
    image = imread(png)  # (H, W, 4) floats in [0, 1]
    # topics down the side, segments across, with the caption below: taller than a bare 2 x 1 strip
    assert image.shape[0] >= 250 and image.shape[1] >= 300 and image.shape[2] == 4
    rgb = image[..., :3].reshape(-1, 3)
    assert rgb.std(axis=0).max() > 0.1  # not a blank canvas
    # the two cells fill most of the axes in their diverging colours (symmetric range ±0.2, centred on 0):
    # -0.2 is the colormap's blue end, +0.1 three quarters of the way to red; the colour bar alone is a thin strip
    for value in (-0.2, 0.1):
        colour = np.array(colormaps["RdBu_r"]((value + 0.2) / 0.4)[:3])
        share = (np.abs(rgb - colour).max(axis=1) < 0.02).mean()
        assert share > 0.1, (value, share)


def test_segments_from_the_world_or_from_activity(world_split) -> None:
    dataset, split = world_split
    codes, names = user_segments(dataset.users, split)
    assert sorted(names) == ["heavy", "light", "regular"] and codes.shape == (split.n_users,)
    # each split user gets the world's own segment (the users table is in id order, the split is not)
    truth = dataset.users.set_index("user_id").loc[split.users.ids, "segment"].astype(str).to_numpy()
    np.testing.assert_array_equal(np.asarray(names)[codes], truth)
    codes, names = user_segments(dataset.users.drop(columns="segment"), split)
    assert names == ["light", "regular", "heavy"] and set(np.unique(codes)) == {0, 1, 2}
    # activity tertiles: every light user has fewer training rows than every regular one, and so on
    activity = np.bincount(split.train["user"].to_numpy(), minlength=split.n_users)
    for lower in (0, 1):
        assert activity[codes == lower].max() < activity[codes == lower + 1].min()
    assert abs(np.bincount(codes) - split.n_users / 3).max() < 0.2 * split.n_users  # roughly thirds


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
    models = train_models(split, data.meta, TrainConfig(epochs=1, batch_size=64, dim=8, num_layers=1), seed=0, threads=1)
    assert set(models.models) == {"gnn_causal", "gnn_naive"}
    assert "lacks" in models.skipped["gnn_t_learner"] and "not identifiable" in models.skipped["gnn_causal_uplift"]
    assert set(models.policies()) == {"gnn_causal", "gnn_naive"}
    summary = models.summary()
    assert summary["causal/identifiable"] is False and summary["gnn/gnn_causal/model/objective"].startswith("causal: dr")
    for name in ("gnn_causal", "gnn_naive"):  # the debias regime's settings, except what the config set
        assert summary[f"gnn/{name}/model/regime"] == "debias" and summary[f"gnn/{name}/model/monitor"] == "val/auc"
        assert (summary[f"gnn/{name}/model/batch_size"], summary[f"gnn/{name}/model/num_layers"]) == (64, 1)
        assert summary[f"gnn/{name}/model/lr"] == AUTO["debias"]["lr"] and summary[f"gnn/{name}/train/epochs"] == 1
    assert summary["gnn/gnn_naive/model/objective"].startswith("naive")
    assert summary["gnn/gnn_t_learner/skipped"] == models.skipped["gnn_t_learner"]
    assert not any(k.startswith("baseline/") for k in summary)
    policies = models.policy_set()
    assert policies.prefix == "gnn" and not policies.oracles and policies.skipped == models.skipped


def test_a_reference_with_the_causal_objective_is_not_trained_twice() -> None:
    data, split = coat_like_split()
    implicit = data.interactions.assign(exposed=False, outcome=5.0)  # every row a positive, nothing exposed
    from recause.tasks.data.schema import Dataset

    data = Dataset(implicit, data.items, data.users, meta("implicit", False))
    split = split_dataset(data, SplitConfig(), 0)
    models = train_models(split, data.meta, TrainConfig(epochs=1, batch_size=64, dim=8, num_layers=1, compare=["naive"]), seed=0, threads=1)
    assert set(models.models) == {"gnn_causal"} and "same objective" in models.skipped["gnn_naive"]
