r"""Graph encoders over the user–item bipartite graph: LightGCN by default, GraphSAGE and GAT by hook.

Users are nodes ``0 .. n_users-1`` and items ``n_users .. n_users+n_items-1`` of one homogeneous
graph whose edges are the (unique) training interactions, in both directions.

Every encoder starts from the same initial node state, a learned ID embedding plus a linear
projection of the node's text embedding (when the data have text), so a node without any
interaction still gets a state from its text:

.. math:: \mathbf{x}^{(0)}_v = \mathbf{e}_v + W_{\text{text}}\,\mathbf{t}_v

and combines the states of all layers by their mean (LightGCN's :math:`\alpha_l = 1/(L+1)`):

.. math:: \mathbf{h}_v = \frac{1}{L+1}\sum_{l=0}^{L} \mathbf{x}^{(l)}_v .

Variants differ in one hook, :meth:`GraphEncoder.init_conv`, the layer that maps
:math:`\mathbf{x}^{(l)} \to \mathbf{x}^{(l+1)}`:

- :class:`LightGCNEncoder` (He et al., SIGIR 2020): :math:`\mathbf{x}^{(l+1)} = \hat A\,\mathbf{x}^{(l)}`
  with :math:`\hat A = D^{-1/2} A D^{-1/2}`, no weights, no non-linearity. The normalised adjacency
  is built once as a CSR matrix and each layer is one sparse–dense product; because :math:`\hat A`
  is symmetric, the backward pass is the same product (:class:`_Propagate`), so a training step
  costs 2L SpMMs and no per-step normalisation or edge-wise message tensors (what makes it several
  times faster than message passing with ``LGConv``).
- :class:`SAGEEncoder`: GraphSAGE's mean aggregator (PyG ``SAGEConv``) with a ReLU between layers.
- :class:`GATEncoder`: graph attention (PyG ``GATConv``) with an ELU between layers.

The same encoders run on a sampled neighbourhood (:mod:`recause.models.gnn.sampling`): a
:class:`BipartiteGraph` then holds the local subgraph, the global ids of its nodes, and
propagation weights rescaled so that a layer is an unbiased estimate of the full-graph one.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from dataclasses import dataclass, replace
from functools import cached_property

import torch
from torch import Tensor, nn


# ---------------------------------------------------------------------------------------------- graph
@dataclass(frozen=True, eq=False)
class BipartiteGraph:
    """A user–item graph ready for propagation.

    Attributes
    ----------
    n_users, n_items : sizes of the full graph (node ids are global in ``[0, n_users + n_items)``).
    adjacency : sparse CSR (n, n) float, row = target node, column = source node; for the full
        graph :math:`D^{-1/2} A D^{-1/2}` (symmetric).
    adjacency_t : the transpose, used by the backward pass; the same tensor when symmetric.
    degree : (n_users + n_items,) float, degree of every node in the *full* graph.
    node_ids : (n,) int64 global ids of this graph's nodes, or None when it is the full graph.
    """

    n_users: int
    n_items: int
    adjacency: Tensor
    adjacency_t: Tensor
    degree: Tensor
    node_ids: Tensor | None = None

    @classmethod
    def from_pairs(cls, users: Tensor, items: Tensor, n_users: int, n_items: int) -> BipartiteGraph:
        """The full graph of the (user, item) pairs (duplicates collapse to one edge).

        ``users``, ``items``: (E,) int64 indices into ``range(n_users)`` / ``range(n_items)``.
        """
        users, items = torch.as_tensor(users, dtype=torch.long), torch.as_tensor(items, dtype=torch.long)
        if users.shape != items.shape or users.dim() != 1:
            raise ValueError(f"users and items must be 1-D and aligned, got {tuple(users.shape)} and {tuple(items.shape)}")
        if users.numel() and (users.min() < 0 or users.max() >= n_users or items.min() < 0 or items.max() >= n_items):
            raise ValueError(
                f"pair indices out of range: users in [{int(users.min())}, {int(users.max())}] (n_users={n_users}), "
                f"items in [{int(items.min())}, {int(items.max())}] (n_items={n_items})"
            )
        n = n_users + n_items
        codes = torch.unique(users * n_items + items)
        u, i = codes // n_items, codes % n_items + n_users
        row, col = torch.cat([u, i]), torch.cat([i, u])
        degree = torch.bincount(row, minlength=n).to(torch.float32)
        weight = (degree[row] * degree[col]).rsqrt()
        adjacency = _csr(row, col, weight, (n, n))
        return cls(n_users, n_items, adjacency, adjacency, degree)

    @classmethod
    def from_sample(
        cls, n_users: int, n_items: int, node_ids: Tensor, edge_index: Tensor, degree: Tensor
    ) -> BipartiteGraph:
        r"""A sampled subgraph: ``edge_index`` (2, e) local (source, target), ``node_ids`` (n,) global.

        An edge j→i carries :math:`\frac{\deg_i}{s_i}\,\frac{1}{\sqrt{\deg_i \deg_j}}` with
        :math:`s_i` the number of neighbours sampled for i, so that :math:`\hat A_{\text{sample}} x`
        is an unbiased estimate of :math:`\hat A x` at every node that was expanded (and equal to it
        when all neighbours are taken). ``degree`` is the full graph's (n_users + n_items,).
        """
        src, dst = edge_index[0], edge_index[1]
        n = node_ids.numel()
        deg = degree[node_ids]
        sampled = torch.bincount(dst, minlength=n).to(deg.dtype).clamp_min(1.0)
        weight = deg[dst] / sampled[dst] * (deg[dst] * deg[src]).rsqrt()
        adjacency = _csr(dst, src, weight, (n, n))
        adjacency_t = _csr(src, dst, weight, (n, n))
        return cls(n_users, n_items, adjacency, adjacency_t, degree, node_ids)

    @property
    def n_nodes(self) -> int:
        """Nodes in this graph (all of them for the full graph, the sampled ones otherwise)."""
        return self.adjacency.shape[0]

    @property
    def n_edges(self) -> int:
        """Directed edges (twice the interactions for the full graph)."""
        return int(self.adjacency.values().numel())

    @cached_property
    def edge_index(self) -> Tensor:
        """(2, n_edges) local (source, target) pairs, PyG's convention, for message-passing layers."""
        crow, col = self.adjacency.crow_indices(), self.adjacency.col_indices()
        target = torch.repeat_interleave(torch.arange(self.n_nodes, device=crow.device), crow[1:] - crow[:-1])
        return torch.stack([col, target])

    @cached_property
    def global_ids(self) -> Tensor:
        """(n,) global node ids of this graph's nodes."""
        if self.node_ids is not None:
            return self.node_ids
        return torch.arange(self.n_nodes, device=self.degree.device)

    def to(self, device: torch.device | str) -> BipartiteGraph:
        if self.adjacency.device == torch.device(device):
            return self
        adjacency = self.adjacency.to(device)
        symmetric = self.adjacency_t is self.adjacency
        return replace(
            self,
            adjacency=adjacency,
            adjacency_t=adjacency if symmetric else self.adjacency_t.to(device),
            degree=self.degree.to(device),
            node_ids=None if self.node_ids is None else self.node_ids.to(device),
        )


