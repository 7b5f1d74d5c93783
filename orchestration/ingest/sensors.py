"""A sensor on the landing folder: a new or re-delivered file requests a run for its extract date, and a new
triage decision file a run for the latest extract date (the decisions belong to no date; the run applies them).

Its first evaluation requests only the dates of files the load manifest does not have yet (decision files
included). A file dated outside the partitions (before ORDER_AUDIT_FIRST_EXTRACT_DATE, after today), or of a
date some required source has not delivered a file of yet, is logged, not run: it is new again at the next
tick, and run once its date can be."""

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import date

import duckdb
from dagster import RunRequest, SensorEvaluationContext, SensorResult, SkipReason, sensor

from orchestration.ingest.landing import (
    incomplete_dates,
    landing_files,
    latest_complete_date,
    waiting_message,
)
from orchestration.ingest.partitions import extract_date_bounds, out_of_bounds_message, outside_bounds
from orchestration.ingest.pending import unsettled_files
from orchestration.ingest.sources import DECISIONS, SOURCES
from orchestration.run_owners import fail_runs_of_gone_processes, gone_run_message
from orchestration.settings import Settings


def landing_state() -> dict[str, list[object]]:
    """path -> [extract date, size, mtime_ns] of every dated landing file."""
    settings = Settings.from_env()
    state: dict[str, list[object]] = {}
    for spec in SOURCES.values():
        for landing in landing_files(settings.extracts_dir, spec):
            if landing.extract_date is None:
                continue
            stat = landing.path.stat()
            state[str(landing.path)] = [landing.extract_date.isoformat(), stat.st_size, stat.st_mtime_ns]
    latest = max((str(fingerprint[0]) for fingerprint in state.values()), default=None)
    if latest is not None:
        for decision in landing_files(settings.extracts_dir, DECISIONS):
            stat = decision.path.stat()
            # keyed on the file alone: a later extract date does not make an applied decision new again
            state[str(decision.path)] = ["decisions", stat.st_size, stat.st_mtime_ns]
    return state


def changed_dates(
    previous: dict[str, list[object]], current: dict[str, list[object]], latest: date | None
) -> dict[str, list[str]]:
    """Extract date -> the new or changed files of that date; new decision files go to `latest`, the latest
    extract date a run can take (in the partitions, with a file of every required source)."""
    decisions_day = latest.isoformat() if latest else None
    changed: dict[str | None, list[str]] = defaultdict(list)
    for path, fingerprint in current.items():
        if previous.get(path) != fingerprint:
            changed[decisions_day if fingerprint[0] == "decisions" else str(fingerprint[0])].append(path)
    return {day: paths for day, paths in changed.items() if day is not None}


def build_landing_sensor(job_name: str):  # type: ignore[no-untyped-def]
    @sensor(
        name="landing_folder_sensor",
        job_name=job_name,
        minimum_interval_seconds=60,
        description=(
            "Requests a run of the audit job for each extract date with a new or re-delivered file, and one for"
            " the latest extract date when a triage decision file lands."
        ),
    )
    def landing_folder_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
        for stale in fail_runs_of_gone_processes(context.instance):
            context.log.warning(gone_run_message(stale))
        previous = json.loads(context.cursor) if context.cursor else {}
        current = landing_state()
        settings = Settings.from_env()
        bounds = extract_date_bounds(settings)
        latest = latest_complete_date(settings.extracts_dir, bounds)
        changes = changed_dates(previous, current, latest)
        if latest is None:  # no date a run can take yet: decision files stay new until there is one
            current = {
                path: fingerprint for path, fingerprint in current.items() if fingerprint[0] != "decisions"
            }
        if not context.cursor and changes:
            # first evaluation (the sensor just turned on): the files already loaded, by the CLI or the
            # schedule, are not new; the load manifest says which are (a read of a few milliseconds)
            try:
                unsettled = unsettled_files(
                    settings.extracts_dir, settings.warehouse, (*SOURCES.values(), DECISIONS)
                )
            except duckdb.Error as error:
                return SkipReason(
                    f"could not read the load manifest ({str(error).splitlines()[0]}); trying again at the next tick"
                )
            new_paths = {str(landing.path) for landing in unsettled}
            changes = {day: [path for path in paths if path in new_paths] for day, paths in changes.items()}
            changes = {day: paths for day, paths in changes.items() if paths}
        seen = current

        def leave_out(days: Iterable[date], reason: str) -> None:
            """Request no run of `days` and keep their files out of the cursor: they are new again at the
            next tick, and requested once a run can take their date."""
            nonlocal changes, seen
            context.log.warning(reason)
            left_out = {path for day in days for path in changes[day.isoformat()]}
            seen = {path: fingerprint for path, fingerprint in seen.items() if path not in left_out}
            changes = {day: paths for day, paths in changes.items() if date.fromisoformat(day) not in days}

        # no partition holds them (yet: the date becomes today, or ORDER_AUDIT_FIRST_EXTRACT_DATE moves
        # back): a run request would fail the tick, and every later one
        if outside := outside_bounds([date.fromisoformat(day) for day in changes], bounds):
            leave_out(outside, out_of_bounds_message(outside, bounds))
        # one source delivered before the others: a run of the date would fail its loaders
        if waiting := incomplete_dates(settings.extracts_dir, [date.fromisoformat(day) for day in changes]):
            leave_out(waiting, waiting_message(waiting))
        if not changes:
            if outside or waiting:
                reasons = [out_of_bounds_message(outside, bounds)] if outside else []
                reasons += [waiting_message(waiting)] if waiting else []
                return SensorResult(skip_reason=" ".join(reasons), cursor=json.dumps(seen))
            if not context.cursor:
                return SensorResult(
                    skip_reason="every landing file is loaded already", cursor=json.dumps(seen)
                )
            return SkipReason("no new or re-delivered landing files")
        requests = []
        for extract_date, paths in sorted(changes.items()):
            digest = hashlib.sha256(
                json.dumps(sorted((p, current[p]) for p in paths), default=str).encode()
            ).hexdigest()[:16]
            requests.append(RunRequest(run_key=f"{extract_date}:{digest}", partition_key=extract_date))
        return SensorResult(run_requests=requests, cursor=json.dumps(seen))

    return landing_folder_sensor
