"""Seeded generator of landing extracts (extracts.md) with the exact exceptions they must raise.

`generate()` writes `<out>/<source>/<source>_<date>[_<part>].<ext>` for the five sources and, next to
them, `<out>/_ground_truth/` (ignored by the loader): `expected_exceptions.csv`, `expected_routing.csv` (the
routing rules in force applied to them), `scenarios.csv`, `manifest.json` and, when bad rows are on, `bad_rows.csv` and `rejected_files.csv`. Everything is
built set-based in one in-memory DuckDB session; the same arguments give byte-identical files.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

from orchestration.generator import bad_rows, catalog, delivery, inventory, payments, scenarios, writer
from orchestration.generator import orders as order_builder
from orchestration.generator.config import GenerationConfig
from orchestration.generator.routing_truth import create_expected_routing
from orchestration.generator.sqlkit import open_session
from orchestration.routing import load_routing

__all__ = ["GenerationSummary", "generate"]


@dataclass(frozen=True)
class GenerationSummary:
    out_dir: Path
    files: list[Path]
    rows_per_source: dict[str, int]
    orders: int
    expected_exceptions: dict[str, int]
    bad_rows: int
    rejected_files: int
    seed: int
    days: int
    start_date: date
    as_of: datetime
    scenario_orders: int
    decoy_orders: int
    ground_truth_files: list[Path] = field(default_factory=list)

    @property
    def expected_exception_total(self) -> int:
        return sum(self.expected_exceptions.values())


def _iso_z(value: datetime) -> str:
    return value.isoformat() + "Z"


def generate(
    out_dir: Path,
    orders: int = 2000,
    seed: int = 42,
    days: int = 10,
    start_date: date = date(2026, 11, 1),
    exception_rate: float = 0.2,
    bad_rows_rate: float = 0.0,
) -> GenerationSummary:
    """Write a full, deterministic set of extracts and their ground truth into `out_dir`.

    The files an earlier generation wrote into the source folders and the old ground truth are removed
    first; any other extract file there (named `<source>_*`) stops it (`writer.ForeignExtractsError`).
    The audit as-of time of the clean rows is `manifest.json`'s `as_of` (23:59:00 UTC of the last day).
    """
    cfg = GenerationConfig(Path(out_dir), orders, seed, days, start_date, exception_rate, bad_rows_rate)
    writer.clear_output(cfg)
    ctx = open_session(cfg)
    try:
        scenarios.create_scenario_tables(ctx)
        n_exc, n_dec = scenarios.assign_scenarios(ctx)
        catalog.create_currencies(ctx)
        catalog.create_catalog(ctx)
        order_builder.create_plan(ctx)
        order_builder.create_lines(ctx)
        order_builder.create_amounts(ctx)
        order_builder.create_timeline(ctx)
        order_builder.create_versions(ctx)
        payments.create_payment_events(ctx)
        inventory.create_order_movements(ctx)
        inventory.add_stock_movements(ctx)
        inventory.create_stock_levels(ctx)
        expected = writer.create_expected_exceptions(ctx)
        routing = load_routing()
        create_expected_routing(ctx, routing)
        delivery.render_all(ctx)
        writer.release_build_tables(ctx)
        n_bad = bad_rows.add_bad_rows(ctx)
        writer.bad_row_lines(ctx)
        files, rows = writer.write_extracts(ctx)
        rejected = bad_rows.write_rejected_files(ctx)
        manifest: dict[str, object] = {
            "seed": seed,
            "orders": orders,
            "days": days,
            "start_date": start_date.isoformat(),
            "as_of": _iso_z(cfg.as_of),
            "price_change_at": _iso_z(cfg.price_change_at),
            "fulfillment_sla_hours": 72,
            "exception_rate": exception_rate,
            "bad_rows_rate": bad_rows_rate,
            "scenario_orders": n_exc,
            "decoy_orders": n_dec,
            "expected_exceptions": expected,
            "routing_file_sha256": hashlib.sha256(routing.path.read_bytes()).hexdigest(),
            "bad_rows": n_bad,
            "rejected_files": [p.name for _, p, _ in rejected],
            "rows_per_source": rows,
        }
        truth = writer.write_ground_truth(ctx, rejected, manifest)
        truth.append(writer.record_written(cfg, files + [p for _, p, _ in rejected]))
    finally:
        ctx.con.close()
    return GenerationSummary(
        out_dir=cfg.out_dir,
        files=sorted(files + [p for _, p, _ in rejected]),
        rows_per_source=rows,
        orders=orders,
        expected_exceptions=expected,
        bad_rows=n_bad,
        rejected_files=len(rejected),
        seed=seed,
        days=days,
        start_date=start_date,
        as_of=cfg.as_of,
        scenario_orders=n_exc,
        decoy_orders=n_dec,
        ground_truth_files=truth,
    )
