"""The decode speed-ups change nothing about what is accepted."""

from __future__ import annotations

import gc
import json
import math

import pytest

from enkash_async import _fast


def test_loads_accepts_what_only_the_standard_parser_accepts() -> None:
    body = b'{"netAmount": NaN}'  # Java's Jackson can write it; msgspec refuses it
    assert math.isnan(_fast.loads(body)["netAmount"])


def test_loads_keeps_int64_identifiers_exact() -> None:
    body = b'{"id": 9223372036854775807, "recordsCount": -9223372036854775808}'
    assert _fast.loads(body) == json.loads(body)


def test_loads_raises_value_error_for_a_truncated_body() -> None:
    with pytest.raises(ValueError):
        _fast.loads(b'{"payload": {"data": [')


def test_loads_reads_plain_json_values() -> None:
    assert _fast.loads(b'{"a": [1, 2.5, null, "x", true]}') == {"a": [1, 2.5, None, "x", True]}


@pytest.mark.parametrize("depth", [100_000, 1_000_000])
def test_loads_refuses_deep_nesting_with_a_value_error(depth: int) -> None:
    with pytest.raises(_fast.JSONDepthError) as caught:
        _fast.loads(b"[" * depth + b"]" * depth)
    assert isinstance(caught.value, ValueError)


def test_loads_refuses_deep_nesting_the_standard_parser_would_also_read() -> None:
    body = b'{"x": NaN, "y": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(_fast.JSONDepthError):
        _fast.loads(body)


def test_loads_raises_value_error_for_bytes_that_are_not_utf8() -> None:
    with pytest.raises(ValueError):
        _fast.loads(b'{"legalName": "' + bytes([0xFF, 0xFE]) + b'"}')


def test_paused_gc_restores_an_enabled_collector() -> None:
    assert gc.isenabled()
    with _fast.paused_gc():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_paused_gc_leaves_a_disabled_collector_disabled() -> None:
    gc.disable()
    try:
        with _fast.paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_paused_gc_restores_the_collector_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError), _fast.paused_gc():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_dumps_writes_compact_utf8_json() -> None:
    data = {"legalName": "Śrī Traders", "amount": 12.5, "ok": True, "none": None, "xs": [1]}
    written = _fast.dumps(data)
    assert json.loads(written) == data
    assert "Śrī".encode() in written  # UTF-8, not \\u escapes
    assert b": " not in written and b", " not in written


def test_request_ids_are_unique_and_share_a_process_prefix() -> None:
    from enkash_async._transport import new_request_id

    ids = [new_request_id() for _ in range(1000)]
    assert len(set(ids)) == 1000
    assert len({i.split("-")[0] for i in ids}) == 1
