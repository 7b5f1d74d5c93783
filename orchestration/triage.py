"""`order-audit exceptions ...`: the exception queue, one exception's file, and people's decisions on them.

`list` and `show` read the published mart (the serving file, or `--database`) read-only, like `order-audit
sql`. `ack`, `assign`, `snooze`, `resolve` and `reopen` check the decision against the published state and
the decisions not applied yet, then append it to the decisions log (a new JSON Lines file in
`<landing folder>/decisions/`) and write nothing else: a person working exceptions never holds the warehouse
the pipeline writes, and a decision taken while a run holds it is applied by the next run.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb

from orchestration.duck import connect
from orchestration.rules import DEFAULT_MINOR_UNITS, currency_minor_units, minor_units, minor_units_sql
from orchestration.settings import Settings, utc_datetime


def _amount_in_minor_units(amount_sql: str, currency_sql: str) -> str:
    """The amount as text with its currency's decimals (ISO 4217 minor units): `1179.40 EUR`, `300 JPY`."""
    exponents = sorted({*currency_minor_units().values(), DEFAULT_MINOR_UNITS})
    as_text = " ".join(
        f"when {exponent} then cast(cast({amount_sql} as decimal(38, {exponent})) as varchar)"
        for exponent in exponents
    )
    return f"(case {minor_units_sql(currency_sql)} {as_text} end) || ' ' || {currency_sql}"


LIST_COLUMNS = f"""
    left(exception_id, 12) as id, priority, route, exception_code as code, entity_id,
    case when amount_at_risk <> 0
        then {_amount_in_minor_units("amount_at_risk", "amount_at_risk_currency")}
        else '' end as at_risk,
    age_bucket, strftime(due_at, '%Y-%m-%d %H:%M') as due_utc,
    case when sla_breached then 'BREACHED' else '' end as sla, workflow_state as state, coalesce(assignee, '') as assignee
"""
PRIORITY_ORDER = "priority nulls last, due_at nulls last, exception_code, entity_id"


@dataclass(frozen=True)
class QueueFilter:
    owner: str | None = None
    route: str | None = None
    code: str | None = None
    state: str = "active"  # a workflow state, `active` (all but resolved) or `all`
    priority: str | None = None

    def where(self) -> tuple[str, list[str]]:
        clauses, params = ["true"], []
        if self.state == "active":
            clauses.append("workflow_state <> 'resolved'")
        for column, value in (
            ("owner_team", self.owner),
            ("route", self.route),
            ("exception_code", self.code),
            ("workflow_state", None if self.state in ("active", "all") else self.state),
            ("priority", self.priority),
        ):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        return " and ".join(clauses), params


class TriageError(RuntimeError):
    """A request that cannot be answered, with what to do about it."""


def _open(database: Path | None, settings: Settings | None) -> duckdb.DuckDBPyConnection:
    path = database or (Settings.from_env() if settings is None else settings).serving_db
    if not path.exists():
        raise TriageError(f"no published mart at {path}: run `order-audit run` first")
    return connect(path, read_only=True)


def list_exceptions(
    queue: QueueFilter, database: Path | None = None, limit: int = 25, settings: Settings | None = None
) -> int:
    where, params = queue.where()
    con = _open(database, settings)
    try:
        total = con.execute(f"select count(*) from order_audit_exceptions where {where}", params).fetchall()[
            0
        ][0]
        if total == 0:
            _refuse_unknown_names(con, queue, settings)
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


def _refuse_unknown_names(
    con: duckdb.DuckDBPyConnection, queue: QueueFilter, settings: Settings | None
) -> None:
    """A typo in `--owner` or `--route` is an error naming the known ones (the register's and the routing
    rules'), not an empty queue; a name the rules give but no exception has yet is an empty queue."""
    from orchestration.routing import RoutingError, load_routing

    try:
        rules = load_routing((Settings.from_env() if settings is None else settings).routing_file).rules
    except RoutingError:  # `order-audit run` reports a broken routing file; the register still answers
        rules = ()
    for option, column, value in (("--owner", "owner_team", queue.owner), ("--route", "route", queue.route)):
        if value is None:
            continue
        registered = con.execute(
            f"select distinct {column} from order_audit_exceptions where {column} is not null"
        ).fetchall()
        known = sorted({str(row[0]) for row in registered} | {str(getattr(rule, column)) for rule in rules})
        if value not in known:
            raise TriageError(
                f"{option} {value!r}: no exception or routing rule has it; known: {', '.join(known)}"
            )


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


