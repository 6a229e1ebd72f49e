"""Lightning callbacks and context managers of the training loop (imported only when a model is fitted).

- :class:`BestWeights` keeps the best validation check's weights in memory and restores them;
- :class:`EpochChoice` keeps every check's weights and picks the uplift criterion's best from the likelihood's best on
  (or hands on that window's weights for a snapshot ensemble);
- :class:`EpochTimer` measures the wall seconds of each training epoch (validation excluded);
- :class:`EpochCurves` records each epoch's logged losses and validation metrics (the training curves);
- :class:`Handover`: the state these four return from a forked training process (``tasks/train/distributed.py``);
- :class:`ProcessThreads` sets torch's intra-op threads in every training process;
- :func:`torch_threads` sets torch's intra-op threads for a block; :func:`quiet_lightning`
  silences Lightning's start-up chatter and known warnings.
"""

from __future__ import annotations

import contextlib
import time

import numpy as np
from lightning.pytorch.callbacks import Callback


class Handover(Callback):
    """A callback whose state the caller reads after fit: under DDP the fit runs in forked processes,
    and rank 0 hands the attributes named in ``HANDOVER`` back to the caller's copy."""

    HANDOVER: tuple[str, ...] = ()

    def handover(self) -> dict:
        return {name: getattr(self, name) for name in self.HANDOVER}

    def take_over(self, state: dict) -> None:
        for name, value in state.items():
            setattr(self, name, value)


class ProcessThreads(Callback):
    """torch intra-op threads in every training process (a forked one starts with Lightning's choice)."""

    def __init__(self, threads: int):
        self.threads = threads

    def setup(self, trainer, module, stage: str) -> None:
        import torch

        torch.set_num_threads(self.threads)


class BestWeights(Handover):
    """Keeps the weights of the best validation check in memory and restores them after fit."""

    HANDOVER = ("value", "epoch", "state")

    def __init__(self, monitor: str, mode: str):
        self.monitor, self.mode = monitor, mode
        self.value, self.epoch, self.state = float("nan"), -1, None

    def on_validation_end(self, trainer, module) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is None or trainer.sanity_checking:
            return
        self.consider(float(value), trainer.current_epoch, module)

    def consider(self, value: float, epoch: int, module) -> None:
        """Keep ``module``'s weights if ``value`` is the best so far (epoch -1: the weights before training)."""
        better = value < self.value if self.mode == "min" else value > self.value
        if self.state is None or better:
            self.value, self.epoch = value, epoch
            self.state = {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}

    def restore(self, module) -> None:
        if self.state is not None:
            module.load_state_dict(self.state)


class EpochChoice(Handover):
    """Chooses the epoch to keep when the selection criterion is noisy (the uplift regime).

    After each validation check it keeps the weights, the stable ``baseline`` metric (the outcome
    likelihood, minimised) and each validation user's value of ``criterion`` (a
    :class:`~recause.tasks.train.data.UpliftCriterion`). :meth:`choose` keeps the epoch best on the
    criterion among those from the baseline's best epoch on: the outcome heads stop improving there
    while the uplift ranking keeps improving for a few epochs, and an inverse-propensity criterion,
    right on average, can crown an early, nearly random epoch by one heavy-weighted draw (seen with
    plain early stopping on it).
    """

    HANDOVER = ("epochs", "losses", "values", "states")

    def __init__(self, criterion, baseline: str = "val/outcome_loss"):
        self.criterion, self.baseline = criterion, baseline
        self.epochs: list[int] = []
        self.losses: list[float] = []
        self.values: list[np.ndarray] = []
        self.states: list[dict] = []

    @classmethod
    def replay(cls, losses, values, epochs=None) -> EpochChoice:
        """A choice over recorded checks (no weights kept): ``losses`` (C,) of the baseline, ``values`` (C, n) each
        check's per-user criterion (n = 1 for a mean), ``epochs`` (C,) 0-based (default 0..C-1). For benches."""
        choice = cls(criterion=None)
        choice.losses = [float(x) for x in losses]
        choice.values = [np.asarray(v, dtype=np.float64)[None] for v in values]
        choice.epochs = list(range(len(choice.losses))) if epochs is None else [int(e) for e in epochs]
        return choice

    def on_validation_end(self, trainer, module) -> None:
        loss = trainer.callback_metrics.get(self.baseline)
        if trainer.sanity_checking or loss is None:
            return
        values = self.criterion.take_last()  # what the module's validator just computed with these weights
        if values is None:  # the criterion is not among the module's validators: score here
            values = self.criterion.per_user(module.scores)
            module.forget_states()
        self.values.append(values[None])
        self.epochs.append(trainer.current_epoch)
        self.losses.append(float(loss))
        self.states.append({k: v.detach().cpu().clone() for k, v in module.state_dict().items()})

    def choose(self) -> tuple[int, str]:
        """(index into the checks, why): see the class."""
        stable = self.window().start
        means = [float(v.mean()) for v in self.values[: len(self.losses)]]
        best = stable + int(np.argmax(means[stable:]))
        return best, (f"epoch {self.epochs[best] + 1}: best on val/auuc_ipw ({means[best]:.4g}) among the epochs from "
                      f"the {self.baseline} best (epoch {self.epochs[stable] + 1}, val/auuc_ipw {means[stable]:.4g}) on")

    def restore(self, module, index: int) -> None:
        module.load_state_dict(self.states[index])

    def window(self) -> range:
        """The checks from the baseline's best to the last: the snapshots a snapshot ensemble averages."""
        return range(int(np.argmin(self.losses)), len(self.losses))


class EpochTimer(Handover):
    """Wall seconds of each training epoch (training steps only, not validation)."""

    HANDOVER = ("seconds",)

    def __init__(self):
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer, module) -> None:
        self._start = time.perf_counter()

    def on_validation_start(self, trainer, module) -> None:
        if self._start:
            self.seconds.append(time.perf_counter() - self._start)
            self._start = 0.0

    def on_train_epoch_end(self, trainer, module) -> None:
        if self._start:
            self.seconds.append(time.perf_counter() - self._start)
            self._start = 0.0

    @property
    def mean(self) -> float:
        return float(np.mean(self.seconds)) if self.seconds else float("nan")


class EpochCurves(Handover):
    """One row per training epoch: ``epoch`` and every scalar Lightning logged by its end
    (``train/loss``, ``val/…``; a validation metric repeats its last value on epochs without a check)."""

    HANDOVER = ("rows",)

    def __init__(self):
        self.rows: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer, module) -> None:
        row = {"epoch": float(trainer.current_epoch)}
        for name, value in trainer.callback_metrics.items():
            if getattr(value, "numel", lambda: 1)() == 1:
                row[name] = float(value)
        self.rows.append(row)


@contextlib.contextmanager
def torch_threads(n: int):
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def quiet_lightning():
    import logging
    import warnings

    names = ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning.pytorch.utilities.rank_zero")
    levels = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(num_workers|does not have many workers|Sparse|sparse|LeafSpec).*")
        # under DDP every process validates on the whole set: the metrics agree without syncing
        warnings.filterwarnings("ignore", message=".*sync_dist=True.*")
        try:
            yield
        finally:
            for n, level in levels.items():
                logging.getLogger(n).setLevel(level)
