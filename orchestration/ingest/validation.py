"""Split the rows of `_incoming` into clean rows and quarantined rows, with every broken rule named."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from orchestration.ingest.sources import (
    ORDER_COLUMNS,
    ORDER_LINE_COLUMNS,
    ORDER_LINE_RULES,
    RowRule,
    SourceSpec,
)
from orchestration.rules import trimmed_id_sql, trimmed_sql

_JSON_INTEGER_TYPES = "('BIGINT', 'UBIGINT')"


def _error_list(rules: tuple[RowRule, ...] | list[RowRule]) -> str:
    """The broken rules of a row as a list of 'code: message'; messages are built only for bad rows."""
    any_broken = " or ".join(f"({rule.condition})" for rule in rules)
    messages = "list_filter([" + ", ".join(rule.as_sql() for rule in rules) + "], lambda e: e is not null)"
    return f"case when {any_broken} then {messages} else cast([] as varchar[]) end"


def validate_table_rows(
    con: duckdb.DuckDBPyConnection, spec: SourceSpec, file_rules: Sequence[RowRule] = ()
) -> None:
    """`_validated`: the columns of `_incoming` plus `_errors`, the list of broken rules (empty for a clean
    row), the source's and `file_rules` (those a file's format adds). A row's text stays in `_incoming`:
    only quarantined rows need it."""
    con.execute(
        f"create or replace temp table _validated as"
        f" select * exclude (raw_text), {_error_list([*spec.rules, *file_rules])} as _errors from _incoming"
    )


def _json_scalar_rules(column: str, *, money: bool) -> list[RowRule]:
    allowed = "('VARCHAR', 'NULL')" if money else "('VARCHAR', 'NULL', 'BIGINT', 'UBIGINT')"
    code = "invalid_money" if money else "unparseable"
    expectation = "a decimal string" if money else "a string"
    return [
        RowRule(
            code,
            f"{column}__type is not null and {column}__type not in {allowed}",
            f"'{column} is a JSON ' || lower({column}__type) || ', expected {expectation}'",
        )
    ]


def _json_struct(columns: tuple[str, ...]) -> str:
    """A from_json structure that keeps every field as JSON: one parse per document, types checked after."""
    return "{" + ", ".join(f'"{column}": "JSON"' for column in columns) + "}"


def _text_and_type(struct: str, columns: tuple[str, ...]) -> str:
    return ", ".join(
        f"{struct}.{column} ->> '$' as {column}, json_type({struct}.{column}) as {column}__type"
        for column in columns
    )


def validate_order_documents(con: duckdb.DuckDBPyConnection, spec: SourceSpec) -> None:
    """Flatten the JSON documents of `_incoming` into order columns and `_order_lines`, then apply the
    order rules."""
    con.execute(
        f"""
        create or replace temp table _orders as
        with parsed as (
            select file_index, line_number, from_json(raw_text, '{_json_struct((*ORDER_COLUMNS, "lines"))}') as o
            from _incoming
        )
        select file_index, line_number, {_text_and_type("o", ORDER_COLUMNS)},
               json_type(o.lines) as lines__type,
               case when json_type(o.lines) = 'ARRAY' then from_json(o.lines, '["JSON"]') end as line_docs
        from parsed
        """
    )
    con.execute(
        f"""
        create or replace temp table _order_lines as
        with exploded as (
            select file_index, line_number, order_id, updated_at,
                   unnest(line_docs) as el, generate_subscripts(line_docs, 1) as line_index
            from _orders
        ),
        parsed as (
            select *, json_type(el) as element__type,
                   case when json_type(el) = 'OBJECT' then from_json(el, '{_json_struct(ORDER_LINE_COLUMNS)}') end as l
            from exploded
        ),
        flattened as (
            select file_index, line_number, order_id, updated_at, line_index, element__type,
                   {_text_and_type("l", ORDER_LINE_COLUMNS)}
            from parsed
        )
        select *, count(*) over (partition by file_index, line_number, {trimmed_sql("line_id")}) as line_id_occurrences
        from flattened
        """
    )
    line_rules: list[RowRule] = [
        RowRule(
            "unparseable", "element__type <> 'OBJECT'", "'line ' || line_index || ' is not a JSON object'"
        ),
        *ORDER_LINE_RULES,
        RowRule(
            "invalid_quantity",
            f"quantity__type is not null and quantity__type not in {_JSON_INTEGER_TYPES}",
            "'quantity is a JSON ' || lower(quantity__type) || ', expected an integer'",
        ),
        *_json_scalar_rules("unit_price", money=True),
        *_json_scalar_rules("discount_amount", money=True),
        RowRule(
            "duplicate_line_id",
            f"line_id_occurrences > 1 and {trimmed_id_sql('line_id')} is not null",
            "'line_id ''' || line_id || ''' appears more than once'",
        ),
    ]
    con.execute(
        f"""
        create or replace temp table _line_errors as
        with checked as (
            select file_index, line_number, line_index, {_error_list(line_rules)} as errors from _order_lines
        )
        select file_index, line_number,
               flatten(list(list_transform(errors, lambda e: regexp_replace(e, ': ', ': line ' || line_index || ' ', ''))
                            order by line_index)) as errors
        from checked where len(errors) > 0 group by file_index, line_number
        """
    )
    order_rules: list[RowRule] = [
        RowRule(
            "missing_required_field", "lines__type is null or lines__type = 'NULL'", "'lines is missing'"
        ),
        RowRule(
            "unparseable", "lines__type not in ('ARRAY', 'NULL')", "'lines is a JSON ' || lower(lines__type)"
        ),
        RowRule("empty_lines", "lines__type = 'ARRAY' and len(line_docs) = 0", "'lines is an empty array'"),
        *spec.rules,
        *(rule for column in spec.money_columns for rule in _json_scalar_rules(column, money=True)),
        *(
            rule
            for column in ORDER_COLUMNS
            if column not in spec.money_columns
            for rule in _json_scalar_rules(column, money=False)
        ),
    ]
    columns = ", ".join(f"o.{column}" for column in ORDER_COLUMNS)
    con.execute(
        f"""
        create or replace temp table _validated as
        with checked as (select o.*, {_error_list(order_rules)} as order_errors from _orders as o)
        select o.file_index, o.line_number, {columns}, len(o.line_docs) as line_count,
               list_concat(o.order_errors, coalesce(e.errors, [])) as _errors
        from checked as o left join _line_errors as e using (file_index, line_number)
        """
    )
