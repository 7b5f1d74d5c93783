"""`order-audit bench`: time and measure the whole pipeline as a user runs it, on N generated orders.

It generates N orders over `days + 1` days, runs `order-audit run` on the first `days` days in a fresh
warehouse (the full run), then lands the last day and runs again (the incremental day). Each run is a
separate process whose whole process tree (Dagster, dbt, the GX validation subprocess) is sampled for
RSS; per-stage wall times come from the Dagster run's step statistics. Figures are printed as a table
and written as JSON so two runs can be compared.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import duckdb
import psutil

from orchestration.settings import Settings

STAGES = {
    "raw loading": lambda step: step.startswith("load_raw_"),
    "dbt build": lambda step: step == "order_audit_dbt_assets",
    "GX validation": lambda step: "quality" in step or "validation" in step or "gx" in step,
    "publish": lambda step: step.startswith("published"),
}


@dataclass
class RunFigures:
    label: str
    wall_seconds: float
    peak_rss_mib: float
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_rows: dict[str, int] = field(default_factory=dict)
    warehouse_mib: float = 0.0
    serving_mib: float = 0.0
    succeeded: bool = True
    floor_seconds: float = 0.0  # one DuckDB query reading every extract file of the run once

    def ratio_to_floor(self, seconds: float) -> float:
        return seconds / self.floor_seconds if self.floor_seconds else 0.0

    def rows_per_second(self, stage: str) -> float:
        seconds = self.stage_seconds.get(stage, 0.0)
        return self.stage_rows.get(stage, 0) / seconds if seconds else 0.0


def _tree_rss(process: psutil.Process) -> int:
    total = 0
    for proc in [process, *process.children(recursive=True)]:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            continue
    return total


def _run_pipeline(env: dict[str, str], log: Path) -> tuple[float, int, bool]:
    started = time.perf_counter()
    with log.open("w") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "orchestration.cli", "run"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
        watched = psutil.Process(child.pid)
        peak = 0
        while child.poll() is None:
            peak = max(peak, _tree_rss(watched))
            time.sleep(0.2)
    return time.perf_counter() - started, peak, child.returncode == 0


def _instance_at(dagster_home: Path) -> Any:
    """The Dagster instance of `dagster_home`, without setting DAGSTER_HOME in this process: the
    project's dagster.yaml reads its storage folder from that variable, so the folder is given here."""
    import yaml
    from dagster import DagsterInstance
    from dagster._core.instance.ref import InstanceRef

    config = yaml.safe_load((dagster_home / "dagster.yaml").read_text()) or {}
    storage = (config.get("storage") or {}).get("custom")
    overrides = (
        {"storage": {"custom": {**storage, "config": {"base_dir": str(dagster_home)}}}} if storage else None
    )
    return DagsterInstance.from_ref(InstanceRef.from_dir(str(dagster_home), overrides=overrides))


def _stage_seconds(dagster_home: Path) -> dict[str, float]:
    with _instance_at(dagster_home) as instance:
        run = instance.get_runs(limit=1)[0]
        stats = instance.get_run_step_stats(run.run_id)
    seconds: dict[str, float] = {stage: 0.0 for stage in STAGES}
    for stat in stats:
        if stat.start_time is None or stat.end_time is None:
            continue
        for stage, matches in STAGES.items():
            if matches(stat.step_key):
                seconds[stage] += stat.end_time - stat.start_time
    return seconds


def _stage_rows(warehouse: Path) -> dict[str, int]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:

        def count(sql: str) -> int:
            return int(con.execute(sql).fetchall()[0][0] or 0)

        latest_load = "(select load_id from raw.load_manifest order by loaded_at desc limit 1)"
        raw_rows = count(f"select sum(rows_read) from raw.load_manifest where load_id = {latest_load}")
        mart_rows = count(
            "select (select count(*) from fact_order_audit) + (select count(*) from fct_order_audit_events)"
            " + (select count(*) from order_audit_exceptions)"
        )
        return {
            "raw loading": raw_rows,
            "dbt build": mart_rows,
            "GX validation": mart_rows,
            "publish": mart_rows,
        }
    finally:
        con.close()


