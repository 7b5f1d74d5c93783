"""Exact money display: Decimal in, string out, never through float."""

from __future__ import annotations

from decimal import Decimal

from orchestration.rules import minor_units as minor_unit


def format_amount(
    value: Decimal | int | str | None, currency: str | None = None, grouping: bool = True
) -> str:
    """The exact amount as text: at least the currency's minor-unit decimals, more only when the value
    has them (no rounding ever), with thousands separators. None gives an empty string.

    >>> format_amount(Decimal("8415.362000"), "USD")
    '8,415.362'
    >>> format_amount(Decimal("712516.000000"), "JPY")
    '712,516'
    """
    if value is None:
        return ""
    amount = value if isinstance(value, Decimal) else Decimal(str(value))
    if not amount.is_finite():
        return str(amount)
    exponent = amount.normalize().as_tuple().exponent
    significant = -exponent if isinstance(exponent, int) and exponent < 0 else 0
    places = max(minor_unit(currency), significant)
    exact = amount.quantize(Decimal(1).scaleb(-places))  # adds or drops zeros only: places >= significant
    if exact.is_zero():
        exact = abs(exact)
    return f"{exact:{',' if grouping else ''}.{places}f}"


def parse_amount(text: str) -> Decimal:
    """Inverse of `format_amount` (drops the thousands separators)."""
    return Decimal(text.replace(",", ""))
