"""The one monkeypatch this project applies to Great Expectations (GX issue 11579).

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

`tests/test_workarounds.py::test_gx_sql_engine_on_duckdb_still_needs_the_patch` validates one
expectation on a three-row DuckDB file without and with the patch: when a GX upgrade makes the
unpatched run compute its metrics, delete this module and its one caller (`orchestration.quality.runner`).
"""

from __future__ import annotations

from typing import Any

from great_expectations.execution_engine.sqlalchemy_execution_engine import SqlAlchemyExecutionEngine

_ORIGINAL_EXECUTE_QUERY = SqlAlchemyExecutionEngine.execute_query


def _buffered_execute_query(self: SqlAlchemyExecutionEngine, query: Any) -> Any:
    with self.get_connection() as connection:
        result = self._execute_query_with_recovery(connection, query)
        if result.returns_rows:
            # Read every row while the connection is still open; FrozenResult() is a new Result.
            result = result.freeze()()
    return result


_buffered_execute_query.__doc__ = _ORIGINAL_EXECUTE_QUERY.__doc__


def apply() -> None:
    """Buffer query results inside the connection block (idempotent)."""
    SqlAlchemyExecutionEngine.execute_query = _buffered_execute_query  # type: ignore[method-assign]


def revert() -> None:
    """Restore GX's own `execute_query` (used by the test that shows the patch is still needed)."""
    SqlAlchemyExecutionEngine.execute_query = _ORIGINAL_EXECUTE_QUERY  # type: ignore[method-assign]