def _sql_list(paths: list[Path]) -> str:
    return "[" + ", ".join("'" + str(path).replace("'", "''") + "'" for path in paths) + "]"


def _floor_query(files: list[Path]) -> str:
    """One query that reads every file once, every column (a hash of each whole row), the way the
    fastest reader of DuckDB for its format does, per source folder and format."""
    parts = []
    by_group: dict[tuple[str, str], list[Path]] = {}
    for path in files:
        by_group.setdefault((path.parent.name, path.suffix), []).append(path)
    readers = {
        ".csv": "read_csv({files}, all_varchar = true, ignore_errors = true, union_by_name = true)",
        ".jsonl": "read_json({files}, format = 'newline_delimited', ignore_errors = true, union_by_name = true)",
        ".parquet": "read_parquet({files}, union_by_name = true)",
    }
    for (_, suffix), paths in sorted(by_group.items()):
        reader = readers.get(suffix)
        if reader:
            parts.append(
                f"select count(*) as rows_read, sum(hash(t)) as digest from {reader.format(files=_sql_list(paths))} as t"
            )
    return " union all ".join(parts) if parts else "select 0, 0"


def floor_seconds(files: list[Path], settings: Settings) -> float:
    """Wall time of the floor query, with the pipeline's own DuckDB limits."""
    con = duckdb.connect(
        config={"threads": settings.duckdb_threads, "memory_limit": settings.duckdb_memory_limit}
    )
    try:
        started = time.perf_counter()
        con.execute(_floor_query(files)).fetchall()
        return time.perf_counter() - started
    finally:
        con.close()


def _extract_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*/*") if p.is_file() and not p.parent.name.startswith("_"))


def _mib(path: Path) -> float:
    return path.stat().st_size / 2**20 if path.exists() else 0.0


def measure(env: dict[str, str], root: Path, label: str, files: list[Path]) -> RunFigures:
    settings = Settings.from_env(env)
    floor = floor_seconds(files, settings)
    wall, peak, ok = _run_pipeline(env, root / f"{label}.log")
    figures = RunFigures(label, wall, peak / 2**20, succeeded=ok, floor_seconds=floor)
    figures.stage_seconds = _stage_seconds(Path(env["DAGSTER_HOME"]))
    figures.stage_rows = _stage_rows(Path(env["ORDER_AUDIT_WAREHOUSE"]))
    figures.warehouse_mib = _mib(Path(env["ORDER_AUDIT_WAREHOUSE"]))
    figures.serving_mib = _mib(Path(env["ORDER_AUDIT_SERVING_DB"]))
    return figures


def _hold_back_last_day(extracts: Path, last_day: date, held: Path) -> None:
    for path in extracts.glob(f"*/*_{last_day.isoformat()}*"):
        target = held / path.parent.name
        target.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), target / path.name)


def _land(held: Path, extracts: Path) -> None:
    for path in held.glob("*/*"):
        shutil.move(str(path), extracts / path.parent.name / path.name)


def print_table(figures: list[RunFigures], orders: int) -> None:
    print(
        f"\norder-audit benchmark: {orders:,} orders on {os.cpu_count()} cores, {platform.python_version()}"
    )
    header = f"{'run':<12}{'stage':<16}{'seconds':>10}{'x floor':>9}{'rows':>14}{'rows/s':>14}"
    print(header)
    print("-" * len(header))
    for run in figures:
        for stage in STAGES:
            rows = run.stage_rows.get(stage, 0)
            seconds = run.stage_seconds.get(stage, 0.0)
            print(
                f"{run.label:<12}{stage:<16}{seconds:>10.1f}{run.ratio_to_floor(seconds):>9.1f}{rows:>14,}"
                f"{run.rows_per_second(stage):>14,.0f}"
            )
        print(f"{run.label:<12}{'floor':<16}{run.floor_seconds:>10.1f}{1:>9.1f}")
        status = "" if run.succeeded else "  (RUN FAILED)"
        print(
            f"{run.label:<12}{'total':<16}{run.wall_seconds:>10.1f}{run.ratio_to_floor(run.wall_seconds):>9.1f}"
            f"   peak RSS {run.peak_rss_mib:,.0f} MiB, "
            f"warehouse {run.warehouse_mib:,.1f} MiB, serving {run.serving_mib:,.1f} MiB{status}"
        )
    if len(figures) == 2 and figures[0].wall_seconds:
        share = figures[1].wall_seconds / figures[0].wall_seconds
        print(f"incremental day / full run: {share:.1%}")


