"""The contrast stage's result: one row per policy, flat metrics, and a verdict per intervention.

Where the truth is known (the synthetic world's exact values, a policy's own on-policy log) every
estimate is scored against it: relative errors, CI coverage and the Kendall τ between estimated
and true lifts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recause.models.ope.comparison import Lift
from recause.tasks.contrast.config import ContrastConfig
from recause.tasks.contrast.estimation import Interval, Rounds


def verdict(name: str, lift: Lift, outcome: str) -> str:
    """"raises the click rate by +4.1% [+1.0%, +7.3%]" or "no detectable change (...)"."""
    r = lift.relative
    return verdict_line(name, r.value, r.low, r.high, outcome)


def verdict_line(name: str, value: float, low: float, high: float, outcome: str) -> str:
    """The verdict of a relative lift ``value`` with interval [``low``, ``high``], the word carrying the
    sign: "raises … by 4.1% [1.0%, 7.3%]", "lowers … by 90.4% [88.0%, 92.1%]" (a fall's magnitudes)."""
    if low > 0:
        return f"{name}: raises the {outcome} by {value:.1%} [{low:.1%}, {high:.1%}]"
    if high < 0:
        return f"{name}: lowers the {outcome} by {-value:.1%} [{-high:.1%}, {-low:.1%}]"
    return f"{name}: no detectable change in the {outcome} ({value:+.1%} [{low:+.1%}, {high:+.1%}])"


@dataclass(frozen=True)
class ContrastResult:
    """One row per policy (control first) with estimates, lifts, truth and beyond-accuracy metrics;
    the flat metrics for the summary; one verdict line per intervention; what was skipped and why."""

    table: pd.DataFrame
    metrics: dict[str, float | str]
    verdicts: list[str]
    skipped: dict[str, str]


def assemble(policies, lifts, truth, caused, critic, beyond, rounds: Rounds, skipped, config: ContrastConfig, outcome: str,
             estimated_caused: Mapping[str, tuple[Interval, Interval | None]] | None = None,
             ess: Mapping[str, float] | None = None, references: set[str] | frozenset[str] = frozenset(),
             caused_seen: Mapping[str, float] | None = None) -> ContrastResult:
    """The table, metrics and verdicts. ``estimated_caused``: name -> (caused outcome per round by τ̂,
    its difference from the control's), where the causal GNN estimated the uplift; ``ess``: name ->
    the importance weights' effective sample size; ``references``: interventions that use the truth
    (the oracles) — yardsticks, not candidates to deploy; ``caused_seen``: name -> the exact outcome caused
    per recommendation seen (synthetic world), the truth of the τ̂ estimate."""
    estimated_caused, ess, caused_seen = estimated_caused or {}, ess or {}, caused_seen or {}
    record = config.estimator_of_record
    names = list(policies)
    rows, metrics, verdicts = [], {}, []
    metrics["contrast/n_rounds"] = float(len(rounds.user))
    metrics["contrast/control"] = "logging policy" if rounds.control == "logging" else "uniform random"
    metrics["contrast/estimator_of_record"] = record
    for name in names:
        row: dict[str, float | str] = {"policy": name, "reference": name in references}
        if name in ess:
            row["ess"] = ess[name]
            metrics[f"interventions/{name}/ess"] = ess[name]
        for est, by_name in lifts.items():
            value = next(iter(by_name.values())).control if name == "control" else by_name[name].treatment
            row |= {f"{est}": value.value, f"{est}_low": value.low, f"{est}_high": value.high}
            metrics |= {f"interventions/{name}/{est}/estimate": value.value,
                        f"interventions/{name}/{est}/ci_low": value.low, f"interventions/{name}/{est}/ci_high": value.high}
            if name in truth and truth[name] != 0:
                metrics[f"interventions/{name}/{est}/relative_error"] = abs(value.value / truth[name] - 1.0)
        if name != "control":
            lift = lifts[record][name]
            row |= {"lift": lift.relative.value, "lift_low": lift.relative.low, "lift_high": lift.relative.high,
                    "absolute_lift": lift.difference.value, "critic_auc": critic[name]}
            metrics |= {f"interventions/{name}/lift": lift.relative.value, f"interventions/{name}/ci_low": lift.relative.low,
                        f"interventions/{name}/ci_high": lift.relative.high, f"interventions/{name}/absolute_lift": lift.difference.value,
                        f"interventions/{name}/critic_auc": critic[name]}
            verdicts.append(verdict(name, lift, outcome))
        if name in truth:
            row["true_value"] = truth[name]
            metrics[f"interventions/{name}/true_value"] = truth[name]
            if name != "control" and "control" in truth and truth["control"] != 0:
                row["true_lift"] = truth[name] / truth["control"] - 1.0
                metrics[f"interventions/{name}/true_lift"] = row["true_lift"]
        if name in caused:
            row["true_caused"] = caused[name]
            metrics[f"interventions/{name}/true_caused_value"] = caused[name]
        if name in caused_seen:
            row["true_caused_seen"] = caused_seen[name]
            metrics[f"interventions/{name}/true_caused_seen"] = caused_seen[name]
        if name in estimated_caused:
            value, difference = estimated_caused[name]
            row |= {"caused": value.value, "caused_low": value.low, "caused_high": value.high}
            metrics |= {f"interventions/{name}/caused/estimate": value.value, f"interventions/{name}/caused/ci_low": value.low,
                        f"interventions/{name}/caused/ci_high": value.high}
            if difference is not None:
                row |= {"caused_lift": difference.value, "caused_lift_low": difference.low, "caused_lift_high": difference.high}
                metrics |= {f"interventions/{name}/caused_lift": difference.value,
                            f"interventions/{name}/caused_lift_ci_low": difference.low,
                            f"interventions/{name}/caused_lift_ci_high": difference.high}
        row |= beyond[name]
        metrics |= {f"interventions/{name}/{key}": value for key, value in beyond[name].items()}
        rows.append(row)
    metrics |= _agreement_with_truth(lifts[record], truth, names)
    of_record = config.of_record if config.of_record in names else ("bts" if "bts" in names else next((n for n in names if n != "control"), None))
    if of_record is not None:
        metrics["ope/policy"] = of_record
        for est in lifts:
            metrics[f"ope/{est}/estimate"] = metrics[f"interventions/{of_record}/{est}/estimate"]
            if f"interventions/{of_record}/{est}/relative_error" in metrics:
                metrics[f"ope/{est}/relative_error"] = metrics[f"interventions/{of_record}/{est}/relative_error"]
    metrics |= {f"interventions/{name}/skipped": reason for name, reason in skipped.items()}
    return ContrastResult(pd.DataFrame(rows), metrics, verdicts, skipped)


def _agreement_with_truth(lifts: Mapping[str, Lift], truth: Mapping[str, float], names: list[str]) -> dict[str, float]:
    """Where the truth is known for the control and ≥ 3 interventions: Kendall τ between estimated and
    true lifts, and the share of value CIs (estimator of record) that cover the true value."""
    known = [n for n in names if n != "control" and n in truth and "control" in truth]
    if len(known) < 3 or truth["control"] == 0:
        return {}
    from scipy.stats import kendalltau

    estimated = [lifts[n].relative.value for n in known]
    true = [truth[n] / truth["control"] - 1.0 for n in known]
    covered = [lifts[n].treatment.low <= truth[n] <= lifts[n].treatment.high for n in known]
    covered.append(next(iter(lifts.values())).control.low <= truth["control"] <= next(iter(lifts.values())).control.high)
    return {"interventions/kendall_tau": float(kendalltau(estimated, true).statistic), "interventions/ci_coverage": float(np.mean(covered))}
