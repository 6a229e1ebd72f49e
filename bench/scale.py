"""How Recause's cost grows with the work: per-stage seconds and peak memory by world size and task runner.

Each cell is one real ``recause run --dataset synthetic`` (a subprocess, one torch thread, its own
output root, ``--fresh``): the synthetic world at a size, under a task runner. The summary it writes
holds every stage's seconds (``stage/<name>/seconds``) and peak resident memory of the run's process
tree during the stage (``stage/<name>/peak_rss_gb``, :mod:`recause.flows.memory`); the world's size
is ``data/n_interactions``. Sizes:

    smoke    the smoke preset (200 users × 150 items, slates of 5)
    default  the default preset (3,000 users × 2,000 items, ~317 k interactions)
    4x       the default preset with 12,000 users (~1.27 M)
    16x      the default preset with 48,000 users (~5.1 M)
    wide     the default preset with 8,000 items (the catalogue's own cost: the interactions do not grow)

The catalogue stays at 2,000 items from ``default`` to ``16x``: the interactions grow with the users, as
a service's log does, and whatever a stage does per user × item (full-catalogue ranking, candidates)
grows with them. ``wide`` shows what a four-times catalogue costs at the default's interactions.

Then, per stage and for the whole run, the slope of log(seconds) on log(interactions) over the sizes
``default``, ``4x`` and ``16x`` (least squares; needs two of them), the peak memory of the largest size run, and
for each size run under both runners the sharded stages' wall time under Dask over sequential.
A cell that fails or passes ``--timeout`` is reported as such (its exit code or "timeout") and
left out of the fits. Writes ``scale.json`` and the log-log plot ``scale.png`` (``--out``).

    .venv/bin/python bench/scale.py                                   # smoke and default, sequential
    .venv/bin/python bench/scale.py --sizes smoke default 4x --runners sequential dask
    .venv/bin/python bench/scale.py --cells default:sequential default:dask 4x:sequential
    .venv/bin/python bench/scale.py --from-json outputs/bench/scale/scale.json   # re-print, re-plot
"""

from __future__ import annotations

import _common  # noqa: F401  (one thread, offline; before numpy and torch)

import argparse
import json
import math
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
import faults  # noqa: E402

SIZES: dict[str, tuple[str, ...]] = {
    "smoke": ("--preset", "smoke"),
    "default": ("--preset", "default"),
    "4x": ("--preset", "default", "--set", "world.n_users=12000"),
    "16x": ("--preset", "default", "--set", "world.n_users=48000"),
    "wide": ("--preset", "default", "--set", "world.n_items=8000"),
}
RUNNERS: dict[str, tuple[str, ...]] = {
    "sequential": (),
    "dask": ("--set", "runtime.task_runner=dask", "--set", "runtime.dask_workers=2"),
}
# The stages whose work is sharded across the task runner's workers (README, "Scaling out"); features since
# 2026-12-05 (its text embedding). Earlier records' ratios were over evaluate and contrast: printed beside.
SHARDED = ("features", "evaluate", "contrast")
SHARDED_BEFORE = ("evaluate", "contrast")
LARGE = "16x"  # the world of ≥ 5 M interactions
FITTED = ("default", "4x", "16x")  # the slope: from the default up, at one catalogue (smoke is fixed costs; wide is items)


def run_cell(size: str, runner: str, timeout: float, seed: int, log: Path) -> dict:
    """One ``recause run`` of ``size`` under ``runner``: its stage seconds and peaks, or why it has none.
    The run's output goes to ``log`` (each model's epochs and patience, the simulator's parts)."""
    args = (*SIZES[size], *RUNNERS[runner], "--set", f"runtime.seed={seed}", "--fresh")
    row: dict = {"size": size, "runner": runner}
    with tempfile.TemporaryDirectory(prefix=f"recause-scale-{size}-") as root:
        start = time.perf_counter()
        try:
            done = faults.run(Path(root), *args, timeout=timeout)
        except subprocess.TimeoutExpired as expired:
            output = expired.stdout.decode() if isinstance(expired.stdout, bytes) else (expired.stdout or "")
            log.write_text(output)
            stages, peaks, running = finished_stages(output)
            return row | {"status": f"timeout in {running}" if running else "timeout", "wall_s": time.perf_counter() - start,
                          "stages": stages, "peak_gb": peaks}
        row["wall_s"] = done.seconds
        log.write_text((done.stdout or "") + (done.stderr or ""))
        if done.returncode != 0 or done.summary_path is None:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            return row | {"status": f"exit {done.returncode}", "error": " | ".join(tail)}
        summary = done.summary()
    stages = {k.split("/")[1]: v for k, v in summary.items() if k.startswith("stage/") and k.endswith("/seconds")}
    peaks = {k.split("/")[1]: v for k, v in summary.items() if k.startswith("stage/") and k.endswith("/peak_rss_gb")}
    return row | {"status": "ok", "interactions": int(summary["data/n_interactions"]), "stages": stages, "peak_gb": peaks}


