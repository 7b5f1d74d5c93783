"""Load a source's landing files into the raw schema: one transaction per file, every row accounted for.

Per file: hash it (DuckDB's `read_blob` + `sha256`), compare with the manifest, read it with DuckDB's
readers, validate every row, then in one transaction replace the rows of any earlier delivery of the
same file name, insert clean rows into `raw.<source>` and bad rows into `raw.quarantine`, and append a
`raw.load_manifest` row. `rows_read = rows_loaded + rows_quarantined` holds for every file.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from orchestration.duck import first_row, scalar, sql_string
from orchestration.ingest import readers
from orchestration.ingest.landing import LandingFile, landing_files
from orchestration.ingest.pending import settled_files
from orchestration.ingest.readers import FileRejected
from orchestration.ingest.schema import MANIFEST_NEWEST_FIRST, create_raw_schema
from orchestration.ingest.sources import ORDER_LINE_COLUMNS, ORDERS, SourceSpec
from orchestration.ingest.validation import validate_order_documents, validate_table_rows


@dataclass
class SourceLoadResult:
    source: str
    files_seen: int = 0
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    rejected: list[str] = field(default_factory=list)

    def as_metadata(self) -> dict[str, int | str]:
        return {
            "files_seen": self.files_seen,
            "files_loaded": self.statuses["loaded"],
            "files_replaced": self.statuses["replaced"],
            "files_skipped_duplicate": self.statuses["skipped_duplicate"],
            "files_rejected": self.statuses["rejected"],
            "rows_read": self.rows_read,
            "rows_loaded": self.rows_loaded,
            "rows_quarantined": self.rows_quarantined,
        }


def new_load_id() -> str:
    return uuid.uuid4().hex


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _fingerprint(con: duckdb.DuckDBPyConnection, path: Path) -> tuple[int, str]:
    row = first_row(con, f"select size, sha256(content) from read_blob({sql_string(path)})")
    assert row is not None
    return int(row[0]), str(row[1])


def _previous_delivery(con: duckdb.DuckDBPyConnection, source: str, file_name: str) -> str | None:
    row = first_row(
        con,
        f"""
        select sha256 from raw.load_manifest
        where source = ? and file_name = ? and status in ('loaded', 'replaced', 'rejected')
        order by {MANIFEST_NEWEST_FIRST} limit 1
        """,
        [source, file_name],
    )
    return None if row is None else row[0]


def _has_loaded_rows(con: duckdb.DuckDBPyConnection, source: str, file_name: str) -> bool:
    count = scalar(
        con,
        "select count(*) from raw.load_manifest where source = ? and file_name = ? and status in ('loaded', 'replaced')",
        [source, file_name],
    )
    return bool(count)


# Errors of the machine, not of one file's content: they fail the run instead of rejecting the file.
_ENVIRONMENT_ERRORS = (duckdb.IOException, duckdb.OutOfMemoryException, duckdb.InterruptException)


def _read(con: duckdb.DuckDBPyConnection, spec: SourceSpec, landing: LandingFile) -> None:
    """Read and validate one file into temp tables; any error its content causes rejects that file only."""
    try:
        _read_and_validate(con, spec, landing)
    except _ENVIRONMENT_ERRORS:
        raise
    except duckdb.Error as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise FileRejected("unreadable", f"DuckDB could not read the file: {first_line}") from error


def _read_and_validate(con: duckdb.DuckDBPyConnection, spec: SourceSpec, landing: LandingFile) -> None:
    if spec is ORDERS:
        if landing.file_format == "parquet":
            readers.read_parquet_documents(con, landing.path)
        else:
            readers.read_jsonl(con, landing.path)
        validate_order_documents(con, spec)
    else:
        if landing.file_format == "parquet":
            readers.read_parquet_table(con, spec, landing.path)
        elif landing.file_format == "jsonl":
            readers.read_jsonl(con, landing.path)
            readers.project_json_columns(con, spec)
        else:
            readers.read_csv(con, spec, landing.path)
        validate_table_rows(con, spec)


def _write_rows(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, landing: LandingFile, load_id: str
) -> tuple[int, int]:
    lineage = (
        f"{sql_string(load_id)}, {sql_string(landing.file_name)}, {sql_string(landing.extract_date)}::date"
    )
    con.execute(
        f"""
        insert into {spec.raw_table} (load_id, source_file, extract_date, line_number, {", ".join(spec.columns)})
        select {lineage}, line_number, {", ".join(spec.columns)} from _validated where len(_errors) = 0
        """
    )
    if spec is ORDERS:
        con.execute(
            f"""
            insert into raw.order_lines (load_id, source_file, extract_date, line_number, order_id, updated_at,
                                         line_index, {", ".join(ORDER_LINE_COLUMNS)})
            select {lineage}, l.line_number, l.order_id, l.updated_at, l.line_index,
                   {", ".join("l." + c for c in ORDER_LINE_COLUMNS)}
            from _order_lines as l
            where l.line_number in (select line_number from _validated where len(_errors) = 0)
            """
        )
    con.execute(
        f"""
        insert into raw.quarantine
        select {sql_string(load_id)}, {sql_string(spec.name)}, {sql_string(landing.file_name)},
               {sql_string(landing.extract_date)}::date, line_number, raw_text, reason_code, reason, now()::timestamp
        from (
            select line_number, i.raw_text, split_part(v._errors[1], ':', 1) as reason_code,
                   array_to_string(v._errors, '; ') as reason
            from _validated as v join _incoming as i using (line_number) where len(v._errors) > 0
            union all
            select line_number, raw_text, 'unparseable', reason from _unparseable
        )
        """
    )
    loaded = scalar(con, "select count(*) from _validated where len(_errors) = 0")
    quarantined = scalar(
        con,
        "select (select count(*) from _validated where len(_errors) > 0) + (select count(*) from _unparseable)",
    )
    return int(loaded), int(quarantined)


def _record(
    con: duckdb.DuckDBPyConnection,
    landing: LandingFile,
    load_id: str,
    *,
    size: int | None,
    sha256: str | None,
    rows: tuple[int, int],
    status: str,
    error: str | None,
) -> None:
    con.execute(
        "insert into raw.load_manifest values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            load_id,
            landing.source,
            landing.file_name,
            str(landing.path),
            landing.file_format,
            size,
            sha256,
            landing.extract_date,
            landing.part,
            _now(),
            rows[0] + rows[1],
            rows[0],
            rows[1],
            status,
            error,
        ],
    )


def load_file(con: duckdb.DuckDBPyConnection, spec: SourceSpec, landing: LandingFile, load_id: str) -> str:
    """Load one file; returns its manifest status."""
    if landing.name_error:
        _record(
            con,
            landing,
            load_id,
            size=None,
            sha256=None,
            rows=(0, 0),
            status="rejected",
            error=f"bad_file_name: {landing.name_error}",
        )
        return "rejected"
    size, sha256 = _fingerprint(con, landing.path)
    previous = _previous_delivery(con, spec.name, landing.file_name)
    if previous == sha256:
        _record(
            con,
            landing,
            load_id,
            size=size,
            sha256=sha256,
            rows=(0, 0),
            status="skipped_duplicate",
            error=None,
        )
        return "skipped_duplicate"
    try:
        _read(con, spec, landing)
    except FileRejected as rejection:
        _record(
            con,
            landing,
            load_id,
            size=size,
            sha256=sha256,
            rows=(0, 0),
            status="rejected",
            error=str(rejection),
        )
        return "rejected"
    replacing = _has_loaded_rows(con, spec.name, landing.file_name)
    con.execute("begin transaction")
    try:
        if replacing:
            for table in (spec.raw_table, *(["raw.order_lines"] if spec is ORDERS else [])):
                con.execute(f"delete from {table} where source_file = ?", [landing.file_name])
            con.execute(
                "delete from raw.quarantine where source = ? and source_file = ?",
                [spec.name, landing.file_name],
            )
        rows = _write_rows(con, spec, landing, load_id)
        status = "replaced" if replacing else "loaded"
        _record(con, landing, load_id, size=size, sha256=sha256, rows=rows, status=status, error=None)
        con.execute("commit")
    except BaseException as error:
        try:
            con.execute("rollback")
        except duckdb.Error as rollback_error:
            # e.g. a full disk fails the rollback too: keep the first cause, note the second
            error.add_note(f"and the rollback failed: {rollback_error}")
        raise
    return status


@contextmanager
def _one_file_per_thread(con: duckdb.DuckDBPyConnection, files: int) -> Iterator[int]:
    """How many files to load at once: one per DuckDB thread, each statement then running on one.

    One file's temp tables are mostly a single row group, which DuckDB scans with one thread anyway;
    files side by side keep every core busy, and without the threads' hand-offs inside each
    statement loading is 15-20% faster (measured at 1M orders: orders 47.8 s -> 37.3 s, payments 9.7
    -> 8.1 s, movements 10.5 -> 9.2 s). With fewer files than threads each keeps them all.
    """
    threads = int(scalar(con, "select current_setting('threads')"))
    workers = max(1, min(threads, files))
    if workers == 1:
        yield 1
        return
    con.execute("set threads = 1")
    try:
        yield workers
    finally:
        con.execute(f"set threads = {threads}")


def load_source(
    con: duckdb.DuckDBPyConnection,
    spec: SourceSpec,
    extracts_dir: Path,
    *,
    load_id: str | None = None,
    dates: tuple[date, date] | None = None,
    unsettled_only: bool = False,
) -> SourceLoadResult:
    """Load the source's landing files (of `dates`, or all); with `unsettled_only`, only those new or
    changed since their last load (`pending.settled_files`), so unchanged files are not even hashed."""
    load_id = load_id or new_load_id()
    create_raw_schema(con)
    result = SourceLoadResult(spec.name)
    files = landing_files(extracts_dir, spec, dates)
    if unsettled_only:
        settled = settled_files(con, {(spec.name, landing.file_name): landing for landing in files})
        files = [landing for landing in files if (spec.name, landing.file_name) not in settled]

    def load_with_own_cursor(landing: LandingFile) -> str:
        # Each worker has its own connection to the same database (own temp tables and transaction).
        cursor = con.cursor()
        try:
            return load_file(cursor, spec, landing, load_id)
        finally:
            cursor.close()

    # Files of one source have distinct names, so their transactions touch disjoint rows.
    with _one_file_per_thread(con, len(files)) as workers, ThreadPoolExecutor(max_workers=workers) as pool:
        statuses = list(pool.map(load_with_own_cursor, files))
    for landing, status in zip(files, statuses, strict=True):
        result.files_seen += 1
        result.statuses[status] += 1
        if status == "rejected":
            result.rejected.append(landing.file_name)
    counts = first_row(
        con,
        "select coalesce(sum(rows_read), 0), coalesce(sum(rows_loaded), 0), coalesce(sum(rows_quarantined), 0)"
        " from raw.load_manifest where load_id = ? and source = ?",
        [load_id, spec.name],
    )
    assert counts is not None
    result.rows_read, result.rows_loaded, result.rows_quarantined = (int(c) for c in counts)
    return result
