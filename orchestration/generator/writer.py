"""Number the lines of every file, write the extracts byte-for-byte with COPY, and the ground truth."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from orchestration.generator.config import GenerationConfig
from orchestration.generator.delivery import CSV_HEADERS, EXTENSIONS, SOURCES
from orchestration.generator.scenarios import ALL_CODES
from orchestration.generator.sqlkit import Ctx

GROUND_TRUTH_DIR = "_ground_truth"
_RAW = "(FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\x02')"


def _path_sql(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def clear_output(cfg: GenerationConfig) -> None:
    """Remove extracts of an earlier run (files named like ours) and the old ground truth."""
    for source in SOURCES:
        folder = cfg.out_dir / source
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob(f"{source}_*"):
            if stale.is_file():
                stale.unlink()
    shutil.rmtree(cfg.out_dir / GROUND_TRUTH_DIR, ignore_errors=True)
    (cfg.out_dir / GROUND_TRUTH_DIR).mkdir(parents=True)


def number_lines(ctx: Ctx) -> None:
    """`lines_<source>(file_idx, file_name, line_number, text, bad_reason)`: physical, 1-based line
    numbers (a CSV header is line 1)."""
    for source in SOURCES:
        offset = 0 if source == "orders" else 1
        ctx.run(
            f"""
            CREATE TABLE lines_{source} AS
            SELECT dense_rank() OVER (ORDER BY file_name) AS file_idx, file_name,
                   row_number() OVER (PARTITION BY file_name ORDER BY sort_ts, sort_key) + {offset} AS line_number,
                   text, bad_reason
            FROM out_{source}
            ORDER BY file_idx, line_number
            """
        )


def write_extracts(ctx: Ctx) -> tuple[list[Path], dict[str, int]]:
    cfg = ctx.cfg
    written: list[Path] = []
    rows: dict[str, int] = {}
    for source in SOURCES:
        files = {
            str(name): int(idx)
            for idx, name in ctx.rows(
                f"SELECT DISTINCT file_idx, file_name FROM lines_{source} ORDER BY file_idx"
            )
        }
        if source in ("payments", "inventory_movements", "inventory_levels"):
            for day in range(cfg.days):  # a day without rows still gets its (header-only) file
                files.setdefault(f"{source}_{cfg.day(day).isoformat()}.{EXTENSIONS[source]}", -1)
        for name in sorted(files):
            path = cfg.out_dir / source / name
            data = f"SELECT line_number, text FROM lines_{source} WHERE file_idx = {files[name]}"
            if source in CSV_HEADERS:
                data = f"SELECT 1 AS line_number, '{CSV_HEADERS[source]}' AS text UNION ALL {data}"
            ctx.run(f"COPY (SELECT text FROM ({data}) ORDER BY line_number) TO {_path_sql(path)} {_RAW}")
            written.append(path)
        rows[source] = ctx.integer(f"SELECT count(*) FROM lines_{source}")
    return written, rows


def write_ground_truth(
    ctx: Ctx, rejected: list[tuple[str, Path, str]], summary: dict[str, object]
) -> list[Path]:
    cfg = ctx.cfg
    folder = cfg.out_dir / GROUND_TRUTH_DIR
    expected = folder / "expected_exceptions.csv"
    ctx.run(
        f"""
        COPY (
            SELECT * FROM expected_exceptions ORDER BY entity_type, entity_id, exception_code
        ) TO {_path_sql(expected)} (FORMAT csv, HEADER true)
        """
    )
    scenarios = folder / "scenarios.csv"
    ctx.run(
        f"""
        COPY (
            SELECT f.order_id, f.scenario, o.status AS final_status,
                   coalesce((SELECT string_agg(code, ',' ORDER BY code) FROM scenario_codes AS c
                             WHERE c.name = f.scenario), '') AS exception_codes
            FROM order_facts AS f JOIN order_final AS o USING (i)
            WHERE f.scenario IS NOT NULL ORDER BY f.order_id
        ) TO {_path_sql(scenarios)} (FORMAT csv, HEADER true)
        """
    )
    written = [expected, scenarios]
    if cfg.bad_rows_rate > 0:
        bad = folder / "bad_rows.csv"
        parts = " UNION ALL ".join(
            f"SELECT '{s}' AS source, file_name, line_number, bad_reason AS reason_code FROM lines_{s} "
            "WHERE bad_reason IS NOT NULL"
            for s in SOURCES
        )
        ctx.run(f"COPY (SELECT * FROM ({parts}) ORDER BY ALL) TO {_path_sql(bad)} (FORMAT csv, HEADER true)")
        rejected_path = folder / "rejected_files.csv"
        lines = ["source,file_name,reason_code"] + [f"{s},{p.name},{code}" for s, p, code in sorted(rejected)]
        rejected_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        written += [bad, rejected_path]
    manifest = folder / "manifest.json"
    manifest.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return [*written, manifest]


def create_expected_exceptions(ctx: Ctx) -> dict[str, int]:
    """`expected_exceptions(entity_type, entity_id, order_id, exception_code)`; returns counts per code."""
    ctx.run(
        """
        CREATE TABLE expected_exceptions AS
        SELECT 'order' AS entity_type, f.order_id AS entity_id, f.order_id, c.code AS exception_code
        FROM order_facts AS f JOIN scenario_codes AS c ON c.name = f.scenario
        UNION ALL
        SELECT 'payment', payment_id, nullif(trim(coalesce(order_id, '')), ''), 'ORPHAN_PAYMENT'
        FROM payment_events WHERE payment_id LIKE 'PAY-ORPHAN-%'
        UNION ALL
        SELECT 'movement', movement_id, nullif(trim(coalesce(order_id, '')), ''), 'ORPHAN_MOVEMENT'
        FROM movements WHERE movement_id LIKE 'MV-ORPHAN-%'
        UNION ALL
        SELECT 'stock_position', sku || '|' || warehouse_id || '|' || day_text(day), NULL, 'STOCK_LEVEL_MISMATCH'
        FROM stock_levels WHERE mismatch
        """
    )
    counts = {
        str(code): int(n)
        for code, n in ctx.rows("SELECT exception_code, count(*) FROM expected_exceptions GROUP BY ALL")
    }
    return {code: counts.get(code, 0) for code in ALL_CODES}
