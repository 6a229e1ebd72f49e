"""Settings of the contrast stage: which interventions, which estimators, how many resamples."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from recause.tasks.config import Section
from recause.tasks.contrast.interventions import DEFAULT_INTERVENTIONS, Intervention

EstimatorName = Literal["dm", "ipw", "snipw", "dr", "sndr", "switch-dr", "dr-os"]


class ContrastConfig(Section):
    """The contrastive evaluation: every intervention against the control on the same logged rounds."""

    enabled: bool = Field(True, description="Run the contrastive evaluation of the interventions.")
    interventions: list[Intervention] = Field(
        default_factory=lambda: [s.model_copy() for s in DEFAULT_INTERVENTIONS],
        description="What-ifs to compare with the control; ones the data cannot support are skipped and said so.",
    )
    estimators: list[EstimatorName] = Field(["dm", "ipw", "snipw", "dr", "sndr", "switch-dr", "dr-os"], description="Off-policy estimators to report.")
    estimator_of_record: EstimatorName = Field("dr", description="The estimator behind interventions/<name>/lift.")
    of_record: str | None = Field(None, description="Intervention behind ope/<estimator>/...; default: bts if run, else the first.")
    n_bootstrap: int = Field(500, ge=50, le=20_000, description="Bootstrap resamples of the rounds.")
    alpha: float = Field(0.05, gt=0.0, lt=0.5, description="1 − confidence level of the intervals.")
    max_rounds: int = Field(50_000, ge=100, description="Logged rounds used at most (a seeded sample beyond).")
    reward_folds: int = Field(2, ge=1, le=10, description="Cross-fitting folds of the reward model.")
    k: int = Field(10, ge=1, description="List length of the beyond-accuracy metrics.")
    critic_users: int = Field(1000, ge=20, description="Users sampled for the critic and the beyond-accuracy metrics.")
    critic_epochs: int = Field(200, ge=10, description="Training steps of the critic.")
