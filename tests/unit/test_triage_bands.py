"""Change triage's latency bands: a moved tail is told from a moved distribution."""

from __future__ import annotations

from typing import Any

import pytest

from loadmgr.service.analysis.triage import band_means


def _hist(body: int, tail: int) -> dict[int, int]:
    """1,000 requests: 990 at `body` ms, 10 at `tail` ms (the top 1 %)."""
    return {body: 990, tail: 10}


@pytest.mark.parametrize(
    ("before", "after", "moved"),
    [
        (_hist(50, 400), _hist(50, 1200), [False, False, False, True]),  # the tail only
        (_hist(50, 400), _hist(80, 640), [True, True, True, True]),  # everything
        (_hist(50, 400), _hist(50, 400), [False, False, False, False]),
    ],
)
def test_bands_tell_the_tail_from_the_whole(
    before: dict[int, int], after: dict[int, int], moved: list[bool]
) -> None:
    old, new = band_means(before), band_means(after)
    assert [
        abs((b or 0) - (a or 0)) / (a or 1) >= 0.05 for a, b in zip(old, new, strict=True)
    ] == moved


def test_band_means_weigh_a_bucket_split_between_bands() -> None:
    assert band_means({10: 1, 20: 1}) == [10.0, 20.0, 20.0, 20.0]
    assert band_means({}) == [None, None, None, None]


# -- which histograms the bands read: after each run's warm-up, of `--request`'s request --

ITEMS, ORDERS = "GET /api/items", "POST /api/orders"


def _run_with(db: Any, test: Any, warm: dict[int, int], steady: dict[str, dict[int, int]]) -> str:
    """A run of 10 intervals of 2 s, warm-up 6 s: its first 3 intervals answer as `warm`
    (both requests), the rest as `steady` (per request)."""
    from loadmgr.models.histogram import encode, merged
    from tests.metrics_data import make_run, plugin_snapshots, store_all

    run = make_run(test, warmupSec=6)
    intervals = plugin_snapshots(run, 10, interval=2)
    for index, snapshot in enumerate(intervals):
        shapes = {ITEMS: warm, ORDERS: warm} if index < 3 else steady
        for item in snapshot.requestStats:
            item.hist = encode(shapes[f"{item.method} {item.name}"])
        snapshot.hist = encode(merged(shapes.values()))
    store_all(db, None, [run], intervals)
    return run.id


@pytest.mark.parametrize(
    ("request_name", "shape"),
    [(None, "whole distribution"), (ITEMS, "none"), (ORDERS, "whole distribution")],
)
def test_bands_leave_out_the_warm_up_and_read_the_request_asked(
    request_name: str | None, shape: str
) -> None:
    import mongomock

    from loadmgr.models import Scope
    from loadmgr.service.analysis.trends import TrendOptions
    from loadmgr.service.analysis.triage import _by_band
    from loadmgr.store import Store
    from tests.metrics_data import make_test

    db = mongomock.MongoClient()["loadmgr"]
    test = make_test()
    same = {20: 50, 40: 45, 80: 5}
    # After the change: the same items, slower orders, and a warm-up far slower still
    # (read, the items' bands would move too).
    before = _run_with(db, test, same, {ITEMS: same, ORDERS: same})
    slower = {k * 2: v for k, v in same.items()}
    after = _run_with(db, test, {k * 20: v for k, v in same.items()}, {ITEMS: same, ORDERS: slower})
    store = Store(db, Scope(), "mongodb://mock")
    bands, found = _by_band(store, [before], [after], TrendOptions(request=request_name))
    assert found == shape, bands
