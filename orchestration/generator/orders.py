"""Orders: plan (scenario knobs, currency, timing), lines, amounts, lifecycle steps and versions.

Clean lifecycle: pending (created) -> paid (capture) -> partially_fulfilled (first shipment, when
split) -> fulfilled -> partially_refunded / refunded; or pending -> cancelled; or paid -> cancelled
(with a full refund). Every step carries its events (payments, movements) at or before the step's
version time, and a step exists only when its version time is at or before the as-of instant, so
an order cut by the end of the period is always in a consistent (clean) state.
"""

from __future__ import annotations

from orchestration.generator.catalog import currency_pick_sql
from orchestration.generator.sqlkit import Ctx

# Clean kind mix (percent buckets, cumulative).
_CLEAN_KINDS = (
    ("pending", 4),
    ("cancel_unpaid", 8),
    ("cancel_paid", 11),
    ("part_refund", 17),
    ("full_refund", 20),
)
_METHODS = (
    "card",
    "card",
    "card",
    "card",
    "card",
    "card",
    "card",
    "card",
    "card",
    "card",
    "card",
    "paypal",
    "paypal",
    "paypal",
    "apple_pay",
    "apple_pay",
    "bank_transfer",
    "gift_card",
    "card, 3-D Secure",
    'klarna "pay later"',
)


def _clean_kind_sql() -> str:
    branches = " ".join(f"WHEN hx(i, 'kind') % 100 < {upper} THEN '{kind}'" for kind, upper in _CLEAN_KINDS)
    return f"(CASE {branches} ELSE 'fulfil' END)"


