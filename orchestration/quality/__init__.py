"""Quality domain: Great Expectations suites (expectations/suites/) as blocking Dagster asset checks.

`defs` (in `definitions.py`) is loaded on first use: the GX fork server and the validation children it
forks import this package's GX modules only, without Dagster (0.6 s of every run's start-up).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dagster import Definitions


def __getattr__(name: str) -> Definitions:
    if name == "defs":
        from orchestration.quality.definitions import defs

        return defs
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
