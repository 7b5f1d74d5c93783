"""The seeded extract generator: contract-shaped files, determinism, and a ground truth that an
independent oracle (re-reading the files with DuckDB) agrees with, rule by rule."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import FrozenInstanceError
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from orchestration.generator import GenerationSummary, generate, selfcheck
from orchestration.generator.bad_rows import REASON_CODES, REJECT_CODES
from orchestration.generator.scenarios import ALL_CODES

ORDERS = 600
CSV_COLUMNS = {
    "payments": "payment_id,order_id,event_type,amount,currency,status,processed_at,psp_reference,method",
    "inventory_movements": "movement_id,sku,warehouse_id,movement_type,quantity,order_id,occurred_at",
    "inventory_levels": "sku,warehouse_id,on_hand,snapshot_date",
    "products": "sku,title,unit_price,currency,valid_from",
}
MONEY = r"^[0-9]+(\.[0-9]+)?$"
TIMESTAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{6})?(Z|[+-][0-9]{2}:[0-9]{2})$"
STATUSES = "('pending','paid','partially_fulfilled','fulfilled','cancelled','partially_refunded','refunded')"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, GenerationSummary]:
    base = tmp_path_factory.mktemp("generator")
    return {
        "default": generate(base / "default", orders=ORDERS, seed=42),
        "again": generate(base / "again", orders=ORDERS, seed=42),
        "other_seed": generate(base / "other_seed", orders=ORDERS, seed=43),
        "bad": generate(base / "bad", orders=ORDERS, seed=7, days=6, bad_rows_rate=0.02),
        "clean": generate(base / "clean", orders=300, seed=5, exception_rate=0.0),
    }


@pytest.fixture()
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(":memory:")
    yield connection
    connection.close()


def _extract_files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "_ground_truth" not in p.parts
    }


def _glob(root: Path, source: str, ext: str) -> str:
    return str(root / source / f"{source}_*.{ext}")


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> object:
    return con.execute(sql).fetchall()[0][0]


def _read_csv(source: str, root: Path) -> str:
    columns = CSV_COLUMNS[source].split(",")
    types = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in columns) + "}"
    return (
        f"read_csv('{_glob(root, source, 'csv')}', header = true, columns = {types}, auto_detect = false, "
        "quote = '\"', escape = '\"', filename = true)"
    )


# --- determinism -----------------------------------------------------------------------------------


def test_same_seed_gives_byte_identical_files(runs: dict[str, GenerationSummary]) -> None:
    first, again = runs["default"].out_dir, runs["again"].out_dir
    assert _extract_files(first) == _extract_files(again)
    for name in ("expected_exceptions.csv", "scenarios.csv", "manifest.json"):
        assert (first / "_ground_truth" / name).read_bytes() == (again / "_ground_truth" / name).read_bytes()


def test_different_seed_gives_different_data(runs: dict[str, GenerationSummary]) -> None:
    first, other = _extract_files(runs["default"].out_dir), _extract_files(runs["other_seed"].out_dir)
    assert first.keys() == other.keys()
    assert all(first[name] != other[name] for name in first if name.startswith("orders"))


def test_summary_describes_the_run(runs: dict[str, GenerationSummary]) -> None:
    summary = runs["default"]
    assert summary.orders == ORDERS and summary.bad_rows == 0 and summary.rejected_files == 0
    assert set(summary.rows_per_source) == {"orders", *CSV_COLUMNS}
    assert all(count > 0 for count in summary.rows_per_source.values())
    assert set(summary.expected_exceptions) == set(ALL_CODES)
    assert all(path.is_file() for path in summary.files)
    with pytest.raises(FrozenInstanceError):
        summary.orders = 1  # type: ignore[misc]
    manifest = json.loads((summary.out_dir / "_ground_truth" / "manifest.json").read_text())
    assert manifest["as_of"] == summary.as_of.isoformat() + "Z"


# --- file layout and formats -------------------------------------------------------------------------


def test_file_names_follow_the_contract(runs: dict[str, GenerationSummary]) -> None:
    root = runs["default"].out_dir
    names = {p.name for p in runs["default"].files}
    assert {f"orders_2026-11-02_{part}.jsonl" for part in (1, 2)} <= names
    assert "products_2026-11-01.csv" in names and "products_2026-11-05_2.csv" in names
    for source in ("payments", "inventory_movements", "inventory_levels"):
        assert {p.name for p in (root / source).iterdir()} == {
            f"{source}_2026-11-{d:02d}.csv" for d in range(1, 11)
        }
    for path in runs["default"].files:
        data = path.read_bytes()
        assert data.endswith(b"\n") and b"\r" not in data
        data.decode("utf-8")


def test_csv_headers_and_fields(runs: dict[str, GenerationSummary], con: duckdb.DuckDBPyConnection) -> None:
    root = runs["default"].out_dir
    for source, header in CSV_COLUMNS.items():
        for path in (root / source).glob("*.csv"):
            lines = path.read_text(encoding="utf-8").split("\n")
            assert lines[0] == header
            parsed = _scalar(
                con,
                f"SELECT count(*) FROM {_read_csv(source, root).replace(_glob(root, source, 'csv'), str(path))}",
            )
            assert parsed == len(lines) - 2, f"{path.name}: a record spans lines or is malformed"
    bad_payments = _scalar(
        con,
        f"""SELECT count(*) FROM {_read_csv("payments", root)} WHERE NOT (
            trim(payment_id) <> '' AND event_type IN ('authorization', 'capture', 'refund', 'chargeback', 'void')
            AND regexp_matches(amount, '{MONEY}') AND regexp_full_match(currency, '[A-Z]{{3}}')
            AND status IN ('succeeded', 'failed', 'pending') AND regexp_matches(processed_at, '{TIMESTAMP}')
            AND try_cast(processed_at AS TIMESTAMPTZ) IS NOT NULL)""",
    )
    bad_movements = _scalar(
        con,
        f"""SELECT count(*) FROM {_read_csv("inventory_movements", root)} WHERE NOT (
            trim(movement_id) <> '' AND trim(sku) <> '' AND trim(warehouse_id) <> ''
            AND movement_type IN ('receipt', 'reservation', 'release', 'shipment', 'return', 'adjustment')
            AND regexp_matches(quantity, '^-?[0-9]+$')
            AND (movement_type = 'adjustment' OR quantity::BIGINT > 0) AND quantity::BIGINT <> 0
            AND (movement_type IN ('reservation', 'release', 'shipment', 'return')) = (coalesce(trim(order_id), '') <> '')
            AND regexp_matches(occurred_at, '{TIMESTAMP}'))""",
    )
    bad_levels = _scalar(
        con,
        f"""SELECT count(*) FROM {_read_csv("inventory_levels", root)} WHERE NOT (
            regexp_matches(on_hand, '^-?[0-9]+$') AND try_cast(snapshot_date AS DATE) IS NOT NULL
            AND filename LIKE '%' || snapshot_date || '.csv')""",
    )
    bad_products = _scalar(
        con,
        f"""SELECT count(*) FROM {_read_csv("products", root)} WHERE NOT (
            regexp_matches(unit_price, '{MONEY}') AND regexp_full_match(currency, '[A-Z]{{3}}')
            AND regexp_matches(valid_from, '{TIMESTAMP}'))""",
    )
    assert (bad_payments, bad_movements, bad_levels, bad_products) == (0, 0, 0, 0)
    assert _scalar(con, f"SELECT count(*) FROM {_read_csv('products', root)} WHERE contains(title, ',')")


def test_order_lines_are_contract_shaped(
    runs: dict[str, GenerationSummary], con: duckdb.DuckDBPyConnection
) -> None:
    root = runs["default"].out_dir
    con.execute(
        f"""CREATE TABLE o AS SELECT row_number() OVER () AS doc_id, json AS doc
            FROM read_ndjson_objects('{_glob(root, "orders", "jsonl")}')"""
    )
    money_fields = ("discount_amount", "shipping_amount", "tax_amount", "refunded_amount")
    wrong = _scalar(
        con,
        f"""SELECT count(*) FROM o WHERE NOT (
            json_type(doc, '$.order_id') = 'VARCHAR' AND json_type(doc, '$.customer_id') = 'VARCHAR'
            AND doc ->> 'status' IN {STATUSES} AND regexp_full_match(doc ->> 'currency', '[A-Z]{{3}}')
            AND regexp_matches(doc ->> 'created_at', '{TIMESTAMP}') AND regexp_matches(doc ->> 'updated_at', '{TIMESTAMP}')
            AND json_type(doc, '$.total_amount') = 'VARCHAR' AND regexp_matches(doc ->> 'total_amount', '{MONEY}')
            AND json_type(doc, '$.lines') = 'ARRAY' AND json_array_length(doc, '$.lines') > 0
            AND {" AND ".join(f"coalesce(json_type(doc, '$.{f}'), 'NULL') IN ('VARCHAR', 'NULL')" for f in money_fields)})""",
    )
    assert wrong == 0
    con.execute(
        """CREATE TABLE l AS SELECT doc_id,
                  unnest(json_extract(doc, '$.lines[*]')) AS line FROM o"""
    )
    wrong_lines = _scalar(
        con,
        f"""SELECT count(*) FROM l WHERE NOT (
            json_type(line, '$.quantity') IN ('BIGINT', 'UBIGINT') AND (line ->> 'quantity')::BIGINT > 0
            AND json_type(line, '$.unit_price') = 'VARCHAR' AND regexp_matches(line ->> 'unit_price', '{MONEY}')
            AND coalesce(json_type(line, '$.discount_amount'), 'NULL') IN ('VARCHAR', 'NULL'))""",
    )
    duplicate_ids = _scalar(
        con, "SELECT count(*) FROM (SELECT 1 FROM l GROUP BY doc_id, line ->> 'line_id' HAVING count(*) > 1)"
    )
    assert (wrong_lines, duplicate_ids) == (0, 0)
    # optional fields: sometimes absent, sometimes null, sometimes ""; e-mail on most rows
    for field in ("channel", "shipping_amount"):
        kinds = {
            row[0]
            for row in con.execute(
                f"SELECT DISTINCT coalesce(json_type(doc, '$.{field}'), 'ABSENT') FROM o"
            ).fetchall()
        }
        assert {"ABSENT", "NULL", "VARCHAR"} <= kinds
        assert _scalar(con, f"SELECT count(*) FROM o WHERE doc ->> '{field}' = ''")
    assert _scalar(con, "SELECT avg((json_type(doc, '$.customer_email') = 'VARCHAR')::INT) FROM o") > 0.8


def test_values_exercise_offsets_precision_and_currencies(
    runs: dict[str, GenerationSummary], con: duckdb.DuckDBPyConnection
) -> None:
    root = runs["default"].out_dir
    payments = _read_csv("payments", root)
    suffixes = {
        row[0] for row in con.execute(f"SELECT DISTINCT right(processed_at, 6) FROM {payments}").fetchall()
    }
    assert any(s.endswith("Z") for s in suffixes) and {"+01:00", "-05:00", "+09:00"} <= suffixes
    assert _scalar(
        con, f"SELECT count(*) FROM {payments} WHERE regexp_matches(processed_at, '\\.[0-9]{{6}}')"
    )
    decimals = dict(
        con.execute(
            f"""SELECT currency, max(length(split_part(amount, '.', 2))) FROM {payments}
                WHERE NOT payment_id LIKE 'PAY-ORPHAN-%' GROUP BY ALL"""
        ).fetchall()
    )
    assert {"USD", "EUR", "GBP", "JPY", "KWD", "BHD"} <= decimals.keys()
    assert decimals["JPY"] <= 1 and decimals["KWD"] >= 3 and decimals["EUR"] == 2
    assert _scalar(con, f"SELECT count(*) FROM {payments} WHERE order_id <> trim(order_id)")


# --- ground truth ------------------------------------------------------------------------------------


def test_ground_truth_covers_every_code(runs: dict[str, GenerationSummary]) -> None:
    expected = selfcheck.expected(runs["default"].out_dir)
    assert {code for *_, code in expected} == set(ALL_CODES)
    assert sum(runs["default"].expected_exceptions.values()) == len(expected)
    entity_types = {entity for entity, *_ in expected}
    assert entity_types == {"order", "payment", "movement", "stock_position"}


@pytest.mark.parametrize("run", ["default", "bad", "clean"])
def test_oracle_recomputes_exactly_the_ground_truth(runs: dict[str, GenerationSummary], run: str) -> None:
    root = runs[run].out_dir
    assert selfcheck.computed_as_of(root) == runs[run].as_of
    found, expected = selfcheck.audit(root), selfcheck.expected(root)
    assert sorted(found - expected) == [] and sorted(expected - found) == []
    if run == "clean":
        assert expected == set()


def test_near_misses_sit_exactly_on_their_boundaries(runs: dict[str, GenerationSummary]) -> None:
    root = runs["default"].out_dir
    with (root / "_ground_truth" / "scenarios.csv").open(newline="") as handle:
        scenario_of = {row["order_id"]: row["scenario"] for row in csv.DictReader(handle)}
    exact72 = {o for o, s in scenario_of.items() if s == "near_captured_exactly_72h"}
    assert exact72
    one_later = selfcheck.audit(root, as_of=runs["default"].as_of + timedelta(microseconds=1))
    newly_delayed = one_later - selfcheck.audit(root)
    assert {entity_id for _, entity_id, _, _ in newly_delayed} == exact72
    docs = [
        json.loads(line)
        for path in (root / "orders").glob("*.jsonl")
        for line in path.read_text().splitlines()
    ]
    change_at = datetime.fromisoformat(
        json.loads((root / "_ground_truth" / "manifest.json").read_text())["price_change_at"]
    )
    created = {d["order_id"]: datetime.fromisoformat(d["created_at"]) for d in docs}
    for order_id, scenario in scenario_of.items():
        if scenario == "near_new_price_at_change":
            assert created[order_id] == change_at
        if scenario == "near_old_price_before_change":
            assert created[order_id] == change_at - timedelta(microseconds=1)


# --- bad input ---------------------------------------------------------------------------------------


def test_default_output_has_no_bad_input(runs: dict[str, GenerationSummary]) -> None:
    root = runs["default"].out_dir
    assert not (root / "_ground_truth" / "bad_rows.csv").exists()
    assert not (root / "_ground_truth" / "rejected_files.csv").exists()
    assert not any(b"-BAD-" in data or b"-REJ-" in data for data in _extract_files(root).values())


def test_bad_rows_truth_points_at_every_bad_line(runs: dict[str, GenerationSummary]) -> None:
    summary = runs["bad"]
    root = summary.out_dir
    with (root / "_ground_truth" / "bad_rows.csv").open(newline="") as handle:
        bad = list(csv.DictReader(handle))
    assert {row["reason_code"] for row in bad} == set(REASON_CODES)
    assert len(bad) == summary.bad_rows
    listed = {(row["file_name"], int(row["line_number"])) for row in bad}
    with (root / "_ground_truth" / "rejected_files.csv").open(newline="") as handle:
        rejected = {row["file_name"]: row["reason_code"] for row in csv.DictReader(handle)}
    actual = set()
    for path in summary.files:
        if path.name in rejected:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").split("\n")[:-1], start=1):
            if "-BAD-" in line:
                actual.add((path.name, number))
    assert actual == listed


def test_rejected_files_cannot_be_read(runs: dict[str, GenerationSummary]) -> None:
    root = runs["bad"].out_dir
    with (root / "_ground_truth" / "rejected_files.csv").open(newline="") as handle:
        rejected = {
            row["reason_code"]: root / row["source"] / row["file_name"] for row in csv.DictReader(handle)
        }
    assert set(rejected) == set(REJECT_CODES)
    assert rejected["empty_file"].stat().st_size == 0
    with pytest.raises(UnicodeDecodeError):
        rejected["not_utf8"].read_bytes().decode("utf-8")
    assert rejected["wrong_header"].read_text().split("\n")[0] != CSV_COLUMNS["payments"]
    for line in rejected["not_json_lines"].read_text().splitlines():
        try:
            assert not isinstance(json.loads(line), dict)
        except json.JSONDecodeError:
            pass
