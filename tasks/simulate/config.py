"""Settings of the simulate stage: the response GAN, its ensemble, the user generator, the fidelity check."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from recause.tasks.config import Section


class SimulateConfig(Section):
    """The user simulator: how it is trained, how many seeds answer together, when it is trusted."""

    enabled: bool = Field(True, description="Fit the user simulator and answer the interventions with it.")
    mode: Literal["gan", "ipw_likelihood"] = Field(
        "gan", description="gan: WGAN-GP critic on (user, slate, clicks) plus a weighted likelihood anchor; "
        "ipw_likelihood: the same network by IPW-weighted cross-entropy alone (independent clicks).")
    hidden: int = Field(32, ge=4, le=512, description="Factor size of each response head.")
    user_embeddings: bool = Field(True, description="On feature states: learn a residual per known user beyond their "
                                  "features (generated users have none); GNN states carry ID embeddings already.")
    depth: int = Field(1, ge=1, le=2, description="Layers of the feature towers (1 = linear maps into the interest match).")
    text_dim: int = Field(16, ge=2, le=256, description="Principal components of the text vectors in a state.")
    epochs: int = Field(15, ge=1, description="Maximum epochs of the response model (early stopping on val/loss).")
    patience: int = Field(3, ge=1, description="Validation checks without improvement before stopping.")
    min_delta: float = Field(
        1e-4, ge=0, description="Least fall of val/loss that counts as an improvement for early stopping (the best "
        "epoch's weights are kept whatever it is): on the 48,000-user world the members gained 1e-5 to 6e-5 an epoch "
        "(0.05 %) after their second one, and each such epoch reset the patience.")
    epoch_slates: int | None = Field(
        250_000, ge=1, description="Most training slates per epoch of the response model: on a larger log each epoch "
        "is a fresh random part of this many (as gnn.epoch_rows), so patience costs a fixed amount of work; None = all.")
    batch_size: int = Field(1024, ge=8, description="Slates per step.")
    lr: float = Field(3e-3, gt=0, description="Generator learning rate (Adam).")
    backbone_lr_scale: float = Field(0.0, ge=0, le=1, description="Learning-rate share of the pre-trained backbone "
                                     "(the causal GNN's heads) while the generator is fine-tuned; 0 keeps it frozen (fine-tuning "
                                     "it overfit from the first epoch on the tuning seed).")
    critic_lr: float = Field(1e-3, gt=0, description="Critic learning rate (Adam).")
    n_critic: int = Field(1, ge=1, le=20, description="Critic steps per generator step.")
    gp_weight: float = Field(10.0, ge=0, description="Gradient-penalty weight of the WGAN-GP critics.")
    adversarial_weight: float = Field(0.05, ge=0, description="Weight of the critic's score in the generator's loss.")
    likelihood_weight: float = Field(1.0, ge=0, description="Weight of the importance-weighted likelihood anchor.")
    temperature: float = Field(0.5, gt=0, description="Relaxation temperature of the straight-through click samples.")
    weight_decay: float = Field(1e-5, ge=0, description="Weight decay of the generator.")
    reference_mix: float = Field(0.5, ge=0, le=1, description="α of the reference policy (1 − α)·π0 + α·uniform the "
                                 "slates are importance-weighted toward (0 = the logging policy itself).")
    max_weight: float = Field(10.0, ge=1, description="Clip of a slate's importance weight.")
    ensemble: int = Field(3, ge=1, le=20, description="Simulators trained on different seeds; their spread enters the CIs.")
    user_epochs: int = Field(150, ge=1, description="Epochs of the user generator (WGAN-GP).")
    user_steps: int | None = Field(
        4000, ge=1, description="Most generator steps (batches of 256 users) of the user GAN: fewer epochs than "
        "user_epochs when the users are many, so its cost stops growing with them; None = user_epochs whole passes.")
    user_lr: float = Field(1e-3, gt=0, description="Learning rate of the user generator and its critic (Adam, β = (0, 0.9)).")
    user_variance: float = Field(0.95, gt=0, le=1, description="Share of the user states' variance the user GAN models "
                                 "(on the leading principal axes; the rest is Gaussian).")
    user_axes: int = Field(32, ge=1, description="Most principal axes the user GAN models.")
    generated_users: int = Field(2000, ge=10, description="Users drawn from the user generator for its fidelity check.")
    imitation_epochs: int = Field(3, ge=1, description="Epochs of the logging-policy imitation.")
    imitation_rows: int | None = Field(
        1_000_000, ge=1, description="Most shown rows per epoch of the imitation: on a larger log each epoch is a "
        "fresh random part of this many; None = every shown row every epoch.")
    n_bootstrap: int = Field(200, ge=20, le=10_000, description="Bootstrap resamples of the rounds per ensemble member.")
    alpha: float = Field(0.05, gt=0.0, lt=0.5, description="1 − confidence level of the intervals.")
    max_c2st_auc: float = Field(0.6, gt=0.5, le=1.0, description="The fidelity check fails when the two-sample test's "
                                "AUC (simulated vs held-out real slates) exceeds this; verdicts then say so.")
    max_calibration_error: float = Field(0.01, gt=0, description="The fidelity check fails when a position's simulated "
                                         "click rate is further than this from the held-out one.")
