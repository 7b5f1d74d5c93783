"""The serving file: where it is, which published version is on disk, and how to read it safely.

The pipeline replaces the file by rename (write-audit-publish), so a reader must:
- never hold a connection across page renders (it would keep reading a replaced file);
- open the file read-only, so it never takes the write lock the pipeline could need;
- not go through `duckdb.connect(path)`: DuckDB caches one database instance per path within a
  process, so while any other reader in the process still has the old file open, a new
  `duckdb.connect(path)` is handed that old instance. Attaching the path to a fresh in-memory
  database opens whatever file the path names now.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from orchestration.settings import Settings

SERVING_ALIAS = "serving"


def serving_db_path() -> Path:
    """The published serving file (env ORDER_AUDIT_SERVING_DB, default data/serving/order_audit.duckdb)."""
    return Settings.from_env().serving_db


@dataclass(frozen=True)
class FileSignature:
    """Identity of the file currently at a path: a publish (rename) changes the inode and mtime."""

    inode: int
    mtime_ns: int
    size: int


def file_signature(path: Path) -> FileSignature | None:
    """The signature of the file at `path`, or None when there is no file yet."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return FileSignature(inode=stat.st_ino, mtime_ns=stat.st_mtime_ns, size=stat.st_size)


def _sql_string(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


@contextmanager
def open_reader(path: Path, threads: int = 2) -> Iterator[duckdb.DuckDBPyConnection]:
    """A fresh read-only connection on the file at `path` now, closed on exit.

    The file is attached to a private in-memory database and made the default catalog, so queries
    name tables plainly (`select ... from fact_order_audit`).
    """
    if not path.is_file():
        raise FileNotFoundError(f"no serving file at {path}")
    con = duckdb.connect(":memory:", config={"threads": threads})
    try:
        con.execute("set TimeZone = 'UTC'")
        con.execute(f"attach {_sql_string(path)} as {SERVING_ALIAS} (read_only)")
        con.execute(f"use {SERVING_ALIAS}")
        yield con
    finally:
        con.close()
