"""Daily incremental runs and one full run over the same files give the same mart."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest
import yaml
from dagster import ExecuteInProcessResult

from orchestration.settings import DBT_PROJECT_DIR
from orchestration.transform.project import dbt_executable
from tests.conftest import PipelineEnv, pipeline_env, use_env

EVENT_COLUMNS = (
    "event_id, order_id, event_at, event_sequence, source_system, source_id, event_type, status, amount, currency,"
    " sku, quantity, from_status, to_status, source_file"
)
OPEN_EXCEPTIONS = (
    "select exception_id, entity_type, entity_id, order_id, exception_code, severity, owner_team, detail"
    " from order_audit_exceptions where status = 'open'"
)


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return sorted(con.execute(sql).fetchall(), key=repr)
    finally:
        con.close()


# Order-keyed incremental models upstream of the mart (their load_id and loaded_through depend on the
# run that wrote the row, everything else must not).
INCREMENTAL_INTERMEDIATES = (
    "staging.stg_storefront__orders",
    "staging.stg_storefront__order_lines",
    "intermediate.int_order_versions_sequenced",
    "intermediate.int_orders_current",
    "intermediate.int_order_lines_current",
    "intermediate.int_orders_assessed",
)


def _intermediates(env: PipelineEnv) -> dict[str, list[tuple[object, ...]]]:
    con = duckdb.connect(str(env.warehouse), read_only=True)
    try:
        found = {}
        for table in INCREMENTAL_INTERMEDIATES:
            schema, name = table.split(".")
            columns = [
                row[0]
                for row in con.execute(
                    "select column_name from information_schema.columns where table_schema = ? and table_name = ?"
                    " and column_name not in ('load_id', 'loaded_through') order by ordinal_position",
                    [schema, name],
                ).fetchall()
            ]
            found[table] = sorted(
                con.execute(f"select {', '.join(columns)} from {table}").fetchall(), key=repr
            )
        return found
    finally:
        con.close()


def _mart(env: PipelineEnv) -> dict[str, list[tuple[object, ...]]]:
    return _intermediates(env) | {
        "fact_order_audit": _rows(env.warehouse, "select * from fact_order_audit"),
        "fct_order_audit_events": _rows(env.warehouse, f"select {EVENT_COLUMNS} from fct_order_audit_events"),
        "open_exceptions": _rows(env.warehouse, OPEN_EXCEPTIONS),
        "stg_psp__payments": _rows(
            env.warehouse, "select * exclude (load_id, loaded_through) from staging.stg_psp__payments"
        ),
        "stg_wms__inventory_movements": _rows(
            env.warehouse,
            "select * exclude (load_id, loaded_through) from staging.stg_wms__inventory_movements",
        ),
    }


def _dbt_build(env: PipelineEnv, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            dbt_executable(),
            "build",
            *flags,
            "--exclude-resource-type",
            "unit_test",
            "--profiles-dir",
            str(DBT_PROJECT_DIR),
            "--target-path",  # not the project's target folder, which other tests' runs share
            str(env.root / "dbt_target"),
        ],
        cwd=DBT_PROJECT_DIR,
        env={**os.environ, **env.as_environ()},
        capture_output=True,
        text=True,
        check=False,
    )


def _full_refresh(env: PipelineEnv) -> subprocess.CompletedProcess[str]:
    return _dbt_build(env, "--full-refresh")


def _assert_a_full_refresh_gives(
    env: PipelineEnv, incremental: dict[str, list[tuple[object, ...]]], *flags: str
) -> None:
    """A full build of env's warehouse (with dbt `flags`) gives the mart its incremental runs gave."""
    refreshed = _dbt_build(env, "--full-refresh", *flags)
    assert refreshed.returncode == 0, refreshed.stdout[-3000:]
    rebuilt = _mart(env)
    for table in rebuilt:  # the exception register keeps history: _mart compares its open rows
        assert incremental[table] == rebuilt[table], f"{table}: incremental differs from a full build"


