"""Compiling generated functions so a traceback through them shows their source."""

from __future__ import annotations

import itertools
import linecache
from collections.abc import Callable
from typing import Any

__all__ = ["compile_function"]

_serial = itertools.count()


def compile_function(name: str, source: str, namespace: dict[str, Any]) -> Callable[..., Any]:
    """Define the function ``name`` from ``source`` in ``namespace`` and return it.

    The source is registered with :mod:`linecache` under a unique file name (as cattrs
    does for its own generated code), so tracebacks and debuggers show it.
    """
    filename = f"<enkash_async generated {name} {next(_serial)}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)
    function: Callable[..., Any] = namespace[name]
    return function
