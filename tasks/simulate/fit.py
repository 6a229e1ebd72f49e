"""Fitting the simulator: the response GAN (an ensemble over seeds), the user generator and the
logging-policy imitation, each with Lightning (the imitation with a plain Adam loop: it is a softmax
regression), seeded, on one thread unless told otherwise.

:func:`fit_simulator` is the stage's work; :func:`fit_response` fits one response model and is what
the benches call to compare training modes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recause.tasks.data.schema import Dataset
from recause.tasks.data.split import Split
from recause.tasks.features.build import TextFeatures
from recause.tasks.simulate.config import SimulateConfig
from recause.tasks.simulate.data import (
    OrganicFinds,
    Slates,
    States,
    build_states,
    cross_fitted_sides,
    group_slates,
    organic_finds,
    pair_fold,
)
from recause.tasks.simulate.simulator import Simulator


@dataclass(frozen=True)
class TrainingData:
    """What the response model trains and validates on; ``pretrained``: the causal GNN's model
    (:class:`recause.models.gnn.heads.CausalRecommender`) whose outcome heads the generator starts from."""

    states: States
    train: Slates
    val: Slates
    organic: OrganicFinds | None
    n_items: int
    pretrained: object | None = None
    folds: tuple[np.ndarray, np.ndarray] | None = None  # cross-fitted side features, (2, n, T+1) for users and items


def training_data(split: Split, dataset: Dataset, features: TextFeatures | None, config: SimulateConfig,
                  gnn=None) -> TrainingData:
    """States, the training and validation slates (weighted toward the reference policy), organic finds.

    ``gnn``: the fitted causal model (:class:`recause.tasks.train.fit.TrainedModel`) whose node states
    and outcome heads the simulator builds on (None: feature states, a generator from scratch).
    """
    states = build_states(split, dataset, features, config.text_dim, gnn)
    positions = [int(p["position"].max()) for p in (split.train, split.val, split.test)
                 if "position" in p.columns and p["position"].notna().any()]
    n_positions = max(positions) if positions else 1
    group = dict(n_items=split.n_items, n_positions=n_positions, reference_mix=config.reference_mix, max_weight=config.max_weight)
    train = group_slates(split.train, **group)
    val = group_slates(split.val, **group)
    if len(train) == 0:
        raise ValueError(f"{dataset.meta.name}: the training part has no exposed rows with outcomes to simulate")
    return TrainingData(states, train, val, organic_finds(split) if dataset.meta.has_unexposed_outcomes else None,
                        split.n_items, gnn.module.model if gnn is not None else None, cross_fitted_sides(split, features))


def _batch_maker(data: TrainingData, slates: Slates, batch_size: int):
    """``make(rows, g)`` for :class:`recause.models.gnn.batches.EpochBatches`: a batch of slates (+ organic pairs)."""
    import torch

    user_state = torch.as_tensor(data.states.user)
    tensors = {
        "users": torch.as_tensor(slates.user), "items": torch.as_tensor(slates.items),
        "positions": torch.as_tensor(slates.positions), "mask": torch.as_tensor(slates.mask),
        "clicks": torch.as_tensor(slates.clicks, dtype=torch.float32), "weight": torch.as_tensor(slates.weight, dtype=torch.float32),
    }
    organic = data.organic
    n_users, n_items = user_state.shape[0], data.n_items
    if organic is not None:
        org_user, org_item = torch.as_tensor(organic.user), torch.as_tensor(organic.item)
        found, exposed = torch.as_tensor(organic.found_codes), torch.as_tensor(organic.exposed_codes)
        retention = torch.as_tensor(organic.retention, dtype=torch.float32)
        share = organic.found_codes.size / float(n_users * n_items)

    def member(codes, sorted_codes):
        if sorted_codes.numel() == 0:
            return torch.zeros_like(codes, dtype=torch.bool)
        at = torch.searchsorted(sorted_codes, codes).clamp_max(sorted_codes.numel() - 1)
        return sorted_codes[at] == codes

    folds = None
    if data.folds is not None and slates is data.train:
        user_fold, item_fold = (torch.as_tensor(f, dtype=torch.float32) for f in data.folds)
        # each slot trains with the side features its (user, item) pair's fold holds out: made without that pair
        slot_fold = torch.as_tensor(pair_fold(np.repeat(slates.user[:, None], slates.n_positions, axis=1), slates.items.clip(0)))
        folds = (user_fold, item_fold)

    def other(u, i):
        """The side features of aligned pairs (user, item indices of any shape), made without those pairs."""
        f = torch.as_tensor(pair_fold(u.numpy(), i.numpy()))
        return folds[0][f, u], folds[1][f, i]

    def make(rows, g):
        batch = {k: v[rows] for k, v in tensors.items()}
        batch["user"] = user_state[batch["users"]]
        if folds is not None:
            f = slot_fold[rows]
            u = batch["users"][:, None].expand_as(f)
            batch["slot_user_side"], batch["slot_item_side"] = folds[0][f, u], folds[1][f, batch["items"].clamp_min(0)]
        if organic is not None:
            pick = torch.randint(org_user.numel(), (batch_size,), generator=g)
            u, i = org_user[pick], org_item[pick]
            batch |= {"org_user": user_state[u], "org_users": u, "org_item": i, "org_r": retention[u]}
            if folds is not None:
                batch["org_user_side"], batch["org_item_side"] = other(u, i)
            u = torch.randint(n_users, (batch_size,), generator=g)
            i = torch.randint(n_items, (batch_size,), generator=g)
            codes = u * n_items + i
            negative = ~member(codes, found) & ~member(codes, exposed)
            batch |= {"uni_user": user_state[u], "uni_users": u, "uni_item": i, "uni_r": retention[u], "uni_neg": negative.float(),
                      "org_share": torch.tensor(share)}
            if folds is not None:
                batch["uni_user_side"], batch["uni_item_side"] = other(u, i)
        return batch

    return make


def make_generator(data: TrainingData, config: SimulateConfig):
    """A response generator for ``data``: on the causal GNN's states and starting from its outcome heads
    and examination when ``data.pretrained`` is set (identity towers), else on feature states from scratch."""
    import torch

    from recause.models.simulator.response import ResponseGenerator

    clicked = data.train.clicks[data.train.mask]
    pretrained = data.pretrained
    dim = data.states.user.shape[1] - data.states.side_width if pretrained is not None else config.hidden
    generator = ResponseGenerator(
        data.states.user.shape[1], torch.as_tensor(data.states.item), data.train.n_positions, dim,
        has_base=data.organic is not None, depth=0 if pretrained is not None else config.depth,
        n_users=data.states.user.shape[0] if config.user_embeddings and pretrained is None else 0,
        exposed_rate=float(clicked.mean()) if clicked.size else 0.05, n_topics=data.states.n_topics,
        item_residuals=pretrained is None,  # GNN states carry the ID embeddings already
    )
    if pretrained is not None:  # the GNN's outcome heads on its node states (the exposure covariate folded in)
        user, item = (torch.as_tensor(states[:, :dim]).mean(0) for states in (data.states.user, data.states.item))
        generator.start_from(pretrained.standalone_heads(user, item), pretrained.examination_logit.detach())
    return generator


def outcome_model_generator(data: TrainingData):
    """The causal GNN's outcome model as a generator (the pre-trained start, independent clicks): the
    benches' peer "the GNN's f1/f0 with its position examination used as a simulator"."""
    import torch

    if data.pretrained is None:
        raise ValueError("no causal GNN to start from")
    generator = make_generator(data, SimulateConfig())
    with torch.no_grad():
        generator.noise_log_scale.fill_(-30.0)
    return generator.eval()


