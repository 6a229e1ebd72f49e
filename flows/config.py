"""The pipeline's one configuration: a pydantic model per stage, YAML presets, ``--set`` overrides.

Precedence, lowest first: field defaults < preset YAML (``flows/presets/<name>.yaml``) <
environment (``RECAUSE_DATA_DIR``, ``RECAUSE_OUTPUT_ROOT``, ``MLFLOW_TRACKING_URI``) < explicit
arguments (``--dataset``, ``--output-dir``) < ``--set a.b=c``. The environment is read here and
nowhere else; every other module receives a config.

The Prefect UI renders :class:`PipelineConfig` as the run form, so every field has a
description and bounds.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml
from pydantic import Field

from recause.models.world.scm import WorldConfig
from recause.tasks.baselines import BaselinesConfig
from recause.tasks.config import Section
from recause.tasks.safe_yaml import YamlInputError, load_yaml
from recause.tasks.contrast.config import ContrastConfig
from recause.tasks.data import DataConfig
from recause.tasks.data.split import SplitConfig
from recause.tasks.evaluate import EvaluationConfig
from recause.tasks.features.config import FeaturesConfig
from recause.tasks.recommend.config import RecommendConfig
from recause.tasks.simulate.config import SimulateConfig
from recause.tasks.train.config import TrainConfig
from recause.validations.config import ValidationConfig

PRESET_DIR = Path(__file__).parent / "presets"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class RuntimeConfig(Section):
    seed: int = Field(0, ge=0, description="The run's one seed: the synthetic world, splits, baselines, training, bootstrap.")
    threads: int = Field(1, ge=1, le=256, description="torch intra-op threads; 1 is fastest on 2 cores.")
    output_root: Path = Field(
        PROJECT_ROOT / "outputs",
        description="Home of run folders, the MLflow store and Prefect's local state. "
        "Defaults to <project>/outputs or $RECAUSE_OUTPUT_ROOT.",
    )
    output_dir: Path | None = Field(
        None, description="This run's folder (summary.json, reports). Default: <output_root>/runs/<run>."
    )
    cache_dir: Path | None = Field(
        None, description="Reusable work across runs (text embeddings, exported encoders). Default: <output_root>/cache."
    )

    task_runner: Literal["sequential", "threads", "dask"] = Field(
        "sequential",
        description="Where the sharded stages (contrast, evaluate) run their shards: sequential (in the stage, in order), "
        "threads (Prefect's thread pool), dask (prefect-dask: a local cluster of dask_workers processes, or dask_address).",
    )
    dask_workers: int = Field(2, ge=1, le=256, description="Worker processes (one thread each) of the local Dask cluster.")
    dask_address: str | None = Field(
        None, description="An existing Dask scheduler (tcp://host:8786) instead of a local cluster; with task_runner=dask.")

    resume: bool = Field(
        True,
        description="Reuse the kept result of each stage whose inputs, settings and code are unchanged "
        "(kept under <output_root>/stages); false (--fresh) recomputes every stage.",
    )

    def cache_folder(self) -> Path:
        return Path(self.cache_dir) if self.cache_dir is not None else Path(self.output_root) / "cache"


class TrackingConfig(Section):
    enabled: bool = Field(True, description="Log the run to MLflow.")
    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking URI. Default: $MLFLOW_TRACKING_URI, else a SQLite store in "
        "<output_root>/mlflow.db with artifacts in <output_root>/mlartifacts.",
    )
    experiment_prefix: str = Field("recause", description="Experiments are named <prefix>/<dataset>.")
    ui_url: str | None = Field(
        None, description="The MLflow UI that links point to (the Prefect artifact, the report). Default: "
        "$RECAUSE_MLFLOW_UI_URL, else the tracking URI when it is a server; none for a local store.")


class PipelineConfig(Section):
    """Everything one pipeline run needs; the Prefect run form and the MLflow params."""

    preset: str = Field("default", description="Name of the preset this config started from.")
    data: DataConfig = Field(default_factory=DataConfig)
    world: WorldConfig = Field(default_factory=WorldConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    validation: ValidationConfig = Field(default_factory=ValidationConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    contrast: ContrastConfig = Field(default_factory=ContrastConfig)
    baselines: BaselinesConfig = Field(default_factory=BaselinesConfig)
    gnn: TrainConfig = Field(default_factory=TrainConfig)
    simulate: SimulateConfig = Field(default_factory=SimulateConfig)
    recommend: RecommendConfig = Field(default_factory=RecommendConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    def flat(self) -> dict[str, str]:
        """``{"world.n_users": "3000", ...}``: the MLflow params of a run."""
        return {key: str(value) for key, value in flatten(self.model_dump(mode="json")).items()}


def run_folder(config: PipelineConfig, now: datetime | None = None) -> Path:
    """This run's folder: ``runtime.output_dir``, else a new name under ``<output_root>/runs``:
    ``<UTC time>-<dataset>-<preset>-<8 hex>`` (the random suffix keeps runs started in the same
    second apart). Call once per run: without ``output_dir`` each call names a new folder."""
    if config.runtime.output_dir is not None:
        return Path(config.runtime.output_dir).resolve()
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    dataset = config.data.dataset.replace("dir:", "dir-").replace("/", "_")
    return Path(config.runtime.output_root).resolve() / "runs" / f"{stamp}-{dataset}-{config.preset}-{uuid.uuid4().hex[:8]}"


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def available_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_preset(name: str) -> dict[str, Any]:
    path = PRESET_DIR / f"{name}.yaml"
    if not path.exists():
        raise ValueError(f"unknown preset {name!r}; available: {', '.join(available_presets())}")
    tree = yaml.safe_load(path.read_text()) or {}
    if not isinstance(tree, dict):
        raise ValueError(f"preset {path} must hold a mapping, found {type(tree).__name__}")
    return tree


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"world.n_users=500"`` -> ``(["world", "n_users"], 500)``; the value is read as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"--set expects key=value (e.g. world.n_users=500), got {text!r}")
    try:
        value = load_yaml(raw) if raw.strip() else None
    except YamlInputError as error:
        raise ValueError(f"--set {key.strip()}: the value is not usable YAML: {error}") from error
    return key.strip().split("."), value


def set_path(tree: dict[str, Any], path: list[str], value: Any) -> None:
    node = tree
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValueError(f"cannot set {'.'.join(path)}: {part} is not a section")
        node = child
    node[path[-1]] = value


def environment_overrides(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings that standard environment variables supply (this is the only reader)."""
    tree: dict[str, Any] = {}
    if env.get("RECAUSE_DATA_DIR"):
        set_path(tree, ["data", "root"], env["RECAUSE_DATA_DIR"])
    if env.get("RECAUSE_OUTPUT_ROOT"):
        set_path(tree, ["runtime", "output_root"], env["RECAUSE_OUTPUT_ROOT"])
    if env.get("MLFLOW_TRACKING_URI"):
        set_path(tree, ["tracking", "tracking_uri"], env["MLFLOW_TRACKING_URI"])
    if env.get("RECAUSE_MLFLOW_UI_URL"):
        set_path(tree, ["tracking", "ui_url"], env["RECAUSE_MLFLOW_UI_URL"])
    return tree


def merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def build_config(
    preset: str = "default",
    *,
    dataset: str | None = None,
    output_dir: str | Path | None = None,
    overrides: list[str] = (),  # type: ignore[assignment]
    env: Mapping[str, str] | None = None,
) -> PipelineConfig:
    """Resolve a config from a preset, the environment, explicit arguments and overrides."""
    tree = merge(load_preset(preset), environment_overrides(env or {}))
    tree["preset"] = preset
    if dataset is not None:
        set_path(tree, ["data", "dataset"], dataset)
    if output_dir is not None:
        set_path(tree, ["runtime", "output_dir"], str(output_dir))
    for text in overrides:
        path, value = parse_override(text)
        set_path(tree, path, value)
    return PipelineConfig.model_validate(tree)
