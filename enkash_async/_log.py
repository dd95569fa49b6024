"""The ``enkash_async`` logger, configured for people who set up no logging.

``ENKASH_LOG=info`` logs one line per logical call that needed retries or
reconciliation; ``debug`` adds one line per HTTP request (operation, method, path,
status, request id, attempt, ms); ``body`` is ``debug`` plus the short, bounded excerpt
an error keeps of a reply that was not JSON. Never a header, token or request body.
The CLI's ``-v``/``-vv`` call :func:`configure` the same way.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

__all__ = ["LEVELS", "body_excerpt", "configure", "configure_from_env"]

logger = logging.getLogger("enkash_async")

LEVELS: Mapping[str, int] = {"info": logging.INFO, "debug": logging.DEBUG, "body": logging.DEBUG}

_bodies = False
_handler: logging.Handler | None = None


def configure(level: str) -> None:
    """Log ``enkash_async`` at ``level`` ("info", "debug" or "body") to stderr, unless the
    application already gave the logger a handler. Raises ``ValueError`` for another level."""
    global _bodies, _handler
    name = level.strip().lower()
    if name not in LEVELS:
        raise ValueError(f"ENKASH_LOG must be one of {', '.join(LEVELS)}, got {level!r}")
    _bodies = name == "body"
    logger.setLevel(LEVELS[name])
    if _handler is None and not logger.handlers:
        _handler = logging.StreamHandler(sys.stderr)
        _handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(_handler)


def configure_from_env(environ: Mapping[str, str] | None = None) -> None:
    """:func:`configure` from ``ENKASH_LOG`` when it is set; an unknown value is warned
    about and ignored (a typo must not stop a service starting)."""
    value = (os.environ if environ is None else environ).get("ENKASH_LOG", "").strip()
    if not value:
        return
    try:
        configure(value)
    except ValueError as exc:
        logger.warning("%s; ignored", exc)


def body_excerpt(error: object) -> str:
    """With ``ENKASH_LOG=body``, the bounded excerpt ``error`` kept of a reply body."""
    if not _bodies or error is None:
        return ""
    excerpt = getattr(error, "body_excerpt", None)
    return f"; body: {excerpt!r}" if excerpt else ""
