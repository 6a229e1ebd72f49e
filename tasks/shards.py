"""Shards: a stage's work split into pure pieces that any task runner can execute.

A :data:`MapShards` takes a module-level function, the items to split the work over and the
arguments every shard shares, and returns the sequence ``[fn(item, **common) for item in items]`` —
in the items' order, whoever computed them. :func:`in_order` computes them here, one after another,
before it returns (the default, and what a unit test calls); the flow layer supplies one that
submits each shard to the run's task runner and returns at once (:mod:`recause.flows.shards`: threads
or Dask worker processes), where reading a result waits for its shard. So a stage that calls a map
early and reads its results late lets the shards run while it does its own work.

A shard function is pure and module-level (picklable by reference), takes plain data (arrays,
dataclasses, fitted models — no open run, logger or file handle) and draws any randomness from
seeds it is given, never from which worker runs it; so every runner gives the same numbers. The
arguments must not change while the stage runs (a runner may have sent them already).

``priority`` says which shards a stage needs first: where the runner queues shards (Dask), a map of a
higher priority runs ahead of queued shards of a lower one, whenever it was submitted. A stage gives the
maps it reads last a negative one, so those it reads early are not stuck behind them. It orders the work
and never changes a number; :func:`in_order` and the threads runner ignore it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class MapShards(Protocol):
    def __call__(self, fn: Callable[..., T], items: Sequence[Any], common: Mapping[str, Any], *, priority: int = 0
                 ) -> Sequence[T]: ...


def in_order(fn: Callable[..., T], items: Sequence[Any], common: Mapping[str, Any], *, priority: int = 0) -> list[T]:
    """Every shard here, one after another: ``[fn(item, **common) for item in items]`` (``priority`` has nothing to order)."""
    return [fn(item, **common) for item in items]
