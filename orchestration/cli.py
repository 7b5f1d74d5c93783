"""`order-audit`: generate sample extracts, run the pipeline through Dagster, query the mart."""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, TextIO, TypeVar

from orchestration.settings import (
    GROUND_TRUTH_DIR,
    PROJECT_ROOT,
    Settings,
    SettingsError,
    check_iso_date,
    check_positive_int,
    check_positive_number,
    check_share,
    check_utc_time,
    settings_table,
)

# The quick start's sample shows what happens to bad input (quarantined rows, rejected files).
SAMPLE_BAD_ROWS_RATE = 0.01
EXIT_WAREHOUSE_LOCKED = 3  # `order-audit run`: another process held the warehouse for the whole wait


def _generate(args: argparse.Namespace, settings: Settings) -> int:
    from orchestration.generator import generate
    from orchestration.generator.config import GenerationConfig
    from orchestration.generator.writer import check_output

    out = Path(args.out) if args.out else settings.extracts_dir
    start_date = date.fromisoformat(args.start_date)
    try:  # the generator's own limits (order ids have 8 digits) and no real extract there, before it empties the folder
        GenerationConfig(
            out, args.orders, args.seed, args.days, start_date, args.exception_rate, args.bad_rows
        )
        check_output(out)
    except ValueError as error:
        print(f"order-audit generate: {error}", file=sys.stderr)
        return 2
    summary = generate(
        out,
        orders=args.orders,
        seed=args.seed,
        days=args.days,
        start_date=start_date,
        exception_rate=args.exception_rate,
        bad_rows_rate=args.bad_rows,
    )
    print(f"Wrote {len(summary.files)} files for {summary.orders} orders to {summary.out_dir}")
    for source, rows in sorted(summary.rows_per_source.items()):
        print(f"  {source:<22} {rows:>10} rows")
    print(f"Ground truth: {', '.join(str(p) for p in summary.ground_truth_files)}")
    print(
        f"Expected exceptions: {sum(summary.expected_exceptions.values())} over {len(summary.expected_exceptions)} codes"
    )
    return 0


Value = TypeVar("Value")


def _exception_code(text: str) -> str:
    """An argparse type: one of the rule catalog's exception codes, in any case."""
    from orchestration.rules import rule_catalog

    codes = sorted(rule.code for rule in rule_catalog())
    code = text.strip().upper()
    if code not in codes:
        raise argparse.ArgumentTypeError(f"unknown exception code {text!r}; the codes are {', '.join(codes)}")
    return code


def _checked(check: Callable[[str, str], Value]) -> Callable[[str], Value]:
    """An argparse type checking a value as the settings check theirs: a bad one is a usage error
    (`argument --from: must be a date as YYYY-MM-DD, got '2026-13-01'`, exit status 2)."""

    def parse(text: str) -> Value:
        try:
            return check("value", text)
        except SettingsError as error:
            raise argparse.ArgumentTypeError(str(error).removeprefix("value ")) from None

    return parse


def _landing_is_empty(extracts_dir: Path) -> bool:
    return not extracts_dir.exists() or not any(
        p.is_file() for p in extracts_dir.rglob("*") if GROUND_TRUTH_DIR not in p.parts
    )


def _landing_date_range(settings: Settings, bounds: tuple[date, date]) -> tuple[date, date] | None:
    """The first and last extract dates of the landing files that a run can load, within `bounds` (the
    partitions' first and last dates)."""
    from orchestration.ingest.landing import landing_files
    from orchestration.ingest.sources import SOURCES

    dates = [
        f.extract_date
        for spec in SOURCES.values()
        for f in landing_files(settings.extracts_dir, spec)
        if f.extract_date and bounds[0] <= f.extract_date <= bounds[1]
    ]
    return (min(dates), max(dates)) if dates else None


