"""Extract dates whose landing files the warehouse has not loaded as they are now.

A dated landing file is settled when the manifest's latest entry for its (source, file name) has the
file's size and was written after the file was last modified: the rule of the landing sensor, against
the manifest instead of a cursor. Every other file (new, or changed in size or modification time
since its load) makes its extract date pending. Loading a pending date still compares SHA-256
digests, so a file touched without change is recorded as a skipped duplicate, nothing more.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from orchestration.duck import connect, table_exists
from orchestration.ingest.landing import LandingFile, landing_files
from orchestration.ingest.schema import MANIFEST_NEWEST_FIRST
from orchestration.ingest.sources import DECISIONS, SOURCES, SourceSpec

_SETTLED_FILES = """
with landing(source, file_name, file_size, modified_at) as (values {rows}),
latest as (
    select source, file_name, file_size, loaded_at,
           row_number() over (partition by source, file_name order by {newest_first}) as delivery_rank
    from raw.load_manifest
)
select landing.source, landing.file_name
from landing
join latest
    on latest.delivery_rank = 1
    and latest.source = landing.source
    and latest.file_name = landing.file_name
    and latest.file_size = landing.file_size
    and latest.loaded_at > landing.modified_at
"""


def settled_files(
    con: duckdb.DuckDBPyConnection, files: dict[tuple[str, str], LandingFile]
) -> set[tuple[str, str]]:
    """The (source, file name) keys of `files` whose latest load is of the file as it is now."""
    if not files or not table_exists(con, "raw", "load_manifest"):
        return set()
    rows, parameters = [], []
    for (source, file_name), landing in files.items():
        stat = landing.path.stat()
        modified_at = datetime.fromtimestamp(stat.st_mtime, UTC).replace(tzinfo=None)
        rows.append("(?, ?, ?::bigint, ?::timestamp)")
        parameters += [source, file_name, stat.st_size, modified_at]
    query = _SETTLED_FILES.format(rows=", ".join(rows), newest_first=MANIFEST_NEWEST_FIRST)
    return {(str(s), str(f)) for s, f in con.execute(query, parameters).fetchall()}


def unsettled_files(extracts_dir: Path, warehouse: Path, specs: Sequence[SourceSpec]) -> list[LandingFile]:
    """The landing files of `specs` that are new or changed since they were loaded (dated ones only, but
    for the decision files, which have no extract date)."""
    files = {
        (spec.name, landing.file_name): landing
        for spec in specs
        for landing in landing_files(extracts_dir, spec)
        if landing.extract_date is not None or spec is DECISIONS
    }
    settled: set[tuple[str, str]] = set()
    if files and warehouse.exists():
        con = connect(warehouse, read_only=True)
        try:
            settled = settled_files(con, files)
        finally:
            con.close()
    return [landing for key, landing in files.items() if key not in settled]


def pending_dates(extracts_dir: Path, warehouse: Path) -> list[date]:
    """Sorted extract dates with a dated landing file that is new or changed since it was loaded."""
    return sorted(
        {
            landing.extract_date
            for landing in unsettled_files(extracts_dir, warehouse, tuple(SOURCES.values()))
            if landing.extract_date
        }
    )
