"""Read the reviewable suite files under `expectations/suites/` into expectation specs.

Each file is a GX 1.x ExpectationSuite written as YAML (so SQL stays readable in a diff): `name`,
`notes`, `meta` and `expectations` of
`type` / `kwargs` / `meta` / `description` / `severity`), with a few keys of our own in `meta`:

- suite `meta.batches`: named query batches, `{"<name>": {"query": "select ...", "asset": [...]}}`;
- expectation `meta.name` (required, unique over all suites: it names the Dagster asset check
  `gx_<name>` and the row in `quality.validation_results`);
- expectation `meta.protects` (required): the rule or promise it protects that no loader rule, dbt
  contract or dbt test already does; the Dagster asset check's description;
- expectation `meta.batch`: the table it runs on (`raw.payments`, `main.fact_order_audit`; `{batch}`
  in a query is that table) or `query:<name>` for a suite batch;
- expectation `meta.asset` (optional): the Dagster asset key the check guards; by default the
  batch's table (`raw.x` -> `["raw", "x"]`, `main.x` -> `["x"]`) or the query batch's `asset`;
- expectation `meta.matrix` (optional): a list of parameter sets; the expectation is repeated once
  per set, with `${key}` in its name, batch, description and string kwargs replaced by the set's
  values (a set's `asset` key, if any, sets the asset).

`${name}` placeholders left in queries are settings (see `config.ThresholdLimits.sql_parameters`);
`{"$PARAMETER": name}` kwargs are GX suite parameters, resolved by GX at validation time.
`severity` is GX's own: `critical` (a blocking Dagster check of severity ERROR) or `warning` (WARN).
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from orchestration.quality.config import SUITES_DIR

SEVERITIES = {"critical": "ERROR", "warning": "WARN"}


@dataclass(frozen=True)
class Batch:
    """What one GX batch reads: a warehouse table or a named query."""

    name: str
    table: str | None = None
    query: str | None = None

    @property
    def schema_and_table(self) -> tuple[str, str]:
        assert self.table is not None
        schema, _, table = self.table.rpartition(".")
        return (schema or "main", table)


@dataclass(frozen=True)
class ExpectationSpec:
    suite: str
    name: str
    type: str
    kwargs: Mapping[str, Any]
    batch: Batch
    asset: tuple[str, ...]
    severity: str
    description: str
    notes: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def protects(self) -> str:
        """The rule or promise this expectation protects that nothing earlier does (`meta.protects`)."""
        return str(self.meta["protects"])

    @property
    def check_name(self) -> str:
        return f"gx_{self.name}"

    @property
    def stage(self) -> str:
        """`raw` checks guard the raw assets (run before dbt); `mart` checks run after dbt."""
        return "raw" if self.asset[0] == "raw" else "mart"

    @property
    def asset_string(self) -> str:
        return "/".join(self.asset)

    @property
    def dagster_severity(self) -> str:
        return SEVERITIES[self.severity]

    @property
    def blocking(self) -> bool:
        return self.severity == "critical"

    def gx_configuration(self, sql_parameters: Mapping[str, str]) -> dict[str, Any]:
        """The expectation as GX configuration, with `${name}` settings rendered into its strings."""
        return {
            "type": self.type,
            "kwargs": _render(self.kwargs, sql_parameters, strict=True),
            "meta": {**self.meta, "name": self.name, "batch": self.batch.name, "asset": list(self.asset)},
            "description": self.description,
            "severity": self.severity,
            "notes": self.notes,
        }


def _render(value: Any, parameters: Mapping[str, str], *, strict: bool) -> Any:
    if isinstance(value, str):
        template = string.Template(value)
        return template.substitute(parameters) if strict else template.safe_substitute(parameters)
    if isinstance(value, Mapping):
        return {k: _render(v, parameters, strict=strict) for k, v in value.items()}
    if isinstance(value, list):
        return [_render(v, parameters, strict=strict) for v in value]
    return value


def _default_asset(batch_name: str) -> tuple[str, ...]:
    schema, _, table = batch_name.rpartition(".")
    if schema == "raw":
        return ("raw", table)
    if schema in ("", "main"):
        return (table,)
    raise ValueError(f"batch {batch_name!r}: give meta.asset, no default asset for schema {schema!r}")


def _expand(
    suite: str, raw: Mapping[str, Any], batches: Mapping[str, Mapping[str, Any]]
) -> list[ExpectationSpec]:
    meta = dict(raw.get("meta") or {})
    matrix: list[Mapping[str, Any]] = meta.pop("matrix", None) or [{}]
    specs = []
    for parameters in matrix:
        values = {k: str(v) for k, v in parameters.items() if k != "asset"}
        name = _render(meta["name"], values, strict=True)
        batch_name = _render(meta["batch"], values, strict=True)
        if batch_name.startswith("query:"):
            declared = batches[batch_name.removeprefix("query:")]
            batch = Batch(name=batch_name, query=declared["query"])
            default_asset: tuple[str, ...] = tuple(declared["asset"])
        else:
            batch = Batch(name=batch_name, table=batch_name)
            default_asset = _default_asset(batch_name)
        asset = parameters.get("asset") or meta.get("asset") or default_asset
        severity = raw.get("severity", "critical")
        if not str(meta.get("protects") or "").strip():
            raise ValueError(f"{suite}.{name}: meta.protects must say what this expectation protects")
        if severity not in SEVERITIES:
            raise ValueError(f"{suite}.{name}: severity must be one of {sorted(SEVERITIES)}")
        specs.append(
            ExpectationSpec(
                suite=suite,
                name=name,
                type=raw["type"],
                kwargs=_render(raw.get("kwargs", {}), values, strict=False),
                batch=batch,
                asset=tuple(asset),
                severity=severity,
                description=_render(raw.get("description", ""), values, strict=False),
                notes=raw.get("notes"),
                meta={k: v for k, v in meta.items() if k not in ("name", "batch", "asset")},
            )
        )
    return specs


def load_suite(path: Path) -> list[ExpectationSpec]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    suite = document["name"]
    batches = (document.get("meta") or {}).get("batches", {})
    return [spec for raw in document["expectations"] for spec in _expand(suite, raw, batches)]


def load_specs(suites_dir: Path = SUITES_DIR, *, only: Iterable[str] | None = None) -> list[ExpectationSpec]:
    """Every expectation of every suite file, in file order; `only`: keep these names."""
    specs = [spec for path in sorted(suites_dir.glob("*.yml")) for spec in load_suite(path)]
    seen: set[str] = set()
    for spec in specs:
        if spec.name in seen:
            raise ValueError(f"expectation name {spec.name!r} is used twice in {suites_dir}")
        seen.add(spec.name)
    if only is not None:
        wanted = set(only)
        unknown = wanted - seen
        if unknown:
            raise ValueError(f"unknown expectation names: {sorted(unknown)}")
        specs = [spec for spec in specs if spec.name in wanted]
    return specs
