r"""LightGCN training, ours and PyG's, as the two LightGCN benchmarks run it (``vs_pyg.py`` on a CPU,
``gpu_train.py`` on a GPU): the graph, both trainers, the step timers, the evaluation, the floor.

- :func:`synthetic_graph`: a seeded power-law user–item graph (Zipf items, power-law users,
  communities), split into train and held-out pairs;
- :func:`train_pyg`: PyG's ``LightGCN`` trained as its ``examples/lightgcn.py`` does;
- :func:`train_ours`: the pipeline's BPR recipe (``recause.models.gnn``: ``LightGCNEncoder`` on a
  ``BipartiteGraph``, ``CausalModule`` with ``Objective("bpr")``) through ``lightning.Trainer``;
- :class:`Run` / :class:`StepClock`: wall time of every step, from the previous step's end
  (device synchronised), and s/epoch = mean step × steps per epoch;
- :class:`HeldOut`: Recall@20 on held-out pairs of a seeded sample of users;
- :func:`propagation_seconds`, :func:`step_breakdown`, :func:`profile_table`: where a step's time goes;
- :func:`spmm_bytes` / :func:`floor_seconds_per_step`: the memory-bandwidth floor of the propagation.

Imports only numpy, torch, lightning, torch-geometric and ``recause.models`` (through the shared
prelude ``_common``): the GPU machine has no prefect, mlflow or great_expectations.
"""

from __future__ import annotations

import _common  # noqa: F401  (one thread, offline, recause importable: before numpy and torch)

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

ScoreFn = Callable[[Tensor], Tensor]  # (b,) user ids -> (b, n_items) scores


# ---------------------------------------------------------------------------------------------- data
@dataclass(frozen=True)
class SyntheticGraph:
    """Unique user–item interactions, split into train and held-out pairs (all (E,) int64 numpy)."""

    n_users: int
    n_items: int
    train_user: np.ndarray
    train_item: np.ndarray
    test_user: np.ndarray
    test_item: np.ndarray
    seconds: float = 0.0  # generation time

    @property
    def n_train(self) -> int:
        return int(self.train_user.size)

    def describe(self) -> str:
        return (f"{self.n_users:,} users, {self.n_items:,} items, {self.n_train:,} train + {self.test_user.size:,} "
                f"held-out interactions (density {self.n_train / self.n_users / self.n_items:.2e})")


def _unique(x: np.ndarray) -> np.ndarray:
    """Sorted unique values (``np.unique`` is ~60x slower than a sort on numpy 2.4 int64)."""
    s = np.sort(x)
    return s[np.concatenate([[True], s[1:] != s[:-1]])]


