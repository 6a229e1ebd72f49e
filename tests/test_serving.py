"""The Model Registry's champion moves only when a new version beats it on the metric of record."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_champion_moves_only_for_a_better_version(tmp_path: Path) -> None:
    from recause.mlflow_config.serving import CHAMPION, model_name, register
    from recause.mlflow_config.tracking import open_client

    client = open_client(f"sqlite:///{tmp_path / 'mlflow.db'}", (tmp_path / "artifacts").as_uri())
    experiment = client.create_experiment("recause/synthetic")
    runs = [client.create_run(experiment).info.run_id for _ in range(4)]
    name = model_name("synthetic")
    assert name == "recause-synthetic" and model_name("dir:/data/my logs") == "recause-dir-my-logs"

    def add(run: str, value: float | None):
        return register(client, name, f"runs:/{run}/recommender", run, "recommend/true_caused", value)

    first = add(runs[0], 0.020)
    assert (first.version, first.champion, first.reason) == ("1", True, "the first version: no champion yet")
    worse = add(runs[1], 0.015)
    assert not worse.champion and worse.reason == "recommend/true_caused 0.015 against the champion's (version 1) 0.02"
    assert str(client.get_model_version_by_alias(name, CHAMPION).version) == "1"
    better = add(runs[2], 0.025)
    assert better.champion and str(client.get_model_version_by_alias(name, CHAMPION).version) == "3"
    unknown = add(runs[3], None)
    assert not unknown.champion and "champion stays version 3" in unknown.reason
    assert client.get_model_version(name, "3").tags["recause.metric_value"] == "0.025"


def test_metric_of_record_prefers_the_truth_where_the_world_gives_it() -> None:
    from recause.flows.pipeline import metric_of_record

    assert metric_of_record({"recommend/true_caused": 0.02, "ranking/ndcg_at_20": 0.3}) == ("recommend/true_caused", 0.02)
    assert metric_of_record({"ranking/ndcg_at_20": 0.3}) == ("ranking/ndcg_at_20", 0.3)
    assert metric_of_record({}) == ("ranking/ndcg_at_20", None)
