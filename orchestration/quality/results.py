"""One validation run's outcome: per-expectation results, their JSON file and the warehouse table.

`quality.validation_results` keeps every expectation result of every run (append only):

| column | type | meaning |
|---|---|---|
| run_id | varchar | Dagster run id (or the id given to `python -m orchestration.quality.run`) |
| stage | varchar | `raw` (before dbt) or `mart` (after dbt) |
| suite | varchar | suite file name, e.g. `reconciliation` |
| expectation | varchar | the expectation's unique name (the Dagster check is `gx_<name>`) |
| expectation_type | varchar | GX expectation type |
| asset | varchar | guarded Dagster asset key, `/`-joined (`raw/payments`, `fact_order_audit`) |
| severity | varchar | `ERROR` (blocking) or `WARN` |
| success | boolean | false too when GX raised while computing it |
| observed_value | varchar | JSON text of GX's observed value (or element/unexpected counts) |
| unexpected_count | bigint | unexpected rows (null for aggregate expectations) |
| unexpected_sample | varchar | JSON list of at most 10 unexpected rows or values |
| exception | varchar | GX's error message when the expectation could not be computed |
| validated_at | timestamp | UTC time the run finished |
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import duckdb

from orchestration.duck import table_exists
from orchestration.quality.suites import ExpectationSpec

SAMPLE_SIZE = 10

RESULTS_TABLE = "quality.validation_results"
RESULTS_DDL = f"""
create table if not exists {RESULTS_TABLE} (
    run_id varchar not null,
    stage varchar not null,
    suite varchar not null,
    expectation varchar not null,
    expectation_type varchar not null,
    asset varchar not null,
    severity varchar not null,
    success boolean not null,
    observed_value varchar,
    unexpected_count bigint,
    unexpected_sample varchar,
    exception varchar,
    validated_at timestamp not null
)
"""


def jsonable(value: Any) -> Any:
    """Plain JSON values: exact decimals as strings, timestamps in ISO 8601, non-finite floats as text."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


@dataclass
class ExpectationOutcome:
    suite: str
    expectation: str
    expectation_type: str
    asset: list[str]
    batch: str
    severity: str
    success: bool
    observed_value: Any = None
    unexpected_count: int | None = None
    unexpected_sample: list[Any] = field(default_factory=list)
    exception: str | None = None
    description: str = ""

    @property
    def check_name(self) -> str:
        return f"gx_{self.expectation}"


@dataclass
class ValidationReport:
    run_id: str
    stage: str
    warehouse: str
    started_at: str
    finished_at: str
    parameters: dict[str, Any]
    data_docs: str | None
    outcomes: list[ExpectationOutcome]

    @property
    def success(self) -> bool:
        return all(o.success for o in self.outcomes if o.severity == "ERROR")

    def to_json(self) -> str:
        return json.dumps(jsonable(asdict(self)), indent=2, sort_keys=False)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> ValidationReport:
        document = json.loads(path.read_text(encoding="utf-8"))
        outcomes = [ExpectationOutcome(**o) for o in document.pop("outcomes")]
        return cls(**document, outcomes=outcomes)

    def by_name(self) -> dict[str, ExpectationOutcome]:
        return {o.expectation: o for o in self.outcomes}


def result_rows(report: ValidationReport) -> Sequence[tuple[Any, ...]]:
    validated_at = datetime.fromisoformat(report.finished_at).replace(tzinfo=None)
    return [
        (
            report.run_id,
            report.stage,
            o.suite,
            o.expectation,
            o.expectation_type,
            "/".join(o.asset),
            o.severity,
            o.success,
            None if o.observed_value is None else json.dumps(jsonable(o.observed_value)),
            o.unexpected_count,
            json.dumps(jsonable(o.unexpected_sample)),
            o.exception,
            validated_at,
        )
        for o in report.outcomes
    ]


def append_results(con: duckdb.DuckDBPyConnection, reports: Iterable[ValidationReport]) -> int:
    """Append every expectation result to quality.validation_results; returns the rows written."""
    rows = [row for report in reports for row in result_rows(report)]
    con.execute("create schema if not exists quality")
    con.execute(RESULTS_DDL)
    if rows:
        con.executemany(f"insert into {RESULTS_TABLE} values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    return len(rows)


def all_passed_since(con: duckdb.DuckDBPyConnection, expectations: Sequence[str]) -> datetime | None:
    """The latest time by which each of `expectations` had passed at least once (None: one never has).

    Data loaded before it has been validated by every one of them.
    """
    if not expectations or not table_exists(con, *RESULTS_TABLE.split(".")):
        return None
    never_passed, passed_since = con.execute(
        f"""
        with last_passes as (
            select wanted.expectation, max(results.validated_at) filter (where results.success) as passed_at
            from (select unnest(?::varchar[]) as expectation) as wanted
            left join {RESULTS_TABLE} as results on results.expectation = wanted.expectation
            group by wanted.expectation
        )
        select count(*) filter (where passed_at is null), min(passed_at) from last_passes
        """,
        [list(expectations)],
    ).fetchall()[0]
    return None if never_passed else passed_since


def outcome_for(spec: ExpectationSpec, *, success: bool, **result: Any) -> ExpectationOutcome:
    """An outcome carrying the expectation's identity from its spec, plus what the validation found."""
    return ExpectationOutcome(
        suite=spec.suite,
        expectation=spec.name,
        expectation_type=spec.type,
        asset=list(spec.asset),
        batch=spec.batch.name,
        severity=spec.dagster_severity,
        success=success,
        description=spec.description,
        **result,
    )


def failed(spec: ExpectationSpec, error: str) -> ExpectationOutcome:
    return outcome_for(spec, success=False, exception=error)
