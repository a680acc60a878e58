"""A fake Locust master serving hypothesis-generated answers (issue 11, "Locust fuzzing"):
whatever `/stats/requests` and the plugin answer, and however HTTP misbehaves, the
collector ends the run recorded, the load stopped, the lease free, never exit 70."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from loadmgr.errors import LoadmgrError
from loadmgr.models import LocustCluster, RunStatus, Scope
from loadmgr.service.collection import Collector, CollectorSettings
from loadmgr.service.runs.lease import lease_id, take_lease
from loadmgr.service.runs.options import RunOptions
from loadmgr.service.runs.plan import plan_run, record_pending
from loadmgr.store import Store
from tests.fake_locust import stats_payload

pytestmark = pytest.mark.integration

URL = "http://locust.fuzz:8089"
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**30), 10**30)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
STATS_KEYS = ["state", "user_count", "stats", "errors", "worker_count", "workers",
              "current_response_time_percentiles"]
ENTRY_KEYS = ["method", "name", "num_requests", "num_failures", "avg_response_time",
              "min_response_time", "max_response_time", "median_response_time",
              "response_time_percentile_0.95", "total_rps"]
PLUGIN_KEYS = ["plugin", "version", "now", "complete", "state", "user_count", "seconds",
               "more", "final", "test_started", "oldest"]


@st.composite
def stats_answers(draw: Any) -> dict[str, Any]:
    """A real-looking running payload with one field made odd."""
    payload = stats_payload("running", draw(st.integers(0, 10**6)))
    if draw(st.booleans()):
        payload[draw(st.sampled_from(STATS_KEYS))] = draw(JSON_VALUES)
    else:
        payload["stats"][0][draw(st.sampled_from(ENTRY_KEYS))] = draw(JSON_VALUES)
    return payload


def plugin_answer(**odd: Any) -> dict[str, Any]:
    """A real-looking plugin answer, with the fields of `odd` instead."""
    return {
        "plugin": "loadmgr", "version": 1, "now": 1.8e9, "complete": 1_800_000_010,
        "oldest": None, "test_started": 1.8e9, "state": "running", "user_count": 2,
        "worker_count": None, "more": False, "final": False,
        "seconds": [{"t": 1_800_000_001, "entries": [["GET", "/", 5, 0, [[3, 5]]]]}],
        **odd,
    }


@st.composite
def plugin_answers(draw: Any) -> dict[str, Any]:
    return plugin_answer(**{draw(st.sampled_from(PLUGIN_KEYS)): draw(JSON_VALUES)})


def _json_reply(body: Any) -> dict[str, Any]:
    return {"body": json.dumps(body, allow_nan=True), "status": 200,
            "content_type": "application/json"}


ODDITY_REPLIES: dict[str, dict[str, Any]] = {
    "truncated": {"body": '{"state": "runn', "status": 200, "content_type": "application/json"},
    "html": {"body": "<html>login</html>", "status": 200, "content_type": "text/html"},
    "redirect": {"body": "", "status": 302, "headers": {"Location": "/login"}},
    "500": {"body": "boom", "status": 500, "content_type": "text/html"},
    "timeout": {"body": requests.exceptions.ReadTimeout("slow")},
    "reset": {"body": requests.exceptions.ConnectionError("Connection reset by peer")},
}


@pytest.fixture
def store(mongo_uri: str) -> Any:
    opened = Store.connect(mongo_uri, os.environ["LOADMGR_DATABASE"], Scope(), 5000)
    opened.ensure_indexes()
    yield opened
    opened.close()


@pytest.fixture(autouse=True)
def fast_collector(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seconds become milliseconds: each example is a whole run's life."""
    from loadmgr.service.collection import ending, life, sources

    monkeypatch.setattr(sources, "POLL_SEC", 0.01)
    monkeypatch.setattr(life, "POLL_SEC", 0.01)
    monkeypatch.setattr(life, "OVERRUN_GRACE_SEC", 0.0)
    monkeypatch.setattr(ending, "FINAL_STATS_TIMEOUT_SEC", 0.3)
    monkeypatch.setattr(ending, "FINALIZE_RETRY_SEC", 0.0)


