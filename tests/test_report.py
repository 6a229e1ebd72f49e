"""The run report: its answer sentences (hand-built tables), the page (a tiny run folder) and ``recause report``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from recause.flows.report import render, write_report, RunFiles
from recause.tasks.report import answer, caused_phrase, rate_phrase

COLUMNS = ["policy", "reference", "dr", "dr_low", "dr_high", "lift", "lift_low", "lift_high", "caused", "caused_low",
           "caused_high", "caused_lift", "caused_lift_low", "caused_lift_high", "true_caused_seen", "ess", "critic_auc"]


def table() -> pd.DataFrame:
    """The control and four interventions: one causes engagement, one raises clicks without causing any
    (the popularity trap), one lowers both, one changes nothing; plus an oracle yardstick."""
    rows = [
        ["control", False, 0.05, 0.045, 0.055, None, None, None, 0.020, 0.018, 0.022, None, None, None, 0.020, 900.0, None],
        ["uplift", False, 0.06, 0.05, 0.07, 0.20, 0.05, 0.35, 0.043, 0.040, 0.046, 0.023, 0.019, 0.027, 0.041, 400.0, 0.9],
        ["popular", False, 0.09, 0.08, 0.10, 0.80, 0.60, 1.00, 0.012, 0.010, 0.014, -0.008, -0.011, -0.005, 0.011, 30.0, 0.99],
        ["random", False, 0.005, 0.004, 0.006, -0.904, -0.921, -0.88, 0.010, 0.009, 0.011, -0.010, -0.012, -0.008, 0.012, 800.0, 0.7],
        ["same", False, 0.05, 0.045, 0.055, 0.01, -0.05, 0.07, 0.020, 0.018, 0.022, 0.0002, -0.001, 0.0014, 0.020, 850.0, 0.51],
        ["oracle", True, 0.07, 0.06, 0.08, 0.40, 0.20, 0.60, 0.080, 0.070, 0.090, 0.060, 0.050, 0.070, 0.090, 200.0, 0.95],
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


SUMMARY = {"contrast/outcome": "click rate", "contrast/n_rounds": 1000.0, "causal/identifiable": True,
           "run/dataset": "synthetic", "run/preset": "smoke", "validation/passed": True}


def test_phrases_put_the_sign_in_the_word() -> None:
    assert rate_phrase(-0.904, -0.921, -0.88, "click rate") == "lowers the click rate by 90.4% [88.0%, 92.1%]"
    assert rate_phrase(0.041, 0.01, 0.073, "click rate") == "raises the click rate by 4.1% [1.0%, 7.3%]"
    assert rate_phrase(0.02, -0.01, 0.05, "click rate") == "does not detectably change the click rate (+2.0% [-1.0%, +5.0%])"
    # differences in percentage points: 0.023 -> 2.30 points; a fall is said as "less", by its magnitude
    assert caused_phrase(0.023, 0.019, 0.027, 0.021) == (
        "causes 2.30 points more engagement per recommendation seen than the control [1.90, 2.70; true +2.10]")
    assert caused_phrase(-0.008, -0.011, -0.005, None) == (
        "causes 0.80 points less engagement per recommendation seen than the control [0.50, 1.10]")


def test_answer_leads_with_what_causes_engagement_and_flags_the_popularity_trap() -> None:
    findings = answer(table(), SUMMARY)
    kinds = [f.kind for f in findings]
    assert kinds[0] == "headline" and findings[0].subject == "uplift"  # the oracle is a yardstick, never the answer
    assert findings[0].text.startswith("uplift causes the most engagement: it causes 2.30 points more engagement")
    # truth: uplift 0.041 - 0.020 = +2.10 points, the most among the candidates (the oracle's +7.00 is not one)
    assert "The synthetic world's truth agrees: uplift causes the most (+2.10 points)." in findings[0].text
    by_subject = {f.subject: f for f in findings if f.kind != "cannot_tell"}
    assert by_subject["popular"].kind == "clicks_not_caused"
    assert by_subject["popular"].text.startswith("popular raises the click rate by 80.0% [60.0%, 100.0%] but causes 0.80 points less")
    assert by_subject["random"].kind == "lowers" and "lowers the click rate by 90.4% [88.0%, 92.1%] and causes 1.00 points less" in by_subject["random"].text
    assert by_subject["same"].kind == "no_change"
    assert "oracle" not in by_subject
    # order: headline, the trap, then by direction, then what the data cannot tell
    assert kinds == ["headline", "clicks_not_caused", "lowers", "no_change", "cannot_tell"]
    # popular's weights leave 30 effective rounds of 1000 (< 100): flagged
    assert findings[-1].subject == "popular" and "effective sample of 30 of 1000" in findings[-1].text


def test_fewer_clicks_but_more_engagement_is_said_with_but() -> None:
    frame = table()
    frame.loc[frame["policy"] == "random", ["caused_lift", "caused_lift_low", "caused_lift_high"]] = [0.01, 0.005, 0.015]
    [random] = [f for f in answer(frame, SUMMARY) if f.subject == "random"]
    assert random.text.startswith("random lowers the click rate by 90.4% [88.0%, 92.1%] but causes 1.00 points more engagement")


def test_the_truth_can_disagree_with_the_headline() -> None:
    frame = table()
    frame.loc[frame["policy"] == "same", "true_caused_seen"] = 0.050  # truly the best: +3.00 points
    head = answer(frame, SUMMARY)[0].text
    assert "truth disagrees: same causes the most (+3.00 points against +2.10 for uplift)" in head


def test_without_identified_uplift_the_answer_says_what_it_cannot_tell() -> None:
    frame = table().drop(columns=[c for c in COLUMNS if c.startswith(("caused", "true_caused"))])
    reason = "coat: no outcomes without exposure, so the uplift is not identifiable."
    findings = answer(frame, SUMMARY | {"causal/identifiable": False, "causal/identification": reason,
                                        "simulator/fidelity_passed": False, "simulator/fidelity": "position 1 is off",
                                        "interventions/bts/skipped": "no prior",
                                        "interventions/random/skipped": "it is the control: logged by the random policy"})
    assert findings[0].subject == "popular"  # the largest click-rate lift whose interval excludes zero
    assert findings[0].text == ("popular raises the click rate by 80.0% [60.0%, 100.0%] over the control, the most of any "
                                "intervention. Whether it causes more engagement cannot be told from this data: the uplift "
                                "is not identifiable (below).")
    cannot = [f.text for f in findings if f.kind == "cannot_tell"]
    assert cannot[0].startswith(f"Uplift is not identifiable: {reason} The lifts")  # one full stop, not two
    assert any(t.startswith("The user simulator failed its fidelity check (position 1 is off)") for t in cannot)
    assert "bts was not evaluated: no prior." in cannot
    assert not any(t.startswith("random") for t in cannot)  # the control is not a gap in the answer


def test_no_contrast_still_answers_in_a_sentence() -> None:
    findings = answer(None, {"contrast/skipped": "the log has no propensities", "causal/identifiable": False,
                             "causal/identification": "movielens: no unexposed outcomes."})
    assert findings[0].text == "No intervention could be compared with the control: the log has no propensities."
    assert findings[1].kind == "cannot_tell"


def run_folder(root: Path) -> Path:
    from matplotlib import pyplot as plt

    folder = root / "run"
    (folder / "contrast").mkdir(parents=True)
    (folder / "model").mkdir()
    (folder / "summary.json").write_text(json.dumps(SUMMARY | {"mlflow/run_id": "abc123", "data/n_users": 200}))
    (folder / "provenance.json").write_text(json.dumps({"seed": 7, "git_commit": "deadbeef", "versions": {"torch": "2.13.0"}}))
    table().assign(policy=lambda t: t["policy"].replace({"same": "<same>"})).to_csv(folder / "contrast" / "interventions.csv", index=False)
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    fig.savefig(folder / "model" / "causal_effect_map.png")
    plt.close(fig)
    return folder


def test_the_page_is_self_contained_and_starts_with_the_answer(tmp_path: Path) -> None:
    folder = run_folder(tmp_path)
    page = write_report(folder).read_text()
    sections = re.findall(r"<section id='([a-z]+)'>", page)
    assert sections == ["answer", "evidence", "model", "data", "provenance"]
    assert page.index("<section id='answer'>") < page.index("<img")  # nothing but the title above the answer
    assert re.findall(r"(?:src|href)=['\"](https?:|//)", page) == []  # no request leaves the machine
    [image] = re.findall(r"<img src='([^']{0,30})", page)
    assert image.startswith("data:image/png;base64,")
    assert "&lt;same&gt;" in page and "<same>" not in page  # names are escaped
    assert "No training curves: the causal GNN was not trained in this run." in page  # absent figures say why
    assert "deadbeef" in page and "seed" in page


def test_report_command_rebuilds_from_a_folder_and_refuses_others(tmp_path: Path, capsys) -> None:
    from recause.flows.cli import main

    folder = run_folder(tmp_path)
    assert main(["report", str(folder)]) == 0
    assert capsys.readouterr().out.strip() == f"report: {folder / 'report.html'}"
    assert main(["report", str(tmp_path / "run" / "contrast")]) == 2
    assert "has no summary.json: not the folder of a finished Recause run" in capsys.readouterr().err
    assert main(["report", "./nowhere"]) == 2
    store = tmp_path / "no-store.db"  # an MLflow run id against a store that is not there: refused, nothing created
    assert main(["report", "0123abcd", "--tracking-uri", f"sqlite:///{store}"]) == 2
    assert f"no MLflow store at {store}" in capsys.readouterr().err and not store.exists()


def test_clustered_caused_estimate_against_hand_arithmetic() -> None:
    from recause.tasks.contrast.estimation import Compressed, Rounds, caused_estimates, effective_sample_size

    rounds = Rounds(user=np.array([0, 0, 1, 1]), item=np.zeros(4, np.int64), slot=np.zeros(4, np.int64),
                    reward=np.zeros(4), pscore=np.array([0.5, 0.5, 0.25, 0.25]), n_slots=1, control="logging")

    def policy(pi, caused_hat):
        dist = np.stack([pi, 1 - pi], axis=1)[:, :, None]
        return Compressed(dist, np.zeros_like(dist), None, None, np.array(caused_hat, dtype=float))

    compressed = {"control": policy(np.full(4, 0.5), [0.01, 0.01, 0.03, 0.03]),
                  "x": policy(np.array([1.0, 1.0, 0.25, 0.25]), [0.02, 0.02, 0.05, 0.05])}
    out = caused_estimates(compressed, rounds, "control", 0.05)
    value, difference = out["x"]
    assert value.value == pytest.approx(0.035) and difference.value == pytest.approx(0.015)  # (0.01+0.01+0.02+0.02)/4
    assert out["control"][1] is None
    # weights π/p: x → 2, 2, 1, 1; ESS = 6² / (4+4+1+1) = 3.6
    assert effective_sample_size(compressed["x"], rounds) == pytest.approx(3.6)


def test_calibration_table_by_hand() -> None:
    from recause.tasks.train.report import calibration_table

    frame = calibration_table(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0.0, 0.2, 0.4, 0.4]), bins=2)
    # bins of two: predicted (0.1, 0.2) → mean 0.15, true (0.0, 0.2) → 0.1; then 0.35 and 0.4
    assert frame[["pairs", "predicted", "true"]].to_numpy().ravel().tolist() == pytest.approx([2, 0.15, 0.1, 2, 0.35, 0.4])


def test_run_files_need_a_summary(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="has no summary.json"):
        RunFiles.read(tmp_path)
    assert render(RunFiles(tmp_path, {"contrast/skipped": "no propensities"})).count("No intervention could be compared") == 1
