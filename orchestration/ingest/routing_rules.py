"""The routing rules (routing.yml) as the table `raw.routing_rules`, which dbt matches exceptions against.

The file is validated first (`orchestration.routing`): a wrong rule fails this asset with the file, line
and field, before dbt runs, and the register keeps its last routing. The table is replaced whole on every
run, so editing a rule re-routes the open exceptions on the next run (the exception history records it).
"""

import hashlib
from datetime import UTC, datetime

import duckdb
from dagster import AssetKey, AssetSpec, Failure, MaterializeResult, multi_asset
from dagster_duckdb import DuckDBResource

from orchestration.ingest.schema import ROUTING_RULES_DDL
from orchestration.routing import Routing, RoutingError, RoutingRule, load_routing


def _match_list(values: tuple[str, ...]) -> str | None:
    """`,A,B,`: a list any SQL engine can test with `like '%,' || value || ',%'`; null matches anything."""
    return "," + ",".join(values) + "," if values else None


def _row(rule: RoutingRule, routing: Routing, sha256: str, loaded_at: datetime) -> tuple[object, ...]:
    return (
        rule.rule_order,
        rule.name,
        rule.owner_team,
        rule.route,
        rule.priority,
        rule.resolve_within_hours,
        rule.expected_outcome,
        _match_list(rule.exception_codes),
        _match_list(rule.channels),
        _match_list(rule.currencies),
        _match_list(rule.warehouse_ids),
        _match_list(rule.source_systems),
        rule.min_amount_at_risk,
        rule.max_amount_at_risk,
        str(routing.path),
        sha256,
        loaded_at,
    )


def write_routing_rules(con: duckdb.DuckDBPyConnection, routing: Routing) -> str:
    """Replace raw.routing_rules by the validated rules, in one transaction; returns the file's sha256."""
    sha256 = hashlib.sha256(routing.path.read_bytes()).hexdigest()
    loaded_at = datetime.now(UTC).replace(tzinfo=None)
    con.execute("create schema if not exists raw")
    con.execute(ROUTING_RULES_DDL)
    con.execute("begin transaction")
    try:
        con.execute("delete from raw.routing_rules")
        con.executemany(
            f"insert into raw.routing_rules values ({', '.join(['?'] * 17)})",
            [_row(rule, routing, sha256, loaded_at) for rule in routing.rules],
        )
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return sha256


@multi_asset(
    name="load_raw_routing_rules",
    specs=[
        AssetSpec(
            AssetKey(["raw", "routing_rules"]),
            group_name="raw",
            kinds={"duckdb"},
            description=(
                "raw.routing_rules: the exception routing rules of routing.yml (ORDER_AUDIT_ROUTING), validated, "
                "in match order. Each gives an owner team, route, priority, resolve-within hours and expected "
                "outcome; dbt routes every open exception by the first rule that fits it."
            ),
        )
    ],
    # The loaders, dbt and the validation all use one DuckDB file: one writer at a time.
    pool="warehouse_writer",
)
def routing_rules(warehouse: DuckDBResource) -> MaterializeResult:
    try:
        routing = load_routing()
    except RoutingError as error:
        raise Failure(f"routing rules not valid: {error}") from error
    with warehouse.get_connection() as con:
        sha256 = write_routing_rules(con, routing)
    return MaterializeResult(
        metadata={
            "dagster/row_count": len(routing.rules),
            "routing_file": str(routing.path),
            "sha256": sha256,
            "routes": ", ".join(routing.routes),
        }
    )
