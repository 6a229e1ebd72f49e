"""Neighbour sampling for graphs too large for full-graph propagation (PyG's samplers and loaders).

- :func:`link_neighbor_loader`: PyG's ``LinkNeighborLoader`` over the positive training pairs
  with "triplet" negative items (only item nodes can be drawn as negatives), for the implicit
  ranking (BPR) objective. Each batch is the L-hop sampled neighbourhood of its users, positive
  and negative items.
- :func:`sample_neighbourhood`: the same sampler seeded from an arbitrary node set, for objectives
  whose batches mix several kinds of pairs (the causal objective's exposed rows, organic finds and
  uniformly drawn pairs).
- :class:`TorchNeighborSampler`: PyG's ``NeighborSampler`` needs ``pyg-lib`` or ``torch-sparse``
  for homogeneous sampling; neither has wheels for every torch build, so this subclass samples in
  plain torch when both are missing (uniform, without replacement, "directional" subgraphs: the
  semantics of the compiled samplers) and defers to them when present.

Sampled subgraphs become :class:`~recause.models.gnn.encoders.BipartiteGraph` via ``BipartiteGraph.from_sample``,
whose rescaled weights make propagation unbiased; with ``num_neighbors = [-1] * L`` (all
neighbours) the seeds' states equal the full-graph ones exactly.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from recause.models.gnn.encoders import BipartiteGraph


def _compiled_sampler_available() -> bool:
    import torch_geometric.typing as pyg_typing

    return bool(pyg_typing.WITH_PYG_LIB or pyg_typing.WITH_TORCH_SPARSE)


def _sampler_class():
    from torch_geometric.sampler import NeighborSampler, SamplerOutput
    from torch_geometric.sampler.base import SubgraphType

    class TorchNeighborSampler(NeighborSampler):
        """``NeighborSampler`` with a pure-torch homogeneous ``_sample`` when no compiled sampler is installed."""

        def _sample(self, seed, seed_time=None, **kwargs):
            if isinstance(seed, dict) or _compiled_sampler_available():
                return super()._sample(seed, seed_time, **kwargs)
            if seed_time is not None or self.disjoint or self.subgraph_type != SubgraphType.directional:
                raise ValueError(
                    "the pure-torch sampler supports homogeneous, non-temporal, non-disjoint, directional "
                    "sampling; install pyg-lib for the other modes"
                )
            node, row, col, edge, n_nodes, n_edges = sample_directional(
                self.colptr, self.row, seed, self.num_neighbors.get_mapped_values(), self.replace, self.num_nodes
            )
            if self.perm is not None:
                edge = self.perm[edge]
            return SamplerOutput(node=node, row=row, col=col, edge=edge, batch=None,
                                 num_sampled_nodes=n_nodes, num_sampled_edges=n_edges)

    return TorchNeighborSampler


def sample_directional(
    colptr: Tensor, row: Tensor, seed: Tensor, num_neighbors: list[int], replace: bool, num_nodes: int
) -> tuple[Tensor, Tensor, Tensor, Tensor, list[int], list[int]]:
    """Hop-by-hop uniform sampling of in-neighbours from a CSC graph.

    Parameters
    ----------
    colptr : (num_nodes + 1,) CSC pointers; ``row[colptr[v]:colptr[v+1]]`` are v's in-neighbours.
    row : (n_edges,) source node of each CSC slot.
    seed : (s,) unique global node ids; they come first, in order, in the returned ``node``.
    num_neighbors : neighbours per node at each hop (-1 = all).
    replace : sample with replacement.

    Returns
    -------
    node (n,) global ids; row, col (e,) local (source, target) of the sampled edges; edge (e,) CSC
    slots; nodes and edges added per hop.
    """
    local = torch.full((num_nodes,), -1, dtype=torch.long)
    local[seed] = torch.arange(seed.numel())
    nodes, rows, cols, edges = [seed], [], [], []
    n_nodes, n_edges = [seed.numel()], []
    frontier, size = seed, seed.numel()
    for k in num_neighbors:
        start = colptr[frontier]
        degree = colptr[frontier + 1] - start
        if k < 0:
            owner, slot = _expand(degree)
        elif replace:
            take = torch.where(degree > 0, torch.full_like(degree, k), torch.zeros_like(degree))
            owner, _ = _expand(take)
            slot = (torch.rand(owner.numel()) * degree[owner]).long()
        else:
            owner, slot = _expand(degree)
            keys = torch.rand(owner.numel()) + owner.to(torch.float64)  # sort by owner, random within
            order = torch.argsort(keys)
            owner, slot = owner[order], slot[order]
            first = torch.cumsum(degree, 0) - degree
            rank = torch.arange(owner.numel()) - first[owner]
            keep = rank < k
            owner, slot = owner[keep], slot[keep]
        csc = start[owner] + slot
        source = row[csc]
        new = torch.unique(source[local[source] < 0])
        local[new] = torch.arange(size, size + new.numel())
        size += new.numel()
        nodes.append(new)
        rows.append(local[source])
        cols.append(local[frontier[owner]])
        edges.append(csc)
        n_nodes.append(new.numel())
        n_edges.append(csc.numel())
        frontier = new
    cat = (lambda xs: torch.cat(xs) if xs else torch.empty(0, dtype=torch.long))
    return torch.cat(nodes), cat(rows), cat(cols), cat(edges), n_nodes, n_edges


def _expand(counts: Tensor) -> tuple[Tensor, Tensor]:
    """(owner, position) for ``counts[j]`` positions 0..counts[j]-1 of each j."""
    owner = torch.repeat_interleave(torch.arange(counts.numel()), counts)
    first = torch.cumsum(counts, 0) - counts
    return owner, torch.arange(owner.numel()) - first[owner]


def homogeneous_data(users: Tensor, items: Tensor, n_users: int, n_items: int):
    """PyG ``Data`` of the bipartite graph (both directions, unique pairs); users then items."""
    from torch_geometric.data import Data

    codes = torch.unique(users.long() * n_items + items.long())
    u, i = codes // n_items, codes % n_items + n_users
    edge_index = torch.stack([torch.cat([u, i]), torch.cat([i, u])])
    return Data(edge_index=edge_index, num_nodes=n_users + n_items)


def neighbor_sampler(data, num_neighbors: list[int]):
    """A :class:`TorchNeighborSampler` over ``data`` (PyG ``Data``)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*pyg-lib.*")
        return _sampler_class()(data, num_neighbors=num_neighbors)


