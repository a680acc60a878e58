"""The order the suite's tests are handed to pytest-xdist's workers in.

`--dist worksteal` gives each of N workers one contiguous Nth of the collection, and an
idle worker steals the second half of the longest queue. With the collection in file
order, a long Locust test can start in the last minute and hold the whole suite. So the
tests known to be long (tests/slow_tests.txt) go to the front of the workers' shares,
longest first, each to the share with the least known time so far; every other test
keeps its file order behind them. Stealing takes from the back, so the long ones run
first where they were placed and the quick ones are left to even out the end.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SLOW_TESTS = Path(__file__).with_name("slow_tests.txt")


def known_seconds(path: Path = SLOW_TESTS) -> dict[str, float]:
    seconds: dict[str, float] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            value, nodeid = line.split(" ", 1)
            seconds[nodeid.strip()] = float(value)
    return seconds


def shares(sizes_of: int, workers: int) -> list[int]:
    """How many tests each worker is first sent: xdist's split of the pending list."""
    sizes, left = [], sizes_of
    for i in range(workers):
        size = left // (workers - i)
        sizes.append(size)
        left -= size
    return sizes


def ordered(items: list[pytest.Item], seconds: dict[str, float], workers: int) -> list[pytest.Item]:
    """`items` with the long ones at the heads of the workers' shares (see the module)."""
    long = sorted((i for i in items if i.nodeid in seconds), key=lambda i: -seconds[i.nodeid])
    quick = [i for i in items if i.nodeid not in seconds]
    sizes = shares(len(items), workers)
    heads: list[list[pytest.Item]] = [[] for _ in range(workers)]
    loads = [0.0] * workers
    for item in long:
        # The least loaded share with room: a head longer than its share would spill its
        # last tests into the next share, ahead of that share's longer ones.
        room = [w for w in range(workers) if len(heads[w]) < sizes[w]]
        target = min(room, key=loads.__getitem__)
        heads[target].append(item)
        loads[target] += seconds[item.nodeid]
    result: list[pytest.Item] = []
    for head, size in zip(heads, sizes, strict=True):
        fill = max(0, size - len(head))
        result += head + quick[:fill]
        del quick[:fill]
    return result + quick


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0") or 0)
    if workers > 1 and SLOW_TESTS.exists():
        items[:] = ordered(items, known_seconds(), workers)
