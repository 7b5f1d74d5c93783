"""`order-audit ui` starts the Dagster UI and stops it with every process it started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def _dagster_groups(port: int) -> set[int]:
    """The process groups of the `dagster dev` processes serving `port`."""
    listing = subprocess.run(["ps", "-eo", "pgid=,args="], capture_output=True, text=True, check=True).stdout
    return {
        int(line.split()[0])
        for line in listing.splitlines()
        if f"--port {port}" in line and "dagster" in line and "orchestration.cli" not in line
    }


def _ignore_sigint() -> None:  # as a background job of a shell script starts: SIGINT ignored
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_ui_stops_with_all_its_processes_even_started_with_sigint_ignored(tmp_path: Path) -> None:
    port = _free_port()
    log = (tmp_path / "ui.log").open("w")
    ui = subprocess.Popen(
        [sys.executable, "-m", "orchestration.cli", "ui", "--port", str(port)],
        env=os.environ | {"DAGSTER_HOME": str(tmp_path / "dagster_home")},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # the test's own group, to clean up whatever happens
        preexec_fn=_ignore_sigint,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=2) as answer:
                    assert answer.status == 200
                    break
            except OSError:
                assert ui.poll() is None, (tmp_path / "ui.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "the UI did not answer within 120 s"
                time.sleep(1)
        dagster_groups = _dagster_groups(port)
        assert len(dagster_groups) == 1 and ui.pid not in dagster_groups, (
            "dagster dev runs in a group of its own"
        )
        (group,) = dagster_groups

        stopped_at = time.monotonic()
        ui.send_signal(signal.SIGTERM)  # a supervisor stopping it; Ctrl-C takes the same path
        assert ui.wait(timeout=60) == 130
        took = time.monotonic() - stopped_at
        assert not _group_alive(group), "every process of `dagster dev` is gone"
        printed = (tmp_path / "ui.log").read_text()
        assert "stopping them harder" not in printed, (
            f"SIGINT did not stop it ({took:.1f} s): {printed[-2000:]}"
        )
        assert "Dagster services shut down" in printed
    finally:  # whatever failed: leave no process behind
        for group in {ui.pid, *_dagster_groups(port)}:
            if _group_alive(group):
                os.killpg(group, signal.SIGKILL)
        log.close()
