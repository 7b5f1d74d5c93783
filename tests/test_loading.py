"""Raw loading against a real DuckDB file: idempotency, replacement, quarantine, rejection, conservation."""

from __future__ import annotations

import os
import shutil
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest

from orchestration.ingest.loader import load_source
from orchestration.ingest.pending import pending_dates
from orchestration.ingest.schema import create_raw_schema
from orchestration.ingest.sources import SOURCES

PAYMENTS_HEADER = "payment_id,order_id,event_type,amount,currency,status,processed_at,psp_reference,method"
GOOD_ORDER = (
    '{"order_id":"O1","customer_id":"C1","status":"paid","currency":"USD",'
    '"created_at":"2026-11-01T10:00:00+01:00","updated_at":"2026-11-01T10:05:00Z",'
    '"lines":[{"line_id":"1","sku":"S1","quantity":2,"unit_price":"5.00"}],"total_amount":"10.00"}'
)


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def _load_all(warehouse: Path, landing: Path) -> dict[str, tuple[int, int, int]]:
    con = duckdb.connect(str(warehouse))
    try:
        results = {name: load_source(con, spec, landing) for name, spec in SOURCES.items()}
    finally:
        con.close()
    return {name: (r.rows_read, r.rows_loaded, r.rows_quarantined) for name, r in results.items()}