def _csr(row: Tensor, col: Tensor, value: Tensor, size: tuple[int, int]) -> Tensor:
    """A coalesced sparse CSR matrix from COO triplets (duplicates summed)."""
    coo = torch.sparse_coo_tensor(torch.stack([row, col]), value, size, check_invariants=False)
    with warnings.catch_warnings():  # "sparse CSR support is in beta": known, and what we rely on
        warnings.filterwarnings("ignore", message=".*[Ss]parse CSR tensor support is in beta.*")
        return coo.coalesce().to_sparse_csr()


class _Propagate(torch.autograd.Function):
    """y = Â x with a precomputed transpose for the backward pass: ∂L/∂x = Âᵀ ∂L/∂y."""

    @staticmethod
    def forward(ctx, adjacency: Tensor, adjacency_t: Tensor, x: Tensor) -> Tensor:
        ctx.adjacency_t = adjacency_t
        return torch.sparse.mm(adjacency, x)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, None, Tensor]:
        return None, None, torch.sparse.mm(ctx.adjacency_t, grad.contiguous())


def propagate(graph: BipartiteGraph, x: Tensor) -> Tensor:
    """One LightGCN layer, Â x: (n, d) -> (n, d)."""
    return _Propagate.apply(graph.adjacency, graph.adjacency_t, x)


# ---------------------------------------------------------------------------------------------- inputs
class NodeInput(nn.Module):
    r"""Initial node states :math:`\mathbf{e}_v + W\mathbf{t}_v`: ID embedding plus projected text.

    Parameters
    ----------
    n_users, n_items : int
    dim : state size d.
    text : (n_users + n_items, t) float or None. Text embeddings in node order (users then items);
        zero rows for nodes without text. Kept as a buffer, projected by a bias-free linear map.
    init_std : standard deviation of the normal ID-embedding initialisation.
    """

    def __init__(self, n_users: int, n_items: int, dim: int, text: Tensor | None = None, init_std: float = 0.1):
        super().__init__()
        n = n_users + n_items
        self.init_std = init_std
        self.embedding = nn.Embedding(n, dim)
        if text is not None:
            if text.shape[0] != n:
                raise ValueError(f"text has {text.shape[0]} rows, expected n_users + n_items = {n}")
            self.register_buffer("text", text.to(torch.float32), persistent=False)
            self.text_projection: nn.Linear | None = nn.Linear(text.shape[1], dim, bias=False)
        else:
            self.register_buffer("text", None, persistent=False)
            self.text_projection = None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.normal_(self.embedding.weight, std=self.init_std)
        if self.text_projection is not None:
            nn.init.xavier_uniform_(self.text_projection.weight)

    def forward(self, node_ids: Tensor | None = None, text: Tensor | None = None) -> Tensor:
        """(n, d) states of ``node_ids`` (global ids), or of every node when None; ``text``
        (n_users + n_items, t) replaces the stored text embeddings (an edit of users' or items' text)."""
        x = self.embedding.weight if node_ids is None else self.embedding(node_ids)
        if self.text_projection is not None:
            text = self.text if text is None else text.to(self.text.dtype)
            x = x + self.text_projection(text if node_ids is None else text[node_ids])
        return x


