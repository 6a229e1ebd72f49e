"""Settings of the validation stage (composed into :class:`recause.flows.config.PipelineConfig`)."""

from __future__ import annotations

from pydantic import Field

from recause.tasks.config import Section


class ValidationConfig(Section):
    """When a run stops on bad rows, minimum sizes, and whether to render Data Docs."""

    max_failed_fraction: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description="The run continues only if, in every table, the fraction of rows quarantined is "
        "at most this. 0 = any bad row stops the run (after quarantining it).",
    )
    min_users: int = Field(2, ge=1, description="Fewest users the splits and metrics need.")
    min_items: int = Field(2, ge=1, description="Fewest items the splits and metrics need.")
    min_randomized_rows: int = Field(
        10,
        ge=2,
        description="Fewest rows of the randomized policy (meta.randomized_policy) a randomized split needs: "
        "a share validates, the rest tests (with 4, nothing is left for validation and the simulate stage fails).",
    )
    data_docs: bool = Field(True, description="Render the Great Expectations HTML report (Data Docs).")
