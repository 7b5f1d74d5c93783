"""Each workaround of a library behaviour is still needed with the pinned versions.

Every test here asserts that the *unpatched* library still misbehaves (or still has the private member a
workaround overrides). When an upgrade makes one fail, the message names the module to delete or
simplify. Fast: one tiny DuckDB file, stubbed dbt invocations, two short Python processes.
"""

from __future__ import annotations

import importlib.util
import inspect
import json
import multiprocessing.spawn
import os
import re
import subprocess
import sys
import threading
from collections.abc import Sequence
from functools import cached_property
from importlib.metadata import version as installed_version
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import pytest
from dagster_dbt import DagsterDbtProjectPreparer, DbtCliResource
from dagster_dbt.core import resource as dagster_dbt_resource
from dagster_dbt.core.dbt_cli_invocation import DbtCliInvocation

from orchestration.quality import gx_patch
from orchestration.transform import manifest
from orchestration.transform.dbt_cli import OrderAuditDbtCli
from orchestration.transform.project import dbt_cli, dbt_executable, dbt_project

# ------------------------------------------------------------------ GX issue 11579: orchestration/quality/gx_patch.py


def _validate_not_null(warehouse: Path, name: str) -> Any:
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_sql(
        name, connection_string=f"duckdb:///{warehouse}?access_mode=read_only", create_temp_table=False
    )
    batch = source.add_table_asset("t", table_name="t").add_batch_definition_whole_table("t").get_batch()
    return batch.validate(gxe.ExpectColumnValuesToNotBeNull(column="x"))


def test_gx_sql_engine_on_duckdb_still_needs_the_patch(tmp_path: Path) -> None:
    warehouse = tmp_path / "tiny.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create table t as select * from (values (1), (2), (null)) v(x)")
    was_applied = gx_patch.SqlAlchemyExecutionEngine.execute_query is not gx_patch._ORIGINAL_EXECUTE_QUERY
    gx_patch.revert()
    try:
        unpatched = _validate_not_null(warehouse, "unpatched")
        gx_patch.apply()
        patched = _validate_not_null(warehouse, "patched")
    finally:
        gx_patch.apply() if was_applied else gx_patch.revert()

    assert not unpatched.success and unpatched.result == {} and unpatched.exception_info, (
        "GX computed the metrics without orchestration/quality/gx_patch.py: GX issue 11579 looks fixed, "
        f"delete the patch and its caller in orchestration/quality/runner.py ({unpatched.result})"
    )
    assert patched.result["element_count"] == 3 and patched.result["unexpected_count"] == 1, patched
    assert not patched.success  # the null row: a real failure, not an N/A


def test_gx_still_runs_an_sql_expectation_twice_and_the_patch_once(tmp_path: Path) -> None:
    """GX computes an UnexpectedRowsExpectation's rows and their count with two queries; the patch
    answers the second from the buffered first, with the same verdict and count."""
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.execution_engine.sqlalchemy_execution_engine import SqlAlchemyExecutionEngine

    warehouse = tmp_path / "tiny.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create table t as select * from (values (1), (-2), (-3), (4)) v(x)")
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_sql(
        "tiny", connection_string=f"duckdb:///{warehouse}?access_mode=read_only", create_temp_table=False
    )
    batch = source.add_table_asset("t", table_name="t").add_batch_definition_whole_table("t").get_batch()
    expectation = gxe.UnexpectedRowsExpectation(
        unexpected_rows_query="select x /* negative */ from {batch} where x < 0"
    )

    executed: list[str] = []
    recover = SqlAlchemyExecutionEngine._execute_query_with_recovery

    def counting(connection: Any, query: Any) -> Any:
        executed.append(str(getattr(query, "text", query)))
        return recover(connection, query)

    was_applied = gx_patch.SqlAlchemyExecutionEngine.execute_query is not gx_patch._ORIGINAL_EXECUTE_QUERY
    SqlAlchemyExecutionEngine._execute_query_with_recovery = staticmethod(counting)  # type: ignore[method-assign,assignment]
    try:
        gx_patch.apply()
        patched = batch.validate(expectation, result_format="COMPLETE")
        patched_runs = sum("/* negative */" in text for text in executed)
        gx_patch.forget_results()
        gx_patch.revert()
        executed.clear()
        batch.validate(expectation, result_format="COMPLETE")
        unpatched_runs = sum("/* negative */" in text for text in executed)
    finally:
        SqlAlchemyExecutionEngine._execute_query_with_recovery = staticmethod(recover)  # type: ignore[method-assign,assignment]
        gx_patch.forget_results()
        gx_patch.apply() if was_applied else gx_patch.revert()

    assert not patched.success and patched.result.get("observed_value") == 2, patched
    assert sorted(row["x"] for row in patched.result["details"]["unexpected_rows"]) == [-3, -2]
    assert patched_runs == 1, executed
    assert unpatched_runs >= 2, (
        "GX now computes an SQL expectation with one query: drop the result reuse from "
        "orchestration/quality/gx_patch.py"
    )


