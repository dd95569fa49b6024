"""EnKash's reply envelope, built as JSON bytes.

Every reply is ``{"errorResponse", "payload", "response_code", "response_message"}``;
failures carry ``errorResponse`` with ``apiSubErrors``, ``errorType``, ``requestId`` and a
``yyyy-MM-dd HH:mm:ss`` timestamp (UTC here).
"""

from __future__ import annotations

import http
import json
import time
from collections.abc import Sequence
from typing import Any, Final

import attrs

from enkash_async.models import ErrorType

__all__ = [
    "ERROR_TYPES",
    "SUCCESS_MESSAGE",
    "TOKEN_INVALID_CODE",
    "TOKEN_INVALID_MESSAGE",
    "ErrorType",
    "SubError",
    "dumps",
    "error_body",
    "error_type_for_status",
    "html_page",
    "reason",
    "success_body",
    "timestamp",
]

#: The documented ``errorType`` values, as strings (the server writes them verbatim).
ERROR_TYPES: Final[tuple[str, ...]] = tuple(error_type.value for error_type in ErrorType)

#: ``response_code``/``response_message`` EnKash uses for a missing, unknown or expired token.
TOKEN_INVALID_CODE: Final = 117
TOKEN_INVALID_MESSAGE: Final = "Token is invalid."
SUCCESS_MESSAGE: Final = "Success"

_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON, the way the fake server writes every body."""
    return _encoder.encode(value).encode()


@attrs.frozen
class SubError:
    """One ``apiSubErrors`` entry: the wire field (or path), the value sent, and why."""

    field: str
    rejected_value: Any
    message: str

    def to_wire(self) -> dict[str, Any]:
        """The entry as EnKash writes it."""
        return {"field": self.field, "rejectedValue": self.rejected_value, "message": self.message}


def timestamp() -> str:
    """Now, as ``yyyy-MM-dd HH:mm:ss`` in UTC."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())


def success_body(payload: Any) -> bytes:
    """A success envelope around ``payload``."""
    return dumps(
        {
            "errorResponse": None,
            "payload": payload,
            "response_code": 0,
            "response_message": SUCCESS_MESSAGE,
        }
    )


def error_body(
    *,
    error_type: ErrorType | str,
    message: str,
    request_id: str,
    response_code: int,
    response_message: str | None = None,
    sub_errors: Sequence[SubError] = (),
) -> bytes:
    """An error envelope; ``response_message`` defaults to ``message``."""
    return dumps(
        {
            "errorResponse": {
                "apiSubErrors": [sub.to_wire() for sub in sub_errors],
                "errorMessage": message,
                "errorType": error_type,
                "requestId": request_id,
                "timestamp": timestamp(),
            },
            "payload": None,
            "response_code": response_code,
            "response_message": message if response_message is None else response_message,
        }
    )


_STATUS_ERROR_TYPES: Final[dict[int, str]] = {
    400: ErrorType.CLIENT_REQUEST_ERROR.value,
    401: ErrorType.UNAUTHORIZED.value,
    403: ErrorType.INVALID_ACCESS.value,
    404: ErrorType.RECORD_NOT_FOUND.value,
    408: ErrorType.CLIENT_REQUEST_ABORT.value,
    422: ErrorType.UNPROCESSABLE_REQUEST.value,
}


def error_type_for_status(status: int) -> str:
    """The ``errorType`` a reply with HTTP ``status`` carries (5xx is SYSTEM_ERROR)."""
    if status >= 500:
        return ErrorType.SYSTEM_ERROR.value
    return _STATUS_ERROR_TYPES.get(status, ErrorType.UNKNOWN_ERROR.value)


def reason(status: int) -> str:
    """The HTTP reason phrase for ``status``."""
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def html_page(status: int) -> bytes:
    """An nginx-style error page, what a proxy in front of EnKash answers."""
    title = f"{status} {reason(status)}"
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()
