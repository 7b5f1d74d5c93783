"""Read landing files with DuckDB's own readers into temporary tables, with physical line numbers.

Each reader fills `_incoming` (one row per record: file_index, line_number, raw_text and the source's
columns as text; for orders the JSON document is raw_text) and `_unparseable` (records that could not
be split into fields at all). The CSV and JSON Lines readers take a batch of files of one source at
once (`file_index` is a file's position in the batch; the statements are the same for one file or
many, so small files do not each pay their own). A file that cannot be read as a whole raises
`FileRejected`; in a batch of several, so does any difference the batch cannot carry (CSV headers
that differ), and the loader then reads the files one by one, which names the file and the reason.

Line numbers are physical: the line of the file where a record starts, 1 being the header (CSV) or
the first line (JSON Lines), whatever the quoting, multi-line fields, blank lines, BOM or CRLF line
ends. A record's `raw_text` is its lines as they stand in the file, joined by `\\n` (a CR before a line
feed is dropped).

CSV records are split in SQL over `read_text` rather than by `read_csv`: `read_csv` reports rejected
rows by record number, not by physical line, gives no position at all for the rows it accepts, and
after an unterminated quote drops the rest of the file without a reject (see
`tests/test_csv_reader.py`). The rules here are RFC 4180's, strictly: fields are separated by commas, a
field that holds a comma, a double quote or a line break is enclosed in double quotes, and a double
quote inside it is doubled. A record whose quoting breaks them is quarantined at its line, and the
lines after it are read as if it were not there; a header that breaks them rejects the file. The
splitting is set-based (a few statements per file, whatever its content), and
`tests/test_fuzz_loaders.py` checks it against an independent character-by-character parser.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from orchestration.duck import scalar, sql_string
from orchestration.ingest.sources import RowRule, SourceSpec, typed_money


class FileRejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


_QUOTED_OR_PLAIN_FIELD = '"(?:[^"]|"")*"|[^",]*'
_IN_QUOTES = '(?:[^"]|"")*'
CSV_RECORD_PATTERN = f"(?:{_QUOTED_OR_PLAIN_FIELD})(?:,(?:{_QUOTED_OR_PLAIN_FIELD}))*"
# The lines of a record that spans several (the line breaks are inside quoted fields): its first line
# ends inside a quoted field; a middle line starts and ends inside one (it may close it, hold whole
# fields and open the next); its last line starts inside one and ends the record.
_FIRST_LINE_PATTERN = f'(?:(?:{_QUOTED_OR_PLAIN_FIELD}),)*"{_IN_QUOTES}'
_MIDDLE_LINE_PATTERN = f'{_IN_QUOTES}(?:"(?:,(?:{_QUOTED_OR_PLAIN_FIELD}))*,"{_IN_QUOTES})?'
_LAST_LINE_PATTERN = f'{_IN_QUOTES}"(?:,(?:{_QUOTED_OR_PLAIN_FIELD}))*'


def _lines_sql(paths: list[Path]) -> str:
    """SQL: every line of the files (file_index, line_number, line), 1-based, without line terminator or BOM."""
    contents = " union all ".join(
        f"select {index} as file_index, content from read_text({sql_string(path)})"
        for index, path in enumerate(paths)
    )
    return f"""
        with content as ({contents}),
        split as (select file_index, string_split(content, chr(10)) as parts from content),
        numbered as (
            select file_index, generate_subscripts(parts, 1) as line_number, unnest(parts) as line from split
        ),
        unmarked as (
            select file_index, line_number,
                   case when line_number = 1 then ltrim(line, chr(65279)) else line end as line
            from numbered
        )
        select file_index, line_number, case when suffix(line, chr(13)) then left(line, -1) else line end as line
        from unmarked
    """


GZIP_MAGIC = b"\x1f\x8b"


def _starts_with(path: Path, magic: bytes) -> bool:
    with path.open("rb") as file:
        return file.read(len(magic)) == magic


def _reading(con: duckdb.DuckDBPyConnection, sql: str, paths: list[Path]) -> None:
    """Run a statement that reads the files' text: text that is not UTF-8 rejects the file (a compressed
    file is named as such)."""
    try:
        con.execute(sql)
    except duckdb.InvalidInputException as error:
        if "UTF-8" in str(error):
            if len(paths) == 1 and _starts_with(paths[0], GZIP_MAGIC):
                raise FileRejected(
                    "not_utf8", "the file is gzip-compressed, not UTF-8 text: deliver it uncompressed"
                ) from error
            raise FileRejected("not_utf8", "the file is not valid UTF-8 text") from error
        raise FileRejected("unreadable", str(error).splitlines()[0]) from error


def _empty_file() -> FileRejected:
    return FileRejected("empty_file", "the file has no content")


def _physical_lines(con: duckdb.DuckDBPyConnection, paths: list[Path]) -> None:
    """`_lines(file_index, line_number, line)`: every line of the files (`_lines_sql`)."""
    _reading(con, f"create or replace temp table _lines as {_lines_sql(paths)}", paths)
    if scalar(con, "select count(distinct file_index) from _lines where line <> ''") < len(paths):
        raise _empty_file()


def _empty_unparseable(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        "create or replace temp table _unparseable"
        " (file_index integer, line_number bigint, raw_text varchar, reason varchar)"
    )


def _split_fields(text: str) -> str:
    """SQL: the fields of a well-formed CSV record, still quoted (every field follows a comma)."""
    return (
        f"case when contains({text}, '\"') then regexp_extract_all(',' || {text}, ',({_QUOTED_OR_PLAIN_FIELD})', 1)"
        f" else string_split({text}, ',') end"
    )


def _unquoted(field: str) -> str:
    """SQL: a field's value; empty fields, quoted or not, are missing values (null)."""
    return (
        f"nullif(case when starts_with({field}, '\"') then replace({field}[2:-2], '\"\"', '\"')"
        f" else {field} end, '')"
    )


