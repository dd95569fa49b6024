"""EnKash's reply envelope and the exceptions the client raises for it.

A reply is a success only when HTTP is 2xx, ``response_code`` is 0 or absent and
``errorResponse`` carries no ``errorType``/``errorMessage``; everything else is an
:class:`EnkashError`, and no aiohttp, json or cattrs exception ever escapes.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import time
from typing import Any

import pytest
from _support import SEARCH_PATH, FakeTransport, reply
from hypothesis import given, settings
from hypothesis import strategies as st

from enkash_async import (
    APIError,
    AuthenticationError,
    BadRequestError,
    CustomerSearch,
    EnkashClient,
    EnkashError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    UnexpectedResponseError,
)
from enkash_async._reply import Reply, raise_for_envelope

NO_RETRY = RetryPolicy.none()


def envelope(
    payload: Any = None,
    *,
    error_type: str | None = None,
    message: str | None = None,
    response_code: int | None = 0,
    sub_errors: list[Any] | None = None,
    request_id: str | None = None,
) -> dict[str, Any]:
    error: dict[str, Any] = {"timestamp": "2024-10-10 08:34:46"}
    if error_type is not None:
        error["errorType"] = error_type
    if message is not None:
        error["errorMessage"] = message
    if sub_errors is not None:
        error["apiSubErrors"] = sub_errors
    if request_id is not None:
        error["requestId"] = request_id
    reply: dict[str, Any] = {"errorResponse": error, "payload": payload}
    if response_code is not None:
        reply["response_code"] = response_code
    return reply


def page(n: int = 1) -> dict[str, Any]:
    data = [{"customerId": f"C{i:07d}", "id": i, "legalName": f"Company {i}"} for i in range(n)]
    return {"data": data, "recordsCount": n}


@pytest.fixture
def client_options() -> dict[str, Any]:
    return {"token": "tok-errors", "policy": NO_RETRY}


async def search_once(client: EnkashClient) -> list[Any]:
    return await client.customers.search(CustomerSearch(), page_size=10).collect()


def sent_request_id(transport: FakeTransport) -> str:
    (sent,) = transport.sent
    return sent.request_id


# --------------------------------------------------------------------------- success


@pytest.mark.parametrize(
    "reply",
    [
        envelope(page(), response_code=0),
        envelope(page(), response_code=None),
        {"payload": page()},
        {"payload": page(), "errorResponse": None, "response_code": "0"},
        envelope(page(), request_id="srv-1"),  # an errorResponse with only bookkeeping
        envelope(page(), error_type=None, message=""),
    ],
    ids=["code-0", "code-absent", "no-error-response", "null-error", "only-request-id", "empty"],
)
def test_success_needs_2xx_zero_code_and_no_error_type_or_message(reply: dict[str, Any]) -> None:
    assert raise_for_envelope(200, {}, reply, "rid") == reply["payload"]


# --------------------------------------------------------------------------- mapping


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, BadRequestError),
        (422, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
    ],
)
def test_http_status_maps_to_error_class(status: int, expected: type[APIError]) -> None:
    with pytest.raises(expected) as info:
        raise_for_envelope(status, {}, envelope(message="nope", response_code=None), "rid")
    assert info.value.status == status


@pytest.mark.parametrize(
    ("error_type", "expected"),
    [
        ("VALIDATION_ERROR", BadRequestError),
        ("UNPROCESSABLE_REQUEST", BadRequestError),
        ("CLIENT_REQUEST_ERROR", BadRequestError),
        ("UNAUTHORIZED", AuthenticationError),
        ("INVALID_ACCESS", PermissionDeniedError),
        ("RECORD_NOT_FOUND", NotFoundError),
        ("SYSTEM_ERROR", ServerError),
    ],
)
def test_error_type_on_http_200_maps_to_error_class(
    error_type: str, expected: type[APIError]
) -> None:
    with pytest.raises(expected) as info:
        raise_for_envelope(200, {}, envelope(error_type=error_type, message="no"), "rid")
    assert (info.value.status, info.value.error_type) == (200, error_type)


def test_response_code_117_on_http_200_is_authentication_error() -> None:
    with pytest.raises(AuthenticationError) as info:
        raise_for_envelope(200, {}, {"response_code": 117, "response_message": "bad token"}, "r")
    assert info.value.response_code == 117
    assert info.value.api_message == "bad token"


def test_unknown_error_type_on_http_200_is_plain_api_error() -> None:
    with pytest.raises(APIError) as info:
        raise_for_envelope(200, {}, envelope(error_type="UNKNOWN_ERROR", message="?"), "rid")
    assert type(info.value) is APIError


def test_nonzero_response_code_alone_on_http_200_is_an_error() -> None:
    with pytest.raises(APIError) as info:
        raise_for_envelope(200, {}, envelope(page(), response_code=5), "rid")
    assert info.value.response_code == 5


def test_error_message_alone_on_http_200_is_an_error() -> None:
    with pytest.raises(APIError) as info:
        raise_for_envelope(200, {}, envelope(page(), message="customer locked"), "rid")
    assert info.value.api_message == "customer locked"


async def test_http_200_with_validation_error_raises_through_the_client(
    client: EnkashClient, transport: FakeTransport
) -> None:
    transport.answer(
        SEARCH_PATH, reply(envelope(error_type="VALIDATION_ERROR", message="bad filter"))
    )
    with pytest.raises(BadRequestError) as info:
        await search_once(client)
    assert info.value.status == 200


# --------------------------------------------------------------------------- APIError


def test_api_error_carries_envelope_fields() -> None:
    subs = [{"field": "mobile", "message": "invalid"}, {"field": "legalName", "message": "blank"}]
    reply = envelope(
        error_type="VALIDATION_ERROR",
        message="Validation failed",
        response_code=400,
        sub_errors=subs,
        request_id="srv-42",
    )
    with pytest.raises(BadRequestError) as info:
        raise_for_envelope(422, {}, reply, "ours")
    error = info.value
    assert error.status == 422
    assert error.error_type == "VALIDATION_ERROR"
    assert error.response_code == 400
    assert error.api_message == "Validation failed"
    assert error.request_id == "srv-42"
    assert list(error.sub_errors) == subs


def test_api_error_str_has_status_type_message_and_request_id() -> None:
    reply = envelope(error_type="RECORD_NOT_FOUND", message="No customer CX1", request_id="srv-7")
    with pytest.raises(NotFoundError) as info:
        raise_for_envelope(404, {}, reply, "ours")
    text = str(info.value)
    for part in ("404", "RECORD_NOT_FOUND", "No customer CX1", "srv-7"):
        assert part in text


def test_api_error_repr_names_class_and_fields() -> None:
    reply = envelope(error_type="INVALID_ACCESS", message="not yours", request_id="srv-9")
    with pytest.raises(PermissionDeniedError) as info:
        raise_for_envelope(403, {}, reply, "ours")
    text = repr(info.value)
    assert text.startswith("PermissionDeniedError(")
    for part in ("403", "'INVALID_ACCESS'", "'not yours'", "'srv-9'"):
        assert part in text


def test_request_id_falls_back_to_the_one_sent() -> None:
    with pytest.raises(ServerError) as info:
        raise_for_envelope(500, {}, envelope(message="boom", response_code=None), "sent-id-1")
    assert info.value.request_id == "sent-id-1"
    assert "sent-id-1" in str(info.value)


def test_rate_limit_error_carries_retry_after_seconds() -> None:
    with pytest.raises(RateLimitError) as info:
        raise_for_envelope(429, {"Retry-After": "17"}, envelope(message="slow"), "rid")
    assert info.value.retry_after == 17


def test_rate_limit_error_reads_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 90, usegmt=True)
    with pytest.raises(RateLimitError) as info:
        raise_for_envelope(429, {"Retry-After": when}, envelope(message="slow"), "rid")
    assert info.value.retry_after == pytest.approx(90, abs=2)


# --------------------------------------------------------------------------- bad replies


@pytest.mark.parametrize("data", [[1, 2], "ok", None, 3], ids=["list", "str", "null", "int"])
def test_2xx_json_that_is_not_an_envelope_is_unexpected_response(data: Any) -> None:
    with pytest.raises(UnexpectedResponseError) as info:
        raise_for_envelope(200, {}, data, "rid")
    assert info.value.status == 200


async def test_2xx_body_that_is_not_json_is_unexpected_response(
    client: EnkashClient, transport: FakeTransport
) -> None:
    transport.answer(SEARCH_PATH, reply(b"OK", headers={"Content-Type": "text/plain"}))
    with pytest.raises(UnexpectedResponseError) as info:
        await search_once(client)
    assert isinstance(info.value.__cause__, ValueError)
    assert info.value.body_excerpt == "OK"


async def test_truncated_2xx_json_is_unexpected_response(
    client: EnkashClient, transport: FakeTransport
) -> None:
    whole = json.dumps(envelope(page(3))).encode()
    transport.answer(
        SEARCH_PATH, reply(whole[: len(whole) // 2], headers={"Content-Type": "application/json"})
    )
    with pytest.raises(UnexpectedResponseError) as info:
        await search_once(client)
    assert isinstance(info.value.__cause__, json.JSONDecodeError)


async def test_2xx_payload_of_the_wrong_shape_is_unexpected_response(
    client: EnkashClient, transport: FakeTransport
) -> None:
    transport.answer(SEARCH_PATH, reply(envelope({"data": "not a list", "recordsCount": 1})))
    with pytest.raises(UnexpectedResponseError):
        await search_once(client)


async def test_2xx_customer_of_the_wrong_shape_is_unexpected_response(
    client: EnkashClient, transport: FakeTransport
) -> None:
    transport.answer(SEARCH_PATH, reply(envelope({"data": [7, "x"], "recordsCount": 2})))
    with pytest.raises(UnexpectedResponseError):
        await search_once(client)


async def test_html_502_is_server_error_with_a_short_body_excerpt(
    client: EnkashClient, transport: FakeTransport
) -> None:
    html = "<html><head><title>502 Bad Gateway</title></head><body>" + "x" * 5000 + "</body>"
    transport.answer(SEARCH_PATH, reply(html.encode(), 502, headers={"Content-Type": "text/html"}))
    with pytest.raises(ServerError) as info:
        await search_once(client)
    error = info.value
    assert error.status == 502
    assert error.body_excerpt is not None
    assert error.body_excerpt.startswith("<html><head><title>502 Bad Gateway")
    assert len(error.body_excerpt) < 300
    assert len(str(error)) < 1000
    assert error.request_id == sent_request_id(transport)


@settings(max_examples=300, deadline=None)
@given(
    status=st.sampled_from([200, 201, 204, 302, 400, 401, 404, 408, 429, 500, 502, 503]),
    body=st.one_of(
        st.binary(max_size=64),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(
                    st.sampled_from(
                        [
                            "errorResponse",
                            "payload",
                            "response_code",
                            "errorType",
                            "errorMessage",
                            "apiSubErrors",
                            "requestId",
                            "response_message",
                        ]
                    ),
                    inner,
                    max_size=4,
                )
            ),
            max_leaves=12,
        ).map(lambda value: json.dumps(value).encode()),
    ),
    content_type=st.sampled_from(["application/json", "text/html", "text/plain"]),
    retry_after=st.sampled_from(["", "5", "-3", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"]),
)
def test_any_reply_yields_a_payload_or_an_enkash_error(
    status: int, body: bytes, content_type: str, retry_after: str
) -> None:
    headers = {"Retry-After": retry_after} if retry_after else {}
    with contextlib.suppress(EnkashError):  # anything else fails the test
        Reply(status, {**headers, "Content-Type": content_type}, body, "r").payload()


def test_deeply_nested_json_reply_is_unexpected_response() -> None:
    body = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(UnexpectedResponseError):
        Reply(200, {"Content-Type": "application/json"}, body, "rid").payload()


async def test_an_infinite_response_code_is_a_failure_not_a_crash() -> None:
    from enkash_async._reply import raise_for_envelope

    with pytest.raises(EnkashError):
        raise_for_envelope(200, {}, {"payload": None, "response_code": float("inf")}, "rid")


async def test_a_streamed_record_with_a_wrong_typed_field_is_unexpected_response(
    client: EnkashClient, transport: FakeTransport
) -> None:
    record = {"customerId": "C1", "legalName": {"not": "a string"}}
    transport.answer(SEARCH_PATH, reply(envelope({"data": [record], "recordsCount": 1})))
    with pytest.raises(UnexpectedResponseError, match="expected a string"):
        async for _customer in client.customers.search():
            pass