def synthetic_graph(n_interactions: int, seed: int = 0, users_per_interaction: float = 1 / 20,
                    items_per_interaction: float = 1 / 40, communities: int = 64, affinity: float = 0.7,
                    test_share: float = 0.1) -> SyntheticGraph:
    r"""A seeded power-law user–item graph with ``n_interactions`` unique pairs.

    ``n_users = n * users_per_interaction`` users (mean degree 20) with activity
    :math:`\propto (r + 10)^{-0.8}`, ``n_items = n * items_per_interaction`` items with popularity
    :math:`\propto (r + 10)^{-1}` (Zipf; r a random rank). Users and items belong to one of
    ``communities`` groups; a draw takes an item from the user's group with probability
    ``affinity`` (by popularity within the group), else from the whole catalogue, so there is
    structure beyond popularity to learn. Pairs are drawn until ``n_interactions`` distinct ones
    exist; ``test_share`` of them (uniformly) are held out.
    """
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    n_users = max(int(n_interactions * users_per_interaction), 8)
    n_items = max(int(n_interactions * items_per_interaction), 8)
    user_cdf = np.cumsum(rng.permutation(1.0 / (np.arange(n_users) + 10.0) ** 0.8))
    user_cdf /= user_cdf[-1]
    popularity = rng.permutation(1.0 / (np.arange(n_items) + 10.0))
    item_group, user_group = rng.integers(communities, size=n_items), rng.integers(communities, size=n_users)
    # One sorted key array: group c's items tile (c, c+1] by their within-group popularity CDF,
    # every item tiles (C, C+1] by the global CDF; a draw is a searchsorted of (group or C) + U.
    order = np.argsort(item_group, kind="stable")
    w, c = popularity[order], item_group[order]
    cum = np.cumsum(w)
    first = np.searchsorted(c, np.arange(communities))
    before = (cum[np.minimum(first, n_items - 1)] - w[np.minimum(first, n_items - 1)])
    within = (cum - before[c]) / np.bincount(c, weights=w, minlength=communities)[c]
    keys = np.concatenate([c + within, communities + np.cumsum(popularity) / popularity.sum()])
    key_item = np.concatenate([order, np.arange(n_items)])
    codes, short = np.empty(0, np.int64), n_interactions
    while short > 0:
        m = int(short * 1.25) + 1000
        users = np.minimum(np.searchsorted(user_cdf, np.sort(rng.random(m))), n_users - 1)
        q = np.where(rng.random(m) < affinity, user_group[users], communities) + rng.random(m)
        by = np.argsort(q)  # sorted queries: searchsorted stays in cache
        items = np.empty(m, np.int64)
        items[by] = key_item[np.minimum(np.searchsorted(keys, q[by]), keys.size - 1)]
        codes = _unique(np.concatenate([codes, users * n_items + items]))
        short = n_interactions - codes.size
    codes = codes[rng.permutation(codes.size)[:n_interactions]]
    n_test = int(round(test_share * codes.size))
    test, train = codes[:n_test], codes[n_test:]
    return SyntheticGraph(n_users, n_items, train // n_items, train % n_items, test // n_items, test % n_items,
                          time.perf_counter() - start)