def link_neighbor_loader(
    users: Tensor,
    items: Tensor,
    n_users: int,
    n_items: int,
    num_neighbors: list[int],
    batch_size: int,
    negatives: int = 1,
    shuffle: bool = True,
    batch_sampler=None,
):
    """PyG ``LinkNeighborLoader`` over the positive pairs (``users``, ``items``) of the graph they form.

    ``batch_sampler`` (e.g. :class:`~recause.models.gnn.batches.ShardedChunks`, which shards the batches
    under DDP) replaces ``batch_size`` and ``shuffle``: it yields the positive pairs' indices per batch.

    Batches carry ``n_id`` (global ids of the sampled nodes), ``edge_index`` (local), and the
    triplet indices ``src_index`` (B,), ``dst_pos_index`` (B,), ``dst_neg_index`` (B,) or
    (B, negatives), local; negatives are items drawn uniformly (users have zero weight).
    """
    from torch_geometric.loader import LinkNeighborLoader
    from torch_geometric.sampler import NegativeSampling

    data = homogeneous_data(users, items, n_users, n_items)
    item_weight = torch.cat([torch.zeros(n_users), torch.ones(n_items)])
    label_index = torch.stack([users.long(), items.long() + n_users])
    return LinkNeighborLoader(
        data,
        num_neighbors=num_neighbors,
        edge_label_index=label_index,
        neg_sampling=NegativeSampling("triplet", amount=negatives, dst_weight=item_weight),
        neighbor_sampler=neighbor_sampler(data, num_neighbors),
        **({"batch_size": batch_size, "shuffle": shuffle} if batch_sampler is None else {"batch_sampler": batch_sampler}),
    )


def sample_neighbourhood(sampler, nodes: Tensor, graph: BipartiteGraph) -> tuple[BipartiteGraph, Tensor]:
    """The sampled subgraph around ``nodes`` (global ids) and each node's local index in it.

    ``graph`` is the full graph (for sizes and degrees); ``sampler`` from :func:`neighbor_sampler`.
    """
    from torch_geometric.sampler import NodeSamplerInput

    seed, inverse = torch.unique(nodes.cpu(), return_inverse=True)
    out = sampler.sample_from_nodes(NodeSamplerInput(input_id=None, node=seed))
    edge_index = torch.stack([out.row, out.col])
    sub = BipartiteGraph.from_sample(graph.n_users, graph.n_items, out.node, edge_index, graph.degree.cpu())
    return sub, inverse
