"""Run `orchestration.quality.run` in a short-lived child process and read its report.

The child opens the warehouse read-only and exits, which releases GX's hold on the DuckDB file, so
dbt and the publish step can write it afterwards. A child that crashes or times out yields a report
in which every requested expectation failed with the reason, never a silent pass.

Importing Great Expectations takes seconds, longer than validating a day of data. So children are
forked from the standard library's fork server (`multiprocessing`'s "forkserver" start method), which
imports GX once, in the background, from `prewarm()` on (called when a run starts, see
`GxValidator`): every validation after that starts without the import. A child gets an environment
built from the caller's current settings (`Settings.environ()`, not the fork server's environment)
and runs in the project root, as the CLI does.

Measured on the test warehouse (300 orders, 2 cores, with the suites' earlier 51 raw and 67 mart
expectations): the raw stage takes 1.4 s and the mart stage 1.6 s forked from the warm server, 6.1-6.5 s each in a fresh process (the
"spawn" start method, as `python -m orchestration.quality.run` would): 4.7 s of GX and project
imports saved per stage, about 9.5 s per run. The server preloads `forkserver_preload`, which works
around pyspark ending the server during the GX import (see there).
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing import forkserver, util
from pathlib import Path

from orchestration.quality.results import ValidationReport, failed
from orchestration.quality.suites import ExpectationSpec
from orchestration.settings import PROJECT_ROOT, Settings, variable

DEFAULT_TIMEOUT_SECONDS = float(variable("ORDER_AUDIT_QUALITY_TIMEOUT_SECONDS").default)
PRELOADED_MODULES = ["orchestration.quality.forkserver_preload"]

_forkserver_context = multiprocessing.get_context("forkserver")

# Linux keeps at most 107 bytes of a Unix socket's path. The fork server listens on
# <temp>/pymp-XXXXXXXX/listener-XXXXXXXX, 32 bytes more than the temp folder's path.
_UNIX_SOCKET_PATH_MAX = 107
_SOCKET_PATH_SUFFIX = len("/pymp-12345678/listener-12345678")
_SHORT_TEMP_DIRS = ("/tmp", "/var/tmp", "/usr/tmp")


@dataclass(frozen=True)
class LaunchResult:
    report: ValidationReport
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float


def prewarm() -> None:
    """Start the fork server (if it is not running) and let it import GX while the caller goes on."""
    _keep_the_socket_path_short()
    _forkserver_context.set_forkserver_preload(PRELOADED_MODULES)
    forkserver.ensure_running()


def _keep_the_socket_path_short() -> None:
    """Put multiprocessing's temp folder (and so the fork server's socket) in /tmp when TMPDIR is too long.

    Python 3.11 builds the socket's path from TMPDIR and fails with "AF_UNIX path too long" past 107
    bytes (a TMPDIR of 76 characters or more). Python 3.13 and later fall back to /tmp themselves
    (CPython gh-132124), as this does. The folder is multiprocessing's own, removed when the process exits.
    """
    if len(tempfile.gettempdir()) + _SOCKET_PATH_SUFFIX <= _UNIX_SOCKET_PATH_MAX:
        return
    short = next((d for d in _SHORT_TEMP_DIRS if os.path.isdir(d) and os.access(d, os.W_OK | os.X_OK)), None)
    if short is None:
        return
    configured = tempfile.tempdir
    tempfile.tempdir = short
    try:
        util.get_temp_dir()
    finally:
        tempfile.tempdir = configured


def _all_failed(
    specs: Sequence[ExpectationSpec], run_id: str, stage: str, warehouse: Path, why: str
) -> ValidationReport:
    now = datetime.now(UTC).isoformat()
    return ValidationReport(
        run_id=run_id,
        stage=stage,
        warehouse=str(warehouse),
        started_at=now,
        finished_at=now,
        parameters={},
        data_docs=None,
        outcomes=[failed(spec, why) for spec in specs],
    )


def _child_main(argv: list[str], environment: Mapping[str, str], stdout: str, stderr: str) -> None:
    """In the forked child: the caller's environment and output files, then the validation CLI."""
    os.environ.clear()
    os.environ.update(environment)
    os.chdir(PROJECT_ROOT)
    with open(stdout, "w", encoding="utf-8") as out, open(stderr, "w", encoding="utf-8") as err:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(out.fileno(), 1)
        os.dup2(err.fileno(), 2)
    from orchestration.quality import run

    sys.exit(run.main(argv))


def _arguments(
    warehouse: Path,
    specs: Sequence[ExpectationSpec],
    out: Path,
    *,
    run_id: str,
    stage: str,
    docs_dir: Path | None,
    build_docs: bool,
    loaded_after: datetime | None,
) -> list[str]:
    argv = ["--warehouse", str(warehouse), "--out", str(out), "--stage", stage, "--run-id", run_id]
    argv += ["--only", ",".join(spec.name for spec in specs)]
    if loaded_after is not None:
        argv += ["--loaded-after", loaded_after.isoformat()]
    if not build_docs:
        argv.append("--no-docs")
    elif docs_dir is not None:
        argv += ["--docs-dir", str(docs_dir)]
    return argv


def validate_in_subprocess(
    warehouse: Path,
    specs: Sequence[ExpectationSpec],
    *,
    run_id: str,
    stage: str,
    docs_dir: Path | None = None,
    build_docs: bool = True,
    loaded_after: datetime | None = None,
    timeout_seconds: float | None = None,
    settings: Settings | None = None,
) -> LaunchResult:
    """Validate `specs` (all of one stage) on `warehouse` in a child process.

    `loaded_after`: validate only the raw rows of loads after this UTC time (see `run --loaded-after`).
    `timeout_seconds`: default `settings.quality_timeout_seconds`; `settings`: default the environment's.
    """
    started = datetime.now(UTC)
    settings = Settings.from_env() if settings is None else settings
    timeout = settings.quality_timeout_seconds if timeout_seconds is None else timeout_seconds
    prewarm()
    with tempfile.TemporaryDirectory(prefix="order-audit-gx-") as tmp:
        out, stdout, stderr = Path(tmp) / "report.json", Path(tmp) / "stdout", Path(tmp) / "stderr"
        argv = _arguments(
            warehouse,
            specs,
            out,
            run_id=run_id,
            stage=stage,
            docs_dir=docs_dir,
            build_docs=build_docs,
            loaded_after=loaded_after,
        )
        environment = {**settings.child_environ(), "GX_ANALYTICS_ENABLED": "false", "PYTHONUNBUFFERED": "1"}
        child = _forkserver_context.Process(
            target=_child_main, args=(argv, environment, str(stdout), str(stderr)), name=f"gx-{stage}"
        )
        child.start()
        child.join(timeout)
        timed_out = child.is_alive()
        if timed_out:
            child.kill()
            child.join()
        seconds = (datetime.now(UTC) - started).total_seconds()
        output = stdout.read_text(encoding="utf-8") if stdout.exists() else ""
        errors = stderr.read_text(encoding="utf-8") if stderr.exists() else ""
        returncode = None if timed_out else child.exitcode
        if timed_out:
            why = f"validation process timed out after {timeout:.0f} s"
            report = _all_failed(specs, run_id, stage, warehouse, why)
        elif returncode in (0, 1) and out.exists():
            report = ValidationReport.read(out)
        else:
            tail = "\n".join(errors.strip().splitlines()[-20:])
            why = f"validation process exited with {returncode}: {tail}"
            report = _all_failed(specs, run_id, stage, warehouse, why)
        child.close()
        return LaunchResult(report, returncode, output, errors, seconds)
