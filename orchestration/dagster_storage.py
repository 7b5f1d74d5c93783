"""Dagster's SQLite instance storage, with the event log's database connections kept open.

Dagster's `SqliteEventLogStorage` creates a SQLAlchemy engine, opens a connection and disposes of
both for every event it stores, and a step's asset and check events are stored twice (the run's
shard and the cross-run index). A run of this project stores about 620 events: that cost 12 s of a
100-order run on this machine under load (25 ms an event; 11.6 ms with this class). This storage keeps one engine per
shard (a few shards a process: the index and the runs it writes or reads), so an event costs one
INSERT and one commit. The files, their schema and their journal mode (WAL) are Dagster's own: the
UI, the daemon and `dagster` commands read them as before, and a DAGSTER_HOME written by either class
works with the other.

Its connections commit with `synchronous=NORMAL`, SQLite's recommended setting for WAL: a commit
no longer waits for the disk (an fsync per event, 1.1 s of a 100-order run), the database stays
consistent after any crash, and a process that dies loses nothing; only a power cut or an operating
system crash can lose the events of the last moments, as the run then fails anyway.

`orchestration/dagster.yaml` selects it (`storage: custom:`); its base folder is DAGSTER_HOME,
as for Dagster's default storage.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as db
from dagster._core.storage.event_log.sqlite.sqlite_event_log import SqliteEventLogStorage
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage, _event_logs_directory
from dagster._serdes import ConfigurableClassData
from sqlalchemy.pool import StaticPool

OPEN_SHARDS = 8  # engines kept open; the least recently used one is disposed beyond that


def _commit_without_waiting_for_the_disk(dbapi_connection: Any, _record: Any) -> None:
    # WAL is what Dagster sets on its files too, after this connection opens a new shard's file
    dbapi_connection.execute("PRAGMA journal_mode=WAL")
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` with one open connection per shard instead of one per event."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        self._engines: OrderedDict[str, db.engine.Engine] = OrderedDict()
        self._engines_lock = threading.Lock()
        self._tables_present: set[str] = set()
        super().__init__(base_dir, inst_data=inst_data)

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Any
    ) -> PooledSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> db.engine.Engine:
        with self._engines_lock:
            engine = self._engines.get(shard)
            if engine is not None:
                self._engines.move_to_end(shard)
                return engine
            engine = create_engine(
                self.conn_string_for_shard(shard),
                poolclass=StaticPool,
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            db.event.listen(engine, "connect", _commit_without_waiting_for_the_disk)
            self._engines[shard] = engine
            while len(self._engines) > OPEN_SHARDS:
                _, oldest = self._engines.popitem(last=False)
                oldest.dispose()
            return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[db.engine.Connection]:
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def has_table(self, table_name: str) -> bool:
        """Dagster's check, remembered once it is true: Dagster asks it for every asset check event
        (`supports_asset_checks`), each time creating an engine and opening the index anew (0.33 s of a
        100-order run). Tables are only ever added, by a schema migration."""
        if table_name not in self._tables_present and super().has_table(table_name):
            self._tables_present.add(table_name)
        return table_name in self._tables_present

    def _dispose_engines(self) -> None:
        with self._engines_lock:
            while self._engines:
                _, engine = self._engines.popitem()
                engine.dispose()

    def wipe(self) -> None:
        self._dispose_engines()  # the run shards' files are deleted: no connection may outlive them
        super().wipe()

    def dispose(self) -> None:
        self._dispose_engines()
        super().dispose()


class OrderAuditSqliteStorage(DagsterSqliteStorage):
    """Dagster's default SQLite storage (same folders under `base_dir`) with the pooled event log."""

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None) -> None:
        super().__init__(base_dir, inst_data=inst_data)
        self._event_log_storage.dispose()
        self._event_log_storage = PooledSqliteEventLogStorage(_event_logs_directory(base_dir))

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Any
    ) -> OrderAuditSqliteStorage:
        return cls(inst_data=inst_data, **config_value)
