"""The Dagster code location: one module per domain, merged, with the shared resources, job and triggers."""

from dagster import AssetSelection, Definitions, define_asset_job, in_process_executor

from orchestration import ingest, publish, quality, transform
from orchestration.ingest.sensors import build_landing_sensor
from orchestration.resources import dbt_resource, warehouse_resource
from orchestration.schedules import build_daily_schedule

order_audit_job = define_asset_job(
    "order_audit_job",
    selection=AssetSelection.all(),
    executor_def=in_process_executor,
    description="Load the landing files of the extract date(s), build the audit mart with dbt, validate it, publish it.",
)

daily_schedule = build_daily_schedule(order_audit_job.name)

defs = Definitions.merge(
    ingest.defs,
    transform.defs,
    quality.defs,
    publish.defs,
    Definitions(
        jobs=[order_audit_job],
        schedules=[daily_schedule],
        sensors=[build_landing_sensor(order_audit_job.name)],
        resources={"warehouse": warehouse_resource(), "dbt": dbt_resource()},
        executor=in_process_executor,
    ),
)