def _well_formed(text: str) -> str:
    """SQL: the record follows RFC 4180 (text without any double quote always does)."""
    return f"(not contains({text}, '\"') or regexp_full_match({text}, '{CSV_RECORD_PATTERN}'))"


def _quote_count(line: str) -> str:
    return f"(length({line}) - length(replace({line}, '\"', '')))"


def _csv_records(con: duckdb.DuckDBPyConnection) -> None:
    """`_csv_records(file_index, line_number, raw_text, well_formed)` from `_lines`: every record below
    the header of each file.

    RFC 4180 doubles a quote inside a quoted field, so a line holds an odd number of double quotes
    only where a quoted field opens or closes across a line break (or where the quoting is broken).
    Every other line is a record of its own, unless it lies inside a record that spans lines; in
    nearly every file no line is odd and the rest of this is skipped.

    A record that spans lines starts at an odd line and ends at the next odd line (the lines between
    are even). Parsing goes on from the line after a record, and from the line after the first line
    of a record whose quoting breaks (such a record is its first line alone: the README's rule). So
    an odd line opens a record spanning to the next odd line when it is where a record starts and the
    lines from it to the next odd line are well formed (`spans`, checked line by line: first, middle
    and last line patterns); otherwise it is a broken record of its own. Whether an odd line starts a
    record follows from the odd lines before it: the one after an odd line that does not span starts,
    and within a run of odd lines that span they alternate between opening a record and closing it.
    So one window over the odd lines decides it, whatever the number of stray quotes, and only the
    lines between two odd lines that may span are read again. Every line that no spanning record
    covers is a record of its own (one with an odd number of quotes is never well formed). All of
    this is per file.
    """
    con.execute(
        f"""
        create or replace temp table _odd_lines as
        select file_index, line_number, line from _lines
        where line_number > 1 and {_quote_count("line")} % 2 = 1
        """
    )
    if scalar(con, "select count(*) from _odd_lines") == 0:
        con.execute(
            f"""
            create or replace temp table _csv_records as
            select file_index, line_number, line as raw_text, {_well_formed("line")} as well_formed
            from _lines where line_number > 1 and line <> ''
            """
        )
        return
    con.execute(
        f"""
        create or replace temp table _spans as
        with odd as (
            select file_index, row_number() over (partition by file_index order by line_number) as k,
                   line_number, line,
                   lead(line_number) over (partition by file_index order by line_number) as last_line,
                   lead(line) over (partition by file_index order by line_number) as closing_line
            from _odd_lines
        ),
        candidates as (
            select file_index, k, line_number, last_line from odd
            where last_line is not null and regexp_full_match(line, '{_FIRST_LINE_PATTERN}')
              and regexp_full_match(closing_line, '{_LAST_LINE_PATTERN}')
        ),
        middles as (
            select m.file_index, m.k,
                   bool_and(not contains(l.line, '"') or regexp_full_match(l.line, '{_MIDDLE_LINE_PATTERN}')) as ok
            from (
                select file_index, k, unnest(range(line_number + 1, last_line)) as line_number from candidates
            ) as m
            join _lines as l using (file_index, line_number)
            group by m.file_index, m.k
        ),
        checked as (
            select o.file_index, o.k, o.line_number, o.last_line, c.k is not null and coalesce(m.ok, true) as spans
            from odd as o left join candidates as c using (file_index, k) left join middles as m using (file_index, k)
        )
        select file_index, line_number, last_line, spans,
               (k - coalesce(max(case when not spans then k end) over (
                   partition by file_index order by k rows between unbounded preceding and 1 preceding
               ), 0)) % 2 = 1 as starts
        from checked
        """
    )
    con.execute(
        """
        create or replace temp table _spanned as
        select file_index, line_number as first_line, unnest(range(line_number, last_line + 1)) as line_number
        from _spans where starts and spans
        """
    )
    con.execute(
        f"""
        create or replace temp table _csv_records as
        select l.file_index, l.line_number, l.line as raw_text, {_well_formed("l.line")} as well_formed
        from _lines as l anti join _spanned as s using (file_index, line_number)
        where l.line_number > 1 and l.line <> ''
        union all
        select s.file_index, s.first_line, string_agg(l.line, chr(10) order by l.line_number), true
        from _spanned as s join _lines as l using (file_index, line_number)
        group by s.file_index, s.first_line
        """
    )


