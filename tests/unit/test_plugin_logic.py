"""The Locust plugin's own logic, in-process, with a stub `locust` module.

Importing the real locust would monkey-patch this whole test process with gevent, so the
plugin file is loaded here with a stand-in `locust` that only has `events`; runners and the
web UI are small fakes. The real Locust, master and workers included, is in
tests/integration/test_plugin.py.
"""

from __future__ import annotations

import gc
import importlib.util
import random
import sys
import tracemalloc
import types
from argparse import Namespace
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from loadmgr.locust.plugin import plugin_path

T0 = 1_795_000_000  # a second on the test clocks below


class Hook:
    def __init__(self) -> None:
        self.handlers: list[Callable[..., Any]] = []

    def add_listener(self, handler: Callable[..., Any]) -> Callable[..., Any]:
        self.handlers.append(handler)
        return handler

    def fire(self, **kwargs: Any) -> None:
        for handler in list(self.handlers):
            handler(**kwargs)


class StubEvents:
    """The hooks the plugin uses, like locust.event.Events (no __getattr__ magic)."""

    def __init__(self) -> None:
        for name in ("init", "request", "test_start", "test_stopping", "test_stop",
                     "report_to_master", "worker_report"):
            setattr(self, name, Hook())


def load_plugin(monkeypatch: pytest.MonkeyPatch, events: StubEvents) -> Any:
    """A fresh copy of the plugin module, installed on `events`."""
    stub = types.ModuleType("locust")
    stub.events = events  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "locust", stub)
    spec = importlib.util.spec_from_file_location("loadmgr_plugin_under_test", plugin_path())
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def events() -> StubEvents:
    return StubEvents()


@pytest.fixture
def plugin(monkeypatch: pytest.MonkeyPatch, events: StubEvents) -> Any:
    return load_plugin(monkeypatch, events)


class Clock:
    """Stands for the plugin's `time` module: wall clock and monotonic, set by the test."""

    def __init__(self, now: float = T0 + 0.5) -> None:
        self.now = now
        self.mono = 1000.0

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.mono += seconds


