"""The run report's answer: what the recommender causes and what the team should change, in sentences.

Pure: the contrast stage's table (``contrast/interventions.csv``, one row per policy) and the run's flat
summary in, a list of :class:`Finding` out — each one sentence a person can act on, its words agreeing
with its signs ("lowers … by 90.4%", never "lowers … by -90.4%").

Two quantities per intervention, kept apart on purpose:

- the **lift in the outcome rate** (e.g. the click rate) over the control: what the off-policy
  estimator of record says the intervention's users would do, relative to the control's;
- the **caused engagement**: the part of that outcome the recommendation itself causes, per
  recommendation the user sees, :math:`E_t[\\sum_a \\pi(a \\mid x_t)\\,\\tau(u_t, a)]` with τ the uplift —
  estimated with the causal GNN's τ̂ where the data identify it (``caused_lift`` columns: the
  difference from the control's), exact on the synthetic world (``true_caused_seen``). A policy can raise clicks on what it shows while
  causing less engagement than the control: it shows what users would have found anyway.

:func:`answer` orders the findings: the headline (what causes the most engagement, or where the data
cannot say, what raises the outcome most), the interventions that raise the outcome without causing
engagement, the rest by direction, then what the data cannot tell.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

Kind = Literal["headline", "clicks_not_caused", "raises", "lowers", "no_change", "cannot_tell"]

ESS_MIN_ROUNDS = 100
"""An intervention whose importance weights leave fewer effective rounds than this (or than 1% of the
rounds) is flagged: the weighting estimators' answer for it rests on a handful of rounds."""


@dataclass(frozen=True)
class Finding:
    """One sentence of the answer. ``subject``: the intervention it is about (None for the data)."""

    kind: Kind
    text: str
    subject: str | None = None


def _sentence(text: Any) -> str:
    """``text`` ending in exactly one full stop."""
    return str(text).rstrip().rstrip(".") + "."


def finite_number(value: Any) -> float | None:
    """``value`` as a finite float, else None (missing cells, NaN, text)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def rate_phrase(value: float, low: float, high: float, outcome: str) -> str:
    """"raises the click rate by 4.1% [1.0%, 7.3%]", "lowers … by 90.4% [88.0%, 92.1%]" or
    "does not detectably change the click rate (+2.0% [-1.0%, +5.0%])" — relative lifts."""
    if low > 0:
        return f"raises the {outcome} by {value:.1%} [{low:.1%}, {high:.1%}]"
    if high < 0:
        return f"lowers the {outcome} by {-value:.1%} [{-high:.1%}, {-low:.1%}]"
    return f"does not detectably change the {outcome} ({value:+.1%} [{low:+.1%}, {high:+.1%}])"


def caused_phrase(value: float, low: float, high: float, truth: float | None) -> str:
    """The caused engagement's difference from the control in percentage points per recommendation seen:
    "causes 2.30 points more engagement per recommendation seen than the control [1.90, 2.70]" (+ the truth)."""
    true = f"; true {truth * 100:+.2f}" if truth is not None else ""
    if low > 0:
        return f"causes {value * 100:.2f} points more engagement per recommendation seen than the control [{low * 100:.2f}, {high * 100:.2f}{true}]"
    if high < 0:
        return f"causes {-value * 100:.2f} points less engagement per recommendation seen than the control [{-high * 100:.2f}, {-low * 100:.2f}{true}]"
    return (f"causes no detectable change in engagement per recommendation seen ({value * 100:+.2f} points "
            f"[{low * 100:+.2f}, {high * 100:+.2f}]{true})")


def _true_caused_difference(row: pd.Series, control: pd.Series | None) -> float | None:
    """The exact caused outcome's difference from the control's (synthetic world): per recommendation
    seen where the table has it (the estimand of ``caused_lift``), else per slot."""
    if control is None:
        return None
    column = "true_caused_seen" if finite_number(row.get("true_caused_seen")) is not None else "true_caused"
    own, base = finite_number(row.get(column)), finite_number(control.get(column))
    return own - base if own is not None and base is not None else None


def _interval(row: pd.Series, column: str) -> tuple[float, float, float] | None:
    """(estimate, low, high) of ``column`` (``lift`` or ``caused_lift``) and its ``_low`` / ``_high``; None if one is missing."""
    values = tuple(finite_number(row.get(k)) for k in (column, f"{column}_low", f"{column}_high"))
    return values if all(v is not None for v in values) else None  # type: ignore[return-value]


def _caused(row: pd.Series) -> tuple[float, float, float] | None:
    return _interval(row, "caused_lift")


def _lift(row: pd.Series) -> tuple[float, float, float] | None:
    return _interval(row, "lift")


def is_true(value: Any) -> bool:
    """A CSV cell's boolean (``True``, ``true``, ``1``)."""
    return str(value).strip().lower() in ("true", "1", "1.0")


