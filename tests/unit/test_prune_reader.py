"""The prune's read-ahead thread (service/upkeep/reader.py): each run's intervals given
back whole and in order with what they covered, a failed read raised where that run is
taken, and a prune leaving early stops the reads."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from loadmgr.errors import DatabaseError
from loadmgr.service.upkeep.reader import CHUNK, CHUNKS, ReadAhead


def fake_read(sizes: dict[str, int]) -> Any:
    def read(run_id: str, covered: list[tuple[int, int]]) -> Iterator[dict[str, Any]]:
        for seq in range(1, sizes[run_id] + 1):
            yield {"run": run_id, "seq": seq}
        covered.append((1, sizes[run_id]))

    return read


@pytest.mark.parametrize(
    "sizes", [{"a": 0}, {"a": 1, "b": 0, "c": 3}, {"a": CHUNK * 3 + 1, "b": CHUNK}]
)
def test_each_runs_intervals_come_back_whole_in_order_with_what_they_covered(
    sizes: dict[str, int],
) -> None:
    with ReadAhead(fake_read(sizes), list(sizes)) as reader:
        for run_id, size in sizes.items():
            covered: list[tuple[int, int]] = []
            got = list(reader.intervals(run_id, covered))
            assert got == [{"run": run_id, "seq": seq} for seq in range(1, size + 1)]
            assert covered == [(1, size)]


def test_a_failed_read_is_raised_where_its_run_is_taken() -> None:
    def read(run_id: str, covered: list[tuple[int, int]]) -> Iterator[dict[str, Any]]:
        if run_id == "b":
            raise DatabaseError("MongoDB unavailable")
        yield {"run": run_id}

    with ReadAhead(read, ["a", "b", "c"]) as reader:
        assert list(reader.intervals("a", [])) == [{"run": "a"}]
        with pytest.raises(DatabaseError, match="unavailable"):
            list(reader.intervals("b", []))


def test_leaving_early_stops_the_reads() -> None:
    produced: list[int] = []

    def endless(run_id: str, covered: list[tuple[int, int]]) -> Iterator[dict[str, Any]]:
        seq = 0
        while True:
            seq += 1
            produced.append(seq)
            yield {"seq": seq}

    with ReadAhead(endless, ["a"]) as reader:
        next(reader.intervals("a", []))
    assert not any(t.name == "prune-reader" for t in threading.enumerate())
    assert len(produced) <= CHUNK * (CHUNKS + 3)  # bounded: it read a few batches ahead