@pytest.fixture
def clock(plugin: Any, monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(plugin, "time", fake)
    return fake


def totals(page: list[dict[str, Any]]) -> tuple[int, int, int]:
    """Requests, failures and histogram counts summed over a page of seconds."""
    entries = [entry for second in page for entry in second["entries"]]
    return (
        sum(e[2] for e in entries),
        sum(e[3] for e in entries),
        sum(count for e in entries for _, count in e[4]),
    )


# -- recording requests ------------------------------------------------------------------------


def test_the_listener_counts_requests_failures_and_rounded_times(
    plugin: Any, clock: Clock
) -> None:
    buffer = plugin.SecondsBuffer()
    record = plugin.request_listener(buffer)
    for response_time in (3.4, 3.6, 147, 3432, 58760):
        record(request_type="GET", name="/a", response_time=response_time, response_length=1,
               response=None, context={}, exception=None, start_time=0, url="/a")
    record(request_type="GET", name="/a", response_time=None, exception=None)
    record(request_type="POST", name="/a", response_time=12, exception=ValueError("x"))
    clock.advance(1)
    record(request_type="GET", name="/a", response_time=99.5, exception=RuntimeError())
    page, more = buffer.page(-1, T0 + 2, 10)
    assert not more
    assert page == [
        {"t": T0, "entries": [
            ["GET", "/a", 6, 0, [[3, 1], [4, 1], [150, 1], [3400, 1], [59000, 1]]],
            ["POST", "/a", 1, 1, [[12, 1]]],
        ]},
        {"t": T0 + 1, "entries": [["GET", "/a", 1, 1, [[100, 1]]]]},
    ]


def test_the_inlined_rounding_is_bucket(plugin: Any, clock: Clock) -> None:
    values = [0, 0.5, 1.5, 2.5, 49.5, 99.4, 99.5, 99.9, 100, 104.9, 105, 115, 125, 994.9, 995,
              999.9, 1000, 1050, 1150, 9949, 9950, 9999.9, 10000, 10500, 11500, 123456.7]
    random.seed(7)
    values += [random.uniform(0, 20000) for _ in range(2000)]
    for value in values:
        buffer = plugin.SecondsBuffer()
        plugin.request_listener(buffer)(request_type="G", name="n", response_time=value)
        [[_, _, _, _, histogram]] = buffer.page(-1, T0 + 1, 1)[0][0]["entries"]
        assert histogram == [[plugin.bucket(value), 1]], value


def test_loadmgrs_rounding_is_the_plugins(plugin: Any) -> None:
    """Stored min/max are rounded as the plugin's histograms are (issue 20, item 1)."""
    from loadmgr.models.stats.order import bucket_ms

    random.seed(8)
    values = [0, 0.5, 1.5, 2.5, 99.5, 100, 105, 115, 995, 1050, 9950, 10500, 123456.7]
    for value in values + [random.uniform(0, 20000) for _ in range(2000)]:
        assert bucket_ms(value) == plugin.bucket(value), value


def test_a_second_is_cut_at_the_cap_of_names(plugin: Any, clock: Clock) -> None:
    buffer = plugin.SecondsBuffer(max_keys=3)
    record = plugin.request_listener(buffer)
    for index in range(6):
        record(request_type="GET", name=f"/n{index}", response_time=5, exception=None)
    record(request_type="GET", name="/n0", response_time=5, exception=None)  # kept: known
    record(request_type="GET", name="/n5", response_time=7, exception=ValueError())
    [second], _ = buffer.page(-1, T0 + 1, 10)
    assert [(e[0], e[1], e[2], e[3]) for e in second["entries"]] == [
        ("", "(other)", 4, 1),
        ("GET", "/n0", 2, 0),
        ("GET", "/n1", 1, 0),
        ("GET", "/n2", 1, 0),
    ]
    assert totals([second]) == (8, 1, 8)


# -- the buffer ----------------------------------------------------------------------------------


def report(t: int, *items: tuple[str, int, int, list[int]]) -> list[Any]:
    return [[t, [["GET", name, requests, failures, flat] for name, requests, failures, flat in
                 items]]]


def test_reports_add_up_even_when_a_second_comes_in_parts(plugin: Any) -> None:
    buffer = plugin.SecondsBuffer()
    buffer.add_report(report(T0, ("/a", 2, 1, [5, 2])))
    buffer.add_report(report(T0, ("/a", 3, 0, [5, 1, 40, 2]), ("/b", 1, 1, [7, 1])))
    buffer.freeze_before(T0 + 1)
    buffer.add_report(report(T0, ("/a", 1, 0, [5, 1])))  # late: thawed, added, still exact
    page, _ = buffer.page(-1, T0 + 1, 10)
    assert page == [{"t": T0, "entries": [
        ["GET", "/a", 6, 1, [[5, 4], [40, 2]]],
        ["GET", "/b", 1, 1, [[7, 1]]],
    ]}]


def test_packed_seconds_read_as_they_were_written(plugin: Any) -> None:
    buffer = plugin.SecondsBuffer()
    for t in range(T0, T0 + 5):
        buffer.add_report(report(t, ("/a", t - T0 + 1, 0, [3, t - T0 + 1]), ("/big", 1, 0,
                                                                             [60000, 2**33])))
    hot, _ = buffer.page(-1, T0 + 5, 10)
    buffer.freeze_before(T0 + 5)
    assert not buffer.hot and len(buffer.cold) == 5
    assert buffer.page(-1, T0 + 5, 10)[0] == hot


def test_odd_response_times_are_kept_when_packed(plugin: Any, clock: Clock) -> None:
    """A custom client may report a negative or a huge time: packing must not lose a second."""
    buffer = plugin.SecondsBuffer(freeze_on_rollover=True)
    record = plugin.request_listener(buffer)
    for response_time in (-3, 2.0**70, 12):
        record(request_type="GET", name="/odd", response_time=response_time)
    clock.advance(1)
    record(request_type="GET", name="/odd", response_time=5)  # packs the second before
    assert T0 in buffer.cold
    [first, _], _ = buffer.page(-1, T0 + 2, 10)
    assert first["entries"] == [["GET", "/odd", 3, 0,
                                 [[-3, 1], [12, 1], [plugin.bucket(2.0**70), 1]]]]


def test_after_before_and_limit(plugin: Any) -> None:
    buffer = plugin.SecondsBuffer()
    for t in (T0, T0 + 1, T0 + 3, T0 + 4, T0 + 7):  # T0+2, +5, +6 had no requests
        buffer.add_report(report(t, ("/a", 1, 0, [1, 1])))
    buffer.freeze_before(T0 + 4)

    def seconds(after: int, before: int, limit: int) -> tuple[list[int], bool]:
        page, more = buffer.page(after, before, limit)
        return [second["t"] - T0 for second in page], more

    assert seconds(-1, T0 + 100, 3600) == ([0, 1, 3, 4, 7], False)
    assert seconds(-1, T0 + 7, 3600) == ([0, 1, 3, 4], False)  # before is exclusive
    assert seconds(T0, T0 + 100, 2) == ([1, 3], True)  # after is exclusive
    assert seconds(T0 + 3, T0 + 100, 2) == ([4, 7], False)
    assert seconds(T0 + 7, T0 + 100, 5) == ([], False)


def test_old_seconds_are_evicted_and_oldest_says_so(plugin: Any) -> None:
    buffer = plugin.SecondsBuffer(keep_seconds=10)
    assert buffer.oldest() is None
    for t in range(T0, T0 + 25):
        buffer.add_report(report(t, ("/a", 1, 0, [1, 1])))
        buffer.freeze_before(t)
    assert buffer.oldest() == T0 + 15
    assert len(buffer.hot) + len(buffer.cold) == 10
    buffer.add_report(report(T0 + 3, ("/a", 1, 0, [1, 1])))  # older than kept: dropped
    assert buffer.oldest() == T0 + 15
    buffer.clear()
    assert buffer.oldest() is None and buffer.newest is None


def test_memory_of_an_hour_of_twenty_names(plugin: Any) -> None:
    """3600 seconds x 20 names x 30 buckets, packed as a master holds them: under 40 MB."""
    random.seed(3)
    buckets = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 18, 20, 25, 30, 40, 50, 60, 70, 80,
               90, 100, 150, 200, 300, 500, 700, 1000]
    names = [("GET", f"/api/resource/{index}") for index in range(20)]
    counts = [random.randint(1, 300) for _ in range(997)]
    gc.collect()
    tracemalloc.start()
    try:
        buffer = plugin.SecondsBuffer()
        for offset in range(3600):
            entries = buffer.second(T0 + offset)
            for index, key in enumerate(names):
                entry = buffer.entry(entries, key)
                entry[0] += 3000
                entry[1] += 12
                entry[2].update(
                    (ms, counts[(offset + index + n) % 997]) for n, ms in enumerate(buckets)
                )
            buffer.freeze_before(T0 + offset)  # as `complete` moves on
        buffer.freeze_before(T0 + 3600)
        gc.collect()
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(buffer.cold) == 3600 and not buffer.hot
    assert sum(len(flat) for second in buffer.cold.values() for *_, flat in second) == (
        3600 * 20 * 30 * 2
    )
    assert held < 40_000_000, f"{held / 1e6:.1f} MB"


