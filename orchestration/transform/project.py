"""The one DbtProject handle, imported by everything that talks to dbt, and dbt's parse state.

The dbt CLI resource is `orchestration.transform.dbt_cli.OrderAuditDbtCli`; the manifest is prepared
by `orchestration.transform.manifest`."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import uuid
from collections.abc import Iterable
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

from orchestration.settings import DBT_PROJECT_DIR, Settings
from orchestration.transform.dbt_cli import OrderAuditDbtCli

logger = logging.getLogger(__name__)

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def dbt_executable() -> str:
    """dbt from the running interpreter's environment, so it works without an activated venv."""
    beside_python = Path(sys.executable).parent / "dbt"
    return str(beside_python) if beside_python.exists() else (shutil.which("dbt") or "dbt")


def dbt_cli() -> DbtCliResource:
    return OrderAuditDbtCli(project_dir=dbt_project, dbt_executable=dbt_executable())


PARTIAL_PARSE_FILE = "partial_parse.msgpack"


PARSE_STATES_DIR = "parse_states"
PARSE_STATES_KEPT = 20


def _parse_state_of_this_warehouse() -> Path:
    """Where the parse state for the current warehouse and dbt target is kept.

    dbt parses the whole project again (5-6 s here) whenever the profile's connection differs from
    the one its saved state was parsed with, and the warehouse path is part of it. One state per
    warehouse keeps partial parsing for every warehouse a machine builds (tests, several landing
    folders), not only for the one built last.
    """
    settings = Settings.from_env()
    key = f"{settings.dbt_target}\0{settings.warehouse}"
    name = hashlib.sha256(key.encode()).hexdigest()[:16] + ".msgpack"
    return dbt_project.project_dir / dbt_project.target_path / PARSE_STATES_DIR / name


def _copy_atomically(source: Path, destination: Path) -> None:
    temporary = destination.with_name(f".{destination.name}.{os.getpid()}")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, temporary)
        os.replace(temporary, destination)
    except OSError as error:  # only a speed-up: never fail a build over it, nor hide dbt's own error
        logger.warning("could not keep dbt's parse state (%s): the next build parses in full", error)
        temporary.unlink(missing_ok=True)


def _delete_all_but_newest(paths: Iterable[Path], keep: int) -> None:
    """Delete files or folders, all but the `keep` most recently modified. Another run may delete
    some of them meanwhile: a path that is gone is no longer counted, never an error."""
    ages = []
    for path in paths:
        try:
            ages.append((path.stat().st_mtime, path))
        except FileNotFoundError:
            continue
    for _, stale in sorted(ages)[: max(len(ages) - keep, 0)]:
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def invocation_target(op_name: str, run_id: str) -> Path:
    """A new target folder for one dbt invocation (dagster-dbt's naming), seeded with the parse state
    of the current warehouse when there is one (dagster-dbt then keeps it instead of the project's)."""
    target = (
        dbt_project.project_dir / dbt_project.target_path / f"{op_name}-{run_id[:7]}-{uuid.uuid4().hex[:7]}"
    )
    state = _parse_state_of_this_warehouse()
    if state.exists():
        _copy_atomically(state, target / PARTIAL_PARSE_FILE)
    return target


def keep_partial_parse(invocation_target: Path) -> None:
    """Keep a dbt invocation's parse state for the next invocation: as the project's (dagster-dbt's
    seed for every invocation) and as the current warehouse's (`invocation_target`).

    dagster-dbt runs each invocation in its own target directory, seeded with the project's
    partial_parse.msgpack. That file came from `dbt parse`, without the build's `--vars` and with
    the profile as it was then, so dbt threw it away and parsed the whole project on every build.
    dbt still checks the file itself (files, vars, profile) and parses in full when any differs, so
    copying back the newest one is always safe.
    """
    source = Path(invocation_target) / PARTIAL_PARSE_FILE
    if not source.exists():
        return
    _copy_atomically(source, dbt_project.project_dir / dbt_project.target_path / PARTIAL_PARSE_FILE)
    state = _parse_state_of_this_warehouse()
    _copy_atomically(source, state)
    _delete_all_but_newest(state.parent.glob("*.msgpack"), PARSE_STATES_KEPT)


INVOCATION_TARGETS_KEPT = 10


def prune_invocation_targets(keep: int = INVOCATION_TARGETS_KEPT) -> None:
    """Delete all but the newest `keep` per-invocation target folders of the dbt assets.

    dagster-dbt gives every `dbt build` a target folder of its own (`<asset op>-<run>-<hash>`,
    about 5 MB: compiled SQL, run_results.json, dbt.log); without this they piled up by the hundred.
    """
    target = dbt_project.project_dir / dbt_project.target_path
    _delete_all_but_newest((path for path in target.glob("order_audit_dbt_assets-*") if path.is_dir()), keep)
