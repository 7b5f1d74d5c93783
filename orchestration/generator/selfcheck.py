"""An independent oracle: re-read written extracts with DuckDB's readers and apply audit_mart.md.

It knows nothing of the generator's tables: it reads the files (skipping the rejected ones listed
in `_ground_truth/rejected_files.csv` and the bad rows, which all carry `-BAD-` ids or fail to
parse), applies the contract's dedup rules and every rule of the exception table, and returns the
(entity_type, entity_id, order_id, exception_code) set that `expected_exceptions.csv` must equal.
Small inputs only (tests): it runs single-threaded so that scan order is delivery order.
"""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

import duckdb

from orchestration.ingest.sources import SOURCES
from orchestration.rules import minor_units_sql, trimmed_id_sql
from orchestration.settings import GROUND_TRUTH_DIR

Exception_ = tuple[str, str, str, str]

_CSV_COLUMNS = {
    source: SOURCES[source].columns
    for source in ("payments", "inventory_movements", "inventory_levels", "products")
}
_MACROS = (
    "CREATE MACRO ts(v) AS (trim(v))::TIMESTAMPTZ::TIMESTAMP",
    "CREATE MACRO money(v) AS coalesce((nullif(trim(v), ''))::DECIMAL(18, 6), 0)",
    f"CREATE MACRO exp_of(c) AS {minor_units_sql('c')}",
    # each branch cast on its own: a CASE over round(DECIMAL(38, 6), 0|2|3) unifies to DECIMAL(38, 0)
    "CREATE MACRO rnd(x, e) AS CASE e WHEN 0 THEN round((x)::DECIMAL(18, 6), 0)::DECIMAL(18, 6) "
    "WHEN 3 THEN round((x)::DECIMAL(18, 6), 3)::DECIMAL(18, 6) ELSE round((x)::DECIMAL(18, 6), 2)::DECIMAL(18, 6) END",
    f"CREATE MACRO id(v) AS {trimmed_id_sql('v')}",
)


def _files(root: Path, source: str, rejected: set[str]) -> list[str]:
    return sorted(str(p) for p in (root / source).glob(f"{source}_*") if p.name not in rejected)


def _sql_list(paths: list[str]) -> str:
    return "[" + ", ".join("'" + p.replace("'", "''") + "'" for p in paths) + "]"


def _load(con: duckdb.DuckDBPyConnection, root: Path) -> None:
    rejected_csv = root / GROUND_TRUTH_DIR / "rejected_files.csv"
    rejected: set[str] = set()
    if rejected_csv.exists():
        with rejected_csv.open(newline="", encoding="utf-8") as handle:
            rejected = {row["file_name"] for row in csv.DictReader(handle)}
    orders = _files(root, "orders", rejected)
    con.execute(
        f"""
        CREATE TABLE order_docs AS
        WITH raw AS (
            SELECT filename, string_split(content, chr(10)) AS parts FROM read_text({_sql_list(orders)})
        ),
        lines AS (SELECT filename, unnest(parts) AS line, generate_subscripts(parts, 1) AS line_number FROM raw)
        SELECT filename, line_number, line::JSON AS doc FROM lines
        WHERE line <> '' AND json_valid(line) AND NOT contains(line, '"ORD-BAD-')
        """
    )
    for source, columns in _CSV_COLUMNS.items():
        types = "{" + ", ".join(f"'{c}': 'VARCHAR'" for c in columns) + "}"
        con.execute(
            f"""
            CREATE TABLE raw_{source} AS
            SELECT *, row_number() OVER () AS ordinal
            FROM read_csv({_sql_list(_files(root, source, rejected))}, header = true, columns = {types},
                          auto_detect = false, ignore_errors = true, filename = true, quote = '"', escape = '"')
            WHERE NOT contains({columns[0]}, '-BAD-')
            """
        )


