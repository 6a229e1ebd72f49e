"""The base every stage's configuration section derives from.

A section is a pydantic model: typed fields with descriptions and bounds (the Prefect UI renders
them as the run form), unknown keys are errors rather than silently ignored, and assignments are
validated. :class:`recause.flows.config.PipelineConfig` composes one section per stage.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ConfigurationError(ValueError):
    """A setting names something the data do not have (a topic, a segment, an item): the message
    names it and what exists instead. The CLI reports it as a usage error (exit 2)."""
