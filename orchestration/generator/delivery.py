"""Render every logical row to its file line and decide which file delivers it (and how often).

Each source gets a table `out_<source>(file_name, sort_ts, sort_key, text, bad_reason)`; the writer
numbers lines by (sort_ts, sort_key) within a file. Delivery noise, all harmless to the truth:
- orders: some versions re-delivered identically a day later; some last versions re-delivered a day
  later with a corrected e-mail (same version: the later delivery wins); some first versions arrive
  a day after the order's latest version (an old version never overwrites a newer one);
- payments: some captures delivered `pending` first and `succeeded` in the next day's file (same
  payment_id); some events re-delivered identically a day later; a few order_ids with blanks around;
- inventory_movements: some movements re-delivered identically a day later.
"""

from __future__ import annotations

from orchestration.generator.sqlkit import Ctx

CSV_HEADERS: dict[str, str] = {
    "payments": "payment_id,order_id,event_type,amount,currency,status,processed_at,psp_reference,method",
    "inventory_movements": "movement_id,sku,warehouse_id,movement_type,quantity,order_id,occurred_at",
    "inventory_levels": "sku,warehouse_id,on_hand,snapshot_date",
    "products": "sku,title,unit_price,currency,valid_from",
}
SOURCES = ("orders", "payments", "inventory_movements", "inventory_levels", "products")
EXTENSIONS = {"orders": "jsonl", **{s: "csv" for s in CSV_HEADERS}}


def _optional(name: str, value_sql: str, key: str) -> str:
    """A JSON member that is sometimes absent, null or "" (only ever for an empty value)."""
    return f"""CASE WHEN {value_sql} IS NOT NULL THEN ',"{name}":' || {value_sql}
        ELSE list_extract(['', ',"{name}":null', ',"{name}":""'], (hx({key}, '{name}') % 3)::INTEGER + 1) END"""


def _optional_money(name: str, amount: str, exp: str, key: str) -> str:
    """A money member: present when non-zero; when zero absent, null, "" or "0.00"."""
    return f"""CASE WHEN {amount} <> 0 THEN ',"{name}":"' || fmt_money({amount}, {exp}) || '"'
        ELSE list_extract(['', ',"{name}":null', ',"{name}":""', ',"{name}":"' || fmt_money(0, {exp}) || '"'],
                          (hx({key}, '{name}') % 4)::INTEGER + 1) END"""


def _file_name(source: str, day: str, part: str = "NULL") -> str:
    return f"'{source}_' || day_text({day}) || coalesce('_' || {part}, '') || '.{EXTENSIONS[source]}'"


def channel_sql(i: str) -> str:
    """The sales channel of order `i` (null for about 8% of orders: the field is then absent, null or "")."""
    return f"""CASE WHEN hx({i}, 'ch') % 100 < 50 THEN 'web' WHEN hx({i}, 'ch') % 100 < 75 THEN 'app'
        WHEN hx({i}, 'ch') % 100 < 87 THEN 'marketplace' WHEN hx({i}, 'ch') % 100 < 92 THEN 'pos' END"""


def _order_json(email: str) -> str:
    key = "v.i * 8 + v.seq"
    channel = f"""'"' || ({channel_sql("f.i")}) || '"'"""
    store = """CASE WHEN hx(f.i, 'store') % 10 < 3 THEN ',"store_id":"' ||
        list_extract(['EU-1', 'US-2', 'JP-1'], (hx(f.i, 'storeid') % 3)::INTEGER + 1) || '"' ELSE '' END"""
    return f"""'{{"order_id":"' || f.order_id || '","customer_id":"' || f.customer_id || '"'
        || {_optional("customer_email", email, key)}
        || ',"status":"' || v.status || '","currency":"' || f.currency || '"'
        || ',"created_at":"' || fmt_ts(f.created_at, {key} * 2) || '"'
        || ',"updated_at":"' || fmt_ts(v.updated_at, {key} * 2 + 1) || '"'
        || {_optional("channel", channel, "f.i")}
        || ',"lines":' || lj.lines_json
        || {_optional_money("discount_amount", "f.order_discount", "f.exp", key)}
        || {_optional_money("shipping_amount", "f.shipping", "f.exp", key)}
        || {_optional_money("tax_amount", "f.tax", "f.exp", key)}
        || ',"total_amount":"' || fmt_money(f.total, f.total_exp) || '"'
        || {_optional_money("refunded_amount", "v.refunded", "f.exp", key)}
        || {store} || '}}'"""


