"""The hot paths of a long history in a scope (`--tenant`, `--env`) on SecantusDB, whose
planner uses an index only when every field of the filter is in it: every query the
commands send, captured as sent, is planned on an index (docs/storage.md, "Indexes"), and
what the scope leaves out is neither read nor pruned."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pymongo
import pytest
from pymongo import monitoring

from loadmgr.models import Scope
from loadmgr.models.documents.base import utcnow
from loadmgr.store import Store
from tests.conftest import ok
from tests.integration.test_retention import _plan
from tests.metrics_data import START, make_run, make_test, plugin_snapshots, store_all

HOT = ("load_tests", "load_test_runs", "metrics_timeseries")
# Every shape a scope takes: tenant and env, either alone.
SCOPES = [("acme", "prod"), ("acme", None), (None, "prod")]


class Sent(monitoring.CommandListener):
    """The filters (and sorts) of the queries, deletes and aggregations sent."""

    def __init__(self) -> None:
        self.queries: list[tuple[str, str, dict[str, Any], dict[str, Any] | None]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        command, name = event.command, event.command_name
        collection = command.get(name)
        if collection not in HOT:
            return
        if name in ("find", "count"):
            found = command.get("filter") or command.get("query") or {}
            self.queries.append((name, collection, found, command.get("sort")))
        elif name == "delete":
            for delete in command.get("deletes", []):
                self.queries.append((name, collection, delete["q"], None))
        elif name == "aggregate":
            first = (command.get("pipeline") or [{}])[0]
            self.queries.append((name, collection, first.get("$match", {}), None))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def _history(db: Any, tenant: str | None, env: str | None) -> Any:
    """A test of the scope with one ended run of 24 plugin intervals (5 s)."""
    test = make_test("nightly", tenantId=tenant, envId=env)
    finished = utcnow() - timedelta(days=2)
    run = make_run(test, finishedAt=finished, startedAt=START, collectionMode="plugin")
    store_all(db, test, runs=[run], intervals=plugin_snapshots(run, 24, interval=5))
    return run


def _options(tenant: str | None, env: str | None) -> list[str]:
    return [*(["--tenant", tenant] if tenant else []), *(["--env", env] if env else [])]


def _scans(mongo_db: Any, sent: Sent) -> list[Any]:
    scans = []
    for name, collection, found, sort in sent.queries:
        if "_id" in found and len(found) == 1:
            continue  # a point lookup on the primary key, on every server
        cursor = mongo_db[collection].find(found)
        if sort:
            cursor = cursor.sort(list(sort.items()))
        if "COLLSCAN" in _plan(cursor):
            scans.append((name, collection, found))
    return scans


@pytest.mark.parametrize(("tenant", "env"), SCOPES)
def test_the_hot_paths_in_a_scope_use_an_index(
    cli: Any,
    mongo_db: Any,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    tenant: str | None,
    env: str | None,
) -> None:
    run = _history(mongo_db, tenant, env)
    # Beside it, another scope's run, and an interval claiming the run's id from another
    # scope: neither is read nor pruned.
    other = _history(mongo_db, "other", "other")
    forged = {"loadTestRunId": run.id, "seq": 25, "tenantId": "other", "envId": "other"}
    mongo_db["metrics_timeseries"].insert_one(dict(forged))
    Store(mongo_db, Scope(), "").ensure_indexes()  # as any command that writes does
    scope = _options(tenant, env)
    ok(cli("db", "retention", "set", *scope, "--keep-detail", "1d", "--downsample", "1m"))
    sent = Sent()
    made = pymongo.MongoClient
    monkeypatch.setattr(
        pymongo, "MongoClient", lambda *a, **k: made(*a, event_listeners=[sent], **k)
    )
    listed = ok(cli("runs", "list", *scope, "-o", "json")).json()
    assert [r["id"] for r in listed] == [run.id]
    ok(cli("tests", "list", *scope, "-o", "json"))
    shown = ok(cli("metrics", "show", run.id, *scope, "--view", "timeseries", "-o", "json"))
    assert len(shown.json()) == 24  # the forged interval left out
    ok(cli("metrics", "show", run.id, *scope, "-o", "json"))
    ok(cli("metrics", "report", run.id, *scope, "--html", str(tmp_path / "r.html")))
    pruned = ok(cli("db", "prune", *scope, "-o", "json")).json()
    assert pruned["retention"]["intervalsMerged"] == 24
    scans = _scans(mongo_db, sent)
    assert not scans, "\n".join(map(str, scans))
    # What the scope left out is still there.
    assert mongo_db["metrics_timeseries"].count_documents({"tenantId": "other"}) == 25
    assert mongo_db["metrics_timeseries"].count_documents({"loadTestRunId": other.id}) == 24
