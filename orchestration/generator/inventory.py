"""WMS movements and end-of-day stock snapshots.

Order movements come from the order lifecycle (reservation at payment, shipments, releases on a
paid cancellation, returns before refunds) plus the scenario shipments. Stock is then laid in
set-based: every (sku, warehouse) receives, before its first movement, everything it ships up to
the restock instant plus a buffer, and at the restock instant everything it ships after it, so a
clean (sku, warehouse) never goes below the buffer minus one small adjustment (>= 7 units). The
dedicated OVERSOLD skus get one unit for a two-unit shipment. Snapshots are computed from the
final movements exactly as the contract defines them.
"""

from __future__ import annotations

from orchestration.generator.config import WAREHOUSES
from orchestration.generator.sqlkit import Ctx


def _line_movement(code: str, movement_type: str, quantity: str, occurred_at: str, where: str) -> str:
    return f"""
        SELECT 'MV-' || lpad(f.i::VARCHAR, 8, '0') || '-{code}' || l.line_no AS movement_id, f.i, f.order_id,
               l.sku, l.warehouse_id, '{movement_type}' AS movement_type, ({quantity})::BIGINT AS quantity,
               {occurred_at} AS occurred_at
        FROM order_facts AS f JOIN order_lines AS l USING (i) {where}"""


def _extra_movement(code: str, movement_type: str, sku: str, occurred_at: str, where: str) -> str:
    return f"""
        SELECT 'MV-' || lpad(f.i::VARCHAR, 8, '0') || '-{code}', f.i, f.order_id, {sku}, l.warehouse_id,
               '{movement_type}', 1::BIGINT, {occurred_at}
        FROM order_facts AS f JOIN order_lines AS l ON l.i = f.i AND l.line_no = 1 {where}"""


def create_order_movements(ctx: Ctx) -> None:
    ship_at = """CASE
        WHEN f.ship_mode IN ('cancel_shipped', 'cancel_shipped_returned') THEN f.t_cap + INTERVAL 1 HOUR
        WHEN f.ship_mode = 'pending_ship' THEN f.created_at + INTERVAL 2 HOUR
        WHEN f.ship_mode = 'before_capture' AND (l.line_no = 1 OR NOT f.split) THEN f.t_cap - INTERVAL 30 MINUTE
        WHEN f.ship_mode = 'at_capture' AND (l.line_no = 1 OR NOT f.split) THEN f.t_cap
        WHEN l.line_no = 1 OR NOT f.split THEN f.t_ship1
        ELSE f.t_ship2 END"""
    shipped = """(
        (f.ship_mode IN ('cancel_shipped', 'cancel_shipped_returned') AND f.inc_cancel)
        OR (f.ship_mode = 'pending_ship')
        OR (f.ship_mode NOT IN ('cancel_shipped', 'cancel_shipped_returned', 'pending_ship')
            AND ((f.inc_ship1 AND (l.line_no = 1 OR NOT f.split)) OR (f.inc_ship2 AND l.line_no > 1)))
    )"""
    ship_qty = "CASE WHEN f.ship_mode = 'minus_one' AND l.line_no = 1 THEN l.quantity - 1 ELSE l.quantity END"
    line_one_ship = "f.t_ship1 + INTERVAL 1 MINUTE"
    parts = [
        _line_movement("R", "reservation", "l.quantity", "f.t_cap + INTERVAL 2 SECOND", "WHERE f.inc_paid"),
        _line_movement("S", "shipment", ship_qty, ship_at, f"WHERE {shipped} AND ({ship_qty}) > 0"),
        _line_movement(
            "X",
            "release",
            "l.quantity",
            "f.t_cancel - INTERVAL 30 SECOND",
            "WHERE f.kind = 'cancel_paid' AND f.inc_cancel",
        ),
        _line_movement(
            "T",
            "return",
            "CASE WHEN f.kind = 'part_refund' THEN 1 ELSE l.quantity END",
            "f.t_ret",
            """WHERE f.inc_refund AND ((f.kind = 'part_refund' AND l.line_no = 1)
                                                  OR (f.kind = 'full_refund' AND f.returns_all))""",
        ),
        _line_movement(
            "T",
            "return",
            "l.quantity",
            "f.t_cancel - INTERVAL 45 MINUTE",
            "WHERE f.ship_mode = 'cancel_shipped_returned' AND f.inc_cancel",
        ),
        _extra_movement(
            "E1",
            "shipment",
            "l.sku",
            line_one_ship,
            "WHERE f.ship_mode IN ('plus_one', 'plus_one_returned') AND f.inc_ship1",
        ),
        _extra_movement(
            "E2",
            "return",
            "l.sku",
            f"{line_one_ship} + INTERVAL 2 HOUR",
            "WHERE f.ship_mode = 'plus_one_returned' AND f.inc_ship1",
        ),
        _extra_movement(
            "E3",
            "shipment",
            "'SKU-90001'",
            line_one_ship,
            "WHERE f.ship_mode = 'foreign_sku' AND f.inc_ship1",
        ),
    ]
    ctx.run(f"CREATE TABLE movements AS {' UNION ALL '.join(parts)}")


