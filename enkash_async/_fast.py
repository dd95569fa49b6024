"""JSON in and out through msgspec, shared by the transport and the wire format.

- ``loads``/``dumps``: msgspec parses a reply and writes a request body faster than the
  standard library; anything msgspec refuses to parse that ``json.loads`` reads
  (``NaN``, which Java's Jackson can write) is handed to ``json.loads``, so both accept
  the same replies. Nesting deeper than the interpreter's recursion limit is refused
  with a ``ValueError``, never a ``RecursionError``.
- ``paused_gc``: pauses the cyclic garbage collector while a block builds many acyclic
  objects.
"""

from __future__ import annotations

import contextlib
import gc
import json
import mmap
from collections.abc import Iterator
from typing import Any

import msgspec

__all__ = ["JSONBytes", "JSONDepthError", "dumps", "loads", "paused_gc"]

# JSON text: bytes, or an anonymous memory map of them (a large reply body).
JSONBytes = bytes | mmap.mmap

_decode = msgspec.json.decode
_encode = msgspec.json.Encoder().encode


class JSONDepthError(ValueError):
    """A JSON document nested too deeply to be read safely."""


def dumps(data: Any) -> bytes:
    """Compact UTF-8 JSON of plain JSON values (what the wire writer produces)."""
    return _encode(data)


def loads(raw: JSONBytes) -> Any:
    """Parse JSON bytes (or a memory map of them).

    Raises ``ValueError`` for a body that is not JSON (``UnicodeDecodeError`` and
    :class:`JSONDepthError` included).
    """
    try:
        return _decode(raw)
    except msgspec.DecodeError:
        pass  # let the standard parser accept it (NaN), or raise its own error
    except RecursionError as exc:
        raise JSONDepthError("JSON is nested too deeply") from exc
    try:
        return json.loads(raw if isinstance(raw, bytes) else raw[:])
    except RecursionError as exc:
        raise JSONDepthError("JSON is nested too deeply") from exc


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector for the block (nesting is safe)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
