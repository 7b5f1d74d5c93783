"""PSP payment events: authorizations, captures, refunds, voids, chargebacks, plus orphan events.

`payment_events` holds each event in its final state; `pending_first` marks captures that the PSP
first delivers as `pending` (a day earlier) before the final `succeeded` row (see delivery.py).
"""

from __future__ import annotations

from orchestration.generator.catalog import currency_pick_sql
from orchestration.generator.sqlkit import Ctx


def _event(
    suffix: str,
    event_type: str,
    amount: str,
    processed_at: str,
    where: str,
    *,
    status: str = "'succeeded'",
    reference: str | None = None,
    currency: str = "f.currency",
    exp: str = "f.total_exp",
    pending_first: str = "FALSE",
) -> str:
    ref = reference if reference is not None else f"'pi_' || lower(hex(hx(f.i, 'ref{suffix}')))"
    return f"""
        SELECT 'PAY-' || lpad(f.i::VARCHAR, 8, '0') || '-{suffix}' AS payment_id, f.i, f.order_id,
               '{event_type}' AS event_type, ({amount})::DECIMAL(18, 4) AS amount, {currency} AS currency,
               {exp} AS exp, {status} AS status, {processed_at} AS processed_at, {ref} AS psp_reference,
               f.method, {pending_first} AS pending_first
        FROM order_facts AS f {where}"""


def create_payment_events(ctx: Ctx) -> None:
    half = "round_to(f.capture_base / 2, f.exp)"
    main_capture_amount = f"""CASE f.cap_mode
        WHEN 'under' THEN f.capture_base - greatest(minor_unit(f.exp), round_to(f.capture_base * 0.25, f.exp))
        WHEN 'split_same_ref' THEN {half}
        WHEN 'split_empty_ref' THEN {half}
        ELSE f.capture_base + CASE WHEN f.refund_mode = 'psp_extra' THEN f.psp_extra ELSE 0 END END"""
    second_capture_amount = f"""CASE f.cap_mode
        WHEN 'extra' THEN greatest(minor_unit(f.exp), round_to(f.capture_base * 0.1, f.exp))
        WHEN 'double_same_ref' THEN f.capture_base
        ELSE f.capture_base - {half} END"""
    main_ref = "'pi_' || lower(hex(hx(f.i, 'refC1')))"
    fx = "JOIN currencies AS fx ON fx.currency = CASE WHEN f.currency = 'EUR' THEN 'USD' ELSE 'EUR' END"
    fx_amount = "round_to((f.total / f.rate * fx.rate)::DOUBLE, fx.exp)"
    refund_amount = "f.refund_amount + CASE WHEN f.refund_mode = 'psp_extra' THEN f.psp_extra ELSE 0 END"
    events = [
        _event(
            "A1",
            "authorization",
            "f.total",
            "f.t_auth",
            "WHERE f.has_auth AND ((f.kind = 'cancel_unpaid' AND f.inc_cancel) OR f.inc_paid)",
        ),
        _event(
            "V1",
            "void",
            "f.total",
            "f.t_cancel - INTERVAL 60 SECOND",
            "WHERE f.has_auth AND f.kind = 'cancel_unpaid' AND f.inc_cancel",
        ),
        _event(
            "F1",
            "capture",
            main_capture_amount,
            "f.t_cap - INTERVAL 90 SECOND",
            "WHERE f.failed_attempt AND f.inc_paid",
            status="'failed'",
        ),
        _event(
            "C1",
            "capture",
            main_capture_amount,
            "f.t_cap",
            "WHERE f.inc_paid AND f.cap_mode <> 'none'",
            status="CASE WHEN f.cap_mode = 'failed' THEN 'failed' ELSE 'succeeded' END",
            reference=f"CASE WHEN f.cap_mode = 'split_empty_ref' THEN NULL ELSE {main_ref} END",
            pending_first="f.scenario IS NULL AND hx(f.i, 'pendfirst') % 100 < 8",
        ),
        _event(
            "C2",
            "capture",
            second_capture_amount,
            "f.t_cap + CASE WHEN f.cap_mode = 'extra' THEN INTERVAL 1 HOUR ELSE INTERVAL 10 MINUTE END",
            "WHERE f.inc_paid AND f.cap_mode IN ('extra', 'split_same_ref', 'split_empty_ref', 'double_same_ref')",
            reference=f"""CASE f.cap_mode WHEN 'split_empty_ref' THEN NULL WHEN 'extra' THEN
                   'pi_' || lower(hex(hx(f.i, 'refC2'))) ELSE {main_ref} END""",
        ),
        _event(
            "R1",
            "refund",
            refund_amount,
            "CASE WHEN f.kind = 'cancel_paid' THEN f.t_cancel - INTERVAL 60 SECOND ELSE f.t_refund END",
            """WHERE f.refund_mode NOT IN ('psp_missing', 'none')
                  AND ((f.kind IN ('part_refund', 'full_refund') AND f.inc_refund)
                       OR (f.kind = 'cancel_paid' AND f.inc_cancel))""",
        ),
        _event(
            "K1",
            "chargeback",
            "f.total",
            "f.t_cap + INTERVAL 30 HOUR",
            "WHERE f.extra = 'chargeback' AND f.inc_paid",
        ),
        _event(
            "X1",
            "authorization",
            fx_amount,
            "f.t_auth + INTERVAL 5 SECOND",
            f"{fx} WHERE f.extra = 'fx_auth' AND f.inc_paid",
            currency="fx.currency",
            exp="fx.exp",
        ),
        _event(
            "X2",
            "capture",
            fx_amount,
            "f.t_cap + INTERVAL 2 HOUR",
            f"{fx} WHERE f.extra = 'fx_capture' AND f.inc_paid",
            currency="fx.currency",
            exp="fx.exp",
        ),
    ]
    ctx.run(f"CREATE TABLE payment_events AS {' UNION ALL '.join(events)}")
    _add_orphans(ctx)


def _add_orphans(ctx: Ctx) -> None:
    """ORPHAN_PAYMENT cases: every other one has no order_id, the rest an order_id no order has."""
    cfg = ctx.cfg
    span = int((cfg.as_of - cfg.start).total_seconds())
    ctx.run(
        f"""
        INSERT INTO payment_events
        WITH o AS (
            SELECT k, {currency_pick_sql("hx(k, 'ocur')")} AS currency FROM range({cfg.n_entity_cases}) AS t(k)
        )
        SELECT 'PAY-ORPHAN-' || lpad(k::VARCHAR, 8, '0'), NULL,
               CASE WHEN k % 2 = 0 THEN NULL ELSE 'ORD-GHOST-' || lpad(k::VARCHAR, 8, '0') END,
               list_extract(['capture', 'refund', 'authorization'], (k % 3)::INTEGER + 1),
               round_to((500 + hx(k, 'oamt') % 20000) / 100.0 * c.rate, c.exp), o.currency, c.exp,
               CASE WHEN k % 5 = 4 THEN 'failed' ELSE 'succeeded' END,
               {ctx.ts("start")} + secs(hx(k, 'ots') % {span}),
               'pi_' || lower(hex(hx(k, 'oref'))), 'card', FALSE
        FROM o JOIN currencies AS c USING (currency)
        """
    )
