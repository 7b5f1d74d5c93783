"""The DuckDB session of one generation run and the SQL macros every module shares.

Pseudo-randomness is `hash(seed, key, tag)`: the same seed gives the same numbers on every run,
whatever the thread count, and no row depends on another row's draw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from orchestration.generator.config import GenerationConfig, ts_literal

# (minutes east of UTC, suffix). Z is the most common; the rest exercise offset parsing.
OFFSETS: tuple[tuple[int, str], ...] = (
    (0, "Z"),
    (0, "Z"),
    (0, "Z"),
    (0, "Z"),
    (60, "+01:00"),
    (-300, "-05:00"),
    (540, "+09:00"),
    (330, "+05:30"),
    (0, "+00:00"),
    (-480, "-08:00"),
)


@dataclass(frozen=True)
class Ctx:
    con: duckdb.DuckDBPyConnection
    cfg: GenerationConfig

    def run(self, sql: str) -> None:
        self.con.execute(sql)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.con.execute(sql).fetchall()

    def integer(self, sql: str) -> int:
        value = self.con.execute(sql).fetchall()[0][0]
        return int(value) if value is not None else 0

    def ts(self, name: str) -> str:
        """A config instant as a SQL TIMESTAMP literal, e.g. `ctx.ts("as_of")`."""
        return ts_literal(getattr(self.cfg, name))


def _macros(seed: int) -> list[str]:
    minutes = "[" + ", ".join(str(m) for m, _ in OFFSETS) + "]"
    suffixes = "[" + ", ".join(f"'{s}'" for _, s in OFFSETS) + "]"
    n = len(OFFSETS)
    return [
        # raw hash, uniform [0, 1) double, integer in [lo, hi]
        f"CREATE OR REPLACE TEMP MACRO hx(k, tag) AS hash({seed}, k, tag)",
        f"CREATE OR REPLACE TEMP MACRO ru(k, tag) AS (hash({seed}, k, tag) % 1000000)::DOUBLE / 1000000.0",
        f"""CREATE OR REPLACE TEMP MACRO ri(k, tag, lo, hi) AS
            ((lo)::BIGINT + (hash({seed}, k, tag) % ((hi) - (lo) + 1)::UBIGINT)::BIGINT)""",
        "CREATE OR REPLACE TEMP MACRO secs(n) AS to_microseconds(((n)::BIGINT) * 1000000)",
        # ISO 8601 text of a UTC instant in an offset picked by `k`; fraction only when non-zero
        f"""CREATE OR REPLACE TEMP MACRO fmt_ts(ts, k) AS
            strftime(ts + to_minutes(list_extract({minutes}, (hash({seed}, k, 'tz') % {n})::INTEGER + 1)),
                     '%Y-%m-%dT%H:%M:%S')
            || CASE WHEN epoch_us(ts) % 1000000 = 0 THEN ''
                    ELSE '.' || lpad((epoch_us(ts) % 1000000)::VARCHAR, 6, '0') END
            || list_extract({suffixes}, (hash({seed}, k, 'tz') % {n})::INTEGER + 1)""",
        # money: exact decimals, rounded half away from zero to `e` decimals, and their text
        """CREATE OR REPLACE TEMP MACRO round_to(x, e) AS (CASE e
                WHEN 0 THEN round(x, 0)::DECIMAL(18, 4) WHEN 1 THEN round(x, 1)::DECIMAL(18, 4)
                WHEN 3 THEN round(x, 3)::DECIMAL(18, 4) ELSE round(x, 2)::DECIMAL(18, 4) END)""",
        """CREATE OR REPLACE TEMP MACRO fmt_money(x, e) AS (CASE e
                WHEN 0 THEN CAST(CAST(x AS DECIMAL(18, 0)) AS VARCHAR)
                WHEN 1 THEN CAST(CAST(x AS DECIMAL(18, 1)) AS VARCHAR)
                WHEN 3 THEN CAST(CAST(x AS DECIMAL(18, 3)) AS VARCHAR)
                WHEN 4 THEN CAST(CAST(x AS DECIMAL(18, 4)) AS VARCHAR)
                ELSE CAST(CAST(x AS DECIMAL(18, 2)) AS VARCHAR) END)""",
        """CREATE OR REPLACE TEMP MACRO minor_unit(e) AS
            (CASE e WHEN 0 THEN 1 WHEN 3 THEN 0.001 ELSE 0.01 END)::DECIMAL(18, 4)""",
        # RFC 4180 field: quoted when it holds a quote, comma, line break or surrounding blanks
        """CREATE OR REPLACE TEMP MACRO csvq(v) AS (CASE
                WHEN v IS NULL THEN ''
                WHEN regexp_matches(v, '[",\\r\\n]') OR v <> trim(v) THEN '"' || replace(v, '"', '""') || '"'
                ELSE v END)""",
    ]


def open_session(cfg: GenerationConfig) -> Ctx:
    con = duckdb.connect(":memory:")
    con.execute("SET enable_progress_bar = false")
    ctx = Ctx(con=con, cfg=cfg)
    for sql in _macros(cfg.seed):
        ctx.run(sql)
    ctx.run(
        f"""CREATE OR REPLACE TEMP MACRO day_index(ts) AS
            greatest(0, least({cfg.days - 1}, date_diff('day', DATE '{cfg.start_date.isoformat()}', (ts)::DATE)))"""
    )
    ctx.run(
        f"""CREATE OR REPLACE TEMP MACRO day_text(d) AS
            strftime(DATE '{cfg.start_date.isoformat()}' + (d)::INTEGER, '%Y-%m-%d')"""
    )
    return ctx
