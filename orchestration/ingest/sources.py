"""What each landing source delivers (extracts.md), as data: columns, required fields and row rules.

Every rule is a SQL predicate over the row's text columns that is true when the row breaks the
contract, with a reason code (shared with the generator's ground truth) and a message expression
that quotes the offending value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestration.rules import blank_sql

MONEY_PATTERN = r"-?[0-9]{1,12}(\.[0-9]{1,6})?"
TIMESTAMP_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)"
DATE_PATTERN = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
CURRENCY_PATTERN = r"[A-Z]{3}"

ORDER_STATUSES = (
    "pending",
    "paid",
    "partially_fulfilled",
    "fulfilled",
    "cancelled",
    "partially_refunded",
    "refunded",
)
PAYMENT_EVENT_TYPES = ("authorization", "capture", "refund", "chargeback", "void")
PAYMENT_STATUSES = ("succeeded", "failed", "pending")
MOVEMENT_TYPES = ("receipt", "reservation", "release", "shipment", "return", "adjustment")
MOVEMENT_TYPES_WITH_ORDER = ("reservation", "release", "shipment", "return")

REASON_CODES = (
    "unparseable",
    "missing_required_field",
    "unknown_enum_value",
    "invalid_money",
    "negative_amount",
    "invalid_quantity",
    "empty_lines",
    "duplicate_line_id",
    "invalid_timestamp",
    "invalid_currency",
)
REJECT_CODES = ("wrong_header", "not_utf8", "not_json_lines", "empty_file", "bad_file_name", "unreadable")


@dataclass(frozen=True)
class RowRule:
    code: str
    condition: str
    message: str

    def as_sql(self) -> str:
        return f"case when {self.condition} then '{self.code}: ' || ({self.message}) end"


def _quote(column: str) -> str:
    return f"coalesce('''' || {column} || '''', 'null')"


def required(column: str) -> RowRule:
    return RowRule("missing_required_field", blank_sql(column), f"'{column} is missing'")


def one_of(column: str, values: tuple[str, ...]) -> RowRule:
    listed = ", ".join(f"'{v}'" for v in values)
    return RowRule(
        "unknown_enum_value",
        f"not {blank_sql(column)} and {column} not in ({listed})",
        f"'{column} ' || {_quote(column)} || ' is not one of {'/'.join(values)}'",
    )


def money(column: str) -> list[RowRule]:
    value = f"trim({column})"
    return [
        RowRule(
            "invalid_money",
            f"not {blank_sql(column)} and not regexp_full_match({value}, '{MONEY_PATTERN}')",
            f"'{column} ' || {_quote(column)} || ' is not a decimal string with at most 6 decimals'",
        ),
        RowRule(
            "negative_amount",
            f"regexp_full_match({value}, '{MONEY_PATTERN}') and cast({value} as decimal(38, 6)) < 0",
            f"'{column} ' || {_quote(column)} || ' is negative'",
        ),
    ]


def timestamp(column: str) -> RowRule:
    value = f"trim({column})"
    return RowRule(
        "invalid_timestamp",
        f"not {blank_sql(column)} and (not regexp_full_match({value}, '{TIMESTAMP_PATTERN}')"
        f" or try_cast(upper({value}) as timestamptz) is null)",
        f"'{column} ' || {_quote(column)} || ' is not an ISO 8601 timestamp with an offset'",
    )


def currency(column: str) -> RowRule:
    return RowRule(
        "invalid_currency",
        f"not {blank_sql(column)} and not regexp_full_match({column}, '{CURRENCY_PATTERN}')",
        f"'{column} ' || {_quote(column)} || ' is not a 3-letter upper-case ISO 4217 code'",
    )


def integer(column: str, *, positive: bool) -> RowRule:
    value = f"trim({column})"
    if positive:
        bad = f"not regexp_full_match({value}, '\\+?[0-9]{{1,9}}') or cast({value} as bigint) <= 0"
        expectation = "a positive integer"
    else:
        bad = f"not regexp_full_match({value}, '[+-]?[0-9]{{1,9}}')"
        expectation = "an integer"
    return RowRule(
        "invalid_quantity",
        f"not {blank_sql(column)} and ({bad})",
        f"'{column} ' || {_quote(column)} || ' is not {expectation}'",
    )


def typed_money(column: str, parquet_type: str) -> RowRule:
    """Money in a Parquet column of another type than text: a float, or an exact number that the
    contract's decimal strings do not allow either (JSON numbers are bad input likewise)."""
    return RowRule(
        "invalid_money",
        f"{column} is not null",
        f"'{column} is a Parquet {parquet_type} column, expected a decimal string'",
    )


def calendar_date(column: str) -> RowRule:
    value = f"trim({column})"
    return RowRule(
        "invalid_timestamp",
        f"not {blank_sql(column)} and (not regexp_full_match({value}, '{DATE_PATTERN}')"
        f" or try_cast({value} as date) is null)",
        f"'{column} ' || {_quote(column)} || ' is not a YYYY-MM-DD date'",
    )


@dataclass(frozen=True)
class SourceSpec:
    """One landing source: its folder, file formats, raw table and row rules."""

    name: str
    extensions: tuple[str, ...]
    columns: tuple[str, ...]
    rules: tuple[RowRule, ...] = field(default=())
    required_source: bool = True
    money_columns: tuple[str, ...] = ()

    @property
    def raw_table(self) -> str:
        return f"raw.{self.name}"


