"""Peak resident memory of this process and its children while a block of work runs.

A stage's peak memory (``stage/<name>/peak_rss_gb``) is the largest sum of the resident set sizes
of this process and every live descendant (Dask workers, Lightning's spawned trainers, the text
encoder's runtime threads live in this process) seen by a sampler thread during the stage. Sampling
misses spikes shorter than its interval (0.2 s by default); the process's own high-water mark
(``ru_maxrss``) bounds it from above for the main process, so the larger of the two is kept.
"""

from __future__ import annotations

import resource
import sys
import threading
from types import TracebackType

import psutil

GIB = 1024 ** 3


def tree_rss(process: psutil.Process) -> int:
    """Resident bytes of ``process`` and all its live descendants (those that vanish mid-read are skipped)."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return total


def own_high_water() -> int:
    """This process's lifetime peak resident bytes (``ru_maxrss``: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


class PeakMemory:
    """Context manager: ``with PeakMemory() as peak: ...`` then ``peak.bytes`` / ``peak.gib``.

    The main process's contribution is exact when the block raises its lifetime high-water mark
    (``ru_maxrss`` grows), otherwise sampled; children are always sampled.
    """

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._process = psutil.Process()
        self._high_water_before = 0

    def _sample(self) -> None:
        while not self._stop.wait(self.interval):
            self.bytes = max(self.bytes, tree_rss(self._process))

    def __enter__(self) -> PeakMemory:
        self._high_water_before = own_high_water()
        self.bytes = tree_rss(self._process)
        self._thread = threading.Thread(target=self._sample, name="recause-peak-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.bytes = max(self.bytes, tree_rss(self._process))
        high_water = own_high_water()
        if high_water > self._high_water_before:  # the block set a new lifetime peak: it is exact
            self.bytes = max(self.bytes, high_water)

    @property
    def gib(self) -> float:
        return self.bytes / GIB
