"""Tenant and environment scope, in the repository layer and through the CLI; audit fields
from the configured identity."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import create_test_argv, ok
from tests.conftest import error_line as one_error
from tests.integration.security.conftest import Cli
from tests.locust_servers import DEMO_LOCUSTFILE

pytestmark = pytest.mark.integration


# --- tenant and environment scope, in the repository layer and through the CLI ------------


def _theirs(mongo_db: Any) -> dict[str, Any]:
    """Documents of tenant b (and of tenant a in another env), written with pymongo."""
    now = datetime.now(timezone.utc)
    audit = {"createdAt": now, "createdBy": "b", "updatedAt": now, "updatedBy": "b"}
    docs: dict[str, Any] = {}
    for test_id, tenant, env in (("t-b", "b", "x"), ("t-ay", "a", "y")):
        mongo_db.load_tests.insert_one(
            {
                "id": test_id,
                "name": "shared",
                "tenantId": tenant,
                "envId": env,
                "tags": ["t"],
                "targetUrl": "http://127.0.0.1:1",
                "locustClusterId": "c-b",
                "version": 1,
                "defaultUsers": 1,
                "defaultSpawnRate": 1.0,
                "defaultDurationSec": 5,
                "metadata": {},
                "description": "",
                "thresholds": [],
                **audit,
            }
        )
        run_id = f"r-{test_id}"
        mongo_db.load_test_runs.insert_one(
            {
                "id": run_id,
                "loadTestId": test_id,
                "name": "their run",
                "tenantId": tenant,
                "envId": env,
                "targetUsers": 1,
                "spawnRate": 1.0,
                "durationSeconds": 5,
                "status": "Running",
                "heartbeatAt": now,
                "locustClusterId": "c-b",
                "collector": {"interval": 5},
                "metadata": {},
                "lastMetrics": {},
                **audit,
            }
        )
        for seq in (1, 2):
            mongo_db.metrics_timeseries.insert_one(
                {
                    "loadTestRunId": run_id,
                    "seq": seq,
                    "timestamp": now,
                    "tenantId": tenant,
                    "envId": env,
                    "totalRPS": 5.0,
                    "currentUsers": 1,
                    "requestStats": [],
                }
            )
        docs[test_id] = run_id
    mongo_db.locust_clusters.insert_one(
        {
            "id": "c-b",
            "baseUrl": "http://127.0.0.1:1",
            "tenantId": "b",
            "envId": "x",
            "auth": {"type": "none"},
            "verifyTls": True,
            "description": "",
            **audit,
        }
    )
    return docs


def _snapshot(mongo_db: Any) -> dict[str, list[dict[str, Any]]]:
    names = ("load_tests", "load_test_runs", "metrics_timeseries", "locust_clusters")
    return {
        name: sorted(
            mongo_db[name].find({}, {"_id": False}),
            key=lambda d: json.dumps(d, sort_keys=True, default=str),
        )
        for name in names
    }


def test_repositories_never_reach_outside_their_scope(mongo_uri: str, mongo_db: Any) -> None:
    from loadmgr.errors import ValidationFailed
    from loadmgr.models import LoadTest, LoadTestRun, LocustCluster, MetricSnapshot, Scope
    from loadmgr.store import Store

    _theirs(mongo_db)
    scoped = Store(mongo_db, Scope("a", "x"), mongo_uri)
    scoped.ensure_indexes()
    ours = scoped.tests.insert(LoadTest(name="ours", targetUrl="http://h", tenantId="a", envId="x"))
    before = _snapshot(mongo_db)

    for test_id in ("t-b", "t-ay"):
        run_id = f"r-{test_id}"
        assert scoped.tests.find_by_id(test_id) is None
        assert scoped.tests.update(test_id, 1, {"description": "pwned"}) is None
        assert scoped.tests.delete(test_id) is False
        assert scoped.runs.find_by_id(run_id) is None
        assert scoped.runs.update(run_id, {"status": "Failed"}) is None
        assert scoped.runs.claim(run_id, 0, {"heartbeatAt": None}) is None
        assert scoped.runs.count_for_test(test_id) == 0
        assert scoped.runs.ids_for_test(test_id) == []
        assert scoped.runs.delete_for_test(test_id) == 0
        assert scoped.metrics.find_for_run(run_id) == []
        assert list(scoped.metrics.iter_for_run(run_id, {})) == []
        assert scoped.metrics.count_for_run(run_id) == 0
        assert scoped.metrics.latest(run_id) is None
        assert scoped.metrics.last_seq(run_id) == 0
        assert scoped.metrics.downsampled(run_id, 1, {"rps": {"$max": "$totalRPS"}}) == []
        assert scoped.metrics.peaks(run_id, ["totalRPS"]) == {"totalRPS": None}
        assert scoped.metrics.delete_for_runs([run_id]) == 0
    assert scoped.metrics.aggregate([{"$group": {"_id": None, "n": {"$sum": 1}}}]) == []
    assert scoped.tests.find_by_name("shared") == []
    assert [d["id"] for d in scoped.tests.find_many(limit=0)] == [ours.id]
    assert scoped.tests.find_many(tags=["t"], name_contains="shared", cluster="c-b") == []
    assert scoped.runs.find_many(limit=0) == []
    assert scoped.clusters.find_by_id("c-b") is None
    assert scoped.clusters.find_many() == []
    assert scoped.clusters.delete("c-b") is False

    # Writes that would put a document outside the scope are refused, not performed.
    outside = {"tenantId": "b", "envId": "x"}
    with pytest.raises(ValidationFailed):
        scoped.tests.insert(LoadTest(name="planted", targetUrl="http://h", **outside))
    with pytest.raises(ValidationFailed):
        scoped.tests.update(ours.id, ours.version, {"tenantId": "b"})
    with pytest.raises(ValidationFailed):
        scoped.runs.insert(
            LoadTestRun(
                loadTestId=ours.id, targetUsers=1, spawnRate=1, durationSeconds=5, **outside
            )
        )
    with pytest.raises(ValidationFailed):
        scoped.clusters.insert(LocustCluster(id="planted", baseUrl="http://h", **outside))
    with pytest.raises(ValidationFailed):
        scoped.metrics.save(
            [
                MetricSnapshot(
                    loadTestRunId="r-t-b", seq=3, timestamp=datetime.now(timezone.utc), **outside
                )
            ]
        )
    assert _snapshot(mongo_db) == before

    # The same calls in tenant b's scope do reach them: the checks above are not vacuous.
    theirs = Store(mongo_db, Scope("b", "x"), mongo_uri)
    assert theirs.tests.find_by_id("t-b") is not None
    assert theirs.metrics.count_for_run("r-t-b") == 2
    assert theirs.clusters.find_by_id("c-b") is not None


def test_cli_with_a_scope_sees_and_touches_nothing_outside(
    cli: Cli, mongo_db: Any, tmp_path: Path
) -> None:
    _theirs(mongo_db)
    before = _snapshot(mongo_db)
    scope = ("--tenant", "a", "--env", "x")
    not_found = [
        ("tests", "show", "t-b"),
        ("tests", "show", "shared"),
        ("tests", "show", "t-ay"),
        ("tests", "update", "t-b", "--users", "9"),
        ("tests", "update", "shared", "--tag", "z"),
        ("tests", "delete", "t-b", "--yes", "--force"),
        ("tests", "delete", "shared", "--yes"),
        ("runs", "show", "r-t-b"),
        ("runs", "stop", "r-t-b"),
        ("runs", "follow", "r-t-b"),
        ("runs", "list", "--test", "t-b"),
        ("runs", "start", "shared"),
        ("metrics", "show", "r-t-b"),
        ("metrics", "export", "r-t-b"),
        ("clusters", "show", "c-b"),
        ("clusters", "remove", "c-b"),
        ("clusters", "check", "c-b"),
        (
            *create_test_argv("new", "http://h", "x.py", "--cluster", "c-b"),
        ),
    ]
    for args in not_found:
        line = one_error(cli(*scope, *args), 4)
        assert "not found in tenant 'a', env 'x'" in line, (args, line)
    for args in (("tests", "list"), ("runs", "list")):
        assert ok(cli(*scope, *args, "-o", "json")).json() == [], args
    listed = ok(cli(*scope, "clusters", "list", "-o", "json")).json()
    assert [cluster["id"] for cluster in listed] == ["local"]  # built in, in every scope
    assert ok(cli(*scope, "tests", "list", "--name", "shared", "-q")).stdout == ""
    assert _snapshot(mongo_db) == before

    # What is created in the scope is stamped with it, even with a name taken elsewhere.
    created = ok(
        cli(
            *scope,
            *create_test_argv("shared", "http://127.0.0.1:1", DEMO_LOCUSTFILE),
            "-o",
            "json",
        )
    )
    doc = created.json()
    assert isinstance(doc, dict)
    assert (doc["tenantId"], doc["envId"]) == ("a", "x")
    ok(cli(*scope, "clusters", "add", "c-a", "--url", "http://127.0.0.1:1"))
    assert mongo_db.locust_clusters.find_one({"id": "c-a"})["tenantId"] == "a"
    after = _snapshot(mongo_db)
    for name, documents in before.items():
        assert all(d in after[name] for d in documents), name


# --- audit fields come from the configured identity ---------------------------------------


def test_created_by_and_updated_by_follow_user_and_environment(
    cli: Cli, mongo_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok(
        cli(
            "--user",
            "alice",
            *create_test_argv("audited", "http://127.0.0.1:1", DEMO_LOCUSTFILE),
        )
    )
    monkeypatch.setenv("LOADMGR_USER", "bob")
    ok(cli("tests", "update", "audited", "--users", "3"))
    stored = mongo_db.load_tests.find_one({"name": "audited"})
    assert (stored["createdBy"], stored["updatedBy"]) == ("alice", "bob")
    assert stored["updatedAt"] >= stored["createdAt"]
    ok(cli("tests", "update", "audited", "--users", "4", "--user", "carol"))  # option wins
    assert mongo_db.load_tests.find_one({"name": "audited"})["updatedBy"] == "carol"
    ok(cli("clusters", "add", "k", "--url", "http://127.0.0.1:1"))
    assert mongo_db.locust_clusters.find_one({"id": "k"})["createdBy"] == "bob"
    shown = ok(cli("tests", "show", "audited"))
    assert "by alice" in shown.stdout and "by carol" in shown.stdout
