"""The routing rules file: the shipped one is valid and agrees with the contract; every mistake names its line."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from orchestration.routing import RoutingError, RoutingRule, load_routing, parse_routing, routing_path
from orchestration.rules import rule_catalog
from orchestration.settings import PROJECT_ROOT

VALID = """\
rules:
  - name: big-money
    match:
      exception_code: [UNDERPAID, OVERPAID]
      currency: EUR
      min_amount_at_risk: "500.00"
    owner_team: finance
    route: finance-escalations
    priority: p1
    resolve_within_hours: 24
    expected_outcome: Refund or collect the difference today.
  - name: default
    owner_team: ecommerce
    route: audit-triage
    priority: p3
    resolve_within_hours: 72
    expected_outcome: Route it.
"""


def _parse(text: str) -> list[RoutingRule]:
    return list(parse_routing(text, Path("routing.yml")).rules)


def _error(text: str) -> str:
    with pytest.raises(RoutingError) as caught:
        _parse(text)
    return str(caught.value)


def _first_match(rules: list[RoutingRule], code: str) -> RoutingRule:
    """The rule an exception of `code` with no money at risk and no other attributes gets."""
    return next(
        rule
        for rule in rules
        if (not rule.exception_codes or code in rule.exception_codes)
        and not (rule.channels or rule.currencies or rule.warehouse_ids or rule.source_systems)
        and (rule.min_amount_at_risk is None or rule.min_amount_at_risk <= 0)
    )


def test_the_shipped_rules_are_valid_and_give_each_code_its_contract_owner() -> None:
    rules = list(load_routing(PROJECT_ROOT / "routing.yml").rules)
    owners = {rule.code: rule.owner_team for rule in rule_catalog()}
    assert len(owners) == 20
    assert {code: _first_match(rules, code).owner_team for code in owners} == owners
    assert rules[-1].is_default and [rule.rule_order for rule in rules] == list(range(1, len(rules) + 1))


def test_a_valid_file_is_read_in_match_order_with_exact_amounts() -> None:
    big, default = _parse(VALID)
    assert (big.name, big.exception_codes, big.currencies) == (
        "big-money",
        ("UNDERPAID", "OVERPAID"),
        ("EUR",),
    )
    assert big.min_amount_at_risk == Decimal("500.00") and big.max_amount_at_risk is None
    assert (big.priority, big.resolve_within_hours, big.route) == ("p1", 24, "finance-escalations")
    assert default.is_default and not big.is_default


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "priority: p1",
            "priority: p5",
            "routing.yml:9: rules[0].priority: 'p5' is not one of p1, p2, p3, p4",
        ),
        ("priority: p1", "priority: p1\n    colour: red", "routing.yml:10: rules[0]: unknown key 'colour'"),
        (
            "[UNDERPAID, OVERPAID]",
            "[UNDERPAID, OVERPAYED]",
            "routing.yml:4: rules[0].match.exception_code: 'OVERPAYED' is not an exception code",
        ),
        ("currency: EUR", "currency: eur", "routing.yml:5: rules[0].match.currency: 'eur' is not a 3-letter"),
        (
            '"500.00"',
            '"-5"',
            "routing.yml:6: rules[0].match.min_amount_at_risk: '-5' must be a non-negative decimal",
        ),
        (
            'min_amount_at_risk: "500.00"',
            'min_amount_at_risk: "500"\n      max_amount_at_risk: "100"',
            "routing.yml:7: rules[0].match: min_amount_at_risk 500 is above max_amount_at_risk 100",
        ),
        (
            "resolve_within_hours: 24",
            "resolve_within_hours: 1.5",
            "routing.yml:10: rules[0].resolve_within_hours: '1.5' must be a positive whole number of hours",
        ),
        (
            "resolve_within_hours: 24",
            "resolve_within_hours: 0x18",
            "routing.yml:10: rules[0].resolve_within_hours: '0x18' must be a positive whole number of hours",
        ),
        (
            "resolve_within_hours: 24",
            "resolve_within_hours: 1:30",
            "routing.yml:10: rules[0].resolve_within_hours: '1:30' must be a positive whole number of hours",
        ),
        (
            "resolve_within_hours: 24",
            "resolve_within_hours: 0",
            "rules[0].resolve_within_hours: '0' must be a positive",
        ),
        (
            "difference today.",
            "difference today",
            "routing.yml:11: rules[0].expected_outcome: must be one sentence",
        ),
        (
            "route: finance-escalations",
            "route: Finance Escalations",
            "routing.yml:8: rules[0].route: 'Finance Escalations' must be lower-case",
        ),
        ("route: finance-escalations", "", "routing.yml:2: rules[0]: missing route"),
        (
            "name: default",
            "name: big-money",
            "routing.yml:12: rules[1].name: 'big-money' is also the name of rules[0]",
        ),
        (
            "    priority: p1\n",
            "    priority: p1\n    priority: p2\n",
            "routing.yml:10: rules[0].priority: is given twice",
        ),
        (
            '    match:\n      exception_code: [UNDERPAID, OVERPAID]\n      currency: EUR\n      min_amount_at_risk: "500.00"\n',
            "",
            "routing.yml:2: rules[0]: has no `match`, so it would catch everything: only the last rule may",
        ),
        (
            '    match:\n      exception_code: [UNDERPAID, OVERPAID]\n      currency: EUR\n      min_amount_at_risk: "500.00"\n',
            "    match: {}\n",
            "routing.yml:3: rules[0].match: is empty",
        ),
        ("rules:", "rulez:", "routing.yml:1: file: unknown key 'rulez'"),
        ("  - name: big-money", "  - name: [big-money", "routing.yml:3: not valid YAML"),
    ],
)
def test_every_mistake_names_the_line_and_field(old: str, new: str, expected: str) -> None:
    assert old in VALID
    assert expected in _error(VALID.replace(old, new, 1))


def test_the_last_rule_must_be_the_default() -> None:
    text = VALID.replace("  - name: default\n", "  - name: default\n    match: {channel: web}\n")
    assert "routing.yml:12: rules[1]: the last rule must be the default: leave out its `match`" in _error(
        text
    )


def test_an_empty_or_missing_file_is_refused(tmp_path: Path) -> None:
    assert "the file is empty" in _error("")
    assert "routing.yml:1: rules: must be a non-empty list of rules" in _error("rules: []\n")
    with pytest.raises(RoutingError, match="no routing file there"):
        load_routing(tmp_path / "absent.yml")


def test_the_environment_variable_chooses_the_file_and_the_cli_reports_its_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "routing.yml"
    bad.write_text(VALID.replace("priority: p3", "priority: urgent"), encoding="utf-8")
    monkeypatch.setenv("ORDER_AUDIT_ROUTING", str(bad))
    assert routing_path() == bad
    cli = [sys.executable, "-m", "orchestration.cli", "routing", "check"]
    result = subprocess.run(cli, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{bad}:15: rules[1].priority: 'urgent' is not one of p1, p2, p3, p4" in result.stderr
    bad.write_text(VALID, encoding="utf-8")
    result = subprocess.run(cli, cwd=PROJECT_ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert f"{bad}: 2 rules, 2 routes, valid" in result.stdout
    assert "big-money" in result.stdout and "any code" in result.stdout
    assert "UNDERPAID, OVERPAID; currency EUR; at risk >= 500.00" in result.stdout


NOTIFICATIONS = """\
notifications:
  max_lines_per_route: 50
  destinations:
    - route: finance-escalations
      webhook_env: ORDER_AUDIT_WEBHOOK_FINANCE
    - route: "*"
      file: notifications
