"""dbt run inside the Dagster step's process (dbt's `dbtRunner`) behind dagster-dbt's subprocess API.

dagster-dbt 0.29 starts every dbt command as a subprocess and reads its JSON log lines from stdout
(`DbtCliInvocation`, built on `subprocess.Popen`). A `dbt build` subprocess spends about 2 s here
starting Python and importing dbt before its first node, while the step's process has already
imported most of dbt (dagster-dbt imports dbt's adapters and contracts): `dbt.cli.main` costs it
0.2 s more. `InProcessDbt` is a stand-in for the `Popen` object: a thread runs dbt's programmatic
entry point (`dbtRunner`) with the same arguments and hands dagster-dbt the same JSON log lines as
the subprocess's stdout (dbt's `msg_to_dict`, as dbt's JSON logger writes them, info level and up,
as the CLI prints them). Everything after those lines (events, asset materializations, asset checks,
errors, the artifacts and dbt.log in the target folder) is dagster-dbt's and dbt's own code.
When dbt ends, the thread closes dbt-duckdb's database before the last line: the next steps open
the warehouse file, as they do after a subprocess's exit. Measured at 100 orders (two A/B pairs), the
dbt step takes 1.3 s less on a full run and 0.7 s less on an incremental day, not the whole 2 s: the
dbt thread shares the GIL with the step's handling of dagster-dbt's events, which ran beside the
subprocess on the other core.

Settings dagster-dbt passes to the subprocess as `DBT_*` environment variables become the matching
dbt flags (relative paths taken from the subprocess's working directory, the dbt project), so this
process's environment is never changed. The project's variables (`ORDER_AUDIT_*`) are this
process's environment already.

An interrupt (dagster-dbt forwards Ctrl-C and a termination as SIGINT) stops dbt as it stops the
CLI: a KeyboardInterrupt in dbt's thread, and dbt's open queries cancelled. A process that exits
while dbt still runs (Dagster can end a terminated run's process without dagster-dbt forwarding the
interrupt) does the same and waits for dbt to end, instead of killing it mid-statement.
"""

from __future__ import annotations

import atexit
import ctypes
import gc
import json
import multiprocessing.util
import os
import queue
import signal
import subprocess
import sys
import threading
import types
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orchestration.settings import Settings

# dagster-dbt's environment for the dbt subprocess -> the dbt flag that says the same.
_FLAG_OF_ENVIRONMENT = {
    "DBT_TARGET_PATH": "--target-path",
    "DBT_LOG_PATH": "--log-path",
    "DBT_PROFILES_DIR": "--profiles-dir",
    "DBT_PROJECT_DIR": "--project-dir",
    "DBT_INDIRECT_SELECTION": "--indirect-selection",
}
_PATH_FLAGS = frozenset({"--target-path", "--log-path", "--profiles-dir", "--project-dir"})
_LEVELS_NOT_PRINTED = frozenset({"debug"})
# How long a process that exits with dbt still running (a run terminated from the Dagster UI can end
# its process without dagster-dbt forwarding the interrupt) waits for the interrupted dbt to end.
_EXIT_WAIT_SECONDS = 30.0


class _Lines:
    """dbt's output as the bytes lines of a subprocess's stdout: an unbounded queue, so dbt never
    waits for its reader, and the reader sees the end once dbt has finished and closed the file."""

    _END = None

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.closed = False

    def put(self, line: Mapping[str, Any]) -> None:
        self._queue.put((json.dumps(line, default=str) + "\n").encode())

    def end(self) -> None:
        self._queue.put(self._END)

    def __iter__(self) -> Iterator[bytes]:
        while (line := self._queue.get()) is not self._END:
            yield line

    def __enter__(self) -> _Lines:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.closed = True

    def close(self) -> None:
        self.closed = True


