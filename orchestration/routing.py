"""The routing rules file (routing.yml): who owns each exception, its route, priority, SLA and expected outcome.

`load_routing()` reads and validates the file and returns the rules in match order. Every mistake is a
`RoutingError` that names the file, the line and the field, e.g.
`routing.yml:14: rules[1].priority: 'p5' is not one of p1, p2, p3, p4`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from orchestration.rules import rule_codes
from orchestration.settings import Settings

PRIORITIES = ("p1", "p2", "p3", "p4")
SOURCE_SYSTEMS = ("storefront", "psp", "wms", "catalog")
MATCH_KEYS = (
    "exception_code",
    "channel",
    "currency",
    "warehouse_id",
    "source_system",
    "min_amount_at_risk",
    "max_amount_at_risk",
)
RULE_KEYS = ("name", "match", "owner_team", "route", "priority", "resolve_within_hours", "expected_outcome")
REQUIRED_RULE_KEYS = tuple(key for key in RULE_KEYS if key != "match")
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
# The extract contract's pattern (orchestration/ingest/sources.py), not imported: importing the ingest
# package loads Dagster, a second of start-up for `order-audit routing check`.
CURRENCY_PATTERN = r"[A-Z]{3}"
HOURS_PATTERN = re.compile(r"[0-9]{1,6}")
AMOUNT_PATTERN = re.compile(r"[0-9]{1,12}(\.[0-9]{1,6})?")
ENV_VAR_PATTERN = re.compile(r"[A-Z_][A-Z0-9_]{0,127}")
DEFAULT_MAX_LINES_PER_ROUTE = 200
DESTINATION_KEYS = ("route", "webhook_env", "file")


class RoutingError(ValueError):
    """A routing file that cannot be used, with the file, line and field that are wrong."""


@dataclass(frozen=True)
class RoutingRule:
    rule_order: int
    name: str
    owner_team: str
    route: str
    priority: str
    resolve_within_hours: int
    expected_outcome: str
    exception_codes: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()
    currencies: tuple[str, ...] = ()
    warehouse_ids: tuple[str, ...] = ()
    source_systems: tuple[str, ...] = ()
    min_amount_at_risk: Decimal | None = None
    max_amount_at_risk: Decimal | None = None

    @property
    def matches(self) -> str:
        """What the rule matches, in words: `UNDERPAID, OVERPAID; currency EUR; at risk >= 500.00`."""
        parts = [", ".join(self.exception_codes) or "any code"]
        for label, values in (
            ("channel", self.channels),
            ("currency", self.currencies),
            ("warehouse", self.warehouse_ids),
            ("source", self.source_systems),
        ):
            if values:
                parts.append(f"{label} {'/'.join(values)}")
        if self.min_amount_at_risk is not None:
            parts.append(f"at risk >= {self.min_amount_at_risk}")
        if self.max_amount_at_risk is not None:
            parts.append(f"at risk <= {self.max_amount_at_risk}")
        return "; ".join(parts)

    @property
    def is_default(self) -> bool:
        return not (
            self.exception_codes
            or self.channels
            or self.currencies
            or self.warehouse_ids
            or self.source_systems
            or self.min_amount_at_risk is not None
            or self.max_amount_at_risk is not None
        )


@dataclass(frozen=True)
class Destination:
    """Where a route's digests go: a Slack-compatible webhook whose URL is read from the environment variable
    `webhook_env` when a digest is sent (no URL is ever written in the file), or a folder of JSON Lines files
    (`<folder>/<route>.jsonl`; a relative folder is beside the warehouse file)."""

    route: str  # a route name, or `*` for every route not named
    webhook_env: str | None = None
    folder: Path | None = None

    @property
    def description(self) -> str:
        return f"webhook ${self.webhook_env}" if self.webhook_env else f"file {self.folder}/<route>.jsonl"


@dataclass(frozen=True)
class Notifications:
    destinations: tuple[Destination, ...] = ()
    max_lines_per_route: int = DEFAULT_MAX_LINES_PER_ROUTE

    def destination_of(self, route: str) -> Destination | None:
        named = {d.route: d for d in self.destinations}
        return named.get(route) or named.get("*")


@dataclass(frozen=True)
class Routing:
    path: Path
    rules: tuple[RoutingRule, ...] = field(default=())
    notifications: Notifications = field(default_factory=lambda: Notifications())

    @property
    def routes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(rule.route for rule in self.rules))


def routing_path() -> Path:
    return Settings.from_env().routing_file


def known_exception_codes() -> tuple[str, ...]:
    return tuple(sorted(rule_codes()))


class _Checker:
    def __init__(self, path: Path, known_codes: tuple[str, ...]) -> None:
        self.path = path
        self.known_codes = known_codes

    def fail(self, node: yaml.Node, where: str, message: str) -> RoutingError:
        return RoutingError(f"{self.path}:{node.start_mark.line + 1}: {where}: {message}")

    def mapping(self, node: yaml.Node, where: str, allowed: tuple[str, ...]) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            raise self.fail(node, where, "must be a mapping of keys to values")
        found: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key not in allowed:
                raise self.fail(key_node, where, f"unknown key {key!r}; allowed: {', '.join(allowed)}")
            if key in found:
                raise self.fail(key_node, f"{where}.{key}", "is given twice")
            found[key] = value_node
        return found

    def text(self, node: yaml.Node, where: str) -> str:
        if (
            not isinstance(node, yaml.ScalarNode)
            or node.tag != "tag:yaml.org,2002:str"
            or not node.value.strip()
        ):
            raise self.fail(node, where, "must be a non-empty string")
        return node.value.strip()

    def name(self, node: yaml.Node, where: str) -> str:
        value = self.text(node, where)
        if not NAME_PATTERN.fullmatch(value):
            raise self.fail(
                node, where, f"{value!r} must be lower-case letters, digits, '-' or '_' (at most 63)"
            )
        return value

    def one_of(self, node: yaml.Node, where: str, values: tuple[str, ...]) -> str:
        value = self.text(node, where)
        if value not in values:
            raise self.fail(node, where, f"{value!r} is not one of {', '.join(values)}")
        return value

    def whole(self, node: yaml.Node, where: str, unit: str = "hours") -> int:
        # Plain decimal digits only: YAML 1.1 also reads 0x18, 0o17 and 1:30 as integers.
        if (
            not isinstance(node, yaml.ScalarNode)
            or not HOURS_PATTERN.fullmatch(node.value)
            or int(node.value) <= 0
        ):
            raise self.fail(
                node, where, f"{getattr(node, 'value', node)!r} must be a positive whole number of {unit}"
            )
        return int(node.value)

    def sentence(self, node: yaml.Node, where: str) -> str:
        value = self.text(node, where)
        if "\n" in value or not value.endswith("."):
            raise self.fail(node, where, "must be one sentence on one line, ending with '.'")
        return value

    def values(self, node: yaml.Node, where: str) -> list[tuple[yaml.Node, str]]:
        items = node.value if isinstance(node, yaml.SequenceNode) else [node]
        if not items:
            raise self.fail(node, where, "must list at least one value")
        return [(item, self.text(item, where)) for item in items]

    def amount(self, node: yaml.Node, where: str) -> Decimal:
        value = node.value.strip() if isinstance(node, yaml.ScalarNode) else ""
        if not AMOUNT_PATTERN.fullmatch(value):
            raise self.fail(node, where, f'{value!r} must be a non-negative decimal such as "500.00"')
        return Decimal(value)

    def match(self, node: yaml.Node, where: str) -> dict[str, Any]:
        keys = self.mapping(node, where, MATCH_KEYS)
        if not keys:
            raise self.fail(node, where, "is empty; leave `match` out for the default rule")
        result: dict[str, Any] = {}
        for key, value_node in keys.items():
            at = f"{where}.{key}"
            if key in ("min_amount_at_risk", "max_amount_at_risk"):
                result[key] = self.amount(value_node, at)
                continue
            listed = self.values(value_node, at)
            for item, value in listed:
                if key == "exception_code" and value not in self.known_codes:
                    raise self.fail(
                        item,
                        at,
                        f"{value!r} is not an exception code (see dbt_project/seeds/exception_codes.csv)",
                    )
                if key == "source_system" and value not in SOURCE_SYSTEMS:
                    raise self.fail(item, at, f"{value!r} is not one of {', '.join(SOURCE_SYSTEMS)}")
                if key == "currency" and not re.fullmatch(CURRENCY_PATTERN, value):
                    raise self.fail(item, at, f"{value!r} is not a 3-letter upper-case ISO 4217 code")
            result[key] = tuple(dict.fromkeys(value for _, value in listed))
        low, high = result.get("min_amount_at_risk"), result.get("max_amount_at_risk")
        if low is not None and high is not None and low > high:
            raise self.fail(
                keys["max_amount_at_risk"],
                where,
                f"min_amount_at_risk {low} is above max_amount_at_risk {high}",
            )
        return result

    def rule(self, node: yaml.Node, index: int) -> RoutingRule:
        where = f"rules[{index}]"
        keys = self.mapping(node, where, RULE_KEYS)
        missing = [key for key in REQUIRED_RULE_KEYS if key not in keys]
        if missing:
            raise self.fail(node, where, f"missing {', '.join(missing)}")
        match = self.match(keys["match"], f"{where}.match") if "match" in keys else {}
        return RoutingRule(
            rule_order=index + 1,
            name=self.name(keys["name"], f"{where}.name"),
            owner_team=self.name(keys["owner_team"], f"{where}.owner_team"),
            route=self.name(keys["route"], f"{where}.route"),
            priority=self.one_of(keys["priority"], f"{where}.priority", PRIORITIES),
            resolve_within_hours=self.whole(keys["resolve_within_hours"], f"{where}.resolve_within_hours"),
            expected_outcome=self.sentence(keys["expected_outcome"], f"{where}.expected_outcome"),
            exception_codes=match.get("exception_code", ()),
            channels=match.get("channel", ()),
            currencies=match.get("currency", ()),
            warehouse_ids=match.get("warehouse_id", ()),
            source_systems=match.get("source_system", ()),
            min_amount_at_risk=match.get("min_amount_at_risk"),
            max_amount_at_risk=match.get("max_amount_at_risk"),
        )

    def destination(self, node: yaml.Node, index: int, routes: tuple[str, ...]) -> Destination:
        where = f"notifications.destinations[{index}]"
        keys = self.mapping(node, where, DESTINATION_KEYS)
        if "route" not in keys:
            raise self.fail(node, where, "missing route (a route of the rules, or '*' for every other route)")
        route = self.text(keys["route"], f"{where}.route")
        if route != "*" and route not in routes:
            raise self.fail(
                keys["route"], f"{where}.route", f"{route!r} is not a route of any rule ({', '.join(routes)})"
            )
        if ("webhook_env" in keys) == ("file" in keys):
            raise self.fail(
                node, where, "give exactly one of webhook_env (a variable holding the URL) or file"
            )
        if "webhook_env" in keys:
            variable = self.text(keys["webhook_env"], f"{where}.webhook_env")
            if not ENV_VAR_PATTERN.fullmatch(variable):
                raise self.fail(
                    keys["webhook_env"],
                    f"{where}.webhook_env",
                    f"{variable!r} must be the NAME of an environment variable (upper-case), never a URL",
                )
            return Destination(route, webhook_env=variable)
        return Destination(route, folder=Path(self.text(keys["file"], f"{where}.file")))

    def notifications(self, node: yaml.Node, routes: tuple[str, ...]) -> Notifications:
        keys = self.mapping(node, "notifications", ("destinations", "max_lines_per_route"))
        limit = DEFAULT_MAX_LINES_PER_ROUTE
        if "max_lines_per_route" in keys:
            limit = self.whole(keys["max_lines_per_route"], "notifications.max_lines_per_route", "lines")
        listed = keys.get("destinations")
        if listed is None:
            return Notifications((), limit)
        if not isinstance(listed, yaml.SequenceNode):
            raise self.fail(listed, "notifications.destinations", "must be a list of destinations")
        destinations = [self.destination(item, index, routes) for index, item in enumerate(listed.value)]
        seen: dict[str, int] = {}
        for index, (destination, item) in enumerate(zip(destinations, listed.value, strict=True)):
            if destination.route in seen:
                raise self.fail(
                    item,
                    f"notifications.destinations[{index}].route",
                    f"{destination.route!r} is also the route of destinations[{seen[destination.route]}]",
                )
            seen[destination.route] = index
        return Notifications(tuple(destinations), limit)

    def routing(self, root: yaml.Node | None) -> Routing:
        if root is None:
            raise RoutingError(f"{self.path}:1: the file is empty; it needs a `rules:` list")
        top = self.mapping(root, "file", ("rules", "notifications"))
        rules_node = top.get("rules")
        if not isinstance(rules_node, yaml.SequenceNode) or not rules_node.value:
            raise self.fail(rules_node or root, "rules", "must be a non-empty list of rules")
        rules = [self.rule(node, index) for index, node in enumerate(rules_node.value)]
        seen: dict[str, int] = {}
        for index, (rule, node) in enumerate(zip(rules, rules_node.value, strict=True)):
            if rule.name in seen:
                raise self.fail(
                    node,
                    f"rules[{index}].name",
                    f"{rule.name!r} is also the name of rules[{seen[rule.name]}]",
                )
            seen[rule.name] = index
            if rule.is_default and index < len(rules) - 1:
                raise self.fail(
                    node,
                    f"rules[{index}]",
                    "has no `match`, so it would catch everything: only the last rule may",
                )
        if not rules[-1].is_default:
            raise self.fail(
                rules_node.value[-1],
                f"rules[{len(rules) - 1}]",
                "the last rule must be the default: leave out its `match`",
            )
        routes = tuple(dict.fromkeys(rule.route for rule in rules))
        notifications = (
            self.notifications(top["notifications"], routes) if "notifications" in top else Notifications()
        )
        return Routing(self.path, tuple(rules), notifications)


def parse_routing(text: str, path: Path, known_codes: tuple[str, ...] | None = None) -> Routing:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        line = error.problem_mark.line + 1 if error.problem_mark else 1
        raise RoutingError(f"{path}:{line}: not valid YAML: {error.problem}") from error
    return _Checker(path, known_codes if known_codes is not None else known_exception_codes()).routing(root)


def load_routing(path: Path | None = None) -> Routing:
    path = path or routing_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise RoutingError(
            f"{path}: no routing file there (set ORDER_AUDIT_ROUTING or restore routing.yml)"
        ) from error
    except UnicodeDecodeError as error:
        raise RoutingError(f"{path}: not UTF-8 text") from error
    return parse_routing(text, path)