def _run_against(store: Store, tmp_path: Path, plugin: bool, reply: dict[str, Any]) -> None:
    """One run's whole life against a Locust whose stats (or plugin) answer is `reply`."""
    from loadmgr.models import LoadTest

    name = uuid.uuid4().hex[:10]
    store.clusters.insert(LocustCluster(id=name, baseUrl=URL))
    store.tests.insert(LoadTest(name=name, targetUrl="http://target:1", locustClusterId=name,
                                defaultDurationSec=1))
    plan = plan_run(store, name, RunOptions(interval=1, lost_timeout=5.0), "fuzzer")
    assert take_lease(store, plan)
    run = record_pending(store, plan)
    stops: list[str] = []
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        running = stats_payload("running", 10)
        mock.add("GET", f"{URL}/stats/requests", json=stats_payload("stopped", 0))  # idle
        mock.add("GET", f"{URL}/stats/requests", json=running)  # then started
        if plugin:
            mock.add("GET", f"{URL}/stats/requests", json=running)
            mock.add("GET", f"{URL}/loadmgr/v1/info", json={"plugin": "loadmgr", "version": 1})
            mock.add("GET", f"{URL}/loadmgr/v1/seconds", **reply)
        else:
            mock.add("GET", f"{URL}/stats/requests", **reply)
            mock.add("GET", f"{URL}/loadmgr/v1/info", status=404, body="not found")
        mock.add("POST", f"{URL}/swarm", json={"success": True, "message": "Swarming started"})

        def stopped(request: Any) -> tuple[int, dict[str, str], str]:
            stops.append("stop")
            return 200, {"Content-Type": "application/json"}, '{"success": true}'

        mock.add_callback("POST", f"{URL}/stop", callback=stopped)
        mock.add("GET", f"{URL}/stats/requests/csv", body="Type,Name\n", content_type="text/csv")
        collector = Collector(store, run, cluster=plan.cluster, home=tmp_path,
                              settings=CollectorSettings(interval=1, lost_timeout=0.05))
        try:
            collector.execute()
        except LoadmgrError:
            pass  # a documented exit code; anything else fails the test
    final = store.runs.find_by_id(run.id)
    assert final is not None and not final.status.is_active, final
    holder = store.leases.holder(lease_id(name)) or {}
    assert holder.get("runId") != run.id, "the lease is still held"
    if final.status == RunStatus.FAILED and final.startedAt is not None:
        assert stops, "a run that failed mid-way left its load running"


FUZZ = settings(max_examples=20, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(answer=stats_answers())
def test_any_stats_answer_ends_the_run_recorded(store, tmp_path, answer):
    _run_against(store, tmp_path, False, _json_reply(answer))


@FUZZ
@given(answer=plugin_answers())
# Numbers far apart, each valid alone, once made the collector build a window for every
# second between them (billions) until the machine ran out of memory.
@example(answer=plugin_answer(test_started=0.0))  # the test "started" in 1970
@example(answer=plugin_answer(test_started=1.0, now=1.0))
@example(answer=plugin_answer(complete=2**40 - 1))  # a watermark 30,000 years ahead
@example(answer=plugin_answer(seconds=[{"t": 2**40 - 2, "entries": []}], complete=2**40 - 1))
def test_any_plugin_answer_ends_the_run_recorded(store, tmp_path, answer):
    _run_against(store, tmp_path, True, _json_reply(answer))


@pytest.mark.parametrize("plugin", [False, True])
@pytest.mark.parametrize("oddity", sorted(ODDITY_REPLIES))
def test_http_oddities_end_the_run_recorded(store, tmp_path, oddity, plugin):
    _run_against(store, tmp_path, plugin, ODDITY_REPLIES[oddity])
