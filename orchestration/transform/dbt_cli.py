"""`OrderAuditDbtCli`: dagster-dbt's CLI resource without two start-up costs of every `dbt` call.

Works around dagster-dbt 0.29.27 (`dagster_dbt/core/resource.py`), whose `DbtCliResource.cli()`, on
every call and in every process, before it starts dbt itself:

- reads the dbt version by running `dbt --version` in a subprocess (`_cli_version`): 1.9-2.1 s here.
  The dbt beside this interpreter is the installed dbt-core package: its metadata says the version;
- builds an in-process dbt adapter, loading profile, project and macros
  (`_initialize_dbt_core_adapter`): 0.35 s, 1.15 s for the first in a process. It serves only
  `fetch_row_counts()` and `fetch_column_metadata()`, which this project does not call (their queries
  would open the DuckDB file while dbt holds it).

Together about 3 s per dbt call (a `dbt parse` with nothing changed: 5.3-5.9 s with `DbtCliResource`,
2.9-3.1 s with this class). dagster-dbt has no public field or setting that skips either step, so this
class overrides the two private members. `tests/test_workarounds.py` fails when a dagster-dbt upgrade
renames them or changes their signatures (the speed-up would silently go) and checks that no
`dbt --version` runs. When dagster-dbt gains a public switch, delete this module and use
`DbtCliResource` in `orchestration.transform.project.dbt_cli`.

It also runs dbt inside the calling process where it can (`orchestration.transform.in_process`:
0.5-1.5 s less per dbt build; ORDER_AUDIT_DBT_IN_PROCESS=false turns it off), warmed up by a `dbt
parse` in the background while the raw-stage GX checks run, whose manifest the build then takes
(`orchestration.transform.prewarm`).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from functools import cached_property
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

import dagster_dbt.core.dbt_cli_invocation as dagster_dbt_invocation
from dagster_dbt import DbtCliResource
from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation
from packaging.version import Version

from orchestration.transform.in_process import in_process_subprocess_module, runs_in_process
from orchestration.transform.prewarm import wait_for_prewarm


class OrderAuditDbtCli(DbtCliResource):
    """`DbtCliResource` that reads dbt-core's version from its metadata and builds no dbt adapter."""

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

    def cli(self, args: Sequence[str], **kwargs: Any) -> DbtCliInvocation:
        """dagster-dbt's `cli()`, with dbt run in this process when it can be (`in_process`)."""
        wait_for_prewarm()
        if not runs_in_process(self.dbt_executable):
            return super().cli(args, **kwargs)
        real_subprocess = dagster_dbt_invocation.subprocess
        dagster_dbt_invocation.subprocess = in_process_subprocess_module()  # type: ignore[assignment]
        try:
            return super().cli(args, **kwargs)
        finally:
            dagster_dbt_invocation.subprocess = real_subprocess
