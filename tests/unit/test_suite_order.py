"""The suite's order for xdist (tests/scheduling.py): the long tests at the heads of the
workers' shares, balanced by their known time; every test handed out exactly once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.scheduling import SLOW_TESTS, known_seconds, ordered, shares


@dataclass(frozen=True)
class Item:
    nodeid: str


@given(
    st.integers(min_value=1, max_value=300),
    st.integers(min_value=2, max_value=8),
    st.data(),
)
def test_the_long_tests_lead_the_shares_and_every_test_is_kept(
    count: int, workers: int, data: Any
) -> None:
    items = [Item(f"t{i}") for i in range(count)]
    slow = data.draw(st.sets(st.integers(min_value=0, max_value=count - 1), max_size=20))
    seconds = {f"t{i}": float(data.draw(st.integers(min_value=5, max_value=40))) for i in slow}
    result = ordered(items, seconds, workers)  # type: ignore[arg-type]
    assert sorted(i.nodeid for i in result) == sorted(i.nodeid for i in items)
    quick = [i.nodeid for i in result if i.nodeid not in seconds]
    assert quick == [i.nodeid for i in items if i.nodeid not in seconds]  # file order kept
    start, loads = 0, []
    for size in shares(len(items), workers):
        share = [i.nodeid for i in result[start:start + size]]
        long = [n for n in share if n in seconds]
        assert share[: len(long)] == long  # the long ones first in their share
        assert long == sorted(long, key=lambda n: -seconds[n])
        loads.append(sum(seconds[n] for n in long))
        start += size
    if seconds:
        assert max(loads) - min(loads) <= max(seconds.values())  # greedy: within one test


def test_more_long_tests_than_a_share_holds_stay_in_their_shares_longest_first() -> None:
    """Every test long (hypothesis found it): no head grows past its share, where its last
    tests would run ahead of the next share's longer ones."""
    items = [Item(f"t{i}") for i in range(10)]
    seconds = {f"t{i}": 5.0 for i in range(10)} | {"t8": 6.0, "t9": 12.0}
    result = [i.nodeid for i in ordered(items, seconds, 2)]  # type: ignore[arg-type]
    for share in (result[:5], result[5:]):
        assert share == sorted(share, key=lambda n: -seconds[n])
    assert {"t8", "t9"} & set(result[:5]) and {"t8", "t9"} & set(result[5:])


def test_the_known_slow_tests_name_tests_that_exist() -> None:
    for nodeid in known_seconds(SLOW_TESTS):
        path = nodeid.split("::")[0]
        assert (SLOW_TESTS.parent.parent / path).exists(), nodeid
