"""Config: presets load into the typed model, overrides and the environment apply in order."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from recause.flows.config import PipelineConfig, available_presets, build_config, parse_override


def test_every_preset_is_a_valid_config() -> None:
    assert {"smoke", "default", "full"} <= set(available_presets())
    sizes = {name: build_config(name).world.n_users for name in ("smoke", "default", "full")}
    assert sizes["smoke"] < sizes["default"] < sizes["full"]


def test_precedence_defaults_preset_env_arguments_overrides(tmp_path: Path) -> None:
    env = {"RECAUSE_DATA_DIR": str(tmp_path), "MLFLOW_TRACKING_URI": "http://127.0.0.1:5000"}
    config = build_config(
        "smoke", dataset="coat", output_dir=tmp_path / "run", env=env,
        overrides=["world.n_users=55", "tracking.tracking_uri=sqlite:///x.db", "evaluation.ks=[5, 10]"],
    )
    assert config.preset == "smoke" and config.data.dataset == "coat"
    assert config.data.root == tmp_path and config.runtime.output_dir == tmp_path / "run"
    assert config.world.n_users == 55 and config.world.n_items == 150  # override, then preset
    assert config.tracking.tracking_uri == "sqlite:///x.db"  # --set wins over the environment
    assert config.evaluation.ks == [5, 10]
    assert build_config("smoke", env=env).tracking.tracking_uri == "http://127.0.0.1:5000"


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (["world.n_users=1"], "greater than or equal to 2"),
        (["world.bogus=1"], "Extra inputs are not permitted"),
        (["data.dataset=nope"], "unknown dataset 'nope'"),
        (["evaluation.ks=[0]"], "positive cut-offs"),
        (["validation.max_failed_fraction=1.5"], "less than or equal to 1"),
        (["runtime.threads=0"], "greater than or equal to 1"),
    ],
)
def test_invalid_settings_are_rejected_with_the_field_named(overrides: list[str], match: str) -> None:
    with pytest.raises(ValidationError, match=match):
        build_config("smoke", overrides=overrides)


def test_override_syntax_and_unknown_preset() -> None:
    assert parse_override("a.b=[1, 2]") == (["a", "b"], [1, 2])
    assert parse_override("a=") == (["a"], None)
    with pytest.raises(ValueError, match="key=value"):
        parse_override("no-equals-sign")
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        build_config("huge")


def test_flat_params_cover_every_stage() -> None:
    flat = PipelineConfig().flat()
    assert flat["world.confounding"] == "1.0" and flat["runtime.threads"] == "1"
    assert {key.split(".")[0] for key in flat} >= {"data", "world", "validation", "split", "evaluation", "baselines", "runtime", "tracking"}
