"""Change triage's latency bands: a moved tail is told from a moved distribution."""

from __future__ import annotations

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
