"""The one DbtProject handle, imported by everything that talks to dbt."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from dagster_dbt import DbtCliResource, DbtProject

from orchestration.settings import DBT_PROJECT_DIR

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


def dbt_executable() -> str:
    """dbt from the running interpreter's environment, so it works without an activated venv."""
    beside_python = Path(sys.executable).parent / "dbt"
    return str(beside_python) if beside_python.exists() else (shutil.which("dbt") or "dbt")


def dbt_cli() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())


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