# -- roles: worker, master, standalone --------------------------------------------------------


class Node:
    def __init__(self, state: str = "running") -> None:
        self.state = state


class FakeRunner:
    def __init__(self, state: str = "ready", clients: dict[str, Node] | None = None) -> None:
        self.state = state
        self.clients = clients if clients is not None else {}
        self.user_count = 0

    @property
    def worker_count(self) -> int:
        return sum(1 for node in self.clients.values() if node.state != "missing")


def as_role(plugin: Any, role: str, runner: FakeRunner) -> Any:
    """The installed plugin object, wired as `events.init` would for this role."""
    state = plugin.PLUGIN
    state.role = role
    state.runner = runner
    state.environment = Namespace(parsed_options=Namespace(), runner=runner)
    state.buffer.freeze_on_rollover = role == "standalone"
    return state


def worker_report(test: Any, watermark: int, seconds: list[Any], stopped: bool = False) -> Any:
    return {"stats": [], "loadmgr": {"v": 1, "test": test, "watermark": watermark,
                                     "stopped": stopped, "seconds": seconds}}


@pytest.fixture
def master(plugin: Any, clock: Clock) -> Iterator[tuple[Any, FakeRunner]]:
    runner = FakeRunner("ready", {"w1": Node("ready"), "w2": Node("ready")})
    yield as_role(plugin, "master", runner), runner


def start_test(state: Any, runner: FakeRunner) -> str:
    state.on_test_start(environment=state.environment)
    runner.state = "running"
    for node in runner.clients.values():
        node.state = "running"
    test_id: str = state.environment.parsed_options.loadmgr_test_id
    return test_id