def candidates(table: pd.DataFrame) -> pd.DataFrame:
    """The interventions a team could deploy: policy swaps with a lift (not the control, not the
    oracles that use the truth, not the feature edits the simulator answers)."""
    rows = table[table["policy"] != "control"]
    if "reference" in rows:
        rows = rows[~rows["reference"].map(is_true)]
    if "kind" in rows:
        rows = rows[rows["kind"].isna() | (rows["kind"] == "")]
    return rows[rows["lift"].notna()] if "lift" in rows else rows.iloc[0:0]


def answer(table: pd.DataFrame | None, summary: Mapping[str, Any]) -> list[Finding]:
    """The findings, headline first; see the module docstring for the order."""
    outcome = str(summary.get("contrast/outcome", "click rate"))
    findings: list[Finding] = []
    if table is None or table.empty:
        reason = summary.get("contrast/skipped", "the contrast stage did not run")
        findings.append(Finding("headline", f"No intervention could be compared with the control: {reason}."))
        return findings + cannot_tell(table, summary)
    control_rows = table[table["policy"] == "control"]
    control = control_rows.iloc[0] if len(control_rows) else None
    rows = candidates(table)
    findings += headline(rows, control, summary, outcome)
    top = findings[0].subject if findings else None
    for _, row in rows.iterrows():
        if row["policy"] == top:
            continue
        finding = intervention_finding(row, control, outcome)
        if finding is not None:
            findings.append(finding)
    order: dict[str, int] = {"headline": 0, "clicks_not_caused": 1, "raises": 2, "lowers": 3, "no_change": 4, "cannot_tell": 5}
    findings.sort(key=lambda f: order[f.kind])  # stable: the table's order within a kind
    return findings + cannot_tell(table, summary)


def headline(rows: pd.DataFrame, control: pd.Series | None, summary: Mapping[str, Any], outcome: str) -> list[Finding]:
    """What causes the most engagement (with its interval, and the truth where known); where no
    caused estimate exists, what raises the outcome the most and why causation cannot be told."""
    with_caused = rows[[_caused(r) is not None for _, r in rows.iterrows()]] if len(rows) else rows
    if len(with_caused):
        best = with_caused.loc[with_caused["caused_lift"].astype(float).idxmax()]
        value, low, high = _caused(best)  # type: ignore[misc]
        lift = _lift(best)
        clicks = f"; it {rate_phrase(*lift, outcome)}" if lift else ""
        truth = _true_caused_difference(best, control)
        if low > 0:
            text = (f"{best['policy']} causes the most engagement: it {caused_phrase(value, low, high, truth)}{clicks}. "
                    "Of the interventions compared, it is the one to try.")
        else:
            text = (f"No intervention causes detectably more engagement than the control; the highest estimate is "
                    f"{best['policy']}'s: it {caused_phrase(value, low, high, truth)}{clicks}.")
        return [Finding("headline", text + _truth_check(rows, control, str(best["policy"])), str(best["policy"]))]
    not_identified = summary.get("causal/identifiable") in (False, "False", 0)
    why = (" Whether it causes more engagement cannot be told from this data: the uplift is not identifiable (below)."
           if not_identified else " No caused-engagement estimate exists for this run (the causal GNN's uplift is missing).")
    raising = rows[rows["lift_low"].astype(float) > 0] if len(rows) else rows
    if len(raising):
        best = raising.loc[raising["lift"].astype(float).idxmax()]
        text = f"{best['policy']} {rate_phrase(*_lift(best), outcome)} over the control, the most of any intervention.{why}"  # type: ignore[misc]
        return [Finding("headline", text.strip(), str(best["policy"]))]
    return [Finding("headline", f"No intervention raises the {outcome} detectably over the control.{why}".strip())]


