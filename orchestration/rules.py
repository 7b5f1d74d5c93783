"""The project's shared facts, each read from the one file that states it (no Dagster imports here, so
the generator, the dashboard and the tests can use it):

- the rule catalog, `dbt_project/seeds/exception_codes.csv`: every exception code with its entity type,
  severity, default owner team, source system, meaning, where it is computed and the dbt unit tests that
  pin it (dbt builds it as `reference.exception_codes`);
- the currency minor units and the delivery order ("the later delivery wins"), `vars` of
  `dbt_project/dbt_project.yml`, which the dbt macros read too.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"
RULE_CATALOG_FILE = DBT_PROJECT_DIR / "seeds" / "exception_codes.csv"
DBT_PROJECT_FILE = DBT_PROJECT_DIR / "dbt_project.yml"
DEFAULT_MINOR_UNITS = 2


@dataclass(frozen=True)
class Rule:
    code: str
    entity_type: str  # order, payment, movement or stock_position
    severity: str  # error or warning
    owner_team: str  # the default owner; routing.yml may route it elsewhere
    source_system: str  # storefront, psp, wms or catalog
    description: str
    computed_in: str  # `model` or `model.column` where the rule is decided
    pinned_by: tuple[str, ...]  # dbt unit tests of that logic (the generator's ground truth covers all)

    @property
    def model(self) -> str:
        return self.computed_in.split(".")[0]


@cache
def rule_catalog() -> tuple[Rule, ...]:
    with RULE_CATALOG_FILE.open(newline="", encoding="utf-8") as seed:
        return tuple(
            Rule(
                code=row["exception_code"],
                entity_type=row["entity_type"],
                severity=row["severity"],
                owner_team=row["owner_team"],
                source_system=row["source_system"],
                description=row["description"],
                computed_in=row["computed_in"],
                pinned_by=tuple(row["pinned_by"].split()),
            )
            for row in csv.DictReader(seed)
        )


def rule_codes() -> tuple[str, ...]:
    return tuple(rule.code for rule in rule_catalog())


def rules_by_code() -> dict[str, Rule]:
    return {rule.code: rule for rule in rule_catalog()}


def rule_catalog_markdown() -> str:
    """The catalog as the Markdown table that the README and the dbt docs show."""
    lines = [
        "| code | entity | severity | default owner | source | meaning | computed in | pinned by (dbt unit tests) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for rule in rule_catalog():
        tests = ", ".join(f"`{name}`" for name in rule.pinned_by) or "generator ground truth only"
        lines.append(
            f"| `{rule.code}` | {rule.entity_type} | {rule.severity} | {rule.owner_team} | {rule.source_system}"
            f" | {rule.description} | `{rule.computed_in}` | {tests} |"
        )
    return "\n".join(lines) + "\n"


@cache
def dbt_project_vars() -> dict[str, object]:
    """The `vars` of dbt_project.yml, with their defaults."""
    return yaml.safe_load(DBT_PROJECT_FILE.read_text(encoding="utf-8"))["vars"]


@cache
def currency_minor_units() -> dict[str, int]:
    """ISO 4217 minor-unit exponents that are not 2 (extracts.md): {'JPY': 0, 'KWD': 3, ...}."""
    return {str(code): int(units) for code, units in dbt_project_vars()["currency_minor_units"].items()}


def minor_units(currency: str | None) -> int:
    return currency_minor_units().get((currency or "").strip().upper(), DEFAULT_MINOR_UNITS)


def minor_units_sql(currency_sql: str) -> str:
    """A portable SQL CASE giving the minor-unit exponent of `currency_sql`, as the dbt macro does."""
    return _case_by_minor_units(currency_sql, str)


def round_to_minor_units_sql(amount_sql: str, currency_sql: str) -> str:
    """SQL: `amount_sql` rounded half away from zero to the minor unit of `currency_sql`, as the rules
    compare amounts, as DECIMAL(38, 6). Each branch rounds to a constant precision and is cast to that
    one type: left to itself, DuckDB gives branches of DECIMAL(38, 0) and DECIMAL(38, 2) the type
    DECIMAL(38, 0) (no room left to widen), and 189.36 EUR would come out as 189."""
    return _case_by_minor_units(
        currency_sql, lambda units: f"cast(round({amount_sql}, {units}) as decimal(38, 6))"
    )


def _case_by_minor_units(currency_sql: str, expression: Callable[[int], str]) -> str:
    """SQL: CASE over the currency's minor-unit exponent, `expression(exponent)` in each branch (the
    Python twin of the dbt macro `case_by_minor_units`)."""
    branches = "".join(
        f" WHEN {currency_sql} IN ({', '.join(repr(code) for code in codes)}) THEN {expression(units)}"
        for units, codes in _currencies_by_minor_units().items()
    )
    return f"CASE{branches} ELSE {expression(DEFAULT_MINOR_UNITS)} END"


def _currencies_by_minor_units() -> dict[int, list[str]]:
    grouped: dict[int, list[str]] = {}
    for code, units in currency_minor_units().items():
        grouped.setdefault(units, []).append(code)
    return grouped


@cache
def delivery_order() -> tuple[str, ...]:
    """The raw columns that order deliveries of one key, earliest first: the last one wins."""
    return tuple(str(column) for column in dbt_project_vars()["delivery_order"])


@cache
def whitespace_code_points() -> tuple[int, ...]:
    """The characters trimmed off ids (extracts.md: "after trimming surrounding whitespace")."""
    return tuple(int(code_point) for code_point in dbt_project_vars()["whitespace_code_points"])


def trimmed_sql(column_sql: str) -> str:
    """DuckDB SQL: `column_sql` without the whitespace around it, as the dbt macro `trim_whitespace` has it
    (DuckDB's bare trim() keeps tabs and line breaks)."""
    low, high = _plain_code_points()
    plain_ends = " and ".join(
        f"{end} between {low} and {high}"
        for end in (f"ascii({column_sql})", f"ascii(right({column_sql}, 1))")
    )
    return f"(case when {plain_ends} then {column_sql} else trim({column_sql}, {_whitespace_sql()}) end)"


def _whitespace_sql() -> str:
    return " || ".join(f"chr({code_point})" for code_point in whitespace_code_points())


def _plain_code_points() -> tuple[int, int]:
    """The widest range of code points around the printable ASCII letters with no whitespace in it: a value
    that starts and ends inside it needs no trimming (two comparisons a row instead of a trim)."""
    low = max(code_point for code_point in whitespace_code_points() if code_point < ord("A")) + 1
    high = min(code_point for code_point in whitespace_code_points() if code_point > ord("z")) - 1
    return low, high


def blank_sql(column_sql: str) -> str:
    """DuckDB SQL: `column_sql` is missing: null, or nothing but whitespace (a value that starts with a
    letter or digit is decided by one comparison: this runs on every required field of every row)."""
    low, high = _plain_code_points()
    first = f"ascii({column_sql})"
    # CASE, not AND: DuckDB computes both sides of an AND in a projection, and the trim for every row
    return (
        f"(case when {column_sql} is null or {column_sql} = '' then true"
        f" when {first} between {low} and {high} then false else trim({column_sql}, {_whitespace_sql()}) = '' end)"
    )


def trimmed_id_sql(column_sql: str) -> str:
    """DuckDB SQL: an id as the staging models compare it (trimmed; empty is missing), the dbt macro `trimmed_id`."""
    return f"nullif({trimmed_sql(column_sql)}, '')"
