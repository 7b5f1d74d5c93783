"""Which process runs a Dagster run that `order-audit run` executes in its own process, so that a run whose
process was killed (SIGKILL, out of memory, a reboot) does not stay STARTED for good.

Such a run is no worker Dagster's run monitoring can check. With `max_concurrent_runs: 1` in dagster.yaml,
every run the UI, the schedule, the sensor or a backfill queues would wait behind it forever. Each
`order-audit run` tags its run with its process (pid and start time, host); the next `order-audit run`, the
landing sensor's next tick and `order-audit ui` mark the runs of processes that are gone as failed.
"""

from __future__ import annotations

import socket
from typing import Any

import psutil

PROCESS_TAG = "order_audit/process"
HOST_TAG = "order_audit/host"


def process_tags(run_id: str) -> dict[str, str]:
    """The tags that name this process as the one running the run `run_id` (the run id is part of the
    value: a re-execution of the run copies its parent's tags, and is not this process's run)."""
    me = psutil.Process()
    return {PROCESS_TAG: f"{run_id}:{me.pid}@{me.create_time():.3f}", HOST_TAG: socket.gethostname()}


def _process_is_gone(pid: str, started: str) -> bool:
    try:
        # a pid given to another process since: another start time (a second's leeway for clock steps)
        return abs(psutil.Process(int(pid)).create_time() - float(started)) > 1.0
    except psutil.NoSuchProcess:
        return True
    except (ValueError, psutil.Error):  # a tag not written here, or a process we may not look at
        return False


def gone_run_message(run_id: str) -> str:
    return f"Dagster run {run_id} of a killed order-audit run was still marked as running: now marked failed."


def fail_runs_of_gone_processes(instance: Any) -> list[str]:
    """Mark failed every run of this host that an `order-audit run` process started and that is still
    in progress although that process is gone; returns their run ids."""
    from dagster import DagsterRunStatus, RunsFilter

    in_progress = (DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING)
    runs = instance.get_runs(filters=RunsFilter(statuses=in_progress, tags={HOST_TAG: socket.gethostname()}))
    failed = []
    for run in runs:
        tagged_run, _, process = run.tags.get(PROCESS_TAG, "").partition(":")
        pid, _, started = process.partition("@")
        if tagged_run == run.run_id and _process_is_gone(pid, started):
            instance.report_run_failed(
                run,
                message=f"Its process (order-audit run, pid {pid}) ended before the run did, killed or crashed:"
                " marked failed so that queued runs can start.",
            )
            failed.append(run.run_id)
    return failed
