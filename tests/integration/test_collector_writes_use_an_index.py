"""The collector's writes to its run (heartbeat, update, claim: once per interval) and its
resume's sums (`request_totals`) on SecantusDB, whose planner uses an index only when every
field of the filter is in it: each is found by an indexed field alone, in every scope, and
keeps its conditions (fencing, status, scope, never a Go document) in the write itself
(store/upkeep/guarded.py), where the server judges them as `holds` does here."""

from __future__ import annotations

from typing import Any

import pymongo
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo import monitoring

from loadmgr.models import Scope
from loadmgr.store import Store
from loadmgr.store.upkeep.guarded import MISSING, holds, set_if
from tests.integration.test_retention import _plan
from tests.metrics_data import make_run, make_test, plugin_snapshots, store_all

SCOPES = [(None, None), ("acme", "prod"), ("acme", None), (None, "prod")]


class Sent(monitoring.CommandListener):
    """The filters of the finds, writes and aggregations (first `$match`) sent."""

    def __init__(self) -> None:
        self.filters: list[tuple[str, str, dict[str, Any]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        command, name = event.command, event.command_name
        collection = command.get(name)
        if name == "findAndModify":
            self.filters.append((name, collection, command.get("query") or {}))
        elif name == "update":
            for update in command.get("updates", []):
                self.filters.append((name, collection, update["q"]))
        elif name == "find":
            self.filters.append((name, collection, command.get("filter") or {}))
        elif name == "aggregate":
            first = (command.get("pipeline") or [{}])[0]
            self.filters.append((name, collection, first.get("$match", {})))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.mark.parametrize(("tenant", "env"), SCOPES)
def test_the_collectors_writes_use_an_index(
    mongo_uri: str, mongo_db: Any, tenant: str | None, env: str | None
) -> None:
    test = make_test("nightly", tenantId=tenant, envId=env)
    run = make_run(test, status="Running", finalStats=None, collectionMode="plugin")
    store_all(mongo_db, test, runs=[run], intervals=plugin_snapshots(run, 4, interval=5))
    # Other runs beside it: a collection scan would have to read them all.
    others = [make_run(test, status="Finished") for _ in range(20)]
    mongo_db["load_test_runs"].insert_many([r.model_dump(mode="python") for r in others])
    Store(mongo_db, Scope(), "").ensure_indexes()
    sent = Sent()
    client: Any = pymongo.MongoClient(mongo_uri, event_listeners=[sent], tz_aware=True)
    try:
        store = Store(client[mongo_db.name], Scope(tenant=tenant, env=env), "")
        claimed = store.runs.claim(run.id, 0, {"collector": {"pid": 1}})
        assert claimed is not None and claimed.collectorEpoch == 1
        state = store.runs.heartbeat(run.id, 1, {"heartbeatAt": run.createdAt})
        assert state is not None and state["status"] == "Running"
        assert store.runs.heartbeat(run.id, 0, {"heartbeatAt": run.createdAt}) is None
        ended = store.runs.update(
            run.id, {"status": "Finished"}, only_if_status=["Running"], epoch=1
        )
        assert ended is not None and ended.status == "Finished"
        assert store.runs.update(run.id, {"status": "Failed"}, only_if_status=["Running"]) is None
        assert sum(r for r, _ in store.metrics.request_totals(run.id).values()) > 0
    finally:
        client.close()
    scans = [
        (name, collection, found)
        for name, collection, found in sent.filters
        if "COLLSCAN" in _plan(mongo_db[collection].find(found))
    ]
    assert not scans, "\n".join(map(str, scans))
    assert {name for name, _, _ in sent.filters} >= {"findAndModify", "aggregate"}


# Values a stored field may hold, and a condition may allow.
VALUES = st.sampled_from([MISSING, None, 0, 0.0, 1, 2, True, "Running", "$status", "acme"])


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    stored=st.dictionaries(st.sampled_from(["collectorEpoch", "status", "createdat"]), VALUES),
    condition=st.dictionaries(
        st.sampled_from(["collectorEpoch", "status", "createdat"]),
        st.lists(VALUES, min_size=1, max_size=3),
        min_size=1,
    ),
)
def test_a_guarded_write_lands_exactly_when_its_condition_holds(
    mongo_db: Any, stored: dict[str, Any], condition: dict[str, list[Any]]
) -> None:
    """The server's judgment (the write landed or not) and `holds` agree over values of
    every kind: absent, null, numbers of either type, booleans, text that looks like a
    field path; and a write that did not land changed nothing."""
    runs = mongo_db["guarded"]
    doc = {"id": "r1", **{key: value for key, value in stored.items() if value is not MISSING}}
    runs.delete_many({})
    runs.insert_one(dict(doc))
    changes = {"heartbeatAt": 7, "status": "$literal text"}
    before, after = set_if(runs, {"id": "r1"}, condition, changes)
    now = runs.find_one({"id": "r1"}, {"_id": False})
    assert before is not None
    assert (after is not None) == holds(condition, doc)
    assert now == ({**doc, **changes} if after is not None else doc)
    if after is not None:
        assert after == now
