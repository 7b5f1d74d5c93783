"""dbt models, seeds and tests as Dagster assets and asset checks, downstream of the raw assets."""

import json
from collections.abc import Iterator, Mapping
from typing import Any

from dagster import AssetExecutionContext, Config
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets
from dagster_duckdb import DuckDBResource

from orchestration.rules import dbt_project_vars
from orchestration.settings import Settings, SettingsError, check_positive_number, check_utc_time
from orchestration.transform.manifest import ensure_manifest
from orchestration.transform.project import (
    dbt_project,
    invocation_target,
    keep_partial_parse,
    prune_invocation_targets,
)


class AuditConfig(Config):
    """The audit's as-of time (UTC, empty: the latest clean event) and the fulfillment SLA in hours;
    unset (None): ORDER_AUDIT_AS_OF and ORDER_AUDIT_SLA_HOURS as the run starts (`Settings`)."""

    as_of: str | None = None
    fulfillment_sla_hours: float | None = None

    def dbt_vars(self, settings: Settings) -> dict[str, object]:
        """The dbt vars of the build (this config, else the settings) that differ from dbt_project.yml's
        defaults: a build with the defaults passes no `--vars`, so its parse state is the one `dbt parse`
        left, and dbt parses only what changed instead of the whole project ("Unable to do partial
        parsing because config vars ... have changed" cost every run a full parse)."""
        # Checked as the settings and the command line check theirs (the Dagster UI's launchpad sets
        # them too): an as-of time with an offset is converted to UTC, which DuckDB's cast would not do.
        wanted = {
            "audit_as_of": (
                settings.as_of
                if self.as_of is None
                else (check_utc_time("as_of", self.as_of) if self.as_of.strip() else "")
            ),
            "fulfillment_sla_hours": (
                settings.sla_hours
                if self.fulfillment_sla_hours is None
                else check_positive_number("fulfillment_sla_hours", str(self.fulfillment_sla_hours))
            ),
        }
        defaults = dbt_project_vars()
        return {name: value for name, value in wanted.items() if not _same(value, defaults[name])}

    def vars_flag(self, settings: Settings) -> list[str]:
        """`--vars` with `dbt_vars`, or nothing: the build and its warm-up parse (`prewarm`) pass the same."""
        dbt_vars = self.dbt_vars(settings)
        return ["--vars", json.dumps(dbt_vars)] if dbt_vars else []


def _same(value: object, default: object) -> bool:
    if isinstance(value, int | float) and isinstance(default, int | float):
        return float(value) == float(default)
    return str(value) == str(default)


class OrderAuditTranslator(DagsterDbtTranslator):
    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        if dbt_resource_props.get("resource_type") == "seed":
            return "reference"
        return fqn[1] if len(fqn) > 2 else super().get_group_name(dbt_resource_props)


translator = OrderAuditTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

ensure_manifest()  # `dagster dev`: parse now; elsewhere only when a dbt source file is newer than the manifest


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=translator,
    pool="warehouse_writer",
)
def order_audit_dbt_assets(
    context: AssetExecutionContext,
    dbt: DbtCliResource,
    config: AuditConfig,
    warehouse: DuckDBResource,  # not opened here: the run lock comes with it, so a dbt-only run takes it too
) -> Iterator[Any]:
    settings = Settings.from_env()
    if not settings.dbt_sees_this_warehouse():
        # dagster-dbt gives dbt this process's environment, and dbt takes a relative path relative to
        # dbt_project/: `order-audit` exports the absolute path (orchestration/cli.py, main).
        raise SettingsError(
            f"dbt would not open the warehouse {settings.warehouse}: set ORDER_AUDIT_WAREHOUSE to an"
            " absolute path, or start Dagster through `order-audit run` / `order-audit ui`"
        )
    # Unit tests are for development and CI (tests/test_analyses.py runs them), not for every production build.
    build = ["build", "--exclude-resource-type", "unit_test", *config.vars_flag(settings)]
    target = invocation_target(context.op_def.name, context.run.run_id)
    invocation = dbt.cli(build, context=context, target_path=target)
    try:
        yield from invocation.stream()
    finally:
        keep_partial_parse(invocation.target_path)
        prune_invocation_targets()