def render_orders(ctx: Ctx) -> None:
    last = ctx.cfg.days - 1
    split = ctx.cfg.split_day
    ctx.run(
        """
        CREATE TABLE lines_json AS
        SELECT i, '[' || string_agg('{"line_id":"' || line_id || '","sku":"' || sku || '","quantity":' || quantity
                || ',"unit_price":"' || fmt_money(unit_price, exp) || '"'
                || CASE WHEN line_discount <> 0 THEN ',"discount_amount":"' || fmt_money(line_discount, exp) || '"'
                        ELSE list_extract(['', ',"discount_amount":null', ',"discount_amount":""',
                                           ',"discount_amount":"' || fmt_money(0, exp) || '"', ''],
                                          (hx(k, 'ldisc0') % 5)::INTEGER + 1) END
                || '}', ',' ORDER BY line_no) || ']' AS lines_json
        FROM order_lines GROUP BY i
        """
    )
    email = """CASE WHEN hx(v.i * 8 + v.seq, 'mail') % 100 < 90
        THEN '"' || lower(f.customer_id) || '@example.' || list_extract(['com', 'de', 'co.uk', 'jp'],
             (hx(f.customer_id, 'tld') % 4)::INTEGER + 1) || '"' END"""
    corrected = """'"' || lower(f.customer_id) || '+verified@example.com"'"""
    ctx.run(
        f"""
        CREATE TABLE out_orders AS
        WITH v AS (
            SELECT v.*, max(v.updated_at) OVER (PARTITION BY v.i) AS last_updated,
                   count(*) OVER (PARTITION BY v.i) AS n_versions
            FROM order_versions AS v
        ),
        rows AS (
            SELECT v.i, v.seq, v.updated_at,
                CASE WHEN v.seq = 1 AND v.n_versions > 1 AND hx(v.i, 'late') % 100 < 3
                     THEN least({last}, day_index(v.last_updated) + 1) ELSE day_index(v.updated_at) END AS day,
                'a' AS variant, {_order_json(email)} AS text
            FROM v JOIN order_facts AS f USING (i) JOIN lines_json AS lj USING (i)
            UNION ALL
            SELECT v.i, v.seq, v.updated_at, day_index(v.updated_at) + 1, 'b', {_order_json(email)}
            FROM v JOIN order_facts AS f USING (i) JOIN lines_json AS lj USING (i)
            WHERE hx(v.i * 8 + v.seq, 'redeliver') % 100 < 2 AND day_index(v.updated_at) < {last}
            UNION ALL
            SELECT v.i, v.seq, v.updated_at, day_index(v.updated_at) + 1, 'c', {_order_json(corrected)}
            FROM v JOIN order_facts AS f USING (i) JOIN lines_json AS lj USING (i)
            WHERE v.updated_at = v.last_updated AND hx(v.i, 'correct') % 1000 < 5 AND day_index(v.updated_at) < {last}
        )
        SELECT {_file_name("orders", "day", f"CASE WHEN day = {split} THEN (1 + hx(i, 'part') % 2)::VARCHAR END")}
                   AS file_name,
               updated_at AS sort_ts, lpad(i::VARCHAR, 9, '0') || '-' || seq || variant AS sort_key, text,
               NULL::VARCHAR AS bad_reason
        FROM rows
        """
    )


