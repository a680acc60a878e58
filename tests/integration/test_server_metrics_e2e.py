"""Issue 23, end to end: real Locust (the built-in local cluster), the demo target with
its own counters at /metrics, and a real Prometheus scraping them twice a second (so a
2-s window holds four scrapes, as a 4-s one did at one a second)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult, ok
from tests.locust_servers import running_target
from tests.polling import wait_for
from tests.prometheus_server import Prometheus, running_prometheus

pytestmark = pytest.mark.integration
Cli = Callable[..., CliResult]

STEADY = """
from locust import HttpUser, constant_throughput, task


class Steady(HttpUser):
    wait_time = constant_throughput(10)

    @task
    def index(self):
        self.client.get("/")
"""
REQUESTS = 'served=sum(increase(demo_requests_total{path="/"}[$interval]))'
IN_FLIGHT = "busy=max_over_time(demo_in_flight_requests[$interval])"


@pytest.fixture(scope="module")
def shared_target_and_prometheus(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Any, Prometheus]]:
    """One target and one Prometheus for the module (its start and first scrape take some
    6 s): each test reads only its own run's windows, and a test's tests run one at a time."""
    with running_target() as target:
        host = target.url.split("//", 1)[1]
        folder = tmp_path_factory.mktemp("prometheus")
        with running_prometheus(folder, [host], scrape_interval="500ms") as server:
            assert wait_for(lambda: server.scraped("process_cpu_seconds_total"), timeout=30)
            yield target, server


@pytest.fixture
def target_and_prometheus(
    shared_target_and_prometheus: tuple[Any, Prometheus],
) -> tuple[Any, Prometheus]:
    """The shared pair as a test finds it fresh: the target without delay, Prometheus up
    (a test that stopped it and failed before it started it again leaves it down)."""
    target, server = shared_target_and_prometheus
    target.delay = 0.0
    if server.process is None or server.process.poll() is not None:
        server.start()
    return target, server


def _test(
    cli: Cli,
    tmp_path: Path,
    target_url: str,
    prometheus_url: str,
    *extra: str,
    metrics: tuple[str, ...] = (REQUESTS, IN_FLIGHT),
) -> None:
    locustfile = tmp_path / "steady.py"
    locustfile.write_text(STEADY, encoding="utf-8")
    ok(cli("sources", "add", "prom", "--prometheus", prometheus_url, "-q"))
    ok(cli("tests", "create", "--name", "srv", "--target-url", target_url, "--locustfile",
           str(locustfile), "--users", "5", "--spawn-rate", "50", "--duration", "24s",
           *(f"--server-metric={m}" for m in metrics), "--source", "prom", *extra,
           "-q"))  # fmt: skip


def _intervals(mongo_db: Any) -> list[dict[str, Any]]:
    return list(mongo_db.metrics_timeseries.find({}, {"_id": False}).sort("seq", 1))


def test_the_targets_own_count_agrees_with_locusts_in_every_steady_interval(
    cli: Cli, mongo_uri: str, mongo_db: Any, tmp_path: Path, target_and_prometheus: Any
) -> None:
    target, prometheus = target_and_prometheus
    _test(cli, tmp_path, target.url, prometheus.url)
    # 12 s: six 2-s windows (and maybe a short last one); one may miss, three are steady.
    run: Any = ok(
        cli("runs", "start", "srv", "--interval", "2", "--duration", "12s", "-o", "json")
    ).json()
    stored = mongo_db.load_test_runs.find_one({"id": run["id"]})
    assert stored["serverStats"]["served"]["intervals"] >= 5, stored["serverStats"]
    intervals = _intervals(mongo_db)
    steady = [i for i in intervals[1:-1] if i["intervalSec"] == 2]
    assert len(steady) >= 3
    for interval in steady:
        served = interval["server"]["served"]
        client = interval["intervalRequests"]
        assert abs(served - client) <= 0.05 * client, (interval["seq"], served, client)
        assert "busy" in interval["server"]
    assert 0 not in [s for s in stored["serverStats"]["served"].values() if s is None]


def test_a_server_threshold_fails_and_aborts_the_run(
    cli: Cli, mongo_uri: str, mongo_db: Any, tmp_path: Path, target_and_prometheus: Any
) -> None:
    target, prometheus = target_and_prometheus
    _test(cli, tmp_path, target.url, prometheus.url, "--threshold", "server.served<5")
    result = cli("runs", "start", "srv", "--interval", "2", "--abort-on-fail", "-o", "json")
    assert result.exit_code == 1, result.stderr
    run: Any = result.json()
    assert run["stopReason"] == "threshold" and run["verdict"] == "failed"
    assert run["durationSeconds"] == 24
    assert any("server.served" in r["message"] for r in run["verdictReasons"])


def test_prometheus_down_mid_run_and_back_leaves_no_hole_after_the_end(
    cli: Cli, mongo_uri: str, mongo_db: Any, tmp_path: Path, target_and_prometheus: Any
) -> None:
    """Prometheus keeps what it scraped before it was stopped (its WAL): a query whose
    range reaches back past the outage has a value for every window once it is back,
    and the end's range query reads those the live queries missed."""
    target, prometheus = target_and_prometheus
    rate = 'served=sum(rate(demo_requests_total{path="/"}[30s]))'
    _test(cli, tmp_path, target.url, prometheus.url, metrics=(rate,))

    def outage() -> None:
        wait_for(lambda: mongo_db.metrics_timeseries.count_documents({}) >= 2, timeout=60)
        prometheus.stop()
        wait_for(
            lambda: (
                mongo_db.metrics_timeseries.count_documents(
                    {"serverMissing.served": {"$exists": True}}
                )
                >= 1
            ),
            timeout=30,
        )
        prometheus.start()

    helper = threading.Thread(target=outage, daemon=True)
    helper.start()
    # 18 s: Prometheus is gone from about the third window and back well before the end.
    result = cli("runs", "start", "srv", "--interval", "2", "--duration", "18s")
    helper.join(timeout=90)
    assert result.exit_code == 0, result.stderr
    assert "server metric 'served'" in result.stderr  # the outage was told
    intervals = _intervals(mongo_db)
    full = [i for i in intervals if i["intervalSec"] == 2]
    # Until Prometheus has scraped the target twice, rate() has no series: true, not a
    # hole (on a loaded machine the first scrapes come late). From the first value on,
    # every window has one, the outage's included.
    while full and "served" not in full[0].get("server", {}):
        assert "no series" in full[0]["serverMissing"]["served"], full[0]
        full.pop(0)
    assert len(full) >= 5, intervals
    assert all("served" in i.get("server", {}) for i in full), [
        (i["seq"], i.get("serverMissing")) for i in full if "served" not in i.get("server", {})
    ]


