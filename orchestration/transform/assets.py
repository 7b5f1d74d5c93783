"""dbt models, seeds and tests as Dagster assets and asset checks, downstream of the raw assets."""

import json
import os
from collections.abc import Iterator, Mapping
from typing import Any

from dagster import AssetExecutionContext, Config
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtCliResource, dbt_assets

from orchestration.settings import Settings
from orchestration.transform.manifest import ensure_manifest
from orchestration.transform.project import (
    dbt_project,
    invocation_target,
    keep_partial_parse,
    prune_invocation_targets,
)


class AuditConfig(Config):
    """The audit's as-of time (UTC, empty: the latest clean event) and the fulfillment SLA in hours."""

    as_of: str = os.environ.get("ORDER_AUDIT_AS_OF", "")
    fulfillment_sla_hours: float = float(os.environ.get("ORDER_AUDIT_SLA_HOURS", "72"))


class OrderAuditTranslator(DagsterDbtTranslator):
    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        fqn = dbt_resource_props.get("fqn", [])
        if dbt_resource_props.get("resource_type") == "seed":
            return "reference"
        return fqn[1] if len(fqn) > 2 else super().get_group_name(dbt_resource_props)


translator = OrderAuditTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

ensure_manifest()  # `dagster dev`: parse now; elsewhere only when there is no manifest yet


@dbt_assets(
    manifest=dbt_project.manifest_path,
    project=dbt_project,
    dagster_dbt_translator=translator,
    pool="warehouse_writer",
)
def order_audit_dbt_assets(
    context: AssetExecutionContext, dbt: DbtCliResource, config: AuditConfig
) -> Iterator[Any]:
    os.environ["ORDER_AUDIT_WAREHOUSE"] = str(Settings.from_env().warehouse)
    dbt_vars = {"audit_as_of": config.as_of, "fulfillment_sla_hours": config.fulfillment_sla_hours}
    # Unit tests are for development and CI (tests/test_dbt_unit.py), not for every production build.
    build = ["build", "--exclude-resource-type", "unit_test", "--vars", json.dumps(dbt_vars)]
    target = invocation_target(context.op_def.name, context.run.run_id)
    invocation = dbt.cli(build, context=context, target_path=target)
    try:
        yield from invocation.stream()
    finally:
        keep_partial_parse(invocation.target_path)
        prune_invocation_targets()