def test_worker_reports_what_it_recorded_once(plugin: Any, clock: Clock) -> None:
    runner = FakeRunner("running")
    state = as_role(plugin, "worker", runner)
    state.environment.parsed_options.loadmgr_test_id = "t-1"
    record = plugin.request_listener(state.buffer)
    record(request_type="GET", name="/a", response_time=4, exception=None)
    clock.advance(1.2)
    record(request_type="GET", name="/a", response_time=4, exception=ValueError())
    data: dict[str, Any] = {"stats": []}
    state.on_report_to_master(client_id="w1", data=data)
    assert data["loadmgr"] == {
        "v": 1, "test": "t-1", "watermark": T0 + 1, "stopped": False,
        "seconds": [[T0, [["GET", "/a", 1, 0, [4, 1]]]], [T0 + 1, [["GET", "/a", 1, 1, [4, 1]]]]],
    }
    runner.state = "stopped"
    again: dict[str, Any] = {}
    state.on_report_to_master(client_id="w1", data=again)
    assert again["loadmgr"]["seconds"] == [] and again["loadmgr"]["stopped"] is True


def test_a_worker_sends_its_last_numbers_as_its_users_stop(plugin: Any, clock: Clock) -> None:
    """Locust's worker says `client_stopped` without a last report; the plugin sends one
    first, so the master's `stopped` already holds every request."""
    runner = FakeRunner("stopped")
    sent: list[dict[str, Any]] = []

    def send_stats() -> None:
        data: dict[str, Any] = {}
        state.on_report_to_master(client_id="w1", data=data)
        sent.append(data)

    runner._send_stats = send_stats  # type: ignore[attr-defined]
    state = as_role(plugin, "worker", runner)
    record = plugin.request_listener(state.buffer)
    record(request_type="GET", name="/a", response_time=4, exception=None)
    state.on_worker_test_stop()
    assert len(sent) == 1 and sent[0]["loadmgr"]["stopped"] is True
    assert sent[0]["loadmgr"]["seconds"] == [[T0, [["GET", "/a", 1, 0, [4, 1]]]]]

    def broken() -> None:
        raise RuntimeError("a private API changed")

    runner._send_stats = broken  # type: ignore[attr-defined]
    state.on_worker_test_stop()  # never breaks a stop


def test_a_worker_drops_unsent_data_when_its_next_test_starts(plugin: Any, clock: Clock) -> None:
    state = as_role(plugin, "worker", FakeRunner("running"))
    plugin.request_listener(state.buffer)(request_type="GET", name="/a", response_time=4)
    state.on_test_start(environment=state.environment)
    data: dict[str, Any] = {}
    state.on_report_to_master(client_id="w1", data=data)
    assert data["loadmgr"]["seconds"] == []


def test_master_complete_follows_the_slowest_connected_worker(
    master: tuple[Any, FakeRunner], clock: Clock
) -> None:
    state, runner = master
    assert state.completeness(clock.now) == (T0, True)  # no test yet: everything up to now
    clock.advance(5)
    test = start_test(state, runner)
    start = T0 + 5
    assert state.test_started == clock.now
    assert state.complete(clock.now) == start  # nobody has reported yet
    state.on_worker_report(client_id="w1", data=worker_report(test, start + 3, [
        [start, [["GET", "/a", 2, 0, [5, 2]]]]]))
    assert state.complete(clock.now) == start  # w2 still silent
    state.on_worker_report(client_id="w2", data=worker_report(test, start + 2, [
        [start + 1, [["GET", "/a", 1, 0, [6, 1]]]]]))
    assert state.completeness(clock.now) == (start + 2, False)
    runner.clients["w2"].state = "missing"  # excluded while missing
    assert state.complete(clock.now) == start + 3
    runner.clients["w2"].state = "running"  # back: complete never goes backwards
    assert state.complete(clock.now) == start + 3
    body = state.seconds_page(-1, 600)
    assert [second["t"] for second in body["seconds"]] == [start, start + 1]
    assert body["worker_count"] == 2 and body["workers_without_plugin"] == 0


def test_after_a_stop_complete_waits_for_every_last_report(
    master: tuple[Any, FakeRunner], clock: Clock
) -> None:
    state, runner = master
    test = start_test(state, runner)
    for worker in ("w1", "w2"):
        state.on_worker_report(client_id=worker, data=worker_report(test, T0 + 3, []))
    clock.advance(4)
    state.on_test_stopping(environment=state.environment)
    runner.state = "stopped"
    del runner.clients["w1"]  # sent client_stopped: out of the master's list for a while
    runner.clients["w2"].state = "ready"  # already back
    assert state.complete(clock.now) == T0 + 3
    state.on_worker_report(client_id="w2", data=worker_report(test, T0 + 4, [
        [T0 + 3, [["GET", "/a", 1, 0, [5, 1]]]]], stopped=True))
    assert state.completeness(clock.now) == (T0 + 3, False)  # w1 still owes its last report
    state.on_worker_report(client_id="w1", data=worker_report(test, T0 + 4, [
        [T0 + 4, [["GET", "/a", 2, 1, [5, 2]]]]], stopped=True))
    # Everything: max(now, last second + 1), and the test's data is all in.
    assert state.completeness(clock.now) == (T0 + 5, True)
    assert totals(state.seconds_page(-1, 600)["seconds"]) == (3, 1, 3)


