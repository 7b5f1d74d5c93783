"""`order-audit exceptions list|show`: the exception queue and one exception's file, from the published mart.

Read-only, on the serving file (or `--database`), like `order-audit sql`: a person working exceptions never
holds the warehouse the pipeline writes. Every filter is a bound parameter.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from orchestration.duck import connect
from orchestration.settings import Settings

LIST_COLUMNS = """
    left(exception_id, 12) as id, priority, route, exception_code as code, entity_id,
    case when amount_at_risk <> 0
        then rtrim(rtrim(cast(amount_at_risk as varchar), '0'), '.') || ' ' || amount_at_risk_currency
        else '' end as at_risk,
    age_bucket as age_days, strftime(due_at, '%Y-%m-%d %H:%M') as due_utc,
    case when sla_breached then 'BREACHED' else '' end as sla, status
"""
PRIORITY_ORDER = "priority nulls last, due_at nulls last, exception_code, entity_id"


@dataclass(frozen=True)
class QueueFilter:
    owner: str | None = None
    route: str | None = None
    code: str | None = None
    status: str | None = "open"
    priority: str | None = None

    def where(self) -> tuple[str, list[str]]:
        clauses, params = ["true"], []
        for column, value in (
            ("owner_team", self.owner),
            ("route", self.route),
            ("exception_code", self.code),
            ("status", self.status),
            ("priority", self.priority),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        return " and ".join(clauses), params


class TriageError(RuntimeError):
    """A request that cannot be answered, with what to do about it."""


def _open(database: Path | None) -> duckdb.DuckDBPyConnection:
    settings = Settings.from_env()
    path = database or settings.serving_db
    if not path.exists():
        raise TriageError(f"no published mart at {path}: run `order-audit run` first")
    return connect(path, read_only=True)


def list_exceptions(queue: QueueFilter, database: Path | None = None, limit: int = 200) -> int:
    where, params = queue.where()
    con = _open(database)
    try:
        total = con.execute(f"select count(*) from order_audit_exceptions where {where}", params).fetchall()[
            0
        ][0]
        relation = con.sql(
            f"select {LIST_COLUMNS} from order_audit_exceptions where {where} order by {PRIORITY_ORDER} limit {int(limit)}",
            params=params,
        )
        relation.show(max_width=100000, max_rows=limit)
        shown = min(int(total), limit)
        print(f"{total} exception(s){'' if shown == total else f', the first {shown} shown (--limit)'}")
    finally:
        con.close()
    return 0


def _resolve_id(con: duckdb.DuckDBPyConnection, exception_id: str) -> str:
    matches = con.execute(
        "select exception_id from order_audit_exceptions where starts_with(exception_id, ?) order by 1 limit 2",
        [exception_id],
    ).fetchall()
    if not matches:
        raise TriageError(f"no exception with id {exception_id!r} (see `order-audit exceptions list`)")
    if len(matches) > 1:
        raise TriageError(f"{exception_id!r} names several exceptions: give more of the id")
    return str(matches[0][0])


def show_exception(exception_id: str, database: Path | None = None) -> int:
    con = _open(database)
    try:
        full_id = _resolve_id(con, exception_id)
        cursor = con.execute("select * from order_audit_exceptions where exception_id = ?", [full_id])
        names = [column[0] for column in cursor.description or ()]
        values = cursor.fetchall()[0]
        record = dict(zip(names, values, strict=True))
        width = max(len(name) for name in names)
        for name in names:
            print(f"{name:<{width}}  {'' if record[name] is None else record[name]}")
        print("\nHistory:")
        con.sql(
            "select change_sequence, changed_at, change_type, from_status, to_status, changed_by, reason,"
            " route, priority, note from order_audit_exception_history where exception_id = ?"
            " order by change_sequence",
            params=[full_id],
        ).show(max_width=100000, max_rows=1000)
        if record.get("order_id"):
            print(f"\nAudit trail of order {record['order_id']}:")
            con.sql(
                "select event_sequence, event_at, source_system, event_type, status, amount, currency, sku,"
                " quantity, from_status, to_status, source_file from fct_order_audit_events where order_id = ?"
                " order by event_sequence",
                params=[record["order_id"]],
            ).show(max_width=100000, max_rows=1000)
    finally:
        con.close()
    return 0
