"""The causal recommender's training data as tensors, and the minibatches it trains on.

:class:`InteractionData` holds one part of a split (train or validation) as index tensors; the
task layer builds it from data frames. Batches are dicts of tensors whose ``*_u`` / ``*_i``
entries are *node positions* in the graph the step propagates over (users ``u``, items
``n_users + i`` on the full graph; local positions on a sampled subgraph), so the module never
needs to know which graph a batch came from.

Batch parts (B = ``batch_size`` rows each):

``bpr_u, bpr_p, bpr_n``
    implicit ranking: a user, one of their positives, sampled negative item(s) (positives rejected).
``exp_u, exp_i, exp_y, exp_slot, exp_pw, exp_lp, exp_r``
    exposed (shown / rated) rows: label, 0-based slot (-1 = none), 1/(rows of the pair),
    logged pair propensity (NaN if none), the user's retention (share of their log in this part).
``pos_u, pos_i, pos_r``
    pairs drawn uniformly from the exposed pairs (positives of the exposure label).
``org_u, org_i, org_r``
    pairs drawn uniformly from the unexposed positives (organic finds), when the data have them.
``uni_u, uni_i, uni_r, uni_e, uni_f, uni_y1``
    pairs drawn uniformly from all pairs, with their exposure label, organic label, and the
    pair's click rate when exposed.
``sub_nodes, sub_edges``
    (sampled mode) global ids of the subgraph's nodes and its local (source, target) edges.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset, Sampler

Batch = dict[str, Tensor]


@dataclass(frozen=True, eq=False)
class ExposedRows:
    """Logged rows of exposed pairs (impressions, or ratings of a self-selected log). All (R,)."""

    user: Tensor  # long
    item: Tensor  # long
    label: Tensor  # float 0/1
    slot: Tensor  # long, 0-based, -1 = no position
    pair_weight: Tensor  # float, 1 / (rows of the same pair)
    logged_propensity: Tensor  # float, P(pair exposed) from the log, NaN where unknown


@dataclass(frozen=True, eq=False)
class InteractionData:
    """One part of a split as tensors.

    ``positive_*``: implicit positives (every row with a positive outcome) — BPR's data and the
    graph's edges. ``exposed``: labelled exposed rows (None for implicit-only data such as
    MovieLens). ``organic_*``: positives among unexposed pairs (None unless the data identify
    P(Y | do(E=0))). ``retention`` (n_users,): share of each user's log in this part.
    ``*_pairs``: sorted unique codes ``user * n_items + item``.
    """

    n_users: int
    n_items: int
    retention: Tensor
    positive_user: Tensor
    positive_item: Tensor
    exposed: ExposedRows | None = None
    organic_user: Tensor | None = None
    organic_item: Tensor | None = None
    n_slots: int = 0

    def __post_init__(self) -> None:
        if self.retention.shape != (self.n_users,):
            raise ValueError(f"retention has shape {tuple(self.retention.shape)}, expected ({self.n_users},)")
        if self.positive_user.shape != self.positive_item.shape:
            raise ValueError("positive_user and positive_item must be aligned")

    @property
    def population(self) -> int:
        return self.n_users * self.n_items

    @property
    def has_organic(self) -> bool:
        return self.organic_user is not None and self.organic_user.numel() > 0

    def codes(self, user: Tensor, item: Tensor) -> Tensor:
        return user.long() * self.n_items + item.long()

    @property
    def positive_pairs(self) -> Tensor:
        return _cached(self, "_positive_pairs", lambda: torch.unique(self.codes(self.positive_user, self.positive_item)))

    @property
    def exposed_pairs(self) -> tuple[Tensor, Tensor]:
        """Sorted codes of exposed pairs and each pair's click rate over its rows."""
        def build() -> tuple[Tensor, Tensor]:
            if self.exposed is None:
                return torch.empty(0, dtype=torch.long), torch.empty(0)
            codes, inverse = torch.unique(self.codes(self.exposed.user, self.exposed.item), return_inverse=True)
            clicks = torch.zeros(codes.numel()).index_add_(0, inverse, self.exposed.label.float())
            rows = torch.bincount(inverse, minlength=codes.numel()).float()
            return codes, clicks / rows
        return _cached(self, "_exposed_pairs", build)

    @property
    def organic_pairs(self) -> Tensor:
        if not self.has_organic:
            return torch.empty(0, dtype=torch.long)
        return _cached(self, "_organic_pairs", lambda: torch.unique(self.codes(self.organic_user, self.organic_item)))


def _cached(obj: object, name: str, build: Callable):
    if name not in obj.__dict__:
        object.__setattr__(obj, name, build())
    return obj.__dict__[name]


