"""The rules that read and convert the Go control plane's documents (loadmgr/models/foreign.py)."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from loadmgr.models import LoadTest, LoadTestRun, MetricSnapshot, RunStatus
from loadmgr.models.foreign import convert_interval, convert_run, last_metrics, readable

MILLIS = 1796199562813  # 2026-12-02T08:19:22.813Z


def go_run(**extra: object) -> dict[str, object]:
    return {
        "id": "r1",
        "loadtestid": "t1",
        "name": "go",
        "accountid": "acct1",
        "orgid": "org1",
        "projectid": "proj1",
        "envid": "dev",
        "targetusers": 4,
        "spawnrate": 4.0,
        "durationseconds": 15,
        "status": "Stopped",
        "startedat": MILLIS,
        "finishedat": MILLIS,
        "createdat": MILLIS,
        "createdby": "bob",
        "updatedat": MILLIS,
        "updatedby": "bob",
        "metadata": None,
        "lastmetrics": {
            "timestamp": MILLIS,
            "totalrps": 74.1,
            "errorrate": 18.0,
            "averageresponsems": 3.0,
            "avgresponsems": 0.0,
            "minresponsems": 0.0,
            "requeststats": {
                "GET:/a": {
                    "method": "GET",
                    "name": "/a",
                    "numrequests": 9,
                    "avgresponsetime": 3.1,
                    "medianresponsetime": 3.0,
                }
            },
        },
        **extra,
    }


def test_a_go_run_reads_as_loadmgr_s() -> None:
    run = LoadTestRun.model_validate(go_run())
    assert run.loadTestId == "t1" and run.status is RunStatus.STOPPED
    assert run.createdAt == datetime(2026, 12, 2, 8, 19, 22, 813000, tzinfo=timezone.utc)
    assert run.metadata == {} and run.tenantId is None
    assert run.lastMetrics["totalRPS"] == 74.1 and run.lastMetrics["errorRate"] == 0.18
    assert run.lastMetrics["minResponseMs"] is None  # Go's 0.0: unknown
    assert run.lastMetrics["requestStats"] == [
        {
            "method": "GET",
            "name": "/a",
            "numRequests": 9,
            "avgResponseTimeMs": 3.1,
            "p50ResponseMs": 3.0,
        }
    ]


def test_a_go_test_without_version_reads_as_version_0() -> None:
    test = LoadTest.model_validate(
        {
            "id": "t1",
            "name": "go",
            "targeturl": "http://x",
            "createdat": MILLIS,
            "accountid": "a",
            "latestrevisionid": "rev",
            "scenarioid": "",
        }
    )
    assert test.version == 0 and test.written_by_go and test.scenarioId is None
    assert readable({"createdAt": 5, "id": "x"}, ["createdAt"])["createdAt"].year == 1970


def test_convert_run_keeps_what_has_no_field() -> None:
    converted = convert_run(go_run(), LoadTestRun.model_fields, "project")
    assert (converted["status"], converted["stopReason"]) == ("Finished", "user")
    assert converted["tenantId"] == "proj1" and "accountid" not in converted
    legacy = json.loads(converted["metadata"]["legacy"])
    assert legacy["accountid"] == "acct1" and legacy["status"] == "Stopped"
    assert "lastmetrics" not in legacy  # its only extra value was a 0.0
    LoadTestRun.model_validate(converted)


def test_convert_interval() -> None:
    go = {
        "_id": 1,
        "loadTestRunId": "r1",
        "timestamp": datetime.now(timezone.utc),
        "totalRps": 4.0,
        "errorRate": 13.5,
        "accountId": "a",
        "orgId": "o",
        "avgResponseMs": 0.0,
        "requestStats": [{"method": "GET", "name": "/a", "p50ResponseMs": 0.0}],
    }
    converted = convert_interval(go, 7, "account")
    assert converted["seq"] == 7 and converted["totalRPS"] == 4.0 and "totalRps" not in converted
    assert converted["errorRate"] == 0.135 and converted["avgResponseMs"] is None
    assert (
        converted["tenantId"] == "a" and json.loads(converted["metadata"]["legacy"])["orgId"] == "o"
    )
    assert converted["requestStats"][0]["p50ResponseMs"] is None
    MetricSnapshot.model_validate(converted)
    assert last_metrics({})[0]["errorRate"] == 0.0