def _current_state(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE TABLE versions AS
        WITH v AS (
            SELECT id(doc ->> 'order_id') AS order_id, ts(doc ->> 'updated_at') AS updated_at,
                   filename, line_number, doc
            FROM order_docs
        )
        SELECT order_id, updated_at, arg_max(doc, (filename, line_number)) AS doc FROM v GROUP BY ALL;

        CREATE TABLE orders AS
        SELECT order_id, count(*) AS versions, arg_max(doc, updated_at) AS doc, max(updated_at) AS updated_at
        FROM versions GROUP BY order_id;

        CREATE TABLE fact AS
        SELECT order_id, doc ->> 'status' AS status, doc ->> 'currency' AS currency,
               exp_of(doc ->> 'currency') AS e, ts(doc ->> 'created_at') AS created_at,
               money(doc ->> 'total_amount') AS total, money(doc ->> 'refunded_amount') AS refunded,
               money(doc ->> 'discount_amount') AS discount, money(doc ->> 'shipping_amount') AS shipping,
               money(doc ->> 'tax_amount') AS tax, doc
        FROM orders;

        CREATE TABLE order_lines AS
        WITH l AS (SELECT order_id, currency, e, created_at, unnest(json_extract(doc, '$.lines[*]')) AS line FROM fact)
        SELECT order_id, currency, e, created_at, line ->> 'sku' AS sku, (line ->> 'quantity')::BIGINT AS quantity,
               money(line ->> 'unit_price') AS unit_price, money(line ->> 'discount_amount') AS discount
        FROM l;

        CREATE TABLE payments AS
        SELECT id(payment_id) AS payment_id,
               arg_max(id(order_id), ordinal) AS order_id, arg_max(event_type, ordinal) AS event_type,
               arg_max(money(amount), ordinal) AS amount, arg_max(currency, ordinal) AS currency,
               arg_max(status, ordinal) AS status, arg_max(ts(processed_at), ordinal) AS processed_at,
               arg_max(id(psp_reference), ordinal) AS psp_reference
        FROM raw_payments GROUP BY 1;

        CREATE TABLE movements AS
        SELECT id(movement_id) AS movement_id, arg_max(id(sku), ordinal) AS sku,
               arg_max(id(warehouse_id), ordinal) AS warehouse_id, arg_max(movement_type, ordinal) AS movement_type,
               arg_max(quantity::BIGINT, ordinal) AS quantity, arg_max(id(order_id), ordinal) AS order_id,
               arg_max(ts(occurred_at), ordinal) AS occurred_at
        FROM raw_inventory_movements GROUP BY 1;

        CREATE TABLE levels AS
        SELECT id(sku) AS sku, id(warehouse_id) AS warehouse_id, snapshot_date::DATE AS snapshot_date,
               arg_max(on_hand::BIGINT, ordinal) AS on_hand
        FROM raw_inventory_levels GROUP BY ALL;

        CREATE TABLE prices AS
        SELECT id(sku) AS sku, currency, ts(valid_from) AS valid_from, arg_max(money(unit_price), ordinal) AS price
        FROM raw_products GROUP BY ALL;
        """
    )


def _rules(con: duckdb.DuckDBPyConnection, as_of: datetime | None, sla_hours: int) -> None:
    as_of_sql = (
        f"TIMESTAMP '{as_of.isoformat(sep=' ')}'"
        if as_of
        else """(SELECT max(t) FROM (SELECT updated_at AS t FROM versions UNION ALL
               SELECT ts(processed_at) FROM raw_payments UNION ALL SELECT ts(occurred_at) FROM raw_inventory_movements))"""
    )
    con.execute(
        f"""
        CREATE TABLE pay AS
        SELECT f.order_id,
            coalesce(sum(p.amount) FILTER (p.status = 'succeeded' AND p.event_type = 'capture'
                                           AND p.currency = f.currency), 0) AS captured,
            coalesce(sum(p.amount) FILTER (p.status = 'succeeded' AND p.event_type = 'refund'
                                           AND p.currency = f.currency), 0) AS psp_refunded,
            count(*) FILTER (p.status = 'succeeded' AND p.currency <> f.currency) AS foreign_events,
            count(*) FILTER (p.status = 'succeeded' AND p.event_type = 'chargeback') AS chargebacks,
            min(p.processed_at) FILTER (p.status = 'succeeded' AND p.event_type = 'capture') AS first_captured_at
        FROM fact AS f LEFT JOIN payments AS p USING (order_id) GROUP BY f.order_id;

        CREATE TABLE units AS
        WITH ordered AS (SELECT order_id, sku, sum(quantity) AS q FROM order_lines GROUP BY ALL),
        moved AS (
            SELECT order_id, sku, sum(quantity) FILTER (movement_type = 'shipment') AS shipped,
                   sum(quantity) FILTER (movement_type = 'return') AS returned
            FROM movements WHERE order_id IN (SELECT order_id FROM fact) GROUP BY ALL
        )
        SELECT order_id, sku, coalesce(o.q, 0) AS ordered, coalesce(m.shipped, 0) AS shipped,
               coalesce(m.returned, 0) AS returned
        FROM ordered AS o FULL JOIN moved AS m USING (order_id, sku);

        CREATE TABLE stock AS
        SELECT *, sum(CASE movement_type WHEN 'shipment' THEN -quantity WHEN 'reservation' THEN 0
                           WHEN 'release' THEN 0 ELSE quantity END)
                  OVER (PARTITION BY sku, warehouse_id ORDER BY occurred_at, movement_id
                        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS on_hand_after
        FROM movements;

        CREATE TABLE found AS
        WITH a AS (
            SELECT f.*, p.*,
                CASE WHEN f.status IN ('pending', 'cancelled') THEN 0 ELSE f.total - f.refunded END AS expected_net,
                f.status IN ('paid', 'partially_fulfilled', 'fulfilled', 'partially_refunded', 'refunded') AS paid_or_later,
                (SELECT sum(quantity * unit_price - discount) FROM order_lines AS l WHERE l.order_id = f.order_id)
                    - f.discount + f.shipping + f.tax AS computed,
                (SELECT min(occurred_at) FROM movements AS m
                 WHERE m.order_id = f.order_id AND m.movement_type = 'shipment') AS first_shipped_at
            FROM fact AS f JOIN pay AS p USING (order_id)
        ),
        b AS (SELECT *, expected_net - (captured - psp_refunded) AS balance FROM a),
        codes AS (
            SELECT order_id, 'PAYMENT_MISSING' AS code FROM b WHERE paid_or_later AND rnd(captured, e) = 0
            UNION ALL SELECT order_id, 'UNDERPAID' FROM b
                WHERE paid_or_later AND rnd(captured, e) > 0 AND rnd(balance, e) > 0
            UNION ALL SELECT order_id, 'OVERPAID' FROM b WHERE status <> 'cancelled' AND rnd(balance, e) < 0
            UNION ALL SELECT order_id, 'REFUND_MISMATCH' FROM b WHERE rnd(psp_refunded - refunded, e) <> 0
            UNION ALL SELECT order_id, 'CANCELLED_NOT_REFUNDED' FROM b
                WHERE status = 'cancelled' AND rnd(captured - psp_refunded, e) > 0
            UNION ALL SELECT order_id, 'CURRENCY_MISMATCH' FROM b WHERE foreign_events > 0
            UNION ALL SELECT DISTINCT order_id, 'DUPLICATE_CAPTURE' FROM payments
                WHERE status = 'succeeded' AND event_type = 'capture' AND psp_reference IS NOT NULL
                  AND order_id IN (SELECT order_id FROM fact)
                GROUP BY order_id, psp_reference HAVING count(*) >= 2
            UNION ALL SELECT order_id, 'CHARGEBACK' FROM b WHERE chargebacks > 0
            UNION ALL SELECT order_id, 'ORDER_TOTAL_MISMATCH' FROM b WHERE rnd(total - computed, e) <> 0
            UNION ALL SELECT order_id, 'SHIPPED_BEFORE_PAYMENT' FROM b
                WHERE first_shipped_at IS NOT NULL AND (first_captured_at IS NULL OR first_shipped_at < first_captured_at)
            UNION ALL SELECT DISTINCT order_id, 'OVER_SHIPPED' FROM units WHERE shipped - returned > ordered
            UNION ALL SELECT DISTINCT u.order_id, 'UNDER_SHIPPED' FROM units AS u JOIN fact AS f USING (order_id)
                WHERE f.status = 'fulfilled' AND u.shipped < u.ordered
            UNION ALL SELECT DISTINCT u.order_id, 'CANCELLED_BUT_SHIPPED' FROM units AS u JOIN fact AS f USING (order_id)
                WHERE f.status = 'cancelled' AND u.shipped - u.returned > 0
            UNION ALL SELECT DISTINCT order_id, 'OVERSOLD' FROM stock
                WHERE movement_type = 'shipment' AND on_hand_after < 0 AND order_id IN (SELECT order_id FROM fact)
            UNION ALL SELECT order_id, 'FULFILLMENT_DELAYED' FROM b
                WHERE status IN ('paid', 'partially_fulfilled')
                  AND first_captured_at < {as_of_sql} - INTERVAL {sla_hours} HOUR
            UNION ALL SELECT DISTINCT l.order_id, 'PRICE_MISMATCH' FROM order_lines AS l
                ASOF JOIN prices AS p ON p.sku = l.sku AND p.currency = l.currency AND l.created_at >= p.valid_from
                WHERE rnd(l.unit_price - p.price, l.e) <> 0
            UNION ALL SELECT DISTINCT order_id, 'UNKNOWN_SKU' FROM order_lines
                WHERE (SELECT count(*) FROM prices) > 0 AND sku NOT IN (SELECT sku FROM prices)
        )
        SELECT DISTINCT 'order' AS entity_type, order_id AS entity_id, order_id, code FROM codes
        UNION ALL
        SELECT 'payment', payment_id, order_id, 'ORPHAN_PAYMENT' FROM payments
            WHERE order_id IS NULL OR order_id NOT IN (SELECT order_id FROM fact)
        UNION ALL
        SELECT 'movement', movement_id, order_id, 'ORPHAN_MOVEMENT' FROM movements
            WHERE order_id IS NOT NULL AND order_id NOT IN (SELECT order_id FROM fact)
        UNION ALL
        SELECT 'stock_position', l.sku || '|' || l.warehouse_id || '|' || strftime(l.snapshot_date, '%Y-%m-%d'),
               NULL, 'STOCK_LEVEL_MISMATCH'
        FROM levels AS l
        WHERE l.on_hand <> coalesce((SELECT sum(CASE m.movement_type WHEN 'shipment' THEN -m.quantity
                                                     WHEN 'reservation' THEN 0 WHEN 'release' THEN 0
                                                     ELSE m.quantity END)
                                    FROM movements AS m WHERE m.sku = l.sku AND m.warehouse_id = l.warehouse_id
                                      AND m.occurred_at < l.snapshot_date + INTERVAL 1 DAY), 0)
        """
    )


def audit(extracts_dir: Path, as_of: datetime | None = None, sla_hours: int = 72) -> set[Exception_]:
    """Every (entity_type, entity_id, order_id, exception_code) the files raise; order_id '' when none."""
    con = duckdb.connect(":memory:", config={"threads": 1})
    try:
        for macro in _MACROS:
            con.execute(macro)
        _load(con, extracts_dir)
        _current_state(con)
        _rules(con, as_of, sla_hours)
        rows = con.execute(
            "SELECT entity_type, entity_id, coalesce(order_id, ''), code FROM found"
        ).fetchall()
    finally:
        con.close()
    return {(str(a), str(b), str(c), str(d)) for a, b, c, d in rows}


def computed_as_of(extracts_dir: Path) -> datetime:
    """The default as-of time of the files: the latest clean orders/payments/movements instant."""
    con = duckdb.connect(":memory:", config={"threads": 1})
    try:
        for macro in _MACROS:
            con.execute(macro)
        _load(con, extracts_dir)
        _current_state(con)
        value = con.execute(
            """SELECT max(t) FROM (SELECT updated_at AS t FROM versions UNION ALL
               SELECT ts(processed_at) FROM raw_payments UNION ALL SELECT ts(occurred_at) FROM raw_inventory_movements)"""
        ).fetchall()[0][0]
    finally:
        con.close()
    assert isinstance(value, datetime)
    return value


def expected(extracts_dir: Path) -> set[Exception_]:
    """The ground truth written by the generator, as a set comparable with `audit()`."""
    path = extracts_dir / GROUND_TRUTH_DIR / "expected_exceptions.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        return {
            (row["entity_type"], row["entity_id"], row["order_id"], row["exception_code"])
            for row in csv.DictReader(handle)
        }
