"""The project's dbt resource skips dagster-dbt's per-call `dbt --version` probe and adapter: it must
report the same version as the dbt executable, and the methods it overrides must still exist."""

from __future__ import annotations

import re
import subprocess

from dagster_dbt import DbtCliResource

from orchestration.transform.project import OrderAuditDbtCli, dbt_cli, dbt_executable


def test_dbt_version_without_the_subprocess_probe_matches_dbt_version() -> None:
    resource = dbt_cli()
    assert isinstance(resource, OrderAuditDbtCli)
    printed = subprocess.run(
        [dbt_executable(), "--version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"installed:\s*(\d+\.\d+\.\d+)", printed)
    assert match, printed
    assert str(resource._cli_version) == match.group(1)


def test_the_overridden_dagster_dbt_internals_still_exist() -> None:
    # A dagster-dbt upgrade that renames these would silently bring the start-up costs back.
    assert isinstance(
        DbtCliResource.__dict__.get("_cli_version"), type(OrderAuditDbtCli.__dict__["_cli_version"])
    )
    assert callable(DbtCliResource.__dict__.get("_initialize_dbt_core_adapter"))
    assert dbt_cli()._initialize_dbt_core_adapter([]) is None
