"""GX Data Docs without compiling GX's page templates again for every page.

Works around great-expectations 1.24.1 (`great_expectations/render/view/view.py`): every
`DefaultJinjaView` (one per rendered page or section) builds a Jinja `Environment` of its own, so each
page compiles the templates it uses from their source again (parse, code generation, `compile()`).
Building a stage's Data Docs took 0.21 s of a 0.60 s mart-stage child at 100 orders, most of it
that compiling.

`share_compiled_templates()` gives every view's environment one in-memory Jinja bytecode cache,
Jinja's own mechanism for reusing compiled templates across environments (the filters a template
calls are looked up in its environment when it renders, so each view keeps its own). Called with
`warm=True` in the GX fork server, it also compiles GX's templates there once (42 templates, 0.1 s),
and every validation child forked afterwards starts with them: the docs then took 0.085 s and the
child 0.48 s. `tests/test_workarounds.py` fails when GX shares an environment or sets a bytecode
cache itself (delete this module and its two callers then) and checks that pages render the same.
"""

from __future__ import annotations

from typing import Any

import jinja2
from great_expectations.render.view.view import DefaultJinjaPageView, DefaultJinjaView

_GX_TEMPLATE_EXTENSION = "j2"


class _InMemoryBytecodeCache(jinja2.BytecodeCache):
    def __init__(self) -> None:
        self._compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        compiled = self._compiled.get(bucket.key)
        if compiled is not None:
            bucket.bytecode_from_string(compiled)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._compiled[bucket.key] = bucket.bytecode_to_string()

    def __len__(self) -> int:
        return len(self._compiled)


SHARED_CACHE = _InMemoryBytecodeCache()
_gx_view_init = DefaultJinjaView.__init__


def _view_init_with_shared_cache(self: DefaultJinjaView, *args: Any, **kwargs: Any) -> None:
    _gx_view_init(self, *args, **kwargs)
    self.env.bytecode_cache = SHARED_CACHE


def share_compiled_templates(*, warm: bool = False) -> None:
    """Every GX view made from now on shares `SHARED_CACHE`; `warm`: compile GX's templates into it now."""
    DefaultJinjaView.__init__ = _view_init_with_shared_cache  # type: ignore[method-assign]
    if warm:
        environment = DefaultJinjaPageView().env
        for name in environment.list_templates(extensions=[_GX_TEMPLATE_EXTENSION]):
            environment.get_template(name)
