"""The simulator's answers beside the off-policy estimates: a value for every policy swap, and the
feature edits that only a simulator can answer, with their exact truth on the synthetic world.

Metrics: ``interventions/<name>/simulator/{estimate,ci_low,ci_high,relative_error}`` and
``interventions/<name>/simulator_lift`` for policies; for a feature edit ``interventions/<name>/{lift,
ci_low,ci_high}`` (the simulator's total effect), ``.../direct_lift`` (+ CI), ``.../simulator/estimate``
and, on the synthetic world, ``.../true_lift``, ``.../true_direct_lift``, ``.../true_value``. A
simulator that failed its fidelity check says so in each verdict instead of reporting a finding.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from recause.tasks.contrast.result import ContrastResult, verdict_line
from recause.tasks.simulate.answers import EditAnswer
from recause.tasks.simulate.simulator import SimEstimate


def add_simulated(result: ContrastResult, policies: Mapping[str, tuple[SimEstimate, SimEstimate | None]],
                  edits: Mapping[str, EditAnswer], outcome: str, fidelity_passed: bool, fidelity: str) -> ContrastResult:
    """``result`` with simulator columns for the policies and one row per feature edit."""
    table = result.table.copy()
    metrics = dict(result.metrics)
    verdicts = list(result.verdicts)
    truth = dict(zip(table["policy"], table["true_value"])) if "true_value" in table else {}
    for name, (value, lift) in policies.items():
        at = table["policy"] == name
        table.loc[at, ["sim", "sim_low", "sim_high"]] = [value.value, value.low, value.high]
        metrics |= {f"interventions/{name}/simulator/estimate": value.value, f"interventions/{name}/simulator/ci_low": value.low,
                    f"interventions/{name}/simulator/ci_high": value.high}
        if lift is not None:
            table.loc[at, ["sim_lift", "sim_lift_low", "sim_lift_high"]] = [lift.value, lift.low, lift.high]
            metrics[f"interventions/{name}/simulator_lift"] = lift.value
        if truth.get(name):
            metrics[f"interventions/{name}/simulator/relative_error"] = abs(value.value / truth[name] - 1.0)
    rows = []
    for name, answer in edits.items():
        row = {"policy": name, "kind": "feature edit", "sim": answer.total.value, "sim_low": answer.total.low,
               "sim_high": answer.total.high, "lift": answer.total_lift.value, "lift_low": answer.total_lift.low,
               "lift_high": answer.total_lift.high, "direct_lift": answer.direct_lift.value,
               "direct_lift_low": answer.direct_lift.low, "direct_lift_high": answer.direct_lift.high}
        metrics |= {f"interventions/{name}/lift": answer.total_lift.value, f"interventions/{name}/ci_low": answer.total_lift.low,
                    f"interventions/{name}/ci_high": answer.total_lift.high, f"interventions/{name}/direct_lift": answer.direct_lift.value,
                    f"interventions/{name}/direct_ci_low": answer.direct_lift.low, f"interventions/{name}/direct_ci_high": answer.direct_lift.high,
                    f"interventions/{name}/simulator/estimate": answer.total.value,
                    f"interventions/{name}/simulator/ci_low": answer.total.low, f"interventions/{name}/simulator/ci_high": answer.total.high}
        if answer.true_control:
            true_lift = answer.true_total / answer.true_control - 1.0
            true_direct = answer.true_direct / answer.true_control - 1.0
            row |= {"true_value": answer.true_total, "true_lift": true_lift, "true_direct_lift": true_direct}
            metrics |= {f"interventions/{name}/true_value": answer.true_total, f"interventions/{name}/true_lift": true_lift,
                        f"interventions/{name}/true_direct_lift": true_direct}
        rows.append(row)
        line = verdict_line(f"{name} (simulated)", answer.total_lift.value, answer.total_lift.low, answer.total_lift.high, outcome)
        verdicts.append(line if fidelity_passed else f"{name}: not reported — the simulator failed its fidelity check ({fidelity}); "
                        f"its answer was {answer.total_lift.value:+.1%}")
    if rows:
        table = pd.concat([table, pd.DataFrame(rows)], ignore_index=True)
    metrics["contrast/simulator_fidelity_passed"] = fidelity_passed
    return ContrastResult(table, metrics, verdicts, result.skipped)
