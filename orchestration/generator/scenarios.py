"""Injected scenarios: what each one changes in an otherwise clean order, and the exact codes it raises.

An order either follows the clean lifecycle (it must raise no code under any rule of audit_mart.md)
or carries exactly one scenario. A scenario is a set of knobs read by the order, payment and
inventory builders; `codes` is the complete set of exception codes its order raises. Decoys are
near-misses that must raise nothing. Entity cases (orphan payments and movements, stock level
mismatches) are not orders; their counts come from `GenerationConfig.n_entity_cases`.

Knobs (defaults in brackets):
- kind [auto: the clean mix]: lifecycle, one of pending, cancel_unpaid, cancel_paid, hold_paid
  (paid, never shipped), hold_partial (first of two shipments only), fulfil, part_refund, full_refund
- timing [auto: uniform over the period, then cut at the as-of time]: complete (every step done well
  before the as-of), recent (paid 2-36 h before as-of), old (paid > 96 h before as-of), exact72
  (captured exactly 72 h before as-of), at_change / before_change (created exactly at / 1 µs before
  the price change)
- cap_mode [full]: none, failed, under, extra, split_same_ref, double_same_ref, split_empty_ref
- refund_mode [normal]: psp_missing (storefront refunded, PSP did not), none (nobody refunded),
  psp_extra (PSP refunded d more than the storefront and captured d more than the total)
- extra [none]: chargeback, fx_auth, fx_capture (a succeeded event in another currency)
- ship_mode [normal]: before_capture, at_capture, plus_one, plus_one_returned, foreign_sku, minus_one,
  cancel_shipped, cancel_shipped_returned, pending_ship
- sku_mode (line 1) [normal]: unknown, oversold
- price_mode (last line) [catalog]: off, old_at_change, changed_sku (catalog price of a sku whose price
  changes mid-period)
- total_mode [exact]: delta, half (+ half a minor unit), sub_half (+ 0.4 minor unit, captured = computed)
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from orchestration.generator.sqlkit import Ctx
from orchestration.rules import rule_codes

ALL_CODES: tuple[str, ...] = rule_codes()


@dataclass(frozen=True)
class Scenario:
    name: str
    codes: tuple[str, ...]
    kind: str = "auto"
    timing: str = "auto"
    currency: str | None = None
    min_lines: int = 1
    cap_mode: str = "full"
    refund_mode: str = "normal"
    extra: str = "none"
    ship_mode: str = "normal"
    sku_mode: str = "normal"
    price_mode: str = "catalog"
    total_mode: str = "exact"


def _s(name: str, *codes: str, **knobs: Any) -> Scenario:
    return Scenario(name, tuple(sorted(codes)), **knobs)


EXCEPTION_SCENARIOS: tuple[Scenario, ...] = (
    _s("payment_missing", "PAYMENT_MISSING", kind="hold_paid", timing="recent", cap_mode="none"),
    _s("underpaid", "UNDERPAID", kind="fulfil", timing="complete", cap_mode="under"),
    _s("overpaid_second_capture", "OVERPAID", kind="fulfil", timing="complete", cap_mode="extra"),
    _s(
        "refund_not_at_psp",
        "REFUND_MISMATCH",
        "OVERPAID",
        kind="part_refund",
        timing="complete",
        refund_mode="psp_missing",
    ),
    _s(
        "cancelled_not_refunded",
        "CANCELLED_NOT_REFUNDED",
        kind="cancel_paid",
        timing="complete",
        refund_mode="none",
    ),
    _s("currency_mismatch_auth", "CURRENCY_MISMATCH", kind="fulfil", timing="complete", extra="fx_auth"),
    _s(
        "duplicate_capture_split",
        "DUPLICATE_CAPTURE",
        kind="fulfil",
        timing="complete",
        cap_mode="split_same_ref",
    ),
    _s("chargeback", "CHARGEBACK", kind="fulfil", timing="complete", extra="chargeback"),
    _s("total_mismatch", "ORDER_TOTAL_MISMATCH", kind="fulfil", timing="complete", total_mode="delta"),
    _s(
        "shipped_before_capture",
        "SHIPPED_BEFORE_PAYMENT",
        kind="fulfil",
        timing="complete",
        ship_mode="before_capture",
    ),
    _s("over_shipped_extra_unit", "OVER_SHIPPED", kind="fulfil", timing="complete", ship_mode="plus_one"),
    _s("under_shipped", "UNDER_SHIPPED", kind="fulfil", timing="complete", ship_mode="minus_one"),
    _s(
        "cancelled_but_shipped",
        "CANCELLED_BUT_SHIPPED",
        kind="cancel_paid",
        timing="complete",
        ship_mode="cancel_shipped",
    ),
    _s("oversold", "OVERSOLD", kind="fulfil", timing="complete", sku_mode="oversold"),
    _s("delayed_paid", "FULFILLMENT_DELAYED", kind="hold_paid", timing="old"),
    _s("price_mismatch", "PRICE_MISMATCH", price_mode="off"),
    _s("unknown_sku", "UNKNOWN_SKU", sku_mode="unknown"),
    # second variants of the same codes
    _s(
        "payment_missing_failed_capture",
        "PAYMENT_MISSING",
        kind="hold_paid",
        timing="recent",
        cap_mode="failed",
    ),
    _s(
        "currency_mismatch_capture", "CURRENCY_MISMATCH", kind="fulfil", timing="complete", extra="fx_capture"
    ),
    _s(
        "duplicate_capture_double",
        "DUPLICATE_CAPTURE",
        "OVERPAID",
        kind="fulfil",
        timing="complete",
        cap_mode="double_same_ref",
    ),
    _s("refund_psp_extra", "REFUND_MISMATCH", kind="part_refund", timing="complete", refund_mode="psp_extra"),
    _s(
        "total_mismatch_half_minor_unit",
        "ORDER_TOTAL_MISMATCH",
        kind="fulfil",
        timing="complete",
        currency="USD",
        total_mode="half",
    ),
    _s(
        "shipped_while_pending",
        "SHIPPED_BEFORE_PAYMENT",
        kind="pending",
        timing="complete",
        ship_mode="pending_ship",
    ),
    _s("over_shipped_foreign_sku", "OVER_SHIPPED", kind="fulfil", timing="complete", ship_mode="foreign_sku"),
    _s("delayed_partially_fulfilled", "FULFILLMENT_DELAYED", kind="hold_partial", timing="old", min_lines=2),
    _s("price_old_at_change", "PRICE_MISMATCH", timing="at_change", price_mode="old_at_change"),
    # several codes on one order
    _s(
        "cancelled_shipped_unrefunded",
        "CANCELLED_BUT_SHIPPED",
        "CANCELLED_NOT_REFUNDED",
        kind="cancel_paid",
        timing="complete",
        ship_mode="cancel_shipped",
        refund_mode="none",
    ),
    _s(
        "catalog_issues_and_chargeback",
        "CHARGEBACK",
        "PRICE_MISMATCH",
        "UNKNOWN_SKU",
        kind="fulfil",
        timing="complete",
        min_lines=2,
        sku_mode="unknown",
        price_mode="off",
        extra="chargeback",
    ),
)

DECOY_SCENARIOS: tuple[Scenario, ...] = (
    _s("near_ship_at_capture_instant", kind="fulfil", timing="complete", ship_mode="at_capture"),
    _s("near_captured_exactly_72h", kind="hold_paid", timing="exact72"),
    _s("near_new_price_at_change", timing="at_change", price_mode="changed_sku"),
    _s("near_old_price_before_change", timing="before_change", price_mode="changed_sku"),
    _s("near_total_sub_half_usd", kind="fulfil", timing="complete", currency="USD", total_mode="sub_half"),
    _s("near_total_sub_half_jpy", kind="fulfil", timing="complete", currency="JPY", total_mode="sub_half"),
    _s("near_over_ship_returned", kind="fulfil", timing="complete", ship_mode="plus_one_returned"),
    _s(
        "near_cancel_shipped_returned",
        kind="cancel_paid",
        timing="complete",
        ship_mode="cancel_shipped_returned",
    ),
    _s("near_split_capture_empty_ref", kind="fulfil", timing="complete", cap_mode="split_empty_ref"),
)

SCENARIOS: tuple[Scenario, ...] = EXCEPTION_SCENARIOS + DECOY_SCENARIOS
KNOBS: tuple[str, ...] = tuple(f.name for f in fields(Scenario) if f.name not in ("name", "codes"))


def _sql_value(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def create_scenario_tables(ctx: Ctx) -> None:
    """`scenario_def(idx, name, is_decoy, <knobs>)` and `scenario_codes(name, code)`."""
    columns = ("idx", "name", "is_decoy", *KNOBS)
    values = ",\n".join(
        "("
        + ", ".join(
            [str(idx), _sql_value(s.name), "TRUE" if s in DECOY_SCENARIOS else "FALSE"]
            + [_sql_value(getattr(s, knob)) for knob in KNOBS]
        )
        + ")"
        for idx, s in enumerate(SCENARIOS)
    )
    ctx.run(f"CREATE TABLE scenario_def AS SELECT * FROM (VALUES {values}) AS t({', '.join(columns)})")
    pairs = ", ".join(f"({_sql_value(s.name)}, {_sql_value(c)})" for s in SCENARIOS for c in s.codes)
    ctx.run(f"CREATE TABLE scenario_codes AS SELECT * FROM (VALUES {pairs}) AS t(name, code)")


def assign_scenarios(ctx: Ctx) -> tuple[int, int]:
    """`order_scenario(i, slot, <scenario_def columns>)`: which orders carry which scenario.

    Orders are ranked by a seeded hash; the first ranks take exception scenarios, cycling through
    the whole list once before drawing at random, the next ranks take decoys the same way.
    """
    n_exc_types, n_dec_types = len(EXCEPTION_SCENARIOS), len(DECOY_SCENARIOS)
    n_exc = ctx.cfg.n_exception_orders(n_exc_types)
    n_dec = ctx.cfg.n_decoy_orders(n_dec_types, n_exc)
    ctx.run(
        f"""
        CREATE TABLE order_scenario AS
        WITH ranked AS (
            SELECT i, row_number() OVER (ORDER BY hx(i, 'rank'), i) - 1 AS r
            FROM range({ctx.cfg.orders}) AS t(i)
        ),
        chosen AS (
            SELECT i, r AS slot,
                CASE
                    WHEN r < {n_exc} AND r < {n_exc_types} THEN r
                    WHEN r < {n_exc} THEN (hx(i, 'stype') % {n_exc_types})::BIGINT
                    WHEN r - {n_exc} < {n_dec_types} THEN {n_exc_types} + r - {n_exc}
                    ELSE {n_exc_types} + (hx(i, 'dtype') % {n_dec_types})::BIGINT
                END AS idx
            FROM ranked WHERE r < {n_exc + n_dec}
        )
        SELECT c.i, c.slot, d.* EXCLUDE (idx) FROM chosen AS c JOIN scenario_def AS d USING (idx)
        """
    )
    return n_exc, n_dec
