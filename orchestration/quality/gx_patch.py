"""The one monkeypatch this project applies to Great Expectations (GX issue 11579), and one query
instead of two for each SQL expectation.

Measured with great-expectations 1.24.1, SQLAlchemy 2.0.58, duckdb-engine 0.17.0 and DuckDB 2.0.1.
GX's `SqlAlchemyExecutionEngine.execute_query` opens a connection, executes the query and
returns the *cursor* after the `with self.get_connection()` block has closed that connection. Most
drivers still let you fetch from it; duckdb-engine does not, so every metric computed through this
method (row counts, unexpected counts and rows, `UnexpectedRowsExpectation` queries, ...) fails and
the expectation comes back unsuccessful with an `exception_info`, i.e. N/A in Data Docs.

The fix keeps GX's own code path (same connection handling, same `_execute_query_with_recovery`)
and only buffers the rows *inside* the block: `result.freeze()` reads the whole result into a
`FrozenResult` and calling that returns a fresh, fully buffered `Result` with the same API
(`fetchall`, `fetchmany`, `fetchone`, `scalar`, `_asdict` rows). Statements without rows are returned
as they are. Buffering reads a query's whole result into memory: the runner keeps that small by
running column expectations with the SUMMARY result format (GX then LIMITs its unexpected-value
queries) and by writing SQL expectations that return one row per broken entity or aggregate.

One query per SQL expectation: an `UnexpectedRowsExpectation` needs two metrics, its unexpected rows
and their count, and GX computes each with a query of its own: the expectation's query, and
`SELECT COUNT(*) as unexpected_row_count FROM (<the query>) AS substituted_batch_subquery`, in either
order. So every SQL expectation ran twice (at 1M orders the mart stage's 13 ran 26 queries, 9.9 s).
Since the rows are buffered anyway, the patched method keeps each buffered result of a checkpoint
(`forget_results` drops them when the checkpoint ends): the count of a query whose rows it holds is
their number, and the rows of a query it counted it ran already. The warehouse is open read-only
and nothing writes it while the pipeline validates it, so the same text gives the same rows.
`tests/test_quality.py` shows every expectation still failing on a corrupted copy with the right
counts.

`tests/test_workarounds.py::test_gx_sql_engine_on_duckdb_still_needs_the_patch` validates one
expectation on a three-row DuckDB file without and with the patch: when a GX upgrade makes the
unpatched run compute its metrics, delete this module and its one caller (`orchestration.quality.runner`).
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa
from great_expectations.execution_engine.sqlalchemy_execution_engine import SqlAlchemyExecutionEngine
from sqlalchemy.engine import FrozenResult
from sqlalchemy.sql.elements import TextClause

_ORIGINAL_EXECUTE_QUERY = SqlAlchemyExecutionEngine.execute_query
# GX's QueryRowCount metric (great_expectations/expectations/metrics/query_metrics/query_row_count)
_COUNT_OF_QUERY = re.compile(
    r"SELECT COUNT\(\*\) as unexpected_row_count FROM \((?P<query>.*)\) AS substituted_batch_subquery",
    re.DOTALL,
)
# The buffered results of the current checkpoint, by execution engine and query text.
_results: dict[tuple[int, str], FrozenResult[Any]] = {}


def _execute_buffered(self: SqlAlchemyExecutionEngine, query: Any) -> Any:
    with self.get_connection() as connection:
        result = self._execute_query_with_recovery(connection, query)
        if result.returns_rows:
            # Read every row while the connection is still open; FrozenResult() is a new Result.
            frozen = result.freeze()
            if isinstance(query, TextClause):
                _results[(id(self), query.text)] = frozen
            result = frozen()
    return result


def _buffered_execute_query(self: SqlAlchemyExecutionEngine, query: Any) -> Any:
    if not isinstance(query, TextClause):
        return _execute_buffered(self, query)
    counted = _COUNT_OF_QUERY.fullmatch(query.text)
    if counted is None:
        held = _results.pop((id(self), query.text), None)
        return held() if held is not None else _execute_buffered(self, query)
    key = (id(self), counted["query"])
    if key not in _results:
        _execute_buffered(self, sa.text(counted["query"]))
    rows = len(_results[key]().fetchall())
    return _execute_buffered(self, sa.text(f"SELECT {rows} AS unexpected_row_count"))


def forget_results() -> None:
    """Drop the results held for the checkpoint that ended."""
    _results.clear()


_buffered_execute_query.__doc__ = _ORIGINAL_EXECUTE_QUERY.__doc__


def apply() -> None:
    """Buffer query results inside the connection block (idempotent)."""
    SqlAlchemyExecutionEngine.execute_query = _buffered_execute_query  # type: ignore[method-assign]


def revert() -> None:
    """Restore GX's own `execute_query` (used by the test that shows the patch is still needed)."""
    SqlAlchemyExecutionEngine.execute_query = _ORIGINAL_EXECUTE_QUERY  # type: ignore[method-assign]
