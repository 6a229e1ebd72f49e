"""Parent-death watchdog: the processes a run starts die with it, even after ``kill -9``.

Prefect's temporary API server is a child process that Prefect stops at interpreter exit; a
SIGKILL skips that, and the server (~200 MB) would run on as an orphan. ``recause run`` starts
this watchdog (:func:`start_watchdog`) before anything else: it notes the run's descendants every
``interval`` seconds and, once the run process is gone, terminates the ones still running
(``SIGTERM``, then ``SIGKILL`` after ``grace`` seconds). Processes are matched by pid *and* start
time, so a reused pid is never touched. Run as ``python -m recause.flows.watchdog PID``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys


def watch(parent_pid: int, interval: float = 0.5, grace: float = 5.0) -> list[int]:
    """Block until ``parent_pid`` ends, then stop its remembered descendants; returns their pids."""
    import time

    import psutil

    me = os.getpid()
    try:
        parent = psutil.Process(parent_pid)
    except psutil.NoSuchProcess:
        return []
    known: dict[int, psutil.Process] = {}
    while parent.is_running() and parent.status() != psutil.STATUS_ZOMBIE:
        try:
            for child in parent.children(recursive=True):
                if child.pid != me:
                    known.setdefault(child.pid, child)
        except psutil.NoSuchProcess:
            break
        time.sleep(interval)
    left = [p for p in known.values() if p.is_running()]
    for process in left:
        try:
            process.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(left, timeout=grace)
    for process in alive:
        try:
            process.kill()
        except psutil.NoSuchProcess:
            pass
    return [p.pid for p in left]


def start_watchdog() -> subprocess.Popen:
    """Start a watchdog over this process (in its own session, so a terminal's Ctrl-C reaches the
    run, which then stops its children itself, and not the watchdog)."""
    return subprocess.Popen(
        [sys.executable, "-m", "recause.flows.watchdog", str(os.getpid())],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch(int(sys.argv[1]))