# ---------------------------------------------------------------------------------------------- timing
def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on a CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Run:
    """One model's timed training: wall seconds and loss of every step, recall before/after."""

    name: str
    steps_per_epoch: int
    setup_seconds: float = 0.0
    step_seconds: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    recall_before: float = float("nan")
    recall_after: float = float("nan")
    peak_memory_gb: float = float("nan")
    load: tuple[float, float] = (float("nan"), float("nan"))  # load average before, after
    module: object = None  # the trained model (ours: the CausalModule), for profiling
    embed: Callable[[], Tensor] | None = None  # full-graph propagation with autograd (fwd+bwd timing)
    train_loader: object = None  # ours: the loader it trained on (for the step breakdown)

    def mean_step(self, warmup: int) -> float:
        """Mean seconds per step after ``warmup`` steps (all steps if there are too few)."""
        timed = self.step_seconds[warmup:] or self.step_seconds
        return float(np.mean(timed))

    def median_step(self, warmup: int) -> float:
        """Median seconds per step after ``warmup`` steps."""
        timed = self.step_seconds[warmup:] or self.step_seconds
        return float(np.median(timed))

    def epoch_seconds(self, warmup: int) -> float:
        """Seconds per epoch: mean step time × steps per epoch."""
        return self.mean_step(warmup) * self.steps_per_epoch

    def loss_drop(self, n: int = 5) -> tuple[float, float]:
        """Mean loss of the first and of the last ``n`` steps."""
        n = max(1, min(n, len(self.losses) // 2))
        return float(np.mean(self.losses[:n])), float(np.mean(self.losses[-n:]))


class StepClock:
    """Wall time between consecutive step ends (device synchronised before each reading)."""

    def __init__(self, device: torch.device):
        self.device, self.last = device, 0.0

    def start(self) -> None:
        synchronize(self.device)
        self.last = time.perf_counter()

    def lap(self) -> float:
        synchronize(self.device)
        now = time.perf_counter()
        seconds, self.last = now - self.last, now
        return seconds


def _peak_memory_gb(device: torch.device) -> float:
    return torch.cuda.max_memory_allocated(device) / 1e9 if device.type == "cuda" else float("nan")


def _reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


# ---------------------------------------------------------------------------------------------- evaluation
class HeldOut:
    """Recall@k on the held-out pairs of a seeded sample of users (train items excluded from the ranking)."""

    def __init__(self, graph: SyntheticGraph, n_users: int, device: torch.device, seed: int = 0):
        has_test = np.zeros(graph.n_users, bool)
        has_test[graph.test_user] = True
        candidates = np.flatnonzero(has_test)
        rng = np.random.default_rng(seed + 1)
        users = np.sort(rng.choice(candidates, size=min(n_users, candidates.size), replace=False))
        position = np.full(graph.n_users, -1)
        position[users] = np.arange(users.size)

        def pairs(user: np.ndarray, item: np.ndarray) -> tuple[Tensor, Tensor]:
            row = position[user]
            keep = row >= 0
            row, item = row[keep], item[keep]
            by = np.argsort(row, kind="stable")
            return torch.as_tensor(row[by], device=device), torch.as_tensor(item[by], device=device)

        self.users = torch.as_tensor(users, device=device)
        self.train_row, self.train_item = pairs(graph.train_user, graph.train_item)
        self.test_row, self.test_item = pairs(graph.test_user, graph.test_item)
        self.n_test = torch.bincount(self.test_row, minlength=users.size).float()

    @torch.no_grad()
    def recall(self, score: ScoreFn, k: int = 20, block: int = 1024) -> float:
        """Mean over the sampled users of |top-k ∩ held-out| / |held-out|."""
        total = 0.0
        for start in range(0, self.users.numel(), block):
            stop = min(start + block, self.users.numel())
            scores = score(self.users[start:stop]).float()  # (b, n_items)
            lo, hi = torch.searchsorted(self.train_row, torch.tensor([start, stop], device=self.train_row.device)).tolist()
            scores[self.train_row[lo:hi] - start, self.train_item[lo:hi]] = float("-inf")
            top = scores.topk(k, dim=1).indices
            hit = torch.zeros_like(scores, dtype=torch.bool)
            lo, hi = torch.searchsorted(self.test_row, torch.tensor([start, stop], device=self.test_row.device)).tolist()
            hit[self.test_row[lo:hi] - start, self.test_item[lo:hi]] = True
            total += float((hit.gather(1, top).sum(1) / self.n_test[start:stop]).sum())
        return total / self.users.numel()


def popularity_score(graph: SyntheticGraph, device: torch.device) -> ScoreFn:
    """Train-set item popularity, the same for every user."""
    counts = torch.as_tensor(np.bincount(graph.train_item, minlength=graph.n_items), dtype=torch.float32, device=device)
    return lambda users: counts.expand(users.numel(), -1).clone()


# ---------------------------------------------------------------------------------------------- PyG
def train_pyg(graph: SyntheticGraph, steps: int, device: torch.device, held_out: HeldOut | None = None, dim: int = 64,
              layers: int = 3, batch_size: int = 8192, lr: float = 1e-3, lambda_reg: float = 1e-4, seed: int = 0,
              deadline: float = float("inf")) -> Run:
    """PyG's ``LightGCN`` trained as ``examples/lightgcn.py`` does, for ``steps`` steps or until
    ``time.perf_counter()`` passes ``deadline``, whichever comes first."""
    from torch_geometric.nn.models import LightGCN

    _reset_peak(device)
    start = time.perf_counter()
    torch.manual_seed(seed)
    n_users, n_items = graph.n_users, graph.n_items
    user = torch.as_tensor(graph.train_user, device=device)
    item = torch.as_tensor(graph.train_item, device=device) + n_users
    edge_index = torch.stack([torch.cat([user, item]), torch.cat([item, user])])  # both directions
    train_edge_label_index = torch.stack([user, item])
    train_loader = torch.utils.data.DataLoader(range(train_edge_label_index.size(1)), shuffle=True, batch_size=batch_size,
                                               generator=torch.Generator().manual_seed(seed))
    model = LightGCN(num_nodes=n_users + n_items, embedding_dim=dim, num_layers=layers).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    synchronize(device)
    run = Run("pyg", len(train_loader), setup_seconds=time.perf_counter() - start)

    @torch.no_grad()
    def scorer() -> ScoreFn:  # one propagation per evaluation
        emb = model.get_embedding(edge_index)
        return lambda users: emb[users] @ emb[n_users:].T

    if held_out is not None:
        model.eval()
        run.recall_before = held_out.recall(scorer())
    run.load = (_common.load_average(), float("nan"))
    model.train()
    clock = StepClock(device)
    clock.start()
    while len(run.losses) < steps:
        for index in train_loader:
            pos_edge_label_index = train_edge_label_index[:, index.to(device)]
            neg_edge_label_index = torch.stack([
                pos_edge_label_index[0],
                torch.randint(n_users, n_users + n_items, (index.numel(),), device=device),
            ], dim=0)
            edge_label_index = torch.cat([pos_edge_label_index, neg_edge_label_index], dim=1)
            optimizer.zero_grad()
            pos_rank, neg_rank = model(edge_index, edge_label_index).chunk(2)
            loss = model.recommendation_loss(pos_rank, neg_rank, node_id=edge_label_index.unique(), lambda_reg=lambda_reg)
            loss.backward()
            optimizer.step()
            run.losses.append(float(loss.detach()))
            run.step_seconds.append(clock.lap())
            if len(run.losses) >= steps or time.perf_counter() > deadline:
                break
        if time.perf_counter() > deadline:
            break
    run.load = (run.load[0], _common.load_average())
    run.peak_memory_gb = _peak_memory_gb(device)
    if held_out is not None:
        model.eval()
        run.recall_after = held_out.recall(scorer())
    run.module, run.embed = model, lambda: model.get_embedding(edge_index)
    return run


# ---------------------------------------------------------------------------------------------- Recause
def build_ours(graph: SyntheticGraph, dim: int = 64, layers: int = 3, batch_size: int = 8192, negatives: int = 1,
               lr: float = 1e-3, l2: float = 1e-4, seed: int = 0):
    """The BPR recipe of the pipeline: (CausalModule, train DataLoader of EpochBatches)."""
    from recause.models.gnn.batches import EpochBatches, InteractionData, bpr_batch, loader
    from recause.models.gnn.encoders import BipartiteGraph, LightGCNEncoder
    from recause.models.gnn.heads import CausalRecommender
    from recause.models.gnn.module import CausalModule, Objective

    torch.manual_seed(seed)
    user, item = torch.as_tensor(graph.train_user), torch.as_tensor(graph.train_item)
    bipartite = BipartiteGraph.from_pairs(user, item, graph.n_users, graph.n_items)
    encoder = LightGCNEncoder(graph.n_users, graph.n_items, dim, layers)
    model = CausalRecommender({"shared": encoder}, {"exposed": "shared"})
    module = CausalModule(model, bipartite, Objective("bpr", l2=l2), lr=lr)
    data = InteractionData(graph.n_users, graph.n_items, torch.ones(graph.n_users), user, item)
    batches = EpochBatches(user.numel(), batch_size, lambda rows, g: bpr_batch(data, rows, negatives, g), seed)
    return module, loader(batches)


def _lightning_clock():
    """The Lightning callback class that times steps into a :class:`Run` (Lightning imported on call)."""
    from lightning.pytorch.callbacks import Callback

    class LightningClock(Callback):
        """Step wall times and losses inside ``Trainer.fit`` (a step ends after the optimiser step)."""

        def __init__(self, run: Run, device: torch.device, deadline: float):
            self.run, self.clock, self.deadline = run, StepClock(device), deadline

        def on_train_start(self, trainer, module) -> None:
            self.clock.start()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
            self.run.losses.append(float(outputs["loss"]))
            self.run.step_seconds.append(self.clock.lap())
            if time.perf_counter() > self.deadline:
                trainer.should_stop = True

    return LightningClock


def ours_score(module) -> ScoreFn:
    """Our ranking scores of every item (the ``exposed`` head on the cached eval-mode states)."""
    n_users, n_items = module.model.n_users, module.graph.n_items

    def score(users: Tensor) -> Tensor:
        states = module.full_states()
        items = torch.arange(n_items, device=users.device) + n_users
        return module.model.grid(states, "exposed", users, items)

    return score


def train_ours(graph: SyntheticGraph, steps: int, device: torch.device, held_out: HeldOut | None = None,
               deadline: float = float("inf"), **kw) -> Run:
    """Our recipe through ``lightning.Trainer.fit`` for ``steps`` steps or until ``deadline``."""
    import lightning as L

    _reset_peak(device)
    start = time.perf_counter()
    module, train_loader = build_ours(graph, **kw)
    run = Run("recause", len(train_loader), setup_seconds=time.perf_counter() - start)
    if held_out is not None:
        module.to(device)
        run.recall_before = held_out.recall(ours_score(module))
        module.forget_states()
    run.load = (_common.load_average(), float("nan"))
    accelerator = "gpu" if device.type == "cuda" else "cpu"
    with _quiet():
        trainer = L.Trainer(max_steps=steps, max_epochs=-1, accelerator=accelerator, devices=1, precision="32-true",
                            logger=False, callbacks=[_lightning_clock()(run, device, deadline)], enable_checkpointing=False,
                            enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
        trainer.fit(module, train_dataloaders=train_loader)
    run.load = (run.load[0], _common.load_average())
    run.peak_memory_gb = _peak_memory_gb(device)
    if held_out is not None:
        module.to(device).eval()
        module.forget_states()
        run.recall_after = held_out.recall(ours_score(module))
    run.module, run.train_loader = module, train_loader
    run.embed = lambda: module.model.encoders["shared"](module.full_graph())
    return run


# ---------------------------------------------------------------------------------------------- where time goes
def propagation_seconds(embed: Callable[[], Tensor], device: torch.device, reps: int = 3, warmup: int = 1) -> float:
    """Mean seconds of one full-graph propagation forward + backward (all L layers), nothing else."""
    def once() -> None:
        out = embed()
        out.backward(torch.ones_like(out))

    for _ in range(warmup):
        once()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(reps):
        once()
    synchronize(device)
    return (time.perf_counter() - start) / reps


def step_breakdown(module, train_loader, device: torch.device, reps: int = 3) -> dict[str, float]:
    """Milliseconds of the parts of our training step, outside Lightning, by simple synchronised timers.

    batch: building the BPR batch (negatives) on the CPU; to_device: copying it; forward:
    ``module.model_step`` (propagation, heads, loss); backward; optimizer: Adam over all
    parameters. The first step is a warm-up. Changes the weights (call after evaluation).
    """
    module.to(device).train()
    optimizer = module.configure_optimizers()
    batches = iter(train_loader)
    parts = {k: 0.0 for k in ("batch", "to_device", "forward", "backward", "optimizer")}

    def lap(key: str, since: float) -> float:
        synchronize(device)
        now = time.perf_counter()
        parts[key] += now - since
        return now

    for rep in range(reps + 1):
        if rep == 1:
            parts = dict.fromkeys(parts, 0.0)
        synchronize(device)
        t = time.perf_counter()
        try:
            batch = next(batches)
        except StopIteration:
            batches = iter(train_loader)
            batch = next(batches)
        t = lap("batch", t)
        batch = {k: v.to(device) for k, v in batch.items()}
        t = lap("to_device", t)
        optimizer.zero_grad()
        loss, _ = module.model_step(batch)
        t = lap("forward", t)
        loss.backward()
        t = lap("backward", t)
        optimizer.step()
        lap("optimizer", t)
    out = {k: 1e3 * v / reps for k, v in parts.items()}
    out["total"] = sum(out.values())
    module.forget_states()
    return out


def profile_table(module, train_loader, device: torch.device, steps: int = 2, rows: int = 15) -> str:
    """torch.profiler's top ops of ``steps`` of our steps (after one warm-up), by self device time."""
    from torch.profiler import ProfilerActivity, profile

    step_breakdown(module, train_loader, device, reps=1)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        step_breakdown(module, train_loader, device, reps=max(steps - 1, 1))
    key = "self_cpu_time_total" if device.type == "cpu" else "self_device_time_total"
    try:
        return prof.key_averages().table(sort_by=key, row_limit=rows)
    except (AttributeError, KeyError, ValueError):  # older torch: the CUDA column has its old name
        return prof.key_averages().table(sort_by="self_cuda_time_total", row_limit=rows)


class _quiet:
    """Lightning's INFO lines and known warnings (sparse CSR beta, few workers) off for the block."""

    names = ("lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning.pytorch.utilities.rank_zero")

    def __enter__(self):
        self.levels = {n: logging.getLogger(n).level for n in self.names}
        for n in self.names:
            logging.getLogger(n).setLevel(logging.WARNING)
        self.warnings = warnings.catch_warnings()
        self.warnings.__enter__()
        known = "num_workers|does not have many workers|[Ss]parse|validation_step|LeafSpec"
        warnings.filterwarnings("ignore", message=f".*({known}).*")

    def __exit__(self, *exc):
        self.warnings.__exit__(*exc)
        for n, level in self.levels.items():
            logging.getLogger(n).setLevel(level)


# ---------------------------------------------------------------------------------------------- report
def run_rows(runs: list[Run], warmup: int, propagation: dict[str, float] | None = None) -> list[dict]:
    """One table row per run; ``propagation``: name -> seconds of a full-graph forward + backward."""
    rows = []
    for r in runs:
        first, last = r.loss_drop()
        rows.append({"model": r.name, "steps": len(r.step_seconds), "ms_per_step": 1e3 * r.mean_step(warmup),
                     "median_ms": 1e3 * r.median_step(warmup),
                     "prop_ms": 1e3 * (propagation or {}).get(r.name, float("nan")),
                     "steps_per_epoch": r.steps_per_epoch, "s_per_epoch": r.epoch_seconds(warmup),
                     "setup_s": r.setup_seconds, "loss_first": first, "loss_last": last,
                     "recall20_before": r.recall_before, "recall20_after": r.recall_after,
                     "peak_gb": r.peak_memory_gb, "load_before": r.load[0], "load_after": r.load[1]})
    return rows


RUN_COLUMNS = ["model", "steps", "ms_per_step", "median_ms", "prop_ms", "steps_per_epoch", "s_per_epoch", "setup_s",
               "loss_first", "loss_last", "recall20_before", "recall20_after", "load_before", "load_after"]


# ---------------------------------------------------------------------------------------------- bandwidth floor
def spmm_bytes(nnz: int, n_nodes: int, dim: int, value_bytes: int = 4, index_bytes: int = 8) -> int:
    """Bytes one CSR sparse–dense product moves: nnz (value + column + gathered row) + n (pointer + output row)."""
    return nnz * (value_bytes + index_bytes + 4 * dim) + index_bytes * (n_nodes + 1) + 4 * n_nodes * dim


def floor_seconds_per_step(nnz: int, n_nodes: int, dim: int, layers: int, bandwidth: float) -> float:
    """The 2L propagation products of one step (forward + backward) at ``bandwidth`` bytes/s."""
    return 2 * layers * spmm_bytes(nnz, n_nodes, dim) / bandwidth