def test_a_worker_that_left_and_stays_silent_is_not_waited_for(
    master: tuple[Any, FakeRunner], clock: Clock
) -> None:
    state, runner = master
    test = start_test(state, runner)
    for worker in ("w1", "w2"):
        state.on_worker_report(client_id=worker, data=worker_report(test, T0 + 1, []))
    runner.state = "stopped"
    del runner.clients["w1"]
    runner.clients["w2"].state = "missing"
    clock.advance(5)
    assert state.complete(clock.now) == T0 + 1
    clock.advance(6)  # more than 10 s since w1 was last heard of
    assert state.complete(clock.now) == int(clock.now)


def test_a_late_report_of_the_previous_test_is_dropped(
    master: tuple[Any, FakeRunner], clock: Clock
) -> None:
    state, runner = master
    first = start_test(state, runner)
    state.on_worker_report(client_id="w1", data=worker_report(first, T0 + 1, [
        [T0, [["GET", "/a", 5, 0, [5, 5]]]]]))
    runner.state = "stopped"
    clock.advance(2)
    second = start_test(state, runner)
    assert second != first
    assert state.seconds_page(-1, 600)["seconds"] == []  # the new test starts from zero
    state.on_worker_report(client_id="w2", data=worker_report(first, T0 + 2, [
        [T0 + 1, [["GET", "/a", 7, 0, [5, 7]]]]]))
    state.on_worker_report(client_id="w1", data=worker_report(second, T0 + 3, [
        [T0 + 2, [["GET", "/a", 1, 0, [5, 1]]]]]))
    runner.state = "stopped"
    state.on_worker_report(client_id="w1", data=worker_report(second, T0 + 4, [], stopped=True))
    state.on_worker_report(client_id="w2", data=worker_report(second, T0 + 4, [], stopped=True))
    assert totals(state.seconds_page(-1, 600)["seconds"]) == (1, 0, 1)


def test_a_worker_without_the_plugin_holds_complete_and_is_counted(
    master: tuple[Any, FakeRunner], clock: Clock
) -> None:
    state, runner = master
    test = start_test(state, runner)
    state.on_worker_report(client_id="w1", data=worker_report(test, T0 + 3, []))
    state.on_worker_report(client_id="w2", data={"stats": [], "stats_total": {}})
    clock.advance(3)
    body = state.seconds_page(-1, 600)
    assert body["workers_without_plugin"] == 1 and body["complete"] == T0
    state.on_worker_report(client_id="w2", data=worker_report(test, T0 + 3, [], stopped=True))
    assert state.seconds_page(-1, 600)["workers_without_plugin"] == 0


def test_a_malformed_report_is_ignored(master: tuple[Any, FakeRunner], clock: Clock) -> None:
    state, runner = master
    test = start_test(state, runner)
    good = ["GET", "/a", 1, 0, [5, 1]]
    for bad_item in (["GET", "/b", "x", 0, []], ["GET", "/b", 1, 0, [5, None]], ["GET"]):
        bad = worker_report(test, T0 + 1, [[T0, [good]], [T0 + 1, [bad_item]]])
        state.on_worker_report(client_id="w1", data=bad)
    state.on_worker_report(client_id="w1", data={"loadmgr": {"v": 1}})
    state.on_worker_report(client_id="w1", data={"loadmgr": {"v": 1, "watermark": "soon"}})
    assert not state.buffer.hot and not state.buffer.cold  # nothing, not a part


