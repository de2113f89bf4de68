"""Read the next page while the current one is assessed and written (for connectors that allow it).

A full HubSpot sweep otherwise alternates: search (waiting on the 5-per-second search limit), then writes,
then search again. With one page read ahead, reads and writes overlap and the run approaches the floor the
rate limits set. Only connectors whose `capabilities.prefetch` is set are read ahead: their client must be
safe to use from two threads at once.

The producer runs in a copy of the consumer's context (`contextvars`), so its log lines carry the run's
`run_id` and `connection`.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Generator, Iterator
from typing import TypeVar

T = TypeVar("T")
_DONE = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ahead(pages: Iterator[T], depth: int = 1) -> Generator[T, None, None]:
    """Yield what `pages` yields, produced by a background thread up to `depth` items ahead. An exception in
    the producer is raised here, at the point the consumer would have reached it. Closing this generator
    early stops the producer after its current item."""
    slots: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        slots.put(page, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(_DONE)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            slots.put(_Failure(exc))

    context = contextvars.copy_context()
    producer = threading.Thread(target=context.run, args=(produce,), name="page-read-ahead", daemon=True)
    producer.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        producer.join(timeout=30)