def create_plan(ctx: Ctx) -> None:
    """`order_plan`: one row per order with its knobs, currency, kind, line count and step delays."""
    cfg = ctx.cfg
    span_auto = int((cfg.as_of - cfg.start).total_seconds()) - 1
    span_long = max(0, cfg.days * 86400 - 90 * 3600)
    methods = "[" + ", ".join("'" + m.replace("'", "''") + "'" for m in _METHODS) + "]"
    knobs = {
        "kind": "'auto'",
        "timing": "'auto'",
        "min_lines": "1",
        "cap_mode": "'full'",
        "refund_mode": "'normal'",
        "extra": "'none'",
        "ship_mode": "'normal'",
        "sku_mode": "'normal'",
        "price_mode": "'catalog'",
        "total_mode": "'exact'",
    }
    knob_sql = ", ".join(f"coalesce(s.{k}, {default}) AS {k}" for k, default in knobs.items())
    ctx.run(
        f"""
        CREATE TABLE order_plan AS
        WITH base AS (
            SELECT t.i, s.name AS scenario, s.slot, coalesce(s.is_decoy, FALSE) AS is_decoy,
                   coalesce(s.currency, {currency_pick_sql("hx(t.i, 'cur')")}) AS currency, {knob_sql}
            FROM range({cfg.orders}) AS t(i) LEFT JOIN order_scenario AS s ON s.i = t.i
        ),
        shaped AS (
            SELECT b.* EXCLUDE (kind),
                CASE WHEN b.kind = 'auto' THEN {_clean_kind_sql()} ELSE b.kind END AS kind,
                b.timing <> 'auto' AS compressed,
                greatest(b.min_lines, CASE WHEN hx(i, 'nl') % 100 < 50 THEN 1 WHEN hx(i, 'nl') % 100 < 78 THEN 2
                                          WHEN hx(i, 'nl') % 100 < 92 THEN 3 ELSE 4 END) AS n_lines,
                CASE b.timing
                    WHEN 'auto' THEN {ctx.ts("start")} + secs(hx(i, 'created') % {span_auto})
                        + CASE WHEN hx(i, 'cmicro') % 100 < 15 THEN to_microseconds((hx(i, 'cus') % 1000000)::BIGINT)
                               ELSE INTERVAL 0 SECOND END
                    WHEN 'complete' THEN {ctx.ts("as_of")} - INTERVAL 80 HOUR - secs(hx(i, 'created') % {span_long + 1})
                    WHEN 'recent' THEN {ctx.ts("as_of")} - INTERVAL 40 HOUR + secs(hx(i, 'created') % (30 * 3600))
                    WHEN 'old' THEN {ctx.ts("as_of")} - INTERVAL 100 HOUR - secs(hx(i, 'created') % {span_long + 1})
                    WHEN 'exact72' THEN {ctx.ts("as_of")} - INTERVAL 74 HOUR
                    WHEN 'at_change' THEN {ctx.ts("price_change_at")}
                    WHEN 'before_change' THEN {ctx.ts("price_change_at")} - INTERVAL 1 MICROSECOND
                END AS created_at
            FROM base AS b
        )
        SELECT *,
            'ORD-' || lpad(i::VARCHAR, 8, '0') AS order_id,
            'CUS-' || lpad((hx(i, 'cust') % {cfg.n_customers})::VARCHAR, 8, '0') AS customer_id,
            list_extract({methods}, (hx(i, 'method') % {len(_METHODS)})::INTEGER + 1) AS method,
            -- seconds between steps
            CASE WHEN timing = 'exact72' THEN 7200 WHEN compressed THEN ri(i, 'dcap', 3600, 10800)
                 ELSE ri(i, 'dcap', 120, 10800) END AS d_cap,
            CASE WHEN timing = 'exact72' OR hx(i, 'capmicro') % 100 >= 20 THEN 0
                 ELSE (hx(i, 'capus') % 1000000)::BIGINT END AS cap_micros,
            ri(i, 'dpaidv', 5, 60) AS d_paid_v,
            CASE WHEN compressed THEN ri(i, 'dship1', 7200, 72000) ELSE ri(i, 'dship1', 7200, 144000) END AS d_ship1,
            CASE WHEN compressed THEN ri(i, 'dship2', 3600, 36000) ELSE ri(i, 'dship2', 3600, 72000) END AS d_ship2,
            ri(i, 'dshipv1', 61, 120) AS d_ship1_v,
            ri(i, 'dshipv2', 61, 120) AS d_ship2_v,
            CASE WHEN compressed THEN ri(i, 'dret', 18000, 108000) ELSE ri(i, 'dret', 86400, 345600) END AS d_ret,
            ri(i, 'drefund', 3600, 10800) AS d_refund,
            ri(i, 'drefundv', 5, 60) AS d_refund_v,
            ri(i, 'dcu', 3600, 72000) AS d_cancel_unpaid,
            CASE WHEN compressed THEN ri(i, 'dcp', 10800, 36000) ELSE ri(i, 'dcp', 3600, 36000) END AS d_cancel_paid,
            CASE WHEN hx(i, 'upd') % 100 < 8 THEN ri(i, 'dupd', 10, 50) END AS d_update,
            n_lines >= 2 AND (kind = 'hold_partial' OR hx(i, 'split') % 2 = 0) AS split,
            hx(i, 'retall') % 10 < 7 AS returns_all,
            hx(i, 'failed') % 100 < 5 AS failed_attempt,
            (hx(i, 'refundf') % 41 + 10) / 100.0 AS refund_fraction
        FROM shaped
        """
    )
    ctx.run("ALTER TABLE order_plan ADD COLUMN has_auth BOOLEAN")
    ctx.run("UPDATE order_plan SET has_auth = method NOT IN ('bank_transfer', 'gift_card')")


