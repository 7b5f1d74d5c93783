"""What the GX fork server imports before it forks validation children (see `launcher.prewarm`).

Works around pyspark 4.3.0 (installed with the `spark` extra; GX 1.24.1 imports it when present):
`pyspark.sql.connect.utils.check_dependencies` takes a `__main__` module with neither `__spec__` nor
`__file__` for a doctest run and, as Spark Connect's optional dependencies (google.rpc) are missing,
prints "Skipping doctests" and calls `sys.exit(0)` in the middle of `import great_expectations`.
multiprocessing's fork server always runs as `python -c ...`, which is exactly such a main module, so
the server exits silently while it preloads GX and every validation child then fails to start.
CPython 3.11 and 3.12 do not let the server take the caller's main module instead: their fork server
ignores "__main__" in `set_forkserver_preload` (CPython issue 126631: the main path is passed under a
key the server never reads), so naming a main file here is the simplest thing that works.

`tests/test_workarounds.py` shows that importing GX from `python -c` still exits early; when it no
longer does, delete the three lines below and preload `orchestration.quality.runner` directly.
"""

import gc
import sys

_main = sys.modules["__main__"]
if getattr(_main, "__spec__", None) is None and not hasattr(_main, "__file__"):
    _main.__file__ = "<multiprocessing fork server>"

import orchestration.quality.runner  # noqa: E402,F401  (the slow import this module exists for)
from orchestration.quality.docs_templates import share_compiled_templates  # noqa: E402

share_compiled_templates(warm=True)  # every child's Data Docs start from GX's compiled templates

# The children forked from here never free GX's modules: the cycle collector need not walk them again.
gc.freeze()