def test_standalone_complete(plugin: Any, clock: Clock) -> None:
    runner = FakeRunner("ready")
    state = as_role(plugin, "standalone", runner)
    state.on_test_start(environment=state.environment)
    runner.state = "running"
    record = plugin.request_listener(state.buffer)
    record(request_type="GET", name="/a", response_time=4)
    assert state.completeness(clock.now) == (T0, False)
    clock.advance(1)
    record(request_type="GET", name="/a", response_time=4)
    assert state.complete(clock.now) == T0 + 1
    assert T0 in state.buffer.cold  # the previous second is packed once the next one starts
    runner.state = "stopped"
    body = state.seconds_page(-1, 600)
    assert body["complete"] == T0 + 2 and body["final"] is True
    assert body["worker_count"] is None
    assert [s["t"] for s in body["seconds"]] == [T0, T0 + 1]
    assert body["workers_without_plugin"] is None and body["oldest"] == T0


# -- loading twice, and the routes ---------------------------------------------------------------


def test_loading_twice_registers_once(
    plugin: Any, events: StubEvents, monkeypatch: pytest.MonkeyPatch
) -> None:
    again = load_plugin(monkeypatch, events)  # e.g. -f ...,loadmgr_plugin.py plus an import
    assert again.PLUGIN is plugin.PLUGIN
    assert len(events.init.handlers) == 1  # type: ignore[attr-defined]
    assert again.install(events) is plugin.PLUGIN


class FakeWebUI:
    """Enough of locust.web.WebUI: a Flask app with the "locust" blueprint, and its guard."""

    def __init__(self, base_path: str, login: bool = False) -> None:
        from flask import Blueprint, Flask

        self.app = Flask("fake-locust")
        blueprint = Blueprint("locust", "fake-locust", url_prefix=base_path or None)
        blueprint.add_url_rule("/", "index", lambda: "index")
        self.app.register_blueprint(blueprint)
        self.login = login

    def auth_required_if_enabled(self, view: Callable[[], Any]) -> Callable[[], Any]:
        def guarded() -> Any:
            return ("login first", 302, {"Location": "/login"}) if self.login else view()

        return guarded


@pytest.mark.parametrize("base_path", ["", "/locust"])
def test_routes_under_the_base_path(plugin: Any, clock: Clock, base_path: str) -> None:
    runner = FakeRunner("ready")
    state = as_role(plugin, "standalone", runner)
    web = FakeWebUI(base_path)
    state._add_routes(web)
    client = web.app.test_client()
    info = client.get(f"{base_path}/loadmgr/v1/info")
    assert info.status_code == 200 and info.mimetype == "application/json"
    # Set from -f at init (on_init, not called here): null until then.
    assert info.get_json() == {"plugin": "loadmgr", "version": 1, "locustfile_sha256": None}
    answer = client.get(f"{base_path}/loadmgr/v1/seconds?after=5&limit=1")
    assert answer.status_code == 200 and answer.headers["Cache-Control"] == "no-store"
    assert set(answer.get_json()) == {
        "plugin", "version", "now", "complete", "final", "oldest", "test_started", "state",
        "user_count", "worker_count", "workers_without_plugin", "seconds", "more",
        "shape", "stop_cause", "generator",
    }
    if base_path:
        assert client.get("/loadmgr/v1/info").status_code == 404


@pytest.mark.parametrize(
    ("query", "error"),
    [
        ("after=x", "after must be an integer, got 'x'"),
        ("after=", "after must be an integer, got ''"),
        ("after=1.5", "after must be an integer, got '1.5'"),
        ("after=1_000", "after must be an integer, got '1_000'"),
        ("after=%201", "after must be an integer, got ' 1'"),
        ("limit=0", "limit must be between 1 and 3600, got 0"),
        ("limit=3601", "limit must be between 1 and 3600, got 3601"),
        ("limit=-3", "limit must be between 1 and 3600, got -3"),
        ("limit=ten", "limit must be an integer, got 'ten'"),
        ("after=99999999999999999999", "after must be an integer, got '99999999999999999999'"),
    ],
)
def test_bad_queries_are_400_json(plugin: Any, clock: Clock, query: str, error: str) -> None:
    state = as_role(plugin, "standalone", FakeRunner("ready"))
    web = FakeWebUI("")
    state._add_routes(web)
    answer = web.app.test_client().get(f"/loadmgr/v1/seconds?{query}")
    assert answer.status_code == 400 and answer.mimetype == "application/json"
    assert answer.get_json() == {"error": error}


def test_routes_are_behind_the_web_login(plugin: Any, clock: Clock) -> None:
    state = as_role(plugin, "standalone", FakeRunner("ready"))
    web = FakeWebUI("", login=True)
    state._add_routes(web)
    client = web.app.test_client()
    for route in ("info", "seconds"):
        assert client.get(f"/loadmgr/v1/{route}").status_code == 302