def _run_partition(env: PipelineEnv, partition: str) -> None:
    from dagster import DagsterInstance

    from orchestration.definitions import defs

    use_env(env)
    with DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("order_audit_job").execute_in_process(
            instance=instance, partition_key=partition, raise_on_error=False
        )
    assert result.success, f"daily run for {partition} failed"


@pytest.fixture(scope="module")
def two_warehouses(
    tmp_path_factory: pytest.TempPathFactory, isolated_environ: None
) -> tuple[PipelineEnv, PipelineEnv]:
    from orchestration.cli import main
    from orchestration.generator import generate

    daily = pipeline_env(tmp_path_factory.mktemp("daily"))
    full = pipeline_env(tmp_path_factory.mktemp("full"))
    generate(daily.extracts, orders=300, seed=11, days=3)
    shutil.copytree(daily.extracts, full.extracts)
    found = (re.search(r"_(\d{4}-\d{2}-\d{2})", p.name) for p in daily.extracts.glob("*/*"))
    dates = sorted({match.group(1) for match in found if match})
    for partition in dates:
        _run_partition(daily, partition)
    use_env(full)
    assert main(["run"]) == 0
    return daily, full


def test_daily_incremental_runs_equal_one_full_run(two_warehouses: tuple[PipelineEnv, PipelineEnv]) -> None:
    daily, full = two_warehouses
    daily_mart, full_mart = _mart(daily), _mart(full)
    for table in daily_mart:
        assert daily_mart[table] == full_mart[table], (
            f"{table} differs between daily incremental and full runs"
        )
    assert len(daily_mart["fct_order_audit_events"]) > 1000


def test_full_refresh_gives_the_same_mart_as_the_incremental_runs(
    two_warehouses: tuple[PipelineEnv, PipelineEnv],
) -> None:
    daily, _ = two_warehouses
    before = _mart(daily)
    refreshed = _full_refresh(daily)
    assert refreshed.returncode == 0, refreshed.stdout[-3000:]
    assert _mart(daily) == before
    resolved = _rows(daily.warehouse, "select count(*) from order_audit_exceptions where status = 'resolved'")
    assert resolved[0][0] >= 0, "full_refresh=false keeps the exception history"


def _copy_of(env: PipelineEnv, root: Path) -> PipelineEnv:
    """Another pipeline environment with the same landing files and a copy of the warehouse."""
    copy = pipeline_env(root)
    shutil.copytree(env.extracts, copy.extracts)
    copy.warehouse.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(env.warehouse, copy.warehouse)
    return copy


def _correct_orders_file(path: Path) -> dict[str, int]:
    """A corrected re-delivery (its line numbers shift): every third document dropped (whole orders or some of their versions
    vanish), one line dropped from every fifth remaining document that has several."""
    kept, dropped_lines = [], 0
    for number, text in enumerate(path.read_text().splitlines()):
        if number % 3 == 0:
            continue
        document = json.loads(text)
        if number % 5 == 1 and len(document.get("lines") or []) > 1:
            document["lines"] = document["lines"][:-1]
            dropped_lines += 1
        kept.append(json.dumps(document))
    path.write_text("\n".join(kept) + "\n")
    return {"documents": len(kept), "dropped_lines": dropped_lines}


def test_a_corrected_orders_file_rebuilds_like_a_full_build(
    two_warehouses: tuple[PipelineEnv, PipelineEnv], tmp_path: Path
) -> None:
    daily, _ = two_warehouses
    corrected = _copy_of(daily, tmp_path / "corrected")
    orders_file = sorted((corrected.extracts / "orders").glob("orders_*.jsonl"))[1]
    changes = _correct_orders_file(orders_file)
    assert changes["dropped_lines"] > 0
    partition = re.search(r"_(\d{4}-\d{2}-\d{2})", orders_file.name).group(1)  # type: ignore[union-attr]
    payments_file = corrected.extracts / "payments" / f"payments_{partition}.csv"
    header, *rows = payments_file.read_text().splitlines()
    payments_file.write_text("\n".join([header, *rows[1::2]]) + "\n")  # every other payment row vanishes

    _run_partition(corrected, partition)
    replaced = _rows(corrected.warehouse, "select count(*) from raw.load_manifest where status = 'replaced'")
    assert replaced == [(2,)]
    incremental = _mart(corrected)
    assert incremental["fact_order_audit"] != _mart(daily)["fact_order_audit"]

    _assert_a_full_refresh_gives(corrected, incremental)


