"""The publish assets: the mart (only after it is built and every blocking check has passed), then the digests."""

from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset
from dagster_duckdb import DuckDBResource

from orchestration.publish.notify import (
    NotifyResult,
    pending_by_route,
    queue_changes,
    record_deliveries,
    send_digests,
)
from orchestration.publish.serving import MART_TABLES, publish
from orchestration.routing import load_routing
from orchestration.settings import Settings


@asset(
    key=AssetKey(["published", "audit_mart"]),
    group_name="publish",
    kinds={"duckdb", "parquet"},
    deps=[AssetKey([table]) for table in MART_TABLES],
    description=(
        "The audit mart as analysts and dashboards see it: a read-only serving DuckDB file (ORDER_AUDIT_SERVING_DB) "
        "swapped in atomically, plus Parquet exports. Skipped when a blocking check on the mart fails, so the "
        "last good mart stays published."
    ),
    pool="warehouse_writer",
)
def published_audit_mart(context: AssetExecutionContext, warehouse: DuckDBResource) -> MaterializeResult:
    settings = Settings.from_env()
    result = publish(
        settings.warehouse,
        settings.serving_db,
        context.run.run_id,
        memory_limit=settings.duckdb_memory_limit,
        threads=settings.duckdb_threads,
    )
    context.log.info(
        f"Published {settings.serving_db} ({', '.join(f'{t}: {n}' for t, n in result.row_counts.items())})"
    )
    return MaterializeResult(
        metadata={
            "serving_db": MetadataValue.path(str(result.serving_db)),
            "parquet_dir": MetadataValue.path(str(result.parquet_dir)),
            "published_at": MetadataValue.text(result.published_at.isoformat()),
            "serving_db_bytes": result.serving_db.stat().st_size,
            **{f"rows_{table}": count for table, count in result.row_counts.items()},
            # open exceptions by code, owner and route_priority, SLA breaches by route, orders by audit status:
            # numeric, plotted over time
            **result.open_exceptions,
        }
    )


@asset(
    key=AssetKey(["published", "notifications"]),
    group_name="publish",
    kinds={"duckdb"},
    deps=[AssetKey(["published", "audit_mart"])],
    description=(
        "One digest per route, after a successful publish, of the exceptions that are new, reopened or newly past"
        " their SLA, sent to the route's destination (routing.yml `notifications`: a webhook whose URL an"
        " environment variable holds, or a JSON Lines file). notify.outbox records what was sent: a rerun sends"
        " nothing new, a failed delivery is retried by the next run, and a notification never fails the run."
    ),
    pool="warehouse_writer",
)
def published_notifications(context: AssetExecutionContext, warehouse: DuckDBResource) -> MaterializeResult:
    settings = Settings.from_env()
    notifications = load_routing().notifications
    with warehouse.get_connection() as con:
        queued = queue_changes(con, context.run.run_id)
        pending = pending_by_route(con)
    result = NotifyResult(queued=queued)
    result.deliveries = send_digests(pending, notifications, settings.warehouse.parent)
    if result.deliveries:
        with warehouse.get_connection() as con:
            record_deliveries(con, result.deliveries, context.run.run_id)
    for delivery in result.failed:
        context.log.warning(f"Digest for route {delivery.route} not sent, retried next run: {delivery.error}")
    return MaterializeResult(metadata=result.as_metadata())
