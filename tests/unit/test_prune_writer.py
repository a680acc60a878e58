"""The prune's writer thread (service/upkeep/writer.py): writes reach the server in the
order handed in, a failed write is raised in the prune's own thread and stops the writes
queued after it, and a prune leaving by an error drops the writes not yet begun."""

from __future__ import annotations

import threading
import time

import pytest

from loadmgr.errors import DatabaseError
from loadmgr.service.upkeep.writer import QUEUED, Writer


def test_writes_run_in_the_order_handed_in_on_one_other_thread() -> None:
    done: list[int] = []
    threads: set[str] = set()

    def write(number: int) -> None:
        threads.add(threading.current_thread().name)
        done.append(number)

    with Writer() as writer:
        for number in range(10 * QUEUED):
            writer.put(lambda number=number: write(number))  # type: ignore[misc]
        writer.drain()
        assert done == list(range(10 * QUEUED))
    assert threads == {"prune-writer"}


def test_a_failed_write_is_raised_here_and_the_writes_after_it_never_run() -> None:
    done: list[str] = []
    failing = threading.Event()

    def fail() -> None:
        failing.set()
        raise DatabaseError("MongoDB unavailable")

    with pytest.raises(DatabaseError, match="unavailable"), Writer() as writer:
        writer.put(lambda: done.append("before"))
        writer.put(fail)
        writer.put(lambda: done.append("after"))
        failing.wait(5)
        writer.drain()
    assert done == ["before"]


def test_a_failure_is_raised_when_the_block_ends_without_a_drain() -> None:
    def fail() -> None:
        raise DatabaseError("refused")

    with pytest.raises(DatabaseError, match="refused"), Writer() as writer:
        writer.put(fail)


def test_leaving_by_an_error_drops_the_writes_not_yet_begun() -> None:
    done: list[int] = []
    started = threading.Event()
    writer = Writer()

    def slow() -> None:
        started.set()
        # Under way until the prune has left by its error (polled, with a deadline).
        deadline = time.monotonic() + 5
        while not writer._stopping and time.monotonic() < deadline:
            time.sleep(0.01)
        done.append(0)

    with pytest.raises(KeyboardInterrupt), writer:
        writer.put(slow)
        started.wait(5)
        for number in range(1, QUEUED):
            writer.put(lambda number=number: done.append(number))  # type: ignore[misc]
        raise KeyboardInterrupt
    assert done == [0]  # the write under way ended; none queued behind it ran
    assert not any(t.name == "prune-writer" for t in threading.enumerate())
