"""Every exception class of enkash_async: an ``EnkashError``, in the documented tree, and
intact after pickling (SAQ, multiprocessing and Celery send errors across processes).

The classes are found, not listed: a new error class is covered by these tests at once.
"""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
from pathlib import Path
from typing import Any

import pytest

import enkash_async
import enkash_async.errors
import enkash_async.sync
import enkash_async.testing
from enkash_async import (
    ConnectError,
    EnkashError,
    FieldError,
    RequestLimiter,
    RequestTimeout,
    RequestTimeoutError,
    TransportError,
    ValidationError,
)
from enkash_async.sync import SourceError, SyncTarget

# Modules that run a program when imported.
_PROGRAMS = {"enkash_async.__main__", "enkash_async.testing.__main__"}


def _error_classes() -> list[type[EnkashError]]:
    for module in pkgutil.walk_packages(enkash_async.__path__, "enkash_async."):
        if module.name not in _PROGRAMS:
            importlib.import_module(module.name)
    found: list[type[EnkashError]] = []
    todo: list[type[EnkashError]] = [EnkashError]
    while todo:
        cls = todo.pop()
        if cls.__module__.startswith("enkash_async") and cls not in found:
            found.append(cls)
        todo.extend(cls.__subclasses__())
    return sorted(found, key=lambda cls: (cls.__module__, cls.__qualname__))


ERROR_CLASSES = _error_classes()

# A value for every constructor parameter an error class takes; one the table lacks fails
# the test naming it, so a new parameter gets a sample (and so a round-trip check).
SAMPLES: dict[str, Any] = {
    "message": "it went wrong: see the log",
    "errors": [FieldError("mobile", "must be 10 digits"), FieldError("pan", "bad")],
    "model": "CustomerCreate",
    "method": "POST",
    "url": "https://enkash.example/api/v0/customer",
    "request_id": "req-1",
    "status": 503,
    "error_type": "SYSTEM_ERROR",
    "response_code": 5,
    "sub_errors": [{"field": "mobile", "message": "must be 10 digits"}],
    "body_excerpt": "<html>busy</html>",
    "retry_after": 2.5,
    "transient": True,
    "cause": ConnectError("refused", method="POST", url="https://enkash.example"),
    "store": "/tmp/customers.checkpoint.sqlite",
    "operation": "HSET checkpoint",
    "exit_code": 1,
    "missing": 3,
    "known": 20,
    "max_share": 0.1,
}


def _sample(cls: type[EnkashError]) -> EnkashError:
    arguments: list[Any] = []
    keywords: dict[str, Any] = {}
    for name, parameter in inspect.signature(cls).parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        if name not in SAMPLES:
            assert parameter.default is not parameter.empty, (
                f"{cls.__qualname__}({name}=...): add a sample value for {name!r} to SAMPLES"
            )
            continue
        if parameter.kind is parameter.POSITIONAL_ONLY:
            arguments.append(SAMPLES[name])
        else:
            keywords[name] = SAMPLES[name]
    return cls(*arguments, **keywords)


def _comparable(value: Any) -> Any:
    """Exceptions have no equality of their own: compare them by type, args and state."""
    if isinstance(value, BaseException):
        return (type(value), value.args, str(value), repr(value), _comparable(vars(value)))
    if isinstance(value, dict):
        return {key: _comparable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_comparable(item) for item in value)
    return value


def _public_error_names() -> set[str]:
    names = set()
    for package in (enkash_async, enkash_async.sync, enkash_async.testing):
        for name in package.__all__:
            value = getattr(package, name)
            if isinstance(value, type) and issubclass(value, EnkashError):
                names.add(value.__name__)
    return names


def test_every_error_class_is_found() -> None:
    names = {cls.__name__ for cls in ERROR_CLASSES}
    assert {"ValidationError", "SourceError", "CheckpointError", "SyncStoreError"} <= names


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__qualname__)
def test_error_survives_pickling_with_its_attributes_and_message(
    cls: type[EnkashError],
) -> None:
    error = _sample(cls)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is cls
    assert str(copy) == str(error)
    assert repr(copy) == repr(error)
    assert copy.args == error.args
    assert _comparable(vars(copy)) == _comparable(vars(error))


def test_unpickled_validation_error_prints_its_problems() -> None:
    error = ValidationError([FieldError("mobile", "must be 10 digits")], model="CustomerCreate")
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == "CustomerCreate is invalid (1 problem(s)): mobile: must be 10 digits"
    assert copy.errors == (FieldError("mobile", "must be 10 digits"),)
    assert copy.fields == ("mobile",)


def test_unpickled_transport_error_keeps_where_it_failed() -> None:
    error = TransportError("reset", method="POST", url="https://x", request_id="r-9")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.method, copy.url, copy.request_id) == ("POST", "https://x", "r-9")
    assert str(copy).count("[request_id=r-9]") == 1  # not decorated a second time


@pytest.mark.parametrize("name", sorted(_public_error_names()))
def test_public_error_is_in_the_documented_tree(name: str) -> None:
    tree = enkash_async.errors.__doc__ or ""
    assert f" {name} " in tree or tree.rstrip().endswith(name) or f" {name}\n" in tree


def test_request_timeout_error_is_named_like_the_others_and_keeps_its_old_name() -> None:
    assert RequestTimeoutError.__name__ == "RequestTimeoutError"
    assert RequestTimeout is RequestTimeoutError
    assert "RequestTimeoutError" in enkash_async.__all__


def test_request_limiter_refuses_no_concurrency_with_an_enkash_error() -> None:
    with pytest.raises(ValidationError) as caught:
        RequestLimiter(0)
    assert caught.value.fields == ("max_concurrency",)


def test_source_error_is_an_enkash_error(tmp_path: Path) -> None:
    from enkash_async.sync import read_file

    with pytest.raises(EnkashError) as caught:
        list(read_file(tmp_path / "customers.txt"))
    assert isinstance(caught.value, SourceError)


async def test_submit_refuses_chunks_of_no_rows_with_an_enkash_error(tmp_path: Path) -> None:
    from enkash_async.sync.redis._saq import submit

    rows = tmp_path / "rows.jsonl"
    rows.write_text("")
    target = SyncTarget.for_user("https://enkash.example", "acme")
    with pytest.raises(ValidationError) as caught:
        await submit("redis://127.0.0.1:1/0", str(rows), target=target, chunk_rows=0)
    assert caught.value.fields == ("chunk_rows",)


def test_redis_limiter_refuses_no_concurrency_with_an_enkash_error() -> None:
    from enkash_async.sync.redis import RedisLimiter

    target = SyncTarget.for_user("https://enkash.example", "acme")
    with pytest.raises(ValidationError) as caught:
        RedisLimiter(None, "redis://127.0.0.1:1/0", target, max_concurrency=0)  # type: ignore[arg-type]
    assert caught.value.fields == ("max_concurrency",)
