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

The next dbt command of the process also takes the manifest the warm-up parsed (`take_manifest`),
as dbt's programmatic API allows (`dbtRunner(manifest=...)`), when it is a `dbt build` whose parse
would be the warm-up's own: the same project, profiles and `--vars`, no flag that could change what
dbt parses, the same environment (the profile reads the warehouse path and target from it), and no
file of the dbt project changed since the warm-up started. dbt then skips its own parse check,
reading the parse state again and writing manifest.json once more: 0.3 s of a 100-order build (3.62 s
to 3.32 s, the mean of four builds each). Any other command, or a build with other inputs, parses as
usual, and the manifest is used once.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestration.settings import Settings

logger = logging.getLogger(__name__)

TARGET_PREFIX = "prewarm"
# A warm-up folder this old was left by a process that ended mid-parse (a parse takes seconds).
STALE_AFTER_SECONDS = 3600.0

_prewarm: threading.Thread | None = None
_prewarm_lock = threading.Lock()


@dataclass(frozen=True)
class _WarmUp:
    """A warm-up's manifest and what it was parsed from."""

    manifest: Any
    inputs: dict[str, object]  # `_parse_inputs` of its arguments
    environment: dict[str, str]
    started: float  # time.time(): the project's files were read after this

    def parses_as(self, dbt_args: Sequence[str]) -> bool:
        from orchestration.transform.manifest import newest_source_file_time

        return (
            _parse_inputs(dbt_args) == self.inputs
            and dict(os.environ) == self.environment
            and newest_source_file_time() < self.started
        )


# The last warm-up's manifest, until a dbt command takes it.
_parsed: _WarmUp | None = None

# dbt commands that take the warm-up's manifest, and the flags they may have (with a value or, for
# the second set, without one) beside the parse inputs compared: none changes what dbt parses.
_TAKING_COMMANDS = frozenset({"build"})
_FLAGS_WITH_A_VALUE = frozenset(
    {
        "--select",
        "-s",
        "--exclude",
        "--exclude-resource-type",
        "--resource-type",
        "--indirect-selection",
        "--target-path",
        "--log-path",
        "--log-format",
        "--log-level",
        "--log-level-file",
    }
)
_FLAGS_ALONE = frozenset(
    {"--quiet", "-q", "--full-refresh", "--fail-fast", "--no-send-anonymous-usage-stats"}
)
_PARSE_INPUTS = frozenset({"--project-dir", "--profiles-dir", "--vars"})


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


def take_manifest(dbt_args: Sequence[str]) -> Any | None:
    """The warm-up's manifest for this dbt command (arguments without the `dbt`) if its parse would be
    the warm-up's; None otherwise. Whatever the answer, no later command gets it."""
    global _parsed
    warm_up, _parsed = _parsed, None
    return warm_up.manifest if warm_up is not None and warm_up.parses_as(dbt_args) else None


def _parse_inputs(dbt_args: Sequence[str]) -> dict[str, object] | None:
    """What a dbt command's parse depends on among its arguments (project and profiles folders, vars),
    or None for a command that does not take the warm-up's manifest."""
    if not dbt_args or dbt_args[0] not in _TAKING_COMMANDS:
        return None
    inputs: dict[str, object] = {}
    arguments = iter(dbt_args[1:])
    for flag in arguments:
        if flag in _FLAGS_ALONE:
            continue
        if flag not in _FLAGS_WITH_A_VALUE and flag not in _PARSE_INPUTS:
            return None
        value = next(arguments, None)
        if value is None:
            return None
        if flag == "--vars":
            try:
                inputs[flag] = json.loads(value)
            except ValueError:  # YAML vars: not compared, so not taken
                return None
        elif flag in _PARSE_INPUTS:
            inputs[flag] = str(Path(value).resolve())
    inputs.setdefault("--vars", {})
    return inputs


def _parse() -> None:
    global _parsed
    from dbt.cli.main import dbtRunner

    from orchestration.transform.assets import AuditConfig
    from orchestration.transform.project import dbt_project, invocation_target, keep_partial_parse

    target: Path | None = None
    started, environment = time.time(), dict(os.environ)
    try:
        _remove_stale_targets(dbt_project.project_dir / dbt_project.target_path)
        target = invocation_target(TARGET_PREFIX, uuid.uuid4().hex)
        # The build's vars when the run's config does not set its own (the parse state records them).
        inputs = [
            "--project-dir",
            str(dbt_project.project_dir),
            "--profiles-dir",
            str(dbt_project.profiles_dir),
            *AuditConfig().vars_flag(Settings.from_env()),
        ]
        result = dbtRunner().invoke(
            [
                "parse",
                *inputs,
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
            ]
        )
        if result.success:
            keep_partial_parse(target)
            parse_inputs = _parse_inputs(["build", *inputs])
            if parse_inputs is not None:
                _parsed = _WarmUp(result.result, parse_inputs, environment, started)
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
