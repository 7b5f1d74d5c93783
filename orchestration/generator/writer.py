"""Write the extracts byte-for-byte with COPY (ordered within each file), and the ground truth."""

from __future__ import annotations

import json
from pathlib import Path

from orchestration.generator.config import GenerationConfig
from orchestration.generator.delivery import CSV_HEADERS, EXTENSIONS, SOURCES
from orchestration.generator.scenarios import ALL_CODES
from orchestration.generator.sqlkit import Ctx
from orchestration.settings import GROUND_TRUTH_DIR

_RAW = "(FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\x02')"


def _path_sql(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


WRITTEN_FILES = "written_files.json"
GROUND_TRUTH_FILES = (
    "expected_exceptions.csv",
    "expected_routing.csv",
    "scenarios.csv",
    "bad_rows.csv",
    "rejected_files.csv",
    "manifest.json",
    WRITTEN_FILES,
)


class ForeignExtractsError(ValueError):
    """The output folder holds extract files that no earlier generation wrote: never removed."""


def _extract_files(out_dir: Path) -> list[Path]:
    return sorted(
        path for source in SOURCES for path in (out_dir / source).glob(f"{source}_*") if path.is_file()
    )


def _fingerprint(path: Path) -> list[int]:
    """Size and modification time: a file changed since it was written (even to the same size) differs."""
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _written_by_us(out_dir: Path) -> dict[str, list[int]] | None:
    """{path relative to `out_dir`: fingerprint} of the files the last generation into `out_dir` wrote;
    None when there is no record (no generation, or one by an order-audit from before the record)."""
    record = out_dir / GROUND_TRUTH_DIR / WRITTEN_FILES
    try:
        return {
            str(name): list(mark) for name, mark in json.loads(record.read_text(encoding="utf-8")).items()
        }
    except (OSError, ValueError, AttributeError, TypeError):
        return None


def check_output(out_dir: Path) -> None:
    """Raise `ForeignExtractsError` when `out_dir` holds an extract file that the last generation into it
    did not write, or that changed since (a real delivery, a hand-made correction): generating would
    delete it."""
    ours = _written_by_us(out_dir)
    foreign = [
        path.relative_to(out_dir)
        for path in _extract_files(out_dir)
        if ours is None or ours.get(str(path.relative_to(out_dir))) != _fingerprint(path)
    ]
    if foreign:
        listed = ", ".join(str(path) for path in foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        why = (
            "that generate has no record of writing (real deliveries, or sample data of an order-audit from"
            f" before {GROUND_TRUTH_DIR}/{WRITTEN_FILES})"
            if ours is None
            else "that generate did not write or that changed since"
        )
        raise ForeignExtractsError(
            f"{out_dir} holds {len(foreign)} extract file(s) {why}: {listed}. Generating replaces every"
            " extract file there, so it stops. Generate into another folder (--out) or move those files"
            " away first."
        )


def clear_output(cfg: GenerationConfig) -> None:
    """Remove the extracts an earlier generation wrote and the old ground truth (`check_output` first)."""
    check_output(cfg.out_dir)
    for path in _extract_files(cfg.out_dir):
        path.unlink()
    for source in SOURCES:
        (cfg.out_dir / source).mkdir(parents=True, exist_ok=True)
    truth = cfg.out_dir / GROUND_TRUTH_DIR
    truth.mkdir(parents=True, exist_ok=True)
    for name in GROUND_TRUTH_FILES:  # its own files only: anything else a person put there stays
        (truth / name).unlink(missing_ok=True)


def record_written(cfg: GenerationConfig, files: list[Path]) -> Path:
    """Note the extract files this generation wrote, so that the next one may replace them."""
    record = cfg.out_dir / GROUND_TRUTH_DIR / WRITTEN_FILES
    marks = {str(path.relative_to(cfg.out_dir)): _fingerprint(path) for path in sorted(files)}
    record.write_text(json.dumps(marks, indent=1) + "\n", encoding="utf-8")
    return record


def bad_row_lines(ctx: Ctx) -> None:
    """`bad_lines(source, file_name, line_number, reason_code)`: physical, 1-based line numbers of the
    bad rows (a CSV header is line 1). Lines are ordered by (sort_ts, sort_key) within a file."""
    parts = " UNION ALL ".join(
        f"""SELECT '{source}' AS source, file_name, line_number, bad_reason AS reason_code FROM (
                SELECT file_name, bad_reason,
                       row_number() OVER (PARTITION BY file_name ORDER BY sort_ts, sort_key)
                       + {0 if source == "orders" else 1} AS line_number
                FROM out_{source}
            ) WHERE bad_reason IS NOT NULL"""
        for source in SOURCES
    )
    ctx.run(f"CREATE TABLE bad_lines AS {parts}")


def write_extracts(ctx: Ctx) -> tuple[list[Path], dict[str, int]]:
    cfg = ctx.cfg
    written: list[Path] = []
    rows: dict[str, int] = {}
    for source in SOURCES:
        names = {str(name) for (name,) in ctx.rows(f"SELECT DISTINCT file_name FROM out_{source}")}
        if source in ("payments", "inventory_movements", "inventory_levels"):
            for day in range(cfg.days):  # a day without rows still gets its (header-only) file
                names.add(f"{source}_{cfg.day(day).isoformat()}.{EXTENSIONS[source]}")
        for name in sorted(names):
            path = cfg.out_dir / source / name
            data = f"SELECT 1 AS h, sort_ts, sort_key, text FROM out_{source} WHERE file_name = '{name}'"
            if source in CSV_HEADERS:
                data = f"SELECT 0 AS h, NULL AS sort_ts, NULL AS sort_key, '{CSV_HEADERS[source]}' AS text UNION ALL {data}"
            ctx.run(
                f"COPY (SELECT text FROM ({data}) ORDER BY h, sort_ts, sort_key) TO {_path_sql(path)} {_RAW}"
            )
            written.append(path)
        rows[source] = ctx.integer(f"SELECT count(*) FROM out_{source}")
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
    routing = folder / "expected_routing.csv"
    ctx.run(
        f"""
        COPY (
            SELECT * FROM expected_routing ORDER BY entity_type, entity_id, exception_code
        ) TO {_path_sql(routing)} (FORMAT csv, HEADER true)
        """
    )
    scenarios = folder / "scenarios.csv"
    ctx.run(
        f"COPY (SELECT * FROM scenario_truth ORDER BY order_id) TO {_path_sql(scenarios)} (FORMAT csv, HEADER true)"
    )
    written = [expected, routing, scenarios]
    if cfg.bad_rows_rate > 0:
        bad = folder / "bad_rows.csv"
        ctx.run(f"COPY (SELECT * FROM bad_lines ORDER BY ALL) TO {_path_sql(bad)} (FORMAT csv, HEADER true)")
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
    ctx.run(
        """
        CREATE TABLE scenario_truth AS
        SELECT f.order_id, f.scenario, o.status AS final_status,
               coalesce((SELECT string_agg(code, ',' ORDER BY code) FROM scenario_codes AS c
                         WHERE c.name = f.scenario), '') AS exception_codes
        FROM order_facts AS f JOIN order_final AS o USING (i)
        WHERE f.scenario IS NOT NULL
        """
    )
    counts = {
        str(code): int(n)
        for code, n in ctx.rows("SELECT exception_code, count(*) FROM expected_exceptions GROUP BY ALL")
    }
    return {code: counts.get(code, 0) for code in ALL_CODES}


def release_build_tables(ctx: Ctx) -> None:
    """Free the logical tables once every row is rendered (lower peak memory while writing)."""
    for table in (
        "lines_json",
        "order_versions",
        "order_final",
        "order_facts",
        "order_amounts",
        "order_lines",
        "order_plan",
        "payment_events",
        "movements",
        "stock_levels",
        "stock_pairs",
    ):
        ctx.run(f"DROP TABLE IF EXISTS {table}")
