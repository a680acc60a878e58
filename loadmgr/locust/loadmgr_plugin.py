"""loadmgr's Locust plugin: exact request counts and response-time histograms per second.

Locust's web API only serves cumulative counters, refreshed by worker reports every 3 s and
cached for 2 s, so anything computed from polls of /stats/requests aliases. This plugin
records, per wall-clock second and per (method, name), the number of requests, the number of
failures and a histogram of response times, and serves them from the master's web UI.

Use: one file, needing nothing but Locust (with gevent and flask, which Locust brings).
Load it on the master AND on every worker (a worker without it sends no data, and the master
then never calls its seconds complete), either way:

    locust -f locustfile.py,loadmgr_plugin.py ...          # on the master and each worker
    import loadmgr_plugin  # noqa: F401                     # or once in the locustfile

Loading it twice in one process (both ways at once) is harmless: it registers itself once
per Locust `events` object. `loadmgr clusters plugin` prints this file.

What is recorded. On the process that makes the requests (a worker, or a standalone Locust),
each `events.request` counts into the second `int(time.time())` at the moment the event
fires, like Locust's own per-second counters: requests, failures (an exception came with
it, tested as Locust tests it) and the response time rounded as Locust's `StatsEntry`
rounds it (below 100 ms to 1 ms, below 1000 to 10, below 10000 to 100, else to 1000). A
response time of None counts the request but adds no histogram entry. So after a test the
sum over all seconds equals Locust's Aggregated num_requests and num_failures exactly.
Workers send what they recorded with each of Locust's own stats reports
(`events.report_to_master`: the same message as Locust's stats, including the first one
after a stop, which carries a test's last requests) and forget it; the master adds every
report into its buffer (`events.worker_report`): one second may come in several parts.

Routes, on the master's (or standalone's) web UI, under --web-base-path and behind
--web-login when that is on (Locust's own `auth_required_if_enabled`), never cached:

    GET <base>/loadmgr/v1/info     -> {"plugin": "loadmgr", "version": 1,
                                       "locustfile_sha256": "<hex>" or null}
        the hash of what this master's -f named when it started (loadmgr's rule, below
        locustfile_sha256()), null when it cannot tell
    GET <base>/loadmgr/v1/seconds?after=<int, default -1>&limit=<1..3600, default 600>
        -> {"plugin", "version", "now", "complete", "final", "oldest", "test_started",
            "state", "user_count", "worker_count", "workers_without_plugin", "generator",
            "seconds", "more"}
           seconds: [{"t": T, "entries": [[method, name, requests, failures,
                                             [[ms, count], ...]], ...]}, ...]
           ascending, only after < T < complete, only seconds with data, at most `limit`;
           `more` is true when the limit cut the list. A bad query answers HTTP 400
           {"error": "..."}. `worker_count` and `workers_without_plugin` (connected workers
           whose reports carry no data of this plugin version) are null on a standalone.
           generator: {"master_cpu": %, "workers": [{"id", "state", "cpu_usage" (%),
           "memory_usage" (bytes)}, ...]}: what Locust's runners measure (every 5 s, sent
           with each 1-s heartbeat); a standalone lists itself as its one worker.
        &origin=<int>&window=<1..3600> (both, or neither): the same seconds merged on the
           master into the asker's windows (origin + k*window ...; a second before origin
           in window 0), so a collector gets one entry per request and window instead of
           one per second (issue 26). The answer then also says "windows": {"origin",
           "interval"}, and each item of "seconds" is consecutive seconds of one window:
           {"t": last second, "first": first second, "n": seconds with data, "entries":
           [[method, name, requests, failures, [ms0, n0, ms1 - ms0, n1, ...]]]}: each
           histogram as the flat step array loadmgr stores (docs/storage.md). `limit`
           still counts seconds. An older plugin ignores both and answers per second.

Complete. Every second t < `complete` is final: no more data for it will arrive.
  * Standalone: everything before the current second while the test runs; after a stop,
    max(now, last second with data + 1).
  * Master, test running: the smallest watermark of the workers that are connected and not
    missing (a worker's watermark is its `int(time.time())` when it built a report: it has
    sent everything before that); a worker that has not reported yet in this test holds
    `complete` at the test's first second.
  * Master, test stopping or stopped: once every worker that took part has sent a report
    built after its users stopped (or went missing, or has not been heard of for 10 s),
    max(now, last second + 1); until then the smallest watermark of those still owing one.
    Workers send their last report as their users stop (see on_worker_test_stop); without
    it, a worker's last report would come up to 3 s after the master says "stopped".
  `complete` never goes backwards within a test. `final` is true once the test is over and
  nothing more will arrive for it (standalone: stopped; master: the "max(now, ...)" case
  above), so a reader knows when it has every second of a test.

Clocks. Seconds are stamped with the clock of the process that made the request, like
Locust's own per-second counters, so one second on the master adds up requests that
happened in the same second of each worker's clock: keep the clocks in sync (NTP). The
watermark rule compares each worker with itself, so `complete` stays right under skew;
`now` and `test_started` are the master's clock. A worker whose clock steps backwards may
add to seconds already called complete (the totals stay exact).

One test at a time. `test_start` on the master (or standalone) empties the buffer, like
Locust's own stats, and records `test_started`. The master gives each test an id that
reaches the workers with every spawn message (as an extra attribute of parsed_options, which
Locust forwards to workers); each worker report carries the id it ran under, and the
master drops a report from an earlier test that arrives late instead of adding it to the new
one. A worker also empties its unsent data when its own test_start fires. The plugin does
not follow /stats/reset or --reset-stats: a second's counts are facts about that second.

Memory. The last 3600 seconds are kept (older ones are dropped as newer ones arrive;
`oldest` is the first second kept, null when empty). A second holds at most 2000
(method, name) keys; further ones are counted under ("", "(other)"). Seconds that can no
longer change are packed (one array of ints per histogram): 3600 seconds of 20 names with
30 response-time buckets each take about 32 MB (measured with tracemalloc, tested under
40 MB), against about 140 MB as dicts. Workers keep only what they have not sent yet
(about 3 s).

Versions. PLUGIN_VERSION is the version of this wire protocol (the routes, their JSON and
the report between worker and master). It changes only when a reader would misread the
data; readers check it with the info route.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import uuid
from array import array
from collections.abc import Callable, Iterable
from typing import Any

import locust

PLUGIN_VERSION = 1

ROUTE_PREFIX = "/loadmgr/v1"
REPORT_KEY = "loadmgr"  # the key this plugin adds to each worker report
TEST_ID_OPTION = "loadmgr_test_id"  # parsed_options attribute: reaches workers with spawns
KEEP_SECONDS = 3600
MAX_KEYS_PER_SECOND = 2000
OTHER_KEY = ("", "(other)")
DEFAULT_LIMIT = 600
MAX_LIMIT = 3600
WORKER_SILENCE_SEC = 10.0  # workers report every 3 s: silent this long means gone
MAX_WORKERS_TOLD = 4096  # workers listed in one answer's `generator`
_INTERN_MAX = 50_000
_MARKER = "_loadmgr_plugin"  # attribute of the Events object: the installed plugin
_INTEGER = re.compile(r"-?[0-9]{1,18}")
# /swarm form fields that start a stepped test (`loadmgr runs start --steps`): the users of
# each step, comma-separated, and a step's whole seconds. Locust ignores fields it lacks.
STEPS_FIELD = "loadmgr_steps"
STEP_SEC_FIELD = "loadmgr_step_sec"
MAX_STEPS = 50
_RUNNING = frozenset({"spawning", "running", "cleanup"})
_OVER = frozenset({"stopping", "stopped", "ready"})
# loadmgr's bounds on a stored locustfile folder: past them it cannot be a test's, so no hash.
HASH_MAX_FILES = 200
HASH_MAX_BYTES = 4_000_000

logger = logging.getLogger("loadmgr_plugin")

Key = tuple[str, str]
# A hot entry: [requests, failures, {rounded_ms: count}], still changing.
HotEntry = list[Any]
# A packed (cold) entry: (key, requests, failures, array of ms, count, ms, count, ...).
ColdEntry = tuple[Key, int, int, "array[int] | tuple[int, ...]"]


def bucket(response_time: float) -> int:
    """A response time rounded as Locust's StatsEntry rounds it (its histogram keys)."""
    # The same expressions as locust.stats.bucket_response_time (round half to even too).
    if response_time < 100:
        return round(response_time)
    if response_time < 1000:
        return int(round(response_time, -1))
    if response_time < 10000:
        return int(round(response_time, -2))
    return int(round(response_time, -3))