def _snapshot(warehouse: Path) -> dict[str, list[tuple[object, ...]]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        tables = ["orders", "order_lines", "payments", "inventory_movements", "quarantine"]
        return {
            t: sorted(con.execute(f"select * exclude (load_id) from raw.{t}").fetchall(), key=repr)
            for t in tables
        } | {
            "quarantine": sorted(
                con.execute("select * exclude (load_id, quarantined_at) from raw.quarantine").fetchall(),
                key=repr,
            )
        }
    finally:
        con.close()


@pytest.fixture()
def landing(tmp_path: Path) -> Path:
    root = tmp_path / "extracts"
    _write(root / "orders" / "orders_2026-11-01.jsonl", GOOD_ORDER + "\n")
    _write(
        root / "payments" / "payments_2026-11-01.csv",
        f"{PAYMENTS_HEADER}\nP1,O1,capture,10.00,USD,succeeded,2026-11-01T10:06:00Z,ref1,card\n",
    )
    return root


def test_loading_twice_changes_nothing(landing: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "wh.duckdb"
    first = _load_all(warehouse, landing)
    before = _snapshot(warehouse)
    second = _load_all(warehouse, landing)
    assert first["orders"] == (1, 1, 0) and first["payments"] == (1, 1, 0)
    assert second["orders"] == (0, 0, 0), "identical files are skipped"
    assert _snapshot(warehouse) == before
    con = duckdb.connect(str(warehouse), read_only=True)
    statuses = con.execute("select status, count(*) from raw.load_manifest group by 1 order by 1").fetchall()
    # The fingerprints are the ones DuckDB computes (and earlier releases stored): their files stay unchanged.
    paths = [row[0] for row in con.execute("select distinct file_path from raw.load_manifest").fetchall()]
    fingerprints_differing = con.execute(
        """
        select m.file_name from raw.load_manifest as m
        join read_blob(?) as b on b.filename = m.file_path
        where m.file_size is distinct from b.size or m.sha256 is distinct from sha256(b.content)
        """,
        [paths],
    ).fetchall()
    con.close()
    assert statuses == [("loaded", 2), ("skipped_duplicate", 2)]
    assert fingerprints_differing == []


def test_corrected_file_supersedes_its_earlier_delivery_which_stays_in_the_raw_history(
    landing: Path, tmp_path: Path
) -> None:
    """extracts.md: a correction supersedes every row of the earlier delivery, clean or quarantined; the
    earlier rows stay in the raw history marked as superseded, never deleted."""
    warehouse = tmp_path / "wh.duckdb"
    payments = landing / "payments" / "payments_2026-11-01.csv"
    _write(
        payments,
        f"{PAYMENTS_HEADER}\nP1,O1,capture,10.00,USD,succeeded,2026-11-01T10:06:00Z,ref1,card\n"
        "P9,O1,refund,-2,USD,succeeded,2026-11-01T10:30:00Z,ref9,card\n",
    )
    _load_all(warehouse, landing)
    _write(
        payments,
        f"{PAYMENTS_HEADER}\nP1,O1,capture,10.00,USD,succeeded,2026-11-01T10:06:00Z,ref1,card\n"
        "P2,O1,refund,-1,USD,succeeded,2026-11-01T11:00:00Z,ref2,card\n",
    )
    _load_all(warehouse, landing)
    _write(
        payments,
        f"{PAYMENTS_HEADER}\nP1,O1,capture,10.50,USD,succeeded,2026-11-01T10:06:00Z,ref1,card\n",
    )
    _load_all(warehouse, landing)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        assert con.execute("select payment_id, amount from raw.payments").fetchall() == [("P1", "10.50")]
        assert con.execute("select count(*) from raw.quarantine where source = 'payments'").fetchone() == (0,)
        loads = [
            load_id
            for (load_id,) in con.execute(
                "select load_id from raw.load_manifest where source = 'payments' order by loaded_at"
            ).fetchall()
        ]
        manifest = con.execute(
            "select status, rows_read, rows_loaded, rows_quarantined from raw.load_manifest"
            " where source = 'payments' order by loaded_at"
        ).fetchall()
        assert manifest == [("loaded", 2, 1, 1), ("replaced", 2, 1, 1), ("replaced", 1, 1, 0)]
        superseded = con.execute(
            "select load_id, line_number, payment_id, amount, superseded_by_load_id from raw.payments_superseded"
            " order by superseded_at, line_number"
        ).fetchall()
        assert superseded == [(loads[0], 2, "P1", "10.00", loads[1]), (loads[1], 2, "P1", "10.00", loads[2])]
        superseded_bad = con.execute(
            "select load_id, line_number, reason_code, raw_text, superseded_by_load_id"
            " from raw.quarantine_superseded order by superseded_at"
        ).fetchall()
        assert superseded_bad == [
            (
                loads[0],
                3,
                "negative_amount",
                "P9,O1,refund,-2,USD,succeeded,2026-11-01T10:30:00Z,ref9,card",
                loads[1],
            ),
            (
                loads[1],
                3,
                "negative_amount",
                "P2,O1,refund,-1,USD,succeeded,2026-11-01T11:00:00Z,ref2,card",
                loads[2],
            ),
        ]
        # every row each delivery read is still somewhere: current, quarantined or superseded
        for load_id, read in zip(loads, [2, 2, 1], strict=True):
            kept = con.execute(
                "select (select count(*) from raw.payments where load_id = $1)"
                " + (select count(*) from raw.payments_superseded where load_id = $1)"
                " + (select count(*) from raw.quarantine where load_id = $1)"
                " + (select count(*) from raw.quarantine_superseded where load_id = $1)",
                [load_id],
            ).fetchone()
            assert kept == (read,)
    finally:
        con.close()


def test_a_corrected_orders_file_keeps_the_earlier_order_lines_too(landing: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "wh.duckdb"
    _load_all(warehouse, landing)
    _write(landing / "orders" / "orders_2026-11-01.jsonl", GOOD_ORDER.replace('"C1"', '"C2"') + "\n")
    _load_all(warehouse, landing)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        assert con.execute("select customer_id from raw.orders").fetchall() == [("C2",)]
        assert con.execute("select customer_id from raw.orders_superseded").fetchall() == [("C1",)]
        assert con.execute("select order_id, sku from raw.order_lines_superseded").fetchall() == [
            ("O1", "S1")
        ]
        assert con.execute("select count(*) from raw.order_lines").fetchone() == (1,)
    finally:
        con.close()


BAD_ORDERS = {
    "unparseable": '{"order_id": "B1", ',
    "missing_required_field": GOOD_ORDER.replace('"customer_id":"C1",', ""),
    "unknown_enum_value": GOOD_ORDER.replace('"status":"paid"', '"status":"shipped"'),
    "invalid_money": GOOD_ORDER.replace('"total_amount":"10.00"', '"total_amount":10.0'),
    "negative_amount": GOOD_ORDER.replace('"unit_price":"5.00"', '"unit_price":"-5.00"'),
    "invalid_quantity": GOOD_ORDER.replace('"quantity":2', '"quantity":0'),
    "empty_lines": GOOD_ORDER.replace('[{"line_id":"1","sku":"S1","quantity":2,"unit_price":"5.00"}]', "[]"),
    "duplicate_line_id": GOOD_ORDER.replace(
        '[{"line_id":"1","sku":"S1","quantity":2,"unit_price":"5.00"}]',
        '[{"line_id":"1","sku":"S1","quantity":1,"unit_price":"5.00"},'
        '{"line_id":"1","sku":"S2","quantity":1,"unit_price":"5.00"}]',
    ),
    "invalid_timestamp": GOOD_ORDER.replace("2026-11-01T10:05:00Z", "2026-11-01T10:05:00"),
    "invalid_currency": GOOD_ORDER.replace('"currency":"USD"', '"currency":"usd"'),
}
BAD_PAYMENTS = {
    "unparseable": "P9,O1,capture,1",
    "missing_required_field": "P9,O1,,1.00,USD,succeeded,2026-11-01T10:06:00Z,r,card",
    "unknown_enum_value": "P9,O1,capture,1.00,USD,done,2026-11-01T10:06:00Z,r,card",
    "invalid_money": 'P9,O1,capture,"1,00",USD,succeeded,2026-11-01T10:06:00Z,r,card',
    "negative_amount": "P9,O1,capture,-1.00,USD,succeeded,2026-11-01T10:06:00Z,r,card",
    "invalid_timestamp": "P9,O1,capture,1.00,USD,succeeded,yesterday,r,card",
    "invalid_currency": "P9,O1,capture,1.00,US,succeeded,2026-11-01T10:06:00Z,r,card",
}


def test_each_bad_row_kind_is_quarantined_with_its_reason(landing: Path, tmp_path: Path) -> None:
    orders = [GOOD_ORDER, *BAD_ORDERS.values()]
    _write(landing / "orders" / "orders_2026-11-02.jsonl", "\n".join(orders) + "\n")
    payments = [
        PAYMENTS_HEADER,
        "P8,O1,capture,1.00,USD,succeeded,2026-11-01T10:06:00Z,r,card",
        *BAD_PAYMENTS.values(),
    ]
    _write(landing / "payments" / "payments_2026-11-02.csv", "\n".join(payments) + "\n")
    _write(
        landing / "inventory_movements" / "inventory_movements_2026-11-02.csv",
        "movement_id,sku,warehouse_id,movement_type,quantity,order_id,occurred_at\n"
        "M1,S1,W1,adjustment,-3,,2026-11-01T08:00:00Z\n"
        "M2,S1,W1,shipment,-3,O1,2026-11-01T08:00:00Z\n"
        "M3,S1,W1,adjustment,1.5,,2026-11-01T08:00:00Z\n",
    )
    warehouse = tmp_path / "wh.duckdb"
    _load_all(warehouse, landing)
    con = duckdb.connect(str(warehouse), read_only=True)
    quarantined = con.execute(
        "select source, line_number, reason_code, raw_text from raw.quarantine where source_file like '%2026-11-02%'"
    ).fetchall()
    movements = con.execute("select movement_id from raw.inventory_movements").fetchall()
    con.close()
    order_reasons = {line: reason for source, line, reason, _ in quarantined if source == "orders"}
    assert order_reasons == {i + 2: reason for i, reason in enumerate(BAD_ORDERS)}
    payment_reasons = {line: reason for source, line, reason, _ in quarantined if source == "payments"}
    assert payment_reasons == {i + 3: reason for i, reason in enumerate(BAD_PAYMENTS)}
    raw_texts = {raw for source, _, _, raw in quarantined if source == "payments"}
    assert set(BAD_PAYMENTS.values()) == raw_texts, "the raw text of every bad row is kept"
    movement_reasons = sorted(
        (line, reason) for source, line, reason, _ in quarantined if source == "inventory_movements"
    )
    assert movement_reasons == [(3, "invalid_quantity"), (4, "invalid_quantity")]
    assert movements == [("M1",)]


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("payments_2026-11-03.csv", "id,amount\n1,2\n", "wrong_header"),
        (
            "payments_2026-11-04.csv",
            (PAYMENTS_HEADER + "\nP1,O1,capture,1.00,EUR,\xff\n").encode("latin-1"),
            "not_utf8",
        ),
        ("payments_2026-11-05.csv", "", "empty_file"),
        ("payments_latest.csv", PAYMENTS_HEADER + "\n", "bad_file_name"),
    ],
)
def test_unreadable_file_is_rejected_and_the_run_goes_on(
    landing: Path, tmp_path: Path, name: str, content: str | bytes, reason: str
) -> None:
    _write(landing / "payments" / name, content)
    warehouse = tmp_path / "wh.duckdb"
    counts = _load_all(warehouse, landing)
    assert counts["payments"] == (1, 1, 0), "the good file still loads"
    con = duckdb.connect(str(warehouse), read_only=True)
    status, error = con.execute(
        "select status, error from raw.load_manifest where file_name = ?", [name]
    ).fetchall()[0]
    con.close()
    assert status == "rejected"
    assert error.startswith(reason)


def test_not_json_lines_file_is_rejected(landing: Path, tmp_path: Path) -> None:
    _write(landing / "orders" / "orders_2026-11-06.jsonl", PAYMENTS_HEADER + "\nP1,O1\n")
    warehouse = tmp_path / "wh.duckdb"
    _load_all(warehouse, landing)
    con = duckdb.connect(str(warehouse), read_only=True)
    (error,) = con.execute(
        "select error from raw.load_manifest where file_name = 'orders_2026-11-06.jsonl'"
    ).fetchall()[0]
    con.close()
    assert error.startswith("not_json_lines")


def test_rows_read_equal_rows_loaded_plus_quarantined_per_file(landing: Path, tmp_path: Path) -> None:
    shutil.copy(
        landing / "payments" / "payments_2026-11-01.csv", landing / "payments" / "payments_2026-11-07_b.csv"
    )
    _write(
        landing / "payments" / "payments_2026-11-08.csv",
        "\n".join([PAYMENTS_HEADER, *BAD_PAYMENTS.values()]) + "\n",
    )
    warehouse = tmp_path / "wh.duckdb"
    _load_all(warehouse, landing)
    con = duckdb.connect(str(warehouse), read_only=True)
    per_file = con.execute(
        """
        select m.file_name, m.rows_read, m.rows_loaded, m.rows_quarantined,
               (select count(*) from raw.payments p where p.source_file = m.file_name),
               (select count(*) from raw.quarantine q where q.source_file = m.file_name)
        from raw.load_manifest m where m.source = 'payments' and m.status = 'loaded'
        """
    ).fetchall()
    con.close()
    assert len(per_file) == 3
    for _, read, loaded, quarantined, raw_rows, quarantine_rows in per_file:
        assert read == loaded + quarantined
        assert (loaded, quarantined) == (raw_rows, quarantine_rows)


def test_parquet_extracts_load_like_their_text_twins(landing: Path, tmp_path: Path) -> None:
    con = duckdb.connect()
    payments = landing / "payments" / "payments_2026-11-09.parquet"
    con.execute(
        f"copy (select 'P7' as payment_id, 'O1' as order_id, 'capture' as event_type, '3.50' as amount,"
        f" 'USD' as currency, 'succeeded' as status, '2026-11-09T10:00:00+01:00' as processed_at,"
        f" 'R7' as psp_reference, 'card' as method"
        f" union all select 'P8', 'O1', 'capture', '-1', 'USD', 'succeeded', '2026-11-09T10:00:00Z', 'R8', 'card')"
        f" to '{payments}' (format parquet)"
    )
    orders = landing / "orders" / "orders_2026-11-09.parquet"
    con.execute(
        f"copy (select 'O9' as order_id, 'C9' as customer_id, 'paid' as status, 'EUR' as currency,"
        f" '2026-11-09T08:00:00Z' as created_at, '2026-11-09T09:00:00Z' as updated_at, '12.00' as total_amount,"
        f" [{{'line_id': '1', 'sku': 'S1', 'quantity': 3, 'unit_price': '4.00'}}] as lines)"
        f" to '{orders}' (format parquet)"
    )
    con.close()
    warehouse = tmp_path / "wh.duckdb"
    _load_all(warehouse, landing)
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        assert con.execute(
            "select payment_id from raw.payments where source_file like '%.parquet'"
        ).fetchall() == [("P7",)]
        assert con.execute(
            "select line_number, reason_code from raw.quarantine where source_file = 'payments_2026-11-09.parquet'"
        ).fetchall() == [(2, "negative_amount")]
        assert con.execute(
            "select o.order_id, l.sku, l.quantity, l.unit_price from raw.orders o join raw.order_lines l"
            " using (source_file, line_number) where o.source_file = 'orders_2026-11-09.parquet'"
        ).fetchall() == [("O9", "S1", "3", "4.00")]
    finally:
        con.close()


@pytest.mark.parametrize("amount_type", ["double", "decimal(18, 2)"])
def test_money_in_a_parquet_column_that_is_not_text_is_quarantined(
    landing: Path, tmp_path: Path, amount_type: str
) -> None:
    """Money is decimal strings, never floats (extracts.md): a Parquet file with numeric money is bad input
    on every row that has an amount, as a JSON number is, for the CSV sources and for orders."""
    con = duckdb.connect()
    payments = landing / "payments" / "payments_2026-11-09.parquet"
    con.execute(
        f"copy (select 'P7' as payment_id, 'O1' as order_id, 'capture' as event_type,"
        f" cast(1.5 as {amount_type}) as amount, 'USD' as currency, 'succeeded' as status,"
        f" '2026-11-09T10:00:00Z' as processed_at, 'R7' as psp_reference, 'card' as method)"
        f" to '{payments}' (format parquet)"
    )
    orders = landing / "orders" / "orders_2026-11-09.parquet"
    con.execute(
        f"copy (select 'O9' as order_id, 'C9' as customer_id, 'paid' as status, 'EUR' as currency,"
        f" '2026-11-09T08:00:00Z' as created_at, '2026-11-09T09:00:00Z' as updated_at,"
        f" cast(12 as {amount_type}) as total_amount,"
        f" [{{'line_id': '1', 'sku': 'S1', 'quantity': 3, 'unit_price': '4.00'}}] as lines)"
        f" to '{orders}' (format parquet)"
    )
    con.close()
    warehouse = tmp_path / "wh.duckdb"
    loaded = _load_all(warehouse, landing)
    assert loaded["payments"] == (2, 1, 1) and loaded["orders"] == (
        2,
        1,
        1,
    )  # beside the fixture's CSV and JSON
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        quarantined = con.execute(
            "select source_file, reason_code, reason from raw.quarantine order by source_file"
        ).fetchall()
    finally:
        con.close()
    assert [(file, code) for file, code, _ in quarantined] == [
        ("orders_2026-11-09.parquet", "invalid_money"),
        ("payments_2026-11-09.parquet", "invalid_money"),
    ]
    assert (
        "expected a decimal string" in quarantined[1][2]
        and amount_type.split("(")[0] in quarantined[1][2].lower()
    )


def test_pending_dates_are_those_with_files_new_or_changed_since_their_load(
    landing: Path, tmp_path: Path
) -> None:
    warehouse = tmp_path / "warehouse.duckdb"
    assert pending_dates(landing, warehouse) == [date(2026, 11, 1)]  # no warehouse yet
    _load_all(warehouse, landing)
    assert pending_dates(landing, warehouse) == []

    _write(landing / "orders" / "orders_2026-11-03.jsonl", GOOD_ORDER.replace("O1", "O3") + "\n")
    assert pending_dates(landing, warehouse) == [date(2026, 11, 3)]
    _load_all(warehouse, landing)
    assert pending_dates(landing, warehouse) == []

    payments = next((landing / "payments").iterdir())
    payments.write_text(
        payments.read_text() + "P9,O1,capture,1.00,USD,succeeded,2026-11-01T12:00:00Z,,card\n"
    )
    assert pending_dates(landing, warehouse) == [date(2026, 11, 1)]  # a re-delivery, other size
    _load_all(warehouse, landing)
    assert pending_dates(landing, warehouse) == []
    future = time.time() + 60
    os.utime(payments, (future, future))  # same size, modified after its load
    assert pending_dates(landing, warehouse) == [date(2026, 11, 1)]


def test_a_file_without_a_dated_name_is_rejected_once_until_it_changes(landing: Path, tmp_path: Path) -> None:
    """Such a file belongs to no date, so every load sees it: it is rejected with its reason once, then
    recorded as unchanged (it used to add a `rejected` row, a warning and a summary line to every run)."""
    stray = landing / "payments" / "payments_20261103.csv"
    _write(stray, PAYMENTS_HEADER + "\n")
    warehouse = tmp_path / "wh.duckdb"
    for _ in range(2):
        _load_all(warehouse, landing)
    _write(stray, PAYMENTS_HEADER + "\nP9,O1,capture,1.00,EUR,succeeded,2026-11-03T10:00:00Z,,card\n")
    _load_all(warehouse, landing)
    con = duckdb.connect(str(warehouse), read_only=True)
    statuses = con.execute(
        "select status from raw.load_manifest where file_name = ? order by loaded_at", [stray.name]
    ).fetchall()
    con.close()
    assert statuses == [("rejected",), ("skipped_duplicate",), ("rejected",)]


def test_a_warehouse_from_before_a_new_source_column_gets_it(tmp_path: Path) -> None:
    """raw.decisions gained `detail_shown`: an earlier warehouse's table and its _superseded twin get it."""
    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    try:
        create_raw_schema(con)
        for table in ("raw.decisions", "raw.decisions_superseded"):
            con.execute(f"alter table {table} drop column detail_shown")
        create_raw_schema(con)
        found = con.execute(
            "select table_name from information_schema.columns where column_name = 'detail_shown' order by 1"
        ).fetchall()
    finally:
        con.close()
    assert found == [("decisions",), ("decisions_superseded",)]
