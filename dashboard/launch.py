"""Start the dashboard: `streamlit run dashboard/app.py` bound to 127.0.0.1, headless, no telemetry.

`main(port)` blocks until Streamlit exits (Ctrl-C stops it) and returns its exit code;
`command(port)` is the argv it runs, for callers that manage the process themselves.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

APP_PATH = Path(__file__).resolve().parent / "app.py"
PROJECT_ROOT = APP_PATH.parent.parent
DEFAULT_PORT = 8501
DEFAULT_ADDRESS = "127.0.0.1"


def command(port: int = DEFAULT_PORT, address: str = DEFAULT_ADDRESS) -> list[str]:
    """The `streamlit run` command line for the dashboard, with this interpreter's Streamlit."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_PATH),
        "--server.address",
        address,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
    ]


def environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for the Streamlit process: the repo importable, everything else inherited
    (ORDER_AUDIT_SERVING_DB picks the serving file)."""
    env = dict(os.environ if base is None else base)
    paths = [str(PROJECT_ROOT), *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def main(port: int = DEFAULT_PORT, address: str = DEFAULT_ADDRESS) -> int:
    """Run the dashboard in the foreground until it stops; Streamlit's exit code.

    Ctrl-C or SIGTERM to this process is passed on to Streamlit, so it never outlives its launcher.
    """
    print(f"Order audit dashboard on http://{address}:{port} (Ctrl-C to stop)", flush=True)
    process = subprocess.Popen(command(port, address), cwd=PROJECT_ROOT, env=environment())

    def forward(signum: int, _frame: FrameType | None) -> None:
        if process.poll() is None:
            process.send_signal(signum)

    try:
        previous = signal.signal(signal.SIGTERM, forward)
    except ValueError:  # not the main thread: no handler, Ctrl-C handling below still applies
        previous = None
    try:
        return process.wait()
    except KeyboardInterrupt:
        forward(signal.SIGINT, None)
        try:
            return process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_PORT))
