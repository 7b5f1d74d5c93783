"""The run's log file: while a run works, everything written to stdout and stderr goes there.

Redirected at the file-descriptor level (`os.dup2`), so that the output of child processes (dbt's
node log, the GX validation children, warnings printed by imports) lands in the log too, not only
what Python's `sys.stdout` carries. The terminal stays reachable through `terminal`, a stream on a
duplicate of the original stdout, for the progress lines and the summary.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

KEEP_LOGS = 50


def new_log_path(folder: Path) -> Path:
    """A new log file's path in `folder`; only the newest `KEEP_LOGS` earlier logs are kept."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in sorted(folder.glob("run_*.log"))[:-KEEP_LOGS]:
        old.unlink(missing_ok=True)
    return folder / f"run_{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}.log"


class ReaderMayLeave:
    """A terminal stream whose reader may go away (`order-audit run | head -3`): once the pipe is closed,
    writes are dropped instead of raising, so the run goes on and ends with its own exit code."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                self.stream.write(text)
            except BrokenPipeError:
                self.gone = True
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self.gone = True

    def isatty(self) -> bool:
        return not self.gone and self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()


def print_for_reader(text: str, stream: TextIO | None = None) -> None:
    """Print `text` to stdout (or `stream`); if its reader has gone away, send the rest of the process's
    output on that descriptor to /dev/null (Python would report the broken pipe at exit, status 120)."""
    stream = stream or sys.stdout
    try:
        print(text, file=stream, flush=True)
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)


@contextmanager
def output_to(log_file: Path, *, terminal_fd: int = 1) -> Iterator[ReaderMayLeave]:
    """Send fds 1 and 2 to `log_file` (appending) for the block; yields a stream to what
    `terminal_fd` (1: stdout, 2: stderr) was before, which never raises for a reader gone away."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved_out, saved_err = os.dup(1), os.dup(2)
    terminal = os.fdopen(
        os.dup(saved_out if terminal_fd == 1 else saved_err),
        "w",
        buffering=1,
        encoding="utf-8",
        errors="replace",
    )
    log_fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        yield ReaderMayLeave(terminal)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_out, 1)
        os.dup2(saved_err, 2)
        for fd in (log_fd, saved_out, saved_err):
            os.close(fd)
        try:
            terminal.close()
        except BrokenPipeError:
            pass
