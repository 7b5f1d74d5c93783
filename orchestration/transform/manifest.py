"""target/manifest.json: parsed by `dbt parse` only when a dbt source file is newer than it.

Works around dagster-dbt 0.29.27's `DagsterDbtProjectPreparer` (`dagster_dbt/dbt_project.py`, the
preparer behind `DbtProject.prepare_if_dev()` and `dagster-dbt project prepare-and-package`):

- `prepare()` runs `dbt parse` every time, whether or not anything changed, with a plain
  `DbtCliResource` (its `dbt --version` probe and adapter included, see
  `orchestration.transform.dbt_cli`), and afterwards marks every seed in partial_parse.msgpack as
  changed, so the next dbt call parses the seeds again: 5.4-5.7 s per call here, against under
  0.01 s for `manifest_is_current()` when nothing changed. Every `order-audit run` and test session
  prepares the manifest, so the preparer would add over 5 s to each;
- it builds that `DbtCliResource` without `dbt_executable`, so it needs `dbt` on PATH, which a
  `.venv/bin/order-audit` started without an activated venv does not have;
- `prepare_if_dev()` does nothing outside `dagster dev`, so it cannot serve `order-audit run`, the CLI
  or the tests.

`ensure_manifest()` keeps `prepare_if_dev()`'s behaviour under `dagster dev` (parse on every load).
`tests/test_workarounds.py` shows that the preparer still parses with nothing changed; when it stops
doing that, use `dbt_project.preparer.prepare(dbt_project)` and delete this module's check.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from orchestration.settings import DBT_PROJECT_DIR
from orchestration.transform.project import PARTIAL_PARSE_FILE, dbt_cli, dbt_project

BUILD_OUTPUTS = frozenset({"target", "logs", "dbt_packages"})


def _project_source_files() -> Iterator[Path]:
    for folder, subfolders, files in os.walk(DBT_PROJECT_DIR):
        if Path(folder) == DBT_PROJECT_DIR:
            subfolders[:] = [name for name in subfolders if name not in BUILD_OUTPUTS]
        for name in files:
            yield Path(folder) / name


def newest_source_file_time() -> float:
    """When a source file of the dbt project last changed (the newest modification time)."""
    return max(path.stat().st_mtime for path in _project_source_files())


def manifest_is_current() -> bool:
    """Whether target/manifest.json is newer than every source file of the dbt project."""
    manifest = dbt_project.manifest_path
    if not manifest.exists():
        return False
    return manifest.stat().st_mtime >= newest_source_file_time()


def _parse_project(*, unless_current: bool) -> None:
    """`dbt parse` for target/, one process at a time (a run, the UI and tests may start together).

    dbt writes manifest.json in place, and the processes that load the dbt assets read it without this
    lock (a run starting while `dagster dev` reloads its code): so dbt parses into a scratch folder
    beside it, seeded with the current parse state, and its manifest.json and parse state are moved
    in, each by one rename. A reader gets the old file or the new one, never a file cut short.
    """
    target = dbt_project.project_dir / dbt_project.target_path
    target.mkdir(parents=True, exist_ok=True)
    with open(target / ".parse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if unless_current and manifest_is_current():
            return
        with tempfile.TemporaryDirectory(prefix=".parse-", dir=target) as folder:
            scratch = Path(folder)
            if (target / PARTIAL_PARSE_FILE).exists():  # dbt then parses only what changed
                shutil.copy2(target / PARTIAL_PARSE_FILE, scratch / PARTIAL_PARSE_FILE)
            dbt_cli().cli(["parse", "--quiet"], target_path=scratch).wait()
            os.replace(scratch / PARTIAL_PARSE_FILE, target / PARTIAL_PARSE_FILE)
            # The manifest last: its modification time is what marks the parse current.
            os.replace(scratch / "manifest.json", target / "manifest.json")


def prepare_manifest() -> None:
    """Parse the dbt project into target/manifest.json unless it is current (`dagster dev` always parses)."""
    _parse_project(unless_current=True)


def ensure_manifest() -> None:
    """What loading the dbt assets needs: under `dagster dev` a fresh parse (as `prepare_if_dev()`),
    otherwise a current manifest. Importing any module of `orchestration.transform` loads the dbt assets,
    so a caller cannot parse first: a model added since the last parse would be built by dbt but missing
    from the assets (dagster-dbt then failed the step with a KeyError on its unique id)."""
    if dbt_project.preparer.using_dagster_dev():
        _parse_project(unless_current=False)
    else:
        prepare_manifest()