@dataclass
class FittedResponse:
    """One trained response generator and its training history."""

    generator: object  # recause.models.simulator.response.ResponseGenerator
    history: dict[str, float]


def fit_response(data: TrainingData, config: SimulateConfig, *, seed: int, threads: int, mode: str | None = None,
                 logger=None, checkpoint_dir: Path | None = None) -> FittedResponse:
    """Train one response model (``mode``: gan / ipw_likelihood; default ``config.mode``) with the
    best validation weights restored; ``logger`` a Lightning logger or None."""
    import lightning as L
    import torch
    from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint

    from recause.models.gnn.batches import EpochBatches, epoch_steps, fixed_batches, loader
    from recause.models.simulator.module import SimulatorModule
    from recause.models.simulator.response import SlateCritic
    from recause.tasks.train.callbacks import BestWeights, EpochTimer, quiet_lightning, torch_threads

    mode = mode or config.mode
    with torch_threads(threads):
        L.seed_everything(seed, workers=False, verbose=False)
        generator = make_generator(data, config)
        pretrained = data.pretrained
        critic = SlateCritic(data.states.user.shape[1], data.states.item.shape[1], data.train.n_positions) if mode == "gan" else None
        module = SimulatorModule(
            generator, critic, lr=config.lr, critic_lr=config.critic_lr,
            adversarial_weight=config.adversarial_weight if mode == "gan" else 0.0, likelihood_weight=config.likelihood_weight,
            gp_weight=config.gp_weight, n_critic=config.n_critic, temperature=config.temperature, weight_decay=config.weight_decay,
            backbone_lr_scale=config.backbone_lr_scale if pretrained is not None else 1.0,
        )
        train = EpochBatches(len(data.train), config.batch_size, _batch_maker(data, data.train, config.batch_size), seed)
        val = fixed_batches(len(data.val), 4096, _batch_maker(data, data.val, 4096), seed + 1) if len(data.val) else []
        monitor = "val/loss"
        best, timer = BestWeights(monitor, "min"), EpochTimer()
        callbacks = [timer, best]
        if val:
            callbacks.append(EarlyStopping(monitor, patience=config.patience, min_delta=config.min_delta, mode="min",
                                           check_finite=False))
        if checkpoint_dir is not None:
            callbacks.append(ModelCheckpoint(dirpath=checkpoint_dir, filename="best", monitor=monitor, mode="min", save_top_k=1))
        if pretrained is not None and val:  # the pre-trained start is a candidate too: fine-tuning must earn its place
            best.consider(_validation_loss(module, val), -1, module)
        steps = epoch_steps(len(train), config.epoch_slates, config.batch_size)
        start = time.perf_counter()
        with quiet_lightning():
            trainer = L.Trainer(
                max_epochs=config.epochs, accelerator="auto", devices=1, logger=logger if logger is not None else False,
                callbacks=callbacks, enable_checkpointing=checkpoint_dir is not None, enable_progress_bar=False,
                enable_model_summary=False, num_sanity_val_steps=0, limit_train_batches=steps,
                log_every_n_steps=max(1, steps // 2),
            )
            trainer.fit(module, train_dataloaders=loader(train), val_dataloaders=loader(val) if val else None)
        best.restore(module)
        module.eval()
        generator = module.generator.cpu()
        history = {"epochs": float(trainer.current_epoch), "best_epoch": float(best.epoch), f"best_{monitor}": best.value,
                   "seconds": time.perf_counter() - start, "seconds_per_epoch": timer.mean, "steps_per_epoch": float(steps),
                   "steps_per_pass": float(len(train))}
    return FittedResponse(generator, history)


def _validation_loss(module, batches) -> float:
    """The validation loss the monitor sees (batch-size weighted mean over the validation batches)."""
    import torch

    total = count = 0.0
    with torch.no_grad():
        for batch in batches:
            n = float(batch["clicks"].shape[0])
            total += n * float(module.likelihood_loss(batch) + module.organic_loss(batch))
            count += n
    return total / count


def user_epochs(config: SimulateConfig, steps_per_epoch: int) -> int:
    """Epochs of the user GAN: ``config.user_epochs``, or as many whole epochs as fit in ``config.user_steps``
    steps (at least one) when that is fewer."""
    if config.user_steps is None:
        return config.user_epochs
    return max(1, min(config.user_epochs, config.user_steps // max(1, steps_per_epoch)))


def fit_user_generator(states: States, config: SimulateConfig, *, seed: int, threads: int, logger=None):
    """A conditional WGAN-GP of user states given their segment (:class:`recause.models.simulator.users.UserGenerator`)."""
    import lightning as L
    import torch

    from recause.models.gnn.batches import EpochBatches, loader
    from recause.models.simulator.users import UserCritic, UserGANModule, UserGenerator
    from recause.tasks.train.callbacks import quiet_lightning, torch_threads

    with torch_threads(threads):
        L.seed_everything(seed, workers=False, verbose=False)
        n_conditions = len(states.conditions)
        raw = torch.as_tensor(states.user, dtype=torch.float64)
        mean = raw.mean(0)
        _, s, vt = torch.linalg.svd(raw - mean, full_matrices=False)
        share = torch.cumsum(s**2, 0) / (s**2).sum()
        k = int(min(int((share < config.user_variance).sum()) + 1, config.user_axes, len(s)))
        basis = vt[:k]
        coords = (raw - mean) @ basis.T
        scale = coords.std(0).clamp_min(1e-9)
        residual = (raw - mean) - coords @ basis
        condition = torch.as_tensor(states.user_condition)
        # the side features (topic shares and log activity of a user's engagements) live on a lattice
        lattice = raw[:, -states.side_width :] if states.side_width else None
        generator = UserGenerator(basis, mean, scale, residual.std(0), n_conditions, lattice=lattice,
                                  lattice_condition=condition if lattice is not None else None)
        module = UserGANModule(generator, UserCritic(k, n_conditions), lr=config.user_lr)
        state = (coords / scale).float()
        batches = EpochBatches(len(state), 256, lambda rows, g: {"state": state[rows], "condition": condition[rows]}, seed)
        with quiet_lightning():
            trainer = L.Trainer(max_epochs=user_epochs(config, len(batches)), accelerator="auto", devices=1, logger=logger or False,
                                enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                                log_every_n_steps=max(1, len(batches) // 2))
            trainer.fit(module, train_dataloaders=loader(batches))
        return module.generator.cpu().eval()


def fit_policy_imitation(split: Split, states: States, config: SimulateConfig, *, seed: int, threads: int):
    """Softmax regression of the logged items on user and item states (:class:`recause.models.simulator.policy.PolicyImitation`):
    ``config.imitation_epochs`` epochs of at most ``config.imitation_rows`` shown rows each (a fresh seeded
    random part of a larger log), batches of 1,024."""
    import torch

    from recause.models.simulator.policy import PolicyImitation
    from recause.tasks.train.callbacks import torch_threads

    shown = split.train[split.train["exposed"].fillna(False).to_numpy(dtype=bool)]
    with torch_threads(threads):
        torch.manual_seed(seed)
        model = PolicyImitation(states.user.shape[1], torch.as_tensor(states.item), config.hidden, states.n_topics)
        user_states = torch.as_tensor(states.user)
        users = torch.as_tensor(np.array(shown["user"], dtype=np.int64))  # states gathered per batch, not per shown row
        items = torch.as_tensor(np.array(shown["item"], dtype=np.int64))
        optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
        g = torch.Generator().manual_seed(seed)
        rows_per_epoch = min(len(items), config.imitation_rows or len(items))
        for _ in range(config.imitation_epochs):
            perm = torch.randperm(len(items), generator=g)[:rows_per_epoch]
            for start in range(0, rows_per_epoch, 1024):
                rows = perm[start : start + 1024]
                optimiser.zero_grad()
                loss = model.loss(user_states[users[rows]], items[rows])
                loss.backward()
                optimiser.step()
    return model.eval()


def fit_simulator(split: Split, dataset: Dataset, features: TextFeatures | None, config: SimulateConfig, *, seed: int,
                  threads: int, gnn=None, logger_for: Callable[[str], object] | None = None,
                  checkpoint_root: Path | None = None, on_member: Callable[[int, FittedResponse], None] | None = None) -> Simulator:
    """The stage's simulator: ``config.ensemble`` response models (seeds ``seed``, ``seed + 1``, ...),
    the user generator and the logging-policy imitation, on ``split``'s training part; on the causal
    GNN's states and pre-trained from its outcome heads when ``gnn`` is given."""
    data = training_data(split, dataset, features, config, gnn)
    start = time.perf_counter()
    members = []
    for m in range(config.ensemble):
        name = f"simulator_{m}"
        fitted = fit_response(data, config, seed=seed + m, threads=threads,
                              logger=logger_for(name) if logger_for is not None else None,
                              checkpoint_dir=checkpoint_root / name if checkpoint_root is not None else None)
        members.append(fitted)
        if on_member is not None:
            on_member(m, fitted)
    seconds = {"members": time.perf_counter() - start}
    start = time.perf_counter()
    users = fit_user_generator(data.states, config, seed=seed, threads=threads)
    seconds["user_gan"] = time.perf_counter() - start
    start = time.perf_counter()
    imitation = fit_policy_imitation(split, data.states, config, seed=seed, threads=threads)
    seconds["imitation"] = time.perf_counter() - start
    return Simulator([f.generator for f in members], data.states, imitation, users, data.train.n_positions,
                     [f.history for f in members], config.mode, seconds)
