"""Capacity across loads (issue 27) on the real `local` cluster: a stepped run against a
target with a bounded pool (N workers, M ms each: a capacity of N/M requests a second,
and a latency that climbs past it). Runs are kept short: steps of a few seconds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_runs import create_test

pytestmark = pytest.mark.integration

POOL_WORKERS = 4
POOL_MS = 50.0
CAPACITY = POOL_WORKERS / (POOL_MS / 1000)  # 80 requests a second

POOL_USERS = """
from locust import HttpUser, constant, task


class Pool(HttpUser):
    wait_time = constant(0)

    @task
    def pool(self):
        self.client.get("/pool")
"""


@pytest.fixture
def pool_test(cli: Any, target_server: Any, tmp_path: Path) -> dict[str, Any]:
    target_server.set_pool(POOL_WORKERS, POOL_MS)
    path = tmp_path / "pool.py"
    path.write_text(POOL_USERS, encoding="utf-8")
    return create_test(
        cli, target_server.url, "pool", "--locustfile", str(path), "--spawn-rate", "50"
    )


def stepped_run(cli: Any, *extra: str) -> dict[str, Any]:
    result = cli(
        "runs",
        "start",
        "pool",
        "--steps",
        "1,2,4,8,16",
        "--step-duration",
        "4s",
        "--step-settle",
        "1s",
        "--interval",
        "1",
        "--workers",
        "0",
        "-o",
        "json",
        *extra,
    )
    assert result.exit_code == 0, result.stderr
    return result.json()  # type: ignore[no-any-return]


def test_a_stepped_run_records_each_step_as_its_own_window(cli, mongo_db, pool_test):
    run = stepped_run(cli)
    assert run["stopReason"] == "shape", run
    assert run["steps"] == {"users": [1, 2, 4, 8, 16], "stepSec": 4, "settleSec": 1}
    windows = run["stepWindows"]
    assert [w["users"] for w in windows] == [1, 2, 4, 8, 16]
    for window in windows:
        assert window["peakUsers"] == window["users"], windows  # the settle time left out
        assert window["fromSec"] >= (window["step"] - 1) * 4 + 1
        assert window["toSec"] <= window["step"] * 4
        assert window["exact"] and window["requests"] > 0
    rps = [w["rps"] for w in windows]
    assert rps[0] < rps[1] < rps[2], rps  # below the pool's size, throughput grows
    assert abs(rps[-1] - CAPACITY) <= 0.15 * CAPACITY, rps  # and then it is the pool's
    p95 = [w["p95ResponseMs"] for w in windows]
    assert p95[-1] > 2 * p95[0], p95  # past the pool's size, latency climbs
