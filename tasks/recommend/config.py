"""Settings of the ``recommend`` stage."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from recause.tasks.config import Section

Strategy = Literal["uplift", "relevance", "best_intervention"]


class RecommendConfig(Section):
    """Top-K per user: by the causal GNN's uplift τ̂ (what recommending *changes*), its debiased
    relevance f1 (what the user would engage with if shown), or the intervention with the best lift
    whose interval excludes zero. A strategy the data cannot support falls back (uplift → relevance;
    best_intervention → uplift → relevance) and the run says why."""

    enabled: bool = Field(True, description="Write recommendations.parquet (top-K per user with reasons).")
    strategy: Strategy = Field(
        "uplift", description="uplift: rank by the causal GNN's τ̂; relevance: by its debiased relevance f1; "
        "best_intervention: by the policy of the intervention with the largest lift whose CI excludes zero.")
    k: int = Field(10, ge=1, le=1000, description="Items per user.")
    exploration: float = Field(
        0.1, ge=0.0, le=1.0, description="Share of the k slots (rounded) given to random items the user has not "
        "had, labelled 'exploration': the next log then holds outcomes the model would not have sought.")
    candidates: int = Field(
        100, ge=1, le=100_000, description="Items kept per user, best first, that the lists and the served model are cut "
        "from: a served request's k may not exceed it (the stage and the served model hold users × candidates, never "
        "users × items).")

    @model_validator(mode="after")
    def _k_within_candidates(self) -> RecommendConfig:
        if self.k > self.candidates:
            raise ValueError(f"recommend.k ({self.k}) is more than recommend.candidates ({self.candidates}), the items "
                             "kept per user: raise recommend.candidates")
        return self
