"""The Locust web API client: the calls loadmgr makes (stats, swarm, stop, the plugin).

`LocustClient` builds on `LocustTransport` (transport.py), which owns the URL, auth, TLS
and the mapping of every failure to a one-line `ClusterError`; the comments below name
the pitfalls of the API itself.
"""

from __future__ import annotations

import csv
import io
import re
import time
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlencode

from loadmgr.errors import ClusterBusy, ClusterError, Interrupted, ValidationFailed
from loadmgr.locust.protocol import (
    ACTIVE_STATES,
    BUSY_STATES,
    IDLE_STATES,
    STATS_CACHE_SEC,
    WORKER_REPORT_SEC,
    ClusterStatus,
    check_swarm_args,
    is_distributed,
    poll_until,
    ran_since,
)
from loadmgr.locust.seconds import InvalidPayload
from loadmgr.locust.transport import PLUGIN_ROUTE, LocustTransport, one_line

_VERSION = re.compile(r'"version":\s*"([^"\\]+)"')
_SHA256 = re.compile(r"[0-9a-f]{64}")
PLUGIN_MAX_LIMIT = 3600
# /swarm fields loadmgr sets itself; never taken from a run's Locust options.
_SWARM_OWN_FIELDS = frozenset({"user_count", "spawn_rate", "host", "run_time", "user_classes"})


def _total_requests(payload: dict[str, Any]) -> int | None:
    """The Aggregated entry's request count of a /stats/requests payload."""
    for entry in payload.get("stats") or ():
        if (
            isinstance(entry, dict)
            and entry.get("name") == "Aggregated"
            and not entry.get("method")
        ):
            count = entry.get("num_requests")
            return count if isinstance(count, int) else None
    return None