def add_stock_movements(ctx: Ctx) -> None:
    """Receipts (opening and restock), cycle-count adjustments, orphan movements and the as-of anchor."""
    cfg = ctx.cfg
    wh_list = "[" + ", ".join(f"'{w}'" for w in WAREHOUSES) + "]"
    span = int((cfg.as_of - cfg.start).total_seconds())
    restock = ctx.ts("restock_at")
    ctx.run(
        f"""
        CREATE TABLE stock_pairs AS
        WITH regular AS (
            SELECT s.sku, w.warehouse_id FROM skus AS s CROSS JOIN (SELECT unnest({wh_list}) AS warehouse_id) AS w
            WHERE s.sku_kind IN ('regular', 'gift')
        ),
        shipped AS (
            SELECT sku, warehouse_id,
                   sum(quantity) FILTER (WHERE occurred_at <= {restock}) AS before_restock,
                   sum(quantity) FILTER (WHERE occurred_at > {restock}) AS after_restock
            FROM movements WHERE movement_type = 'shipment' AND sku NOT LIKE 'SKU-OS-%'
            GROUP BY ALL
        )
        SELECT sku, warehouse_id, coalesce(s.before_restock, 0) AS before_restock,
               coalesce(s.after_restock, 0) AS after_restock
        FROM (SELECT * FROM regular UNION SELECT sku, warehouse_id FROM shipped) AS p
        LEFT JOIN shipped AS s USING (sku, warehouse_id)
        ORDER BY sku, warehouse_id
        """
    )
    opening = f"date_trunc('hour', least({ctx.ts('start')}, (SELECT min(occurred_at) FROM movements))) - INTERVAL 1 HOUR"
    ctx.run(
        f"""
        INSERT INTO movements
        SELECT 'MV-RCV-' || sku || '-' || warehouse_id || '-1', NULL, NULL, sku, warehouse_id, 'receipt',
               before_restock + 10 + (hx(sku || warehouse_id, 'buf') % 15)::BIGINT, {opening}
        FROM stock_pairs
        UNION ALL
        SELECT 'MV-RCV-' || sku || '-' || warehouse_id || '-2', NULL, NULL, sku, warehouse_id, 'receipt',
               after_restock + 5 + (hx(sku || warehouse_id, 'buf2') % 10)::BIGINT, {restock}
        FROM stock_pairs WHERE after_restock > 0
        UNION ALL
        SELECT 'MV-RCV-' || l.sku || '-' || l.warehouse_id || '-1', NULL, NULL, l.sku, l.warehouse_id, 'receipt',
               1, {opening}
        FROM order_lines AS l WHERE l.sku LIKE 'SKU-OS-%'
        UNION ALL
        SELECT 'MV-ADJ-' || sku || '-' || warehouse_id, NULL, NULL, sku, warehouse_id, 'adjustment',
               list_extract([-3, -2, -1, 1, 2, 3], (hx(sku || warehouse_id, 'adjq') % 6)::INTEGER + 1),
               {ctx.ts("start")} + secs(hx(sku || warehouse_id, 'adjt') % {span})
        FROM stock_pairs WHERE hx(sku || warehouse_id, 'adj') % 100 < 15
        UNION ALL
        SELECT 'MV-ANCHOR-0001', NULL, NULL, 'SKU-00000', 'WH-EU-AMS', 'receipt', 24, {ctx.ts("as_of")}
        """
    )
    # ORPHAN_MOVEMENT cases: reservations and returns (never shipments, so no stock can go negative)
    ctx.run(
        f"""
        INSERT INTO movements
        SELECT 'MV-ORPHAN-' || lpad(k::VARCHAR, 8, '0'), NULL, 'ORD-GHOST-M' || lpad(k::VARCHAR, 8, '0'),
               'SKU-' || lpad((hx(k, 'osku') % {cfg.n_skus})::VARCHAR, 5, '0'),
               list_extract({wh_list}, (hx(k, 'owh') % {len(WAREHOUSES)})::INTEGER + 1),
               CASE WHEN k % 2 = 0 THEN 'reservation' ELSE 'return' END, 1 + (hx(k, 'oq') % 2)::BIGINT,
               {ctx.ts("start")} + secs(hx(k, 'ots') % {span})
        FROM range({cfg.n_entity_cases}) AS t(k)
        """
    )