class InProcessDbt:
    """What dagster-dbt uses of a `subprocess.Popen` running dbt: `args`, `stdout` (JSON lines),
    `wait()`, `returncode`, `send_signal()`."""

    def __init__(
        self, args: Sequence[str], env: Mapping[str, str], cwd: str | os.PathLike[str] | None = None, **_: Any
    ) -> None:
        self.args = list(args)
        self.returncode: int | None = None
        self.stdout = _Lines()
        self._dbt_args = [*self.args[1:], *_flags_from(env, Path(cwd or Path.cwd()))]
        # `--quiet`: the CLI prints only errors and the `print()` macro's output.
        self._quiet = not {"--quiet", "-q"}.isdisjoint(self._dbt_args)
        self._interruptible = False
        self._interrupt_lock = threading.Lock()
        self._manifest_to_stamp: Any = None
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name="dbt", daemon=True)
        _running.add(self)
        self._thread.start()

    def _on_event(self, message: Any) -> None:
        from dbt_common.events.functions import msg_to_dict

        if self._manifest_to_stamp is not None:  # the invocation has its id now: its first event
            _stamp_as_this_invocations(self._manifest_to_stamp)
            self._manifest_to_stamp = None
        if message.info.level in _LEVELS_NOT_PRINTED:
            return
        if self._quiet and message.info.level != "error" and message.info.name != "PrintEvent":
            return
        self.stdout.put(msg_to_dict(message))

    def _run(self) -> None:
        try:
            self.returncode = self._invoke()
        except BaseException as error:  # the thread's end must close the pipe whatever happens
            self.returncode = 2
            self.stdout.put(_error_line(f"dbt failed in process: {error!r}"))
        finally:
            _close_warehouse()
            self.stdout.end()
            _running.discard(self)

    def _invoke(self) -> int:
        """dbt's exit code: 0 success, 1 a node failed, 2 dbt itself failed (or was interrupted).
        dbt's result (its exception's traceback holds dbt's frames, and their cursors) ends with this
        call, before the warehouse is closed."""
        from dbt.cli.main import dbtRunner

        from orchestration.transform.prewarm import take_manifest

        manifest = take_manifest(self._dbt_args)
        self._manifest_to_stamp = manifest
        runner = dbtRunner(manifest=manifest, callbacks=[self._on_event])
        with self._interrupt_lock:
            self._interruptible = True
        try:
            result = runner.invoke(self._dbt_args)
        finally:
            try:
                with self._interrupt_lock:
                    self._interruptible = False
                # An interrupt sent as dbt ended, not raised yet, is raised as a function starts:
                # taken here, it clears the interpreter's pending flag (`_set_async_exception`).
                _nothing()
            except KeyboardInterrupt:
                pass
        if isinstance(result.exception, KeyboardInterrupt):
            self.stdout.put(_error_line("dbt was interrupted"))
            return 2
        if result.exception is not None:
            self.stdout.put(_error_line(f"dbt failed: {result.exception}"))
            return 2
        return 0 if result.success else 1

    def wait(self, timeout: float | None = None) -> int:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def poll(self) -> int | None:
        return None if self._thread.is_alive() else self.returncode

    def send_signal(self, signum: int) -> None:
        """An interrupt stops dbt as Ctrl-C stops the CLI: a KeyboardInterrupt in the thread running
        dbt (dbt then writes run_results.json, cancels its queries and ends), and the queries open
        now are cancelled so that it does not wait for them. Only while dbt runs: never in the
        thread's own clean-up."""
        if signum not in (signal.SIGINT, signal.SIGTERM):
            return
        with self._interrupt_lock:
            if self._interruptible and self._thread.ident is not None:
                _set_async_exception(self._thread.ident, KeyboardInterrupt)
        from dbt.adapters.factory import FACTORY

        for adapter in list(FACTORY.adapters.values()):
            adapter.cancel_open_connections()

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGTERM)


_running: set[InProcessDbt] = set()


def _running_here() -> list[InProcessDbt]:
    """The in-process dbt commands of this process not ended yet (a forked child inherits its
    parent's set, not the parent's dbt threads)."""
    return [dbt for dbt in list(_running) if dbt._pid == os.getpid()]


def dbt_is_running() -> bool:
    return bool(_running_here())


def _stop_dbt_left_running() -> None:
    """A process that exits with dbt still running (daemon threads die mid-statement at exit)
    interrupts it first and waits for it to end as it does on Ctrl-C: run results written, queries
    cancelled, the warehouse closed."""
    left_running = _running_here()
    for dbt in left_running:
        dbt.send_signal(signal.SIGINT)
    for dbt in left_running:
        dbt._thread.join(_EXIT_WAIT_SECONDS)


