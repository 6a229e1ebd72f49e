"""Metadata that the data contradict, found when a dataset is loaded, before any stage reads a column.

A ``meta.yaml`` says how to read the tables: which columns identify a row, which rows a random
policy logged, what counts as a positive. When it names a column or a value the data do not have,
or declares a property the data do not show, no row-by-row report could help: the fix is in the
metadata. :func:`check_meta` raises a :class:`DatasetError` (exit 3) listing every contradiction.

What the data lack on their own account (a required column, valid values, a positive outcome to
learn from) is validation's to report, row by row (:mod:`recause.validations`, exit 1).
"""

from __future__ import annotations

import math

import pandas as pd

from recause.tasks.data.schema import INTERACTION_REQUIRED, PROVENANCE, Dataset, DatasetError, DatasetMeta

_FALSE = {"false", "f", "no", "n", "0", "0.0"}


def unexposed(interactions: pd.DataFrame) -> pd.Series:
    """Rows whose ``exposed`` reads as false (bools, 0/1 or words such as "no"); all False without the column."""
    if "exposed" not in interactions.columns:
        return pd.Series(False, index=interactions.index)
    values = interactions["exposed"]
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return (values == 0).fillna(False).astype(bool)
    return values.astype("string").str.strip().str.lower().isin(_FALSE).fillna(False).astype(bool)


def unexposed_outcomes(interactions: pd.DataFrame) -> pd.Series:
    """Rows that are unexposed and carry an outcome: what identifies outcomes without exposure."""
    if "outcome" not in interactions.columns:
        return pd.Series(False, index=interactions.index)
    return unexposed(interactions) & interactions["outcome"].notna()


def check_meta(dataset: Dataset, where: str) -> None:
    """Raise :class:`DatasetError` naming ``where`` (the metadata's origin) and each contradiction."""
    problems = number_problems(dataset.meta) + column_problems(dataset) + property_problems(dataset)
    if problems:
        raise DatasetError(f"{where} contradicts the data: " + "; ".join(problems) + ".")


def number_problems(meta: DatasetMeta) -> list[str]:
    """Thresholds must be finite, and a positive must be possible without every outcome being one."""
    low, high = meta.outcome_range
    values = {"positive_threshold": meta.positive_threshold, "outcome_range low": low, "outcome_range high": high}
    bad = [f"{name} is {value}, expected a finite number" for name, value in values.items() if not math.isfinite(value)]
    if bad:
        return bad
    if not low < meta.positive_threshold <= high:
        return [f"positive_threshold {meta.positive_threshold:g} lies outside outcome_range ({low:g}, {high:g}], so "
                f"{'no' if meta.positive_threshold > high else 'every'} outcome would count as a positive"]
    return []


def column_problems(dataset: Dataset) -> list[str]:
    """Every column the metadata names exists (required columns are validation's to report)."""
    meta, inter = dataset.meta, dataset.interactions
    source = meta.sources.get("interactions", "the interactions table")
    present = [c for c in inter.columns if c not in PROVENANCE]
    listed = f"(its columns: {', '.join(map(str, present)) or 'none'})"
    out = []
    if not meta.key_columns:
        out.append("key_columns is empty, so nothing identifies a row and duplicates could not be found")
    for field, columns, purpose in (
        ("key_columns", meta.key_columns, "the duplicate check needs every key column"),
        ("context_columns", meta.context_columns, "the stages read them as per-row context"),
    ):
        missing = [c for c in columns if c not in present and c not in INTERACTION_REQUIRED]
        if missing:
            out.append(f"{field} names {', '.join(map(repr, missing))}, which {source} does not have {listed}; {purpose}")
    return out


def property_problems(dataset: Dataset) -> list[str]:
    """The declared randomized policy and unexposed outcomes are in the data."""
    meta, inter = dataset.meta, dataset.interactions
    source = meta.sources.get("interactions", "the interactions table")
    out = []
    policy = meta.randomized_policy
    if policy is not None:
        if "policy" not in inter.columns:
            out.append(f"randomized_policy is {policy!r}, but {source} has no 'policy' column to say which rows "
                       "that policy logged (the randomized split tests on them)")
        else:
            found = inter["policy"].dropna().astype("string").str.strip()
            if not (found == policy).any():
                seen = ", ".join(map(repr, sorted(found.unique())[:5])) or "none"
                out.append(f"randomized_policy is {policy!r}, but no row of {source} has that value in column "
                           f"'policy' (values found: {seen})")
    if meta.has_unexposed_outcomes and {"exposed", "outcome"} <= set(inter.columns):
        if not unexposed_outcomes(inter).any():
            out.append(f"has_unexposed_outcomes is true, but no row of {source} has 'exposed' false with an outcome, "
                       "so outcomes without exposure cannot be learned; set it to false or add those rows")
    return out
