"""The ``recause`` command. Heavy imports (Prefect, MLflow, GX, torch) happen only inside the
sub-command that needs them, so ``recause --help`` answers at once.

Exit codes: the contract every input is held to. No input makes a command print a traceback;
a failure is one line, ``recause: <what was expected, what was found, where>``.

0  success.
1  the data failed validation, and the report is written (``validation/report.txt``, ``.json``,
   ``quarantine.parquet``); its paragraphs name the table, file, column and lines. This covers
   values that cannot be read as their kind (dates outside 1677-2262, a position of ``inf``,
   undecodable text), missing required columns, empty or header-only tables, and data the stages
   cannot learn from (no positive outcome; under a randomized policy, nothing to train on or too
   few rows to validate and test on).
2  a usage or configuration error: a bad option, a ``--set`` that is not ``key=value`` or whose
   value is not usable YAML, an unknown preset, dataset or setting, a setting naming what the
   data do not have, an output folder that cannot be written; for ``compare``, a run, experiment
   or store that is not there, or fewer than two runs.
3  the dataset cannot be read, or its metadata contradicts it: a missing, corrupt, truncated,
   binary, UTF-16 or unreadable file; a link to nothing, to a folder or to a device; a CSV line
   with too many fields or an unclosed quote; a column named twice; a ``meta.yaml`` that is not
   valid YAML, names a column the data lack, sets a non-finite threshold, or declares what the
   data do not show (``randomized_policy``, ``has_unexposed_outcomes``).
4  an internal error (a bug): run again with ``--debug`` and report the traceback.
5  the MLflow tracking store failed: ``run`` (or ``doctor``) could not reach the server when it
   started, or the server went away or refused a write during the run — the message names the
   URI, and the run folder holds no ``summary.json`` or ``report.html``; or ``tracking-server``
   could not start PostgreSQL or MLflow (binaries missing, a port busy, not healthy in time: the
   message has the tail of its log).
130  interrupted (Ctrl-C).

``--debug`` (or ``RECAUSE_DEBUG=1``) prints the tracebacks, ours and Prefect's, for developers.

``recause run`` first closes what crashed runs left open (:mod:`recause.flows.recovery`) and starts
a watchdog that stops its child processes if it is killed (:mod:`recause.flows.watchdog`); a stage
whose inputs, settings and code are unchanged is reused (:mod:`recause.flows.resume`; ``--fresh``
recomputes all). ``recause doctor`` does the repair alone.
"""

from __future__ import annotations

import argparse
import json
import os
import reprlib
import sys
import traceback
from pathlib import Path

EXIT_OK, EXIT_INVALID_DATA, EXIT_USAGE, EXIT_NO_DATA, EXIT_INTERNAL, EXIT_TRACKING = 0, 1, 2, 3, 4, 5
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT
DEBUG_VARIABLE = "RECAUSE_DEBUG"


def _settings(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", help="synthetic (default), movielens-100k, coat, open-bandit, yahoo-r3 or dir:PATH")
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="override a setting, e.g. --set world.n_users=500 (repeatable; values are read as YAML)",
    )


def _common(parser: argparse.ArgumentParser) -> None:
    _settings(parser)
    parser.add_argument("--preset", default="default", help="smoke, default or full (flows/presets/*.yaml)")
    parser.add_argument("--output-dir", help="folder for this run's files, new or empty (default: <output_root>/runs/<run>)")
    _debug_flag(parser, default=argparse.SUPPRESS)  # also after the sub-command; the top level's default stands


