"""DDL of the raw schema: text-faithful landing tables, the quarantine and the load manifest."""

from __future__ import annotations

import duckdb

from orchestration.ingest.sources import DECISIONS, ORDER_LINE_COLUMNS, SOURCES

# The exception routing rules (routing.yml), replaced whole by the raw/routing_rules asset.
ROUTING_RULES_DDL = """
    create table if not exists raw.routing_rules (
        rule_order integer not null,
        rule_name varchar not null,
        owner_team varchar not null,
        route varchar not null,
        priority varchar not null,
        resolve_within_hours integer not null,
        expected_outcome varchar not null,
        match_exception_codes varchar,
        match_channels varchar,
        match_currencies varchar,
        match_warehouse_ids varchar,
        match_source_systems varchar,
        min_amount_at_risk decimal(18, 6),
        max_amount_at_risk decimal(18, 6),
        routing_file varchar not null,
        routing_sha256 varchar not null,
        loaded_at timestamp not null
    )
"""

# The manifest rows of one file, newest delivery first: latest loaded_at, then latest inserted.
MANIFEST_NEWEST_FIRST = "loaded_at desc, rowid desc"

LINEAGE_COLUMNS = "load_id varchar not null, source_file varchar not null, extract_date date not null, line_number bigint not null"


# A correction (a file delivered again with other bytes) supersedes every row of the earlier delivery,
# clean or quarantined (extracts.md): those rows move from the current raw table to its `_superseded`
# twin, never deleted, with the load that superseded them and when. Readers of the current data
# (dbt's sources, the GX suites, the Parquet export) never see them.
SUPERSEDED_SUFFIX = "_superseded"


def superseded_table(table: str) -> str:
    """`raw.payments` -> `raw.payments_superseded`."""
    return f"{table}{SUPERSEDED_SUFFIX}"


def files_tables() -> tuple[str, ...]:
    """The raw tables that hold rows per delivered file, each with a `_superseded` twin."""
    return (*(spec.raw_table for spec in (*SOURCES.values(), DECISIONS)), "raw.order_lines", "raw.quarantine")


def _text_columns(columns: tuple[str, ...]) -> str:
    return ", ".join(f"{column} varchar" for column in columns)


def create_raw_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists raw")
    for spec in (*SOURCES.values(), DECISIONS):
        con.execute(
            f"create table if not exists {spec.raw_table} ({LINEAGE_COLUMNS}, {_text_columns(spec.columns)})"
        )
    con.execute(
        f"create table if not exists raw.order_lines ({LINEAGE_COLUMNS}, order_id varchar, updated_at varchar,"
        f" line_index integer not null, {_text_columns(ORDER_LINE_COLUMNS)})"
    )
    con.execute(
        """
        create table if not exists raw.quarantine (
            load_id varchar not null,
            source varchar not null,
            source_file varchar not null,
            extract_date date,
            line_number bigint not null,
            raw_text varchar,
            reason_code varchar not null,
            reason varchar not null,
            quarantined_at timestamp not null
        )
        """
    )
    con.execute(
        """
        create table if not exists raw.load_manifest (
            load_id varchar not null,
            source varchar not null,
            file_name varchar not null,
            file_path varchar not null,
            file_format varchar,
            file_size bigint,
            sha256 varchar,
            extract_date date,
            part varchar,
            loaded_at timestamp not null,
            rows_read bigint not null,
            rows_loaded bigint not null,
            rows_quarantined bigint not null,
            status varchar not null,
            error varchar
        )
        """
    )
    con.execute(ROUTING_RULES_DDL)
    for table in files_tables():
        con.execute(
            f"create table if not exists {superseded_table(table)} as select *,"
            " cast(null as varchar) as superseded_by_load_id, cast(null as timestamp) as superseded_at"
            f" from {table} limit 0"
        )
    _add_new_columns(con)


def _add_new_columns(con: duckdb.DuckDBPyConnection) -> None:
    """A warehouse from an earlier version gets the text columns a source gained since (its rows: null)."""
    existing = set(
        con.execute(
            "select table_name, column_name from information_schema.columns where table_schema = 'raw'"
        ).fetchall()
    )
    for spec in (*SOURCES.values(), DECISIONS):
        for table in (spec.raw_table, superseded_table(spec.raw_table)):
            name = table.removeprefix("raw.")
            for column in spec.columns:
                if (name, column) not in existing:
                    con.execute(f"alter table {table} add column {column} varchar")
