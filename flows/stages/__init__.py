"""The pipeline's Prefect tasks: one thin task per stage, each in its own module.

A task calls its stage's pure function (:mod:`recause.tasks`), writes the stage's files
(:mod:`recause.flows.artifacts`) and returns a :class:`StageResult`: plain, serialisable values —
no live MLflow run, no logger — so any task runner can execute it. The flow
(:mod:`recause.flows.pipeline`) logs each result to the stage's MLflow run.

Tasks exchange in-memory objects within one flow run, so caching is off (``NO_CACHE``): hashing
large frames for cache keys would cost more than the work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from prefect.cache_policies import NO_CACHE

T = TypeVar("T")
TASK_OPTIONS = {"cache_policy": NO_CACHE, "persist_result": False}


@dataclass(frozen=True)
class StageResult(Generic[T]):
    """What every stage task returns.

    ``value``: what later stages consume (None when the stage had nothing to produce — no text to
    embed, data that failed validation, a comparison the data cannot support); ``metrics``: flat
    summary entries (numbers become MLflow metrics, strings tags); ``files``: what it wrote under
    the run folder; ``notes``: lines for the run log.
    """

    value: T | None
    metrics: dict[str, float | int | bool | str] = field(default_factory=dict)
    files: tuple[Path, ...] = ()
    notes: tuple[str, ...] = ()