def create_stock_levels(ctx: Ctx) -> None:
    """`stock_levels(sku, warehouse_id, day, on_hand, true_on_hand, mismatch)`, one row per day from a
    pair's first movement on; `mismatch` rows (STOCK_LEVEL_MISMATCH) report a wrong on_hand."""
    cfg = ctx.cfg
    ctx.run(
        f"""
        CREATE TABLE stock_levels AS
        WITH deltas AS (
            SELECT sku, warehouse_id, day_index(occurred_at) AS day,
                   sum(CASE movement_type WHEN 'shipment' THEN -quantity WHEN 'receipt' THEN quantity
                           WHEN 'return' THEN quantity WHEN 'adjustment' THEN quantity ELSE 0 END) AS delta
            FROM movements GROUP BY ALL
        ),
        first_day AS (SELECT sku, warehouse_id, min(day) AS first_day FROM deltas GROUP BY ALL),
        grid AS (
            SELECT f.sku, f.warehouse_id, d.day FROM first_day AS f
            CROSS JOIN range({cfg.days}) AS d(day) WHERE d.day >= f.first_day
        ),
        levels AS (
            SELECT g.sku, g.warehouse_id, g.day,
                   sum(coalesce(x.delta, 0)) OVER (PARTITION BY g.sku, g.warehouse_id ORDER BY g.day
                                                  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS true_on_hand
            FROM grid AS g LEFT JOIN deltas AS x USING (sku, warehouse_id, day)
        ),
        ranked AS (
            SELECT *, row_number() OVER (ORDER BY hx(sku || warehouse_id || day, 'slm'), sku, warehouse_id, day)
                   AS r
            FROM levels
            WHERE regexp_full_match(sku, 'SKU-[0-9]{{5}}')
        )
        SELECT l.sku, l.warehouse_id, l.day, l.true_on_hand::BIGINT AS true_on_hand,
               (l.true_on_hand + CASE WHEN r.r <= {cfg.n_entity_cases}
                    THEN list_extract([-5, -3, -2, -1, 1, 2, 4, 7], (hx(l.sku || l.day, 'slmq') % 8)::INTEGER + 1)
                    ELSE 0 END)::BIGINT AS on_hand,
               coalesce(r.r <= {cfg.n_entity_cases}, FALSE) AS mismatch
        FROM levels AS l LEFT JOIN ranked AS r USING (sku, warehouse_id, day)
        ORDER BY l.day, l.sku, l.warehouse_id
        """
    )
