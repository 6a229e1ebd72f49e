"""The simulator's networks: the response generator's probabilities by hand, its sampling (shapes,
seeding, hard clicks with gradients), the critic as a set function, the user generator's sampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recause.models.gnn.heads import PairHead
from recause.models.simulator.module import SimulatorModule
from recause.models.simulator.response import ResponseGenerator, SlateCritic
from recause.models.simulator.users import UserGenerator, snap_to_rows

pytestmark = pytest.mark.usefixtures("one_thread")


def generator(has_base: bool = True, n_positions: int = 3, noise: float = -30.0) -> ResponseGenerator:
    torch.manual_seed(0)
    g = ResponseGenerator(4, torch.randn(5, 4), n_positions, dim=4, has_base=has_base, depth=0)
    with torch.no_grad():
        for head in g.heads.values():
            for p in head.parameters():
                p.copy_(torch.randn_like(p) * 0.3)
        g.examination_logit.copy_(torch.tensor([0.0, -1.0])[: n_positions - 1])
        g.noise_log_scale.fill_(noise)
    return g


def test_click_probability_is_the_examination_mixture_by_hand() -> None:
    g = generator()
    user = torch.randn(2, 4)
    items = torch.tensor([[0, 1, 2], [3, 4, 0]])
    positions = torch.tensor([[0, 1, 2], [2, 1, 0]])
    a, b = g.logits(user, items)
    # a, b are the pair heads on (user state, item state + residual); residuals start at zero
    assert torch.allclose(a[1, 2], g.heads["base"](user[1], g.item_state[0]))
    p = g.expected_click_probability(a, b, positions)  # the noise is off: exactly the mixture
    kappa = torch.tensor([1.0, 0.5, 1 / (1 + np.e)])  # κ1 = 1, σ(0), σ(−1)
    expected = torch.sigmoid(a) + kappa[positions] * (torch.sigmoid(b) - torch.sigmoid(a))
    assert torch.allclose(p, expected, atol=1e-6)
    without = generator(has_base=False)
    a, b = without.logits(user, items)
    assert torch.allclose(without.expected_click_probability(a, b, positions), kappa[positions] * torch.sigmoid(b), atol=1e-6)


def test_potential_outcomes_integrate_the_slate_noise() -> None:
    g = generator(noise=np.log(0.8))
    user = torch.randn(3, 4)
    p0, p1 = g.potential_outcomes(user)
    a, b = g.grid_logits(user)
    draws = torch.randn(200_000, 1, 1, generator=torch.Generator().manual_seed(1))
    monte_carlo = torch.sigmoid(b + 0.8 * draws).mean(0)
    assert p0.shape == p1.shape == (3, 5)
    assert torch.allclose(p1, monte_carlo, atol=2e-3)
    assert not torch.allclose(p1, torch.sigmoid(b), atol=2e-3)  # the noise matters: E σ(b + sε) ≠ σ(b)


def test_starting_from_the_gnn_heads_reproduces_its_logits() -> None:
    g = generator()
    gnn = {"exposed": PairHead(4, 0.5), "unexposed": PairHead(4, -2.0)}
    with torch.no_grad():
        for head in gnn.values():
            for p in head.parameters():
                p.add_(torch.randn_like(p) * 0.2)
    g.start_from(gnn, torch.tensor([0.3, -0.4]))
    h_user, items = torch.randn(2, 4), torch.tensor([[1, 3]])
    a, b = g.logits(h_user, items.expand(2, 2))
    assert torch.allclose(b, gnn["exposed"](h_user[:, None, :], g.item_state[items.expand(2, 2)]), atol=1e-6)
    assert torch.allclose(a, gnn["unexposed"](h_user[:, None, :], g.item_state[items.expand(2, 2)]), atol=1e-6)
    assert torch.allclose(g.examination_logit, torch.tensor([0.3, -0.4]))


def test_sampling_is_seeded_hard_and_differentiable() -> None:
    g = generator(noise=-1.0)
    user, items = torch.randn(64, 4), torch.randint(0, 5, (64, 3))
    positions = torch.arange(3).expand(64, 3)
    first, p = g.sample(user, items, positions, torch.Generator().manual_seed(3))
    again, _ = g.sample(user, items, positions, torch.Generator().manual_seed(3))
    other, _ = g.sample(user, items, positions, torch.Generator().manual_seed(4))
    assert first.shape == p.shape == (64, 3)
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert set(first.detach().unique().tolist()) <= {0.0, 1.0}
    first.sum().backward()  # straight-through: the hard clicks pass gradients to the heads
    assert g.heads["exposed"].user_bias.bias.grad.abs().item() > 0


def test_the_samples_follow_the_probabilities() -> None:
    g = generator(noise=-30.0)
    user = torch.randn(1, 4).expand(40_000, 4)
    items, positions = torch.tensor([[2, 4]]).expand(40_000, 2), torch.tensor([[0, 1]]).expand(40_000, 2)
    clicks, p = g.sample(user, items, positions, torch.Generator().manual_seed(5))
    assert torch.allclose(clicks.mean(0), p[0], atol=0.01)


def test_the_critic_is_a_set_function_blind_to_padding() -> None:
    torch.manual_seed(0)
    critic = SlateCritic(3, 2, 4)
    user, items = torch.randn(2, 3), torch.randn(2, 4, 2)
    positions, clicks = torch.tensor([[0, 1, 2, 3], [3, 2, 1, 0]]), torch.tensor([[1.0, 0, 0, 1], [0, 1, 0, 0]])
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    score = critic(user, items, positions, clicks, mask)
    order = torch.tensor([2, 0, 1, 3])
    shuffled = critic(user, items[:, order], positions[:, order], clicks[:, order], mask[:, order])
    assert torch.allclose(score, shuffled, atol=1e-6)
    changed = items.clone()
    changed[0, 3] += 5.0  # the padded slot of the first slate
    assert torch.allclose(critic(user, changed, positions, clicks, mask)[0], score[0], atol=1e-6)


def test_the_ipw_likelihood_peer_has_no_slate_noise_and_no_critic() -> None:
    g = generator(noise=-2.0)
    module = SimulatorModule(g, None, adversarial_weight=0.0)
    assert g.noise_scale().max().item() < 1e-12 and not g.noise_log_scale.requires_grad
    with pytest.raises(ValueError, match="needs a critic"):
        SimulatorModule(generator(), None, adversarial_weight=1.0)
    assert isinstance(module.configure_optimizers(), torch.optim.Adam)


def test_generated_users_live_on_the_principal_axes_plus_off_axis_noise() -> None:
    torch.manual_seed(0)
    basis = torch.linalg.qr(torch.randn(6, 2))[0].T  # (2, 6) orthonormal rows
    users = UserGenerator(basis, torch.zeros(6), torch.ones(2), torch.full((6,), 0.1), n_conditions=3)
    conditions = torch.tensor([0, 1, 2, 2])
    a = users.sample(conditions, torch.Generator().manual_seed(1))
    b = users.sample(conditions, torch.Generator().manual_seed(1))
    assert a.shape == (4, 6) and torch.equal(a, b)
    quiet = UserGenerator(basis, torch.zeros(6), torch.ones(2), torch.zeros(6), n_conditions=3)
    on_axes = quiet.sample(conditions, torch.Generator().manual_seed(1))
    assert torch.allclose(on_axes, (on_axes @ basis.T) @ basis, atol=1e-5)  # no residual: only the principal axes
    residual = a - (a @ basis.T) @ basis
    assert torch.allclose(residual @ basis.T, torch.zeros(4, 2), atol=1e-5) and residual.abs().max() > 0


def test_lattice_columns_snap_to_the_nearest_observed_row_of_the_same_condition() -> None:
    rows = torch.tensor([[0.0, 0.0], [1.0, 1.0], [5.0, 5.0], [9.0, 9.0]])
    row_conditions = torch.tensor([0, 0, 1, 1])
    values = torch.tensor([[0.9, 0.8], [0.9, 0.8], [4.0, 0.0], [2.0, 2.0]])
    conditions = torch.tensor([0, 1, 1, 2])  # condition 2 has no rows: it snaps to all of them
    snapped = snap_to_rows(values, conditions, rows, row_conditions)
    assert torch.equal(snapped, torch.tensor([[1.0, 1.0], [5.0, 5.0], [5.0, 5.0], [1.0, 1.0]]))
    basis = torch.eye(4)[:2]  # the GAN draws the first two coordinates; the last two are lattice columns
    users = UserGenerator(basis, torch.zeros(4), torch.ones(2), torch.full((4,), 0.5), n_conditions=2,
                          lattice=rows, lattice_condition=row_conditions)
    drawn = users.sample(torch.tensor([0, 0, 1, 1, 1]), torch.Generator().manual_seed(3))
    allowed = {0: {(0.0, 0.0), (1.0, 1.0)}, 1: {(5.0, 5.0), (9.0, 9.0)}}
    assert all(tuple(drawn[n, 2:].tolist()) in allowed[c] for n, c in enumerate([0, 0, 1, 1, 1]))
    assert drawn[:, :2].abs().sum() > 0  # the continuous part is the generator's own
    with pytest.raises(ValueError, match="come together"):
        UserGenerator(basis, torch.zeros(4), torch.ones(2), torch.zeros(4), n_conditions=2, lattice=rows)