def _pack(histogram: dict[int, int]) -> array[int] | tuple[int, ...]:
    flat = [value for pair in sorted(histogram.items()) for value in pair]
    # Four bytes an int, unless a value does not fit (a negative response time from a
    # custom client, a huge one): then eight, or, for what is no int at all, a tuple.
    # Packing must never fail: the second is already out of the hot dict.
    small = not flat or (min(flat) >= 0 and max(flat) < 2**32)
    try:
        return array("I" if small else "q", flat)
    except (OverflowError, TypeError):
        return tuple(flat)


class SecondsBuffer:
    """Entries per second: hot seconds as dicts (still changing), cold ones packed."""

    def __init__(
        self,
        keep_seconds: int = KEEP_SECONDS,
        max_keys: int = MAX_KEYS_PER_SECOND,
        *,
        freeze_on_rollover: bool = False,
    ) -> None:
        self.keep_seconds = keep_seconds
        self.max_keys = max_keys
        # A standalone Locust records in its own clock's order: a second is done once the
        # next one starts. A master gets seconds late and out of order, so it freezes
        # what `complete` says is final instead.
        self.freeze_on_rollover = freeze_on_rollover
        self.hot: dict[int, dict[Key, HotEntry]] = {}
        self.cold: dict[int, tuple[ColdEntry, ...]] = {}
        self.newest: int | None = None  # the newest second ever held since the last clear
        self._lowest: int | None = None  # no second before this one is held
        self._keys: dict[Key, Key] = {}  # one tuple per key, shared by every second
        self._folding_logged = False

    def clear(self) -> None:
        # In place: the request listener holds a reference to `hot`.
        self.hot.clear()
        self.cold.clear()
        self.newest = None
        self._lowest = None
        self._keys.clear()
        self._folding_logged = False

    def oldest(self) -> int | None:
        """The first second kept (None when nothing is)."""
        firsts = [min(store) for store in (self.hot, self.cold) if store]
        return min(firsts) if firsts else None

    def second(self, t: int) -> dict[Key, HotEntry]:
        """The entries of second `t`, ready to be added to (called once per new second)."""
        entries = self.hot.get(t)
        if entries is not None:
            return entries
        newest = self.newest
        if newest is not None and t <= newest - self.keep_seconds:
            return {}  # older than what is kept: counted nowhere, like an evicted second
        packed = self.cold.pop(t, None)
        entries = {} if packed is None else _thaw(packed)
        self.hot[t] = entries
        if self._lowest is None or t < self._lowest:
            self._lowest = t
        if newest is None or t > newest:
            self.newest = t
            if self.freeze_on_rollover:
                self.freeze_before(t)
            self._evict(t - self.keep_seconds)
        return entries

    def entry(self, entries: dict[Key, HotEntry], key: Key) -> HotEntry:
        """The entry of `key` in a second's `entries`, made if new (folded past the cap)."""
        entry = entries.get(key)
        if entry is not None:
            return entry
        if len(entries) - (OTHER_KEY in entries) >= self.max_keys and key != OTHER_KEY:
            if not self._folding_logged:
                self._folding_logged = True
                logger.warning(
                    "loadmgr plugin: more than %d request names in one second; "
                    "the rest are counted as %r",
                    self.max_keys,
                    OTHER_KEY,
                )
            key = OTHER_KEY
            entry = entries.get(key)
            if entry is not None:
                return entry
        if len(self._keys) < _INTERN_MAX:
            key = self._keys.setdefault(key, key)
        entry = [0, 0, {}]
        entries[key] = entry
        return entry

    def add_report(self, seconds: Iterable[Any]) -> None:
        """Add a worker's report: [[t, [[method, name, requests, failures, [ms, n, ...]]]]].

        Checked whole before anything is added (ValueError, TypeError): a malformed report
        adds nothing rather than a part.
        """
        checked = [
            (
                int(t),
                [
                    (str(method), str(name), int(requests), int(failures),
                     [int(value) for value in flat])
                    for method, name, requests, failures, flat in items
                ],
            )
            for t, items in seconds
        ]
        for t, items in checked:
            if not items:
                continue
            entries = self.second(t)
            for method, name, requests, failures, flat in items:
                entry = self.entry(entries, (method, name))
                entry[0] += requests
                entry[1] += failures
                histogram = entry[2]
                for index in range(0, len(flat) - 1, 2):
                    ms = flat[index]
                    histogram[ms] = histogram.get(ms, 0) + flat[index + 1]

    def drain(self) -> list[list[Any]]:
        """Everything held, in the report's form, then forget it (a worker's send)."""
        report = [
            [t, [[key[0], key[1], entry[0], entry[1], _flat(entry[2])]
                 for key, entry in entries.items()]]
            for t, entries in sorted(self.hot.items())
            if entries
        ]
        self.hot.clear()
        self.cold.clear()
        return report

    def freeze_before(self, t: int) -> None:
        """Pack every hot second before `t`: it will not change any more (as a rule)."""
        for second in [s for s in self.hot if s < t]:
            entries = self.hot.pop(second)
            if entries:
                self.cold[second] = tuple(
                    (key, entry[0], entry[1], _pack(entry[2]))
                    for key, entry in sorted(entries.items())
                )

    def page(self, after: int, before: int, limit: int) -> tuple[list[dict[str, Any]], bool]:
        """Seconds after < t < before with data, ascending, at most `limit`; and whether cut."""
        chosen = sorted(
            t
            for t in (*self.hot, *self.cold)
            if after < t < before and (self.hot.get(t) or t in self.cold)
        )
        page = []
        for t in chosen[:limit]:
            packed = self.cold.get(t)
            if packed is not None:
                items = [
                    [key[0], key[1], requests, failures, _pairs(flat)]
                    for key, requests, failures, flat in packed
                ]
            else:
                items = [
                    [key[0], key[1], entry[0], entry[1], sorted(map(list, entry[2].items()))]
                    for key, entry in sorted(self.hot[t].items())
                ]
            page.append({"t": t, "entries": items})
        return page, len(chosen) > limit

    def _evict(self, through: int) -> None:
        if self._lowest is None or self._lowest > through:
            return  # nothing that old: no need to look at every second held
        for store in (self.hot, self.cold):
            for second in [s for s in store if s <= through]:
                del store[second]
        self._lowest = through + 1