def test_tables_written_before_the_loaded_through_stamp_are_rebuilt(
    two_warehouses: tuple[PipelineEnv, PipelineEnv], tmp_path: Path
) -> None:
    """A warehouse from before these models were incremental (no loaded_through column): the next build
    rebuilds them in full instead of failing on the missing watermark."""
    daily, _ = two_warehouses
    upgraded = _copy_of(daily, tmp_path / "upgraded")
    con = duckdb.connect(str(upgraded.warehouse))
    for table in INCREMENTAL_INTERMEDIATES:
        con.execute(f"alter table {table} drop column loaded_through")
    con.execute(
        "delete from staging.stg_storefront__order_lines where line_index = 1"
    )  # stale rows to replace
    con.close()

    built = _dbt_build(upgraded)
    assert built.returncode == 0, built.stdout[-3000:]
    assert _mart(upgraded) == _mart(daily)


REGISTER_ROUTING_COLUMNS = (
    "source_system",
    "trigger",
    "amount_at_risk",
    "amount_at_risk_currency",
    "channel",
    "warehouse_id",
    "routing_rule",
    "route",
    "priority",
    "resolve_within_hours",
    "expected_outcome",
    "opened_at",
    "due_at",
    "age_days",
    "age_bucket",
    "sla_breached",
    "workflow_state",
    "assignee",
    "snoozed_until",
    "resolution_reason",
    "resolution_note",
    "resolved_by",
    "workflow_resolved_at",
)


def test_a_register_from_before_routing_is_routed_and_gets_a_history(
    two_warehouses: tuple[PipelineEnv, PipelineEnv], tmp_path: Path
) -> None:
    """A warehouse whose register predates routing and triage (none of their columns, no history table): the
    next build appends the columns, routes the open exceptions, keeps the resolved ones, and starts the history."""
    daily, _ = two_warehouses
    upgraded = _copy_of(daily, tmp_path / "register")
    con = duckdb.connect(str(upgraded.warehouse))
    for column in REGISTER_ROUTING_COLUMNS:
        con.execute(f"alter table order_audit_exceptions drop column {column}")
    con.execute("drop table order_audit_exception_history")
    resolved = con.execute("select count(*) from order_audit_exceptions where status = 'resolved'").fetchall()
    con.close()

    built = _dbt_build(upgraded)
    assert built.returncode == 0, built.stdout[-3000:]
    routing = (
        "select exception_id, owner_team, routing_rule, route, priority, amount_at_risk, trigger, source_system"
        " from order_audit_exceptions where status = 'open'"
    )
    assert _rows(upgraded.warehouse, routing) == _rows(daily.warehouse, routing)
    assert _rows(
        upgraded.warehouse, "select count(*) from order_audit_exceptions where status = 'resolved'"
    ) == (resolved)
    # The history starts with this build: one `opened` row per exception detected now; the resolved ones,
    # which it never saw open, take their workflow state from the register's status.
    history = _rows(
        upgraded.warehouse,
        "select h.change_type, h.to_state, e.status, e.workflow_state, count(*) from order_audit_exception_history"
        " as h join order_audit_exceptions as e using (exception_id) group by all",
    )
    assert [row[:4] for row in history] == [("opened", "open", "open", "open")]
    assert _rows(
        upgraded.warehouse,
        "select count(*) from order_audit_exceptions where status = 'resolved' and workflow_state <> 'resolved'",
    ) == [(0,)]