def _default_range(
    settings: Settings,
    landing_range: tuple[date, date],
    bounds: tuple[date, date],
    say: Callable[[str], None],
    *,
    one_bound_given: bool,
) -> tuple[date, date]:
    """The extract dates with files new or changed since they were loaded; none: the latest date with a file
    of every required source. Files dated outside the partitions (before ORDER_AUDIT_FIRST_EXTRACT_DATE,
    after today), and the last of those dates while a required source has no file of them yet (one source
    delivered before the others), are left out, said. (An earlier incomplete date stays in the range: a
    source that never delivers for it must not hold it back for good.)"""
    from orchestration.ingest.landing import incomplete_dates, latest_complete_date, waiting_message
    from orchestration.ingest.partitions import out_of_bounds_message, outside_bounds
    from orchestration.ingest.pending import pending_dates

    pending = pending_dates(settings.extracts_dir, settings.warehouse)
    if outside := outside_bounds(pending, bounds):
        say(out_of_bounds_message(outside, bounds))
        pending = [day for day in pending if day not in outside]
    incomplete = incomplete_dates(settings.extracts_dir, pending)
    waiting = {}
    while pending and pending[-1] in incomplete:
        day = pending.pop()
        waiting[day] = incomplete[day]
    if waiting:
        say(waiting_message(waiting))
    if not pending:
        latest = latest_complete_date(settings.extracts_dir, bounds) or landing_range[1]
        if not one_bound_given:
            new = "No other extract file" if waiting else "No extract file"
            say(
                f"{new} is new or changed since it was loaded: re-auditing with the latest extract date"
                f" ({latest}); new triage decisions and the routing rules are read as always."
            )
        return latest, latest
    return pending[0], pending[-1]


def _newest_files(settings: Settings, sources: list[str], bounds: tuple[date, date]) -> str:
    """Each source's newest file a run can take (a file dated outside the partitions is never loaded)."""
    from orchestration.ingest.landing import required_source_dates

    dated = required_source_dates(settings.extracts_dir)

    def newest(source: str) -> str:
        takeable = [day for day in dated[source] if bounds[0] <= day <= bounds[1]]
        later = sorted(day for day in dated[source] if day > bounds[1])
        text = f"newest file dated {max(takeable)}" if takeable else "no file a run can take"
        return text + (f", a file dated after today ({later[-1]}) waits" if later else "")

    return "; ".join(f"{source}: {newest(source)}" for source in sources)


# The project's earlier dagster.yaml files: a DAGSTER_HOME holding one unchanged gets the current one.
EARLIER_DAGSTER_YAML_SHA256 = frozenset(
    {
        "888de44d8c6c49ee32d500f921d696239a238e2e2825b93276044583b13693b9",
        "8fb777296fdd9df83463d2b5c9ed28f1075781801918801e2f5e75e4985f36f2",
        "0cf4f49205ea23575834bd25112d089de9e7e286ba840ceed628ad0bb3ffcb99",  # before run_retries
    }
)


def ensure_dagster_home(settings: Settings) -> Path:
    """DAGSTER_HOME (default .dagster_home in the repo, git-ignored) with the project's dagster.yaml.

    A dagster.yaml the user wrote or edited is left alone; one the project copied in an earlier version
    is replaced (the storage it names reads the same files)."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or hashlib.sha256(config.read_bytes()).hexdigest() in EARLIER_DAGSTER_YAML_SHA256:
        shutil.copyfile(Path(__file__).with_name("dagster.yaml"), config)
    return home


def dagster_instance(settings: Settings):  # type: ignore[no-untyped-def]
    from dagster import DagsterInstance

    ensure_dagster_home(settings)
    return DagsterInstance.get()


def _run(args: argparse.Namespace, settings: Settings) -> int:
    """`order-audit run`: the summary (text, or JSON on stdout with `--json`), or, for a run that did not
    start, the reason (on stderr with `--json`, whose stdout then says so as JSON)."""
    from orchestration.runlog import print_for_reader

    outcome = _start_run(args, settings)
    if isinstance(outcome, int):
        if args.json:
            print_for_reader(_not_started_json(outcome))
        return outcome
    from orchestration.summary import render_text

    print_for_reader(json.dumps(outcome, default=str, indent=2) if args.json else render_text(outcome))
    # Python's exit would walk the run's every object (Dagster's, dbt's manifest) for reference cycles
    # to free, about 1 s at 100 orders, for memory the process hands back anyway: nothing is left to
    # flush or close (the run closed its files and DuckDB connections; tests/test_run_output.py).
    gc.freeze()
    return int(outcome["exit_code"])


def _not_started_json(exit_code: int) -> str:
    """`run --json`'s stdout for a run that did not start (the reason is on stderr)."""
    return json.dumps({"outcome": "not_started", "exit_code": exit_code}, indent=2)


