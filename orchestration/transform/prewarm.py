"""Warm in-process dbt up while the raw-stage GX checks run, so that the dbt build starts sooner.

The first dbt command in a process costs more than the next ones: dbt builds the JSON schemas it
validates the project and profile with, compiles its (de)serializers for the manifest's classes and
reads the parse state (at 100 orders a first `dbt build` took 4.6 s, the next one 3.25 s, and 3.75 s
after a `dbt parse`). The raw-stage GX checks run just before the build, in a child process on the
other core, and this process only waits for it: a `dbt parse` in a thread does that work meanwhile.
(Started with the run instead, it slowed the raw loading's own Python as much as it saved.)

A warehouse dbt has no parse state for yet (a new one, or a new path) makes that parse the full one
(about 2 s) the build would have made; its state is kept as the warehouse's (`keep_partial_parse`), so
the build starts from it.

The parse opens no database and writes only into a target folder of its own, which it removes. dbt
keeps process-wide state (flags, its event manager, adapters), so a dbt command of this process waits
for the warm-up to end first (`wait_for_prewarm`, called by `OrderAuditDbtCli.cli`). A warm-up that
fails changes nothing: the build does the same work and reports any error itself.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
import uuid
from pathlib import Path

from orchestration.settings import Settings

logger = logging.getLogger(__name__)

TARGET_PREFIX = "prewarm"
# A warm-up folder this old was left by a process that ended mid-parse (a parse takes seconds).
STALE_AFTER_SECONDS = 3600.0

_prewarm: threading.Thread | None = None
_prewarm_lock = threading.Lock()


def start_prewarm(dbt_executable: str) -> None:
    """Start the warm-up parse in a thread, once per process, where dbt runs in this process."""
    global _prewarm
    from orchestration.transform.in_process import dbt_is_running, runs_in_process

    if not runs_in_process(dbt_executable) or dbt_is_running():
        return
    with _prewarm_lock:
        if _prewarm is not None:
            return
        _prewarm = threading.Thread(target=_parse, name="dbt-prewarm", daemon=True)
        _prewarm.start()


def wait_for_prewarm() -> None:
    """Let the warm-up end before another dbt command of this process starts."""
    if _prewarm is not None:
        _prewarm.join()


def _parse() -> None:
    from dbt.cli.main import dbtRunner

    from orchestration.transform.assets import AuditConfig
    from orchestration.transform.project import dbt_project, invocation_target, keep_partial_parse

    target: Path | None = None
    try:
        _remove_stale_targets(dbt_project.project_dir / dbt_project.target_path)
        target = invocation_target(TARGET_PREFIX, uuid.uuid4().hex)
        # The build's vars when the run's config does not set its own (the parse state records them).
        dbt_vars = AuditConfig().dbt_vars(Settings.from_env())
        result = dbtRunner().invoke(
            [
                "parse",
                "--project-dir",
                str(dbt_project.project_dir),
                "--profiles-dir",
                str(dbt_project.profiles_dir),
                "--target-path",
                str(target),
                "--log-path",
                str(target),
                "--no-write-json",
                "--quiet",
                "--log-level",
                "none",
                "--log-level-file",
                "none",
                *(["--vars", json.dumps(dbt_vars)] if dbt_vars else []),
            ]
        )
        if result.success:
            keep_partial_parse(target)
        else:
            logger.debug("dbt warm-up parse failed (the build reports it): %s", result.exception)
    except Exception:  # only a speed-up: the build does the same work and reports any error
        logger.debug("dbt warm-up parse failed", exc_info=True)
    finally:
        if target is not None:
            shutil.rmtree(target, ignore_errors=True)


def _remove_stale_targets(target_root: Path) -> None:
    for folder in target_root.glob(f"{TARGET_PREFIX}-*"):
        try:
            stale = time.time() - folder.stat().st_mtime > STALE_AFTER_SECONDS
        except FileNotFoundError:
            continue
        if stale:
            shutil.rmtree(folder, ignore_errors=True)