@pytest.mark.parametrize(
    ("source", "id_column", "staging"),
    [
        ("payments", "payment_id", "staging.stg_psp__payments"),
        ("inventory_movements", "movement_id", "staging.stg_wms__inventory_movements"),
    ],
)
def test_an_event_delivered_again_under_another_order_moves_to_it(
    two_warehouses: tuple[PipelineEnv, PipelineEnv], tmp_path: Path, source: str, id_column: str, staging: str
) -> None:
    """extracts.md: a later delivery of a payment or movement id is its current state, order_id included. The
    trail keeps its event once, on the order it names now (the order it left is rebuilt too), as a full
    build does; the run is not blocked by a duplicate event_id. A correction that takes that delivery
    back moves the event back."""
    daily, _ = two_warehouses
    moved = _copy_of(daily, tmp_path / source)
    event_id, old_order = _rows(
        moved.warehouse,
        f"select {id_column}, order_id from {staging} where order_id is not null order by 1 limit 1",
    )[0]
    new_order = _rows(
        moved.warehouse,
        f"select order_id from intermediate.int_orders_current where order_id <> '{old_order}' order by 1 limit 1",
    )[0][0]
    last_file = sorted((moved.extracts / source).glob(f"{source}_*.csv"))[-1]
    partition = re.search(r"_(\d{4}-\d{2}-\d{2})", last_file.name).group(1)  # type: ignore[union-attr]
    header = last_file.read_text().splitlines()[0]
    raw_row = _rows(
        moved.warehouse, f"select {header} from raw.{source} where trim({id_column}) = '{event_id}' limit 1"
    )[0]
    values = dict(zip(header.split(","), raw_row, strict=True)) | {"order_id": new_order}
    row = ",".join("" if value is None else str(value) for value in values.values())
    again = moved.extracts / source / f"{source}_{partition}_again.csv"
    again.write_text(f"{header}\n{row}\n")

    _run_partition(moved, partition)
    events_on = f"select order_id from fct_order_audit_events where source_id = '{event_id}'"
    assert _rows(moved.warehouse, events_on) == [(new_order,)]
    again.write_text(f"{header}\n")  # corrected: the new delivery taken back, the event returns to its order
    _run_partition(moved, partition)
    assert _rows(moved.warehouse, events_on) == [(old_order,)]
    _assert_a_full_refresh_gives(moved, _mart(moved))


def test_late_stock_and_catalog_rows_reassess_the_orders_they_change(
    two_warehouses: tuple[PipelineEnv, PipelineEnv], tmp_path: Path
) -> None:
    """int_orders_assessed re-assesses only the orders a run's new loads can change. A late stock adjustment
    moves the running on-hand of every later shipment of its sku and warehouse, whichever order shipped it,
    and a new catalog price changes every line of its sku: the orders they change are re-assessed as a full
    build assesses them, and the other orders keep their rows."""
    daily, _ = two_warehouses
    late = _copy_of(daily, tmp_path / "late")
    sku, warehouse, first_shipped = _rows(
        late.warehouse,
        """
        select sku, warehouse_id, min(occurred_at) from staging.stg_wms__inventory_movements
        where movement_type = 'shipment' and order_id is not null
        group by sku, warehouse_id having count(distinct order_id) >= 2
        order by count(distinct order_id) desc, sku, warehouse_id limit 1
        """,
    )[0]
    priced_sku, currency, first_created = _rows(
        late.warehouse,
        f"""
        select sku, currency, min(created_at) from intermediate.int_order_lines_current
        where sku <> '{sku}'  -- not the adjusted stock's, whose orders the price alone would re-assess
        group by sku, currency order by count(distinct order_id) desc, sku, currency limit 1
        """,
    )[0]
    last_file = sorted((late.extracts / "inventory_movements").glob("inventory_movements_*.csv"))[-1]
    partition = re.search(r"_(\d{4}-\d{2}-\d{2})", last_file.name).group(1)  # type: ignore[union-attr]
    instant = "%Y-%m-%dT%H:%M:%S.%fZ"
    adjusted_at = (first_shipped - timedelta(microseconds=1)).strftime(instant)
    (late.extracts / "inventory_movements" / f"inventory_movements_{partition}_late.csv").write_text(
        f"movement_id,sku,warehouse_id,movement_type,quantity,order_id,occurred_at\n"
        f"MOV-LATE-ADJUSTMENT,{sku},{warehouse},adjustment,-100000,,{adjusted_at}\n"
    )
    (late.extracts / "products" / f"products_{partition}_late.csv").write_text(
        "sku,title,unit_price,currency,valid_from\n"
        f"{priced_sku},Repriced,1,{currency},{(first_created - timedelta(seconds=1)).strftime(instant)}\n"
    )
    flagged = (
        "select count(*) filter (where is_oversold), count(*) filter (where is_price_mismatch)"
        " from intermediate.int_orders_assessed"
    )
    oversold_before, mispriced_before = _rows(daily.warehouse, flagged)[0]

    _run_partition(late, partition)
    oversold, mispriced = _rows(late.warehouse, flagged)[0]
    assert oversold >= oversold_before + 2, "every later shipment of the adjusted stock is oversold"
    assert mispriced > mispriced_before
    stamps = _rows(
        late.warehouse, "select count(distinct loaded_through) from intermediate.int_orders_assessed"
    )
    assert stamps[0][0] > 1, "the run re-assessed every order: the incremental branch was not taken"
    _assert_a_full_refresh_gives(late, _mart(late))