def _start_run(args: argparse.Namespace, settings: Settings) -> dict[str, Any] | int:
    """The run's summary, or the exit code of a run that did not start."""
    from orchestration.runlog import ReaderMayLeave

    # --json: stdout is the summary alone; a reader that goes away (`| head`) ends no run
    out = ReaderMayLeave(sys.stderr if getattr(args, "json", False) else sys.stdout)
    if _landing_is_empty(settings.extracts_dir):
        if settings.extracts_dir != Settings.from_env({}).extracts_dir:
            # A mistyped or unmounted landing folder must not become a mart of made-up orders.
            state = "has no extract file" if settings.extracts_dir.exists() else "does not exist"
            print(
                f"order-audit run did not start: the landing folder {settings.extracts_dir}"
                f" (ORDER_AUDIT_EXTRACTS_DIR) {state}. Sample extracts are generated only into the default"
                " data/extracts; `order-audit generate --out DIR` writes them anywhere.",
                file=sys.stderr,
            )
            return 2
        print(
            f"Landing folder {settings.extracts_dir} is empty: generating sample extracts first"
            f" (about {SAMPLE_BAD_ROWS_RATE:.0%} of their rows, and a few files, are bad input on purpose:"
            " the summary lists them as quarantined and rejected).",
            file=out,
            flush=True,
        )
        from orchestration.generator import generate

        generate(settings.extracts_dir, bad_rows_rate=SAMPLE_BAD_ROWS_RATE)
    from orchestration.routing import RoutingError, load_routing

    try:  # the run would load them after the extracts and stop there: say so before it starts
        load_routing(settings.routing_file)
    except RoutingError as error:
        print(f"order-audit run did not start: the routing rules are wrong: {error}", file=out)
        return 2
    import duckdb

    from orchestration.locks import LockHolder, WarehouseLockedError, claim_warehouse

    def tell_waiting(holder: LockHolder) -> None:
        print(
            f"The warehouse {settings.warehouse} is locked by {holder.describe()}: waiting up to"
            f" {settings.lock_timeout_seconds:g} s (ORDER_AUDIT_LOCK_TIMEOUT_SECONDS) for it to be free.",
            file=out,
            flush=True,
        )

    try:
        run_lock, waited = claim_warehouse(
            settings.warehouse, settings.lock_timeout_seconds, on_wait=tell_waiting
        )
    except WarehouseLockedError as error:
        print(f"order-audit run did not start: {error}", file=out)
        return EXIT_WAREHOUSE_LOCKED
    except (OSError, duckdb.Error) as error:  # no space left for a new file, not a DuckDB file, ...
        print(
            f"order-audit run did not start: cannot open the warehouse {settings.warehouse} for writing: {error}",
            file=out,
        )
        return 1
    if waited:
        print(f"The warehouse was free after {waited:.1f} s.", file=out, flush=True)
    try:
        return _run_job(args, settings)
    finally:
        run_lock.release()


def _run_job(args: argparse.Namespace, settings: Settings) -> dict[str, Any] | int:
    """The run itself, holding the warehouse's run lock (`orchestration.locks`).

    Unless `--verbose`, everything the run's libraries print (Dagster's events, dbt's node log, GX)
    goes to a log file in `$DAGSTER_HOME/logs/`, and the terminal shows a line per stage (on stderr with
    `--json`, whose stdout is the summary alone).
    """
    from orchestration.runlog import new_log_path, output_to

    if args.verbose:
        return _execute(args, settings, terminal=None, log_file=None)
    log_file = new_log_path(ensure_dagster_home(settings) / "logs")
    with output_to(log_file, terminal_fd=2 if args.json else 1) as terminal:
        return _execute(args, settings, terminal=terminal, log_file=log_file)


