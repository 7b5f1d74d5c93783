"""The generation settings and every instant and count derived from them (one place, no SQL)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

WAREHOUSES = ("WH-EU-AMS", "WH-JP-TYO", "WH-US-EAST", "WH-US-WEST")


def ts_literal(value: datetime) -> str:
    """A DuckDB TIMESTAMP literal (naive, meaning UTC)."""
    return f"TIMESTAMP '{value.isoformat(sep=' ')}'"


@dataclass(frozen=True)
class GenerationConfig:
    out_dir: Path
    orders: int
    seed: int
    days: int
    start_date: date
    exception_rate: float
    bad_rows_rate: float

    def __post_init__(self) -> None:
        if not 1 <= self.orders < 100_000_000:
            raise ValueError("orders must be between 1 and 99,999,999 (ids have 8 digits)")
        if self.days < 1:
            raise ValueError("days must be at least 1")
        if not 0.0 <= self.exception_rate <= 1.0:
            raise ValueError("exception_rate must be between 0 and 1")
        if not 0.0 <= self.bad_rows_rate <= 1.0:
            raise ValueError("bad_rows_rate must be between 0 and 1")

    # --- instants (naive datetimes, UTC) -------------------------------------------------------
    @property
    def start(self) -> datetime:
        return datetime.combine(self.start_date, time())

    @property
    def end(self) -> datetime:
        """Midnight UTC after the last extract day."""
        return self.start + self.days * DAY

    @property
    def as_of(self) -> datetime:
        """The latest instant of any clean row: one anchor movement is written exactly here."""
        return self.end - MINUTE

    @property
    def price_change_at(self) -> datetime:
        """valid_from of the mid-period price change (whole second, UTC)."""
        return self.start + (self.days // 2) * DAY + 12 * HOUR

    @property
    def restock_at(self) -> datetime:
        """Second receipt wave of every stocked (sku, warehouse)."""
        return self.start + (self.days // 2) * DAY + 6 * HOUR

    @property
    def catalog_since(self) -> datetime:
        return self.start - 90 * DAY

    def day(self, index: int) -> date:
        return self.start_date + timedelta(days=index)

    @property
    def price_change_file_day(self) -> int:
        """The price change is announced the day before it takes effect (day 0 at the earliest)."""
        return max(0, (self.price_change_at - self.start).days - 1)

    @property
    def split_day(self) -> int:
        """The extract day whose orders arrive in two part files (`orders_<date>_1/_2.jsonl`)."""
        return min(1, self.days - 1)

    # --- sizes -----------------------------------------------------------------------------------
    @property
    def n_skus(self) -> int:
        return min(400, max(40, self.orders // 25))

    @property
    def n_customers(self) -> int:
        return max(10, self.orders * 2 // 3)

    def n_exception_orders(self, n_types: int) -> int:
        count = round(self.exception_rate * self.orders)
        if self.exception_rate > 0 and self.orders >= 200:
            count = max(count, n_types)
        return min(count, self.orders)

    def n_decoy_orders(self, n_types: int, n_exception_orders: int) -> int:
        if self.orders < 100:
            return 0
        return min(self.orders - n_exception_orders, max(n_types, self.orders // 100))

    @property
    def n_entity_cases(self) -> int:
        """Orphan payments, orphan movements and stock mismatches, each (0 when exception_rate is 0)."""
        if self.exception_rate == 0:
            return 0
        return max(2, round(self.orders * self.exception_rate * 0.01))