FINISHED = re.compile(r"stage (\S+): finished in ([0-9.]+) s, peak ([0-9.]+) GiB")
STARTED = re.compile(r"stage (\S+): started")


def finished_stages(log: str) -> tuple[dict[str, float], dict[str, float], str | None]:
    """From a run's log: each finished stage's seconds and peak GiB, and the stage it was in when it stopped."""
    stages = {m.group(1): float(m.group(2)) for m in FINISHED.finditer(log)}
    peaks = {m.group(1): float(m.group(3)) for m in FINISHED.finditer(log)}
    started = [m.group(1) for m in STARTED.finditer(log)]
    running = started[-1] if started and started[-1] not in stages else None
    return stages, peaks, running


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of log(y) on log(x); None with fewer than two distinct x."""
    points = [(x, y) for x, y in points if x > 0 and y > 0]
    if len({x for x, _ in points}) < 2:
        return None
    lx, ly = [math.log(x) for x, _ in points], [math.log(y) for _, y in points]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def fitted(rows: list[dict], runner: str = "sequential") -> list[dict]:
    """The runner's successful cells of the sizes in :data:`FITTED`, smallest first."""
    keep = [r for r in rows if r["runner"] == runner and r["status"] == "ok" and r["size"] in FITTED]
    return sorted(keep, key=lambda r: r["interactions"])


def slopes(rows: list[dict]) -> dict[str, float | None]:
    """Per stage (and ``total``, the sum of the stages) the log-log slope of seconds on interactions."""
    cells = fitted(rows)
    names = sorted({s for r in cells for s in r["stages"]})
    out = {s: slope([(r["interactions"], r["stages"].get(s, 0.0)) for r in cells]) for s in names}
    out["total"] = slope([(r["interactions"], sum(r["stages"].values())) for r in cells])
    return out


def dask_speedups(rows: list[dict], stages: tuple[str, ...] = SHARDED) -> dict[str, float]:
    """Per size run under both runners: the ``stages``' seconds under Dask over sequential's."""
    ok = {(r["size"], r["runner"]): r for r in rows if r["status"] == "ok"}
    out = {}
    for size in SIZES:
        if (size, "sequential") in ok and (size, "dask") in ok:
            seq = sum(ok[size, "sequential"]["stages"].get(s, 0.0) for s in stages)
            par = sum(ok[size, "dask"]["stages"].get(s, 0.0) for s in stages)
            out[size] = par / seq if seq > 0 else float("nan")
    return out


