"""A Locust (or a proxy in front of it) that answers nonsense mid-run: the run ends
`Failed`, exit 6, `/stop` sent, lease free, never a traceback (issue 9, item 5)."""

from __future__ import annotations

import json
from typing import Any

import pytest

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


@pytest.mark.parametrize("shape", sorted(MALFORMED))
def test_nonsense_from_locust_fails_the_run_cleanly(cli, mongo_db, shape):
    with fake_locust() as fake:
        fake.lie = _body(MALFORMED[shape])
        fake.lie_after_swarm_sec = 1.5
        assert cli("clusters", "add", "fake", "--url", fake.url).exit_code == 0
        created = cli(
            "tests", "create", "--name", "demo", "--target-url", "http://127.0.0.1:9/",
            "--cluster", "fake", "--duration", "60s", "-o", "json",
        )
        assert created.exit_code == 0, created.stderr
        result = cli(
            "runs", "start", "demo", "--interval", "1", "--lost-timeout", "5s", "-o", "json"
        )
        assert result.exit_code == 6, result.stderr
        assert "Traceback" not in result.stderr
        assert "Failed" in result.stderr and "nonsense" in result.stderr, result.stderr
        run = mongo_db.load_test_runs.find_one({})
        assert run["status"] == "Failed"
        assert run["stopReason"] == "error"
        assert fake.stops >= 1, "the load was not stopped"
        lease = mongo_db.cluster_leases.find_one({"_id": "fake"})
        assert lease is None or lease.get("runId") is None
