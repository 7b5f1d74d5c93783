"""Routing through real runs: the register against the generator's routing ground truth, a rule change that
re-routes open exceptions (and the history that records it), a bad rules file, and the SLA clock."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from dagster import materialize
from dagster_duckdb import DuckDBResource

from orchestration.cli import main
from orchestration.ingest.routing_rules import routing_rules
from orchestration.rules import minor_units
from orchestration.settings import PROJECT_ROOT
from tests.conftest import PipelineEnv, pipeline_env, use_env

ORDERS = 300


def _query(path: Path, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _truth(env: PipelineEnv) -> dict[tuple[str, str, str], dict[str, str]]:
    with (env.extracts / "_ground_truth" / "expected_routing.csv").open(newline="") as handle:
        return {(r["entity_type"], r["entity_id"], r["exception_code"]): r for r in csv.DictReader(handle)}


def _register_and_history(env: PipelineEnv) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    register = sorted(_query(env.warehouse, "select * from order_audit_exceptions"), key=repr)
    history = sorted(
        _query(env.warehouse, "select * exclude (run_id) from order_audit_exception_history"), key=repr
    )
    return register, history


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory, isolated_environ: None) -> Iterator[PipelineEnv]:
    from orchestration.generator import generate

    env = pipeline_env(tmp_path_factory.mktemp("routing"))
    generate(env.extracts, orders=ORDERS, seed=11, days=6)
    use_env(env)
    os.environ.pop("ORDER_AUDIT_ROUTING", None)
    assert main(["run"]) == 0
    yield env
    os.environ.pop("ORDER_AUDIT_ROUTING", None)


def test_every_exception_is_routed_as_the_ground_truth_says(routed: PipelineEnv) -> None:
    truth = _truth(routed)
    rows = _query(
        routed.warehouse,
        """
        select entity_type, entity_id, exception_code, owner_team, routing_rule, route, priority,
               amount_at_risk, coalesce(amount_at_risk_currency, '')
        from order_audit_exceptions where status = 'open'
        """,
    )
    found = {(r[0], r[1], r[2]): r[3:] for r in rows}
    assert set(found) == set(truth)
    for key, (owner, rule, route, priority, amount, currency) in found.items():
        want = truth[key]
        assert (owner, rule, route, priority) == (
            want["owner_team"],
            want["routing_rule"],
            want["route"],
            want["priority"],
        ), key
        assert amount == Decimal(want["amount_at_risk"]) and currency == want["amount_at_risk_currency"], key
    rules_used = {want["routing_rule"] for want in truth.values()}
    # The amount threshold is exercised on both sides: the same codes go to p1 above it and p2 below it.
    assert "finance-money" in rules_used
    assert any(rule.startswith("finance-large-amounts") for rule in rules_used)


def test_the_register_carries_trigger_source_sla_and_age(routed: PipelineEnv) -> None:
    rows = _query(
        routed.warehouse,
        """
        select e.exception_code, e.source_system, c.source_system, e.trigger, e.opened_at, e.first_detected_at,
               e.due_at, e.resolve_within_hours, e.age_days, e.age_bucket, e.sla_breached, e.expected_outcome
        from order_audit_exceptions as e
        join reference.exception_codes as c using (exception_code)
        where e.status = 'open'
        """,
    )
    assert rows
    for (
        code,
        source,
        seeded_source,
        trigger,
        opened,
        first,
        due,
        hours,
        age,
        bucket,
        breached,
        outcome,
    ) in rows:
        assert source == seeded_source, code
        assert isinstance(trigger, str) and trigger.split(" ")[0] in (
            "order",
            "payment",
            "psp_reference",
            "sku",
            "shipment",
            "capture",
            "movement",
            "inventory_level",
        ), (code, trigger)
        assert opened == first and due == opened + timedelta(hours=int(hours))  # type: ignore[operator, arg-type]
        assert (age, bucket, breached) == (0, "0-1", False), code
        assert isinstance(outcome, str) and outcome.endswith(".")
    opened_rows = _query(
        routed.warehouse,
        """
        select count(*), count(distinct exception_id), min(change_type), max(change_type), min(changed_by)
        from order_audit_exception_history
        """,
    )
    assert opened_rows == [(len(rows), len(rows), "opened", "opened", "pipeline")]


def test_the_queue_lists_and_shows_exceptions_from_the_published_mart(
    routed: PipelineEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    use_env(routed)
    ((exception_id, order_id, code, route, count),) = _query(
        routed.serving_db,
        """
        select min(exception_id), arg_min(order_id, exception_id), arg_min(exception_code, exception_id),
               'finance-escalations', (select count(*) from order_audit_exceptions
                                       where status = 'open' and route = 'finance-escalations')
        from order_audit_exceptions where status = 'open' and route = 'finance-escalations'
        """,
    )
    capsys.readouterr()
    assert main(["exceptions", "list", "--route", str(route)]) == 0
    listed = capsys.readouterr().out
    assert f"{count} exception(s)" in listed and str(exception_id)[:12] in listed
    assert "storefront-bugs" not in listed
    at_risk = [
        (amount, currency)
        for listed_id, amount, currency in _query(
            routed.serving_db,
            "select exception_id, amount_at_risk, amount_at_risk_currency from order_audit_exceptions"
            " where route = 'finance-escalations' and amount_at_risk <> 0",
        )
        if str(listed_id)[:12] in listed
    ]
    assert at_risk, "the list shows amounts at risk"
    for amount, currency in at_risk:
        assert isinstance(amount, Decimal) and isinstance(currency, str)
        exponent = Decimal(1).scaleb(-minor_units(currency))
        assert f" {amount.quantize(exponent)} {currency} " in listed, "an amount has its currency's decimals"
    assert main(["exceptions", "list", "--route", str(route), "--priority", "p4"]) == 0
    assert "0 exception(s)" in capsys.readouterr().out
    assert main(["exceptions", "list", "--owner", "nobody"]) == 2
    assert "--owner 'nobody': no exception or routing rule has it; known: " in capsys.readouterr().err

    assert main(["exceptions", "show", str(exception_id)[:10]]) == 0
    shown = capsys.readouterr().out
    for expected in (str(exception_id), str(code), "expected_outcome", "History:", "opened", "pipeline"):
        assert expected in shown
    assert f"Audit trail of order {order_id}:" in shown and "order_created" in shown
    ((amount, currency),) = _query(
        routed.serving_db,
        f"select amount_at_risk, amount_at_risk_currency from order_audit_exceptions where exception_id = '{exception_id}'",
    )
    shown_amount = next(line.split()[1] for line in shown.splitlines() if line.startswith("amount_at_risk "))
    assert shown_amount == str(amount.quantize(Decimal(1).scaleb(-minor_units(currency)))), (
        "show prints the amount at risk with its currency's decimals"
    )

    assert main(["exceptions", "show", "not-an-id"]) == 2
    assert "no exception with id 'not-an-id'" in capsys.readouterr().err


def test_a_changed_rule_reroutes_open_exceptions_and_the_history_records_it(
    routed: PipelineEnv, tmp_path: Path
) -> None:
    use_env(routed)
    shipping = _query(
        routed.warehouse,
        "select exception_id from order_audit_exceptions where routing_rule = 'fulfillment-shipping' and status = 'open'",
    )
    assert shipping
    changed = tmp_path / "routing.yml"
    text = (PROJECT_ROOT / "routing.yml").read_text(encoding="utf-8")
    old = "    owner_team: fulfillment\n    route: warehouse-ops\n    priority: p2\n    resolve_within_hours: 48\n"
    assert text.count(old) == 1
    changed.write_text(
        text.replace(old, old.replace("warehouse-ops", "warehouse-escalations").replace("p2", "p1"))
    )
    os.environ["ORDER_AUDIT_ROUTING"] = str(changed)

    assert main(["run"]) == 0
    rerouted = _query(
        routed.warehouse,
        """
        select h.change_type, h.from_state, h.to_state, h.route, h.priority, h.note, e.route, e.priority,
               h.change_sequence
        from order_audit_exception_history as h
        join order_audit_exceptions as e using (exception_id)
        where h.change_type = 'rerouted'
        """,
    )
    assert len(rerouted) == len(shipping)
    for row in rerouted:
        assert row[:5] == ("rerouted", "open", "open", "warehouse-escalations", "p1")
        assert row[5] == (
            "rule fulfillment-shipping -> fulfillment-shipping: route warehouse-ops -> warehouse-escalations,"
            " priority p2 -> p1"
        )
        assert row[6:] == ("warehouse-escalations", "p1", 2)
    # The register's state is the last change of each exception.
    derived = _query(
        routed.warehouse,
        """
        select count(*) from order_audit_exceptions as e
        join (
            select * from order_audit_exception_history
            qualify row_number() over (partition by exception_id order by change_sequence desc) = 1
        ) as h using (exception_id)
        where h.to_state is distinct from e.workflow_state or h.route is distinct from e.route
            or h.priority is distinct from e.priority or h.owner_team is distinct from e.owner_team
            or h.routing_rule is distinct from e.routing_rule
        """,
    )
    assert derived == [(0,)]

    before = _register_and_history(routed)
    assert main(["run"]) == 0
    assert _register_and_history(routed) == before, "a rerun with the same files and rules changes nothing"


def test_a_bad_rules_file_stops_the_run_before_it_starts_with_its_line(
    routed: PipelineEnv, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """`order-audit run` checks the rules first (exit status 2); a run the UI launches fails in the step
    `raw/routing_rules`, before dbt."""
    use_env(routed)
    before = _register_and_history(routed)
    bad = tmp_path / "routing.yml"
    bad.write_text(
        (PROJECT_ROOT / "routing.yml").read_text(encoding="utf-8").replace("priority: p4", "priority: p5")
    )
    os.environ["ORDER_AUDIT_ROUTING"] = str(bad)
    try:
        assert main(["run"]) == 2
        cli = capfd.readouterr()
        step = materialize(
            [routing_rules],
            resources={"warehouse": DuckDBResource(database=str(tmp_path / "scratch.duckdb"))},
            raise_on_error=False,
        )
    finally:
        os.environ.pop("ORDER_AUDIT_ROUTING")
    assert not step.success
    (failure,) = [event for event in step.all_events if event.is_step_failure]
    assert f"routing rules not valid: {bad}:" in str(failure.step_failure_data.error)
    printed = cli.out + cli.err
    assert "order-audit run did not start: the routing rules are wrong:" in printed
    assert "Running order_audit_job" not in printed
    assert "'p5' is not one of p1, p2, p3, p4" in printed
    assert f"{bad}:" in printed
    assert _register_and_history(routed) == before


def test_the_sla_clock_runs_to_the_as_of_time(routed: PipelineEnv) -> None:
    use_env(routed)
    ((as_of,),) = _query(routed.warehouse, "select max(audited_as_of) from fact_order_audit")
    assert isinstance(as_of, datetime)
    later = as_of + timedelta(hours=72)
    assert main(["run", "--as-of", later.isoformat(sep=" ")]) == 0
    rows = _query(
        routed.warehouse,
        f"""
        select age_days, age_bucket, sla_breached, resolve_within_hours
        from order_audit_exceptions
        where status = 'open' and opened_at = timestamp '{as_of}'
        """,
    )
    assert rows
    for age, bucket, breached, hours in rows:
        assert (age, bucket) == (3, "2-7")
        # strictly past due: exactly the 72 hours of a 72-hour rule is not a breach
        assert breached == (int(hours) < 72), hours  # type: ignore[call-overload]
    assert {int(hours) for *_, hours in rows} >= {24, 72}  # type: ignore[call-overload]


def test_the_queue_shows_an_amount_with_its_currency_decimals() -> None:
    from orchestration.triage import LIST_COLUMNS

    con = duckdb.connect()
    try:
        con.execute(
            """
            create table order_audit_exceptions (
                exception_id varchar, amount_at_risk decimal(38, 6), amount_at_risk_currency varchar,
                exception_code varchar, entity_id varchar, priority varchar, route varchar, age_bucket varchar,
                due_at timestamp, sla_breached boolean, workflow_state varchar, assignee varchar
            )
            """
        )
        con.execute(
            "insert into order_audit_exceptions (exception_id, amount_at_risk, amount_at_risk_currency) values"
            " ('e1', 1179.4, 'EUR'), ('e2', 76839, 'JPY'), ('e3', 304.1, 'KWD'), ('e4', 5, 'USD'), ('e5', 0, 'USD')"
        )
        shown = con.execute(
            f"select id, at_risk from (select {LIST_COLUMNS} from order_audit_exceptions) order by id"
        )
        assert shown.fetchall() == [
            ("e1", "1179.40 EUR"),
            ("e2", "76839 JPY"),
            ("e3", "304.100 KWD"),
            ("e4", "5.00 USD"),
            ("e5", ""),
        ]
    finally:
        con.close()
