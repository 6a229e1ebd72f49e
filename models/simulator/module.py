r"""The simulator's training recipe (Lightning): a conditional WGAN-GP on (user, slate, clicks).

**Objective** (``adversarial_weight`` λ_adv, ``likelihood_weight`` λ_lik):

- critic :math:`D` (:class:`~recause.models.simulator.response.SlateCritic`) on logged slates:
  :math:`\min_D\ \bar{D}_w(\text{generated}) - \bar{D}_w(\text{real}) + \lambda_{gp}\,\overline{(\lVert\nabla_c D\rVert - 1)^2}`
  (Gulrajani et al., NeurIPS 2017), the penalty on clicks interpolated between real and generated;
- generator :math:`G` (:class:`~recause.models.simulator.response.ResponseGenerator`):
  :math:`\min_G\ -\lambda_{adv}\,\bar{D}_w(\text{generated}) + \lambda_{lik}\,\overline{\mathrm{BCE}}_w + \mathrm{NLL}_{organic}`.

**Confounding remedy.** The generator answers *the same logged slates* the critic sees
(paired conditioning: the slate, user and positions are identical on both sides and only the clicks
differ), so the critic can only tell responses apart, never the logging policy's choice of slates:
the generator cannot win by copying which slates π₀ showed. Each slate carries an importance
weight :math:`w = \min(\prod_k \pi_{ref}(i_k|u)/\pi_0(i_k|u),\ w_{max})`, self-normalised in every
mean :math:`\bar{\cdot}_w`, so the fit is judged where a reference policy would show items (the same
weights as an IPW likelihood; the response model conditions on everything the world's responses
depend on, so the weights shift emphasis, not the estimand).

``adversarial_weight=0`` gives the same network trained as an IPW-weighted cross-entropy model
(independent clicks: the slate noise is then fixed at zero), the peer the GAN is measured against.

Batches (tensors; the task layer builds them):
``user`` (B, d_u) states and ``users`` (B,) their indices (for learned user residuals), ``items``/``positions`` (B, K) long, ``mask`` (B, K) bool, ``clicks`` (B, K),
``weight`` (B,); with side features the cross-fitted ``slot_user_side``/``slot_item_side`` (B, K, T+1)
(and ``org_*``/``uni_*`` ones, (M, T+1)); with p0 identified also ``org_user`` (M, d_u), ``org_users``, ``org_item`` (M,), ``org_r`` (M,)
(organic positives, retention), ``uni_user``/``uni_users``/``uni_item``/``uni_r``/``uni_neg`` (uniform pairs;
``uni_neg`` 1 where the pair counts as a negative) and ``org_share`` (scalar).
"""

from __future__ import annotations

import lightning as L
import torch
from torch import Tensor

from recause.models.gnn.losses import bce_prob, population_nll, thinned_log_probs
from recause.models.simulator.response import ResponseGenerator, SlateCritic

Batch = dict[str, Tensor]


