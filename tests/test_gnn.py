"""Graph encoders: the normalised adjacency by hand, LightGCN against PyG's, the encoder hook,
cold nodes placed by their text, and neighbour sampling against full propagation."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch import nn

from recause.models.gnn.encoders import ENCODERS, BipartiteGraph, GraphEncoder, LightGCNEncoder, propagate
from recause.models.gnn.sampling import homogeneous_data, link_neighbor_loader, neighbor_sampler, sample_directional, sample_neighbourhood

warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_graph() -> BipartiteGraph:
    # users {0, 1}, items {0, 1}; the duplicate (1, 1) collapses to one edge
    return BipartiteGraph.from_pairs(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 1, 1]), n_users=2, n_items=2)


def random_pairs(n_users: int = 30, n_items: int = 20, n: int = 150, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(n_users, (n,), generator=g), torch.randint(n_items, (n,), generator=g)


def tiny_adjacency() -> torch.Tensor:
    """Â = D^-1/2 A D^-1/2 of :func:`tiny_graph`, by hand.

    Nodes: u0=0, u1=1, i0=2, i1=3; degrees u0=2, u1=1, i0=1, i1=2.
    """
    s2, half = 1 / math.sqrt(2), 0.5
    return torch.tensor([
        [0, 0, s2, half],   # u0 - i0: 1/sqrt(2*1); u0 - i1: 1/sqrt(2*2)
        [0, 0, 0, s2],      # u1 - i1: 1/sqrt(1*2)
        [s2, 0, 0, 0],
        [half, s2, 0, 0],
    ])


def test_normalised_adjacency_by_hand() -> None:
    graph = tiny_graph()
    expected = tiny_adjacency()
    torch.testing.assert_close(graph.adjacency.to_dense(), expected)
    assert graph.n_edges == 6
    torch.testing.assert_close(graph.degree, torch.tensor([2.0, 1.0, 1.0, 2.0]))
    assert sorted(map(tuple, graph.edge_index.T.tolist())) == sorted(
        [(2, 0), (3, 0), (3, 1), (0, 2), (0, 3), (1, 3)]
    )


def test_out_of_range_pairs_are_rejected() -> None:
    with pytest.raises(ValueError, match="out of range"):
        BipartiteGraph.from_pairs(torch.tensor([0, 5]), torch.tensor([0, 1]), n_users=2, n_items=2)


def test_propagation_is_the_dense_product_by_hand() -> None:
    graph = tiny_graph()
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, -1.0], [4.0, 1.0]])
    # u0 = x_i0/sqrt2 + x_i1/2; u1 = x_i1/sqrt2; i0 = x_u0/sqrt2; i1 = x_u0/2 + x_u1/sqrt2
    s2 = 1 / math.sqrt(2)
    expected = torch.tensor([[3 * s2 + 2.0, -s2 + 0.5], [4 * s2, s2], [s2, 0.0], [0.5, 2 * s2]])
    torch.testing.assert_close(propagate(graph, x), expected)
    torch.testing.assert_close(propagate(graph, x), tiny_adjacency() @ x)
    # LightGCN with two layers is the mean of x, Âx and Â²x (no weights, no non-linearity)
    encoder = LightGCNEncoder(2, 2, dim=2, num_layers=2)
    with torch.no_grad():
        encoder.input.embedding.weight.copy_(x)
        a = tiny_adjacency()
        torch.testing.assert_close(encoder(graph), (x + a @ x + a @ a @ x) / 3)


def test_propagation_backward_is_the_transpose_product() -> None:
    graph = tiny_graph()
    adj = graph.adjacency.to(torch.float64)
    g64 = BipartiteGraph(2, 2, adj, adj, graph.degree)
    x = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: propagate(g64, t), (x,))


def test_lightgcn_matches_pyg_lightgcn() -> None:
    from torch_geometric.nn import LightGCN

    users, items = random_pairs()
    graph = BipartiteGraph.from_pairs(users, items, 30, 20)
    ours = LightGCNEncoder(30, 20, dim=8, num_layers=3)
    pyg = LightGCN(num_nodes=50, embedding_dim=8, num_layers=3)
    with torch.no_grad():
        pyg.embedding.weight.copy_(ours.input.embedding.weight)
    edge_index = homogeneous_data(users, items, 30, 20).edge_index
    torch.testing.assert_close(ours(graph), pyg.get_embedding(edge_index), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_every_encoder_maps_all_nodes_to_states(name: str) -> None:
    users, items = random_pairs()
    text = torch.randn(50, 12)
    graph = BipartiteGraph.from_pairs(users, items, 30, 20)
    encoder = ENCODERS[name](30, 20, dim=16, num_layers=2, text=text)
    states = encoder(graph)
    assert states.shape == (50, 16) and torch.isfinite(states).all()
    initial = encoder.input.embedding.weight + encoder.input.text_projection(text)
    # no layers: exactly the initial states e + W t; with layers the states differ from them
    flat = ENCODERS[name](30, 20, dim=16, num_layers=0, text=text)
    flat.input.load_state_dict(encoder.input.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(flat(graph), initial, rtol=0, atol=0)
        assert (states - initial).abs().max() > 1e-3
    states.sum().backward()
    assert encoder.input.text_projection.weight.grad.abs().sum() > 0


def neighbours(users: torch.Tensor, items: torch.Tensor, node: int, n_users: int) -> set[int]:
    """Global ids of ``node``'s neighbours in the graph of (users, items) pairs."""
    if node < n_users:
        return {int(i) + n_users for i in items[users == node]}
    return {int(u) for u in users[items == node - n_users]}


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_one_layer_sees_exactly_the_one_hop_neighbourhood(name: str) -> None:
    """A 1-layer encoder: a node's state moves when one of its edges goes, and when its own or a
    neighbour's features change; never for a change beyond one hop."""
    users, items = random_pairs()
    graph = BipartiteGraph.from_pairs(users, items, 30, 20)
    encoder = ENCODERS[name](30, 20, dim=8, num_layers=1)
    moved = lambda a, b: set(torch.nonzero((a - b).abs().amax(dim=1) > 1e-6).flatten().tolist())  # noqa: E731
    with torch.no_grad():
        before = encoder(graph)
        # remove every copy of one edge (u, i), both ends keeping other edges
        u, i = int(users[0]), int(items[0])
        keep = ~((users == u) & (items == i))
        around = neighbours(users, items, u, 30) | neighbours(users, items, 30 + i, 30)
        assert len(neighbours(users[keep], items[keep], u, 30)) >= 1 and len(neighbours(users[keep], items[keep], 30 + i, 30)) >= 1
        cut = encoder(BipartiteGraph.from_pairs(users[keep], items[keep], 30, 20))
        changed = moved(cut, before)
        assert {u, 30 + i} <= changed
        if name == "lightgcn":  # the two ends' degrees enter every weight of their edges: their neighbours move too
            assert changed == {u, 30 + i} | around
        else:  # mean / attention over each node's own neighbours: only the two ends move
            assert changed == {u, 30 + i}
        # change one node's features: it and its neighbours move, nothing else
        v = 30 + int(items[5])
        encoder.input.embedding.weight[v] += 1.0
        assert moved(encoder(graph), before) == {v} | neighbours(users, items, v, 30)