def _execute(
    args: argparse.Namespace, settings: Settings, *, terminal: TextIO | None, log_file: Path | None
) -> dict[str, Any] | int:
    """Run the job; returns the run summary, or an exit code when the run could not start."""

    def say(text: str) -> None:
        stream = terminal or (sys.stderr if args.json else sys.stdout)
        stream.write(text + "\n")
        stream.flush()

    from orchestration.quality.launcher import prewarm

    prewarm()  # GX imports in the fork server while Dagster and the definitions load here
    from orchestration.transform.manifest import prepare_manifest

    prepare_manifest()
    from orchestration.definitions import defs
    from orchestration.ingest.landing import required_sources_without_files
    from orchestration.ingest.partitions import extract_date_bounds
    from orchestration.progress import RunProgress
    from orchestration.summary import collect_run_summary
    from orchestration.transform.assets import order_audit_dbt_assets

    # The definitions live as long as the run: the cycle collector need not walk them again and again
    # (its full passes took 1.2 s of a 100-order run, 0.75 s after this).
    gc.freeze()
    run_config: dict[str, object] = {}
    if args.as_of or args.sla_hours is not None:
        audit_config: dict[str, object] = {}
        if args.as_of:
            audit_config["as_of"] = args.as_of
        if args.sla_hours is not None:
            audit_config["fulfillment_sla_hours"] = args.sla_hours
        run_config = {"ops": {"order_audit_dbt_assets": {"config": audit_config}}}
    bounds = extract_date_bounds(settings)  # once: today must not change between the checks
    landing_range = _landing_date_range(settings, bounds)
    if landing_range is None:
        say(
            f"No landing file in {settings.extracts_dir} is named <source>_<YYYY-MM-DD>[_<part>].<ext> with a"
            f" date from ORDER_AUDIT_FIRST_EXTRACT_DATE ({bounds[0]}) to today ({bounds[1]}, UTC)."
        )
        return 2
    given_first = date.fromisoformat(args.first) if args.first else None
    given_last = date.fromisoformat(args.last) if args.last else None
    if given_first and given_last:
        first, last = given_first, given_last
    else:
        pending_first, pending_last = _default_range(
            settings, landing_range, bounds, say, one_bound_given=bool(given_first or given_last)
        )
        first = given_first or (min(pending_first, given_last) if given_last else pending_first)
        last = given_last or max(pending_last, first)
    if first > last:
        say(f"--from {first} is after --to {last}.")
        return 2
    if first < bounds[0]:
        say(f"--from {first} is before ORDER_AUDIT_FIRST_EXTRACT_DATE={settings.first_extract_date}.")
        return 2
    if last > bounds[1]:
        option = "--to" if given_last else "--from"
        say(f"{option} {last} is after today ({bounds[1]}, UTC): no partition holds that extract date yet.")
        return 2
    if missing := required_sources_without_files(settings.extracts_dir, first, last):
        # the loaders would fail the run for them: say so before starting it
        say(
            f"No landing file of the required source(s) {', '.join(missing)} is dated {first} to {last} in"
            f" {settings.extracts_dir} ({_newest_files(settings, missing, bounds)})."
        )
        return 2
    job = defs.resolve_job_def("order_audit_job")
    say(f"Running order_audit_job over extract dates {first} to {last}.")
    instance = dagster_instance(settings)
    from orchestration.run_owners import fail_runs_of_gone_processes, gone_run_message, process_tags

    for stale in fail_runs_of_gone_processes(instance):
        say(gone_run_message(stale))
    run_id = str(uuid.uuid4())
    if terminal is not None:
        dbt_nodes = len(order_audit_dbt_assets.keys) + len(order_audit_dbt_assets.check_keys)
        progress = RunProgress(terminal, planned_dbt_nodes=dbt_nodes)
        instance.add_event_listener(run_id, progress)
    result = job.execute_in_process(
        instance=instance,
        run_config=run_config,
        raise_on_error=False,
        run_id=run_id,
        tags={
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
            **process_tags(run_id),
            # the daemon's retry would run it in the UI's process, with the UI's settings, not this one's
            "dagster/max_retries": "0",
        },
    )
    if terminal is not None:
        progress.finish()
    return collect_run_summary(settings, result, log_file=log_file)


def _sql(args: argparse.Namespace, settings: Settings) -> int:
    from orchestration.summary import run_query

    return run_query(args.query, database=Path(args.database) if args.database else None, settings=settings)