# The file that marks a folder as a benchmark's own: only such a folder (or an empty one) is emptied.
WORKDIR_MARKER = ".order-audit-bench"


class WorkdirNotOursError(Exception):
    pass


# The default workdir, which versions before the marker file filled with these alone.
DEFAULT_WORKDIR = Path("/tmp/order-audit-bench")
_BENCHMARK_FILES = {
    "extracts",
    "held_back",
    "serving",
    "dagster_home",
    "notifications",
    "full.log",
    "incremental.log",
    "warehouse.duckdb",
    "warehouse.duckdb.wal",
    "warehouse.duckdb.lock",
}


def _ours(root: Path) -> bool:
    if (root / WORKDIR_MARKER).is_file() or not any(root.iterdir()):
        return True
    return root.resolve() == DEFAULT_WORKDIR and {path.name for path in root.iterdir()} <= _BENCHMARK_FILES


def claim_workdir(root: Path) -> None:
    """Empty `root` for a new benchmark, or create it. A folder that holds anything but an earlier
    benchmark's files (it has no marker) is refused: `--workdir .` must not delete a repository."""
    if root.exists() and not _ours(root):
        raise WorkdirNotOursError(
            f"{root} is not empty and holds no earlier benchmark ({WORKDIR_MARKER}): the benchmark empties its"
            " workdir first, so give it a new or empty folder (--workdir)."
        )
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    (root / WORKDIR_MARKER).write_text("a folder of `order-audit bench`, emptied by each benchmark\n")


def run_benchmark(orders: int, days: int, seed: int, root: Path, output: Path | None) -> dict[str, Any]:
    from orchestration.generator import generate

    claim_workdir(root)
    extracts, held = root / "extracts", root / "held_back"
    start = date(2026, 11, 1)
    generated_at = time.perf_counter()
    generate(extracts, orders=orders, seed=seed, days=days + 1, start_date=start)
    generate_seconds = time.perf_counter() - generated_at
    _hold_back_last_day(extracts, start + timedelta(days=days), held)
    overrides = {
        "ORDER_AUDIT_EXTRACTS_DIR": str(extracts),
        "ORDER_AUDIT_WAREHOUSE": str(root / "warehouse.duckdb"),
        "ORDER_AUDIT_SERVING_DB": str(root / "serving" / "order_audit.duckdb"),
        "DAGSTER_HOME": str(root / "dagster_home"),
    }
    env = Settings.from_env({**os.environ, **overrides}).child_environ()
    full = measure(env, root, "full", _extract_files(extracts))
    last_day_files = [extracts / path.parent.name / path.name for path in _extract_files(held)]
    _land(held, extracts)
    incremental = measure(env, root, "incremental", last_day_files)
    print(f"generate: {generate_seconds:.1f} s for {orders:,} orders over {days + 1} days")
    print_table([full, incremental], orders)
    report = {
        "orders": orders,
        "days": days,
        "seed": seed,
        "machine": {"cores": os.cpu_count(), "memory_gib": round(psutil.virtual_memory().total / 2**30, 1)},
        "generate_seconds": generate_seconds,
        "runs": [asdict(full), asdict(incremental)],
    }
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report, indent=2))
        print(f"figures written to {output}")
    return report
