r"""The user generator: user states drawn from a conditional WGAN-GP, for populations the log never saw.

:math:`G(z, c) \to x`, with :math:`z \sim N(0, I)` and :math:`c` a one-hot condition (the user's
segment, or a single constant class when the data have none); a critic :math:`D(x, c)` is trained
with the Wasserstein loss and gradient penalty (Gulrajani et al., NeurIPS 2017), the recipe of
GAN-SD user generators (Shi et al., "Virtual-Taobao", AAAI 2019) without their entropy terms.
The GAN draws the states' coordinates on their leading principal axes (where almost all of their
variance lies); the remaining axes get Gaussian noise of their own spread — a few thousand users do
not teach a GAN 64 dimensions. States that end with *lattice* columns (statistics of counts, such as
a user's topic shares of their engagements and log activity, which take few distinct values) get
those columns snapped to the nearest observed row of the same condition: a continuous generator
cannot draw a lattice, and a classifier tells the two apart from that alone.
"""

from __future__ import annotations

import lightning as L
import torch
from torch import Tensor, nn


class UserGenerator(nn.Module):
    """G(z, c) -> (n, d) user states. ``noise_dim`` latent size, ``n_conditions`` one-hot classes."""

    def __init__(self, basis: Tensor, mean: Tensor, scale: Tensor, residual_std: Tensor, n_conditions: int,
                 noise_dim: int = 16, hidden: int = 128, lattice: Tensor | None = None,
                 lattice_condition: Tensor | None = None):
        super().__init__()
        self.noise_dim, self.n_conditions = noise_dim, n_conditions
        k = basis.shape[0]
        self.net = nn.Sequential(nn.Linear(noise_dim + n_conditions, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                                 nn.Linear(hidden, k))
        # the network draws standardised coordinates on the states' leading principal axes (``basis``, (k, d));
        # the remaining axes get Gaussian noise of their own spread (``residual_std``, (d,), per state dimension)
        self.register_buffer("basis", basis.float())
        self.register_buffer("mean", mean.float())
        self.register_buffer("scale", scale.float())
        self.register_buffer("residual_std", residual_std.float())
        # observed rows (m, w) of the states' last w columns and their conditions (m,); None: no lattice columns
        if (lattice is None) != (lattice_condition is None):
            raise ValueError("lattice and lattice_condition come together")
        self.register_buffer("lattice", None if lattice is None else lattice.float())
        self.register_buffer("lattice_condition", None if lattice_condition is None else lattice_condition.long())

    def forward(self, noise: Tensor, condition: Tensor) -> Tensor:
        """Standardised principal coordinates (n, k) from noise (n, noise_dim) and one-hot conditions (n, c)."""
        return self.net(torch.cat([noise, condition], dim=-1))

    @torch.no_grad()
    def sample(self, conditions: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """States for (n,) integer ``conditions``: (n, d), on the states' own scale."""
        noise = torch.randn(len(conditions), self.noise_dim, generator=generator)
        coords = self(noise, nn.functional.one_hot(conditions.long(), self.n_conditions).float()) * self.scale
        rest = torch.randn(len(conditions), self.basis.shape[1], generator=generator) * self.residual_std
        rest = rest - (rest @ self.basis.T) @ self.basis  # only off the principal axes
        states = self.mean + coords @ self.basis + rest
        if self.lattice is None:
            return states
        w = self.lattice.shape[1]
        snapped = snap_to_rows(states[:, -w:], conditions.long(), self.lattice, self.lattice_condition)
        return torch.cat([states[:, :-w], snapped], dim=1)


def snap_to_rows(values: Tensor, conditions: Tensor, rows: Tensor, row_conditions: Tensor) -> Tensor:
    """(n, w): each of ``values`` (n, w) replaced by the nearest (Euclidean) of ``rows`` (m, w) with the
    same condition (``conditions`` (n,), ``row_conditions`` (m,)); a condition with no rows snaps to all rows."""
    out = values.clone()
    for c in conditions.unique():
        which = conditions == c
        pool = rows[row_conditions == c]
        pool = pool if len(pool) else rows
        out[which] = pool[torch.cdist(values[which], pool).argmin(dim=1)]
    return out


class UserCritic(nn.Module):
    """D(x, c) -> (n,) scores."""

    def __init__(self, state_dim: int, n_conditions: int, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(state_dim + n_conditions, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, hidden),
                                 nn.LeakyReLU(0.2), nn.Linear(hidden, 1))

    def forward(self, state: Tensor, condition: Tensor) -> Tensor:
        return self.net(torch.cat([state, condition], dim=-1)).squeeze(-1)


class UserGANModule(L.LightningModule):
    """WGAN-GP training of :class:`UserGenerator`; batches ``{"state": (B, d) standardised, "condition": (B,) long}``."""

    def __init__(self, generator: UserGenerator, critic: UserCritic, lr: float = 1e-4, gp_weight: float = 10.0, n_critic: int = 5):
        super().__init__()
        self.generator, self.critic = generator, critic
        self.lr, self.gp_weight, self.n_critic = lr, gp_weight, n_critic
        self.automatic_optimization = False

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        g_opt, d_opt = self.optimizers()
        real = batch["state"]
        condition = nn.functional.one_hot(batch["condition"].long(), self.generator.n_conditions).float()
        for _ in range(self.n_critic):
            fake = self.generator(torch.randn(len(real), self.generator.noise_dim, device=real.device), condition).detach()
            mix = torch.rand(len(real), 1, device=real.device)
            between = (mix * real + (1 - mix) * fake).requires_grad_(True)
            grad, = torch.autograd.grad(self.critic(between, condition).sum(), between, create_graph=True)
            d_loss = self.critic(fake, condition).mean() - self.critic(real, condition).mean()
            d_loss = d_loss + self.gp_weight * ((grad.norm(dim=1) - 1.0) ** 2).mean()
            d_opt.zero_grad()
            self.manual_backward(d_loss)
            d_opt.step()
        fake = self.generator(torch.randn(len(real), self.generator.noise_dim, device=real.device), condition)
        g_loss = -self.critic(fake, condition).mean()
        g_opt.zero_grad()
        self.manual_backward(g_loss)
        g_opt.step()
        self.log("train/critic_loss", d_loss, on_step=False, on_epoch=True, batch_size=len(real))
        self.log("train/generator_loss", g_loss, on_step=False, on_epoch=True, batch_size=len(real))

    def configure_optimizers(self):
        # the settings of Gulrajani et al.: Adam with β1 = 0, β2 = 0.9
        return (torch.optim.Adam(self.generator.parameters(), lr=self.lr, betas=(0.0, 0.9)),
                torch.optim.Adam(self.critic.parameters(), lr=self.lr, betas=(0.0, 0.9)))
