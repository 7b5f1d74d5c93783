"""The Dagster definitions load and are wired as the committed snapshot says (a few seconds, no run).

`tests/snapshots/asset_graph.json` lists every asset with its upstream assets, group, partitioning and
checks, and the jobs, schedules and sensors. A change to the wiring (a lost dependency, a check that no
longer attaches to its asset, a renamed job) fails here with a diff, long before a pipeline test would.
When the change is intended, regenerate the snapshot and commit it with the change:

    ORDER_AUDIT_UPDATE_SNAPSHOTS=1 .venv/bin/pytest -n 0 tests/test_definitions.py
"""

from __future__ import annotations

import difflib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from dagster import AssetKey, Definitions

SNAPSHOT = Path(__file__).with_name("snapshots") / "asset_graph.json"
UPDATE_VARIABLE = "ORDER_AUDIT_UPDATE_SNAPSHOTS"


def _key(key: AssetKey) -> str:
    return key.to_user_string()


def asset_graph_snapshot(defs: Definitions) -> dict[str, Any]:
    """The wiring of `defs` as plain, sorted JSON data."""
    repository = defs.get_repository_def()
    graph = repository.asset_graph
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=_key):
        node = graph.get(key)
        assets[_key(key)] = {
            "group": node.group_name,
            # False: a table another asset writes on the side (a dbt source such as raw/load_manifest)
            "materializable": node.is_materializable,
            "partitions": type(node.partitions_def).__name__ if node.partitions_def else None,
            "deps": sorted(_key(parent) for parent in node.parent_keys),
            "checks": sorted(check.name for check in node.check_keys),
        }
    jobs = {
        job.name: sorted(_key(key) for key in job.asset_layer.executable_asset_keys)
        for job in repository.get_all_jobs()
        if not job.name.startswith("__")  # Dagster's implicit asset jobs
    }
    schedules = {
        schedule.name: {"job": schedule.job_name, "cron": schedule.cron_schedule}
        for schedule in repository.schedule_defs
    }
    sensors = {
        sensor.name: {"jobs": sorted(target.job_name for target in sensor.targets)}
        for sensor in repository.sensor_defs
    }
    return {"assets": assets, "jobs": jobs, "schedules": schedules, "sensors": sensors}


def _as_text(snapshot: dict[str, Any]) -> str:
    return json.dumps(snapshot, indent=2, sort_keys=True) + "\n"


def test_the_asset_graph_matches_the_snapshot() -> None:
    from orchestration.definitions import defs

    actual = _as_text(asset_graph_snapshot(defs))
    if os.environ.get(UPDATE_VARIABLE) == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(actual, encoding="utf-8")
    expected = SNAPSHOT.read_text(encoding="utf-8") if SNAPSHOT.exists() else ""
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                fromfile=f"{SNAPSHOT.name} (committed)",
                tofile=f"{SNAPSHOT.name} (from orchestration.definitions)",
            )
        )
        raise AssertionError(
            f"The Dagster definitions no longer match {SNAPSHOT}. If the change is intended, run "
            f"`{UPDATE_VARIABLE}=1 .venv/bin/pytest -n 0 tests/test_definitions.py` and commit the "
            f"snapshot.\n{diff}"
        )


def test_the_gx_fork_server_imports_no_dagster() -> None:
    """The fork server imports GX for the validation children; the quality package loads its Dagster
    definitions only when asked (`orchestration.quality.defs`), so the server does not import Dagster."""
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, orchestration.quality.forkserver_preload;"
            " print(sorted({name.split('.')[0] for name in sys.modules} & {'dagster', 'great_expectations'}))",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parents[1],
    )
    assert loaded.stdout.split() == ["['great_expectations']"], loaded.stdout + loaded.stderr
    from orchestration import quality

    assert isinstance(quality.defs, Definitions) and quality.defs.asset_checks
