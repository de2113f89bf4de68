"""Read the next page while the current one is assessed and written (for connectors that allow it).

A full HubSpot sweep otherwise alternates: search (waiting on the 5-per-second search limit), then writes,
then search again. With one page read ahead, reads and writes overlap and the run approaches the floor the
rate limits set. Only connectors whose `capabilities.prefetch` is set are read ahead: their client must be
safe to use from two threads at once.

No producer outlives its run. Pages pass through a bounded handoff that the consumer closes when it stops,
for whatever reason (the last page, a quota stop, a failure, a lost lease, a stop signal): every hand-over
the producer is waiting in — a page, the end, its own error — returns at once, the producer closes the
connector's page iterator in its own thread and ends, and the consumer joins it before it goes on.

The producer runs in a copy of the consumer's context (`contextvars`), so its log lines carry the run's
`run_id` and `connection`.
"""

from __future__ import annotations

import contextvars
import threading
from collections import deque
from collections.abc import Generator, Iterator
from typing import Generic, TypeVar, cast

import structlog

T = TypeVar("T")
log = structlog.get_logger()

JOIN_TIMEOUT_S = 30.0
"""How long a stopping consumer waits for a producer caught in a page read (a slow answer, a retry wait);
past it the run goes on without it, and the producer ends by itself when that read returns."""


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE = object()


class Handoff(Generic[T]):
    """A queue of at most `depth` items between one producer and one consumer that the consumer can close:
    `put` blocks while the queue is full and returns False (the item dropped) once it is closed; `close`
    drops whatever is queued, so no page is held after the run."""

    def __init__(self, depth: int) -> None:
        self._depth = max(1, depth)
        self._items: deque[object] = deque()
        self._closed = False
        self._changed = threading.Condition()

    def put(self, item: object) -> bool:
        with self._changed:
            while len(self._items) >= self._depth and not self._closed:
                self._changed.wait()
            if self._closed:
                return False
            self._items.append(item)
            self._changed.notify_all()
            return True

    def get(self) -> object:
        with self._changed:
            while not self._items:
                self._changed.wait()
            item = self._items.popleft()
            self._changed.notify_all()
            return item

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._items.clear()
            self._changed.notify_all()


def _produce(pages: Iterator[T], slots: Handoff[T]) -> None:
    try:
        for page in pages:
            if not slots.put(page):
                return
        slots.put(_DONE)
    except BaseException as exc:  # handed to the consumer, which re-raises it
        slots.put(_Failure(exc))
    finally:
        close = getattr(pages, "close", None)
        if close is not None:
            close()


def read_ahead(
    pages: Iterator[T], depth: int = 1, join_timeout: float = JOIN_TIMEOUT_S
) -> Generator[T, None, None]:
    """Yield what `pages` yields, produced by a background thread up to `depth` items ahead. An exception in
    the producer is raised here, at the point the consumer would have reached it. Closing this generator
    (or an exception thrown into it) closes the handoff and joins the producer: it finishes the page it is
    reading, if any, and reads no further."""
    slots: Handoff[T] = Handoff(depth)
    context = contextvars.copy_context()
    producer = threading.Thread(
        target=context.run, args=(_produce, pages, slots), name="page-read-ahead", daemon=True
    )
    producer.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield cast(T, item)
    finally:
        slots.close()
        producer.join(timeout=join_timeout)
        if producer.is_alive():
            log.warning(
                "page read-ahead still reading after the run stopped; it ends when that read returns",
                waited_s=join_timeout,
            )