def _exceptions(args: argparse.Namespace, settings: Settings) -> int:
    from orchestration.triage import (
        Decision,
        QueueFilter,
        TriageError,
        list_exceptions,
        parse_until,
        record_decision,
        show_exception,
    )

    database = Path(args.database) if args.database else None
    try:
        if args.exceptions_command == "show":
            return show_exception(args.exception_id, database=database, settings=settings)
        if args.exceptions_command == "list":
            queue = QueueFilter(
                owner=args.owner, route=args.route, code=args.code, state=args.state, priority=args.priority
            )
            return list_exceptions(queue, database=database, limit=args.limit, settings=settings)
        decision = Decision(
            action=args.exceptions_command,
            exception_id=args.exception_id,
            decided_by=args.by,
            reason=getattr(args, "reason", None),
            note=getattr(args, "note", None),
            assignee=getattr(args, "to", None),
            snoozed_until=parse_until(args.until) if getattr(args, "until", None) else None,
        )
        return record_decision(decision, database=database, settings=settings)
    except TriageError as error:
        print(f"order-audit: {error}", file=sys.stderr)
        return 2


def _ui(args: argparse.Namespace, settings: Settings) -> int:
    with socket.socket() as probe:
        # as the webserver binds: a port left in TIME_WAIT by the last UI is free, one listened on is not
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", args.port))
        except OSError as error:
            print(
                f"order-audit ui: port {args.port} of 127.0.0.1 is not free ({error.strerror}): is the UI running"
                " already? Another port: --port.",
                file=sys.stderr,
            )
            return 2
    from orchestration.run_owners import fail_runs_of_gone_processes, gone_run_message

    with dagster_instance(settings) as instance:
        for stale in fail_runs_of_gone_processes(instance):
            print(gone_run_message(stale))
    from orchestration.transform.manifest import prepare_manifest

    prepare_manifest()
    dagster = Path(sys.executable).with_name("dagster")
    command = [
        str(dagster),
        "dev",
        "-m",
        "orchestration.definitions",
        "--host",
        "127.0.0.1",
        "--port",
        str(args.port),
    ]
    # `dagster dev` warns on every start that `dg dev` (dagster-dg-cli, not installed) supersedes it.
    quiet = "ignore:Function `dev_command` is superseded"
    warnings = ",".join(filter(None, (os.environ.get("PYTHONWARNINGS"), quiet)))
    # Ctrl-C raises KeyboardInterrupt here even when this process was started with SIGINT ignored (a
    # background job of a script); `dagster dev` then starts with SIGINT at its default, as it needs to
    # shut down on it (a handled signal is reset at exec, an ignored one stays ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stopped by a supervisor: the same as Ctrl-C
    # Its own process group, so that stopping it reaches its webserver, daemon and code server too.
    ui = subprocess.Popen(
        command, cwd=PROJECT_ROOT, env=os.environ | {"PYTHONWARNINGS": warnings}, start_new_session=True
    )
    try:
        return ui.wait()
    except KeyboardInterrupt:
        _stop_process_group(ui)
        return 130