def create_lines(ctx: Ctx) -> None:
    """`order_lines`: one row per line, priced from the catalog at created_at (ASOF join)."""
    cfg = ctx.cfg
    n_changed = (cfg.n_skus + 2) // 4
    warehouses = {
        "USD": "CASE WHEN hx(k, 'wh') % 2 = 0 THEN 'WH-US-EAST' ELSE 'WH-US-WEST' END",
        "JPY": "'WH-JP-TYO'",
    }
    ctx.run(
        f"""
        CREATE TABLE order_lines AS
        WITH l AS (
            SELECT i, unnest(range(1, n_lines + 1)) AS line_no FROM order_plan
        ),
        picked AS (
            SELECT l.i, l.line_no, l.i * 8 + l.line_no AS k, p.currency, p.created_at, p.n_lines,
                   p.sku_mode, p.price_mode, p.slot,
                   l.line_no = p.n_lines AND p.price_mode <> 'catalog' AS price_target,
                   CASE
                       WHEN l.line_no = 1 AND p.sku_mode = 'unknown' THEN 'SKU-UNK-' || lpad(p.slot::VARCHAR, 8, '0')
                       WHEN l.line_no = 1 AND p.sku_mode = 'oversold' THEN 'SKU-OS-' || lpad(p.slot::VARCHAR, 8, '0')
                       WHEN l.line_no = p.n_lines AND p.price_mode <> 'catalog'
                           THEN 'SKU-' || lpad((1 + 4 * (hx(l.i * 8 + l.line_no, 'chg') % {n_changed}))::VARCHAR, 5, '0')
                       ELSE 'SKU-' || lpad(floor({cfg.n_skus} * pow(ru(l.i * 8 + l.line_no, 'sku'), 1.6))::BIGINT::VARCHAR,
                                           5, '0')
                   END AS sku,
                   CASE
                       WHEN l.line_no = 1 AND p.sku_mode = 'oversold' THEN 2
                       WHEN hx(l.i * 8 + l.line_no, 'qty') % 100 < 70 THEN 1
                       WHEN hx(l.i * 8 + l.line_no, 'qty') % 100 < 90 THEN 2
                       WHEN hx(l.i * 8 + l.line_no, 'qty') % 100 < 97 THEN 3
                       ELSE 4 + (hx(l.i * 8 + l.line_no, 'qtyx') % 3)::INTEGER
                   END AS quantity
            FROM l JOIN order_plan AS p USING (i)
        ),
        warehoused AS (
            SELECT *,
                CASE WHEN hx(k, 'anywh') % 10 = 0 THEN
                         list_extract(['WH-EU-AMS', 'WH-JP-TYO', 'WH-US-EAST', 'WH-US-WEST'], (hx(k, 'wh') % 4)::INTEGER + 1)
                     WHEN currency = 'USD' THEN {warehouses["USD"]}
                     WHEN currency = 'JPY' THEN {warehouses["JPY"]}
                     ELSE 'WH-EU-AMS' END AS warehouse_id
            FROM picked
        ),
        priced AS (
            SELECT w.*, c.exp, c.rate, pl.unit_price AS catalog_price, init.unit_price AS initial_price
            FROM warehoused AS w
            JOIN currencies AS c USING (currency)
            ASOF LEFT JOIN price_list AS pl
                ON pl.sku = w.sku AND pl.currency = w.currency AND w.created_at >= pl.valid_from
            LEFT JOIN price_list AS init
                ON init.sku = w.sku AND init.currency = w.currency AND init.tag = 'initial'
        ),
        final AS (
            SELECT *,
                CASE
                    WHEN price_target AND price_mode = 'off'
                        THEN catalog_price + greatest(minor_unit(exp), round_to(catalog_price * 0.1, exp))
                    WHEN price_target AND price_mode = 'old_at_change' THEN initial_price
                    WHEN catalog_price IS NOT NULL THEN catalog_price
                    ELSE round_to((499 + hx(k, 'fallback') % 20000) / 100.0 * rate, exp)
                END AS unit_price
            FROM priced
        )
        SELECT i, line_no, 'L' || line_no AS line_id, sku, quantity, warehouse_id, currency, exp, unit_price,
            CASE WHEN hx(k, 'ldisc') % 100 < 12 THEN round_to(quantity * unit_price * 0.1, exp)
                 ELSE 0::DECIMAL(18, 4) END AS line_discount,
            k
        FROM final
        ORDER BY i, line_no
        """
    )