class LocustClient(LocustTransport):
    """A Locust master's (or standalone Locust's) web API."""

    # Whether the swarm on Locust is ours: None until start_swarm is called (a client that
    # only stops or follows), False when our start failed before Locust accepted our
    # swarm, True once it did. See `stop()`. Set per instance once known.
    _owns_swarm: bool | None = None
    swarm_sent_mono: float | None = None  # time.monotonic() of the last /swarm
    swarm_answer: dict[str, Any] | None = None  # what the last accepted /swarm answered

    # -- the API ---------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """GET /stats/requests (memoized 2 s by Locust)."""
        payload = self._json("GET", "/stats/requests")
        if not isinstance(payload.get("stats"), list) or "state" not in payload:
            raise InvalidPayload(f"Locust at {self.display_url} sent an unexpected stats payload")
        return payload

    def swarm(
        self,
        user_count: int,
        spawn_rate: float,
        host: str | None,
        run_time_sec: int,
        extra: Sequence[tuple[str, str]] = (),
    ) -> dict[str, Any]:
        """POST /swarm, always with run_time so Locust stops the load even if we die.

        `extra`: more form fields (Locust's own options, models/locust_options.py): the
        master sets those it has among its parsed options and hands them to its workers.
        """
        check_swarm_args(user_count, spawn_rate, host, run_time_sec)
        form = [("user_count", str(user_count)), ("spawn_rate", repr(float(spawn_rate)))]
        if host:
            form.append(("host", host.strip()))
        form.append(("run_time", f"{run_time_sec}s"))
        form += [field for field in extra if field[0] not in _SWARM_OWN_FIELDS]
        # Locust's run_time counts from here: a caller that waited for a busy cluster
        # dates its run from this, not from when it began to wait.
        self.swarm_sent_mono = time.monotonic()
        payload = self._json("POST", "/swarm", data=form)
        # Validation failures are HTTP 200 with success false (docs/locust-api.md, "POST /swarm").
        if payload.get("success") is not True:
            message = one_line(str(payload.get("message") or "no reason given"))
            raise ClusterError(f"Locust at {self.display_url} refused the swarm: {message}")
        self.swarm_answer = payload
        return payload

    def stop(self, within: float | None = None) -> dict[str, Any]:
        """POST /stop; blocks until users are stopped, hence the long deadline
        (`stop_timeout`, or `within` seconds).

        Sends nothing (and answers `success: false`) when this client's `start_swarm`
        failed before its own swarm was accepted: the test running there, if any, is
        someone else's, and a clean-up after a failed start must not end it. A client that
        never tried to start a swarm (`runs stop`, a take-over) stops whatever runs.
        """
        if self._owns_swarm is False:
            return {"success": False, "message": "not stopped: the test there is not ours"}
        return self._request_stop(within)

    def _request_stop(self, within: float | None = None) -> dict[str, Any]:
        return self._json("POST", "/stop", read_timeout=within or self.stop_timeout)

    def reset_stats(self) -> None:
        """POST /stats/reset (zeroes counters, keeps entry names)."""
        self._request("POST", "/stats/reset")

    def worker_count(self) -> int:
        """GET /worker-count: connected workers (0 on a standalone Locust)."""
        payload = self._json("GET", "/worker-count")
        try:
            return int(payload["worker_count"])
        except (KeyError, TypeError, ValueError):
            raise ClusterError(
                f"Locust at {self.display_url} sent an unexpected /worker-count answer"
            ) from None

    def version(self) -> str | None:
        """Locust's version from the index page's templateArgs (there is no endpoint)."""
        response = self._request("GET", "/")
        # The last match: templateArgs keys are sorted, and a custom argument named
        # "version" in extra_options would come first.
        found = _VERSION.findall(response.text)
        return str(found[-1]) if found else None

    def requests_csv(self) -> list[dict[str, str]]:
        """GET /stats/requests/csv: one row per entry plus Aggregated, with all percentiles."""
        response = self._request("GET", "/stats/requests/csv")
        if "csv" not in response.headers.get("Content-Type", ""):
            raise self._not_api(response, "/stats/requests/csv", "CSV")
        return list(csv.DictReader(io.StringIO(response.text)))

    def exceptions(self) -> list[dict[str, Any]]:
        """GET /exceptions: user-code exceptions with count, msg, traceback, nodes."""
        items = self._json("GET", "/exceptions").get("exceptions")
        return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []

    def plugin_version(self) -> int | None:
        """The loadmgr plugin's protocol version (GET info); None when the cluster lacks it."""
        info = self.plugin_info()
        return None if info is None else int(info["version"])

    def plugin_info(self) -> dict[str, Any] | None:
        """The plugin's info answer (`version`, and `locustfile_sha256`: the hash of what the
        master's -f named, or None); None when the cluster lacks the plugin."""
        path = f"{PLUGIN_ROUTE}/info"
        response = self._request("GET", path, missing_ok=True)
        if response.status_code == 404:
            return None
        payload = self._payload(response, path)
        version = payload.get("version")
        if payload.get("plugin") != "loadmgr" or type(version) is not int:
            raise ClusterError(f"Locust at {self.display_url} sent an unexpected {path} answer")
        sha256 = payload.get("locustfile_sha256")
        if not (isinstance(sha256, str) and _SHA256.fullmatch(sha256)):
            sha256 = None  # an older plugin, or one that cannot tell: nothing to compare
        return {"version": version, "locustfile_sha256": sha256}

    def seconds(
        self, after: int | None = None, limit: int = 600, windows: tuple[int, int] | None = None
    ) -> dict[str, Any]:
        """GET the plugin's per-second data: seconds after `after`, up to `limit` of them;
        `windows`: (origin, interval) to have them merged on (a plugin that cannot ignores
        it and answers per second; `parse_seconds` tells the two apart)."""
        # Uncached on the master, unlike /stats/requests; see docs/plugin.md for the fields.
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise ValidationFailed(f"limit must be a whole number, got {limit!r}")
        if not 1 <= limit <= PLUGIN_MAX_LIMIT:
            raise ValidationFailed(f"limit must be between 1 and {PLUGIN_MAX_LIMIT}, got {limit}")
        query = {"limit": str(limit)}
        if after is not None:
            query = {"after": str(int(after)), **query}
        if windows is not None:
            query.update(origin=str(int(windows[0])), window=str(int(windows[1])))
        path = f"{PLUGIN_ROUTE}/seconds?{urlencode(query)}"
        payload = self._json("GET", path)
        if (
            payload.get("plugin") != "loadmgr"
            or not isinstance(payload.get("seconds"), list)
            or type(payload.get("complete")) is not int
        ):
            raise InvalidPayload(f"Locust at {self.display_url} sent an unexpected {path} answer")
        return payload

    def check(self) -> ClusterStatus:
        """Whether the API answers, with version, state, workers, users, plugin; never raises."""
        try:
            payload = self.stats()
        except ClusterError as exc:
            return ClusterStatus(reachable=False, error=exc.message)
        try:
            version = self.version()
        except ClusterError:
            version = None
        try:
            plugin = self.plugin_version()
        except ClusterError:
            plugin = None  # unreadable counts as absent: runs then poll /stats/requests
        distributed = is_distributed(payload)
        return ClusterStatus(
            reachable=True,
            version=version,
            state=str(payload.get("state")),
            workerCount=int(payload.get("worker_count") or 0) if distributed else None,
            userCount=int(payload.get("user_count") or 0),
            isDistributed=distributed,
            pluginVersion=plugin,
        )

    # -- helpers built on the API ----------------------------------------------------------

    def start_swarm(
        self,
        user_count: int,
        spawn_rate: float,
        host: str | None,
        run_time_sec: int,
        *,
        start_timeout: float = 30.0,
        worker_wait_sec: float = 0.0,
        wait_busy_sec: float = 0.0,
        while_busy: Callable[[dict[str, Any]], None] | None = None,
        poll_interval: float = 0.5,
        extra: Sequence[tuple[str, str]] = (),
    ) -> dict[str, Any]:
        """Swarm an idle Locust; the first stats payload showing our swarm started.

        It never stops a swarm it did not start:

        - Locust busy with a test before ours is sent (someone else's: another database
          on the same Locust, a lease that expired under a live run): it waits up to
          `wait_busy_sec` (at least the stats cache, so a test stopped a moment ago is not
          taken for a busy one) for that test to end, calling `while_busy(payload)` after
          each busy poll (it may raise to give up), then raises ClusterBusy. Nothing is
          sent to Locust.
        - A master without workers (after `worker_wait_sec`), a refused /swarm, or one
          whose answer is lost: ClusterError, and nothing is stopped (a refused swarm
          started nothing; a swarm whose answer was lost, if it started, ends at its
          run_time).
        - Our /swarm accepted, but no test running within `start_timeout`: our swarm may
          start late (a worker connecting), so it is stopped; then ClusterError.

        After any failure here, `stop()` on this client sends nothing: a caller's clean-up
        cannot end someone else's test.
        """
        self._owns_swarm = False
        check_swarm_args(user_count, spawn_rate, host, run_time_sec)
        payload = self._wait_until_idle(wait_busy_sec, while_busy, poll_interval)
        # Swarming a master without workers "succeeds" and does nothing
        # (docs/locust-api.md, "POST /swarm").
        if is_distributed(payload):
            _, has_workers = poll_until(
                self.worker_count, lambda count: count > 0, worker_wait_sec, poll_interval
            )
            if not has_workers:
                raise ClusterError(
                    f"Locust master at {self.display_url} has no workers connected",
                    hint="start workers with `locust --worker --master-host <master>`",
                )
        self.swarm(user_count, spawn_rate, host, run_time_sec, extra)
        # Locust was idle a moment ago and accepted our swarm: what starts now is ours.
        self._owns_swarm = True
        try:
            return self.wait_started(start_timeout, poll_interval=poll_interval, before=payload)
        except (ClusterError, Interrupted):
            # Stop our own swarm, so a late start (a worker connecting) never runs unwatched.
            try:
                self._request_stop()
            except ClusterError:
                pass  # the original failure is the one worth reporting
            self._owns_swarm = False  # ours is stopped: whatever runs there next is not
            raise

    def _wait_until_idle(
        self,
        wait_busy_sec: float,
        while_busy: Callable[[dict[str, Any]], None] | None,
        poll_interval: float,
    ) -> dict[str, Any]:
        """The first stats payload showing Locust runs no test; ClusterBusy past the wait."""
        # A test stopped a moment ago may still read `running` from the 2-s cache.
        cache_window = STATS_CACHE_SEC + 1
        started = time.monotonic()
        deadline = started + max(cache_window, wait_busy_sec)
        while True:
            payload = self.stats()
            if payload.get("state") not in BUSY_STATES:
                return payload
            now = time.monotonic()
            if now >= deadline:
                waited = f"; gave up after waiting {now - started:.0f}s" if wait_busy_sec else ""
                raise ClusterBusy(
                    f"Locust at {self.display_url} is already running a test "
                    f"(state {payload.get('state')}, {payload.get('user_count', 0)} users)"
                    f"{waited}",
                    hint="it was not started by this run and was left running; "
                    + (
                        "a longer --wait-timeout waits longer"
                        if wait_busy_sec
                        else "wait until it finishes, or use --if-busy wait"
                    ),
                )
            if while_busy is not None:
                while_busy(payload)
            # Past the cache window, polling faster than the cache only reads it again.
            pause = poll_interval if now - started < cache_window else STATS_CACHE_SEC
            time.sleep(max(0.0, min(pause, deadline - time.monotonic())))

    def wait_started(
        self,
        deadline_sec: float,
        *,
        poll_interval: float = 0.5,
        before: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Poll stats until the state is spawning or running, or the test is seen over
        already (`before`: the idle payload the swarm was sent on); ClusterError past the
        deadline."""
        # `success: true` from /swarm does not mean users started (a master without workers
        # says it too), so only the state reported by /stats/requests is trusted.
        def begun(payload: dict[str, Any]) -> bool:
            # A signal (Ctrl-C, SIGTERM) ends the wait at once, not at its deadline.
            if self.interrupt is not None and self.interrupt.is_set():
                raise Interrupted("interrupted while Locust was starting the test")
            return payload.get("state") in ACTIVE_STATES or ran_since(before, payload)

        payload, started = poll_until(self.stats, begun, deadline_sec, poll_interval)
        if not started:
            no_workers = is_distributed(payload) and not payload.get("worker_count")
            raise ClusterError(
                f"Locust at {self.display_url} did not start the test within "
                f"{deadline_sec:g}s (state {payload.get('state')}, "
                f"{payload.get('user_count', 0)} users)",
                hint="no workers are connected to the master" if no_workers else None,
            )
        return payload

    def wait_final_stats(
        self,
        deadline_sec: float = 30.0,
        *,
        poll_interval: float = 0.5,
        expected_requests: int | None = None,
    ) -> dict[str, Any]:
        """The stats once the test has stopped and its last numbers have arrived."""
        # A standalone Locust's first `stopped` payload is final. A master gets the workers'
        # last counts up to 3 s after stopping and serves them up to 2 s late, so its
        # payload is one fetched that long after `stopped` was first seen.
        stopped_since: list[float] = []

        def settled(payload: dict[str, Any]) -> bool:
            if payload.get("state") not in IDLE_STATES:
                stopped_since.clear()
                return False
            now = time.monotonic()
            stopped_since[:] = stopped_since or [now]
            if expected_requests is not None and _total_requests(payload) == expected_requests:
                return True  # the plugin's exact count says every report is in: no settle
            settle = WORKER_REPORT_SEC + STATS_CACHE_SEC if is_distributed(payload) else 0.0
            return now - stopped_since[0] >= settle

        payload, done = poll_until(self.stats, settled, deadline_sec, poll_interval)
        if not done:
            raise ClusterError(
                f"Locust at {self.display_url} did not stop within {deadline_sec:g}s "
                f"(state {payload.get('state')})"
            )
        return payload