def render_payments(ctx: Ctx) -> None:
    last = ctx.cfg.days - 1
    order_id = """CASE WHEN p.order_id IS NOT NULL AND hx(p.payment_id, 'blank') % 1000 < 3
        THEN list_extract([' ' || p.order_id, p.order_id || ' ', ' ' || p.order_id || '  '],
                          (hx(p.payment_id, 'blankk') % 3)::INTEGER + 1)
        ELSE p.order_id END"""

    def line(status: str, processed_at: str, variant: str) -> str:
        return f"""p.payment_id || ',' || csvq({order_id}) || ',' || p.event_type || ','
            || fmt_money(p.amount, p.exp) || ',' || p.currency || ',' || {status} || ','
            || fmt_ts({processed_at}, p.payment_id || '{variant}') || ',' || coalesce(p.psp_reference, '') || ','
            || csvq(p.method)"""

    pend_day = "day_index(p.processed_at - INTERVAL 10 SECOND)"
    pending = f"p.pending_first AND {pend_day} < {last}"
    ctx.run(
        f"""
        CREATE TABLE out_payments AS
        WITH rows AS (
            SELECT p.payment_id, p.processed_at AS ts, 'a' AS variant,
                   CASE WHEN {pending} THEN {pend_day} + 1 ELSE day_index(p.processed_at) END AS day,
                   {line("p.status", "p.processed_at", "a")} AS text
            FROM payment_events AS p
            UNION ALL
            SELECT p.payment_id, p.processed_at - INTERVAL 10 SECOND, 'p', {pend_day},
                   {line("'pending'", "p.processed_at - INTERVAL 10 SECOND", "p")}
            FROM payment_events AS p WHERE {pending}
        )
        SELECT {_file_name("payments", "day")} AS file_name, ts AS sort_ts, payment_id || '#' || variant AS sort_key,
               text, NULL::VARCHAR AS bad_reason
        FROM rows
        UNION ALL
        SELECT {_file_name("payments", "day + 1")}, ts, payment_id || '#r', text, NULL
        FROM rows WHERE variant = 'a' AND day < {last} AND hx(payment_id, 'redeliver') % 100 < 2
        """
    )


def render_movements(ctx: Ctx) -> None:
    last = ctx.cfg.days - 1
    order_id = """CASE WHEN m.order_id IS NOT NULL AND hx(m.movement_id, 'blank') % 1000 < 3
        THEN ' ' || m.order_id ELSE m.order_id END"""
    ctx.run(
        f"""
        CREATE TABLE out_inventory_movements AS
        WITH rows AS (
            SELECT m.movement_id, m.occurred_at AS ts, day_index(m.occurred_at) AS day,
                   m.movement_id || ',' || m.sku || ',' || m.warehouse_id || ',' || m.movement_type || ','
                   || m.quantity || ',' || csvq({order_id}) || ',' || fmt_ts(m.occurred_at, m.movement_id) AS text
            FROM movements AS m
        )
        SELECT {_file_name("inventory_movements", "day")} AS file_name, ts AS sort_ts, movement_id AS sort_key, text,
               NULL::VARCHAR AS bad_reason
        FROM rows
        UNION ALL
        SELECT {_file_name("inventory_movements", "day + 1")}, ts, movement_id || '#r', text, NULL
        FROM rows WHERE day < {last} AND hx(movement_id, 'redeliver') % 100 < 1
        """
    )


def render_levels(ctx: Ctx) -> None:
    ctx.run(
        f"""
        CREATE TABLE out_inventory_levels AS
        SELECT {_file_name("inventory_levels", "day")} AS file_name,
               {ctx.ts("start")} + to_days(day::INTEGER) AS sort_ts, sku || '|' || warehouse_id AS sort_key,
               sku || ',' || warehouse_id || ',' || on_hand || ',' || day_text(day) AS text,
               NULL::VARCHAR AS bad_reason
        FROM stock_levels
        """
    )


def render_products(ctx: Ctx) -> None:
    change_day = ctx.cfg.price_change_file_day
    ctx.run(
        f"""
        CREATE TABLE out_products AS
        SELECT CASE WHEN tag = 'initial' THEN {_file_name("products", "0")}
                    ELSE {_file_name("products", str(change_day), "'2'")} END AS file_name,
               valid_from AS sort_ts, sku || '|' || currency AS sort_key,
               sku || ',' || csvq(title) || ',' || fmt_money(unit_price, exp) || ',' || currency || ','
               || fmt_ts(valid_from, sku || currency) AS text,
               NULL::VARCHAR AS bad_reason
        FROM price_list
        """
    )


def render_all(ctx: Ctx) -> None:
    render_orders(ctx)
    render_payments(ctx)
    render_movements(ctx)
    render_levels(ctx)
    render_products(ctx)
