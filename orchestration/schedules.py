"""The daily schedule: at 06:00 UTC, a run of the audit job for the previous extract date."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from dagster import RunRequest, ScheduleDefinition, ScheduleEvaluationContext, SkipReason, schedule

from orchestration.ingest.landing import required_sources_without_files
from orchestration.settings import Settings


def previous_extract_date(tick: datetime | None) -> date:
    """The extract date a tick runs: the UTC day before it (the partitions reach today, for the sensor)."""
    return ((tick or datetime.now(UTC)).astimezone(UTC) - timedelta(days=1)).date()


def build_daily_schedule(job_name: str) -> ScheduleDefinition:
    @schedule(
        name="order_audit_daily",
        job_name=job_name,
        cron_schedule="0 6 * * *",
        execution_timezone="UTC",
        description=(
            "At 06:00 UTC, a run for the previous extract date (yesterday, UTC). Skipped, with the reason on"
            " the tick, while a required source (orders, payments, inventory movements) has no landing file"
            " of that date: the landing sensor or a later run picks the files up when they arrive."
        ),
    )
    def order_audit_daily(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        extract_date = previous_extract_date(context.scheduled_execution_time)
        settings = Settings.from_env()
        if extract_date < date.fromisoformat(settings.first_extract_date):
            return SkipReason(
                f"{extract_date} is before ORDER_AUDIT_FIRST_EXTRACT_DATE={settings.first_extract_date}"
            )
        missing = required_sources_without_files(settings.extracts_dir, extract_date, extract_date)
        if missing:
            return SkipReason(
                f"no landing file of {', '.join(missing)} dated {extract_date} in {settings.extracts_dir} yet"
            )
        key = extract_date.isoformat()
        return RunRequest(run_key=key, partition_key=key)

    return order_audit_daily
