"""Data-parallel training of the causal GNN: the settings check and Lightning's DDP, forked.

``gnn.strategy: ddp_fork`` with ``gnn.devices: N`` trains in N processes (``gnn.num_nodes`` machines
× N): each takes a shard of every training batch (:class:`~recause.models.gnn.batches.EpochBatches`),
DDP averages the gradients, and every process validates on the whole validation set, so the
validation metrics, early stopping and the best epoch are the same in every process.

Why fork: Lightning's ``ddp`` re-runs the command line in each process (here: the whole pipeline),
and ``ddp_spawn`` pickles the trainer, the loaders and the logger into fresh interpreters (each
importing torch, Lightning and PyG again, ~8 s here). A forked process inherits all of it.
The processes end with the fit; Lightning returns rank 0's final weights to the calling process, and
:class:`HandoverLauncher` also returns rank 0's :class:`~recause.tasks.train.callbacks.Handover`
callbacks (best weights, the epoch choice, the curves) and its epoch count, so the caller continues
exactly as after a one-process fit.

:func:`check_distributed` turns a combination the machine or Lightning cannot run into a
:class:`~recause.tasks.config.ConfigurationError` naming the setting to change, before any training.
"""

from __future__ import annotations

from collections.abc import Mapping

from recause.tasks.config import ConfigurationError
from recause.tasks.train.config import TrainConfig

CLUSTER_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK")
"""What every node of a multi-node run must have set (Lightning's ``LightningEnvironment``)."""


def check_distributed(config: TrainConfig, *, threads: int, cpus: int, gpus: int, environ: Mapping[str, str]) -> None:
    """Raise a :class:`ConfigurationError` naming what to change if ``config``'s strategy cannot run here.

    ``threads``: torch threads per process (``runtime.threads``); ``cpus``: CPU cores of this machine;
    ``gpus``: CUDA devices torch sees; ``environ``: the process environment (multi-node variables).
    """
    processes = config.devices * config.num_nodes
    if config.strategy == "auto" and processes > 1:
        raise ConfigurationError(
            f"gnn.devices={config.devices} and gnn.num_nodes={config.num_nodes} ask for {processes} training processes "
            "but gnn.strategy is auto (one process): set gnn.strategy=ddp_fork, or gnn.devices=1 and gnn.num_nodes=1")
    accelerator = config.accelerator.lower()
    on_gpu = accelerator in ("gpu", "cuda") or (accelerator == "auto" and gpus > 0)
    if accelerator in ("gpu", "cuda") and gpus < config.devices:
        raise ConfigurationError(
            f"gnn.accelerator={config.accelerator} with gnn.devices={config.devices} needs {config.devices} CUDA "
            f"device(s) but torch sees {gpus}: set gnn.accelerator=cpu, or gnn.devices={max(gpus, 1)}")
    if on_gpu and gpus < config.devices:
        raise ConfigurationError(f"gnn.devices={config.devices} GPUs asked for but torch sees {gpus}: set gnn.devices={gpus}")
    if not on_gpu and config.devices * threads > cpus:
        fit = max(cpus // threads, 1)
        raise ConfigurationError(
            f"gnn.devices={config.devices} CPU processes × runtime.threads={threads} torch threads need "
            f"{config.devices * threads} cores but this machine has {cpus}: set gnn.devices={fit}"
            + ("" if threads == 1 else " or lower runtime.threads"))
    if config.num_nodes > 1:
        missing = [name for name in CLUSTER_VARIABLES if not environ.get(name)]
        if missing:
            raise ConfigurationError(
                f"gnn.num_nodes={config.num_nodes} needs {', '.join(CLUSTER_VARIABLES)} set on every node (the first "
                f"node's address, a free port, this node's index); missing: {', '.join(missing)}. Set them, or "
                "gnn.num_nodes=1")


def check_here(config: TrainConfig, threads: int) -> None:
    """:func:`check_distributed` against this machine and process environment (a no-op for one process)."""
    if config.strategy == "auto" and config.devices == 1 and config.num_nodes == 1:
        return
    import os

    import torch

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    check_distributed(config, threads=threads, cpus=cpus, gpus=torch.cuda.device_count(), environ=os.environ)


def trainer_arguments(config: TrainConfig) -> dict[str, object]:
    """``strategy``, ``devices``, ``num_nodes`` (and the distributed sampler switch) for ``L.Trainer``."""
    if config.strategy == "auto":
        return {"strategy": "auto", "devices": config.devices, "num_nodes": config.num_nodes}
    # validation runs whole in every process (the same metrics everywhere): Lightning must not shard it;
    # the training batches shard themselves (EpochBatches, sharded_link_batches)
    return {"strategy": _strategy(), "devices": config.devices, "num_nodes": config.num_nodes,
            "use_distributed_sampler": False}


def _strategy():
    """Lightning's DDP strategy with the fork start method and :class:`HandoverLauncher`."""
    from lightning.pytorch.strategies import DDPStrategy
    from lightning.pytorch.strategies.launchers.multiprocessing import _MultiProcessingLauncher

    class HandoverLauncher(_MultiProcessingLauncher):
        """Lightning's process launcher that also brings rank 0's handover callbacks and epoch count back."""

        def get_extra_results(self, trainer) -> dict:
            from recause.tasks.train.callbacks import Handover

            extra = super().get_extra_results(trainer)
            handed = [cb.handover() for cb in trainer.callbacks if isinstance(cb, Handover)]
            # in a file, as Lightning sends the weights: the queue's pipe blocks on anything large until the
            # processes are joined, and a tensor sent as shared memory dies with its process
            extra["recause_handover"] = _save((handed, trainer.fit_loop.epoch_progress.state_dict()))
            return extra

        def update_main_process_results(self, trainer, extra: dict) -> None:
            from recause.tasks.train.callbacks import Handover

            super().update_main_process_results(trainer, extra)
            handed, epochs = _load(extra["recause_handover"])
            ours = [cb for cb in trainer.callbacks if isinstance(cb, Handover)]
            for callback, state in zip(ours, handed, strict=True):
                callback.take_over(state)
            trainer.fit_loop.epoch_progress.load_state_dict(epochs)

    class ForkedDDP(DDPStrategy):
        def _configure_launcher(self) -> None:
            self._launcher = HandoverLauncher(self, start_method="fork")

    # gloo on CPU (nccl on GPUs: Lightning's default); heads unused by a batch are allowed
    return ForkedDDP(start_method="fork", find_unused_parameters=True)



def _save(value) -> str:
    """``value`` in a new temporary file (torch's format); its path."""
    import tempfile

    import torch

    with tempfile.NamedTemporaryFile(prefix="recause-handover-", suffix=".pt", delete=False) as file:
        torch.save(value, file)
    return file.name


def _load(path: str):
    """What :func:`_save` wrote (our own process's file, hence ``weights_only=False``); the file is removed."""
    import os

    import torch

    try:
        return torch.load(path, weights_only=False)
    finally:
        os.remove(path)