def _member(codes: Tensor, sorted_codes: Tensor) -> tuple[Tensor, Tensor]:
    """(is member, position) of ``codes`` in ``sorted_codes``."""
    if sorted_codes.numel() == 0:
        return torch.zeros_like(codes, dtype=torch.bool), torch.zeros_like(codes)
    pos = torch.searchsorted(sorted_codes, codes).clamp_max(sorted_codes.numel() - 1)
    return sorted_codes[pos] == codes, pos


def sample_negatives(data: InteractionData, users: Tensor, k: int, g: torch.Generator) -> Tensor:
    """(B,) or (B, k) items drawn uniformly, redrawn once where they are the user's positives."""
    shape = (users.numel(),) if k == 1 else (users.numel(), k)
    items = torch.randint(data.n_items, shape, generator=g)
    u = users if k == 1 else users[:, None].expand(shape)
    seen, _ = _member(data.codes(u, items), data.positive_pairs)
    items[seen] = torch.randint(data.n_items, (int(seen.sum()),), generator=g)
    return items


def bpr_batch(data: InteractionData, rows: Tensor, negatives: int, g: torch.Generator) -> Batch:
    """A BPR batch of the positive rows ``rows`` (node positions on the full graph)."""
    users = data.positive_user[rows]
    neg = sample_negatives(data, users, negatives, g)
    return {"bpr_u": users, "bpr_p": data.positive_item[rows] + data.n_users, "bpr_n": neg + data.n_users}


def causal_batch(data: InteractionData, rows: Tensor, aux: int, g: torch.Generator) -> Batch:
    """Exposed rows ``rows`` plus ``aux`` exposed pairs, organic positives and uniform pairs."""
    ex, n_u, n_i = data.exposed, data.n_users, data.n_items
    r = data.retention
    pop = float(data.population)
    out: Batch = {
        "exp_share": torch.tensor(ex.user.numel() / pop), "pos_share": torch.tensor(data.exposed_pairs[0].numel() / pop),
        "org_share": torch.tensor(data.organic_pairs.numel() / pop),
        "exp_u": ex.user[rows], "exp_i": ex.item[rows] + n_u, "exp_y": ex.label[rows], "exp_slot": ex.slot[rows],
        "exp_pw": ex.pair_weight[rows], "exp_lp": ex.logged_propensity[rows], "exp_r": r[ex.user[rows]],
    }
    pairs, rate = data.exposed_pairs
    pick = pairs[torch.randint(pairs.numel(), (aux,), generator=g)]
    out |= {"pos_u": pick // n_i, "pos_i": pick % n_i + n_u, "pos_r": r[pick // n_i]}
    if data.has_organic:
        pick = torch.randint(data.organic_user.numel(), (aux,), generator=g)
        user = data.organic_user[pick]
        out |= {"org_u": user, "org_i": data.organic_item[pick] + n_u, "org_r": r[user]}
    user = torch.randint(n_u, (aux,), generator=g)
    item = torch.randint(n_i, (aux,), generator=g)
    codes = data.codes(user, item)
    exposed, where = _member(codes, pairs)
    found, _ = _member(codes, data.organic_pairs)
    out |= {
        "uni_u": user, "uni_i": item + n_u, "uni_r": r[user], "uni_e": exposed.float(),
        "uni_f": (found & ~exposed).float(), "uni_y1": torch.where(exposed, rate[where] if rate.numel() else 0.0, 0.0),
    }
    return out


def process_shard() -> tuple[int, int]:
    """(rank, world size) of this training process under ``torch.distributed``; (0, 1) without it."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def epoch_chunks(n_rows: int, batch_size: int, g: torch.Generator, world: int = 1) -> Iterator[Tensor]:
    """A seeded permutation of ``range(n_rows)`` in chunks of ``batch_size``; a last chunk shorter than
    ``world`` is topped up from the permutation's start, so that every process gets a row (as
    ``DistributedSampler`` pads)."""
    perm = torch.randperm(n_rows, generator=g)
    for start in range(0, n_rows, batch_size):
        chunk = perm[start : start + batch_size]
        yield chunk if chunk.numel() >= world else torch.cat([chunk, perm[: world - chunk.numel()]])


def shard_rows(batch: Batch, rank: int, world: int) -> Batch:
    """Process ``rank``'s share of a batch: rows rank, rank + world, ... of every part (scalars whole)."""
    return {k: v[rank::world].contiguous() if v.dim() else v for k, v in batch.items()}


