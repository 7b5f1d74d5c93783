"""Run expectation specs with Great Expectations against a DuckDB warehouse opened read-only.

An ephemeral GX context (nothing written but the Data Docs) gets one SQL data source on the
warehouse file (`duckdb:////abs/path?access_mode=read_only`), one batch per table or query the specs
name and one GX suite per (suite file, batch, kind). Column-level expectations run in a SUMMARY
checkpoint without unexpected values (`partial_unexpected_count` 0: GX's value query becomes a
`LIMIT 0` that reads nothing, where a passing check used to scan its table a second time for none);
those that found unexpected values run again in a `<suite>.samples` suite for a sample of them. SQL
`unexpected_rows_expectation`s run in a COMPLETE checkpoint (the only format that returns their rows).

GX's SQL connection pool keeps the file open until the process ends, so callers that share the
warehouse with writers run this in a short-lived process (`python -m orchestration.quality.run`).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import string
import warnings
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import great_expectations as gx  # noqa: E402
from great_expectations.data_context import AbstractDataContext  # noqa: E402
from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: E402
from great_expectations.expectations.expectation_configuration import ExpectationConfiguration  # noqa: E402

from orchestration.quality import docs_templates, gx_patch, outcomes  # noqa: E402
from orchestration.quality.docs import SUMMARY_FILE  # noqa: E402
from orchestration.quality.results import SAMPLE_SIZE, ExpectationOutcome, ValidationReport  # noqa: E402
from orchestration.quality.suites import Batch, ExpectationSpec  # noqa: E402

logger = logging.getLogger(__name__)

DATASOURCE = "warehouse"
DOCS_SITE = "order_audit"
SQL_KIND, COLUMN_KIND = "sql", "columns"
MANIFEST_TABLE = "load_manifest"
RESULT_FORMATS = {
    COLUMN_KIND: {"result_format": "SUMMARY", "partial_unexpected_count": 0},
    SQL_KIND: {"result_format": "COMPLETE"},
}
SAMPLES_KIND = "samples"
SAMPLES_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": SAMPLE_SIZE}


def read_only_url(warehouse: Path) -> str:
    return f"duckdb:///{warehouse.resolve()}?access_mode=read_only"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", text).strip("_")


ALL_ROWS, NEW_LOADS, NEW_FILES = "all_rows", "new_loads", "new_files"


@dataclass(frozen=True)
class _Group:
    suite: str
    batch: Batch
    kind: str
    scope: str = ALL_ROWS

    @property
    def batch_key(self) -> str:
        return self.batch.name if self.scope == ALL_ROWS else f"{self.batch.name}.{self.scope}"

    @property
    def gx_suite_name(self) -> str:
        name = f"{self.suite}.{self.batch_key.removeprefix('query:')}"
        return f"{name}.sql" if self.kind == SQL_KIND else name


def _kind(spec: ExpectationSpec) -> str:
    return SQL_KIND if spec.type == "unexpected_rows_expectation" else COLUMN_KIND


def is_row_local(spec: ExpectationSpec) -> bool:
    """Whether each row passes or fails on its own values (so old rows need not be read again)."""
    return (
        spec.type.startswith("expect_column_values_to_") and spec.type != "expect_column_values_to_be_unique"
    )


def is_per_file(spec: ExpectationSpec) -> bool:
    """Whether the expectation compares a row only with rows of its own file, or with whole tables.

    Compound uniqueness keyed by `source_file` (a duplicate group lies within one file), and SQL
    expectations on a raw table, whose `{batch}` rows are judged on their own, against rows of their
    file, or against rows the loader wrote from the same file in the same transaction (raw.orders
    and raw.order_lines); any other SQL expectation needs `raw_scope: all_rows` (expectations/README.md).
    """
    if spec.type == "expect_compound_columns_to_be_unique":
        return "source_file" in spec.kwargs.get("column_list", ())
    return spec.type == "unexpected_rows_expectation"


def scopable(batch: Batch) -> bool:
    """A raw landing table (not the manifest): its rows can be read per load."""
    return (
        batch.table is not None
        and batch.schema_and_table[0] == "raw"
        and batch.schema_and_table[1] != MANIFEST_TABLE
    )


def raw_scope(spec: ExpectationSpec) -> str:
    """Which raw rows an expectation needs when earlier loads were already validated.

    `meta: {raw_scope: all_rows}` in a suite makes an expectation read every row regardless.
    """
    if not scopable(spec.batch) or spec.meta.get("raw_scope") == ALL_ROWS:
        return ALL_ROWS
    if is_row_local(spec):
        return NEW_LOADS
    return NEW_FILES if is_per_file(spec) else ALL_ROWS


def _docs_site(docs_dir: Path) -> dict[str, Any]:
    return {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }


def scoped_raw_query(batch: Batch, loaded_after: datetime, scope: str) -> str:
    """The rows of a raw landing table that expectations of `scope` need, given loads up to
    `loaded_after` were validated.

    Raw rows never change once loaded (a re-delivered file is a new load that replaces the file's
    rows), so row-local expectations (not null, accepted values) read the rows of the newer loads
    (NEW_LOADS). Per-file comparisons (uniqueness within a file, lines against orders) read every row
    of each file a newer load wrote to (NEW_FILES): a duplicate group lies within one file, so any
    group with a new row is read whole, even when the other row came from an older load.
    """
    _, table = batch.schema_and_table
    new_loads = (
        f"select load_id from raw.{MANIFEST_TABLE}"
        f" where loaded_at > timestamp '{loaded_after.isoformat(sep=' ')}'"
    )
    if scope == NEW_LOADS:
        return f"select * from raw.{table} where load_id in ({new_loads})"
    if scope == NEW_FILES:
        return (
            f"select * from raw.{table} where source_file in"
            f" (select source_file from raw.{table} where load_id in ({new_loads}))"
        )
    raise ValueError(f"no scoped query for scope {scope!r}")


def _add_batch(
    datasource: Any, group: _Group, sql_parameters: Mapping[str, str], loaded_after: datetime | None
) -> Any:
    batch = group.batch
    if batch.query is not None:
        query = string.Template(batch.query).substitute(sql_parameters)
        asset = datasource.add_query_asset(_slug(batch.name), query=query)
    elif group.scope != ALL_ROWS and loaded_after is not None:
        asset = datasource.add_query_asset(
            _slug(group.batch_key), query=scoped_raw_query(batch, loaded_after, group.scope)
        )
    else:
        schema, table = batch.schema_and_table
        with warnings.catch_warnings():
            # GX deprecates schema_name for a schema in the connection; a DuckDB file has several
            # schemas (raw, main, ...), so the schema stays per asset.
            warnings.filterwarnings("ignore", message=".*schema_name.*", category=DeprecationWarning)
            asset = datasource.add_table_asset(_slug(batch.name), table_name=table, schema_name=schema)
    return asset.add_batch_definition_whole_table("all_rows")


def _add_suite(
    context: AbstractDataContext,
    group: _Group,
    members: Sequence[ExpectationSpec],
    batch_definition: Any,
    sql_parameters: Mapping[str, str],
    name_suffix: str = "",
) -> Any:
    name = group.gx_suite_name + name_suffix
    suite = gx.ExpectationSuite(name=name)
    for spec in members:
        expectation = ExpectationConfiguration(**spec.gx_configuration(sql_parameters)).to_domain_obj()
        expectation.catch_exceptions = True  # one broken expectation must not hide the others
        suite.add_expectation(expectation)
    suite = context.suites.add(suite)
    return context.validation_definitions.add(
        gx.ValidationDefinition(name=name, data=batch_definition, suite=suite)
    )


def _run_checkpoint(
    context: AbstractDataContext,
    name: str,
    definitions: Sequence[Any],
    result_format: Mapping[str, Any],
    suite_parameters: Mapping[str, Any],
    by_name: Mapping[str, ExpectationSpec],
) -> dict[str, ExpectationOutcome]:
    checkpoint = context.checkpoints.add(
        gx.Checkpoint(name=name, validation_definitions=list(definitions), result_format=dict(result_format))
    )
    try:
        run = checkpoint.run(expectation_parameters=dict(suite_parameters))
    finally:
        gx_patch.forget_results()
    found: dict[str, ExpectationOutcome] = {}
    for suite_result in run.run_results.values():
        for result in suite_result.results:
            name = (result.expectation_config.meta or {})["name"]
            found[name] = outcomes.from_result(by_name[name], result)
    return found


def _found_unexpected(outcome: ExpectationOutcome) -> bool:
    return outcome.exception is None and bool(outcome.unexpected_count)


def validate(
    warehouse: Path,
    specs: Sequence[ExpectationSpec],
    *,
    suite_parameters: Mapping[str, Any],
    sql_parameters: Mapping[str, str],
    run_id: str,
    stage: str,
    docs_dir: Path | None = None,
    loaded_after: datetime | None = None,
) -> ValidationReport:
    """Validate `specs` on `warehouse` (read-only); Data Docs into `docs_dir` if given.

    `loaded_after`: expectations on raw tables read only the loads after this UTC time, or the files
    those loads wrote (`raw_scope`, `scoped_raw_query`); the others read whole tables.
    """
    gx_patch.apply()
    docs_templates.share_compiled_templates()
    started_at = datetime.now(UTC)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    if docs_dir is not None:
        if (docs_dir / SUMMARY_FILE).exists():  # only ever wipe a site this module built
            shutil.rmtree(docs_dir, ignore_errors=True)
        context.add_data_docs_site(site_name=DOCS_SITE, site_config=_docs_site(docs_dir))
    datasource = context.data_sources.add_sql(
        DATASOURCE, connection_string=read_only_url(warehouse), create_temp_table=False
    )

    groups: dict[_Group, list[ExpectationSpec]] = defaultdict(list)
    for spec in specs:
        scope = ALL_ROWS if loaded_after is None else raw_scope(spec)
        groups[_Group(spec.suite, spec.batch, _kind(spec), scope)].append(spec)

    results: dict[str, ExpectationOutcome] = {}
    definitions: dict[str, list[Any]] = defaultdict(list)
    batch_definitions: dict[str, Any] = {}
    for group, members in groups.items():
        try:
            if group.batch_key not in batch_definitions:
                batch_definitions[group.batch_key] = _add_batch(
                    datasource, group, sql_parameters, loaded_after
                )
            definition = _add_suite(
                context, group, members, batch_definitions[group.batch_key], sql_parameters
            )
            definitions[group.kind].append(definition)
        except Exception as error:  # a missing table or a bad suite entry fails its expectations only
            logger.exception("could not prepare %s", group.gx_suite_name)
            for spec in members:
                results[spec.name] = outcomes.failed(spec, f"{type(error).__name__}: {error}")

    by_name = {spec.name: spec for spec in specs}
    for kind, kind_definitions in definitions.items():
        results.update(
            _run_checkpoint(
                context,
                f"order_audit_{stage}_{kind}",
                kind_definitions,
                RESULT_FORMATS[kind],
                suite_parameters,
                by_name,
            )
        )
    sample_definitions = []
    for group, members in groups.items():
        with_unexpected = [
            spec for spec in members if spec.name in results and _found_unexpected(results[spec.name])
        ]
        if group.kind == COLUMN_KIND and with_unexpected:
            sample_definitions.append(
                _add_suite(
                    context,
                    group,
                    with_unexpected,
                    batch_definitions[group.batch_key],
                    sql_parameters,
                    name_suffix=f".{SAMPLES_KIND}",
                )
            )
    if sample_definitions:
        sampled = _run_checkpoint(
            context,
            f"order_audit_{stage}_{SAMPLES_KIND}",
            sample_definitions,
            SAMPLES_FORMAT,
            suite_parameters,
            by_name,
        )
        for name, outcome in sampled.items():  # the first pass's verdict and counts stand
            if outcome.exception is None:
                results[name] = replace(results[name], unexpected_sample=outcome.unexpected_sample)
    if docs_dir is not None and definitions:
        context.build_data_docs(site_names=[DOCS_SITE])
    datasource.get_engine().dispose()

    for spec in specs:
        if spec.name not in results:
            results[spec.name] = outcomes.failed(spec, "GX returned no result for this expectation")
    return ValidationReport(
        run_id=run_id,
        stage=stage,
        warehouse=str(warehouse),
        started_at=started_at.isoformat(),
        finished_at=datetime.now(UTC).isoformat(),
        parameters={
            "suite_parameters": dict(suite_parameters),
            "sql_parameters": dict(sql_parameters),
            "raw_rows_loaded_after": None if loaded_after is None else loaded_after.isoformat(),
        },
        data_docs=str(docs_dir / "index.html") if docs_dir is not None else None,
        outcomes=[results[spec.name] for spec in specs],
    )
