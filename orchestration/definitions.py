"""The Dagster code location: one module per domain, merged, with the shared resources and jobs."""

from dagster import AssetSelection, Definitions, ScheduleDefinition, define_asset_job, in_process_executor

from orchestration import ingest, publish, transform
from orchestration.resources import dbt_resource, warehouse_resource

order_audit_job = define_asset_job(
    "order_audit_job",
    selection=AssetSelection.all(),
    description="Load every landing file, build the audit mart with dbt, validate it and publish it.",
)

daily_schedule = ScheduleDefinition(
    name="order_audit_daily",
    job=order_audit_job,
    cron_schedule="0 6 * * *",
    execution_timezone="UTC",
)

defs = Definitions.merge(
    ingest.defs,
    transform.defs,
    publish.defs,
    Definitions(
        jobs=[order_audit_job],
        schedules=[daily_schedule],
        resources={"warehouse": warehouse_resource(), "dbt": dbt_resource()},
        executor=in_process_executor,
    ),
)