# A Dagster run worker is a multiprocessing child: when its run ends, multiprocessing's exit handler
# terminates thread pools (dbt runs its nodes in one, exit priority 15) before any atexit handler, and
# dbt then waits for a node that never finishes. A higher priority runs first; atexit covers the rest.
multiprocessing.util.Finalize(None, _stop_dbt_left_running, exitpriority=100)
atexit.register(_stop_dbt_left_running)


def _stamp_as_this_invocations(manifest: Any) -> None:
    """A manifest parsed by an earlier invocation (the warm-up's), as dbt stamps one it reuses from
    its parse state: the current invocation's id and time (manifest.json matches run_results.json)."""
    from dbt_common.invocation import get_invocation_id, get_invocation_started_at

    manifest.metadata.invocation_id = get_invocation_id()
    manifest.metadata.invocation_started_at = get_invocation_started_at()
    manifest.metadata.generated_at = datetime.now(UTC).replace(tzinfo=None)


def _set_async_exception(thread_id: int, exception: type[BaseException]) -> None:
    """Raise `exception` in the thread at its next Python instruction: CPython's
    `PyThreadState_SetAsyncExc`, the one way to interrupt a thread that is not the main one.

    Never called to drop a pending exception (`exception` NULL): CPython 3.11 then leaves its
    interpreter-wide "asynchronous exception pending" flag set, and any profiler or debugger
    (cProfile, coverage, pdb) afterwards loops for ever at the next generator resumption. A pending
    exception is taken instead (`InProcessDbt._invoke`)."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(exception))


def _nothing() -> None:
    return None


def _close_warehouse() -> None:
    """Close dbt-duckdb's database before dagster-dbt sees the end of dbt's output: a subprocess's
    exit closes it, and the next steps open the same file (read-only, in this process and in the GX
    child), which DuckDB refuses while this process holds it open for writing."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
        from dbt.adapters.factory import FACTORY
    except ImportError:
        return
    gc.collect()  # frames of an interrupted dbt that still hold cursors
    for adapter in list(FACTORY.adapters.values()):
        adapter.cleanup_connections()
    DuckDBConnectionManager.close_all_connections()
    gc.collect()


def _flags_from(env: Mapping[str, str], cwd: Path) -> list[str]:
    """dbt's flags for dagster-dbt's environment; relative paths are the subprocess's, relative to its
    working directory (the dbt project), which this process's is not."""
    flags: list[str] = []
    for variable, flag in _FLAG_OF_ENVIRONMENT.items():
        if value := env.get(variable):
            flags += [flag, str(cwd / value) if flag in _PATH_FLAGS else value]
    # dbt's console output is the pipe: dbt itself prints nothing to this process's stdout. Its log
    # file (dbt.log in the target folder) stays as the subprocess writes it: JSON, debug level.
    flags += [
        "--log-format",
        env.get("DBT_LOG_FORMAT", "json"),
        "--log-level",
        "none",
        "--log-level-file",
        "debug",
    ]
    if env.get("DBT_SEND_ANONYMOUS_USAGE_STATS", "").lower() == "false":
        flags.append("--no-send-anonymous-usage-stats")
    return flags


def _error_line(message: str) -> dict[str, Any]:
    return {"info": {"level": "error", "msg": message, "name": "InProcessDbtError"}, "data": {}}


def runs_in_process(dbt_executable: str) -> bool:
    """Whether dbt can run in this process exactly as the `dbt_executable` subprocess would: it is the
    dbt-core installed beside this interpreter, the target is DuckDB, and the warehouse path is
    absolute (the subprocess runs in dbt_project/, which a relative path in profiles.yml is relative
    to; this process does not). ORDER_AUDIT_DBT_IN_PROCESS=false: always the subprocess."""
    settings = Settings.from_env()
    return (
        settings.dbt_in_process
        and settings.dbt_target == "duckdb"
        and Path(dbt_executable).parent == Path(sys.executable).parent
        and Path(os.environ.get("ORDER_AUDIT_WAREHOUSE", "")).is_absolute()
    )


def in_process_subprocess_module() -> types.SimpleNamespace:
    """The standard `subprocess` module, but `Popen` is `InProcessDbt` (dagster-dbt's one use of it)."""
    return types.SimpleNamespace(**{**vars(subprocess), "Popen": InProcessDbt})