def test_a_variant_is_one_hook() -> None:
    from torch_geometric.nn import GCNConv

    from recause.models.gnn.encoders import EdgeIndexConv

    class GCNEncoder(GraphEncoder):
        activation = nn.ReLU()

        def init_conv(self, dim: int) -> nn.Module:
            return EdgeIndexConv(GCNConv(dim, dim))

    users, items = random_pairs()
    graph = BipartiteGraph.from_pairs(users, items, 30, 20)
    encoder = GCNEncoder(30, 20, dim=8, num_layers=2)
    assert sum(p.numel() for p in encoder.convs.parameters()) == 2 * (8 * 8 + 8)
    # the base class does the rest: the activation between layers (not after the last), the mean of the layers' states
    with torch.no_grad():
        x0 = encoder.input.embedding.weight
        x1 = torch.relu(encoder.convs[0].conv(x0, graph.edge_index))
        x2 = encoder.convs[1].conv(x1, graph.edge_index)
        assert (x2 < 0).any()  # the last layer is not activated
        torch.testing.assert_close(encoder(graph), (x0 + x1 + x2) / 3)


def test_cold_nodes_get_their_state_from_text() -> None:
    # item 2 has no interaction: its state is (e + W t) / (L + 1), and moves with its text
    text = torch.randn(2 + 3, 6)
    graph = BipartiteGraph.from_pairs(torch.tensor([0, 1]), torch.tensor([0, 1]), n_users=2, n_items=3)
    encoder = LightGCNEncoder(2, 3, dim=4, num_layers=2, text=text)
    cold = 2 + 2
    with torch.no_grad():
        state = encoder(graph)[cold]
        expected = (encoder.input.embedding.weight[cold] + encoder.input.text_projection(text[cold])) / 3
        torch.testing.assert_close(state, expected)
        encoder.input.text[cold] = torch.randn(6)
        assert not torch.allclose(encoder(graph)[cold], state)
        warm_before = encoder(graph)[2]
        encoder.input.text[cold] = 0.0
        torch.testing.assert_close(encoder(graph)[2], warm_before)  # a warm node is not moved by another's text


