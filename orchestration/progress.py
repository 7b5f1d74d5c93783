"""What `order-audit run` shows while it works: a line per stage as it starts and ends, with its rows
or files and seconds, and a progress bar on a terminal for the dbt build.

It listens to the Dagster run's events (`DagsterInstance.add_event_listener`, called in-process for
every event the run writes) and writes to the terminal it was given, which is not the process's
stdout: during a run, stdout and stderr (Dagster's, dbt's and GX's logs) go to the run's log file.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, TextIO

# Step key prefix -> the stage a person reads. The order is the order in which a run passes them.
STAGES: tuple[tuple[str, str], ...] = (
    ("load_raw_", "raw loading"),
    ("raw__", "freshness checks"),
    ("gx_raw_", "raw-stage checks (GX)"),
    ("order_audit_dbt_assets", "dbt build"),
    ("gx_mart_", "mart checks (GX)"),
    ("published__", "publish"),
)
BAR_WIDTH = 28


def stage_of(step_key: str) -> str:
    for prefix, stage in STAGES:
        if step_key.startswith(prefix):
            return stage
    return step_key


@dataclass
class _Stage:
    name: str
    started_at: float
    steps_running: int = 0
    failed: bool = False
    counts: Counter[str] = field(default_factory=Counter)
    loaded_steps: set[str] = field(default_factory=set)


class RunProgress:
    """An event listener for one run; `planned_dbt_nodes` sizes the dbt build's progress bar."""

    def __init__(self, terminal: TextIO, *, planned_dbt_nodes: int = 0) -> None:
        self.terminal = terminal
        self.is_tty = terminal.isatty()
        self.planned_dbt_nodes = planned_dbt_nodes
        self.lines_written = 0
        self._current: _Stage | None = None
        self._lock = threading.Lock()

    def __call__(self, entry: Any) -> None:
        event = getattr(entry, "dagster_event", None)
        if event is None or not event.step_key:
            return
        with self._lock:
            self._handle(event.event_type_value, event.step_key, event, entry.timestamp)

    def _handle(self, kind: str, step_key: str, event: Any, at: float) -> None:
        stage = stage_of(step_key)
        if kind == "STEP_START":
            if self._current is None or self._current.name != stage:
                self._finish_current(at)
                self._current = _Stage(stage, at)
                self._write_line(f"  {stage} ...", final=not self.is_tty)
            self._current.steps_running += 1
        elif self._current is None or self._current.name != stage:
            return
        elif kind == "ASSET_MATERIALIZATION":
            self._count_materialization(step_key, event)
        elif kind == "ASSET_CHECK_EVALUATION":
            data = event.event_specific_data
            self._current.counts["checks"] += 1
            if data is not None and not data.passed and getattr(data.severity, "value", "") == "ERROR":
                self._current.counts["failed checks"] += 1
            self._draw_bar()
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
            self._current.steps_running -= 1
            self._current.failed = self._current.failed or kind == "STEP_FAILURE"

    def _count_materialization(self, step_key: str, event: Any) -> None:
        assert self._current is not None
        metadata = event.event_specific_data.materialization.metadata
        counts = self._current.counts
        if "rows_read" in metadata:
            # A loader step reports its source's counts on every asset and partition it materializes
            # (raw/orders and raw/order_lines, each extract date of the range): count them once.
            if step_key in self._current.loaded_steps:
                return
            self._current.loaded_steps.add(step_key)
            counts["files"] += int(metadata["files_seen"].value)
            counts["rows"] += int(metadata["rows_read"].value)
            counts["quarantined"] += int(metadata["rows_quarantined"].value)
        elif self._current.name == "dbt build":
            counts["assets"] += 1
        self._draw_bar()

    def _draw_bar(self) -> None:
        current = self._current
        if not self.is_tty or current is None or current.name != "dbt build" or not self.planned_dbt_nodes:
            return
        done = current.counts["assets"] + current.counts["checks"]
        filled = min(BAR_WIDTH, BAR_WIDTH * done // self.planned_dbt_nodes)
        bar = "#" * filled + "." * (BAR_WIDTH - filled)
        self._write_line(f"  dbt build [{bar}] {done}/{self.planned_dbt_nodes}", final=False)

    def _finish_current(self, at: float) -> None:
        current = self._current
        if current is None:
            return
        counts = current.counts
        parts = []
        if counts["files"]:
            parts.append(f"{counts['files']} files, {counts['rows']:,} rows read")
            if counts["quarantined"]:
                parts.append(f"{counts['quarantined']:,} quarantined")
        if counts["assets"]:
            parts.append(f"{counts['assets']} assets")
        if counts["checks"]:
            failed = f" ({counts['failed checks']} failed)" if counts["failed checks"] else ""
            parts.append(f"{counts['checks']} checks{failed}")
        verdict = "FAILED" if current.failed else "done"
        detail = f"  {', '.join(parts)}" if parts else ""
        self._write_line(
            f"  {current.name:<24}{verdict:<7}{at - current.started_at:>6.1f} s{detail}", final=True
        )
        self._current = None

    def finish(self) -> None:
        with self._lock:
            self._finish_current(time.time())

    def _write_line(self, text: str, *, final: bool) -> None:
        if self.is_tty:
            self.terminal.write("\r\x1b[2K" + text + ("\n" if final else ""))
        else:
            self.terminal.write(text + "\n")
        if final or not self.is_tty:
            self.lines_written += 1
        self.terminal.flush()
