"""The one DbtProject handle, imported by everything that talks to dbt."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Sequence
from functools import cached_property
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

from dagster_dbt import DbtCliResource, DbtProject
from packaging.version import Version

from orchestration.settings import DBT_PROJECT_DIR

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


def keep_partial_parse(invocation_target: Path) -> None:
    """Make a dbt invocation's parse state the project's, for the next invocation to start from.

    dagster-dbt runs each invocation in its own target directory, seeded with the project's
    partial_parse.msgpack. That file came from `dbt parse`, without the build's `--vars` and with
    the profile as it was then, so dbt threw it away and parsed the whole project on every build
    (2 s here). dbt still checks the file itself (files, vars, profile) and parses in full when any
    differs, so copying back the newest one is always safe.
    """
    source = Path(invocation_target) / PARTIAL_PARSE_FILE
    if not source.exists():
        return
    destination = dbt_project.project_dir / dbt_project.target_path / PARTIAL_PARSE_FILE
    temporary = destination.with_name(f".{PARTIAL_PARSE_FILE}.{os.getpid()}")
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, temporary)
        os.replace(temporary, destination)
    except OSError as error:  # only a speed-up: never fail a build over it, nor hide dbt's own error
        logger.warning("could not keep dbt's parse state (%s): the next build parses in full", error)
        temporary.unlink(missing_ok=True)


def manifest_is_current() -> bool:
    """Whether target/manifest.json is newer than every source file of the dbt project."""
    manifest = dbt_project.manifest_path
    if not manifest.exists():
        return False
    build_outputs = {"target", "logs", "dbt_packages"}
    sources = (
        path
        for path in DBT_PROJECT_DIR.rglob("*")
        if path.is_file() and path.relative_to(DBT_PROJECT_DIR).parts[0] not in build_outputs
    )
    return manifest.stat().st_mtime >= max(path.stat().st_mtime for path in sources)


def prepare_manifest() -> None:
    """Parse the dbt project into target/manifest.json unless it is current (`dagster dev` always parses)."""
    if not manifest_is_current():
        dbt_cli().cli(["parse", "--quiet"], target_path=dbt_project.target_path).wait()


if dbt_project.preparer.using_dagster_dev():
    dbt_cli().cli(["parse", "--quiet"], target_path=dbt_project.target_path).wait()
elif not dbt_project.manifest_path.exists():
    prepare_manifest()
