"""One bad file or row never stops the audit: a real run over sample data plus hostile deliveries.

Every delivery below used to cost the whole run (nothing published for any source) or is new ground:
- a payments file whose quoted field spans two lines, then a short row, then a row with no id: the
  bad rows were both recorded at the same (wrong) line and the quarantine's key test failed;
- a payments file with one payment twice (pending, then succeeded): valid by the contract, the later
  line wins, but a per-file uniqueness check of the raw stage blocked dbt;
- two valid captures of the largest amount the contract allows on one order: the fact's sums overflowed
  DECIMAL(18,6) and dbt failed;
- a movements file that is not UTF-8, and an orders file with a BOM and CRLF line ends.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from tests.conftest import PipelineEnv, pipeline_env, use_env

PAYMENTS_HEADER = "payment_id,order_id,event_type,amount,currency,status,processed_at,psp_reference,method"
BIG = "999999999999.99"


def _payment(
    payment_id: str, order_id: str, *, amount: str = "10.00", status: str = "succeeded", currency: str = "USD"
) -> str:
    return f"{payment_id},{order_id},capture,{amount},{currency},{status},2026-11-02T10:00:00Z,ref-{payment_id},card"


def _first_order(extracts: Path) -> dict[str, str]:
    first_file = sorted((extracts / "orders").glob("orders_2026-11-01*.jsonl"))[0]
    return json.loads(first_file.read_text().splitlines()[0])


def _deliver_hostile_files(extracts: Path) -> None:
    big_order = _first_order(extracts)
    payments = extracts / "payments"
    (payments / "payments_2026-11-02_90.csv").write_text(
        "\n".join(
            [
                PAYMENTS_HEADER,
                _payment("HX-1", "ORD-00000001"),
                'HX-2,ORD-00000002,capture,10.00,USD,succeeded,2026-11-02T10:00:00Z,"ref\nspanning two lines",card',
                _payment("HX-3", "ORD-00000003"),
                _payment("HX-4", "ORD-00000004"),
                _payment("HX-5", "ORD-00000005"),
                "HX-6,ORD-00000006,capture,10.00",
                _payment("", "ORD-00000007"),
                _payment("HX-8", "ORD-00000008"),
            ]
        )
        + "\n"
    )
    (payments / "payments_2026-11-02_91.csv").write_text(
        "\n".join(
            [
                PAYMENTS_HEADER,
                _payment("DUP-1", "ORD-00000009", status="pending"),
                _payment("DUP-1", "ORD-00000009", status="succeeded"),
                _payment("BIG-1", big_order["order_id"], amount=BIG, currency=big_order["currency"]),
                _payment("BIG-2", big_order["order_id"], amount=BIG, currency=big_order["currency"]),
            ]
        )
        + "\n"
    )
    movements = extracts / "inventory_movements"
    (movements / "inventory_movements_2026-11-02_90.csv").write_bytes(
        b"movement_id,sku,warehouse_id,movement_type,quantity,order_id,occurred_at\n"
        b"MX-1,SKU-\xe9,WH-1,receipt,5,,2026-11-02T10:00:00Z\n"
    )
    # Ids with whitespace around them other than spaces (extracts.md: compared after trimming surrounding
    # whitespace): a tab, a no-break space, a line break inside a quoted CSV field.
    spaced_order = {
        **big_order,
        "order_id": "\u00a0WS-1\t",
        "customer_id": "CUST-WS\t",
        "status": "paid",
        "currency": "USD",
        "lines": [
            {"line_id": "L1\t", "sku": big_order["lines"][0]["sku"], "quantity": 1, "unit_price": "10.00"}
        ],
        "discount_amount": "0.00",
        "shipping_amount": "0.00",
        "tax_amount": "0.00",
        "total_amount": "10.00",
        "refunded_amount": "0.00",
    }
    (extracts / "orders" / "orders_2026-11-02_92.jsonl").write_text(json.dumps(spaced_order) + "\n")
    (payments / "payments_2026-11-02_92.csv").write_text(
        f"{PAYMENTS_HEADER}\n{_payment('WS-PAY-1', 'WS-1' + chr(9))}\n"
        'WS-PAY-2,"\nWS-1",authorization,10.00,USD,succeeded,2026-11-02T09:00:00Z,ref-ws-2,card\n'
    )
    orders_file = next(iter(sorted((extracts / "orders").glob("orders_2026-11-02*.jsonl"))))
    text = orders_file.read_text()
    (extracts / "orders" / "orders_2026-11-02_90.jsonl").write_bytes(
        ("\ufeff" + "\r\n".join(text.splitlines()[:2]) + "\r\n").encode()
    )


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory: pytest.TempPathFactory, isolated_environ: None) -> Iterator[PipelineEnv]:
    from orchestration.cli import main
    from orchestration.generator import generate

    env = pipeline_env(tmp_path_factory.mktemp("hostile"))
    generate(env.extracts, orders=80, seed=11, days=3)
    _deliver_hostile_files(env.extracts)
    use_env(env)
    assert main(["run"]) == 0, "one bad file or row stopped the run"
    yield env


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_everything_else_is_published(hostile_run: PipelineEnv) -> None:
    assert hostile_run.serving_db.exists()
    published = _rows(hostile_run.serving_db, "select count(*) from fact_order_audit")[0][0]
    assert published == 81


def test_ids_are_compared_after_trimming_tabs_and_line_breaks_too(hostile_run: PipelineEnv) -> None:
    assert _rows(
        hostile_run.serving_db,
        "select customer_id, line_count, captured_amount, authorized_amount from fact_order_audit"
        " where order_id = 'WS-1'",
    ) == [("CUST-WS", 1, Decimal("10.00"), Decimal("10.00"))]
    assert _rows(
        hostile_run.serving_db,
        "select count(*) from order_audit_exceptions where entity_id like 'WS-%'"
        " and exception_code in ('ORPHAN_PAYMENT', 'PAYMENT_MISSING', 'UNDERPAID')",
    ) == [(0,)]


def test_bad_rows_are_quarantined_at_their_physical_lines(hostile_run: PipelineEnv) -> None:
    quarantined = _rows(
        hostile_run.serving_db,
        "select line_number, reason_code, raw_text from quarantined_rows"
        " where source_file = 'payments_2026-11-02_90.csv' order by line_number",
    )
    assert quarantined == [
        (8, "unparseable", "HX-6,ORD-00000006,capture,10.00"),
        (9, "missing_required_field", _payment("", "ORD-00000007")),
    ]
    loaded = _rows(
        hostile_run.warehouse,
        "select payment_id, line_number, psp_reference from raw.payments"
        " where source_file = 'payments_2026-11-02_90.csv' order by line_number",
    )
    assert [(p, line) for p, line, _ in loaded] == [
        ("HX-1", 2),
        ("HX-2", 3),
        ("HX-3", 5),
        ("HX-4", 6),
        ("HX-5", 7),
        ("HX-8", 10),
    ]
    assert loaded[1][2] == "ref\nspanning two lines"


def test_an_id_twice_in_one_file_takes_the_later_line(hostile_run: PipelineEnv) -> None:
    events = _rows(
        hostile_run.serving_db,
        "select status from fct_order_audit_events where order_id = 'ORD-00000009'"
        " and event_type = 'payment_capture' and source_file = 'payments_2026-11-02_91.csv'",
    )
    assert events == [("succeeded",)]


def test_the_largest_amounts_sum_exactly(hostile_run: PipelineEnv) -> None:
    order_id = _first_order(hostile_run.extracts)["order_id"]
    (captured,) = _rows(
        hostile_run.serving_db, f"select captured_amount from fact_order_audit where order_id = '{order_id}'"
    )[0]
    big_events = _rows(
        hostile_run.serving_db,
        f"select sum(amount) from fct_order_audit_events where order_id = '{order_id}'"
        " and event_type = 'payment_capture' and status = 'succeeded'",
    )[0][0]
    assert captured == big_events
    assert captured >= 2 * Decimal(BIG)


def test_unreadable_and_unusual_files(hostile_run: PipelineEnv) -> None:
    manifest = dict(
        _rows(
            hostile_run.warehouse,
            "select file_name, status || coalesce(': ' || error, '') from raw.load_manifest"
            " where file_name like '%_90.%'",
        )
    )
    assert manifest["inventory_movements_2026-11-02_90.csv"].startswith("rejected: not_utf8")
    assert manifest["orders_2026-11-02_90.jsonl"] == "loaded"
    lines = _rows(
        hostile_run.warehouse,
        "select line_number from raw.orders where source_file = 'orders_2026-11-02_90.jsonl' order by 1",
    )
    assert lines == [(1,), (2,)]
