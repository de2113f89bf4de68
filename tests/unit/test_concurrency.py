"""Read-ahead of pages and parallel batch calls: order kept, errors surfaced, early stop honoured."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from connectors.concurrency import map_in_parallel
from worker.sync.prefetch import read_ahead


def test_read_ahead_yields_everything_in_order() -> None:
    """Pages come out in the order the connector produced them."""
    assert list(read_ahead(iter(range(50)))) == list(range(50))


def test_read_ahead_raises_the_producers_error_where_it_happened() -> None:
    """A failure while reading page 3 is raised after pages 0-2 were handed over."""

    def pages() -> Iterator[int]:
        yield from range(3)
        raise RuntimeError("search failed")

    seen = []
    with pytest.raises(RuntimeError, match="search failed"):
        for page in read_ahead(pages()):
            seen.append(page)
    assert seen == [0, 1, 2]


def test_closing_early_stops_the_producer() -> None:
    """A run that stops after one page does not read the whole CRM in the background."""
    produced = []

    def pages() -> Iterator[int]:
        for number in range(1000):
            produced.append(number)
            yield number

    reader = read_ahead(pages())
    assert next(reader) == 0
    reader.close()
    assert len(produced) <= 3
    assert not [t for t in threading.enumerate() if t.name == "page-read-ahead"]


def test_map_in_parallel_keeps_order_and_overlaps_calls() -> None:
    """Results keep input order, and calls really run side by side."""
    barrier = threading.Barrier(4, timeout=5)

    def call(item: int) -> int:
        barrier.wait()
        return item * 10

    assert map_in_parallel(call, [1, 2, 3, 4], max_in_flight=4) == [10, 20, 30, 40]


def test_map_in_parallel_raises_the_first_error_and_starts_nothing_after_it() -> None:
    """One failed batch is raised; calls not started when it failed are never made (sequentially: none
    after it). The pool's stop-on-failure cases are in test_batch_stop.py."""
    finished = []

    def call(item: int) -> int:
        if item == 2:
            raise ValueError("batch 2 refused")
        finished.append(item)
        return item

    with pytest.raises(ValueError, match="batch 2"):
        map_in_parallel(call, [1, 2, 3, 4], max_in_flight=1)
    assert finished == [1]