def create_amounts(ctx: Ctx) -> None:
    """`order_amounts`: computed total, the total the storefront writes, capture and refund amounts."""
    ctx.run(
        """
        CREATE TABLE order_amounts AS
        WITH sums AS (
            SELECT i, sum(quantity * unit_price - line_discount)::DECIMAL(18, 4) AS subtotal
            FROM order_lines GROUP BY i
        ),
        parts AS (
            SELECT p.i, c.exp, c.rate, s.subtotal,
                CASE WHEN hx(p.i, 'odisc') % 100 < 10 THEN round_to(s.subtotal * 0.05, c.exp)
                     ELSE 0::DECIMAL(18, 4) END AS order_discount,
                CASE WHEN s.subtotal >= c.free_from THEN 0::DECIMAL(18, 4) ELSE c.ship_fee END AS shipping,
                c.tax_rate
            FROM order_plan AS p JOIN currencies AS c USING (currency) JOIN sums AS s USING (i)
        ),
        computed AS (
            SELECT *, round_to((subtotal - order_discount) * tax_rate, exp) AS tax FROM parts
        ),
        totals AS (
            SELECT c.*, (c.subtotal - c.order_discount + c.shipping + c.tax)::DECIMAL(18, 4) AS computed_total,
                   p.total_mode, p.kind, p.refund_mode, p.refund_fraction
            FROM computed AS c JOIN order_plan AS p USING (i)
        ),
        charged AS (
            SELECT *,
                (CASE total_mode
                    WHEN 'delta' THEN computed_total + greatest(minor_unit(exp), round_to(computed_total * 0.05, exp))
                    WHEN 'half' THEN computed_total + minor_unit(exp) / 2
                    WHEN 'sub_half' THEN computed_total + minor_unit(exp) * 0.4
                    ELSE computed_total END)::DECIMAL(18, 4) AS total,
                CASE WHEN total_mode IN ('half', 'sub_half') THEN exp + 1 ELSE exp END AS total_exp
            FROM totals
        )
        SELECT i, exp, rate, subtotal, order_discount, shipping, tax, computed_total, total, total_exp,
            CASE WHEN total_mode = 'sub_half' THEN computed_total ELSE total END AS capture_base,
            (CASE kind
                WHEN 'part_refund' THEN greatest(minor_unit(exp), round_to(total * refund_fraction, exp))
                WHEN 'full_refund' THEN total
                WHEN 'cancel_paid' THEN total
                ELSE 0 END)::DECIMAL(18, 4) AS refund_amount
        FROM charged
        """
    )
    ctx.run(
        """
        ALTER TABLE order_amounts ADD COLUMN psp_extra DECIMAL(18, 4);
        UPDATE order_amounts SET psp_extra = greatest(minor_unit(exp), round_to(refund_amount * 0.5, exp));
        """
    )