def test_a_latency_step_shows_in_the_same_interval_client_and_server_side(
    cli: Cli, mongo_uri: str, mongo_db: Any, tmp_path: Path, target_and_prometheus: Any
) -> None:
    """The target answers 300 ms slower from the middle of one window on: that window's
    client p95 and the server's in-flight requests (Little's law: 5 users now wait there)
    both jump, in the same interval, on the run's own windows."""
    target, prometheus = target_and_prometheus
    _test(cli, tmp_path, target.url, prometheus.url)
    interval = 2.0
    stepped: dict[str, datetime] = {}

    def step() -> None:
        # The middle of the third window: the windows are the run's own (its start + k·2 s).
        def second_stored() -> Any:
            return mongo_db.metrics_timeseries.find_one({"seq": 2})

        if not wait_for(second_stored, timeout=60):
            return
        middle = second_stored()["windowEnd"] + timedelta(seconds=interval / 2)
        wait_for(lambda: datetime.now(timezone.utc) >= middle, timeout=30, interval=0.05)
        target.delay = 0.3
        stepped["at"] = datetime.now(timezone.utc)

    helper = threading.Thread(target=step, daemon=True)
    helper.start()
    try:  # 10 s: the step in the third window, and two windows after it
        ok(cli("runs", "start", "srv", "--interval", str(int(interval)), "--duration", "10s",
               "-o", "json"))
    finally:
        helper.join(timeout=60)
        target.delay = 0.0
    assert "at" in stepped, "the step was never made"
    intervals = _intervals(mongo_db)
    [hit] = [i for i in intervals if i["windowStart"] <= stepped["at"] < i["windowEnd"]]
    before = next(i for i in intervals if i["seq"] == hit["seq"] - 1)
    # Client side: half the window's requests now take 300 ms.
    assert before["p95ResponseMs"] < 100 <= hit["p95ResponseMs"], (before, hit)
    # Server side, the same window: requests wait in the target (at most 5 users).
    assert before["server"]["busy"] < hit["server"]["busy"], (before["server"], hit["server"])
    assert hit["server"]["busy"] >= 3, hit["server"]