def _column_positions(spec: SourceSpec, header: list[str]) -> list[int]:
    """Where each of the source's columns is in the header (1-based). The contract tolerates and ignores
    unknown extra columns, in any order; a missing column, or one named twice, rejects the file."""
    missing = [column for column in spec.columns if column not in header]
    twice = [column for column in spec.columns if header.count(column) > 1]
    if missing or twice:
        problems = [f"lacks {', '.join(missing)}"] if missing else []
        problems += [f"names {', '.join(twice)} more than once"] if twice else []
        raise FileRejected(
            "wrong_header",
            f"header is {','.join(header)!r}: it {' and '.join(problems)} (expected {','.join(spec.columns)!r},"
            " extra columns are ignored)",
        )
    return [header.index(column) + 1 for column in spec.columns]


def _as_list(paths: Path | list[Path]) -> list[Path]:
    return [paths] if isinstance(paths, Path) else paths


def read_csv(con: duckdb.DuckDBPyConnection, spec: SourceSpec, paths: Path | list[Path]) -> None:
    """`_incoming` and `_unparseable` from CSV files whose header (line 1, names trimmed, quoted or not)
    names every column of the source once, in any order, with any extra columns (ignored); a header that
    does not, or breaks the quoting, rejects the file. Every record must have the header's width.
    The files of a batch must have the same header line."""
    paths = _as_list(paths)
    _physical_lines(con, paths)
    headers = [
        row[0] for row in con.execute("select distinct line from _lines where line_number = 1").fetchall()
    ]
    if len(headers) > 1:
        raise FileRejected(
            "wrong_header", "the files of the batch have different headers: read them one by one"
        )
    header_line = headers[0] or ""
    if "\r" in header_line:
        raise FileRejected(
            "wrong_header",
            "the header line holds a carriage return: the file's lines end in CR alone, not in LF or CRLF",
        )
    header_row = con.execute(
        f"select {_well_formed('h')}, list_transform({_split_fields('h')}, lambda f: {_unquoted('f')})"
        " from (select ?::varchar as h)",
        [header_line],
    ).fetchall()
    well_formed, names = header_row[0]
    if not well_formed:
        raise FileRejected("wrong_header", f"header {header_line!r} breaks the RFC 4180 quoting")
    header = [(name or "").strip() for name in names] if header_line else []
    positions = _column_positions(spec, header)
    _csv_records(con)
    width = len(header)
    con.execute(
        f"""
        create or replace temp table _fields as
        select file_index, line_number, raw_text, well_formed,
               case when well_formed then {_split_fields("raw_text")} end as fields
        from _csv_records
        """
    )
    con.execute(
        f"""
        create or replace temp table _unparseable as
        select file_index, line_number, raw_text,
               case when not well_formed
                    then 'unparseable: the quoting breaks RFC 4180 (a double quote inside an unquoted field,'
                         || ' text after a closing quote, or a quote that is never closed)'
                    else 'unparseable: expected {width} fields, found ' || len(fields) end as reason
        from _fields
        where not well_formed or len(fields) <> {width}
        """
    )
    columns = ", ".join(
        f"{_unquoted(f'fields[{position}]')} as {column}"
        for column, position in zip(spec.columns, positions, strict=True)
    )
    con.execute(
        f"""
        create or replace temp table _incoming as
        select file_index, line_number, raw_text, {columns}
        from _fields
        where well_formed and len(fields) = {width}
        """
    )


