"""The benchmark runs end to end at a tiny N, so it cannot rot (its figures are not asserted: shared machines)."""

from __future__ import annotations

import json
from pathlib import Path

from orchestration.bench import STAGES, run_benchmark


def test_benchmark_runs_and_writes_its_figures(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    report = run_benchmark(orders=60, days=2, seed=5, root=tmp_path / "work", output=output)
    written = json.loads(output.read_text())
    assert written["orders"] == 60 and len(written["runs"]) == 2
    for run in report["runs"]:
        assert run["succeeded"], f"{run['label']} run failed"
        assert set(run["stage_seconds"]) == set(STAGES)
        assert all(seconds > 0 for seconds in run["stage_seconds"].values()), run["stage_seconds"]
        assert run["peak_rss_mib"] > 0 and run["warehouse_mib"] > 0 and run["serving_mib"] > 0
    full, incremental = report["runs"]
    assert incremental["stage_rows"]["raw loading"] < full["stage_rows"]["raw loading"], "one more day only"