def test_text_rows_must_match_the_nodes() -> None:
    with pytest.raises(ValueError, match="expected n_users \\+ n_items = 5"):
        LightGCNEncoder(2, 3, dim=4, text=torch.zeros(4, 6))


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_sampling_every_neighbour_reproduces_full_propagation(name: str) -> None:
    users, items = random_pairs()
    graph = BipartiteGraph.from_pairs(users, items, 30, 20)
    encoder = ENCODERS[name](30, 20, dim=8, num_layers=2, text=torch.randn(50, 5))
    sampler = neighbor_sampler(homogeneous_data(users, items, 30, 20), [-1, -1])
    nodes = torch.tensor([3, 0, 33, 41, 3])
    sub, local = sample_neighbourhood(sampler, nodes, graph)
    with torch.no_grad():
        torch.testing.assert_close(encoder(sub)[local], encoder(graph)[nodes], atol=1e-5, rtol=1e-5)


def test_sampled_lightgcn_layer_is_unbiased() -> None:
    users, items = random_pairs(n=300, seed=1)
    graph = BipartiteGraph.from_pairs(users, items, 30, 20)
    sampler = neighbor_sampler(homogeneous_data(users, items, 30, 20), [3])
    x = torch.randn(50, 4)
    seeds = torch.tensor([31, 35, 40])  # items with many neighbours
    torch.manual_seed(0)
    draws = torch.stack([propagate(sub, x[sub.node_ids])[local]
                         for sub, local in (sample_neighbourhood(sampler, seeds, graph) for _ in range(1000))])
    full = propagate(graph, x)[seeds]
    standard_error = draws.std(dim=0) / math.sqrt(len(draws))
    assert ((draws.mean(dim=0) - full).abs() < 4.5 * standard_error + 1e-6).all()
    assert draws.std(dim=0).max() > 0  # it did sample (3 of each seed's 10-18 neighbours)


def test_directional_sampling_keeps_at_most_k_true_neighbours() -> None:
    users, items = random_pairs(n=300, seed=2)
    data = homogeneous_data(users, items, 30, 20)
    sampler = neighbor_sampler(data, [2, 2])
    seed = torch.tensor([0, 35])
    node, row, col, edge, n_nodes, n_edges = sample_directional(sampler.colptr, sampler.row, seed, [2, 2], False, 50)
    assert node[:2].tolist() == [0, 35] and len(set(node.tolist())) == len(node) == sum(n_nodes)
    edges = {tuple(e) for e in data.edge_index.T.tolist()}
    assert all((int(node[r]), int(node[c])) in edges for r, c in zip(row, col))
    assert torch.bincount(col[: n_edges[0]]).max() <= 2


def test_link_neighbor_loader_draws_item_negatives_around_true_positives() -> None:
    users, items = random_pairs()
    loader = link_neighbor_loader(users, items, 30, 20, num_neighbors=[4, 4], batch_size=16, negatives=2)
    batch = next(iter(loader))
    src, pos, neg = batch.n_id[batch.src_index], batch.n_id[batch.dst_pos_index], batch.n_id[batch.dst_neg_index]
    assert (src < 30).all() and (pos >= 30).all() and (neg >= 30).all()
    assert neg.shape == (16, 2)
    pairs = set(zip(users.tolist(), (items + 30).tolist()))
    assert all((int(u), int(i)) in pairs for u, i in zip(src, pos))
    assert len(loader) == math.ceil(users.numel() / 16)