def _thaw(packed: tuple[ColdEntry, ...]) -> dict[Key, HotEntry]:
    return {
        key: [requests, failures, dict(zip(flat[0::2], flat[1::2], strict=True))]
        for key, requests, failures, flat in packed
    }


def _flat(histogram: dict[int, int]) -> list[int]:
    return [value for pair in sorted(histogram.items()) for value in pair]


def _pairs(flat: array[int] | tuple[int, ...]) -> list[list[int]]:
    return [[flat[index], flat[index + 1]] for index in range(0, len(flat), 2)]


def _steps(histogram: dict[int, int]) -> list[int]:
    """A histogram as loadmgr's flat step array: [ms0, n0, ms1 - ms0, n1, ...]."""
    flat: list[int] = []
    previous = 0
    for ms, count in sorted(histogram.items()):
        flat += (ms - previous, count)
        previous = ms
    return flat


def window_page(seconds: list[dict[str, Any]], origin: int, interval: int) -> list[dict[str, Any]]:
    """`page`'s seconds with the consecutive seconds of each window (origin + k*interval,
    a second before origin in window 0) merged: one entry per (method, name) and window,
    its histogram as steps (see the route's doc). Exact: counts and buckets only add."""
    groups: list[tuple[dict[str, Any], dict[Key, HotEntry]]] = []
    index = None
    for second in seconds:
        t = second["t"]
        own = max(0, (t - origin) // interval)
        if own != index:
            index = own
            groups.append(({"t": t, "first": t, "n": 0}, {}))
        item, entries = groups[-1]
        item["t"] = t
        item["n"] += 1
        for method, name, requests, failures, pairs in second["entries"]:
            entry = entries.get((method, name))
            if entry is None:
                entry = entries[(method, name)] = [0, 0, {}]
            entry[0] += requests
            entry[1] += failures
            histogram = entry[2]
            for ms, count in pairs:
                histogram[ms] = histogram.get(ms, 0) + count
    return [
        {
            **item,
            "entries": [
                [key[0], key[1], entry[0], entry[1], _steps(entry[2])]
                for key, entry in sorted(entries.items())
            ],
        }
        for item, entries in groups
    ]


class _WorkerMark:
    """What a worker's last report said, and when it came (master's monotonic clock)."""

    __slots__ = ("received", "stopped", "test_id", "watermark")

    def __init__(self, test_id: Any, watermark: int, stopped: bool, received: float) -> None:
        self.test_id = test_id
        self.watermark = watermark
        self.stopped = stopped
        self.received = received


class StepsTicks:
    """Stepped load: `users[i]` users during the i-th `step_sec` seconds, then the end.

    Locust runs it as the shape class `LoadmgrSteps` (`steps_shape()`), made only when a
    /swarm asks for steps: this file declares no LoadTestShape, so Locust's loader never
    picks one from it, whatever the locustfile."""

    def __init__(self, users: list[int], step_sec: int, spawn_rate: float) -> None:
        self.users = list(users)
        self.step_sec = step_sec
        self.spawn_rate = spawn_rate
        self.start_time = time.perf_counter()  # Locust's start_shape() resets it

    def tick(self) -> tuple[int, float] | None:
        index = int((time.perf_counter() - self.start_time) // self.step_sec)
        if index >= len(self.users):
            return None
        return self.users[index], self.spawn_rate


_STEPS_CLASS: list[type] = []  # LoadmgrSteps, once made


def steps_shape(users: list[int], step_sec: int, spawn_rate: float) -> Any:
    """A LoadmgrSteps shape (a LoadTestShape, as Locust's runner wants) for these steps."""
    if not _STEPS_CLASS:
        base = locust.LoadTestShape
        _STEPS_CLASS.append(
            type("LoadmgrSteps", (StepsTicks, base), {"abstract": True, "__module__": __name__})
        )
    return _STEPS_CLASS[0](users, step_sec, spawn_rate)


def parse_steps_fields(steps: str, step_sec: str | None) -> tuple[list[int], int]:
    """The steps' /swarm fields as (users per step, seconds a step); ValueError."""
    parts = steps.split(",")
    if not 1 <= len(parts) <= MAX_STEPS or not all(_INTEGER.fullmatch(p) for p in parts):
        raise ValueError(f"{STEPS_FIELD} must be 1 to {MAX_STEPS} user counts, got {steps[:60]!r}")
    users = [int(part) for part in parts]
    if min(users) < 1:
        raise ValueError(f"{STEPS_FIELD}: every step needs at least 1 user")
    seconds = _int_argument(step_sec, STEP_SEC_FIELD, 0, 1, 86_400)
    return users, seconds


class LoadmgrPlugin:
    """The plugin's state in one Locust process; its role is set by `events.init`."""

    def __init__(self, events: Any) -> None:
        self.events = events
        self.version = PLUGIN_VERSION
        self.role: str | None = None  # "master", "worker" or "standalone"
        self.environment: Any = None
        self.runner: Any = None
        self.buffer = SecondsBuffer()
        self.test_id: str | None = None
        self.test_started: float | None = None
        self._floor: int | None = None  # the last `complete` answered in this test
        # Master only: the workers' last reports, who took part in this test, when each
        # was last heard of, when the stop began (monotonic), who runs without the plugin.
        self._marks: dict[str, _WorkerMark] = {}
        self._expected: set[str] = set()
        self._heard: dict[str, float] = {}
        self._stop_requested: float | None = None
        self._without_plugin: set[str] = set()
        self._listener: Callable[..., None] | None = None  # the request listener, once made
        # Why the last test stopped, as seen where it was stopped (see stop_cause()).
        self.stop_cause: str | None = None
        # What -f named when Locust started (master or standalone), hashed as loadmgr does.
        self.locustfile_sha256: str | None = None

    # -- wiring ----------------------------------------------------------------------------

    def on_init(self, environment: Any, **_kwargs: Any) -> None:
        if self.role is not None:
            return  # a second init (library use): the first one's listeners stay
        from locust.runners import MasterRunner, WorkerRunner

        runner = environment.runner
        if runner is None:
            return
        self.environment = environment
        self.runner = runner
        events = self.events
        if isinstance(runner, MasterRunner):
            self.role = "master"
            events.worker_report.add_listener(self.on_worker_report)
        elif isinstance(runner, WorkerRunner):
            self.role = "worker"
            events.report_to_master.add_listener(self.on_report_to_master)
            events.test_stop.add_listener(self.on_worker_test_stop)
        else:
            self.role = "standalone"
            self.buffer.freeze_on_rollover = True
        events.test_start.add_listener(self.on_test_start)
        if self.role != "worker":
            events.test_stopping.add_listener(self.on_test_stopping)
        if self.role != "master":
            self._listener = request_listener(self.buffer)
            self.place_listener()
        if environment.web_ui is not None:
            # At start, so the hash is of the files Locust loaded, not of later edits.
            option = getattr(getattr(environment, "parsed_options", None), "locustfile", None)
            self.locustfile_sha256 = locustfile_sha256(option, os.path.abspath(__file__))
            self._add_routes(environment.web_ui)

    def place_listener(self) -> None:
        """Put the request listener right after Locust's own stats listener.

        `EventHook.fire` calls listeners in order and lets StopUser, RescheduleTask and the
        like propagate: a locustfile's listener that raises one stops the listeners after
        it. Beside Locust's own, this one sees exactly the requests Locust counts, however
        the locustfile's listeners were added (module level: before both; `init`: after).
        Placed again at each test start, in case a listener was put in front since."""
        listener = self._listener
        handlers = getattr(self.events.request, "_handlers", None)
        if listener is None:
            return
        if not isinstance(handlers, list):  # not Locust's EventHook: nothing to order
            self.events.request.add_listener(listener)
            return
        if listener in handlers:
            handlers.remove(listener)
        position = next(
            (index + 1 for index, handler in enumerate(handlers) if _counts_stats(handler)), 0
        )
        handlers.insert(position, listener)

    def on_test_start(self, **_kwargs: Any) -> None:
        self.buffer.clear()
        self.place_listener()
        if self.role == "worker":
            return  # unsent data of the previous test is dropped, like Locust's own stats
        self.test_started = time.time()
        self.stop_cause = None
        self._floor = None
        if self.role == "master":
            self._marks.clear()
            self._heard.clear()
            self._stop_requested = None
            options = self.environment.parsed_options
            self.test_id = uuid.uuid4().hex if options is not None else None
            if options is not None:
                # test_start fires before the spawn messages are built from parsed_options:
                # every worker of this test gets the id with its users.
                setattr(options, TEST_ID_OPTION, self.test_id)
            now = time.monotonic()
            self._expected = {
                worker_id
                for worker_id, node in self.runner.clients.items()
                if node.state != "missing"
            }
            self._heard = dict.fromkeys(self._expected, now)

    def on_worker_test_stop(self, **_kwargs: Any) -> None:
        # Locust's worker tells the master it stopped without sending its last numbers;
        # they would follow with the next periodic report, up to 3 s later. Sending them
        # now (before "client_stopped") makes the master's "stopped" mean every request is
        # counted, in Locust's own stats and in this plugin's seconds alike.
        send = getattr(self.runner, "_send_stats", None)
        if callable(send):
            try:
                send()
            except Exception:  # noqa: BLE001 - a private API of Locust's: never break a stop
                pass

    def on_test_stopping(self, **_kwargs: Any) -> None:
        self._stop_requested = time.monotonic()
        if self.stop_cause is None:
            self.stop_cause = _cause_of_stop(self.environment, self.runner)

    def on_report_to_master(self, client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
        options = self.environment.parsed_options
        data[REPORT_KEY] = {
            "v": PLUGIN_VERSION,
            "test": getattr(options, TEST_ID_OPTION, None) if options is not None else None,
            # Requests recorded from now on fall in this second or later (one greenlet runs
            # at a time, and this one does not yield while building the report).
            "watermark": int(time.time()),
            "stopped": self.runner.state in ("stopped", "ready"),
            "seconds": self.buffer.drain(),
        }

    def on_worker_report(self, client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
        now = time.monotonic()
        self._heard[client_id] = now
        report = data.get(REPORT_KEY)
        if not isinstance(report, dict) or report.get("v") != PLUGIN_VERSION:
            self._without_plugin.add(client_id)
            return
        self._without_plugin.discard(client_id)
        try:
            mark = _WorkerMark(
                report.get("test"), int(report["watermark"]), bool(report["stopped"]), now
            )
            self._marks[client_id] = mark
            if mark.test_id != self.test_id:
                if report.get("seconds"):
                    logger.info("loadmgr plugin: dropped a late report of an earlier test "
                                "from %s", client_id)
                return
            self._expected.add(client_id)
            self.buffer.add_report(report["seconds"])
        except (KeyError, TypeError, ValueError):
            logger.warning("loadmgr plugin: malformed report from %s ignored", client_id)
            return
        self.buffer.freeze_before(self.complete(time.time()))

    # -- reading ---------------------------------------------------------------------------

    def complete(self, now: float) -> int:
        """Every second before this one is final (see the module docstring)."""
        return self.completeness(now)[0]

    def completeness(self, now: float) -> tuple[int, bool]:
        """`complete`, and whether the test's data is all in (nothing more will arrive)."""
        newest = self.buffer.newest
        after_all = max(int(now), newest + 1 if newest is not None else 0)
        state = self.runner.state
        if self.role != "master":
            final = state not in _RUNNING
            value = after_all if final else int(now)
        elif self.test_started is None:
            value, final = after_all, True  # no test yet: nothing can arrive
        else:
            value, final = self._master_complete(state, after_all)
        if self._floor is not None and value < self._floor:
            value = self._floor
        self._floor = value
        return value, final

    def _master_complete(self, state: str, after_all: int) -> tuple[int, bool]:
        now = time.monotonic()
        clients = self.runner.clients
        for worker_id, node in clients.items():
            self._heard[worker_id] = now
            if node.state in ("spawning", "running"):
                self._expected.add(worker_id)
        start = int(self.test_started or 0)
        if state in _OVER:
            owing = [w for w in self._expected if not self._settled(w, clients, now)]
            if not owing:
                return after_all, True
        else:
            owing = [w for w, node in clients.items() if node.state != "missing"]
            owing += [
                w for w in self._expected if w not in clients and not self._settled(w, clients, now)
            ]
        if not owing:
            return (self._floor if self._floor is not None else start), False
        return min(self._watermark(worker_id, start) for worker_id in owing), False

    def _watermark(self, worker_id: str, start: int) -> int:
        mark = self._marks.get(worker_id)
        return mark.watermark if mark is not None and mark.test_id == self.test_id else start

    def _settled(self, worker_id: str, clients: Any, now: float) -> bool:
        """Whether a worker has nothing more to send for this test."""
        mark = self._marks.get(worker_id)
        if mark is not None and mark.stopped and (
            mark.test_id == self.test_id
            or (self._stop_requested is not None and mark.received >= self._stop_requested)
        ):
            return True
        node = clients.get(worker_id)
        if node is not None:
            return bool(node.state == "missing")
        return now - self._heard.get(worker_id, 0.0) > WORKER_SILENCE_SEC

    def seconds_page(
        self, after: int, limit: int, windows: tuple[int, int] | None = None
    ) -> dict[str, Any]:
        """The body of GET /loadmgr/v1/seconds; `windows`: (origin, interval) to merge on."""
        now = time.time()
        complete, final = self.completeness(now)
        if self.role == "master":
            self.buffer.freeze_before(complete)
        seconds, more = self.buffer.page(after, complete, limit)
        master = self.role == "master"
        runner = self.runner
        body = {
            "plugin": "loadmgr",
            "version": PLUGIN_VERSION,
            "now": now,
            "complete": complete,
            "oldest": self.buffer.oldest(),
            "test_started": self.test_started,
            "state": str(runner.state),
            "user_count": int(runner.user_count),
            "worker_count": int(runner.worker_count) if master else None,
            "workers_without_plugin": self._connected_without_plugin() if master else None,
            "final": final,
            "shape": _shape_name(self.environment),
            "stop_cause": self.stop_cause,
            "generator": self.generator(),
            "seconds": seconds,
            "more": more,
        }
        if windows is not None:
            # Merged where the data is: the collector then folds one entry per request and
            # window, not one per second (its CPU per interval, issue 26).
            body["windows"] = {"origin": windows[0], "interval": windows[1]}
            body["seconds"] = window_page(seconds, *windows)
        return body

    def generator(self) -> dict[str, Any]:
        """The load generator as Locust's runners measure it: each worker's CPU and
        memory (its heartbeat's), the master's CPU; a standalone is its own one worker."""
        runner = self.runner
        master_cpu = getattr(runner, "current_cpu_usage", None)
        if self.role != "master":
            workers = [{
                "id": "standalone",
                "state": str(runner.state),
                "cpu_usage": master_cpu,
                "memory_usage": getattr(runner, "current_memory_usage", None),
            }]
        else:
            workers = [
                {
                    "id": str(worker_id),
                    "state": str(node.state),
                    "cpu_usage": getattr(node, "cpu_usage", None),
                    "memory_usage": getattr(node, "memory_usage", None),
                }
                for worker_id, node in list(runner.clients.items())[:MAX_WORKERS_TOLD]
            ]
        return {"master_cpu": master_cpu, "workers": workers}

    def prepare_steps(self, form: Any) -> str | None:
        """Before Locust handles a /swarm: set the steps' shape it asks for (or forget
        ours after a stepped test); the reason to refuse it, None when it may go on."""
        environment = self.environment
        current = getattr(environment, "shape_class", None)
        ours = isinstance(current, StepsTicks)
        raw = form.get(STEPS_FIELD)
        if raw is None:
            if ours and str(self.runner.state) not in ("spawning", "running"):
                environment.shape_class = None  # the next plain swarm is a plain swarm
            return None
        if current is not None and not ours:
            return (
                f"the locustfile has its own load shape {type(current).__name__}: "
                "loadmgr's steps cannot run over it"
            )
        try:
            users, step_sec = parse_steps_fields(str(raw), form.get(STEP_SEC_FIELD))
            spawn_rate = float(form.get("spawn_rate") or max(users))
        except ValueError as exc:
            return str(exc)
        if not spawn_rate > 0 or spawn_rate == float("inf"):
            return "spawn_rate must be above 0"
        shape = steps_shape(users, step_sec, spawn_rate)
        shape.runner = self.runner
        environment.shape_class = shape
        return None

    def _connected_without_plugin(self) -> int:
        clients = self.runner.clients
        return sum(1 for worker_id in self._without_plugin if worker_id in clients)

    # -- web -------------------------------------------------------------------------------

    def _add_routes(self, web_ui: Any) -> None:
        from flask import Response, request

        def answer(body: dict[str, Any], status: int = 200) -> Response:
            return Response(
                json.dumps(body, separators=(",", ":")),
                status=status,
                mimetype="application/json",
                headers={"Cache-Control": "no-store"},
            )

        def info() -> Response:
            return answer(
                {
                    "plugin": "loadmgr",
                    "version": PLUGIN_VERSION,
                    "locustfile_sha256": self.locustfile_sha256,
                }
            )

        def seconds() -> Response:
            try:
                after = _int_argument(request.args.get("after"), "after", -1, None, None)
                limit = _int_argument(request.args.get("limit"), "limit", DEFAULT_LIMIT,
                                      1, MAX_LIMIT)
                windows = _windows_argument(request.args.get("origin"),
                                            request.args.get("window"))
            except ValueError as exc:
                return answer({"error": str(exc)}, 400)
            return answer(self.seconds_page(after, limit, windows))

        app = web_ui.app
        # Locust's own routes live in its "locust" blueprint, prefixed by --web-base-path.
        blueprint = app.blueprints.get("locust")
        prefix = (getattr(blueprint, "url_prefix", None) or "").rstrip("/")
        guard: Callable[[Callable[[], Response]], Callable[[], Response]] = (
            web_ui.auth_required_if_enabled
        )
        app.add_url_rule(f"{prefix}{ROUTE_PREFIX}/info", "loadmgr_info", guard(info))
        app.add_url_rule(f"{prefix}{ROUTE_PREFIX}/seconds", "loadmgr_seconds", guard(seconds))
        # Steps (`runs start --steps`) ride on Locust's own /swarm: its view sees the shape
        # set just before it, and answers as it does for any shape.
        original = app.view_functions.get("locust.swarm")
        if original is not None:

            def swarm() -> Any:
                refusal = self.prepare_steps(request.form)
                if refusal is not None:
                    return answer({"success": False, "message": refusal})
                return original()

            app.view_functions["locust.swarm"] = guard(swarm)


def locustfile_sha256(option: Any, plugin_file: str) -> str | None:
    """The hash of what `-f` names, as loadmgr stores a test's (docs/design.md,
    "Locustfiles"): one file, the sha256 of its bytes; more (a folder, a.py,b.py), one
    sha256 over every file sorted by its path relative to the folder they share, each as
    path, NUL, length, NUL, bytes; hidden names, __pycache__, *.pyc and symlinks out of a
    folder left out. An -f entry that is this plugin (by path, or named loadmgr_plugin.py)
    is not the locustfile. None when it cannot tell: no -f, a URL or `-`, a path gone,
    over 200 files or 4 MB."""
    if not isinstance(option, str):
        return None
    entries = []
    for raw in option.split(","):
        entry = raw.strip()
        if not entry:
            continue
        if entry == "-" or "://" in entry:
            return None
        path = os.path.abspath(entry)
        if path == plugin_file or os.path.basename(path) == "loadmgr_plugin.py":
            continue
        if not os.path.exists(path):
            return None
        entries.append(os.path.realpath(path))
    try:
        if len(entries) == 1 and os.path.isfile(entries[0]):
            with open(entries[0], "rb") as file:
                data = file.read(HASH_MAX_BYTES + 1)
            return hashlib.sha256(data).hexdigest() if len(data) <= HASH_MAX_BYTES else None
        return _bundle_sha256(entries) if entries else None
    except (OSError, ValueError):
        return None


def _bundle_sha256(entries: list[str]) -> str | None:
    root = os.path.commonpath([e if os.path.isdir(e) else os.path.dirname(e) for e in entries])
    found: dict[str, str] = {}
    for entry in entries:
        if os.path.isdir(entry):
            for relative, path in _folder_files(entry, root):
                found[relative] = path
        else:
            found[os.path.relpath(entry, root).replace(os.sep, "/")] = entry
        if len(found) > HASH_MAX_FILES:
            return None
    digest = hashlib.sha256()
    left = HASH_MAX_BYTES
    for relative in sorted(found):
        with open(found[relative], "rb") as file:
            data = file.read(left + 1)
        left -= len(data)
        if left < 0:
            return None
        digest.update(relative.encode("utf-8") + b"\0" + str(len(data)).encode() + b"\0")
        digest.update(data)
    return digest.hexdigest()


def _folder_files(folder: str, root: str) -> Iterable[tuple[str, str]]:
    def skipped(name: str) -> bool:
        return name.startswith(".") or name == "__pycache__" or name.endswith(".pyc")

    for directory, subdirectories, filenames in os.walk(folder):  # never into symlinks
        subdirectories[:] = [d for d in subdirectories if not skipped(d)]
        for filename in filenames:
            path = os.path.join(directory, filename)
            real = os.path.realpath(path)
            inside = real == folder or real.startswith(folder.rstrip(os.sep) + os.sep)
            if skipped(filename) or not inside or not os.path.isfile(real):
                continue  # hidden, compiled, a symlink out of the folder, not a file
            yield os.path.relpath(path, root).replace(os.sep, "/"), path


def _cause_of_stop(environment: Any, runner: Any) -> str:
    """Who is stopping the test, told by the greenlet that calls the runner's stop():
    `shape` (the load shape's tick said None), `run_time` (the web UI's run-time timer),
    `request` (a web request: /stop, or a /swarm), else `locustfile` (its own code called
    runner.stop() or quit(), as Locust's stop_on_threshold example does)."""
    from gevent import getcurrent  # type: ignore[import-untyped]

    current = getcurrent()
    if getattr(runner, "shape_greenlet", None) is current:
        return "shape"
    web_ui = getattr(environment, "web_ui", None)
    timer = getattr(web_ui, "_stop_runners", None)
    # The timer greenlet runs web_ui._stop_runners (which forgets the greenlet first).
    if timer is not None and getattr(current, "_run", None) == timer:
        return "run_time"
    from flask import has_request_context  # Locust brings it

    return "request" if has_request_context() else "locustfile"


def _shape_name(environment: Any) -> str | None:
    """The class name of the load shape Locust runs (None without one)."""
    shape = getattr(environment, "shape_class", None)
    return None if shape is None else type(shape).__name__


def _int_argument(
    raw: str | None, name: str, default: int, low: int | None, high: int | None
) -> int:
    if raw is None:
        return default
    if not _INTEGER.fullmatch(raw):
        raise ValueError(f"{name} must be an integer, got {raw[:40]!r}")
    value = int(raw)
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _windows_argument(origin: str | None, window: str | None) -> tuple[int, int] | None:
    """(origin, interval) of `&origin=&window=`, None when neither is given."""
    if origin is None and window is None:
        return None
    if origin is None or window is None:
        raise ValueError("origin and window go together")
    return (_int_argument(origin, "origin", 0, 0, 2**40),
            _int_argument(window, "window", 1, 1, MAX_LIMIT))


def _counts_stats(handler: Any) -> bool:
    """Whether `handler` is Locust's own stats listener (made in `Runner.__init__`)."""
    return bool(
        getattr(handler, "__module__", None) == "locust.runners"
        and getattr(handler, "__qualname__", "").endswith("__init__.<locals>.on_request")
    )


def request_listener(buffer: SecondsBuffer) -> Callable[..., None]:
    """The `events.request` listener: a few dict operations per request."""
    hot = buffer.hot
    second = buffer.second
    entry_of = buffer.entry
    clock = time.time

    # Every argument Locust fires with is named: binding them is cheaper than gathering
    # them into a **kwargs dict on each request (a third of this listener's cost).
    def on_request(
        request_type: str,
        name: str,
        response_time: float | None,
        response_length: object = None,
        response: object = None,
        context: object = None,
        exception: object = None,
        start_time: object = None,
        url: object = None,
        **_kwargs: Any,
    ) -> None:
        t = int(clock())
        entries = hot.get(t)
        if entries is None:
            entries = second(t)
        key = (request_type, name)
        entry = entries.get(key)
        if entry is None:
            entry = entry_of(entries, key)
        entry[0] += 1
        if exception:  # Locust's own test for a failure, so the counts agree exactly
            entry[1] += 1
        if response_time is not None:
            # bucket(), inlined: this runs for every request.
            if response_time < 100:
                ms = round(response_time)
            elif response_time < 1000:
                ms = int(round(response_time, -1))
            elif response_time < 10000:
                ms = int(round(response_time, -2))
            else:
                ms = int(round(response_time, -3))
            histogram = entry[2]
            histogram[ms] = histogram.get(ms, 0) + 1

    return on_request


def install(events: Any) -> LoadmgrPlugin:
    """Register the plugin on a Locust `events` object, once however often it is loaded."""
    installed: LoadmgrPlugin | None = getattr(events, _MARKER, None)
    if installed is not None:
        if getattr(installed, "version", None) != PLUGIN_VERSION:
            logger.warning(
                "loadmgr plugin version %s already loaded; version %s ignored",
                getattr(installed, "version", "?"),
                PLUGIN_VERSION,
            )
        return installed
    plugin = LoadmgrPlugin(events)
    setattr(events, _MARKER, plugin)
    events.init.add_listener(plugin.on_init)
    return plugin


PLUGIN = install(locust.events)
