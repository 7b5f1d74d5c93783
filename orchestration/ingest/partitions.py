"""Daily partitions of the raw loading: one partition per extract date (the date in the file name)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from dagster import DailyPartitionsDefinition

from orchestration.settings import Settings

extract_date_partitions = DailyPartitionsDefinition(
    start_date=Settings.from_env().first_extract_date, end_offset=1, timezone="UTC", fmt="%Y-%m-%d"
)


def partition_dates(first_key: str, last_key: str) -> tuple[date, date]:
    return date.fromisoformat(first_key), date.fromisoformat(last_key)


def extract_date_bounds(settings: Settings | None = None) -> tuple[date, date]:
    """The first and last extract dates that are partitions: ORDER_AUDIT_FIRST_EXTRACT_DATE to today (UTC)."""
    settings = Settings.from_env() if settings is None else settings
    return date.fromisoformat(settings.first_extract_date), datetime.now(UTC).date()


def outside_bounds(dates: list[date], bounds: tuple[date, date]) -> list[date]:
    return [day for day in dates if not bounds[0] <= day <= bounds[1]]


def out_of_bounds_message(dates: list[date], bounds: tuple[date, date]) -> str:
    listed = ", ".join(str(day) for day in dates[:5]) + (", ..." if len(dates) > 5 else "")
    return (
        f"Landing files dated {listed} are not loaded: extract dates run from ORDER_AUDIT_FIRST_EXTRACT_DATE"
        f" ({bounds[0]}) to today ({bounds[1]}, UTC). Rename those files or set the variable."
    )