def _truth_check(rows: pd.DataFrame, control: pd.Series | None, chosen: str) -> str:
    """On the synthetic world: whether the truth agrees with the headline's choice, in one sentence."""
    truths = {str(r["policy"]): _true_caused_difference(r, control) for _, r in rows.iterrows()}
    truths = {k: v for k, v in truths.items() if v is not None}
    if not truths:
        return ""
    best = max(truths, key=truths.__getitem__)
    if best == chosen:
        return f" The synthetic world's truth agrees: {best} causes the most ({truths[best] * 100:+.2f} points)."
    return (f" The synthetic world's truth disagrees: {best} causes the most ({truths[best] * 100:+.2f} points against "
            f"{truths[chosen] * 100:+.2f} for {chosen}), so the causal GNN's uplift misranks these policies in this run.")


def intervention_finding(row: pd.Series, control: pd.Series | None, outcome: str) -> Finding | None:
    """One intervention's sentence: its outcome lift and, where known, the engagement it causes."""
    lift = _lift(row)
    if lift is None:
        return None
    name = str(row["policy"])
    caused = _caused(row)
    truth = _true_caused_difference(row, control)
    rate = rate_phrase(*lift, outcome)
    if caused is not None:
        cause = caused_phrase(*caused, truth)
        if lift[1] > 0 and caused[1] <= 0:
            return Finding("clicks_not_caused", f"{name} {rate} but {cause}: its extra clicks are on items users would "
                                                "have engaged with anyway.", name)
        opposite = (lift[2] < 0 and caused[1] > 0) or (lift[1] > 0 and caused[2] < 0)
        detail = f"{name} {rate} {'but' if opposite else 'and'} {cause}."
    elif truth is not None:
        detail = f"{name} {rate}; in the synthetic world it causes {truth * 100:+.2f} points of engagement per recommendation seen against the control."
        if lift[1] > 0 and truth <= 0:
            return Finding("clicks_not_caused", detail, name)
    else:
        detail = f"{name} {rate}."
    kind: Kind = "raises" if lift[1] > 0 else "lowers" if lift[2] < 0 else "no_change"
    return Finding(kind, detail, name)


def cannot_tell(table: pd.DataFrame | None, summary: Mapping[str, Any]) -> list[Finding]:
    """What this run's data cannot answer, one sentence each."""
    out: list[Finding] = []
    if summary.get("causal/identifiable") in (False, "False", 0):
        out.append(Finding("cannot_tell", f"Uplift is not identifiable: {_sentence(summary.get('causal/identification', 'no reason recorded'))} "
                                          "The lifts above are in the outcome rate, not in the engagement the recommendation causes."))
    n_rounds = finite_number(summary.get("contrast/n_rounds"))
    if table is not None and "ess" in table and n_rounds:
        floor = max(ESS_MIN_ROUNDS, 0.01 * n_rounds)
        for _, row in candidates(table).iterrows():
            ess = finite_number(row.get("ess"))
            if ess is not None and ess < floor:
                out.append(Finding("cannot_tell", f"{row['policy']}: the weighting estimators (IPW, DR) rest on an effective "
                                                  f"sample of {ess:.0f} of {n_rounds:.0f} logged rounds, so its interval is "
                                                  "less reliable than it looks; the logging policy rarely shows what it would show.",
                                   str(row["policy"])))
    if summary.get("simulator/fidelity_passed") in (False, "False", 0):
        edits = [] if table is None or "kind" not in table else list(table.loc[table["kind"].notna() & (table["kind"] != ""), "policy"])
        what = f" so its answers to the what-ifs ({', '.join(map(str, edits))}) are not reported" if edits else " so its answers are not reported"
        out.append(Finding("cannot_tell", f"The user simulator failed its fidelity check ({summary.get('simulator/fidelity', 'no reason recorded')}),{what}."))
    for key, reason in sorted(summary.items()):
        if key.startswith("interventions/") and key.endswith("/skipped") and not str(reason).startswith("it is the control"):
            name = key.split("/")[1]
            out.append(Finding("cannot_tell", f"{name} was not evaluated: {_sentence(reason)}", name))
    if summary.get("contrast/critic_skipped"):
        out.append(Finding("cannot_tell", f"The two-sample critic did not run: {summary['contrast/critic_skipped']}."))
    return out