"""


def test_notification_destinations_are_read_and_checked() -> None:
    routing = parse_routing(VALID + NOTIFICATIONS, Path("routing.yml"))
    notifications = routing.notifications
    assert notifications.max_lines_per_route == 50
    assert notifications.destination_of("finance-escalations").webhook_env == "ORDER_AUDIT_WEBHOOK_FINANCE"  # type: ignore[union-attr]
    assert notifications.destination_of("audit-triage").folder == Path("notifications")  # type: ignore[union-attr]
    for old, new, expected in (
        (
            "webhook_env: ORDER_AUDIT_WEBHOOK_FINANCE",
            "webhook_env: https://hooks.example/T000",
            "routing.yml:22: notifications.destinations[0].webhook_env: 'https://hooks.example/T000' must be the"
            " NAME of an environment variable",
        ),
        (
            "route: finance-escalations\n      webhook",
            "route: finance\n      webhook",
            "routing.yml:21: notifications.destinations[0].route: 'finance' is not a route of any rule",
        ),
        (
            "file: notifications",
            "file: notifications\n      webhook_env: HOOK",
            "routing.yml:23: notifications.destinations[1]: give exactly one of webhook_env",
        ),
        ("max_lines_per_route: 50", "max_lines_per_route: 0", "must be a positive whole number of lines"),
        ('route: "*"', "route: finance-escalations", "is also the route of destinations[0]"),
    ):
        assert old in VALID + NOTIFICATIONS, old
        assert expected in _error((VALID + NOTIFICATIONS).replace(old, new, 1)), expected
