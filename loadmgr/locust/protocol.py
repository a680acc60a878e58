"""Facts about Locust's web API that need no I/O: states, timings, and swarm arguments.

See docs/locust-api.md; shared by the client, the stats builder and the local cluster.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from loadmgr.errors import ValidationFailed
from loadmgr.models.documents.base import target_url_refusal

ACTIVE_STATES = frozenset({"spawning", "running"})
BUSY_STATES = frozenset({"spawning", "running", "stopping", "cleanup"})
IDLE_STATES = frozenset({"stopped", "ready"})
STATS_CACHE_SEC = 2.0  # /stats/requests is memoized this long by Locust
WORKER_REPORT_SEC = 3.0  # workers push stats to the master this often
AGGREGATED = "Aggregated"
T = TypeVar("T")


@dataclass(frozen=True)
class ClusterStatus:
    """What `clusters check` reports; `error` says why `reachable` is false."""

    reachable: bool
    version: str | None = None
    state: str | None = None
    workerCount: int | None = None
    userCount: int | None = None
    isDistributed: bool | None = None
    pluginVersion: int | None = None  # the loadmgr plugin's protocol version; None: absent
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The status as a plain dict (camelCase keys, for JSON output)."""
        return asdict(self)


def is_distributed(payload: dict[str, Any]) -> bool:
    """Whether a /stats/requests payload comes from a master (only masters list workers)."""
    return "worker_count" in payload or "workers" in payload


def redact_url(url: str) -> str:
    """`url` without any user:password part, safe to print."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, f"***@{host}", parts.path, parts.query, parts.fragment))


def check_swarm_args(
    user_count: int, spawn_rate: float, host: str | None, run_time_sec: int
) -> None:
    """Raise ValidationFailed for swarm arguments Locust would reject."""
    # Refused before sending: a rejected /swarm still cancels Locust's run_time timer.
    if isinstance(user_count, bool) or not isinstance(user_count, int) or user_count < 0:
        raise ValidationFailed(f"user count must be a whole number >= 0, got {user_count!r}")
    if not isinstance(spawn_rate, (int, float)) or not math.isfinite(spawn_rate) or spawn_rate <= 0:
        raise ValidationFailed(f"spawn rate must be a number > 0, got {spawn_rate!r}")
    if isinstance(run_time_sec, bool) or not isinstance(run_time_sec, int) or run_time_sec < 1:
        raise ValidationFailed(
            f"run time must be a whole number of seconds >= 1, got {run_time_sec!r}"
        )
    # The rule `tests create` checked the target with: never refuses what it accepted.
    why = target_url_refusal(host) if host else None
    if why is not None:
        raise ValidationFailed(f"invalid target URL {host!r}: {why}")


def poll_until(
    fetch: Callable[[], T], done: Callable[[T], bool], deadline_sec: float, interval: float
) -> tuple[T, bool]:
    """Call `fetch` until `done` accepts its value or the deadline passes (value, done)."""
    deadline = time.monotonic() + deadline_sec
    while True:
        value = fetch()
        if done(value):
            return value, True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return value, False
        time.sleep(min(interval, remaining))


def _requests(payload: dict[str, Any]) -> int | None:
    for entry in payload.get("stats") or []:
        if isinstance(entry, dict) and entry.get("name") == AGGREGATED:
            count = entry.get("num_requests")
            return count if isinstance(count, int) else None
    return None


def ran_since(before: dict[str, Any] | None, payload: dict[str, Any]) -> bool:
    """Whether `payload`, read after a swarm sent on the idle `before`, shows a test that
    started and is over already (a 1-s run between two polls, users that all stopped).

    A swarm clears Locust's numbers: `stopped` with other numbers than `before` had, or
    after a Locust that had never run a test (`ready`), is that test over, not one that
    never started. The same numbers are the cached answer from before the swarm.
    """
    if before is None or payload.get("state") != "stopped":
        return False
    if before.get("state") == "ready":
        return True
    now, then = _requests(payload), _requests(before)
    return now is not None and then is not None and now != then
