"""People working an exception, through real runs: every workflow state, refusals before anything is written,
bad decision lines quarantined, snooze expiry on the audit's clock, and reruns that change nothing."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from orchestration.cli import main
from tests.conftest import PipelineEnv, pipeline_env, use_env


def _query(path: Path, sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _tables(env: PipelineEnv) -> tuple[list[tuple[object, ...]], ...]:
    return tuple(
        sorted(_query(env.warehouse, sql), key=repr)
        for sql in (
            "select * from order_audit_exceptions",
            "select * exclude (run_id) from order_audit_exception_history",
            "select * from fact_order_audit",
        )
    )


def _decision_files(env: PipelineEnv) -> list[Path]:
    return sorted((env.extracts / "decisions").glob("decisions_*.jsonl"))


@pytest.fixture(scope="module")
def workflow(tmp_path_factory: pytest.TempPathFactory, isolated_environ: None) -> Iterator[PipelineEnv]:
    from orchestration.generator import generate

    env = pipeline_env(tmp_path_factory.mktemp("workflow"))
    generate(env.extracts, orders=200, seed=5, days=5)
    use_env(env)
    os.environ.pop("ORDER_AUDIT_ROUTING", None)
    assert main(["run"]) == 0
    yield env


def test_one_exception_walks_through_every_state(
    workflow: PipelineEnv, capsys: pytest.CaptureFixture[str]
) -> None:
    env = workflow
    use_env(env)
    ((exception_id, as_of),) = _query(
        env.serving_db,
        "select min(e.exception_id), max(f.audited_as_of) from order_audit_exceptions as e"
        " cross join fact_order_audit as f where e.status = 'open' and e.exception_code = 'UNDERPAID'",
    )
    assert isinstance(exception_id, str) and isinstance(as_of, datetime)
    short = exception_id[:10]
    later = as_of + timedelta(days=2)

    assert main(["exceptions", "ack", short, "--by", "ana"]) == 0
    assert main(["exceptions", "assign", short, "--by", "ana", "--to", "bob"]) == 0
    until = (as_of + timedelta(days=1)).isoformat() + "Z"
    assert main(["exceptions", "snooze", short, "--by", "bob", "--until", until]) == 0
    assert len(_decision_files(env)) == 3
    capsys.readouterr()

    # Refused at once, before anything is written: each names what is wrong.
    refusals = [
        (["reopen", short, "--by", "bob"], "not resolved"),
        (
            ["snooze", short, "--by", "bob", "--until", as_of.isoformat() + "Z"],
            "is not after the audit's as-of time",
        ),
        (["ack", "0000000000", "--by", "bob"], "no exception with id '0000000000'"),
    ]
    for argv, message in refusals:
        assert main(["exceptions", *argv]) == 2, argv
        assert message in capsys.readouterr().err, argv
    assert len(_decision_files(env)) == 3

    assert main(["run"]) == 0
    history = _query(
        env.warehouse,
        "select change_type, from_state, to_state, changed_by, assignee from order_audit_exception_history"
        " where exception_id = ? order by change_sequence",
        [exception_id],
    )
    assert history == [
        ("opened", None, "open", "pipeline", None),
        ("acknowledged", "open", "acknowledged", "ana", None),
        ("assigned", "acknowledged", "assigned", "ana", "bob"),
        ("snoozed", "assigned", "snoozed", "bob", "bob"),
    ]
    register = _query(
        env.serving_db,
        "select workflow_state, assignee, snoozed_until, status from order_audit_exceptions where exception_id = ?",
        [exception_id],
    )
    assert register == [("snoozed", "bob", as_of + timedelta(days=1), "open")]
    ((still_detected,),) = _query(
        env.serving_db, "select count(*) from order_audit_exceptions where status = 'open'"
    )
    assert (
        f"Open exceptions by code ({still_detected} still detected;"
        f" people's triage: {still_detected - 1} untriaged, 1 snoozed):"
        in capsys.readouterr().out.splitlines()
    ), "the run's summary tells the data's open exceptions from people's triage of them"

    before = _tables(env)
    assert main(["run"]) == 0
    assert _tables(env) == before, "a rerun with the same files, rules and decisions changes nothing"

    # The audit's clock passes the snooze: it returns to open.
    assert main(["run", "--as-of", later.isoformat(sep=" ")]) == 0
    assert _query(
        env.warehouse,
        "select change_type, to_state from order_audit_exception_history where exception_id = ?"
        " order by change_sequence desc limit 1",
        [exception_id],
    ) == [("snooze_expired", "open")]

    assert (
        main(
            [
                "exceptions",
                "resolve",
                short,
                "--by",
                "bob",
                "--reason",
                "accepted",
                "--note",
                "PSP settles late",
            ]
        )
        == 0
    )
    capsys.readouterr()
    assert main(["exceptions", "resolve", short, "--by", "cy", "--reason", "fixed", "--note", "again"]) == 2
    assert "already resolved" in capsys.readouterr().err
    assert main(["run", "--as-of", later.isoformat(sep=" ")]) == 0
    ((state, reason, note, by, evidence, detail, status),) = _query(
        env.warehouse,
        "select e.workflow_state, e.resolution_reason, e.resolution_note, e.resolved_by, h.evidence, e.detail,"
        " e.status from order_audit_exceptions as e join order_audit_exception_history as h using (exception_id)"
        " where e.exception_id = ? order by h.change_sequence desc limit 1",
        [exception_id],
    )
    assert (state, reason, note, by, status) == ("resolved", "accepted", "PSP settles late", "bob", "open")
    assert evidence == detail, "accepting freezes the numbers that broke the rule"

    # Accepted holds across runs while the evidence is the same.
    assert main(["run", "--as-of", later.isoformat(sep=" ")]) == 0
    assert _query(
        env.warehouse,
        "select workflow_state from order_audit_exceptions where exception_id = ?",
        [exception_id],
    ) == [("resolved",)]

    assert main(["exceptions", "reopen", short, "--by", "ana", "--note", "customer complained"]) == 0
    assert main(["run", "--as-of", later.isoformat(sep=" ")]) == 0
    states = [
        row[0]
        for row in _query(
            env.warehouse,
            "select to_state from order_audit_exception_history where exception_id = ? order by change_sequence",
            [exception_id],
        )
    ]
    assert states[-1] == "open"
    assert set(states) == {"open", "acknowledged", "assigned", "snoozed", "resolved"}
    assert _query(
        env.serving_db, "select count(*) from order_audit_exception_history where change_type = 'refused'"
    ) == [(0,)]


def test_a_bad_decision_line_is_quarantined_with_its_reason(workflow: PipelineEnv) -> None:
    env = workflow
    use_env(env)
    folder = env.extracts / "decisions"
    folder.mkdir(exist_ok=True)
    bad = folder / "decisions_2026-12-01_by-hand.jsonl"
    bad.write_text(
        '{"decision_id": "DEC-HAND-1", "exception_id": "x", "action": "resolve", "decided_by": "ed",'
        ' "decided_at": "2026-12-01T10:00:00Z", "note": "no reason given"}\n'
        '{"decision_id": "DEC-HAND-2", "exception_id": "x", "action": "shrug", "decided_by": "ed",'
        ' "decided_at": "2026-12-01T10:00:00Z"}\n'
        "not json\n",
        encoding="utf-8",
    )
    assert main(["run"]) == 0
    quarantined = _query(
        env.warehouse,
        "select line_number, reason_code, reason from raw.quarantine where source_file = ? order by 1",
        [bad.name],
    )
    assert [(line, code) for line, code, _ in quarantined] == [
        (1, "missing_required_field"),
        (2, "unknown_enum_value"),
        (3, "unparseable"),
    ]
    assert "reason is missing on a resolve" in str(quarantined[0][2])
    assert _query(
        env.warehouse,
        "select status, rows_read, rows_loaded, rows_quarantined from raw.load_manifest where file_name = ?",
        [bad.name],
    ) == [("loaded", 3, 0, 3)]


def test_an_accepted_exception_whose_numbers_changed_before_the_decision_stays_resolved(
    workflow: PipelineEnv,
) -> None:
    """The register showed a newer detail than the history's last row (a payment changed the balance, no
    change of state): accepting what it showed freezes that detail, and the run that applies it keeps the
    exception resolved (it used to freeze the older sentence and reopen it at once)."""
    env = workflow
    use_env(env)
    ((exception_id, order_id, currency, balance, before, as_of),) = _query(
        env.serving_db,
        "select e.exception_id, e.order_id, f.currency, f.payment_balance_amount, e.detail, f.audited_as_of"
        " from order_audit_exceptions as e join fact_order_audit as f using (order_id)"
        " where e.status = 'open' and e.workflow_state = 'open' and e.exception_code = 'UNDERPAID'"
        " and f.payment_balance_amount >= 2 order by 1 limit 1",
    )
    (payments_file,) = sorted((env.extracts / "payments").glob("payments_*.csv"))[-1:]
    header = payments_file.read_text().splitlines()[0]
    part_paid = {
        "payment_id": "PAY-PART-1",
        "order_id": order_id,
        "event_type": "capture",
        "amount": str((balance / 2).quantize(Decimal(1))),  # whole units: exact in every currency
        "currency": currency,
        "status": "succeeded",
        "processed_at": (as_of - timedelta(hours=1)).isoformat() + "Z",
        "psp_reference": "pi_part_1",
        "method": "card",
    }
    extra = payments_file.with_name(payments_file.stem + "_part.csv")
    extra.write_text(header + "\n" + ",".join(part_paid[column] for column in header.split(",")) + "\n")
    assert main(["run"]) == 0
    ((shown, state),) = _query(
        env.serving_db,
        "select detail, workflow_state from order_audit_exceptions where exception_id = ?",
        [exception_id],
    )
    assert shown != before and state == "open"

    resolve = ["resolve", exception_id[:12], "--by", "fin", "--reason", "accepted", "--note", "invoiced"]
    assert main(["exceptions", *resolve]) == 0
    decision = json.loads(_decision_files(env)[-1].read_text())
    assert decision["exception_id"] == exception_id and decision["detail_shown"] == shown
    assert main(["run"]) == 0
    assert _query(
        env.serving_db,
        "select workflow_state from order_audit_exceptions where exception_id = ?",
        [exception_id],
    ) == [("resolved",)]
    changes = _query(
        env.warehouse,
        "select change_type, evidence from order_audit_exception_history where exception_id = ?"
        " order by change_sequence",
        [exception_id],
    )
    assert changes[-1] == ("resolved", shown), changes


def test_a_future_dated_event_warns_and_its_correction_moving_the_clock_back_still_publishes(
    tmp_path: Path, isolated_environ: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A clean payment dated in the future moves the default as-of time ahead (a warning, not a block);
    the PSP's correction then moves it back, below every exception's stamps. That used to block every
    run after it (first_detected_at after last_detected_at in the register, until the data caught up)."""
    from orchestration.generator import generate

    env = pipeline_env(tmp_path)
    generate(env.extracts, orders=60, seed=9, days=2)
    use_env(env)
    payments = sorted((env.extracts / "payments").glob("payments_2026-11-02*.csv"))[-1]
    delivered = payments.read_text()
    payments.write_text(
        delivered + "PAY-FUTURE,,capture,10.00,USD,succeeded,2027-06-01T10:00:00Z,REF-F,card\n"
    )
    assert main(["run"]) == 0
    assert (
        "warning: dbt test audit_as_of_after_now on intermediate/int_audit_clock" in capsys.readouterr().out
    )
    ((future_as_of,),) = _query(env.serving_db, "select max(audited_as_of) from fact_order_audit")
    assert future_as_of == datetime(2027, 6, 1, 10)

    keys = {"fct_order_audit_events": "event_id", "order_audit_exceptions": "exception_id"}
    keys["order_audit_exception_history"] = "history_id"
    con = duckdb.connect(str(env.warehouse))  # as a table an earlier release created, before the constraint
    for table, key in keys.items():
        con.execute(f"alter table main.{table} alter column {key} drop not null")
    con.close()

    payments.write_text(delivered)
    assert main(["run"]) == 0, "the correction is published"
    for table, key in keys.items():
        assert _query(
            env.serving_db,
            "select is_nullable from duckdb_columns() where table_name = ? and column_name = ?",
            [table, key],
        ) == [(False,)], f"{table}.{key} is NOT NULL again, in the warehouse and so in the serving file"
    printed = capsys.readouterr().out
    assert "warning: dbt test audit_as_of_after_now" not in printed and "Published the audit mart" in printed
    ((as_of,),) = _query(env.serving_db, "select max(audited_as_of) from fact_order_audit")
    assert as_of < datetime(2026, 11, 3)
    rows = _query(
        env.serving_db,
        "select status, count(*), count(*) filter (where last_detected_at = ?),"
        " count(*) filter (where first_detected_at > last_detected_at)"
        " from order_audit_exceptions group by status order by status",
        [future_as_of],
    )
    open_count = next(count for status, count, _, _ in rows if status == "open")
    assert rows[0][:3] == ("open", open_count, open_count), "still detected: last detected at the later time"
    assert all(inverted == 0 for *_, inverted in rows)
    assert _query(
        env.serving_db,
        "select status, resolved_at from order_audit_exceptions where entity_id = 'PAY-FUTURE'",
    ) == [("resolved", future_as_of)], "resolved no earlier than it was last detected"