def plot(rows: list[dict], path: Path) -> None:
    """Log-log seconds per stage against interactions (sequential), with the slope-1 guide."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = sorted((r for r in rows if r["runner"] == "sequential" and r["status"] == "ok"), key=lambda r: r["interactions"])
    if not cells:
        return
    fig, ax = plt.subplots(figsize=(8, 5.5))
    x = [r["interactions"] for r in cells]
    for stage in sorted({s for r in cells for s in r["stages"]}):
        ax.plot(x, [max(r["stages"].get(stage, 0.0), 1e-3) for r in cells], marker="o", label=stage)
    ax.plot(x, [sum(r["stages"].values()) for r in cells], marker="s", color="black", linewidth=2, label="all stages")
    total0 = sum(cells[0]["stages"].values())
    ax.plot(x, [total0 * xi / x[0] for xi in x], linestyle=":", color="grey", label="slope 1 (linear)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("logged interactions")
    ax.set_ylabel("seconds (one thread, sequential runner)")
    ax.set_title("Recause: seconds per stage by world size")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(rows: list[dict], out: Path) -> str:
    lines = [_common.header(), ""]
    table = []
    for r in rows:
        line = {"size": r["size"], "runner": r["runner"], "status": r["status"], "wall_s": f"{r.get('wall_s', 0.0):.1f}"}
        if r.get("stages"):  # a cell that timed out still shows the stages it finished
            line |= {"interactions": r.get("interactions", ""), "peak_gb": f"{max(r['peak_gb'].values(), default=0.0):.2f}"}
            line |= {s: f"{v:.2f}" if v < 10 else f"{v:.1f}" for s, v in r["stages"].items()}  # the split: hundredths
        table.append(line)
    stage_names = sorted({s for r in rows for s in r.get("stages", {})})
    lines.append(_common.table(table, ["size", "runner", "status", "interactions", "wall_s", "peak_gb", *stage_names]))
    lines += [f"{r['size']}/{r['runner']}: {r['error']}" for r in rows if r.get("error")]
    fits = slopes(rows)
    lines += ["", "log-log slope of seconds on interactions (sequential, from default up): "
              + ", ".join(f"{s} {v:.2f}" if v is not None else f"{s} n/a" for s, v in fits.items())]
    speed = dask_speedups(rows)
    lines += ["dask / sequential, sharded stages (" + ", ".join(SHARDED) + "): "
              + (", ".join(f"{k} {v:.3f}" for k, v in speed.items()) or "n/a (no size run under both)")]
    if speed:
        lines += ["dask / sequential, " + " and ".join(SHARDED_BEFORE) + " only (as recorded before features was sharded): "
                  + ", ".join(f"{k} {v:.3f}" for k, v in dask_speedups(rows, SHARDED_BEFORE).items())]
    ok = [r for r in rows if r["status"] == "ok"]
    largest = max(ok, key=lambda r: r["interactions"]) if ok else None
    large = next((r for r in ok if r["size"] == LARGE and r["runner"] == "sequential"), None)
    steep = max((v for k, v in fits.items() if k != "total" and v is not None), default=None)
    result = {
        "time_slope": f"{fits['total']:.3f}" if fits.get("total") is not None else "n/a",
        "max_stage_slope": f"{steep:.3f}" if steep is not None else "n/a",
        "peak_gb_large": f"{max(large['peak_gb'].values()):.2f}" if large else "n/a",
        "large_minutes": f"{large['wall_s'] / 60:.1f}" if large else "n/a",
        "dask_speedup": f"{speed[max(speed, key=lambda k: list(SIZES).index(k))]:.3f}" if speed else "n/a",
        "largest_run": f"{largest['size']}:{largest['interactions']}" if largest else "none",
    }
    lines += [f"plot: {out / 'scale.png'}", "RESULT " + " ".join(f"{k}={v}" for k, v in result.items())]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=["smoke", "default"])
    parser.add_argument("--runners", nargs="+", choices=list(RUNNERS), default=["sequential"])
    parser.add_argument("--cells", nargs="+", metavar="SIZE:RUNNER", help="run exactly these cells (instead of sizes × runners)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per cell")
    parser.add_argument("--out", type=Path, default=_common.ROOT / "outputs" / "bench" / "scale")
    parser.add_argument("--from-json", type=Path, help="re-print and re-plot an earlier scale.json")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.from_json:
        rows = json.loads(args.from_json.read_text())["rows"]
    else:
        rows = []
        cells = [tuple(c.split(":", 1)) for c in args.cells] if args.cells else [(s, r) for s in args.sizes for r in args.runners]
        for size, runner in cells:
            if size not in SIZES or runner not in RUNNERS:
                parser.error(f"cell {size}:{runner}: sizes are {', '.join(SIZES)}; runners {', '.join(RUNNERS)}")
        for size, runner in cells:
            print(f"running {size} / {runner} ...", flush=True)
            rows.append(run_cell(size, runner, args.timeout, args.seed, args.out / f"{size}-{runner}.log"))
            (args.out / "scale.json").write_text(json.dumps({"rows": rows}, indent=2))
    plot(rows, args.out / "scale.png")
    print(report(rows, args.out))


if __name__ == "__main__":
    main()
