"""The one DbtProject handle, imported by everything that talks to dbt."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import shutil
import sys
import uuid
from collections.abc import Iterable, Iterator, Sequence
from functools import cached_property
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

from dagster_dbt import DbtCliResource, DbtProject
from packaging.version import Version

from orchestration.settings import DBT_PROJECT_DIR, Settings

logger = logging.getLogger(__name__)

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def dbt_executable() -> str:
    """dbt from the running interpreter's environment, so it works without an activated venv."""
    beside_python = Path(sys.executable).parent / "dbt"
    return str(beside_python) if beside_python.exists() else (shutil.which("dbt") or "dbt")


class OrderAuditDbtCli(DbtCliResource):
    """dagster-dbt's CLI resource without two start-up costs of every `dbt` call (3-4 s a run here).

    - The dbt version: dagster-dbt runs `dbt --version` in a subprocess; the dbt beside this
      interpreter is the installed dbt-core package, whose version is read from its metadata.
    - The in-process dbt adapter: dagster-dbt builds one (loading profile, project and macros) for
      `fetch_row_counts()` and `fetch_column_metadata()`, which this project does not call: their
      queries would open the DuckDB file while dbt holds it.
    """

    @cached_property
    def _cli_version(self) -> Version:
        if Path(self.dbt_executable).parent == Path(sys.executable).parent:
            try:
                return Version(installed_version("dbt-core"))
            except PackageNotFoundError:  # another dbt (e.g. Fusion) beside the interpreter: ask it
                pass
        return super()._cli_version

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> Any:
        return None


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


BUILD_OUTPUTS = frozenset({"target", "logs", "dbt_packages"})


def _project_source_files() -> Iterator[Path]:
    for folder, subfolders, files in os.walk(DBT_PROJECT_DIR):
        if Path(folder) == DBT_PROJECT_DIR:
            subfolders[:] = [name for name in subfolders if name not in BUILD_OUTPUTS]
        for name in files:
            yield Path(folder) / name


def manifest_is_current() -> bool:
    """Whether target/manifest.json is newer than every source file of the dbt project."""
    manifest = dbt_project.manifest_path
    if not manifest.exists():
        return False
    return manifest.stat().st_mtime >= max(path.stat().st_mtime for path in _project_source_files())


def _parse_project(*, unless_current: bool) -> None:
    """`dbt parse` into target/, one process at a time (a run, the UI and tests may start together: a
    manifest.json read while another process writes it would be cut short)."""
    target = dbt_project.project_dir / dbt_project.target_path
    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".parse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (unless_current and manifest_is_current()):
            dbt_cli().cli(["parse", "--quiet"], target_path=dbt_project.target_path).wait()


def prepare_manifest() -> None:
    """Parse the dbt project into target/manifest.json unless it is current (`dagster dev` always parses)."""
    _parse_project(unless_current=True)


if dbt_project.preparer.using_dagster_dev():
    _parse_project(unless_current=False)
elif not dbt_project.manifest_path.exists():
    prepare_manifest()