# ---------------------------------------------------------------------------------------------- encoders
class GraphEncoder(nn.Module, ABC):
    r"""Base encoder: initial states, ``num_layers`` layers from :meth:`init_conv`, mean over layers.

    Subclasses override :meth:`init_conv` (and, for non-linear layers, :attr:`activation`).

    Parameters
    ----------
    n_users, n_items : graph sizes.
    dim : state size d (every layer maps d -> d).
    num_layers : L >= 0 (0 = plain matrix factorisation on the initial states).
    text : optional (n_users + n_items, t) text embeddings, see :class:`NodeInput`.
    init_std : ID-embedding initialisation.
    """

    activation: nn.Module | None = None

    def __init__(
        self, n_users: int, n_items: int, dim: int = 64, num_layers: int = 3, text: Tensor | None = None, init_std: float = 0.1
    ):
        super().__init__()
        if dim < 1 or num_layers < 0:
            raise ValueError(f"dim must be >= 1 and num_layers >= 0, got dim={dim}, num_layers={num_layers}")
        self.n_users, self.n_items, self.dim, self.num_layers = n_users, n_items, dim, num_layers
        self.input = NodeInput(n_users, n_items, dim, text, init_std)
        self.convs = nn.ModuleList([self.init_conv(dim) for _ in range(num_layers)])

    @abstractmethod
    def init_conv(self, dim: int) -> nn.Module:
        """The hook: one layer, called as ``conv(x, graph)`` -> (n, dim)."""

    def reset_parameters(self) -> None:
        self.input.reset_parameters()
        for conv in self.convs:
            if hasattr(conv, "reset_parameters"):
                conv.reset_parameters()

    def forward(self, graph: BipartiteGraph, text: Tensor | None = None) -> Tensor:
        """(graph.n_nodes, d) final states of the graph's nodes (local order); ``text`` replaces the stored text."""
        x = self.input(graph.node_ids, text)
        total = x
        for layer, conv in enumerate(self.convs):
            x = conv(x, graph)
            if self.activation is not None and layer < self.num_layers - 1:
                x = self.activation(x)
            total = total + x
        return total / (self.num_layers + 1)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.n_users} users, {self.n_items} items, dim={self.dim}, num_layers={self.num_layers})"


class LightConv(nn.Module):
    """LightGCN's parameter-free layer Â x (sparse CSR product)."""

    def forward(self, x: Tensor, graph: BipartiteGraph) -> Tensor:
        return propagate(graph, x)


class LightGCNEncoder(GraphEncoder):
    """LightGCN: linear propagation with the symmetric normalised adjacency (the default)."""

    def init_conv(self, dim: int) -> nn.Module:
        return LightConv()


class EdgeIndexConv(nn.Module):
    """Adapts a PyG ``MessagePassing`` layer to the ``conv(x, graph)`` call."""

    def __init__(self, conv: nn.Module):
        super().__init__()
        self.conv = conv

    def reset_parameters(self) -> None:
        self.conv.reset_parameters()

    def forward(self, x: Tensor, graph: BipartiteGraph) -> Tensor:
        return self.conv(x, graph.edge_index)


class SAGEEncoder(GraphEncoder):
    """GraphSAGE (Hamilton et al., NeurIPS 2017), mean aggregation, ReLU between layers."""

    activation = nn.ReLU()

    def init_conv(self, dim: int) -> nn.Module:
        from torch_geometric.nn import SAGEConv

        return EdgeIndexConv(SAGEConv(dim, dim, aggr="mean"))


class GATEncoder(GraphEncoder):
    """Graph attention (Veličković et al., ICLR 2018), one head, ELU between layers."""

    activation = nn.ELU()

    def init_conv(self, dim: int) -> nn.Module:
        from torch_geometric.nn import GATConv

        return EdgeIndexConv(GATConv(dim, dim, heads=1, add_self_loops=True))


ENCODERS: dict[str, type[GraphEncoder]] = {"lightgcn": LightGCNEncoder, "sage": SAGEEncoder, "gat": GATEncoder}
