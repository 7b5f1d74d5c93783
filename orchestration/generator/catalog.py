"""Currencies, skus and the price list (with a mid-period price change)."""

from __future__ import annotations

from orchestration.generator.sqlkit import Ctx
from orchestration.rules import minor_units

# code, minor-unit exponent, units per USD, weight (%), shipping fee, free shipping from, tax rate
CURRENCIES: tuple[tuple[str, int, str, int, str, str, str], ...] = tuple(
    (code, minor_units(code), *rest)
    for code, *rest in (
        ("USD", "1.0", 35, "4.99", "75", "0.08"),
        ("EUR", "0.92", 25, "4.50", "60", "0.20"),
        ("GBP", "0.79", 15, "3.95", "50", "0.20"),
        ("JPY", "150", 12, "600", "10000", "0.10"),
        ("KWD", "0.307", 7, "1.500", "25", "0"),
        ("BHD", "0.376", 6, "1.800", "30", "0.10"),
    )
)
GULF = ("KWD", "BHD")
GIFT_SKU = "SKU-90001"

_ADJECTIVES = [
    "Classic",
    "Compact",
    "Deluxe",
    "Eco",
    "Heavy-duty",
    "Mini",
    "Pro",
    "Smart",
    "Travel",
    "Vintage",
]
_NOUNS = [
    "Backpack",
    "Bottle",
    "Café Mug",
    "Desk Lamp",
    "Headphones",
    "Kettle",
    "Notebook",
    "Sneaker",
    "Umbrella",
    "Wallet",
    "Yoga Mat",
    "Über Charger",
]


def currency_pick_sql(hash_expr: str) -> str:
    """A weighted currency choice from a hash value (percent buckets)."""
    branches, upper = [], 0
    for code, _exp, _rate, weight, *_ in CURRENCIES[:-1]:
        upper += weight
        branches.append(f"WHEN ({hash_expr}) % 100 < {upper} THEN '{code}'")
    return f"(CASE {' '.join(branches)} ELSE '{CURRENCIES[-1][0]}' END)"


def create_currencies(ctx: Ctx) -> None:
    values = ", ".join(
        f"('{c}', {e}, {r}::DECIMAL(18, 6), {fee}::DECIMAL(18, 4), {free}::DECIMAL(18, 4), {tax}::DECIMAL(18, 4))"
        for c, e, r, _w, fee, free, tax in CURRENCIES
    )
    ctx.run(
        f"""CREATE TABLE currencies AS SELECT * FROM (VALUES {values})
            AS t(currency, exp, rate, ship_fee, free_from, tax_rate)"""
    )


def create_catalog(ctx: Ctx) -> None:
    """`skus` and `price_list(sku, title, currency, exp, unit_price, valid_from, tag)`.

    Regular skus `SKU-00000..`: every fourth one (k % 4 = 1) changes price in every currency at
    `price_change_at`; k % 20 = 7 has no KWD/BHD price (lines in those currencies go unchecked);
    k % 50 = 3 also has a future price (valid after the period). `SKU-90001` is a free gift that
    no order line uses. `SKU-OS-<slot>` are the dedicated skus of OVERSOLD scenarios.
    """
    cfg = ctx.cfg
    adjectives = "[" + ", ".join(f"'{a}'" for a in _ADJECTIVES) + "]"
    nouns = "[" + ", ".join(f"'{n}'" for n in _NOUNS) + "]"
    ctx.run(
        f"""
        CREATE TABLE skus AS
        WITH regular AS (
            SELECT k, 'SKU-' || lpad(k::VARCHAR, 5, '0') AS sku, 'regular' AS sku_kind
            FROM range({cfg.n_skus}) AS t(k)
            UNION ALL SELECT 90001, '{GIFT_SKU}', 'gift'
            UNION ALL
            SELECT 100000 + slot, 'SKU-OS-' || lpad(slot::VARCHAR, 8, '0'), 'oversold'
            FROM order_scenario WHERE sku_mode = 'oversold'
        )
        SELECT k, sku, sku_kind,
            CASE WHEN sku_kind = 'gift' THEN 'Gift tote bag, "thank you" edition'
                 ELSE list_extract({adjectives}, (hx(k, 'adj') % {len(_ADJECTIVES)})::INTEGER + 1) || ' '
                   || list_extract({nouns}, (hx(k, 'noun') % {len(_NOUNS)})::INTEGER + 1)
                   || CASE hx(k, 'suffix') % 6 WHEN 0 THEN ', size M' WHEN 1 THEN ' "Limited"'
                           WHEN 2 THEN ' 2-pack' ELSE '' END
            END AS title,
            ((499 + hx(k, 'price') % 25000) / 100.0)::DECIMAL(18, 4) AS base_usd,
            sku_kind = 'regular' AND k % 4 = 1 AS changes_price,
            sku_kind = 'regular' AND k % 20 = 7 AS lacks_gulf,
            sku_kind = 'regular' AND k % 50 = 3 AS has_future_price
        FROM regular
        """
    )
    ctx.run(
        f"""
        CREATE TABLE price_list AS
        WITH initial AS (
            SELECT s.sku, s.title, c.currency, c.exp, round_to(s.base_usd * c.rate, c.exp) AS unit_price,
                   s.changes_price, s.has_future_price
            FROM skus AS s CROSS JOIN currencies AS c
            WHERE NOT (s.lacks_gulf AND c.currency IN ('KWD', 'BHD'))
        )
        SELECT sku, title, currency, exp, unit_price, {ctx.ts("catalog_since")} AS valid_from, 'initial' AS tag
        FROM initial
        UNION ALL
        SELECT sku, title, currency, exp,
               round_to(unit_price * CASE WHEN hx(sku, 'sale') % 3 = 0 THEN 0.85 ELSE 1.10 END, exp),
               {ctx.ts("price_change_at")}, 'change'
        FROM initial WHERE changes_price
        UNION ALL
        SELECT sku, title, currency, exp, round_to(unit_price * 1.05, exp),
               {ctx.ts("end")} + INTERVAL 7 DAY, 'change'
        FROM initial WHERE has_future_price
        """
    )
