"""Daily partitions of the raw loading: one partition per extract date (the date in the file name)."""

from __future__ import annotations

from datetime import date

from dagster import DailyPartitionsDefinition

from orchestration.settings import Settings

extract_date_partitions = DailyPartitionsDefinition(
    start_date=Settings.from_env().first_extract_date, end_offset=1, timezone="UTC", fmt="%Y-%m-%d"
)


def partition_dates(first_key: str, last_key: str) -> tuple[date, date]:
    return date.fromisoformat(first_key), date.fromisoformat(last_key)
