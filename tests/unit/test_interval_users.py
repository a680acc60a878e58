"""An interval's users and state are those of its own window (issue 20, item 3).

The plugin and `/stats/requests` tell the cluster's users and state as they are when
asked; a window is stored once it is complete, a poll or more later, and the run's last
windows only after the stop. These tests drive both sources with a scripted cluster and
check every interval against what the cluster was doing inside that interval's window.
"""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from loadmgr.locust.protocol import IDLE_STATES
from loadmgr.models import MetricSnapshot
from loadmgr.service.collection.sources import PluginSource
from loadmgr.service.collection.windows import WindowBuilder

ORIGIN = 1_800_000_000


class ScriptedPlugin:
    """A Locust master with the plugin: one request per second while it loads, and
    the users and state it has at the moment it is asked."""

    def __init__(self, stop_second: int) -> None:
        self.stop_second = stop_second  # the first second without load
        self.now = float(ORIGIN)
        self.users = 0
        self.state = "spawning"

    def seconds(
        self, after: int | None, limit: int, windows: tuple[int, int] | None = None
    ) -> dict[str, Any]:  # answers per second, as an older plugin (windows ignored)
        stopped = self.state in IDLE_STATES
        complete = min(math.floor(self.now), self.stop_second) if stopped else math.floor(self.now)
        first = ORIGIN if after is None else after + 1
        shown = range(max(first, ORIGIN), min(complete, self.stop_second))
        return {
            "plugin": "loadmgr",
            "version": 1,
            "now": self.now,
            "complete": complete,
            "oldest": ORIGIN,
            "test_started": float(ORIGIN),
            "state": self.state,
            "user_count": self.users,
            "worker_count": None,
            "more": False,
            "final": stopped,
            "seconds": [{"t": t, "entries": [["GET", "/", 1, 0, [[10, 1]]]]} for t in shown],
        }


def _run(
    users_at: list[int], poll_offset: float, interval: int
) -> tuple[list[MetricSnapshot], list[tuple[float, int, str]]]:
    """Poll once a second while the load runs (`users_at[k]` users in second k), then
    stop; every interval stored, and what each poll saw."""
    cluster = ScriptedPlugin(stop_second=ORIGIN + len(users_at))
    source = PluginSource(cluster, WindowBuilder("r", origin=ORIGIN, interval=interval))  # type: ignore[arg-type]
    stored: list[MetricSnapshot] = []
    seen: list[tuple[float, int, str]] = []
    for k, users in enumerate(users_at):
        cluster.now = ORIGIN + k + poll_offset
        cluster.users, cluster.state = users, "spawning" if k == 0 else "running"
        seen.append((cluster.now, cluster.users, cluster.state))
        stored += source.poll().snapshots
    cluster.now = cluster.stop_second + poll_offset
    cluster.users, cluster.state = 0, "stopped"
    seen.append((cluster.now, 0, "stopped"))
    stored += source.poll().snapshots
    stored += source.final(deadline_sec=0.0)
    return stored, seen


def test_the_last_windows_keep_the_users_that_made_their_requests() -> None:
    """The demo run's last intervals read `users 0, state stopped` while carrying load."""
    stored, _ = _run([5] * 10, 0.5, 5)
    assert [(s.windowEnd.timestamp() - ORIGIN) for s in stored if s.windowEnd] == [5, 10]
    assert [(s.currentUsers, s.state) for s in stored] == [(5, "running"), (5, "running")]


def test_a_ramp_shows_the_users_of_each_window_not_of_the_next_poll() -> None:
    stored, _ = _run(list(range(1, 11)), 0.5, 2)
    # Window [2k, 2k+2) was last seen at second 2k+1 (users 2k+2), not at the poll after.
    assert [s.currentUsers for s in stored] == [2, 4, 6, 8, 10]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.integers(1, 50), min_size=1, max_size=25),
    st.floats(0.05, 0.95),
    st.integers(1, 6),
)
def test_every_interval_has_users_and_state_seen_within_its_window(
    users_at: list[int], poll_offset: float, interval: int
) -> None:
    stored, seen = _run(users_at, poll_offset, interval)
    assert sum(s.intervalRequests for s in stored) == len(users_at)
    for snapshot in stored:
        assert snapshot.windowStart is not None and snapshot.windowEnd is not None
        start, end = snapshot.windowStart.timestamp(), snapshot.windowEnd.timestamp()
        inside = [(users, state) for at, users, state in seen if start <= at <= end]
        loading = [(u, s) for u, s in inside if s not in IDLE_STATES]
        if snapshot.intervalRequests:  # requests were made: by users that were loading
            assert snapshot.state not in IDLE_STATES
        expected = (loading or inside)[-1] if inside else None
        if expected is not None:
            assert (snapshot.currentUsers, snapshot.state) == expected