def test_orders_assessed_under_other_rules_are_all_assessed_again(
    two_warehouses: tuple[PipelineEnv, PipelineEnv], tmp_path: Path
) -> None:
    """A row of int_orders_assessed records the rules it was assessed under (assessment_fingerprint: the
    project's models and macros, and the currency minor units). Other rules (a new release, an edited
    model, here another minor unit for EUR) re-assess every order at the next build, with no new load,
    as a full build with those rules does: the incremental branch alone would keep every row."""
    daily, _ = two_warehouses
    changed = _copy_of(daily, tmp_path / "rules")
    fingerprints = "select distinct rules_fingerprint from intermediate.int_orders_assessed"
    (before,) = _rows(changed.warehouse, fingerprints)
    project_vars = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]
    other_rules = (
        "--vars",
        json.dumps({"currency_minor_units": {**project_vars["currency_minor_units"], "EUR": 0}}),
    )

    built = _dbt_build(changed, *other_rules)
    assert built.returncode == 0, built.stdout[-3000:]
    after = _rows(changed.warehouse, fingerprints)
    assert len(after) == 1 and after != [before], "some orders kept the rows of the earlier rules"
    _assert_a_full_refresh_gives(changed, _mart(changed), *other_rules)


def _materialize(env: PipelineEnv, partition: str, *keys: tuple[str, ...]) -> ExecuteInProcessResult:
    """A subset of the daily job, as a user selects assets in the Dagster UI and materializes them."""
    from dagster import AssetKey, DagsterInstance

    from orchestration.definitions import defs

    use_env(env)
    with DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("order_audit_job").execute_in_process(
            instance=instance,
            partition_key=partition,
            asset_selection=[AssetKey(list(key)) for key in keys],
            raise_on_error=False,
        )
    return result


