"""Crash, recover, resume: real ``recause run`` processes killed with SIGKILL as each stage starts.

For every stage of the pipeline, on a new output root: start ``recause run --preset smoke``, kill
it (SIGKILL, the process alone, as the OOM killer or ``kill -9`` would) the moment it logs
``stage <name>: started``, then run the same command again. A kill counts as *recovered* when

- the descendants the killed run had (the temporary Prefect API server) are gone within 15 s,
- the next run exits 0 and reuses exactly the stages the killed run had completed (load and
  validate always run),
- no MLflow run is left RUNNING (the killed run's are KILLED with an end time and a
  ``recause.crash`` tag) and no Prefect flow or task run is left running (the killed flow run is
  CRASHED),
- its summary equals an uninterrupted run's (timings and ids aside).

Then four ``recause run --preset smoke`` start together on one new output root (four folders,
four complete summaries, four FINISHED MLflow runs, no "database is locked").

The resume fraction: the seconds of the run after a kill in the last stage (``contrast``) over the
seconds of a ``--fresh`` run of the same config in the same root (every stage recomputed, the
databases already created), for ``--fraction-preset`` (default: ``default``, the main job).

    .venv/bin/python bench/resume.py                 # ~25 min
    .venv/bin/python bench/resume.py --stages train contrast --fraction-preset smoke   # ~6 min
"""

from __future__ import annotations

import _common  # noqa: F401  (one thread, offline; before numpy and torch)

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import faults  # noqa: E402


def check_kill(root: Path, stage: str, reference: dict, preset: str) -> dict:
    killed = faults.kill_at_stage(root, stage, "--preset", preset)
    left = faults.survivors(killed.children)
    resumed = faults.run(root, "--preset", preset)
    expected = list(faults.CACHED_STAGES[: faults.CACHED_STAGES.index(stage)]) if stage in faults.CACHED_STAGES else []
    runs = faults.mlflow_runs(root)
    flows, tasks = faults.prefect_runs(root)
    diffs = faults.differences(reference, faults.comparable(resumed.summary())) if resumed.returncode == 0 else ["failed"]
    checks = {
        "server_gone": not left,
        "exit_0": resumed.returncode == 0,
        "reused_ok": resumed.reused == expected,
        "mlflow_closed": not [r for r in runs if r["status"] == "RUNNING"]
        and all(r["end_time"] and "recause.crash" in r["tags"] for r in runs if r["status"] == "KILLED")
        and any(r["status"] == "KILLED" for r in runs),
        "prefect_closed": sorted(s for _, s in flows) == ["COMPLETED", "CRASHED"]
        and not [t for t in tasks if t[1] in ("RUNNING", "PENDING")],
        "same_summary": diffs == [],
    }
    return {"stage": stage, "killed_after_s": killed.seconds, "resume_s": resumed.seconds, "reused": ",".join(resumed.reused),
            **checks, "recovered": all(checks.values()), "diffs": diffs[:3]}


def concurrent(root: Path, preset: str, n: int = 4) -> tuple[int, list[str]]:
    processes = [
        subprocess.Popen(faults.command("run", "--preset", preset), cwd=faults.ROOT, env=faults.environment(root),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(n)
    ]
    outputs = [p.communicate(timeout=1800) for p in processes]
    done = [faults.Finished(p.returncode, out, err, 0.0) for p, (out, err) in zip(processes, outputs)]
    problems = []
    folders = {d.summary_path.parent for d in done if d.summary_path}
    parents = [r for r in faults.mlflow_runs(root) if "recause.stage" not in r["tags"]]
    for i, d in enumerate(done):
        if d.returncode != 0:
            problems.append(f"run {i} exit {d.returncode}: {d.stderr.strip().splitlines()[-1:]}")
        if "database is locked" in d.stdout + d.stderr:
            problems.append(f"run {i}: database is locked")
    ok = sum(d.returncode == 0 and d.summary_path is not None and all(f"stage/{s}/seconds" in d.summary() for s in faults.STAGES)
             for d in done)
    ok = min(ok, len(folders), sum(r["status"] == "FINISHED" for r in parents))
    return ok, problems


def resume_fraction(root: Path, preset: str) -> tuple[float, float, float]:
    faults.kill_at_stage(root, "contrast", "--preset", preset)
    resumed = faults.run(root, "--preset", preset, timeout=3600)
    fresh = faults.run(root, "--preset", preset, "--fresh", timeout=3600)
    assert resumed.returncode == 0 and fresh.returncode == 0, (resumed.stderr[-2000:], fresh.stderr[-2000:])
    return resumed.seconds, fresh.seconds, resumed.seconds / fresh.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", nargs="+", default=list(faults.STAGES), choices=faults.STAGES)
    parser.add_argument("--preset", default="smoke", help="preset of the kill sweep and the concurrent runs")
    parser.add_argument("--fraction-preset", default="default", help="preset of the resume-fraction measurement")
    args = parser.parse_args()
    print(_common.header(), flush=True)
    with tempfile.TemporaryDirectory(prefix="recause-resume-") as tmp:
        base = Path(tmp)
        start = time.perf_counter()
        reference_run = faults.run(base / "reference", "--preset", args.preset)
        assert reference_run.returncode == 0, reference_run.stderr[-3000:]
        reference = faults.comparable(reference_run.summary())
        print(f"uninterrupted {args.preset} run on a new root: {reference_run.seconds:.1f} s", flush=True)
        rows = []
        for stage in args.stages:
            row = check_kill(base / f"kill-{stage}", stage, reference, args.preset)
            rows.append(row)
            print(f"  kill at {stage:<9} after {row['killed_after_s']:5.1f} s; next run {row['resume_s']:5.1f} s reused "
                  f"[{row['reused']}] -> {'recovered' if row['recovered'] else 'NOT recovered'} "
                  + ("" if row["recovered"] else str({k: v for k, v in row.items() if v is False or k == 'diffs'})), flush=True)
        ok, problems = concurrent(base / "concurrent", args.preset)
        print(f"4 concurrent runs: {ok}/4 complete" + (f"; problems: {problems}" if problems else ""), flush=True)
        resumed_s, fresh_s, fraction = resume_fraction(base / "fraction", args.fraction_preset)
        print(f"{args.fraction_preset}: resume after a kill in contrast {resumed_s:.1f} s, --fresh run {fresh_s:.1f} s", flush=True)
        print()
        columns = ["stage", "killed after s", "next run s", "reused", "server gone", "runs closed", "same summary", "recovered"]
        print(_common.table([dict(zip(columns, [
            r["stage"], f"{r['killed_after_s']:.1f}", f"{r['resume_s']:.1f}", r["reused"] or "-", r["server_gone"],
            r["mlflow_closed"] and r["prefect_closed"], r["same_summary"], r["recovered"]])) for r in rows], columns))
        print(f"whole bench {time.perf_counter() - start:.0f} s; load {_common.load_average()}")
        recovered = sum(r["recovered"] for r in rows)
        print(f"RESULT kills={len(rows)} recovered={recovered} resume_fraction={fraction:.3f} "
              f"resume_seconds={resumed_s:.1f} fresh_seconds={fresh_s:.1f} concurrent_ok={ok}/4")


if __name__ == "__main__":
    main()