PAYMENTS = SourceSpec(
    name="payments",
    extensions=("csv", "parquet"),
    columns=(
        "payment_id",
        "order_id",
        "event_type",
        "amount",
        "currency",
        "status",
        "processed_at",
        "psp_reference",
        "method",
    ),
    rules=(
        *(required(c) for c in ("payment_id", "event_type", "amount", "currency", "status", "processed_at")),
        one_of("event_type", PAYMENT_EVENT_TYPES),
        one_of("status", PAYMENT_STATUSES),
        *money("amount"),
        currency("currency"),
        timestamp("processed_at"),
    ),
    money_columns=("amount",),
)

INVENTORY_MOVEMENTS = SourceSpec(
    name="inventory_movements",
    extensions=("csv", "parquet"),
    columns=("movement_id", "sku", "warehouse_id", "movement_type", "quantity", "order_id", "occurred_at"),
    rules=(
        *(
            required(c)
            for c in ("movement_id", "sku", "warehouse_id", "movement_type", "quantity", "occurred_at")
        ),
        RowRule(
            "missing_required_field",
            f"movement_type in {MOVEMENT_TYPES_WITH_ORDER} and {blank_sql('order_id')}",
            "'order_id is missing on a ' || movement_type",
        ),
        one_of("movement_type", MOVEMENT_TYPES),
        RowRule(
            integer("quantity", positive=True).code,
            f"coalesce(movement_type, '') <> 'adjustment' and {integer('quantity', positive=True).condition}",
            integer("quantity", positive=True).message,
        ),
        RowRule(
            integer("quantity", positive=False).code,
            f"movement_type = 'adjustment' and {integer('quantity', positive=False).condition}",
            integer("quantity", positive=False).message,
        ),
        timestamp("occurred_at"),
    ),
)

INVENTORY_LEVELS = SourceSpec(
    name="inventory_levels",
    extensions=("csv", "parquet"),
    columns=("sku", "warehouse_id", "on_hand", "snapshot_date"),
    rules=(
        *(required(c) for c in ("sku", "warehouse_id", "on_hand", "snapshot_date")),
        integer("on_hand", positive=False),
        calendar_date("snapshot_date"),
    ),
    required_source=False,
)

PRODUCTS = SourceSpec(
    name="products",
    extensions=("csv", "parquet"),
    columns=("sku", "title", "unit_price", "currency", "valid_from"),
    rules=(
        *(required(c) for c in ("sku", "unit_price", "currency", "valid_from")),
        *money("unit_price"),
        currency("currency"),
        timestamp("valid_from"),
    ),
    required_source=False,
    money_columns=("unit_price",),
)

ORDER_COLUMNS = (
    "order_id",
    "customer_id",
    "customer_email",
    "status",
    "currency",
    "created_at",
    "updated_at",
    "discount_amount",
    "shipping_amount",
    "tax_amount",
    "total_amount",
    "refunded_amount",
    "channel",
)
ORDER_MONEY_FIELDS = ("discount_amount", "shipping_amount", "tax_amount", "total_amount", "refunded_amount")
ORDER_LINE_COLUMNS = ("line_id", "sku", "quantity", "unit_price", "discount_amount")

ORDERS = SourceSpec(
    name="orders",
    extensions=("jsonl", "parquet"),
    columns=ORDER_COLUMNS,
    money_columns=ORDER_MONEY_FIELDS,
    rules=(
        *(required(c) for c in ("order_id", "customer_id", "status", "currency", "created_at", "updated_at")),
        required("total_amount"),
        one_of("status", ORDER_STATUSES),
        *(rule for column in ORDER_MONEY_FIELDS for rule in money(column)),
        currency("currency"),
        timestamp("created_at"),
        timestamp("updated_at"),
    ),
)

ORDER_LINE_RULES = (
    required("line_id"),
    required("sku"),
    required("quantity"),
    required("unit_price"),
    integer("quantity", positive=True),
    *money("unit_price"),
    *money("discount_amount"),
)

SOURCES: dict[str, SourceSpec] = {
    spec.name: spec for spec in (ORDERS, PAYMENTS, INVENTORY_MOVEMENTS, INVENTORY_LEVELS, PRODUCTS)
}

# People's triage actions on exceptions (`order-audit exceptions ack|assign|snooze|resolve|reopen`): not an
# extract of a source system, but loaded by the same rules (manifest, sha256, quarantine) from
# `<landing folder>/decisions/decisions_<YYYY-MM-DD>_<id>.jsonl`, one action per line.
TRIAGE_ACTIONS = ("ack", "assign", "snooze", "resolve", "reopen")
RESOLVE_REASONS = ("fixed", "accepted", "false_positive")


def required_for(action: str, column: str) -> RowRule:
    return RowRule(
        "missing_required_field",
        f"action = '{action}' and {blank_sql(column)}",
        f"'{column} is missing on a {action}'",
    )


DECISIONS = SourceSpec(
    name="decisions",
    extensions=("jsonl",),
    columns=(
        "decision_id",
        "exception_id",
        "action",
        "decided_by",
        "decided_at",
        "reason",
        "note",
        "assignee",
        "snoozed_until",
        # the exception's detail as the published register showed it to the person deciding (a resolve
        # as accepted or false positive freezes it as the evidence); absent in decisions written by hand
        "detail_shown",
    ),
    rules=(
        *(required(c) for c in ("decision_id", "exception_id", "action", "decided_by", "decided_at")),
        one_of("action", TRIAGE_ACTIONS),
        one_of("reason", RESOLVE_REASONS),
        required_for("resolve", "reason"),
        required_for("resolve", "note"),
        required_for("assign", "assignee"),
        required_for("snooze", "snoozed_until"),
        timestamp("decided_at"),
        timestamp("snoozed_until"),
    ),
    required_source=False,
)