@pytest.mark.parametrize(
    "selected",
    [
        (("intermediate", "int_orders_assessed"), ("fct_order_audit_events",)),
        (
            ("staging", "stg_storefront__orders"),
            ("intermediate", "int_order_versions_sequenced"),
            ("intermediate", "int_orders_current"),
            ("intermediate", "int_order_lines_current"),
        ),
    ],
    ids=["assessment_and_trail", "orders_without_their_staged_lines"],
)
def test_a_subset_built_before_its_upstream_misses_no_load(
    two_warehouses: tuple[PipelineEnv, PipelineEnv], tmp_path: Path, selected: tuple[tuple[str, ...], ...]
) -> None:
    """A late refund, a late return, a late order version and a re-delivered one land; a user
    materializes the raw loaders, then a subset of the models before their upstream has taken the new
    rows in (selected assets in the Dagster UI): the assessment and the trail (the trail rebuilds the
    orders the new raw versions name, from staging as it was), or the orders without the staged lines
    (the new version loses its lines, the re-delivered one keeps them). Those models record what their
    upstream had taken in, not the newest load: the next whole build takes the late rows in, as a full
    build does."""
    daily, _ = two_warehouses
    subset = _copy_of(daily, tmp_path / "subset")
    (order_id, currency), (returned_order, sku, warehouse) = (
        _rows(
            subset.warehouse,
            "select order_id, currency from intermediate.int_orders_current order by 1 limit 1",
        )[0],
        _rows(
            subset.warehouse,
            "select order_id, sku, warehouse_id from staging.stg_wms__inventory_movements"
            " where movement_type = 'shipment' and order_id is not null order by all desc limit 1",
        )[0],
    )
    last_file = sorted((subset.extracts / "payments").glob("payments_*.csv"))[-1]
    partition = re.search(r"_(\d{4}-\d{2}-\d{2})", last_file.name).group(1)  # type: ignore[union-attr]
    (subset.extracts / "payments" / f"payments_{partition}_late.csv").write_text(
        "payment_id,order_id,event_type,amount,currency,status,processed_at,psp_reference,method\n"
        f"PAY-LATE-REFUND,{order_id},refund,1.00,{currency},succeeded,{partition}T12:00:00Z,pi_late,card\n"
    )
    (subset.extracts / "inventory_movements" / f"inventory_movements_{partition}_late.csv").write_text(
        "movement_id,sku,warehouse_id,movement_type,quantity,order_id,occurred_at\n"
        f"MOV-LATE-RETURN,{sku},{warehouse},return,1,{returned_order},{partition}T12:00:00Z\n"
    )
    updated_order, redelivered_order = (
        row[0]
        for row in _rows(
            subset.warehouse, "select order_id from intermediate.int_orders_current order by 1 desc limit 2"
        )
    )
    documents = [
        json.loads(line)
        for path in sorted((subset.extracts / "orders").glob("orders_*.jsonl"))
        for line in path.read_text().splitlines()
    ]

    def latest_version(order: str) -> dict[str, object]:
        versions = [document for document in documents if document["order_id"] == order]
        return max(versions, key=lambda version: datetime.fromisoformat(str(version["updated_at"])))

    updated = latest_version(updated_order)
    updated_at = datetime.fromisoformat(str(updated["updated_at"])).astimezone(UTC) + timedelta(seconds=1)
    (subset.extracts / "orders" / f"orders_{partition}_late.jsonl").write_text(
        json.dumps(updated | {"updated_at": updated_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")})
        + "\n"
        + json.dumps(latest_version(redelivered_order))
        + "\n"
    )
    assessed = "select * exclude (loaded_through) from intermediate.int_orders_assessed where order_id = '{}'"
    assessed_before = _rows(subset.warehouse, assessed.format(order_id))

    raw = (("raw", "payments"), ("raw", "inventory_movements"), ("raw", "orders"), ("raw", "order_lines"))
    assert _materialize(subset, partition, *raw).success
    downstream = _materialize(subset, partition, *selected)
    assert downstream.is_node_success("order_audit_dbt_assets")
    if ("fct_order_audit_events",) in selected:
        assert not downstream.success, "money conservation sees raw's refund missing from the trail"
    assert _rows(subset.warehouse, assessed.format(order_id)) == assessed_before, (
        "the subset read staging as it was: the refund is not in it yet"
    )
    # dbt alone first: a run of the job would also record its loaders' skipped duplicates, a newer load
    built = _dbt_build(subset)
    assert built.returncode == 0, built.stdout[-3000:]
    late_events = "select source_id from fct_order_audit_events where source_id like '%-LATE-%' order by 1"
    assert _rows(subset.warehouse, late_events) == [("MOV-LATE-RETURN",), ("PAY-LATE-REFUND",)]
    assert _rows(subset.warehouse, assessed.format(order_id)) != assessed_before
    _run_partition(subset, partition)  # the job's mart checks pass: nothing is missing
    _assert_a_full_refresh_gives(subset, _mart(subset))
