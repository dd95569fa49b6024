"""Run one coroutine per input with bounded concurrency, yielding one result per input.

Knows nothing of HTTP or customers. Inputs are pulled lazily (a generator of a million
items is never materialised); at most ``concurrency`` are in flight, and in ordered mode
no input starts until the one ``concurrency`` places before it has been yielded, so
memory stays bounded whatever the input size.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Iterable,
)
from typing import TypeVar

__all__ = ["run_bounded"]

I = TypeVar("I")  # noqa: E741
R = TypeVar("R")


async def _aiter(items: Iterable[I] | AsyncIterable[I]) -> AsyncGenerator[I, None]:
    if isinstance(items, AsyncIterable):
        async for item in items:
            yield item
    else:
        for item in items:
            yield item


async def run_bounded(
    items: Iterable[I] | AsyncIterable[I],
    work: Callable[[int, I], Awaitable[R]],
    *,
    concurrency: int,
    ordered: bool,
) -> AsyncGenerator[R, None]:
    """Yield ``await work(index, item)`` for every item: in input order, or as each completes.

    ``work`` must report failures in its result rather than raise; an exception it
    raises cancels the rest and propagates. If reading ``items`` fails, no further item
    is started, the results of those already started are yielded, and then the error is
    raised: work already done is never left unreported. Closing the iterator cancels
    what is in flight.
    """
    source = _aiter(items)
    in_flight: deque[asyncio.Task[R]] = deque()
    pending: set[asyncio.Task[R]] = set()
    index = 0
    exhausted = False
    source_error: Exception | None = None

    async def fill() -> None:
        nonlocal index, exhausted, source_error
        while not exhausted and len(in_flight if ordered else pending) < concurrency:
            try:
                item = await source.__anext__()
            except StopAsyncIteration:
                exhausted = True
                return
            except Exception as exc:  # the caller's iterable failed
                exhausted = True
                source_error = exc
                return
            task = asyncio.ensure_future(work(index, item))
            index += 1
            if ordered:
                in_flight.append(task)
            else:
                pending.add(task)

    try:
        await fill()
        if ordered:
            while in_flight:
                result = await in_flight[0]
                in_flight.popleft()
                await fill()
                yield result
        else:
            while pending:
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                pending.difference_update(done)
                await fill()
                for task in done:
                    yield task.result()
        if source_error is not None:
            raise source_error
    finally:
        leftovers = [*in_flight, *pending]
        for task in leftovers:
            task.cancel()
        if leftovers:
            await asyncio.gather(*leftovers, return_exceptions=True)
        await source.aclose()
