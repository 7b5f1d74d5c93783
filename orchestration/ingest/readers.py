"""Read one landing file with DuckDB's own readers into temporary tables, with physical line numbers.

Each reader fills `_incoming` (one row per record: line_number, raw_text and the source's columns as
text, or for orders the parsed JSON document) and `_unparseable` (records that could not be split into
fields at all). A file that cannot be read as a whole raises `FileRejected`.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from orchestration.duck import scalar, sql_string
from orchestration.ingest.sources import SourceSpec


class FileRejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _physical_lines(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """`_lines(line_number, line)`: every line of the file, 1-based, without its line terminator."""
    try:
        con.execute(
            f"""
            create or replace temp table _lines as
            with content as (select content from read_text({sql_string(path)})),
            split as (select string_split(content, chr(10)) as parts from content)
            select
                generate_subscripts(parts, 1) as line_number,
                regexp_replace(unnest(parts), '\\r$', '') as line
            from split
            """
        )
    except duckdb.InvalidInputException as error:
        if "UTF-8" in str(error):
            raise FileRejected("not_utf8", "the file is not valid UTF-8 text") from error
        raise FileRejected("unreadable", str(error).splitlines()[0]) from error
    line_count = scalar(con, "select count(*) from _lines where line <> ''")
    if line_count == 0:
        raise FileRejected("empty_file", "the file has no content")


def _empty_unparseable(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "create or replace temp table _unparseable (line_number bigint, raw_text varchar, reason varchar)"
    )


def read_csv(con: duckdb.DuckDBPyConnection, spec: SourceSpec, path: Path) -> None:
    _physical_lines(con, path)
    header_line = scalar(con, "select line from _lines where line_number = 1") or ""
    header = [name.strip().strip('"') for name in header_line.lstrip("\ufeff").split(",")]
    if header != list(spec.columns):
        raise FileRejected(
            "wrong_header",
            f"header is {','.join(header)!r}, expected {','.join(spec.columns)!r}",
        )
    selected = ", ".join(f'"{column}"' for column in spec.columns)
    types = "{" + ", ".join(f"'{column}': 'VARCHAR'" for column in spec.columns) + "}"
    con.execute("drop table if exists _csv_rejects; drop table if exists _csv_reject_scans")
    try:
        con.execute(
            f"""
            create or replace temp table _records as
            select {selected}
            from read_csv({sql_string(path)}, header = true, delim = ',', quote = '"', escape = '"',
                          columns = {types}, auto_detect = false, store_rejects = true,
                          rejects_table = '_csv_rejects', rejects_scan = '_csv_reject_scans',
                          parallel = false)
            """
        )
    except duckdb.Error as error:
        raise FileRejected("unreadable", str(error).splitlines()[0]) from error
    con.execute(
        """
        create or replace temp table _unparseable as
        select line as line_number, any_value(csv_line) as raw_text,
               'unparseable: ' || lower(arg_min(error_type || ' (' || error_message || ')', column_idx)) as reason
        from _csv_rejects
        group by line
        """
    )
    # Good records come back in file order; pair the k-th one with the k-th data line that was not
    # rejected. When a quoted field spans lines the counts differ and records keep their ordinal.
    con.execute(
        """
        create or replace temp table _record_lines as
        select line_number, line, row_number() over (order by line_number) as ordinal
        from _lines
        where line_number > 1 and line <> '' and line_number not in (select line_number from _unparseable)
        """
    )
    single_line_records = scalar(con, "select count(*) from _records") == scalar(
        con, "select count(*) from _record_lines"
    )
    raw_text = "l.line" if single_line_records else "concat_ws(',', " + selected + ")"
    line_number = "l.line_number" if single_line_records else "r.ordinal + 1"
    con.execute(
        f"""
        create or replace temp table _incoming as
        with r as (select *, rowid + 1 as ordinal from _records)
        select {line_number} as line_number, {raw_text} as raw_text, {", ".join("r." + c for c in spec.columns)}
        from r left join _record_lines as l on l.ordinal = r.ordinal
        """
    )


def read_parquet_table(con: duckdb.DuckDBPyConnection, spec: SourceSpec, path: Path) -> None:
    try:
        described = con.execute(f"describe select * from read_parquet({sql_string(path)})").fetchall()
    except duckdb.Error as error:
        raise FileRejected("unreadable", str(error).splitlines()[0]) from error
    present = {row[0] for row in described}
    missing = [column for column in spec.columns if column not in present]
    if missing:
        raise FileRejected("wrong_header", f"parquet file lacks columns {', '.join(missing)}")
    casts = ", ".join(f'cast("{column}" as varchar) as {column}' for column in spec.columns)
    con.execute(
        f"""
        create or replace temp table _incoming as
        select file_row_number + 1 as line_number, cast(to_json(p) as varchar) as raw_text, {casts}
        from read_parquet({sql_string(path)}, file_row_number = true) as p
        """
    )
    _empty_unparseable(con)


def _documents_from(con: duckdb.DuckDBPyConnection, lines_sql: str) -> None:
    con.execute(
        f"""
        create or replace temp table _documents as
        with lines as ({lines_sql})
        select line_number, raw_text,
               case when json_valid(raw_text) then cast(raw_text as json) end as parsed
        from lines
        """
    )
    con.execute(
        """
        create or replace temp table _incoming as
        select line_number, raw_text,
               case when parsed is not null and json_type(parsed) = 'OBJECT' then parsed end as doc
        from _documents
        """
    )
    con.execute(
        """
        create or replace temp table _unparseable as
        select line_number, raw_text,
               case when parsed is null then 'unparseable: the line is not valid JSON'
                    else 'unparseable: the line is JSON but not an object' end as reason
        from _documents where parsed is null or json_type(parsed) <> 'OBJECT'
        """
    )
    if scalar(con, "select count(*) from _incoming where doc is not null") == 0:
        raise FileRejected("not_json_lines", "no line of the file is a JSON object")
    con.execute("delete from _incoming where doc is null")


def read_jsonl(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    _physical_lines(con, path)
    _documents_from(con, "select line_number, line as raw_text from _lines where line <> ''")


def read_parquet_documents(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    try:
        con.execute(f"select 1 from read_parquet({sql_string(path)}) limit 0")
    except duckdb.Error as error:
        raise FileRejected("unreadable", str(error).splitlines()[0]) from error
    _documents_from(
        con,
        f"select file_row_number + 1 as line_number, cast(to_json(p) as varchar) as raw_text"
        f" from read_parquet({sql_string(path)}, file_row_number = true) as p",
    )