def _debug_flag(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("--debug", action="store_true", default=default,
                        help=f"show tracebacks of errors (also: {DEBUG_VARIABLE}=1)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="recause",
        description="What does your recommender cause, and what would happen if you changed it?",
    )
    _debug_flag(parser, default=False)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the pipeline flow; writes summary.json and prints its path")
    _common(run)
    run.add_argument("--fresh", action="store_true",
                     help="recompute every stage (by default a stage whose inputs, settings and code are unchanged is reused)")
    validate = sub.add_parser("validate", help="validate a dataset alone; exit 0 if it passes, 1 if not")
    _common(validate)
    config = sub.add_parser("config", help="print the resolved configuration as YAML")
    _common(config)
    sub.add_parser("presets", help="list the presets")
    recommend = sub.add_parser("recommend", help="a user's top-k from the registered champion model (recause-<dataset>@champion)")
    recommend.add_argument("--user", required=True, action="append", help="a user id (repeatable); an unknown one gets the "
                           "popularity fallback, labelled")
    recommend.add_argument("--k", type=int, help="items per user (default: the model's recommend.k)")
    recommend.add_argument("--dataset", default="synthetic", help="whose model: recause-<dataset> (default synthetic)")
    recommend.add_argument("--tracking-uri", help="the registry (default: MLFLOW_TRACKING_URI, else the local store)")
    _debug_flag(recommend, default=argparse.SUPPRESS)
    deploy = sub.add_parser("deploy", help="serve the nightly and on-demand deployments on a Prefect server until stopped")
    deploy.add_argument("--cron", default="0 3 * * *", help="the nightly schedule (cron, default 0 3 * * *)")
    deploy.add_argument("--nightly-preset", default="default", help="the nightly run's preset (default: default)")
    _debug_flag(deploy, default=argparse.SUPPRESS)
    report = sub.add_parser("report", help="rebuild a finished run's report.html from its files, without retraining")
    report.add_argument("run", metavar="RUN_DIR_OR_MLFLOW_RUN_ID",
                        help="a run folder (with summary.json), or the id of an MLflow run (its artifacts are downloaded)")
    report.add_argument("--tracking-uri", help="where the MLflow run lives (default: MLFLOW_TRACKING_URI, else the local store)")
    report.add_argument("--output-dir", help="where a report from MLflow is written (default: <output_root>/reports/<run id>)")
    _debug_flag(report, default=argparse.SUPPRESS)
    doctor = sub.add_parser(
        "doctor", help="close the MLflow and Prefect runs of processes that died, remove half-written stage results")
    _common(doctor)
    compare = sub.add_parser(
        "compare", help="two or more runs side by side: key metrics (a table and a PNG), the params that differ, "
                        "and MLflow's compare-view URL")
    compare.add_argument("runs", nargs="*", metavar="RUN",
                         help="an MLflow run id or a run folder (with summary.json); none: the latest two finished runs")
    compare.add_argument("--experiment", help="the MLflow experiment (default: recause/<dataset>, e.g. recause/synthetic)")
    compare.add_argument("--png", help="where to write the chart (default: <output_root>/comparisons/<id>-vs-<id>.png)")
    _settings(compare)  # --dataset picks the default experiment; --set tracking.tracking_uri=... or runtime.output_root=... the store
    _debug_flag(compare, default=argparse.SUPPRESS)
    server = sub.add_parser(
        "tracking-server", help="an MLflow tracking server on PostgreSQL, on 127.0.0.1, until Ctrl-C or SIGTERM; "
                                "prints the MLFLOW_TRACKING_URI to export")
    server.add_argument("--port", type=int, default=5000, help="the MLflow server's port on 127.0.0.1 (default 5000)")
    server.add_argument("--data-dir", help="the PostgreSQL cluster's folder, made with initdb when new or empty "
                                           "(default: <output_root>/tracking-server/postgres)")
    server.add_argument("--pg-port", type=int, help="PostgreSQL's port on 127.0.0.1 (default: a free one)")
    server.add_argument("--socket-only", action="store_true",
                        help="PostgreSQL listens only on a unix socket in its data folder, on no TCP port")
    server.add_argument("--backend-store-uri", help="an existing database instead of a cluster of our own, e.g. "
                                                    "postgresql://user@host:5432/mlflow")
    server.add_argument("--artifacts-destination",
                        help="the folder the server stores artifacts in (default: <output_root>/tracking-server/artifacts)")
    server.add_argument("--timeout", type=float, default=60.0,
                        help="seconds PostgreSQL and MLflow each have to become healthy (default 60)")
    _debug_flag(server, default=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")
    try:
        return _command(args, debug)
    except KeyboardInterrupt:
        print("recause: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as error:  # the one place an error becomes an exit code and a line
        return _report(error, debug)


def _report(error: Exception, debug: bool) -> int:
    """Print ``recause: <message>`` (after the traceback when debugging) and return the exit code."""
    from recause.flows.compare import CompareError
    from recause.mlflow_config.server import TrackingServerError
    from recause.mlflow_config.tracking import TrackingError
    from recause.tasks.config import ConfigurationError
    from recause.tasks.data.schema import DatasetError

    if debug:
        traceback.print_exception(error)
    if isinstance(error, DatasetError):
        code, message = EXIT_NO_DATA, str(error)
    elif isinstance(error, ConfigurationError):
        code, message = EXIT_USAGE, f"invalid configuration: {error}"
    elif isinstance(error, CompareError):
        code, message = EXIT_USAGE, str(error)
    elif isinstance(error, (TrackingError, TrackingServerError)):
        code, message = EXIT_TRACKING, str(error)
    elif isinstance(error, OSError):  # readers turn theirs into DatasetErrors: this is where we write
        code, message = EXIT_USAGE, (f"cannot write {error.filename or 'a file'}: {error.strerror or error}; check "
                                     "--output-dir and runtime.output_root (or RECAUSE_OUTPUT_ROOT)")
    else:
        code, message = EXIT_INTERNAL, (f"internal error: {type(error).__name__}: {error} (a bug: run again with "
                                        "--debug for the traceback, and report it)")
    print(f"recause: {_one_line(message)}", file=sys.stderr)
    return code


def _one_line(text: str) -> str:
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def _config_error(error: ValueError) -> str:
    """A configuration error in one line: each pydantic error as ``a.b: what is wrong, got value``."""
    errors = getattr(error, "errors", None)
    if not callable(errors):
        return str(error)
    return "; ".join(
        f"{'.'.join(map(str, e['loc']))}: {e['msg']}, got {reprlib.repr(e.get('input'))}" for e in errors()
    )


def _command(args: argparse.Namespace, debug: bool) -> int:
    from recause.flows.config import available_presets, build_config
    from recause.tasks.config import ConfigurationError

    if args.command == "presets":
        print("\n".join(available_presets()))
        return EXIT_OK
    if args.command == "report":
        return _report_command(args)
    if args.command == "recommend":
        return _recommend_command(args)
    if args.command == "deploy":
        return _deploy_command(args)
    if args.command == "tracking-server":
        return _tracking_server_command(args)
    try:
        overrides = [*args.overrides, *(["runtime.resume=false"] if getattr(args, "fresh", False) else [])]
        config = build_config(getattr(args, "preset", "default"), dataset=args.dataset, output_dir=getattr(args, "output_dir", None),
                              overrides=overrides, env=os.environ)
    except ValueError as error:  # pydantic.ValidationError is a ValueError, and so is a bad --set
        raise ConfigurationError(_config_error(error)) from error
    if args.command in ("config", "run"):  # a training strategy this machine cannot run: exit 2 before any work
        from recause.tasks.train.distributed import check_here

        check_here(config.gnn, config.runtime.threads)
    if args.command == "config":
        import yaml

        print(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False), end="")
        return EXIT_OK
    if args.command == "compare":
        return _compare(args, config)

    from recause.flows.runtime import prepare_environment

    prepare_environment(config.runtime.output_root, config.runtime.threads)
    if args.command == "doctor":
        return _doctor(config)
    return _run(config, debug) if args.command == "run" else _validate(config)


def _run(config, debug: bool = False) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from recause.flows.config import run_folder
    from recause.flows.runners import check_runner
    from recause.flows.runs import Owner, claimed_by, refuse_used_folder
    from recause.flows.watchdog import start_watchdog

    folder = run_folder(config)
    refuse_used_folder(folder)  # before anything starts (a ConfigurationError: exit 2); the flow claims it
    check_runner(config.runtime)  # a Dask scheduler that does not answer: exit 2 within seconds, naming it
    config = config.model_copy(update={"runtime": config.runtime.model_copy(update={"output_dir": folder})})
    start_watchdog()  # the temporary Prefect server dies with this process, even on kill -9
    from prefect import tags

    with ThreadPoolExecutor(1) as pool:  # the API server starts while the pipeline's modules import
        recovering = pool.submit(_recover, config)
        from recause.flows.logs import quiet_tracebacks
        from recause.flows.recovery import PREFECT_OWNER_PREFIX
        from recause.flows.runners import pipeline_for
        from recause.flows.runtime import share_api_with_workers

        recovered = recovering.result()
    if not debug:  # Prefect configured its console handlers on import
        quiet_tracebacks()
    for line in recovered.lines():
        print(f"recause: {line}", file=sys.stderr)
    owner = Owner.current()
    if config.runtime.task_runner == "dask":
        share_api_with_workers()
    pipeline = pipeline_for(config)  # with runtime.task_runner's runner
    with tags(f"{PREFECT_OWNER_PREFIX}{owner.tag()}"):  # on the flow run from its creation
        state = pipeline(config, return_state=True)
    summary_path = folder / "summary.json"
    ours = claimed_by(folder, owner)  # else another run took the folder first: its files are not ours to report
    if state.is_completed():
        reused = json.loads(summary_path.read_text()).get("run/reused_stages", "")
        print(f"reused: {reused.replace(',', ', ')}" if reused else "reused: none (every stage computed)")
        print(f"summary: {summary_path}")
        if (folder / "report.html").is_file():
            print(f"report: {folder / 'report.html'}")
        return EXIT_OK
    if ours and summary_path.exists():
        summary = json.loads(summary_path.read_text())
        print(summary.get("validation/report", "the run failed"), file=sys.stderr)
        print(f"summary: {summary_path}", file=sys.stderr)
        if (folder / "report.html").is_file():
            print(f"report: {folder / 'report.html'}", file=sys.stderr)
        return EXIT_INVALID_DATA
    from recause.mlflow_config.tracking import TrackingError, tracking_errors, tracking_uri

    try:
        state.result()  # raises what failed the run (a DatasetError, a ConfigurationError...): main reports it
    except tracking_errors() as error:  # from MLflow clients outside the tracker (Lightning's logger)
        raise TrackingError.wrap(tracking_uri(config.tracking.tracking_uri, config.runtime.output_root), error) from error
    raise RuntimeError(f"the flow ended in state {state.type.value} without a summary or an error")


def _deploy_command(args: argparse.Namespace) -> int:
    """``recause deploy``: Prefect's ``serve`` with the two deployments; needs a Prefect server."""
    from recause.flows.config import available_presets
    from recause.flows.runtime import quiet_environment
    from recause.tasks.config import ConfigurationError

    if not os.environ.get("PREFECT_API_URL"):
        raise ConfigurationError("recause deploy needs a Prefect server: start one with `prefect server start --host "
                                 "127.0.0.1` and `export PREFECT_API_URL=http://127.0.0.1:4200/api`")
    if args.nightly_preset not in available_presets():
        raise ConfigurationError(f"unknown preset {args.nightly_preset!r}; available: {', '.join(available_presets())}")
    from prefect.client.schemas.schedules import construct_schedule

    try:
        construct_schedule(cron=args.cron)
    except ValueError as error:
        raise ConfigurationError(f"--cron {args.cron!r} is not a cron schedule: {_one_line(str(error))}") from None
    quiet_environment()
    from recause.flows.deployments import serve_deployments

    print(f"serving deployments recause/nightly ({args.cron}, preset {args.nightly_preset}) and recause/on-demand "
          f"on {os.environ['PREFECT_API_URL']}; Ctrl-C stops", flush=True)
    serve_deployments(args.cron, args.nightly_preset)
    return EXIT_OK


def _tracking_server_command(args: argparse.Namespace) -> int:
    """``recause tracking-server``: PostgreSQL and ``mlflow server`` until Ctrl-C or SIGTERM (:mod:`recause.mlflow_config.server`)."""
    from recause.flows.config import build_config
    from recause.flows.runtime import quiet_environment
    from recause.tasks.config import ConfigurationError

    for option, port in (("--port", args.port), ("--pg-port", args.pg_port)):
        if port is not None and not 1 <= port <= 65535:
            raise ConfigurationError(f"{option} must be a TCP port (1-65535), got {port}")
    if args.timeout <= 0:
        raise ConfigurationError(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
    ours = [o for o, v in (("--data-dir", args.data_dir), ("--pg-port", args.pg_port), ("--socket-only", args.socket_only)) if v]
    if args.backend_store_uri and ours:
        raise ConfigurationError(f"--backend-store-uri names a database of its own: {', '.join(ours)} would set up a cluster it does not use")
    config = build_config("default", env=os.environ)
    quiet_environment()
    from recause.mlflow_config.server import serve_until_stopped, sigterm_as_interrupt, start_tracking_server

    folder = Path(config.runtime.output_root) / "tracking-server"
    with sigterm_as_interrupt():
        print(f"starting {'MLflow' if args.backend_store_uri else 'PostgreSQL and MLflow'} (files in {folder})", flush=True)
        server = start_tracking_server(
            folder, args.port, data_dir=Path(args.data_dir).expanduser() if args.data_dir else None, pg_port=args.pg_port,
            socket_only=args.socket_only, backend_store_uri=args.backend_store_uri,
            artifacts=Path(args.artifacts_destination).expanduser() if args.artifacts_destination else None,
            timeout=args.timeout)
        serve_until_stopped(server, lambda line: print(line, flush=True))
    print("stopped")
    return EXIT_OK


def _recommend_command(args: argparse.Namespace) -> int:
    """``recause recommend --user U [--k K]``: the champion's lists, a table per user."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from recause.flows.config import build_config
    from recause.flows.runtime import prepare_environment
    from recause.mlflow_config.tracking import sqlite_path, tracking_uri
    from recause.tasks.config import ConfigurationError

    if args.k is not None and args.k <= 0:
        raise ConfigurationError(f"--k must be a positive number of items, got {args.k}")
    config = build_config("default", dataset=args.dataset, env=os.environ)
    prepare_environment(config.runtime.output_root, config.runtime.threads)
    uri = args.tracking_uri or tracking_uri(config.tracking.tracking_uri, config.runtime.output_root)
    store = sqlite_path(uri)
    if store is not None and not store.exists():
        raise ConfigurationError(f"no MLflow store at {store}: run `recause run` first, or give --tracking-uri")
    from recause.mlflow_config.serving import champion_lists

    try:
        lists, answered_by = champion_lists(uri, config.data.dataset, list(args.user), args.k)
    except LookupError as error:
        raise ConfigurationError(str(error)) from None
    print(f"{answered_by} ({uri})")
    for user, rows in lists.groupby("user_id", sort=False):
        print(f"\nuser {user}: {rows['strategy'].iloc[0]}")
        for _, row in rows.iterrows():
            uplift = f"  uplift {row['uplift'] * 100:+.1f} pt" if row["uplift"] == row["uplift"] else ""
            if uplift and row.get("item_uplift_low") == row.get("item_uplift_low"):
                uplift += f" (item [{row['item_uplift_low'] * 100:+.1f}, {row['item_uplift_high'] * 100:+.1f}])"
            score = f"score {row['score']:.3f}" if row["score"] == row["score"] else "not scored"  # exploration beyond the candidates
            print(f"  {int(row['rank']):2d}. {row['item_id']:>8}  {str(row['title'])[:40]:40}  {score}{uplift}")
            print(f"      {row['reason']}")
    return EXIT_OK


def _report_command(args: argparse.Namespace) -> int:
    """``recause report RUN``: from a run folder, or from an MLflow run's artifacts."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from recause.flows.config import build_config
    from recause.flows.report import report_from_mlflow, write_report
    from recause.mlflow_config.tracking import tracking_uri
    from recause.tasks.config import ConfigurationError

    folder = Path(args.run).expanduser()
    if folder.is_dir():
        try:
            path = write_report(folder)
        except FileNotFoundError as error:
            raise ConfigurationError(str(error)) from None
    else:
        if any(sep in args.run for sep in ("/", "\\")) or args.run.startswith("."):
            raise ConfigurationError(f"{args.run} is not a folder (give a run folder or an MLflow run id)")
        config = build_config("default", env=os.environ)
        uri = args.tracking_uri or tracking_uri(config.tracking.tracking_uri, config.runtime.output_root)
        destination = Path(args.output_dir) if args.output_dir else Path(config.runtime.output_root) / "reports" / args.run
        try:
            path = report_from_mlflow(args.run, uri, destination)
        except (LookupError, FileNotFoundError) as error:
            raise ConfigurationError(str(error).splitlines()[0]) from None
    print(f"report: {path}")
    return EXIT_OK


def _recover(config):
    """Start (or reach) the Prefect API, serialising the start of temporary servers that share a
    database, and close the runs that dead processes left open (:mod:`recause.flows.recovery`)."""
    from prefect import get_client
    from prefect.settings import PREFECT_HOME

    from recause.flows.recovery import Recovered, recover_mlflow, recover_prefect
    from recause.mlflow_config.tracking import TrackingError, file_lock, tracking_errors, tracking_uri

    found = Recovered()
    if config.tracking.enabled:  # first: a tracking server that does not answer fails the run before Prefect starts
        uri = tracking_uri(config.tracking.tracking_uri, config.runtime.output_root)
        try:
            found.mlflow_runs = recover_mlflow(uri)
        except tracking_errors() as error:
            raise TrackingError.wrap(uri, error) from error
    with file_lock(Path(PREFECT_HOME.value()) / "server-start.lock"):
        with get_client(sync_client=True) as client:
            client.hello()
            found.prefect_flow_runs, found.prefect_task_runs = recover_prefect(client)
    return found


def _doctor(config) -> int:
    from recause.flows.recovery import sweep_dead_run_folders
    from recause.flows.resume import StageStore

    found = _recover(config)
    swept = StageStore(Path(config.runtime.output_root) / "stages").sweep()
    partial = sweep_dead_run_folders(Path(config.runtime.output_root) / "runs")
    lines = found.lines() + ([f"removed {len(swept)} half-written stage result(s)"] if swept else [])
    lines += [f"removed {len(partial)} half-written file(s) of killed runs"] if partial else []
    print("\n".join(lines) if lines else "nothing to repair: no run left open by a dead process")
    return EXIT_OK


def _compare(args: argparse.Namespace, config) -> int:
    """Print the comparison of the runs named (or the latest two), write its chart."""
    from recause.flows.runtime import prepare_reader_environment

    prepare_reader_environment()  # reads only: no Prefect home or thread settings to prepare
    from recause.flows.compare import compare_view, default_chart_path, differing_params, draw_chart, key_table, read_runs, report
    from recause.mlflow_config.tracking import experiment_name, tracking_uri

    configured = tracking_uri(config.tracking.tracking_uri, config.runtime.output_root)
    default = experiment_name(config.tracking.experiment_prefix, config.data.dataset)
    store, runs = read_runs(args.runs, configured, args.experiment, default)
    table = key_table(runs)
    chart = draw_chart(runs, table, Path(args.png) if args.png else default_chart_path(config.runtime.output_root, runs))
    view = compare_view(store, [run.run_id for run in runs], [run.experiment_id for run in runs])
    print(report(runs, table, differing_params(runs), store, chart, view))
    return EXIT_OK


def _validate(config) -> int:
    from recause.flows.config import run_folder
    from recause.tasks.data import load_configured
    from recause.flows.artifacts import write_validation
    from recause.validations.run import validate_dataset

    dataset = load_configured(config.data, config.world, config.runtime.seed)  # a DatasetError: main reports it
    outcome = validate_dataset(dataset, config.validation)
    files = write_validation(outcome, Path(run_folder(config)) / "validation", config.validation.data_docs)
    stream = sys.stdout if outcome.report.passed else sys.stderr
    print(outcome.console, file=stream)
    print(f"report: {files.report_json}\nquarantine: {files.quarantine}", file=stream)
    return EXIT_OK if outcome.report.passed else EXIT_INVALID_DATA


if __name__ == "__main__":
    sys.exit(main())
