"""A run's request figures, for ``sync status``: the requests its chunks sent, the 429
replies and retries they met, summed over every worker that ran them.

:class:`RunFigures` is a hooks object (see ``enkash_async._hooks``) a worker attaches to
its client: each ``sync.chunk`` batch gets its own counters, every call made inside the
batch (a login it needed included) adds to them, and the worker adds a chunk's counters
to the run's ``figures`` hash in Redis when the chunk's job ends, done or not: they count
requests sent, so a chunk run twice counts both runs' requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from enkash_async._hooks import SYNC_CHUNK, CallStarted, ResponseReceived, RetryScheduled

__all__ = ["FIGURES", "RunFigures", "chunk_figures"]

#: The figures a run records, in the order ``sync status`` shows them.
FIGURES: Final = ("requests", "rate_limited", "retries", "no_reply")
# The key of a call's counters in its hook state (shared by every hooks object: namespaced).
_KEY: Final = "enkash_async.sync.figures"


class RunFigures:
    """Counts each ``sync.chunk`` batch's requests, 429 replies, retries and requests
    that got no reply, in the batch's state (read with :func:`chunk_figures`)."""

    def call_started(self, event: CallStarted) -> None:
        if event.operation == SYNC_CHUNK:
            event.state[_KEY] = dict.fromkeys(FIGURES, 0)
        elif event.parent is not None and _KEY in event.parent:
            event.state[_KEY] = event.parent[_KEY]

    def response_received(self, event: ResponseReceived) -> None:
        figures = event.state.get(_KEY)
        if figures is None:
            return
        figures["requests"] += 1
        if event.status == 429:
            figures["rate_limited"] += 1
        elif event.status is None:
            figures["no_reply"] += 1

    def retry_scheduled(self, event: RetryScheduled) -> None:
        figures = event.state.get(_KEY)
        if figures is not None:
            figures["retries"] += 1


def chunk_figures(state: Mapping[str, Any]) -> dict[str, int]:
    """The counters :class:`RunFigures` kept in a ``sync.chunk`` batch's ``state``."""
    figures = state.get(_KEY)
    return dict(figures) if figures is not None else dict.fromkeys(FIGURES, 0)
