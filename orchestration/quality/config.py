"""Where the suites, the threshold limits and the Data Docs live, and the limits in force.

Threshold limits (WARN checks only) come from `expectations/threshold_limits.json`, or the file
named by `ORDER_AUDIT_QUALITY_LIMITS_FILE`, and each can be overridden by an environment variable
(read by `orchestration.settings`):

- `ORDER_AUDIT_MAX_EXCEPTION_SHARE`: largest acceptable share (0..1) of orders whose audit_status
  is `exception`;
- `ORDER_AUDIT_MAX_ABS_BALANCE`: largest acceptable sum of abs(payment_balance_amount) of one
  currency, in major units, for every currency without a limit of its own;
- `ORDER_AUDIT_MAX_ABS_BALANCE_<CUR>` (e.g. `ORDER_AUDIT_MAX_ABS_BALANCE_JPY`): the same for one currency.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from orchestration.rules import delivery_order, trimmed_id_sql
from orchestration.settings import EXPECTATIONS_DIR, Settings

SUITES_DIR = EXPECTATIONS_DIR / "suites"

_CURRENCY = re.compile(r"^[A-Z]{3}$")


def _decimal(value: object, what: str) -> Decimal:
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation as error:
        raise ValueError(f"{what}: {value!r} is not a number") from error
    if not number.is_finite() or number < 0:
        raise ValueError(f"{what}: {value!r} must be a finite number >= 0")
    return number


@dataclass(frozen=True)
class ThresholdLimits:
    max_exception_share: float
    max_abs_balance_default: Decimal
    max_abs_balance_by_currency: dict[str, Decimal] = field(default_factory=dict)

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None) -> ThresholdLimits:
        """The limits in force for the settings of `env` (default: this process's environment)."""
        return cls.from_settings(Settings.from_env(env))

    @classmethod
    def from_settings(cls, settings: Settings) -> ThresholdLimits:
        """The limits file's limits, overridden by those `settings` sets."""
        path = settings.quality_limits_file
        raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        share = (
            float(raw["max_exception_share"])
            if settings.max_exception_share is None
            else settings.max_exception_share
        )
        if not 0 <= share <= 1:
            raise ValueError(f"{path}: max_exception_share must be between 0 and 1, got {share}")
        default = (
            _decimal(raw["max_abs_balance"]["default"], "max_abs_balance")
            if settings.max_abs_balance is None
            else settings.max_abs_balance
        )
        per_currency = {
            str(currency): _decimal(value, f"max_abs_balance.{currency}")
            for currency, value in raw["max_abs_balance"].get("per_currency", {}).items()
        }
        per_currency.update(settings.max_abs_balance_by_currency)
        for currency in per_currency:
            if not _CURRENCY.match(currency):
                raise ValueError(f"max_abs_balance.per_currency: {currency!r} is not an ISO 4217 code")
        return cls(share, default, dict(sorted(per_currency.items())))

    def suite_parameters(self) -> dict[str, Any]:
        """Values for GX `{"$PARAMETER": name}` kwargs in the suites."""
        return {"max_exception_share": self.max_exception_share}

    def sql_parameters(self) -> dict[str, str]:
        """SQL text for `${name}` placeholders in the suites' queries: the limits, and the delivery order
        (dbt_project.yml's `delivery_order`, as the staging models use it)."""
        rows = [("*", self.max_abs_balance_default), *self.max_abs_balance_by_currency.items()]
        values = ", ".join(f"('{currency}', cast('{limit}' as decimal(38, 6)))" for currency, limit in rows)
        return {
            "abs_balance_limits": f"(values {values}) as limits(currency, max_abs_balance_amount)",
            "max_exception_share": repr(self.max_exception_share),
            "delivery_order": ", ".join(delivery_order()),
            # ids as the staging models compare them (trimmed of whitespace, empty is missing)
            **{
                f"id_{column.replace('.', '_')}": trimmed_id_sql(column)
                for column in ("order_id", "latest.order_id", "payment_id", "movement_id", "decision_id")
            },
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_exception_share": self.max_exception_share,
            "max_abs_balance": {
                "default": str(self.max_abs_balance_default),
                "per_currency": {k: str(v) for k, v in self.max_abs_balance_by_currency.items()},
            },
        }