class SimulatorModule(L.LightningModule):
    """Trains a :class:`ResponseGenerator` adversarially (with a likelihood anchor) or by IPW likelihood."""

    def __init__(self, generator: ResponseGenerator, critic: SlateCritic | None, *, lr: float = 2e-3,
                 critic_lr: float = 1e-3, adversarial_weight: float = 1.0, likelihood_weight: float = 1.0,
                 gp_weight: float = 10.0, n_critic: int = 2, temperature: float = 0.5, weight_decay: float = 1e-5,
                 backbone_lr_scale: float = 1.0):
        super().__init__()
        if adversarial_weight > 0 and critic is None:
            raise ValueError("adversarial training needs a critic")
        self.generator, self.critic = generator, critic
        self.lr, self.critic_lr, self.weight_decay = lr, critic_lr, weight_decay
        self.adversarial_weight, self.likelihood_weight = adversarial_weight, likelihood_weight
        self.gp_weight, self.n_critic, self.temperature = gp_weight, n_critic, temperature
        self.backbone_lr_scale = backbone_lr_scale
        if adversarial_weight == 0:
            with torch.no_grad():  # independent clicks: no slate noise to learn without a critic
                generator.noise_log_scale.fill_(-30.0)
            generator.noise_log_scale.requires_grad_(False)
        self.automatic_optimization = False
        self._seed = 0

    # ------------------------------------------------------------------ losses
    def likelihood_loss(self, batch: Batch) -> Tensor:
        """Weighted per-slot BCE of the expected click probability (ε integrated), per slot."""
        g = self.generator
        a, b = g.logits(batch["user"], batch["items"], users=batch.get("users"), side=_side(batch, "slot"))
        p = g.expected_click_probability(a, b, batch["positions"])
        row = (bce_prob(p, batch["clicks"]) * batch["mask"]).sum(1) / batch["mask"].sum(1).clamp_min(1)
        return _weighted_mean(row, batch["weight"])

    def organic_loss(self, batch: Batch) -> Tensor:
        """Population likelihood of organic finds among unexposed pairs (p0, thinned by retention)."""
        if not self.generator.has_base or "org_user" not in batch:
            return torch.zeros((), device=self.device)
        g = self.generator
        a_pos = _pair_base_logit(g, batch["org_user"], batch["org_item"], batch.get("org_users"), _side(batch, "org"))
        a_uni = _pair_base_logit(g, batch["uni_user"], batch["uni_item"], batch.get("uni_users"), _side(batch, "uni"))
        log_p, _ = thinned_log_probs(a_pos, batch["org_r"])
        _, log_q = thinned_log_probs(a_uni, batch["uni_r"])
        return population_nll(log_p, log_q, batch["uni_neg"], float(batch["org_share"]))

    def critic_scores(self, batch: Batch, clicks: Tensor) -> Tensor:
        item_state = self.generator.item_state[batch["items"].clamp_min(0)]
        return self.critic(batch["user"], item_state, batch["positions"], clicks, batch["mask"])

    def critic_loss(self, batch: Batch, fake: Tensor) -> Tensor:
        real = batch["clicks"]
        w = batch["weight"]
        gap = _weighted_mean(self.critic_scores(batch, fake), w) - _weighted_mean(self.critic_scores(batch, real), w)
        mix = torch.rand(real.shape[0], 1, device=real.device)
        between = (mix * real + (1 - mix) * fake).requires_grad_(True)
        scores = self.critic_scores(batch, between)
        grad, = torch.autograd.grad(scores.sum(), between, create_graph=True)
        penalty = ((grad.norm(dim=1) - 1.0) ** 2).mean()
        return gap + self.gp_weight * penalty

    # ------------------------------------------------------------------ steps
    def training_step(self, batch: Batch, batch_idx: int) -> None:
        optimisers = self.optimizers()
        g_opt, d_opt = (optimisers if isinstance(optimisers, (list, tuple)) else (optimisers, None))
        n = int(batch["clicks"].shape[0])
        if self.adversarial_weight > 0:
            for _ in range(self.n_critic):
                fake, _ = self.generator.sample(batch["user"], batch["items"], batch["positions"], self._generator(),
                                                self.temperature, users=batch.get("users"))
                d_loss = self.critic_loss(batch, fake.detach())
                d_opt.zero_grad()
                self.manual_backward(d_loss)
                d_opt.step()
            self.log("train/critic_loss", d_loss, on_step=False, on_epoch=True, batch_size=n)
        likelihood = self.likelihood_loss(batch)
        organic = self.organic_loss(batch)
        loss = self.likelihood_weight * likelihood + organic
        if self.adversarial_weight > 0:
            fake, _ = self.generator.sample(batch["user"], batch["items"], batch["positions"], self._generator(), self.temperature,
                                            users=batch.get("users"))
            adversarial = -_weighted_mean(self.critic_scores(batch, fake), batch["weight"])
            loss = loss + self.adversarial_weight * adversarial
            self.log("train/adversarial", adversarial, on_step=False, on_epoch=True, batch_size=n)
        g_opt.zero_grad()
        self.manual_backward(loss)
        g_opt.step()
        self.log("train/loss", loss, on_step=False, on_epoch=True, batch_size=n, prog_bar=True)
        self.log("train/likelihood", likelihood, on_step=False, on_epoch=True, batch_size=n)
        self.log("train/organic", organic, on_step=False, on_epoch=True, batch_size=n)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        n = int(batch["clicks"].shape[0])
        likelihood = self.likelihood_loss(batch)
        organic = self.organic_loss(batch)
        self.log("val/likelihood", likelihood, on_epoch=True, batch_size=n, prog_bar=True)
        self.log("val/organic", organic, on_epoch=True, batch_size=n)
        self.log("val/loss", likelihood + organic, on_epoch=True, batch_size=n)

    def configure_optimizers(self):
        g = self.generator
        scalars = [p for p in (g.examination_logit, g.noise_log_scale, g.side_weight) if p is not None and p.requires_grad]
        taken = {id(p) for p in scalars}
        others = [p for p in g.parameters() if p.requires_grad and id(p) not in taken]
        # the few scalars (examination, noise scale, side weights) at the full rate, without decay; a
        # pre-trained backbone (the GNN's heads) moves at backbone_lr_scale of it
        g_opt = torch.optim.Adam([{"params": others, "weight_decay": self.weight_decay, "lr": self.backbone_lr_scale * self.lr},
                                  {"params": scalars, "weight_decay": 0.0, "lr": self.lr}], lr=self.lr, betas=(0.5, 0.9))
        if self.critic is None or self.adversarial_weight == 0:
            return g_opt
        return g_opt, torch.optim.Adam(self.critic.parameters(), lr=self.critic_lr, betas=(0.5, 0.9))

    def _generator(self) -> torch.Generator:
        """A seeded torch generator per step, so sampling is reproducible for a seeded fit."""
        self._seed += 1
        return torch.Generator(device=self.device).manual_seed(self._seed)


def _weighted_mean(values: Tensor, weight: Tensor) -> Tensor:
    return (values * weight).sum() / weight.sum().clamp_min(1e-12)


def _side(batch: Batch, part: str) -> tuple[Tensor, Tensor] | None:
    """The batch's cross-fitted side features of ``part`` (slot: (B, K, T+1); org/uni pairs: (M, 1, T+1))."""
    if f"{part}_user_side" not in batch:
        return None
    user, item = batch[f"{part}_user_side"], batch[f"{part}_item_side"]
    return (user, item) if part == "slot" else (user[:, None, :], item[:, None, :])


def _pair_base_logit(g: ResponseGenerator, user_state: Tensor, items: Tensor, users: Tensor | None,
                     side: tuple[Tensor, Tensor] | None = None) -> Tensor:
    """The base head's logit a(u, i) of aligned pairs: (M, d_u), (M,) -> (M,)."""
    a, _ = g.logits(user_state, items[:, None], users=users, side=side)
    return a[:, 0]
