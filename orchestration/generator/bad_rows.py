"""Bad input: extra rows with exactly one contract violation each, and whole files that cannot be read.

Bad rows use fresh ids (`ORD-BAD-`, `PAY-BAD-`, `MV-BAD-`, `SKU-BAD-`) that nothing else references,
so they change no exception truth; their timestamps (when valid) lie inside the period.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from orchestration.generator.sqlkit import Ctx
from orchestration.ingest.sources import REASON_CODES

__all__ = ["REASON_CODES", "REJECT_CODES"]

REJECT_CODES: tuple[str, ...] = ("wrong_header", "not_utf8", "not_json_lines", "empty_file")

_LINE = '{"line_id":"L1","sku":"SKU-00001","quantity":2,"unit_price":"10.00"}'
_ORDER_PARTS = {
    "head": """'{"order_id":"' || id || '","customer_id":"CUS-BAD","status":"paid","currency":"USD"'""",
    "times": """',"created_at":"' || ts_ok || '","updated_at":"' || ts_ok || '"'""",
    "lines": f"""',"lines":[{_LINE}]'""",
    "total": """',"total_amount":"20.00"}'""",
}
_ORDER_TEXT: dict[str, str] = {
    "unparseable": """'{"order_id":"' || id || '","customer_id":"CUS-BAD","status":"paid","lines":[{"line_id":'""",
    "missing_required_field": """'{"order_id":"' || id || '","status":"paid","currency":"USD"'"""
    + f" || {_ORDER_PARTS['times']} || {_ORDER_PARTS['lines']} || {_ORDER_PARTS['total']}",
    "unknown_enum_value": """'{"order_id":"' || id || '","customer_id":"CUS-BAD","status":"shipped","currency":"USD"'"""
    + f" || {_ORDER_PARTS['times']} || {_ORDER_PARTS['lines']} || {_ORDER_PARTS['total']}",
    "invalid_money": f"{_ORDER_PARTS['head']} || {_ORDER_PARTS['times']} || {_ORDER_PARTS['lines']}"
    """ || ',"total_amount":20.00}'""",
    "negative_amount": f"{_ORDER_PARTS['head']} || {_ORDER_PARTS['times']} || {_ORDER_PARTS['lines']}"
    """ || ',"discount_amount":"-5.00","total_amount":"25.00"}'""",
    "invalid_quantity": f"{_ORDER_PARTS['head']} || {_ORDER_PARTS['times']}"
    """ || ',"lines":[{"line_id":"L1","sku":"SKU-00001","quantity":0,"unit_price":"10.00"}],"total_amount":"0.00"}'""",
    "empty_lines": f"{_ORDER_PARTS['head']} || {_ORDER_PARTS['times']}"
    """ || ',"lines":[],"total_amount":"0.00"}'""",
    "duplicate_line_id": f"{_ORDER_PARTS['head']} || {_ORDER_PARTS['times']}"
    f""" || ',"lines":[{_LINE},{_LINE}],"total_amount":"40.00"}}'""",
    "invalid_timestamp": f"""{_ORDER_PARTS["head"]} || ',"created_at":"' || ts_ok || '","updated_at":"' || ts_naive
        || '"' || {_ORDER_PARTS["lines"]} || {_ORDER_PARTS["total"]}""",
    "invalid_currency": """'{"order_id":"' || id || '","customer_id":"CUS-BAD","status":"paid","currency":"usd"'"""
    + f" || {_ORDER_PARTS['times']} || {_ORDER_PARTS['lines']} || {_ORDER_PARTS['total']}",
}


def _csv(*fields: str) -> str:
    return " || ',' || ".join(fields)


_PAYMENT_TEXT: dict[str, str] = {
    "unparseable": _csv(
        "id",
        "''",
        "'capture'",
        "'10.00'",
        "'USD'",
        "'succeeded'",
        "ts_ok",
        "'pi_bad'",
        "'card'",
        "'unexpected'",
    ),
    "missing_required_field": _csv(
        "id", "''", "'capture'", "'10.00'", "'USD'", "''", "ts_ok", "'pi_bad'", "'card'"
    ),
    "unknown_enum_value": _csv(
        "id", "''", "'payout'", "'10.00'", "'USD'", "'succeeded'", "ts_ok", "'pi_bad'", "'card'"
    ),
    "invalid_money": _csv(
        "id", "''", "'capture'", "'ten'", "'USD'", "'succeeded'", "ts_ok", "'pi_bad'", "'card'"
    ),
    "negative_amount": _csv(
        "id", "''", "'refund'", "'-10.00'", "'USD'", "'succeeded'", "ts_ok", "'pi_bad'", "'card'"
    ),
    "invalid_timestamp": _csv(
        "id", "''", "'capture'", "'10.00'", "'USD'", "'succeeded'", "ts_naive", "'pi_bad'", "'card'"
    ),
    "invalid_currency": _csv(
        "id", "''", "'capture'", "'10.00'", "'usd'", "'succeeded'", "ts_ok", "'pi_bad'", "'card'"
    ),
}
_MOVEMENT_TEXT: dict[str, str] = {
    "unparseable": _csv("id", "'SKU-00001'", "'WH-EU-AMS'", "'receipt'", "'5'", "''"),
    "missing_required_field": _csv("id", "''", "'WH-EU-AMS'", "'receipt'", "'5'", "''", "ts_ok"),
    "unknown_enum_value": _csv("id", "'SKU-00001'", "'WH-EU-AMS'", "'transfer'", "'5'", "''", "ts_ok"),
    "invalid_quantity": """CASE WHEN k % 2 = 0 THEN """
    + _csv("id", "'SKU-00001'", "'WH-EU-AMS'", "'receipt'", "'0'", "''", "ts_ok")
    + " ELSE "
    + _csv("id", "'SKU-00001'", "'WH-EU-AMS'", "'adjustment'", "'1.5'", "''", "ts_ok")
    + " END",
    "invalid_timestamp": _csv("id", "'SKU-00001'", "'WH-EU-AMS'", "'receipt'", "'5'", "''", "'yesterday'"),
}
_PRODUCT_TEXT: dict[str, str] = {
    "invalid_money": _csv("id", "'Broken row'", "'N/A'", "'USD'", "ts_ok"),
    "negative_amount": _csv("id", "'Broken row'", "'-9.99'", "'USD'", "ts_ok"),
    "invalid_currency": _csv("id", "'Broken row'", "'9.99'", "'usd'", "ts_ok"),
    "invalid_timestamp": _csv("id", "'Broken row'", "'9.99'", "'USD'", "'2026-13-45T00:00:00Z'"),
}
_BAD_ROWS: dict[str, tuple[str, dict[str, str]]] = {
    "orders": ("ORD-BAD-", _ORDER_TEXT),
    "payments": ("PAY-BAD-", _PAYMENT_TEXT),
    "inventory_movements": ("MV-BAD-", _MOVEMENT_TEXT),
    "products": ("SKU-BAD-", _PRODUCT_TEXT),
}


def add_bad_rows(ctx: Ctx) -> int:
    """Insert bad rows into `out_<source>`; returns how many. Every reason code appears at least once."""
    rate = ctx.cfg.bad_rows_rate
    if rate <= 0:
        return 0
    span = int((ctx.cfg.as_of - ctx.cfg.start).total_seconds()) - 600
    total = 0
    for source, (prefix, texts) in _BAD_ROWS.items():
        table = f"out_{source}"
        clean_rows = ctx.integer(f"SELECT count(*) FROM {table}")
        count = max(len(texts), round(rate * clean_rows))
        reasons = list(texts)
        reason_case = " ".join(f"WHEN {i} THEN '{r}'" for i, r in enumerate(reasons))
        text_case = " ".join(f"WHEN '{r}' THEN {t}" for r, t in texts.items())
        ctx.run(
            f"""
            INSERT INTO {table}
            WITH files AS (
                SELECT file_name, row_number() OVER (ORDER BY file_name) - 1 AS n
                FROM (SELECT DISTINCT file_name FROM {table})
            ),
            b AS (
                SELECT k, '{prefix}' || lpad(k::VARCHAR, 8, '0') AS id,
                       CASE (k % {len(reasons)})::INTEGER {reason_case} END AS reason,
                       {ctx.ts("start")} + secs(hx(k, '{source}bad') % {span}) AS ts,
                       (hx(k, '{source}file') % (SELECT count(*) FROM files))::BIGINT AS n
                FROM range({count}) AS t(k)
            ),
            texts AS (
                SELECT *, strftime(ts, '%Y-%m-%dT%H:%M:%SZ') AS ts_ok, strftime(ts, '%Y-%m-%d %H:%M:%S') AS ts_naive
                FROM b
            )
            SELECT f.file_name, t.ts, 'zz-' || t.id, CASE t.reason {text_case} END, t.reason
            FROM texts AS t JOIN files AS f USING (n)
            """
        )
        total += count
    return total


def write_rejected_files(ctx: Ctx) -> list[tuple[str, Path, str]]:
    """One unreadable file per reject code; returns (source, path, reason_code)."""
    cfg = ctx.cfg
    if cfg.bad_rows_rate <= 0:
        return []
    stamp = (cfg.start + timedelta(hours=9)).strftime("%Y-%m-%dT%H:%M:%SZ")
    first, middle, last = (
        cfg.day(0).isoformat(),
        cfg.day(cfg.days // 2).isoformat(),
        cfg.day(cfg.days - 1).isoformat(),
    )
    payments = cfg.out_dir / "payments" / f"payments_{first}_broken.csv"
    payments.write_bytes(
        b"payment_id,order_ref,event_type,amount,currency,status,processed_at,psp_reference,method\n"
        + f"PAY-REJ-000001,ORD-REJ-000001,capture,10.00,USD,succeeded,{stamp},pi_rej,card\n".encode()
    )
    movements = cfg.out_dir / "inventory_movements" / f"inventory_movements_{last}_latin1.csv"
    movements.write_bytes(
        b"movement_id,sku,warehouse_id,movement_type,quantity,order_id,occurred_at\n"
        + f"MV-REJ-000001,SKU-CAF\u00c9,WH-EU-AMS,receipt,5,,{stamp}\n".encode("latin-1")
    )
    orders = cfg.out_dir / "orders" / f"orders_{middle}_broken.jsonl"
    document = [
        {
            "order_id": "ORD-REJ-000001",
            "customer_id": "CUS-REJ",
            "status": "paid",
            "currency": "USD",
            "created_at": stamp,
            "updated_at": stamp,
            "total_amount": "10.00",
            "lines": [{"line_id": "L1", "sku": "SKU-00001", "quantity": 1, "unit_price": "10.00"}],
        }
    ]
    orders.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    products = cfg.out_dir / "products" / f"products_{last}_empty.csv"
    products.write_bytes(b"")
    return [
        ("payments", payments, "wrong_header"),
        ("inventory_movements", movements, "not_utf8"),
        ("orders", orders, "not_json_lines"),
        ("products", products, "empty_file"),
    ]