class EpochBatches(IterableDataset):
    """One epoch of batches per iteration, reshuffled with a seeded generator each epoch.

    ``make(rows, g)`` builds a batch from a chunk of the permuted main rows (``n_rows`` of them).
    ``localise`` (sampled mode) turns a full-graph batch into one on a sampled subgraph.

    Under DDP (:func:`process_shard`) every process draws the same batch from the same generator
    and keeps its :func:`shard_rows`, before localising: the processes' shards partition the
    one-process batch, and the averaged gradient of their mean losses is the batch's mean gradient
    (exactly when every part splits evenly; the last batch of an epoch may split ±1 row).
    """

    def __init__(self, n_rows: int, batch_size: int, make: Callable[[Tensor, torch.Generator], Batch], seed: int,
                 localise: Callable[[Batch], Batch] | None = None):
        super().__init__()
        if n_rows < 1:
            raise ValueError("no training rows: the objective needs at least one row")
        self.n_rows, self.batch_size, self.make, self.seed, self.localise = n_rows, batch_size, make, seed, localise
        self.epoch = 0

    def __len__(self) -> int:
        return -(-self.n_rows // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        self.epoch += 1
        rank, world = process_shard()
        for rows in epoch_chunks(self.n_rows, self.batch_size, g, world):
            batch = self.make(rows, g)
            batch = batch if world == 1 else shard_rows(batch, rank, world)
            yield batch if self.localise is None else self.localise(batch)


class ShardedChunks(Sampler[list[int]]):
    """A batch sampler for PyG's loaders: :func:`epoch_chunks` of ``range(n_rows)``, reshuffled each
    epoch with a seeded generator, each chunk cut to this process's share under DDP."""

    def __init__(self, n_rows: int, batch_size: int, seed: int):
        self.n_rows, self.batch_size, self.seed = n_rows, batch_size, seed
        self.epoch = 0

    def __len__(self) -> int:
        return -(-self.n_rows // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        self.epoch += 1
        rank, world = process_shard()
        for rows in epoch_chunks(self.n_rows, self.batch_size, g, world):
            yield rows[rank::world].tolist()


def epoch_steps(per_pass: int, epoch_rows: int | None, batch_size: int) -> int:
    """Batches per epoch: a whole pass (``per_pass`` batches), or ⌈epoch_rows / batch_size⌉ when that is fewer.

    Lightning takes the first that many of each epoch's batches (``limit_train_batches``); every epoch
    draws a fresh seeded shuffle, so on a log larger than ``epoch_rows`` each epoch is a new random part of it.
    """
    if epoch_rows is None:
        return per_pass
    return max(1, min(per_pass, -(-epoch_rows // batch_size)))


def patience_checks(patience: int, patience_rows: int | None, rows_per_check: int, floor: int = 3) -> int:
    """Validation checks early stopping waits for: ``patience``, or fewer when that many checks would
    train on more than ``patience_rows`` rows — ⌈patience_rows / rows_per_check⌉, but at least
    ``min(patience, floor)``.

    On a small log a check comes every few thousand rows and ``patience`` decides; on a large one each
    check is a whole (capped) epoch of up to a million rows, and waiting ``patience`` of them for an
    improvement costs many passes of work the model chose against (on the 5.1 M-interaction world the
    models' best checks came first). ``patience_rows=None`` keeps ``patience`` whatever the size.
    """
    if patience_rows is None:
        return patience
    by_work = -(-patience_rows // max(1, rows_per_check))
    return max(min(patience, floor), min(patience, by_work))


def fixed_batches(n_rows: int, batch_size: int, make: Callable[[Tensor, torch.Generator], Batch], seed: int) -> list[Batch]:
    """Deterministic batches over all rows in order (validation)."""
    g = torch.Generator().manual_seed(seed)
    return [make(torch.arange(s, min(s + batch_size, n_rows)), g) for s in range(0, n_rows, batch_size)]


NODE_KEYS = ("bpr_u", "bpr_p", "bpr_n", "exp_u", "exp_i", "pos_u", "pos_i", "org_u", "org_i", "uni_u", "uni_i")


def localiser(sampler, graph) -> Callable[[Batch], Batch]:
    """Sampled mode: replace a batch's node positions by local ones on its sampled neighbourhood."""
    from recause.models.gnn.sampling import sample_neighbourhood

    def localise(batch: Batch) -> Batch:
        keys = [k for k in NODE_KEYS if k in batch]
        flat = torch.cat([batch[k].reshape(-1) for k in keys])
        sub, inverse = sample_neighbourhood(sampler, flat, graph)
        out = dict(batch)
        offset = 0
        for k in keys:
            n = batch[k].numel()
            out[k] = inverse[offset : offset + n].reshape(batch[k].shape)
            offset += n
        out["sub_nodes"] = sub.node_ids
        out["sub_edges"] = sub.edge_index
        return out

    return localise


class LinkBatches(IterableDataset):
    """PyG ``LinkNeighborLoader`` batches as BPR batch dicts (sampled mode of the ranking objective)."""

    def __init__(self, loader):
        super().__init__()
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[Batch]:
        for b in self.loader:
            yield {"bpr_u": b.src_index, "bpr_p": b.dst_pos_index, "bpr_n": b.dst_neg_index,
                   "sub_nodes": b.n_id, "sub_edges": b.edge_index}


def loader(batches) -> DataLoader:
    """A DataLoader that passes ready batches through (no collation, no workers)."""
    return DataLoader(batches, batch_size=None, shuffle=False, num_workers=0)