def read_parquet_table(con: duckdb.DuckDBPyConnection, spec: SourceSpec, path: Path) -> list[RowRule]:
    """`_incoming` from a Parquet file, every column as text; returns the rules its column types add (money
    in a column that is not text is bad input on every row that has it)."""
    try:
        described = con.execute(f"describe select * from read_parquet({sql_string(path)})").fetchall()
    except duckdb.Error as error:
        raise FileRejected("unreadable", str(error).splitlines()[0]) from error
    present = {row[0]: row[1] for row in described}
    missing = [column for column in spec.columns if column not in present]
    if missing:
        raise FileRejected("wrong_header", f"parquet file lacks columns {', '.join(missing)}")
    casts = ", ".join(f'cast("{column}" as varchar) as {column}' for column in spec.columns)
    con.execute(
        f"""
        create or replace temp table _incoming as
        select 0 as file_index, file_row_number + 1 as line_number, cast(to_json(p) as varchar) as raw_text, {casts}
        from read_parquet({sql_string(path)}, file_row_number = true) as p
        """
    )
    _empty_unparseable(con)
    return [
        typed_money(column, present[column]) for column in spec.money_columns if present[column] != "VARCHAR"
    ]


def _documents_from(con: duckdb.DuckDBPyConnection, lines_sql: str, paths: list[Path]) -> None:
    """`_incoming(file_index, line_number, raw_text)` from the lines that are JSON objects (the JSON
    functions read their text as it is) and `_unparseable` from the others; a file without a line, or
    without a JSON object, rejects the file."""
    _reading(
        con,
        f"""
        create or replace temp table _documents as
        with lines as ({lines_sql})
        select file_index, line_number, raw_text,
               case when json_valid(raw_text) then json_type(raw_text) end as doc_type
        from lines
        """,
        paths,
    )
    files = len(paths)
    if scalar(con, "select count(distinct file_index) from _documents") < files:
        raise _empty_file()
    con.execute(
        """
        create or replace temp table _unparseable as
        select file_index, line_number, raw_text,
               case when doc_type is null then 'unparseable: the line is not valid JSON'
                    else 'unparseable: the line is JSON but not an object' end as reason
        from _documents where doc_type is distinct from 'OBJECT'
        """
    )
    con.execute(
        """
        create or replace temp table _incoming as
        select file_index, line_number, raw_text from _documents where doc_type = 'OBJECT'
        """
    )
    if scalar(con, "select count(distinct file_index) from _incoming") < files:
        raise FileRejected("not_json_lines", "no line of the file is a JSON object")


def read_jsonl(con: duckdb.DuckDBPyConnection, paths: Path | list[Path]) -> None:
    paths = _as_list(paths)
    _documents_from(
        con,
        f"select file_index, line_number, line as raw_text from ({_lines_sql(paths)}) as lines where line <> ''",
        paths,
    )


def read_parquet_documents(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    try:
        con.execute(f"select 1 from read_parquet({sql_string(path)}) limit 0")
    except duckdb.Error as error:
        raise FileRejected("unreadable", str(error).splitlines()[0]) from error
    _documents_from(
        con,
        f"select 0 as file_index, file_row_number + 1 as line_number, cast(to_json(p) as varchar) as raw_text"
        f" from read_parquet({sql_string(path)}, file_row_number = true) as p",
        [path],
    )


def project_json_columns(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> None:
    """`_incoming` as a table of the source's columns as text, from the JSON documents `read_jsonl` read
    (a field that is absent or null is null; a number or boolean is its JSON text)."""
    columns = ", ".join(f"raw_text ->> '$.{column}' as {column}" for column in spec.columns)
    con.execute(
        f"create or replace temp table _incoming as select file_index, line_number, raw_text, {columns} from _incoming"
    )
