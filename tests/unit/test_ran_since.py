"""`ran_since`: a test seen over already after a swarm, told from one that never started."""

from __future__ import annotations

from typing import Any

import pytest

from loadmgr.locust.protocol import ran_since


def payload(state: str, requests: int | None) -> dict[str, Any]:
    stats = [] if requests is None else [{"name": "Aggregated", "num_requests": requests}]
    return {"state": state, "stats": stats}


@pytest.mark.parametrize(
    ("before", "after", "ran"),
    [
        (payload("ready", 0), payload("stopped", 0), True),  # a fresh Locust: only ours
        (payload("ready", 0), payload("stopped", 12), True),
        (payload("stopped", 40), payload("stopped", 12), True),  # numbers cleared, new
        (payload("stopped", 40), payload("stopped", 40), False),  # the cached answer
        (payload("stopped", 0), payload("stopped", 0), False),  # nothing tells them apart
        (payload("stopped", 40), payload("running", 3), False),  # running: not "over"
        (payload("stopped", 40), payload("stopped", None), False),  # no numbers: unknown
        (None, payload("stopped", 12), False),
    ],
)
def test_a_test_over_already_is_told_from_one_never_started(
    before: dict[str, Any] | None, after: dict[str, Any], ran: bool
) -> None:
    assert ran_since(before, after) is ran
