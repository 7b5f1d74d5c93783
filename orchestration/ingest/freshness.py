"""Freshness: the newest extract of each required source must be at most N days old (WARN otherwise)."""

from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, AssetKey, asset_check

from orchestration.ingest.landing import landing_files
from orchestration.ingest.partitions import extract_date_bounds
from orchestration.ingest.sources import SOURCES, SourceSpec
from orchestration.settings import Settings


def build_freshness_check(spec: SourceSpec):  # type: ignore[no-untyped-def]
    @asset_check(
        asset=AssetKey(["raw", spec.name]),
        name=f"{spec.name}_extract_is_fresh",
        description=(
            f"The newest `{spec.name}` landing file is at most ORDER_AUDIT_FRESHNESS_MAX_DAYS days "
            "(default 2) older than today (UTC)."
        ),
    )
    def freshness(context: AssetCheckExecutionContext) -> AssetCheckResult:
        settings = Settings.from_env()
        first, today = extract_date_bounds(settings)
        # a file dated in the future (or before the first extract date) is not loaded: it proves nothing fresh
        dated = [
            f.extract_date
            for f in landing_files(settings.extracts_dir, spec)
            if f.extract_date and first <= f.extract_date <= today
        ]
        if not dated:
            return AssetCheckResult(
                passed=False,
                severity=AssetCheckSeverity.WARN,
                metadata={"newest_extract_date": "none", "max_age_days": settings.freshness_max_days},
            )
        newest = max(dated)
        age_days = (today - newest).days
        return AssetCheckResult(
            passed=age_days <= settings.freshness_max_days,
            severity=AssetCheckSeverity.WARN,
            metadata={
                "newest_extract_date": newest.isoformat(),
                "age_days": age_days,
                "max_age_days": settings.freshness_max_days,
            },
        )

    return freshness


freshness_checks = [build_freshness_check(spec) for spec in SOURCES.values() if spec.required_source]
