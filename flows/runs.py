"""A run's identity: the process that owns it and the folder it claims.

A run folder belongs to exactly one run. :func:`claim_run_folder` creates ``run.json`` in it with
``O_EXCL`` (the owner's pid, host and process start time), so two runs given the same folder
cannot both start, and a folder that already holds files is refused instead of mixed. The same
owner record, set as tags on the MLflow and Prefect runs, lets a later start tell a crashed run
(its process gone) from a live one (:mod:`recause.flows.recovery`).
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from recause.tasks.config import ConfigurationError

CLAIM_FILE = "run.json"


@dataclass(frozen=True)
class Owner:
    """A process, identified across pid reuse: ``pid`` on ``host``, started at ``started``
    (seconds since the epoch, as the OS reports the process's creation)."""

    pid: int
    host: str
    started: float

    @classmethod
    def current(cls) -> "Owner":
        return cls.of(os.getpid())

    @classmethod
    def of(cls, pid: int) -> "Owner":
        import psutil

        return cls(pid, socket.gethostname(), round(psutil.Process(pid).create_time(), 2))

    def tag(self) -> str:
        """``"<pid>@<host>@<started>"``: one string for MLflow tags and Prefect tags."""
        return f"{self.pid}@{self.host}@{self.started:.2f}"

    @classmethod
    def from_tag(cls, text: str) -> "Owner | None":
        """The owner a :meth:`tag` names, or None when ``text`` is not one."""
        try:
            pid, host, started = text.rsplit("@", 2)
            return cls(int(pid), host, float(started))
        except ValueError:
            return None

    def alive(self) -> bool | None:
        """True while the process runs, False once it is gone, None when it cannot be told
        (another host)."""
        if self.host != socket.gethostname():
            return None
        import psutil

        try:
            return abs(psutil.Process(self.pid).create_time() - self.started) < 1.0
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            return False
        except psutil.AccessDenied:
            return True


def refuse_used_folder(folder: Path) -> None:
    """Raise :class:`ConfigurationError` when ``folder`` exists and holds anything (another run's
    files, or this run's from before): a run never writes into another's folder."""
    folder = Path(folder)
    held = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if held:
        raise ConfigurationError(
            f"run folder {folder} already holds another run's files ({', '.join(held[:5])}); "
            "a run needs a folder of its own: pass a new --output-dir, or leave it out for a fresh folder"
        )


def claim_run_folder(folder: Path, owner: Owner, run_name: str) -> Path:
    """Create ``folder`` (or adopt it when empty) and write its claim, ``run.json``, exclusively.

    Raises :class:`ConfigurationError` when the folder already holds files, or when another run
    claimed it first.
    """
    folder = Path(folder)
    refuse_used_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    record = {**asdict(owner), "run_name": run_name, "claimed": datetime.now(timezone.utc).isoformat()}
    try:
        descriptor = os.open(folder / CLAIM_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        refuse_used_folder(folder)  # another run claimed it between the check and now
        raise
    with os.fdopen(descriptor, "w") as handle:
        json.dump(record, handle, indent=2)
    return folder


def claimed_by(folder: Path, owner: Owner) -> bool:
    """Whether ``folder``'s claim is ``owner``'s (so its files are this run's, not an earlier one's)."""
    try:
        record = json.loads((Path(folder) / CLAIM_FILE).read_text())
    except (OSError, ValueError):
        return False
    return (record.get("pid"), record.get("host"), record.get("started")) == (owner.pid, owner.host, owner.started)