def show_exception(exception_id: str, database: Path | None = None, settings: Settings | None = None) -> int:
    con = _open(database, settings)
    try:
        full_id = _resolve_id(con, exception_id)
        cursor = con.execute("select * from order_audit_exceptions where exception_id = ?", [full_id])
        names = [column[0] for column in cursor.description or ()]
        values = cursor.fetchall()[0]
        record = dict(zip(names, values, strict=True))
        if isinstance(record.get("amount_at_risk"), Decimal):  # 83056 JPY, not 83056.000000
            exponent = Decimal(1).scaleb(-minor_units(record.get("amount_at_risk_currency")))
            record["amount_at_risk"] = record["amount_at_risk"].quantize(exponent)
        width = max(len(name) for name in names)
        for name in names:
            print(f"{name:<{width}}  {'' if record[name] is None else record[name]}")
        print("\nHistory:")
        con.sql(
            "select change_sequence as seq, changed_at, change_type, from_state, to_state, changed_by, decided_at,"
            " reason, assignee, snoozed_until, route, priority, note from order_audit_exception_history"
            " where exception_id = ? order by change_sequence",
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


# --- people's decisions --------------------------------------------------------------------------------

ACTION_STATES = {
    "ack": "acknowledged",
    "assign": "assigned",
    "snooze": "snoozed",
    "resolve": "resolved",
    "reopen": "open",
}


@dataclass(frozen=True)
class Decision:
    action: str
    exception_id: str
    decided_by: str
    reason: str | None = None
    note: str | None = None
    assignee: str | None = None
    snoozed_until: datetime | None = None


def parse_until(text: str) -> datetime:
    """An ISO 8601 time (a lowercase `z` too); one without an offset is taken as UTC."""
    try:
        value = utc_datetime(text.replace("z", "Z"))
    except ValueError as error:
        raise TriageError(f"--until {text!r} is not an ISO 8601 time such as 2026-11-12T09:00:00Z") from error
    return value.replace(tzinfo=UTC)


def _refusal(state: str, decision: Decision, as_of: datetime | None) -> str | None:
    """Why `decision` does not fit an exception in workflow `state` (the rules the dbt history applies)."""
    if decision.action == "reopen" and state != "resolved":
        return f"it is {state}, not resolved"
    if decision.action != "reopen" and state == "resolved":
        return "it is already resolved (reopen it first)"
    if decision.action == "snooze" and decision.snoozed_until is not None and as_of is not None:
        if decision.snoozed_until <= as_of.replace(tzinfo=UTC):
            return f"--until {decision.snoozed_until:%Y-%m-%d %H:%M:%S} UTC is not after the audit's as-of time {as_of:%Y-%m-%d %H:%M:%S} UTC"
    return None


def _pending_decisions(
    con: duckdb.DuckDBPyConnection, folder: Path, exception_id: str
) -> list[tuple[str, str]]:
    """(decision_id, action) of this exception's decisions in the landing folder that the published history
    has not applied or refused yet, in the order the pipeline applies them."""
    if not any(folder.glob("decisions_*.jsonl")):
        return []
    pattern = str(folder / "decisions_*.jsonl").replace("'", "''")
    rows = con.execute(
        f"""
        select d.decision_id, d.action
        from read_json('{pattern}', format = 'newline_delimited', ignore_errors = true,
                       columns = {{decision_id: 'VARCHAR', exception_id: 'VARCHAR', action: 'VARCHAR',
                                  decided_at: 'VARCHAR'}}) as d
        where d.exception_id = ?
          and d.decision_id not in (
              select decision_id from order_audit_exception_history where decision_id is not null
          )
        order by d.decided_at, d.decision_id
        """,
        [exception_id],
    ).fetchall()
    return [(str(decision_id), str(action)) for decision_id, action in rows]


def record_decision(
    decision: Decision, database: Path | None = None, settings: Settings | None = None
) -> int:
    """Validate a decision against the published mart and the decisions not applied yet, then append it to
    the decisions log as a new file (nothing is written when it is refused)."""
    for option, value in (
        ("--by", decision.decided_by),
        ("--to", decision.assignee),
        ("--note", decision.note),
    ):
        if value is not None and not value.strip():
            raise TriageError(f"{option} must not be empty")
    settings = Settings.from_env() if settings is None else settings
    folder = settings.extracts_dir / "decisions"
    con = _open(database, settings)
    try:
        full_id = _resolve_id(con, decision.exception_id)
        state, code, entity, detail = con.execute(
            "select workflow_state, exception_code, entity_id, detail from order_audit_exceptions"
            " where exception_id = ?",
            [full_id],
        ).fetchall()[0]
        as_of = con.execute("select max(audited_as_of) from fact_order_audit").fetchall()[0][0]
        for _, action in _pending_decisions(con, folder, full_id):
            pending = Decision(action, full_id, "")
            if _refusal(str(state), pending, None) is None:
                state = ACTION_STATES.get(action, state)
    finally:
        con.close()
    decision = Decision(**{**decision.__dict__, "exception_id": full_id})
    refusal = _refusal(str(state), decision, as_of)
    if refusal:
        raise TriageError(f"cannot {decision.action} {full_id[:12]} ({code} {entity}): {refusal}")
    decided_at = datetime.now(UTC)
    decision_id = f"DEC-{decided_at:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    line = {
        "decision_id": decision_id,
        "exception_id": full_id,
        "action": decision.action,
        "decided_by": decision.decided_by,
        "decided_at": decided_at.isoformat().replace("+00:00", "Z"),
        "reason": decision.reason,
        "note": decision.note,
        "assignee": decision.assignee,
        "snoozed_until": (
            decision.snoozed_until.isoformat().replace("+00:00", "Z") if decision.snoozed_until else None
        ),
        "detail_shown": detail,
    }
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"decisions_{decided_at:%Y-%m-%d}_{decision_id}.jsonl"
    staging = folder.parent / f".{target.name}.tmp"  # outside the source folder: never seen half-written
    staging.write_text(json.dumps(line, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(staging, target)
    print(
        f"Recorded {decision.action} of {full_id[:12]} ({code} {entity}) by {decision.decided_by}: {target}\n"
        f"It is {ACTION_STATES[decision.action]} in the register after the next `order-audit run`."
    )
    return 0
