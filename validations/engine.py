"""Run expectation suites with Great Expectations 1.x on in-memory frames.

One :class:`GxSession` per dataset validation: an ephemeral (in-memory) data context with a
pandas data source, one asset + suite + checkpoint per table. Results are converted into
:class:`~recause.validations.results.Failure` records that name rows by the frame's index labels.
The session keeps the context so :meth:`GxSession.build_data_docs` can render the HTML report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from recause.validations.results import Failure
from recause.validations.suites import TABLE_LEVEL, describe


class GxSession:
    """An ephemeral GX context for validating one dataset's tables (no files are written)."""

    def __init__(self, name: str) -> None:
        import logging

        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        # GX announces the temporary folder of its unused default docs site at INFO on every context
        logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)

        self._gx = gx
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self._source = self.context.data_sources.add_pandas(name)
        self.n_expectations = 0

    def run(self, table: str, frame: pd.DataFrame, expectations: list[Any]) -> list[Failure]:
        """Validate ``frame`` (unique index) against ``expectations``; failures name index labels."""
        if not frame.index.is_unique:
            raise ValueError(f"{table}: validation needs a unique index to name rows")
        gx = self._gx
        batch = self._source.add_dataframe_asset(table).add_batch_definition_whole_dataframe(table)
        suite = self.context.suites.add(gx.ExpectationSuite(name=table, expectations=expectations))
        definition = self.context.validation_definitions.add(gx.ValidationDefinition(name=table, data=batch, suite=suite))
        checkpoint = self.context.checkpoints.add(
            gx.Checkpoint(name=table, validation_definitions=[definition], result_format={"result_format": "COMPLETE"})
        )
        result = checkpoint.run(batch_parameters={"dataframe": frame})
        self.n_expectations += len(expectations)
        failures: list[Failure] = []
        for run in result.run_results.values():
            failures += [_to_failure(table, r) for r in run.results if not r.success]
        return failures

    def build_data_docs(self, folder: Path) -> Path:
        """Render the HTML Data Docs of every validation run in this session into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        self.context.add_data_docs_site(
            site_name="recause",
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(folder)},
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
        self.context.build_data_docs(site_names=["recause"])
        return folder / "index.html"


def _to_failure(table: str, result: Any) -> Failure:
    config = result.expectation_config
    kwargs = dict(config.kwargs)
    column = kwargs.get("column") or ",".join(kwargs.get("column_list", [])) or None
    detail = describe(config.type, kwargs)
    exception = result.exception_info or {}
    if exception.get("raised_exception"):
        message = str(exception.get("exception_message", "")).splitlines()[0][:200]
        return Failure(table, column, config.type, "table", f"{detail}; the check could not run: {message}")
    info = result.result or {}
    if config.type in TABLE_LEVEL:
        observed = info.get("observed_value")
        return Failure(table, column, config.type, "table", detail, observed=None if observed is None else str(observed))
    rows = pd.Index(info.get("unexpected_index_list") or [])
    samples = tuple(str(v) for v in (info.get("partial_unexpected_list") or [])[:5])
    return Failure(table, column, config.type, "row", detail, rows=rows, samples=samples)
