"""What the GX fork server imports before it forks validation children (see `launcher.prewarm`).

The fork server runs as `python -c ...`, so its `__main__` has neither `__spec__` nor `__file__`.
pyspark (installed with the `spark` extra, and imported by GX when present) takes exactly that for a
doctest run and calls `sys.exit(0)` in `pyspark.sql.connect.utils.check_dependencies`, killing the
server silently. Naming the main module first keeps the server alive.
"""

import sys

_main = sys.modules["__main__"]
if getattr(_main, "__spec__", None) is None and not hasattr(_main, "__file__"):
    _main.__file__ = "<multiprocessing fork server>"

import orchestration.quality.runner  # noqa: E402,F401  (the slow import this module exists for)
