"""Shared fixtures: a real pipeline run (generator -> Dagster -> DuckDB -> dbt -> publish) in a temp folder."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

_main = sys.modules["__main__"]
if getattr(_main, "__spec__", None) is None and not hasattr(_main, "__file__"):
    # A pytest-xdist worker runs as `python -c`. pyspark (imported by GX) takes a main module without
    # a file for a doctest run and exits, and each child forked from the GX fork server re-runs the
    # caller's main module file: give it one that does nothing (as
    # orchestration/quality/forkserver_preload.py does for the server).
    _main.__file__ = str(Path(__file__).with_name("xdist_main.py"))

from orchestration.transform.manifest import prepare_manifest  # noqa: E402

SAMPLE_ORDERS = 600
SAMPLE_SEED = 7


@dataclass(frozen=True)
class PipelineEnv:
    root: Path
    extracts: Path
    warehouse: Path
    serving_db: Path
    dagster_home: Path

    def as_environ(self) -> dict[str, str]:
        return {
            "ORDER_AUDIT_EXTRACTS_DIR": str(self.extracts),
            "ORDER_AUDIT_WAREHOUSE": str(self.warehouse),
            "ORDER_AUDIT_SERVING_DB": str(self.serving_db),
            "DAGSTER_HOME": str(self.dagster_home),
            # Data Docs of its own: pytest-xdist runs two tests at a time, and data/gx_docs is shared.
            "ORDER_AUDIT_GX_DOCS_DIR": str(self.root / "gx_docs"),
        }


# Columns whose values belong to the run that wrote the row (ids, load and publish stamps, the landing
# file's absolute path): tests that compare two runs' tables leave them out.
PER_RUN_COLUMNS = frozenset(
    {
        "load_id",
        "loaded_through",
        "loaded_at",
        "file_path",
        "quarantined_at",
        # raw.<table>_superseded: the load that superseded a row and when
        "superseded_by_load_id",
        "superseded_at",
        "run_id",
        "validated_at",
        "published_at",
        # notify.outbox: when and by which run a change was queued and its digest sent
        "queued_at",
        "queued_by_run",
        "sent_at",
        "sent_by_run",
        "digest_id",
    }
)


def run_environ(env: PipelineEnv, **settings: str) -> dict[str, str]:
    """The environment of an `order-audit run` child process on `env`: this one's, without its
    ORDER_AUDIT_* settings and Dagster home, plus the env's, a temp folder of its own (the GX
    launcher's per-validation folders land there) and `settings` (ORDER_AUDIT_<NAME>)."""
    inherited = {
        k: v for k, v in os.environ.items() if not k.startswith("ORDER_AUDIT_") and k != "DAGSTER_HOME"
    }
    temp = env.root / "tmp"
    temp.mkdir(parents=True, exist_ok=True)
    env.dagster_home.mkdir(parents=True, exist_ok=True)
    return {
        **inherited,
        **env.as_environ(),
        **{f"ORDER_AUDIT_{name.upper()}": value for name, value in settings.items()},
        "TMPDIR": str(temp),
        "PYTHONUNBUFFERED": "1",
    }


def pipeline_env(root: Path) -> PipelineEnv:
    env = PipelineEnv(
        root, root / "extracts", root / "warehouse.duckdb", root / "serving" / "oa.duckdb", root / "dh"
    )
    env.dagster_home.mkdir(parents=True, exist_ok=True)
    return env


@pytest.fixture(scope="session", autouse=True)
def dbt_manifest() -> None:
    """Tests and CI build the dbt manifest themselves (prepare_if_dev only acts under `dagster dev`)."""
    prepare_manifest()


@pytest.fixture(scope="session")
def isolated_environ() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


_DAGSTER_HOME_LOCK = threading.Lock()


def instance_at(dagster_home: Path) -> Any:
    """The Dagster instance of a DAGSTER_HOME other than this process's (the project's dagster.yaml
    names its storage folder as `env: DAGSTER_HOME`, read when the instance is made). Tests that run
    chains in threads call it from several threads: the variable is process-wide, hence the lock."""
    from dagster import DagsterInstance

    with _DAGSTER_HOME_LOCK:
        saved = os.environ.get("DAGSTER_HOME")
        os.environ["DAGSTER_HOME"] = str(dagster_home)
        try:
            return DagsterInstance.from_config(str(dagster_home))
        finally:
            if saved is None:
                os.environ.pop("DAGSTER_HOME")
            else:
                os.environ["DAGSTER_HOME"] = saved


def use_env(env: PipelineEnv) -> None:
    os.environ.update(env.as_environ())


@pytest.fixture(scope="session")
def sample_pipeline(tmp_path_factory: pytest.TempPathFactory, isolated_environ: None) -> PipelineEnv:
    """Seeded sample extracts with bad rows, run once end to end through `order-audit run`."""
    from orchestration.cli import main
    from orchestration.generator import generate

    env = pipeline_env(tmp_path_factory.mktemp("pipeline"))
    generate(env.extracts, orders=SAMPLE_ORDERS, seed=SAMPLE_SEED, days=8, bad_rows_rate=0.02)
    use_env(env)
    assert main(["run"]) == 0, "order-audit run failed on the sample data"
    return env