def create_timeline(ctx: Ctx) -> None:
    """`order_facts`: plan + amounts + step instants + which steps happened by the as-of instant."""
    as_of = ctx.ts("as_of")
    ctx.run(
        f"""
        CREATE TABLE order_facts AS
        WITH t AS (
            SELECT p.*, a.* EXCLUDE (i),
                CASE WHEN p.d_update IS NOT NULL THEN p.created_at + secs(p.d_update) END AS t_update,
                p.created_at + secs(ri(p.i, 'dauth', 1, 30)) AS t_auth,
                p.created_at + secs(p.d_cap) + to_microseconds(p.cap_micros) AS t_cap
            FROM order_plan AS p JOIN order_amounts AS a USING (i)
        ),
        t2 AS (
            SELECT *, t_cap + secs(d_paid_v) AS t_paid_v, t_cap + secs(d_ship1) AS t_ship1,
                   created_at + secs(d_cancel_unpaid) AS t_cancel_unpaid,
                   t_cap + secs(d_cancel_paid) AS t_cancel_paid
            FROM t
        ),
        t3 AS (
            SELECT *, t_ship1 + secs(d_ship1_v) AS t_ship1_v,
                   CASE WHEN split THEN t_ship1 + secs(d_ship2) END AS t_ship2
            FROM t2
        ),
        t4 AS (
            SELECT *, t_ship2 + secs(d_ship2_v) AS t_ship2_v,
                   CASE WHEN split THEN t_ship2 + secs(d_ship2_v) ELSE t_ship1_v END AS t_fulfilled_v
            FROM t3
        ),
        t5 AS (
            SELECT *, t_fulfilled_v + secs(d_ret) AS t_ret,
                   t_fulfilled_v + secs(d_ret + d_refund) AS t_refund,
                   t_fulfilled_v + secs(d_ret + d_refund + d_refund_v) AS t_refund_v,
                   CASE kind WHEN 'cancel_unpaid' THEN t_cancel_unpaid WHEN 'cancel_paid' THEN t_cancel_paid END
                       AS t_cancel
            FROM t4
        ),
        inc AS (
            SELECT *,
                kind NOT IN ('pending', 'cancel_unpaid') AND t_paid_v <= {as_of} AS inc_paid,
                kind IN ('hold_partial', 'fulfil', 'part_refund', 'full_refund')
                    AND t_paid_v <= {as_of} AND t_ship1_v <= {as_of} AS inc_ship1,
                kind IN ('fulfil', 'part_refund', 'full_refund') AND split AND t_ship2_v <= {as_of} AS inc_ship2,
                kind IN ('part_refund', 'full_refund') AND t_refund_v <= {as_of} AS inc_refund,
                (kind = 'cancel_unpaid' AND t_cancel <= {as_of})
                    OR (kind = 'cancel_paid' AND t_cancel <= {as_of}) AS inc_cancel,
                t_update IS NOT NULL AND t_update <= {as_of} AS inc_update
            FROM t5
        )
        SELECT * FROM inc ORDER BY i
        """
    )


def create_versions(ctx: Ctx) -> None:
    """`order_versions(i, seq, status, updated_at, refunded)`: every version written by the storefront."""
    ctx.run(
        """
        CREATE TABLE order_versions AS
        SELECT i, 1 AS seq, 'pending' AS status, created_at AS updated_at, 0::DECIMAL(18, 4) AS refunded
        FROM order_facts
        UNION ALL
        SELECT i, 2, 'pending', t_update, 0 FROM order_facts WHERE inc_update
        UNION ALL
        SELECT i, 3, 'paid', t_paid_v, 0 FROM order_facts WHERE inc_paid
        UNION ALL
        SELECT i, 4, CASE WHEN split THEN 'partially_fulfilled' ELSE 'fulfilled' END, t_ship1_v, 0
        FROM order_facts WHERE inc_ship1
        UNION ALL
        SELECT i, 5, 'fulfilled', t_ship2_v, 0 FROM order_facts WHERE inc_ship2
        UNION ALL
        SELECT i, 6, CASE kind WHEN 'part_refund' THEN 'partially_refunded' ELSE 'refunded' END, t_refund_v,
               refund_amount
        FROM order_facts WHERE inc_refund
        UNION ALL
        SELECT i, 7, 'cancelled', t_cancel,
               CASE WHEN kind = 'cancel_paid' AND refund_mode <> 'none' THEN refund_amount ELSE 0 END
        FROM order_facts WHERE inc_cancel
        """
    )
    ctx.run(
        """
        CREATE TABLE order_final AS
        SELECT i, arg_max(status, updated_at) AS status, count(*) AS versions FROM order_versions GROUP BY i
        """
    )
