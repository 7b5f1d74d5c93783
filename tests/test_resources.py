"""The project's dbt resource skips dagster-dbt's per-call `dbt --version` probe: it must report the
same version as the dbt executable (tests/test_workarounds.py checks the overridden dagster-dbt members).
A dbt invocation leaves its parse state for the next one, which then parses nothing again."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestration.transform.dbt_cli import OrderAuditDbtCli
from orchestration.transform.project import (
    PARTIAL_PARSE_FILE,
    dbt_cli,
    dbt_executable,
    dbt_project,
    invocation_target,
    keep_partial_parse,
)


def test_dbt_version_without_the_subprocess_probe_matches_dbt_version() -> None:
    resource = dbt_cli()
    assert isinstance(resource, OrderAuditDbtCli)
    printed = subprocess.run(
        [dbt_executable(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"installed:\s*(\d+\.\d+\.\d+)", printed)
    assert match, printed
    assert str(resource._cli_version) == match.group(1)


@pytest.fixture
def project_parse_state(tmp_path: Path) -> Iterator[None]:
    """Put the project's partial_parse.msgpack back afterwards: the test writes its own there."""
    state = dbt_project.project_dir / dbt_project.target_path / PARTIAL_PARSE_FILE
    saved = tmp_path / "saved_partial_parse.msgpack"
    if state.exists():
        shutil.copyfile(state, saved)
    yield
    if saved.exists():
        shutil.copyfile(saved, state)
    else:
        state.unlink(missing_ok=True)


@pytest.mark.usefixtures("project_parse_state")
def test_a_dbt_invocation_leaves_its_parse_state_to_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORDER_AUDIT_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))
    never_seen_vars = json.dumps({"probe": f"{tmp_path.name}-{time.time()}"})  # forces one full parse
    parsed_paths = []
    for name in ("first", "second"):
        # As the dbt asset does: a target folder seeded with this warehouse's parse state, if any.
        target = invocation_target(f"parse_probe_{name}", tmp_path.name)
        try:
            invocation = dbt_cli().cli(["parse", "--vars", never_seen_vars], target_path=target)
            invocation.wait()
            keep_partial_parse(invocation.target_path)
            perf_info = json.loads((Path(invocation.target_path) / "perf_info.json").read_text())
        finally:
            shutil.rmtree(target, ignore_errors=True)
        parsed_paths.append(perf_info["parsed_path_count"])
    assert parsed_paths[0] > 0 and parsed_paths[1] == 0, parsed_paths
