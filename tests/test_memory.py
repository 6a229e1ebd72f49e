"""Peak memory of a block of work: the main process's allocations and its children's both count."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np

from recause.flows.memory import GIB, PeakMemory, tree_rss

import psutil

MIB = 1024 ** 2


def test_peak_sees_an_allocation_freed_before_the_block_ends():
    baseline = tree_rss(psutil.Process())
    with PeakMemory(interval=0.02) as peak:
        block = np.ones(300 * MIB // 8)  # 300 MiB, touched
        time.sleep(0.1)
        del block
    assert peak.bytes - baseline > 250 * MIB
    assert peak.gib == peak.bytes / GIB


def test_peak_counts_a_child_process():
    code = "import numpy as np, time; a = np.ones(200 * 1024 * 1024 // 8); time.sleep(1.0)"
    with PeakMemory(interval=0.05) as peak:
        before = tree_rss(psutil.Process())
        subprocess.run([sys.executable, "-c", code], check=True)
    assert peak.bytes - before > 150 * MIB


def test_an_idle_block_stays_near_the_current_size():
    now = tree_rss(psutil.Process())
    with PeakMemory(interval=0.02) as peak:
        time.sleep(0.05)
    assert abs(peak.bytes - now) < 100 * MIB
