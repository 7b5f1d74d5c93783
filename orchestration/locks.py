"""Before a run starts: wait, a bounded time, until no other process holds the warehouse file.

DuckDB lets one process write a database file, and a process holding it open, even read-only (an
analyst's `duckdb` shell or Python session), keeps every other process from opening it for writing:
`duckdb.connect` fails at once with `IO Error: Could not set lock on file "<path>": Conflicting lock
is held in <program> (PID <pid>)` (DuckDB 2.0.1; when the holder has it read-only the message adds
that read-only mode would work). Without a check, a run found out in its first loader, whose
connection (dagster-duckdb) retries for about 100 s and then fails the step with a stack trace (or,
when the holder writes, at once in the read-only look-up of the pending extract dates, a traceback).

`claim_warehouse`, called by `order-audit run` before the Dagster job starts and by every Dagster run's
warehouse resource, does two things within
one timeout (`ORDER_AUDIT_LOCK_TIMEOUT_SECONDS`):

- takes the run lock, an advisory `flock` on `<warehouse>.lock` (the holder's PID written in it) that
  the run keeps until it ends. A second `order-audit run` on the same warehouse waits for it: the
  DuckDB lock alone cannot keep two runs apart, since a run holds the file only while a step or dbt
  has it open, and is free in between (and during its own start-up, the first seconds). The kernel
  drops the lock when the process ends, even by SIGKILL; the file stays, only its lock counts.
- then `wait_until_writable`: opens the warehouse for writing (creating it, as the pipeline does) in a
  loop with a short backoff and closes it at once.

When either stays taken it raises `WarehouseLockedError`, whose message names the file and the
holding process.

Every Dagster run takes the same run lock, the same way, when its warehouse resource starts (before its
first step; `orchestration/resources.py`) and keeps it to its end: a run from the UI, the schedule or
the sensor and an `order-audit run` wait for each other (the Dagster run queue keeps Dagster's own runs
apart; `order-audit run` runs in-process, outside it). In the process of `order-audit run`, which holds
the lock already, the resource takes it again as the same lock.

The limits: the DuckDB check is made once, at the start. A process that opens the warehouse after
it, mid-run, still makes the next step that opens the file for writing fail (a loader after
dagster-duckdb's retries, the dbt build at once, with DuckDB's lock message in dbt's output).
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

LOCK_CONFLICT = "Could not set lock on file"
_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")
FIRST_DELAY_SECONDS = 0.1
MAX_DELAY_SECONDS = 1.0
RUN_LOCK_PROGRAM = "another order-audit run"


@dataclass(frozen=True)
class LockHolder:
    """The process holding a lock: DuckDB names it in its message; the run lock file has its PID."""

    program: str | None
    pid: int | None

    @classmethod
    def from_duckdb_error(cls, message: str) -> LockHolder:
        found = _HOLDER.search(message)
        if found is None:
            return cls(None, None)
        return cls(found["program"], int(found["pid"]))

    def describe(self) -> str:
        if self.pid is None:
            return f"{self.program or 'another process'} (its PID is not known)"
        return f"{self.program or 'a process'} (PID {self.pid})"


class WarehouseLockedError(RuntimeError):
    """The warehouse stayed locked by another process for the whole wait."""

    def __init__(
        self, path: Path, waited_seconds: float, holder: LockHolder, duckdb_message: str | None = None
    ) -> None:
        self.path = path
        self.waited_seconds = waited_seconds
        self.holder = holder
        self.duckdb_message = duckdb_message
        message = (
            f"the warehouse {path} is locked by {holder.describe()}: waited {waited_seconds:.1f} s for it"
            " to be free. Close that process (a duckdb shell or Python session holding the file open,"
            " even read-only, or another order-audit run) or let it finish, or wait longer with"
            " ORDER_AUDIT_LOCK_TIMEOUT_SECONDS."
        )
        if duckdb_message:
            message += f"\nDuckDB: {duckdb_message}"
        super().__init__(message)


def is_lock_conflict(error: BaseException) -> bool:
    return isinstance(error, duckdb.IOException) and LOCK_CONFLICT in str(error)


class _Backoff:
    """Sleeps from 0.1 s, doubling up to 1 s, never past the deadline."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.delay = FIRST_DELAY_SECONDS

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline

    def sleep(self) -> None:
        time.sleep(max(0.0, min(self.delay, self.deadline - time.monotonic())))
        self.delay = min(self.delay * 2, MAX_DELAY_SECONDS)