# ------------------------------------------------------------------ GX Data Docs: orchestration/quality/docs_templates.py

# Templates that render without a document and without the time of day (top_navbar.j2 stamps its links).
_TEMPLATES_WITHOUT_CONTEXT = (
    "sidebar.j2",
    "table_of_contents.j2",
    "page_action_card.j2",
    "js_script_imports.j2",
)


def test_gx_still_compiles_its_templates_per_view_and_the_shared_ones_render_the_same(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from great_expectations.render.view.view import DefaultJinjaPageView, DefaultJinjaView

    from orchestration.quality import docs_templates

    monkeypatch.setattr(DefaultJinjaView, "__init__", docs_templates._gx_view_init)  # GX's own
    first, second = DefaultJinjaPageView(), DefaultJinjaPageView()
    assert (
        first.env is not second.env and first.env.bytecode_cache is None and second.env.bytecode_cache is None
    ), "GX shares compiled templates between its views now: delete orchestration/quality/docs_templates.py"
    by_gx = {name: first.env.get_template(name).render() for name in _TEMPLATES_WITHOUT_CONTEXT}

    docs_templates.share_compiled_templates(warm=True)
    assert len(docs_templates.SHARED_CACHE) >= 40, "every GX template is compiled once"
    compiled_again: list[str] = []
    dump = docs_templates.SHARED_CACHE.dump_bytecode
    monkeypatch.setattr(
        docs_templates.SHARED_CACHE,
        "dump_bytecode",
        lambda bucket: (compiled_again.append(bucket.key), dump(bucket)),
    )
    shared = DefaultJinjaPageView()
    assert shared.env.bytecode_cache is docs_templates.SHARED_CACHE
    assert {name: shared.env.get_template(name).render() for name in _TEMPLATES_WITHOUT_CONTEXT} == by_gx
    assert compiled_again == [], "a new view loads the compiled templates"


# ------------------------------------------------------------------ pyspark and the fork server: forkserver_preload.py


@pytest.mark.skipif(
    importlib.util.find_spec("pyspark") is None, reason="pyspark (the spark extra) not installed"
)
def test_pyspark_still_ends_a_gx_import_in_a_main_module_without_a_file() -> None:
    probe = "import {module}; print('imported')"

    def run(module: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", probe.format(module=module)], capture_output=True, text=True, timeout=120
        )

    bare = run("great_expectations")
    assert "imported" not in bare.stdout and "Skipping doctests" in bare.stderr, (
        "pyspark no longer exits a `python -c` process that imports GX: delete the __main__.__file__ fake "
        "in orchestration/quality/forkserver_preload.py"
    )
    preloaded = run("orchestration.quality.forkserver_preload")
    assert preloaded.returncode == 0 and "imported" in preloaded.stdout, preloaded.stderr[-2000:]


def test_the_fork_server_still_cannot_preload_the_callers_main_module() -> None:
    # multiprocessing.forkserver passes only these keys of the preparation data to the server, and
    # imports the caller's main module there only when "main_path" is among them (CPython issue 126631).
    data = multiprocessing.spawn.get_preparation_data("probe")
    assert "main_path" not in data, (
        "CPython's fork server can preload __main__ now: forkserver_preload.py could preload the caller's "
        "main module instead of faking its __file__"
    )


# ------------------------------------------------------------------ dagster-dbt internals: orchestration/transform/dbt_cli.py


def test_the_overridden_dagster_dbt_members_keep_their_signatures_and_use() -> None:
    # A dagster-dbt upgrade that renames or reshapes these would silently bring the start-up costs back.
    assert isinstance(DbtCliResource.__dict__.get("_cli_version"), cached_property)
    adapter = DbtCliResource.__dict__.get("_initialize_dbt_core_adapter")
    assert callable(adapter) and list(inspect.signature(adapter).parameters) == ["self", "args"]
    cli_source = inspect.getsource(DbtCliResource.cli)
    assert "self._cli_version" in cli_source and "self._initialize_dbt_core_adapter(args)" in cli_source
    assert 'check_output([self.dbt_executable, "--version"])' in inspect.getsource(
        DbtCliResource.__dict__["_cli_version"].func
    )


def test_dagster_dbt_still_starts_dbt_through_its_modules_popen_and_reads_only_what_in_process_dbt_has() -> (
    None
):
    # orchestration/transform/in_process.py stands in for the `subprocess.Popen` that
    # `DbtCliInvocation.run` starts (it swaps the module's `subprocess` for the call). When dagster-dbt
    # starts dbt another way, or uses more of the process, the stand-in must change with it.
    import dagster_dbt.core.dbt_cli_invocation as invocation_module

    from orchestration.transform.in_process import InProcessDbt

    assert invocation_module.subprocess is subprocess
    assert "subprocess.Popen(" in inspect.getsource(DbtCliInvocation.run)
    source = inspect.getsource(DbtCliInvocation)
    used = set(re.findall(r"self\.process\.(\w+)", source))
    assert used <= {name for name in dir(InProcessDbt) if not name.startswith("_")} | {
        "args",
        "returncode",
        "stdout",
    }, used


@pytest.fixture
def recorded_dbt_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Record `dbt --version` probes and dbt invocations instead of running either."""
    calls: list[tuple[str, Any]] = []

    def check_output(command: Sequence[str], *args: Any, **kwargs: Any) -> bytes:
        calls.append(("check_output", list(command)))
        return f"Core:\n  - installed: {installed_version('dbt-core')}\n".encode()

    def run(**kwargs: Any) -> SimpleNamespace:
        calls.append(("invocation", kwargs))
        return SimpleNamespace(wait=lambda: None)

    monkeypatch.setattr(dagster_dbt_resource, "check_output", check_output)
    monkeypatch.setattr(DbtCliInvocation, "run", staticmethod(run))
    monkeypatch.setattr(DbtCliResource, "_initialize_dbt_core_adapter", lambda self, args: "adapter")
    return calls


def test_the_dbt_resource_runs_no_dbt_version_probe_and_builds_no_adapter(
    recorded_dbt_calls: list[tuple[str, Any]], tmp_path: Path
) -> None:
    plain = DbtCliResource(project_dir=dbt_project, dbt_executable=dbt_executable())
    plain.cli(["parse"], target_path=tmp_path)
    probes = [call for kind, call in recorded_dbt_calls if kind == "check_output"]
    (invocation,) = [call for kind, call in recorded_dbt_calls if kind == "invocation"]
    assert probes == [[dbt_executable(), "--version"]] and invocation["adapter"] == "adapter", (
        "DbtCliResource no longer probes `dbt --version` or builds an adapter: "
        "delete orchestration/transform/dbt_cli.py"
    )

    recorded_dbt_calls.clear()
    resource = dbt_cli()
    assert isinstance(resource, OrderAuditDbtCli)
    resource.cli(["parse"], target_path=tmp_path)
    (invocation,) = [call for kind, call in recorded_dbt_calls if kind == "invocation"]
    assert not [call for kind, call in recorded_dbt_calls if kind == "check_output"]
    assert invocation["adapter"] is None
    assert str(invocation["cli_version"]) == installed_version("dbt-core")


# ------------------------------------------------------------------ dagster-dbt's preparer: orchestration/transform/manifest.py


def test_dagster_dbts_preparer_still_parses_when_nothing_changed(
    recorded_dbt_calls: list[tuple[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert manifest.manifest_is_current()  # the session's dbt_manifest fixture parsed the project
    # The preparer builds a DbtCliResource without dbt_executable: dbt must be on PATH.
    monkeypatch.setenv("PATH", f"{Path(dbt_executable()).parent}:{Path(sys.executable).parent}")
    invalidated = []
    monkeypatch.setattr(
        DagsterDbtProjectPreparer, "_invalidate_seeds_in_partial_parse", lambda self, p: invalidated.append(p)
    )

    DagsterDbtProjectPreparer().prepare(dbt_project)
    parses = [call["args"] for kind, call in recorded_dbt_calls if kind == "invocation"]
    assert parses and "parse" in parses[0] and invalidated, (
        "dagster-dbt's preparer no longer parses an unchanged project: use it instead of "
        "orchestration/transform/manifest.py's freshness check"
    )

    recorded_dbt_calls.clear()
    manifest.prepare_manifest()
    assert recorded_dbt_calls == []  # the project's check: nothing changed, no dbt


def test_loading_the_dbt_assets_parses_a_stale_manifest_first() -> None:
    """Importing any module of orchestration.transform defines the dbt assets from target/manifest.json,
    before a caller could parse: a model added since the last parse was built by dbt but unknown to the
    assets, and the run's dbt step failed with a KeyError on its unique id."""
    manifest_file = dbt_project.manifest_path
    assert manifest.manifest_is_current()
    stale = manifest.newest_source_file_time() - 60
    os.utime(manifest_file, (stale, stale))
    loaded = subprocess.run(
        [sys.executable, "-c", "import orchestration.transform.assets"],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        check=False,
    )
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert manifest.manifest_is_current(), (
        "the dbt assets were defined from a manifest older than the project"
    )


def test_the_manifest_is_stale_once_any_dbt_source_file_is_newer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "dbt_project"
    (project / "models").mkdir(parents=True)
    (project / "target").mkdir()
    (project / "logs").mkdir()
    model = project / "models" / "a.sql"
    model.write_text("select 1\n")
    manifest_file = project / "target" / "manifest.json"
    monkeypatch.setattr(manifest, "DBT_PROJECT_DIR", project)
    monkeypatch.setattr(manifest, "dbt_project", SimpleNamespace(manifest_path=manifest_file))

    assert not manifest.manifest_is_current()  # no manifest yet
    manifest_file.write_text("{}")
    assert manifest.manifest_is_current()
    (project / "logs" / "dbt.log").write_text("build outputs do not count\n")
    assert manifest.manifest_is_current()
    later = manifest_file.stat().st_mtime + 5
    os.utime(model, (later, later))
    assert not manifest.manifest_is_current()


def test_a_parse_never_shows_a_reader_half_a_manifest() -> None:
    """`dagster dev` parses again on every load of the code location, while other processes (a run, its
    tests) read target/manifest.json without the parse lock: each read gets a whole file."""
    path = dbt_project.manifest_path
    reads, cut_short = 0, 0
    parsing = threading.Event()
    parsing.set()

    def read_until_parsed() -> None:
        nonlocal reads, cut_short
        while parsing.is_set():
            text = path.read_bytes()
            reads += 1
            try:
                json.loads(text)
            except ValueError:
                cut_short += 1

    reader = threading.Thread(target=read_until_parsed)
    reader.start()
    try:
        manifest._parse_project(unless_current=False)
    finally:
        parsing.clear()
        reader.join()
    assert reads > 10 and cut_short == 0, (reads, cut_short)
    assert manifest.manifest_is_current()


# ------------------------------------------------------------------ Python 3.11's fork server socket under a long TMPDIR

_START_THE_FORK_SERVER = "from multiprocessing import forkserver; forkserver.ensure_running()"
_PREWARM = "from orchestration.quality.launcher import prewarm; prewarm()"


def test_a_long_tmpdir_still_breaks_the_fork_server_and_prewarm_keeps_its_socket_short(
    tmp_path: Path,
) -> None:
    """With TMPDIR at 80 characters, the fork server's socket path passes Linux's 107 bytes: Python 3.11
    fails with "AF_UNIX path too long" (a run under pytest's deep temp folders did), `prewarm` starts it."""
    long_tmpdir = tmp_path / ("t" * max(1, 80 - len(str(tmp_path)) - 1))
    long_tmpdir.mkdir()
    environment = {**os.environ, "TMPDIR": str(long_tmpdir)}

    def run(code: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=120
        )

    unpatched = run(_START_THE_FORK_SERVER)
    if unpatched.returncode == 0:
        pytest.fail(
            "Python now keeps the fork server's socket short itself: remove _keep_the_socket_path_short"
        )
    assert "AF_UNIX path too long" in unpatched.stderr
    prewarmed = run(_PREWARM)
    assert prewarmed.returncode == 0, prewarmed.stderr
    assert not any(long_tmpdir.iterdir())
