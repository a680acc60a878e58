"""Capacity across loads (issue 27) on real Locust (the `local` cluster for the stepped runs,
one standalone for the five runs at one load each): runs against a target with a bounded
pool (N workers, M ms each: a capacity of N/M requests a second, and a latency that climbs
past it). Runs are kept short: steps of a few seconds."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_runs import create_test

pytestmark = pytest.mark.integration

POOL_WORKERS = 4
POOL_MS = 50.0
CAPACITY = POOL_WORKERS / (POOL_MS / 1000)  # 80 requests a second
# The five runs at once: five pools in this process, whose threads share its interpreter
# lock (and the machine's two CPUs with five Locusts): at 50 ms a request, the lock's
# hand-offs lengthened the service time enough to read 60 requests a second for 80. Four
# times the service time makes those delays a quarter as large beside it, at a quarter of
# the requests; and each run reads 3 s at its load (a starved second weighs a third).
AT_ONCE_POOL_MS = 200.0
AT_ONCE_CAPACITY = POOL_WORKERS / (AT_ONCE_POOL_MS / 1000)  # 20 requests a second
AT_ONCE_SEC = 4  # a 1-s warm-up, then three whole 1-s intervals at its load
STEP_SEC = 3  # a step's 1-s settle, then two whole 1-s intervals at its load

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
        f"{STEP_SEC}s",
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


def test_a_stepped_run_records_each_step_and_its_fitted_peak_is_the_pool_s_capacity(
    cli, mongo_db, pool_test, tmp_path
):
    """One stepped run read twice (a run is 15 s): its step windows as recorded, and the
    capacity fitted to them."""
    run = stepped_run(cli)
    assert run["stopReason"] == "shape", run
    assert run["steps"] == {"users": [1, 2, 4, 8, 16], "stepSec": STEP_SEC, "settleSec": 1}
    windows = run["stepWindows"]
    assert [w["users"] for w in windows] == [1, 2, 4, 8, 16]
    for window in windows:
        assert window["peakUsers"] == window["users"], windows  # the settle time left out
        assert window["fromSec"] >= (window["step"] - 1) * STEP_SEC + 1
        assert window["toSec"] <= window["step"] * STEP_SEC
        assert window["exact"] and window["requests"] > 0
    rps = [w["rps"] for w in windows]
    assert rps[0] < rps[1] < rps[2], rps  # below the pool's size, throughput grows
    assert abs(rps[-1] - CAPACITY) <= 0.15 * CAPACITY, rps  # and then it is the pool's
    p95 = [w["p95ResponseMs"] for w in windows]
    assert p95[-1] > 2 * p95[0], p95  # past the pool's size, latency climbs

    result = capacity(cli, "--run", run["id"][:8], "-o", "json", "--html", str(tmp_path / "c.html"))
    assert result.exit_code == 0, result.stderr
    found = result.json()
    assert found["source"] == "steps" and found["runId"] == run["id"]
    assert abs(found["peakRps"] - CAPACITY) <= 0.15 * CAPACITY, found
    assert found["kneeUsers"] == POOL_WORKERS, found["points"]  # where the pool fills
    assert found["r2"] > 0.9
    assert [p["users"] for p in found["points"]] == [1, 2, 4, 8, 16]
    page = (tmp_path / "c.html").read_text(encoding="utf-8")
    assert "Capacity of pool" in page and "<script" not in page and 'class="point"' in page
    table = capacity(cli)
    assert table.exit_code == 0, table.stderr
    assert "peak" in table.stdout and f"knee (p95 starts to climb past) {POOL_WORKERS} users" in (
        table.stdout
    )


def capacity(cli: Any, *args: str) -> Any:
    return cli("tests", "capacity", "pool", *args)


def test_runs_at_five_loads_give_the_same_capacity(
    cli, mongo_db, pool_test, locust_standalone, tmp_path
):
    """The five runs load at once, each from a standalone Locust of its own against a pool
    of its own (a second target each, the same size: one shared pool would be split)."""
    from tests.concurrent_runs import run_at_once
    from tests.locust_servers import running_target

    loads = (1, 2, 4, 8, 16)
    with ExitStack() as stack:
        for users in loads:
            pool = stack.enter_context(running_target())
            pool.set_pool(POOL_WORKERS, AT_ONCE_POOL_MS)
            locustfile = tmp_path / f"pool-{users}.py"
            pooled = POOL_USERS.replace('"/pool"', f'"{pool.url}/pool", name="/pool"')
            locustfile.write_text(pooled, encoding="utf-8")
            locust = locust_standalone(locustfile)
            added = cli("clusters", "add", f"solo-{users}", "--url", locust.base_url, "-q")
            assert added.exit_code == 0, added.stderr
        ended = run_at_once(
            {
                str(users): [
                    "runs", "start", "pool", "--users", str(users), "--duration", f"{AT_ONCE_SEC}s",
                    "--warmup", "1s", "--interval", "1", "--cluster", f"solo-{users}", "-q",
                ]
                for users in loads
            },  # fmt: skip
            tmp_path / "runs",
        )
    for users, result in ended.items():
        assert result.exit_code == 0, (users, result.stderr)
    found = capacity(cli, "-o", "json").json()
    assert found["source"] == "runs" and len(found["points"]) == 5
    assert abs(found["peakRps"] - AT_ONCE_CAPACITY) <= 0.15 * AT_ONCE_CAPACITY, found


def test_a_run_without_steps_or_too_few_loads_cannot_be_fitted(cli, mongo_db, pool_test):
    result = cli("runs", "start", "pool", "--users", "2", "--duration", "2s", "--workers", "0",
                 "-o", "json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    run_id = result.json()["id"]
    refused = capacity(cli, "--run", run_id)
    assert refused.exit_code == 2 and "has no steps to fit" in refused.stderr
    refused = capacity(cli)
    assert refused.exit_code == 2
    assert "error: not enough distinct loads to fit: 1" in refused.stderr
    assert capacity(cli, "--run", "ffffffffffff").exit_code == 4
    assert capacity(cli, "--fail-on-capacity-drop", "150%").exit_code == 2


HALVED_FROM = 8  # 0-based: the pool is halved from the 9th stepped run on
STEP_USERS = [1, 2, 4, 8, 16, 32, 64]


def _stepped_history(mongo_db: Any) -> list[Any]:
    """14 nightly stepped runs (synthetic, stored as the collector stores them) whose
    capacity halves from run HALVED_FROM on: λ halves at every load, ±3 % noise."""
    import random
    from datetime import timedelta

    from loadmgr.service.capacity.usl import usl
    from tests.metrics_data import START, final_stats, make_run, make_test, store_all

    test = make_test("nightly-capacity")
    rng = random.Random(27)
    runs = []
    for night in range(14):
        lam = 10.0 if night < HALVED_FROM else 5.0
        windows = [
            {"step": i + 1, "users": n, "rps": usl(n, lam, 0.05, 0.002) * rng.uniform(0.97, 1.03),
             "p95ResponseMs": 50.0 * max(1.0, n / 8)}
            for i, n in enumerate(STEP_USERS)
        ]  # fmt: skip
        created = START + timedelta(days=night)
        runs.append(
            make_run(test, final=final_stats(), createdAt=created, stepWindows=windows,
                     steps={"users": STEP_USERS, "stepSec": 10, "settleSec": 1})
        )  # fmt: skip
    store_all(mongo_db, test, runs)
    return runs


def test_a_capacity_step_is_found_at_its_run_and_fails_the_gate(cli, mongo_db):
    runs = _stepped_history(mongo_db)
    result = cli("tests", "capacity", "nightly-capacity", "-o", "json")
    assert result.exit_code == 0, result.stderr
    found = result.json()
    assert [c["runId"] for c in found["trend"]] == [r.id for r in runs]
    starts = [i for i, c in enumerate(found["trend"]) if c["startsRegime"]]
    assert len(starts) == 1 and abs(starts[0] - HALVED_FROM) <= 1, found["trend"]
    assert found["runId"] == runs[-1].id  # the newest stepped run's steps are fitted
    assert 0.4 < found["drop"] < 0.6
    gate = cli("tests", "capacity", "nightly-capacity", "--fail-on-capacity-drop", "20%")
    assert gate.exit_code == 1 and "capacity dropped" in gate.stderr
