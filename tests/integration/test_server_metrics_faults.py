"""Issue 23, faults of a whole run: Prometheus away from the start, and Prometheus so slow
it never answers in time. Real Locust (the built-in local cluster) against the demo
target; the run goes on and loses nothing of its own, each missing value is marked with
its reason (never a 0), a threshold on a metric never read makes the verdict `error`,
and a slow Prometheus holds neither the interval writes nor the run's end past their
bounds."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from bench.cases_server import serving
from loadmgr.service.server_metrics.at_end import END_WAIT_MAX_SEC
from loadmgr.store.embedded import free_port
from tests.conftest import CliResult, ok
from tests.integration.test_server_metrics_e2e import STEADY
from tests.locust_servers import running_target

pytestmark = pytest.mark.integration
Cli = Callable[..., CliResult]

# 1-s intervals: as many intervals (and live reads given up) in 6 s as 2-s ones in 12.
DURATION = 6
INTERVAL = 1
METRICS = tuple(f"m{i}=sum(rate(demo_requests_total[30s]))" for i in range(3))


@pytest.fixture
def target() -> Iterator[Any]:
    with running_target() as server:
        yield server


class _Slow(BaseHTTPRequestHandler):
    """Prometheus' API, answering nothing until the test ends (`released`)."""

    released = threading.Event()
    asked: list[float] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.asked.append(time.monotonic())
        self.released.wait(120)
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"status":"success","data":{"resultType":"vector","result":[]}}')
        except OSError:
            pass  # the client gave up long ago

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def slow_prometheus() -> Iterator[str]:
    _Slow.released.clear()
    _Slow.asked.clear()
    try:
        with serving(_Slow) as url:
            yield url
            _Slow.released.set()  # its handlers end before the server is shut down
    finally:
        _Slow.released.set()


def _test(cli: Cli, tmp_path: Path, target_url: str, prometheus_url: str, *extra: str) -> None:
    locustfile = tmp_path / "steady.py"
    locustfile.write_text(STEADY, encoding="utf-8")
    ok(cli("sources", "add", "prom", "--prometheus", prometheus_url, "-q"))
    ok(cli("tests", "create", "--name", "srv", "--target-url", target_url, "--locustfile",
           str(locustfile), "--users", "5", "--spawn-rate", "50", "--duration", f"{DURATION}s",
           *(f"--server-metric={m}" for m in METRICS), "--source", "prom", *extra,
           "-q"))  # fmt: skip


def _own_numbers_whole(mongo_db: Any, run: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's own numbers are all there: every interval in order, and the intervals'
    requests add up to the final count."""
    intervals = list(mongo_db.metrics_timeseries.find({}, {"_id": False}).sort("seq", 1))
    assert [i["seq"] for i in intervals] == list(range(1, len(intervals) + 1))
    assert len(intervals) >= DURATION // INTERVAL - 1
    total = run["finalStats"]["totals"]["requests"]
    assert total > 0 and sum(i["intervalRequests"] for i in intervals) == total
    return intervals


def test_prometheus_down_from_the_start_an_error_verdict_and_nothing_lost(
    cli: Cli, mongo_uri: str, mongo_db: Any, tmp_path: Path, target: Any
) -> None:
    gone = f"http://127.0.0.1:{free_port()}"
    _test(cli, tmp_path, target.url, gone, "--threshold", "server.m0<100")
    result = cli("runs", "start", "srv", "--interval", str(INTERVAL), "-o", "json")
    # The gate never passes on missing data: error (exit 6), not passed, not a crash.
    assert result.exit_code == 6, result.stderr
    assert "Traceback" not in result.stderr
    run: Any = result.json()
    assert run["status"] == "Finished" and run["stopReason"] == "duration"
    assert run["verdict"] == "error"
    reason = run["verdictReasons"][0]["message"]
    assert reason.startswith("server.m0 could not be read: ") and "connection refused" in reason
    for interval in _own_numbers_whole(mongo_db, run):
        assert "server" not in interval or not interval["server"]  # never a 0
        assert set(interval["serverMissing"]) == {"m0", "m1", "m2"}
        assert all("connection refused" in why for why in interval["serverMissing"].values())
    for name in ("m0", "m1", "m2"):
        stats = run["serverStats"][name]
        assert "avg" not in stats and stats["intervals"] == 0 and "refused" in stats["reason"]
    # Each distinct problem told once, not once an interval.
    told = [line for line in result.stderr.splitlines() if "server metric 'm0'" in line]
    assert 1 <= len(told) <= 2, told  # live, and the end's range query


def test_a_slow_prometheus_holds_neither_the_intervals_nor_the_end(
    cli: Cli, mongo_uri: str, mongo_db: Any, tmp_path: Path, target: Any, slow_prometheus: str
) -> None:
    """Every answer takes longer than anyone waits: the live reader gives up within an
    interval (its queue marks windows it cannot reach), the intervals are written on time,
    and the end waits for Prometheus at most END_WAIT_MAX_SEC in all, whatever the number of
    metrics."""
    _test(cli, tmp_path, target.url, slow_prometheus)
    started = time.monotonic()
    result = cli("runs", "start", "srv", "--interval", str(INTERVAL), "-o", "json")
    returned = datetime.now(timezone.utc)
    assert result.exit_code == 0, result.stderr
    run: Any = result.json()
    assert run["status"] == "Finished" and run["verdict"] is None  # no thresholds
    intervals = _own_numbers_whole(mongo_db, run)
    # The interval writes never waited for Prometheus: they came at their cadence.
    ends = [i["timestamp"] for i in intervals if i["intervalSec"] == INTERVAL]
    gaps = [(b - a).total_seconds() for a, b in zip(ends, ends[1:], strict=False)]
    assert gaps and max(gaps) <= INTERVAL + 1.0, gaps
    for interval in intervals:
        assert set(interval.get("serverMissing") or {}) == {"m0", "m1", "m2"}, interval["seq"]
        assert not interval.get("server")
    # The end: one bounded wait for Prometheus for all three metrics, not one each.
    finished = datetime.fromisoformat(run["finishedAt"].replace("Z", "+00:00"))
    after_end = (returned - finished).total_seconds()
    assert after_end <= END_WAIT_MAX_SEC + 4.0, after_end
    assert time.monotonic() - started < DURATION + 30
    assert _Slow.asked  # it was asked (and never answered in time)