def _stop_process_group(process: subprocess.Popen[bytes]) -> None:
    """Stop `dagster dev` and every process it started: SIGINT as Ctrl-C would send (it then stops its
    own processes), then SIGTERM, then SIGKILL, each once the one before has had its time (`dagster
    dev` has been seen to ignore SIGINT and SIGTERM for minutes); Ctrl-C again moves on at once."""
    for sent, grace_seconds in ((signal.SIGINT, 15.0), (signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(process.pid, sent)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace_seconds
        try:
            while time.monotonic() < deadline:
                process.poll()  # reaps the group's leader once it ends
                try:
                    os.killpg(process.pid, 0)
                except ProcessLookupError:
                    return
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
        if sent is not signal.SIGKILL:
            print(f"The Dagster UI's processes are still running after {sent.name}: stopping them harder.")


def _docs(args: argparse.Namespace, settings: Settings) -> int:
    from orchestration.settings import DBT_PROJECT_DIR
    from orchestration.transform.project import dbt_executable

    command = [dbt_executable(), "docs", "generate", "--static", "--profiles-dir", str(DBT_PROJECT_DIR)]
    code = subprocess.call(command, cwd=DBT_PROJECT_DIR, env=settings.child_environ())
    if code == 0:
        print(f"\nData dictionary: {DBT_PROJECT_DIR / 'target' / 'static_index.html'} (open it in a browser)")
    return code


def _dashboard(args: argparse.Namespace, settings: Settings) -> int:
    from dashboard.launch import main as launch

    return int(launch(port=args.port) or 0)


def _bench(args: argparse.Namespace, settings: Settings) -> int:
    from orchestration.bench import WorkdirNotOursError, run_benchmark

    output = (
        Path(args.output)
        if args.output
        else PROJECT_ROOT / "benchmarks" / "results" / f"bench_{args.orders}.json"
    )
    try:
        report = run_benchmark(args.orders, args.days, args.seed, Path(args.workdir), output)
    except WorkdirNotOursError as error:
        print(f"order-audit bench: {error}", file=sys.stderr)
        return 2
    return 0 if all(run["succeeded"] for run in report["runs"]) else 1


def _rules(args: argparse.Namespace, settings: Settings) -> int:
    from orchestration.rules import RULE_CATALOG_FILE, rule_catalog, rule_catalog_markdown

    if args.markdown:
        print(rule_catalog_markdown(), end="")
        return 0
    print(f"{RULE_CATALOG_FILE.relative_to(PROJECT_ROOT)}: {len(rule_catalog())} rules")
    for rule in rule_catalog():
        print(f"  {rule.code:<24} {rule.severity:<8} {rule.owner_team:<14} {rule.computed_in}")
        print(f"  {'':<24} {rule.description}")
        print(f"  {'':<24} pinned by: {', '.join(rule.pinned_by) or 'the generator ground truth only'}")
    return 0


def _routing_check(args: argparse.Namespace, settings: Settings) -> int:
    from orchestration.routing import RoutingError, load_routing

    try:
        routing = load_routing(Path(args.file) if args.file else None)
    except RoutingError as error:
        print(f"order-audit: routing rules not valid: {error}", file=sys.stderr)
        return 2
    print(f"{routing.path}: {len(routing.rules)} rules, {len(routing.routes)} routes, valid")
    name_width = max(len(rule.name) for rule in routing.rules)
    team_width = max(len(rule.owner_team) for rule in routing.rules)
    route_width = max(len(rule.route) for rule in routing.rules)
    for rule in routing.rules:
        print(
            f"  {rule.rule_order:>2}. {rule.name:<{name_width}}  {rule.priority} {rule.resolve_within_hours:>4} h"
            f"  {rule.owner_team:<{team_width}} -> {rule.route:<{route_width}}  {rule.matches}"
        )
    return 0


def _settings(args: argparse.Namespace, settings: Settings) -> int:
    if args.values:
        for name, value in settings.environ().items():
            print(f"{name}={value}")
    else:
        print(settings_table())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="order-audit", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    gen = commands.add_parser("generate", help="write seeded sample extracts with ground truth")
    gen.add_argument(
        "--orders", type=_checked(check_positive_int), default=2000, help="orders (default 2000)"
    )
    gen.add_argument(
        "--seed", type=int, default=42, help="random seed: the same seed writes the same files (default 42)"
    )
    gen.add_argument(
        "--days", type=_checked(check_positive_int), default=10, help="extract dates (default 10)"
    )
    gen.add_argument(
        "--start-date",
        type=_checked(check_iso_date),
        default="2026-11-01",
        help="first extract date (default 2026-11-01)",
    )
    gen.add_argument(
        "--exception-rate",
        type=_checked(check_share),
        default=0.2,
        help="share of orders given an exception to find, 0 to 1 (default 0.2)",
    )
    gen.add_argument(
        "--bad-rows",
        type=_checked(check_share),
        default=0.0,
        help="share of extra bad rows to inject, 0 to 1 (default 0)",
    )
    gen.add_argument("--out", help="landing folder (default: ORDER_AUDIT_EXTRACTS_DIR or data/extracts)")
    gen.set_defaults(handler=_generate)

    run = commands.add_parser(
        "run",
        help="materialize every asset in-process through Dagster",
        epilog="Exit status: 0 the run succeeded and published; 1 a step failed; 2 bad arguments or no dated"
        f" landing file; {EXIT_WAREHOUSE_LOCKED} the warehouse stayed locked by another process (a duckdb shell"
        " or Python session holding it open, even read-only, or another run) for"
        " ORDER_AUDIT_LOCK_TIMEOUT_SECONDS (default 60), nothing was run; 4 a blocking check failed, nothing"
        " was published.",
    )
    run.add_argument(
        "--as-of",
        type=_checked(check_utc_time),
        help="audit as-of time, ISO 8601, UTC unless it has an offset (default: latest clean event)",
    )
    run.add_argument(
        "--sla-hours", type=_checked(check_positive_number), help="fulfillment SLA in hours (default 72)"
    )
    run.add_argument(
        "--from",
        dest="first",
        type=_checked(check_iso_date),
        help="first extract date to load (default: the earliest date with a file new or changed since its load)",
    )
    run.add_argument(
        "--to",
        dest="last",
        type=_checked(check_iso_date),
        help="last extract date to load (default: the latest date with a file new or changed since its load)",
    )
    run.add_argument(
        "--verbose",
        action="store_true",
        help="show Dagster's, dbt's and GX's full logs on the terminal instead of a line per stage",
    )
    run.add_argument(
        "--json",
        action="store_true",
        help="print the run summary as JSON on stdout (progress lines go to stderr)",
    )
    run.set_defaults(handler=_run)

    sql = commands.add_parser("sql", help="run a read-only query against the published mart")
    sql.add_argument("query")
    sql.add_argument("--database", help="DuckDB file to query (default: the published serving file)")
    sql.set_defaults(handler=_sql)

    exceptions = commands.add_parser(
        "exceptions",
        help="the exception queue, one exception's file, and triage decisions (ack, assign, snooze, resolve, reopen)",
    )
    exceptions_commands = exceptions.add_subparsers(dest="exceptions_command", required=True)
    queue = exceptions_commands.add_parser(
        "list", help="exceptions by priority and due time, filtered by owner, route, code, status, priority"
    )
    queue.add_argument("--owner", help="owner team, e.g. finance")
    queue.add_argument("--route", help="route, e.g. finance-escalations")
    queue.add_argument(
        "--code",
        type=_exception_code,
        help="exception code, e.g. UNDERPAID (any case; `order-audit rules` lists them)",
    )
    queue.add_argument(
        "--state",
        choices=("active", "open", "acknowledged", "assigned", "snoozed", "resolved", "all"),
        default="active",
        help="workflow state (default active: every state but resolved)",
    )
    queue.add_argument("--priority", choices=("p1", "p2", "p3", "p4"))
    queue.add_argument(
        "--limit", type=_checked(check_positive_int), default=25, help="rows shown at most (default 25)"
    )
    show = exceptions_commands.add_parser(
        "show", help="one exception: trigger, numbers, routing, its history and its order's audit trail"
    )
    show.add_argument("exception_id", help="the exception id, or a unique prefix of it")
    decisions = {
        "ack": "acknowledge: someone is looking at it",
        "assign": "assign it to a person or team (--to)",
        "snooze": "put it aside until a time (--until, UTC); it returns to open when the audit's clock passes it",
        "resolve": "resolve it (--reason fixed|accepted|false_positive, --note)",
        "reopen": "reopen a resolved exception",
    }
    commands_with_id = [show]
    for action, description in decisions.items():
        decide = exceptions_commands.add_parser(
            action,
            help=description,
            description=f"{description}. Appended to the decisions log; applied by the next run.",
        )
        decide.add_argument("exception_id", help="the exception id, or a unique prefix of it")
        decide.add_argument("--by", required=True, help="who decides (a name or e-mail)")
        if action == "assign":
            decide.add_argument("--to", required=True, help="the person or team it is assigned to")
        if action == "snooze":
            decide.add_argument(
                "--until", required=True, help="UTC time it returns to open, e.g. 2026-11-12T09:00:00Z"
            )
        if action == "resolve":
            decide.add_argument("--reason", required=True, choices=("fixed", "accepted", "false_positive"))
        decide.add_argument(
            "--note",
            required=action == "resolve",
            help="why" + (" (required)" if action == "resolve" else ""),
        )
        commands_with_id.append(decide)
    for command in (queue, *commands_with_id):
        command.add_argument("--database", help="DuckDB file to read (default: the published serving file)")
        command.set_defaults(handler=_exceptions)

    ui = commands.add_parser(
        "ui", help="start the Dagster UI (dagster dev) on 127.0.0.1 with the repo's Dagster home"
    )
    ui.add_argument("--port", type=_checked(check_positive_int), default=3000, help="port (default 3000)")
    ui.set_defaults(handler=_ui)

    docs = commands.add_parser("docs", help="generate the dbt data dictionary as one static HTML file")
    docs.set_defaults(handler=_docs)

    dashboard = commands.add_parser("dashboard", help="start the Streamlit dashboard on 127.0.0.1")
    dashboard.add_argument(
        "--port", type=_checked(check_positive_int), default=8501, help="port (default 8501)"
    )
    dashboard.set_defaults(handler=_dashboard)

    bench = commands.add_parser("bench", help="benchmark the whole pipeline on N generated orders")
    bench.add_argument(
        "--orders",
        type=_checked(check_positive_int),
        default=10_000,
        help="orders to generate (default 10000)",
    )
    bench.add_argument(
        "--days",
        type=_checked(check_positive_int),
        default=30,
        help="days of the full run; one more day is the incremental run (default 30)",
    )
    bench.add_argument("--seed", type=int, default=1, help="random seed of the generated orders (default 1)")
    bench.add_argument(
        "--workdir",
        default="/tmp/order-audit-bench",
        help="folder for the extracts, warehouse and Dagster home, emptied first: a new, empty or earlier"
        " benchmark's folder (default /tmp/order-audit-bench)",
    )
    bench.add_argument(
        "--output", help="JSON file for the figures (default benchmarks/results/bench_<N>.json)"
    )
    bench.set_defaults(handler=_bench)

    rules = commands.add_parser(
        "rules", help="the rule catalog: each exception code, where it is computed and what tests it"
    )
    rules.add_argument("--markdown", action="store_true", help="as the Markdown table the README shows")
    rules.set_defaults(handler=_rules)

    routing = commands.add_parser("routing", help="the exception routing rules (routing.yml)")
    routing_commands = routing.add_subparsers(dest="routing_command", required=True)
    check = routing_commands.add_parser(
        "check", help="validate the routing rules and list them in match order"
    )
    check.add_argument("--file", help="a routing file (default: ORDER_AUDIT_ROUTING, else routing.yml)")
    check.set_defaults(handler=_routing_check)

    settings = commands.add_parser(
        "settings",
        help='the environment variables of the project: name, default, type, meaning (README "Settings")',
    )
    settings.add_argument(
        "--values", action="store_true", help="print each variable's value in force instead (NAME=value)"
    )
    settings.set_defaults(handler=_settings)
    return parser


def export_for_child_processes(settings: Settings) -> None:
    """The only place the project sets environment variables, for the processes it does not start itself.

    - ORDER_AUDIT_WAREHOUSE, absolute: dbt reads it through env_var() in dbt_project/profiles.yml and
      takes a relative path relative to dbt_project/, where it runs. dagster-dbt starts dbt with this
      process's environment and offers no way to add to it (`DbtCliResource.cli` has no `env`), so
      the dbt asset's `dbt build` under `order-audit run` and the Dagster processes of `order-audit
      ui` get it from here. (The dbt asset refuses to build when dbt would open another file.)
    - DAGSTER_HOME, absolute: Dagster reads it (`DagsterInstance.get()`, `dagster dev`), and so does
      the project's dagster.yaml (`env: DAGSTER_HOME`).
    The child processes the project starts itself (GX validations, `dbt docs`) get `Settings.child_environ()`.
    """
    os.environ["ORDER_AUDIT_WAREHOUSE"] = str(settings.warehouse)
    os.environ["DAGSTER_HOME"] = str(settings.dagster_home)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as error:
        print(f"order-audit: {error}", file=sys.stderr)
        if getattr(args, "json", False):  # `run --json`: stdout says so as JSON
            print(_not_started_json(2))
        return 2
    export_for_child_processes(settings)
    try:
        return int(args.handler(args, settings))
    except BrokenPipeError:  # the reader went away (`order-audit rules | head`): not an error
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
