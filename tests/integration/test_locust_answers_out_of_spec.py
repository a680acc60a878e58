"""A Locust (or a proxy in front of it) that answers nonsense mid-run: the run ends
`Failed`, exit 6, `/stop` sent, lease free, never a traceback (issue 9, item 5)."""

from __future__ import annotations

import json
from contextlib import ExitStack
from functools import partial
from typing import Any

import pytest

from tests.concurrent_runs import check_each, run_at_once
from tests.fake_locust import fake_locust, stats_payload

pytestmark = pytest.mark.integration


def _body(value: Any) -> Any:
    text = value if isinstance(value, str) else json.dumps(value)
    return lambda: (200, "application/json", text.encode())


def _payload_with(**changes: Any) -> dict[str, Any]:
    payload = stats_payload("running", 100)
    payload.update(changes)
    return payload


def _entry_with(**changes: Any) -> dict[str, Any]:
    payload = stats_payload("running", 100)
    payload["stats"][0].update(changes)
    return payload


MALFORMED = {
    "string counter": _entry_with(num_requests="many"),
    "NaN latency": '{"state": "running", "user_count": 2, "stats": [{"method": "GET", '
    '"name": "/", "num_requests": 5, "num_failures": 0, "avg_response_time": NaN}]}',
    "Infinity rps": '{"state": "running", "user_count": 2, "stats": [{"method": "GET", '
    '"name": "/", "num_requests": 5, "num_failures": 0, "total_rps": Infinity}]}',
    "huge counter": _entry_with(num_requests=10**30),
    "negative counter": _entry_with(num_requests=-5000),
    "dict state": _payload_with(state={"running": True}),
    "300000 entries": _payload_with(
        stats=[{"method": "GET", "name": f"/{i}", "num_requests": 1} for i in range(300_000)]
    ),
    # Counters that fall are a restarted master, not nonsense: test_locust_clocks_and_restarts.py
    "not an object": "[1, 2, 3]",
    "not JSON": "{oops",
}


def test_nonsense_from_locust_fails_the_run_cleanly(cli, mongo_db, tmp_path):
    """Every shape at once, each its own fake, cluster, test and `runs start` process: each
    waits the minimum lost-timeout after its lie, so they wait it together."""
    with ExitStack() as fakes:
        by_shape = {shape: fakes.enter_context(fake_locust()) for shape in MALFORMED}
        commands = {}
        for number, (shape, fake) in enumerate(by_shape.items()):
            fake.lie = _body(MALFORMED[shape])
            fake.lie_after_swarm_sec = 1.5
            cluster, test = f"fake{number}", f"demo{number}"
            assert cli("clusters", "add", cluster, "--url", fake.url).exit_code == 0
            created = cli(
                "tests", "create", "--name", test, "--target-url", "http://127.0.0.1:9/",
                "--cluster", cluster, "--duration", "60s", "-o", "json",
            )
            assert created.exit_code == 0, created.stderr
            commands[shape] = (
                "runs", "start", test, "--interval", "1", "--lost-timeout", "5s", "-o", "json",
            )
        ended = run_at_once(commands, tmp_path / "runs")
        stops = {shape: fake.stops for shape, fake in by_shape.items()}

    def check(number: int, shape: str) -> None:
        result = ended[shape]
        assert result.exit_code == 6, result.stderr
        assert "Traceback" not in result.stderr
        assert "Failed" in result.stderr and "nonsense" in result.stderr, result.stderr
        test = mongo_db.load_tests.find_one({"name": f"demo{number}"})
        run = mongo_db.load_test_runs.find_one({"loadTestId": test["id"]})
        assert run["status"] == "Failed"
        assert run["stopReason"] == "error"
        assert stops[shape] >= 1, "the load was not stopped"
        lease = mongo_db.cluster_leases.find_one({"_id": f"fake{number}"})
        assert lease is None or lease.get("runId") is None

    check_each({shape: partial(check, n, shape) for n, shape in enumerate(MALFORMED)})
