"""The rule catalog (seeds/exception_codes.csv) is the one list of exception codes, and it stays true:
each entry names a model that decides it and unit tests that exist; the README, the dbt docs page, the
detection model and the money and delivery helpers all follow it. Fast: no pipeline run."""

from __future__ import annotations

import re
from decimal import Decimal

import duckdb
import pytest
import yaml

from dashboard.money import format_amount
from orchestration.rules import (
    DBT_PROJECT_DIR,
    currency_minor_units,
    delivery_order,
    minor_units,
    minor_units_sql,
    rule_catalog,
    rule_catalog_markdown,
)
from orchestration.settings import PROJECT_ROOT

MODELS = DBT_PROJECT_DIR / "models"
CONTRACTS = PROJECT_ROOT.parent / "shared" / "contracts"


def _model_sql(name: str) -> str:
    (path,) = MODELS.rglob(f"{name}.sql")
    return path.read_text(encoding="utf-8")


def _unit_tests() -> dict[str, str]:
    return {
        test["name"]: test["model"]
        for path in MODELS.rglob("_unit_tests*.yml")
        for test in yaml.safe_load(path.read_text(encoding="utf-8"))["unit_tests"]
    }


def test_every_rule_names_the_model_that_decides_it_and_unit_tests_that_exist() -> None:
    unit_tests = _unit_tests()
    for rule in rule_catalog():
        sql = _model_sql(rule.model)
        model, _, column = rule.computed_in.partition(".")
        if column:
            assert re.search(rf"\bas {column}\b", sql), f"{rule.code}: {model} computes no {column}"
        else:
            assert f"'{rule.code}'" in sql, f"{rule.code}: {model} does not raise it"
        missing = [name for name in rule.pinned_by if name not in unit_tests]
        assert not missing, f"{rule.code}: no dbt unit test named {missing}"


def test_detection_raises_exactly_the_catalog_codes() -> None:
    detection = _model_sql("int_exceptions_detected")
    order_rules = re.findall(r"^\s+\('([A-Z_]+)', 'is_", detection, flags=re.MULTILINE)
    entity_rules = re.findall(r"^\s+'([A-Z_]+)' as exception_code", detection, flags=re.MULTILINE)
    catalog = rule_catalog()
    assert order_rules == [rule.code for rule in catalog if rule.entity_type == "order"]
    assert sorted(entity_rules) == sorted(rule.code for rule in catalog if rule.entity_type != "order")


def test_readme_and_dbt_docs_show_the_catalog_as_it_is() -> None:
    table = rule_catalog_markdown()
    assert table in (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    docs = (DBT_PROJECT_DIR / "seeds" / "rule_catalog.md").read_text(encoding="utf-8")
    assert table in docs, "regenerate with: order-audit rules --markdown"


def test_the_catalog_codes_are_the_contracts_codes() -> None:
    contract = CONTRACTS / "audit_mart.md"
    if not contract.exists():
        pytest.skip("the contracts live beside the repository, in ../shared, on the developers' machines")
    text = contract.read_text(encoding="utf-8")
    assert all(f"`{rule.code}`" in text or rule.code in text for rule in rule_catalog())


def test_one_minor_unit_list_for_sql_python_and_display() -> None:
    units = currency_minor_units()
    assert units["JPY"] == 0 and units["KWD"] == 3 and minor_units("usd") == minor_units(None) == 2
    currencies = [*units, "USD", "EUR"]
    with duckdb.connect() as con:
        from_sql = dict(
            con.execute(
                f"select c, {minor_units_sql('c')} from unnest(?::varchar[]) as t(c)", [currencies]
            ).fetchall()
        )
    assert from_sql == {code: minor_units(code) for code in currencies}
    assert (
        format_amount(Decimal("1.5"), "KWD") == "1.500" and format_amount(Decimal("1500"), "JPY") == "1,500"
    )


def test_the_delivery_order_is_the_one_the_staging_macro_and_gx_use() -> None:
    assert delivery_order() == ("extract_date", "source_file", "line_number")
    macro = (DBT_PROJECT_DIR / "macros" / "delivery.sql").read_text(encoding="utf-8")
    assert "var('delivery_order')" in macro
    suites = (PROJECT_ROOT / "expectations" / "suites" / "reconciliation.yml").read_text(encoding="utf-8")
    assert "(${delivery_order})" in suites and "line_number)" not in suites.replace("${delivery_order})", "")


def test_the_rule_catalog_is_the_only_list_of_codes() -> None:
    """No other source file spells out the codes as a list: code after code, with only separators between
    (code-specific logic, such as the generator's scenarios or a model's amount at risk, names codes one
    at a time and is fine). routing.yml lists codes too, as its rules' data: the routing check validates
    them against the catalog."""
    codes = "|".join(rule.code for rule in rule_catalog())
    run_of_codes = re.compile(rf"(?:\b(?:{codes})\b[\s,'\"\-\[\]()]*){{5,}}")
    sources = [
        *PROJECT_ROOT.glob("orchestration/**/*.py"),
        *PROJECT_ROOT.glob("dashboard/**/*.py"),
        *PROJECT_ROOT.glob("expectations/suites/*.yml"),
        *MODELS.rglob("*.yml"),
        *MODELS.rglob("*.sql"),
        *PROJECT_ROOT.glob("tests/*.py"),
    ]
    lists = {
        str(path.relative_to(PROJECT_ROOT)): match.group(0)[:60]
        for path in sources
        for match in [run_of_codes.search(path.read_text(encoding="utf-8"))]
        if match
    }
    assert lists == {}, f"files that list the exception codes again: {lists}"