def wait_until_writable(
    path: Path,
    timeout_seconds: float,
    *,
    on_wait: Callable[[LockHolder], None] | None = None,
) -> float:
    """Open `path` for writing (creating it and its folder if needed) and close it; returns the seconds
    waited for another process to release it (0.0 when it was free at once).

    Retries while DuckDB reports a lock conflict until `timeout_seconds` have passed (0: one attempt),
    then raises `WarehouseLockedError`. `on_wait` is called once, with the holder, when the file is
    found locked. Any other DuckDB error (not a DuckDB file, no space left, no permission) is raised as
    it is, at once.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    backoff = _Backoff(started + max(timeout_seconds, 0.0))
    locked = False
    while True:
        try:
            con = duckdb.connect(str(path))
        except duckdb.IOException as error:
            if not is_lock_conflict(error):
                raise
            holder = LockHolder.from_duckdb_error(str(error))
            if on_wait is not None and not locked:
                on_wait(holder)
            locked = True
            if backoff.expired():
                raise WarehouseLockedError(path, time.monotonic() - started, holder, str(error)) from error
            backoff.sleep()
        else:
            con.close()
            return time.monotonic() - started if locked else 0.0


class RunLock:
    """The run lock on `<warehouse>.lock`, held until `release` (or the end of the process).

    Taken again in the process that holds it (`order-audit run` holds it, then its Dagster run's
    warehouse resource takes it), it is the same lock: that `RunLock` holds no descriptor of its own and
    its `release` leaves the lock to the first holder."""

    def __init__(self, path: Path, fd: int | None) -> None:
        self.path = path
        self.pid = os.getpid()
        self._fd: int | None = fd
        if fd is not None:
            _HELD_IN_THIS_PROCESS[path] = self

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None
            _HELD_IN_THIS_PROCESS.pop(self.path, None)


_HELD_IN_THIS_PROCESS: dict[Path, RunLock] = {}


def run_lock_path(warehouse: Path) -> Path:
    return warehouse.with_name(f"{warehouse.name}.lock")


def _run_lock_holder(fd: int) -> LockHolder:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        text = ""
    return LockHolder(RUN_LOCK_PROGRAM, int(text) if text.isdigit() else None)


def acquire_run_lock(
    warehouse: Path,
    timeout_seconds: float,
    *,
    on_wait: Callable[[LockHolder], None] | None = None,
) -> tuple[RunLock, float]:
    """Take the run lock of `warehouse`, waiting up to `timeout_seconds`; returns it and the seconds waited."""
    path = run_lock_path(warehouse.resolve())
    holder = _HELD_IN_THIS_PROCESS.get(path)
    if holder is not None and holder.held and holder.pid == os.getpid():  # not in a forked child
        return RunLock(path, None), 0.0
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    started = time.monotonic()
    backoff = _Backoff(started + max(timeout_seconds, 0.0))
    locked = False
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _run_lock_holder(fd)
                if on_wait is not None and not locked:
                    on_wait(holder)
                locked = True
                if backoff.expired():
                    raise WarehouseLockedError(warehouse, time.monotonic() - started, holder) from None
                backoff.sleep()
        try:  # the holder's PID, for a waiter's message; on a full disk it may not be written
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError:
            pass
    except BaseException:
        os.close(fd)
        raise
    return RunLock(path, fd), (time.monotonic() - started if locked else 0.0)


def claim_warehouse(
    warehouse: Path,
    timeout_seconds: float,
    *,
    on_wait: Callable[[LockHolder], None] | None = None,
) -> tuple[RunLock, float]:
    """The run lock, then the DuckDB check, within one timeout; returns the run lock (release it when
    the run ends) and the seconds waited in all (0.0: both were free at once). Raises
    `WarehouseLockedError`."""
    started = time.monotonic()
    run_lock, waited_for_run = acquire_run_lock(warehouse, timeout_seconds, on_wait=on_wait)
    try:
        remaining = timeout_seconds - (time.monotonic() - started)
        waited_for_duckdb = wait_until_writable(warehouse, remaining, on_wait=on_wait)
    except WarehouseLockedError as error:
        run_lock.release()
        total = time.monotonic() - started
        raise WarehouseLockedError(warehouse, total, error.holder, error.duckdb_message) from error.__cause__
    except BaseException:
        run_lock.release()
        raise
    return run_lock, waited_for_run + waited_for_duckdb
