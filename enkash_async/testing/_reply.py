"""The fake server's replies: an attrs ``Reply`` and the envelopes every route shares.

Holds the request id of the request being answered (set by the server's middleware),
so every error envelope carries it.
"""

from __future__ import annotations

import contextvars
import json
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
from aiohttp import web

from ._envelope import (
    TOKEN_INVALID_CODE,
    TOKEN_INVALID_MESSAGE,
    ErrorType,
    SubError,
    error_body,
)

__all__ = [
    "REQUEST_ID",
    "BadBody",
    "Reply",
    "bad_body",
    "error",
    "invalid",
    "json_body",
    "request_id",
    "respond",
    "token_invalid",
]

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("enkash_fake_request_id")


@attrs.frozen
class Reply:
    """A complete reply: status, body, content type and extra headers."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: Mapping[str, str] = attrs.Factory(dict)


def request_id() -> str:
    """The id of the request being answered ("" outside one)."""
    return REQUEST_ID.get("")


def respond(reply: Reply) -> web.Response:
    """The aiohttp response for ``reply``."""
    return web.Response(
        status=reply.status,
        body=reply.body,
        content_type=reply.content_type,
        headers=reply.headers,
    )


def error(
    status: int,
    error_type: ErrorType | str,
    message: str,
    *,
    response_code: int | None = None,
    response_message: str | None = None,
    sub_errors: Sequence[SubError] = (),
    headers: Mapping[str, str] | None = None,
) -> Reply:
    """An error envelope with HTTP ``status`` (``response_code`` defaults to it)."""
    body = error_body(
        error_type=error_type,
        message=message,
        request_id=request_id(),
        response_code=status if response_code is None else response_code,
        response_message=response_message,
        sub_errors=sub_errors,
    )
    return Reply(status, body, headers=headers or {})


def token_invalid() -> Reply:
    """401 with ``response_code`` 117: a missing, unknown or expired token."""
    return error(401, "UNAUTHORIZED", TOKEN_INVALID_MESSAGE, response_code=TOKEN_INVALID_CODE)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class BadBody(Exception):
    """The request body is not the JSON the route needs."""


async def json_body(request: web.Request) -> Any:
    """The parsed body, None for an empty one; raises BadBody for anything else."""
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except ValueError as exc:  # includes UnicodeDecodeError
        raise BadBody(f"Malformed JSON request: {exc}") from None


def bad_body(message: str) -> Reply:
    """400 CLIENT_REQUEST_ERROR: the body is missing or not what the route reads."""
    return error(400, "CLIENT_REQUEST_ERROR", message)


def invalid(problems: Sequence[SubError]) -> Reply:
    """400 VALIDATION_ERROR listing each field's problem."""
    fields = ", ".join(dict.fromkeys(problem.field for problem in problems))
    return error(400, "VALIDATION_ERROR", f"Validation failed for: {fields}", sub_errors=problems)
