"""The repository layer on mongomock: uniqueness, versioned updates, scope, plain strings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import mongomock
import pytest

from loadmgr.errors import Conflict
from loadmgr.models import LoadTest, LocustCluster, Scope
from loadmgr.store import Store

OPERATOR_LOOKING = ['{"$ne": null}', "$where", "a.b", "$ne", '{"$gt": ""}', "^.*$", ".*"]


@pytest.fixture
def client() -> mongomock.MongoClient:
    return mongomock.MongoClient()


@pytest.fixture
def make_store(client: mongomock.MongoClient) -> Callable[..., Store]:
    def make(tenant: str | None = None, env: str | None = None) -> Store:
        store = Store(client["db"], Scope(tenant, env), "mongodb://x")
        store.ensure_indexes()
        return store

    return make


def _test(store: Store, name: str = "checkout", **fields: Any) -> LoadTest:
    return LoadTest.model_validate(
        {"name": name, "targetUrl": "http://127.0.0.1:1", **store.scope.stamp(), **fields}
    )


def test_insert_and_find_by_id_and_name(make_store: Callable[..., Store]) -> None:
    store = make_store()
    test = store.tests.insert(_test(store))
    assert store.tests.find_by_id(test.id) == test
    assert store.tests.find_by_name("checkout") == [test]
    assert store.tests.find_by_name("  checkout ") == [test]
    stored = store.db["load_tests"].find_one({"id": test.id})
    assert stored is not None and stored["name"] == "checkout"


def test_names_are_unique_per_tenant_and_env(make_store: Callable[..., Store]) -> None:
    plain, tenant_a, tenant_a_prod, tenant_b = (
        make_store(), make_store("a"), make_store("a", "prod"), make_store("b")
    )
    for store in (plain, tenant_a, tenant_a_prod, tenant_b):
        store.tests.insert(_test(store, "same"))
    with pytest.raises(Conflict, match="already exists"):
        tenant_a.tests.insert(_test(tenant_a, "same"))
    with pytest.raises(Conflict):
        plain.tests.insert(_test(plain, "same"))
    assert plain.db["load_tests"].count_documents({}) == 4


def test_ensure_indexes_is_idempotent(client: mongomock.MongoClient) -> None:
    for _ in range(2):
        store = Store(client["db"], Scope(), "mongodb://x")
        store.ensure_indexes()
    names = set(client["db"]["load_tests"].index_information())
    assert {"id_unique_idx", "scope_name_unique"} <= names


def test_versioned_update(make_store: Callable[..., Store]) -> None:
    store = make_store()
    test = store.tests.insert(_test(store))
    updated = store.tests.update(test.id, 1, {"description": "first"})
    assert updated is not None
    assert (updated.version, updated.description) == (2, "first")
    # A writer still holding version 1 is refused, and nothing changes.
    assert store.tests.update(test.id, 1, {"description": "stale"}) is None
    current = store.tests.find_by_id(test.id)
    assert current is not None
    assert (current.version, current.description) == (2, "first")


def test_update_to_a_taken_name_is_a_conflict(make_store: Callable[..., Store]) -> None:
    store = make_store()
    store.tests.insert(_test(store, "one"))
    two = store.tests.insert(_test(store, "two"))
    with pytest.raises(Conflict, match="'one' already exists"):
        store.tests.update(two.id, 1, {"name": "one"})


def test_scope_filters_reads_updates_and_deletes(make_store: Callable[..., Store]) -> None:
    tenant_a, tenant_b = make_store("a"), make_store("b")
    theirs = tenant_b.tests.insert(_test(tenant_b, "theirs", tags=["x"]))

    assert tenant_a.tests.find_by_id(theirs.id) is None
    assert tenant_a.tests.find_by_name("theirs") == []
    assert tenant_a.tests.find_many() == []
    assert tenant_a.tests.find_many(tags=["x"], name_contains="the", limit=0) == []
    assert tenant_a.tests.update(theirs.id, 1, {"description": "hijack"}) is None
    assert tenant_a.tests.delete(theirs.id) is False

    still = tenant_b.tests.find_by_id(theirs.id)
    assert still is not None
    assert (still.description, still.version) == ("", 1)
    assert [d["id"] for d in tenant_b.tests.find_many()] == [theirs.id]


def test_env_scope_within_a_tenant(make_store: Callable[..., Store]) -> None:
    prod, staging = make_store("a", "prod"), make_store("a", "staging")
    whole_tenant = make_store("a")
    test = prod.tests.insert(_test(prod))
    assert staging.tests.find_by_id(test.id) is None
    assert whole_tenant.tests.find_by_id(test.id) == test
    assert make_store().tests.find_by_id(test.id) == test  # no scope: everything


def test_scope_filters_runs_metrics_and_clusters(make_store: Callable[..., Store]) -> None:
    tenant_a, tenant_b = make_store("a"), make_store("b")
    db = tenant_b.db
    db["load_test_runs"].insert_one({"id": "r1", "loadTestId": "t1", "tenantId": "b"})
    db["metrics_timeseries"].insert_one({"loadTestRunId": "r1", "seq": 1, "tenantId": "b"})
    tenant_b.clusters.insert(
        LocustCluster.model_validate({"id": "k8s", "baseUrl": "http://m:8089", "tenantId": "b"})
    )

    assert tenant_a.runs.count_for_test("t1") == 0
    assert tenant_a.runs.delete_for_test("t1") == 0
    assert tenant_a.metrics.delete_for_runs(["r1"]) == 0
    assert tenant_a.clusters.find_by_id("k8s") is None
    assert tenant_a.clusters.find_many() == []
    assert tenant_a.clusters.delete("k8s") is False

    assert tenant_b.runs.count_for_test("t1") == 1
    assert tenant_b.clusters.find_by_id("k8s") is not None


def test_find_many_filters_and_orders(make_store: Callable[..., Store]) -> None:
    store = make_store()
    from datetime import datetime, timedelta, timezone

    base = datetime(2024, 1, 1, tzinfo=timezone.utc)
    specs = [("alpha", ["x"], "local"), ("Beta", ["x", "y"], "k8s"), ("gamma", ["y"], "local")]
    for minutes, (name, tags, cluster) in enumerate(specs):
        created = base + timedelta(minutes=minutes)
        store.tests.insert(
            _test(store, name, tags=tags, locustClusterId=cluster, createdAt=created)
        )

    def names(**filters: Any) -> list[str]:
        return [d["name"] for d in store.tests.find_many(**filters)]

    assert names() == ["gamma", "Beta", "alpha"]  # newest first
    assert names(tags=["x"]) == ["Beta", "alpha"]
    assert names(tags=["x", "y"]) == ["Beta"]  # all must match
    assert names(name_contains="BET") == ["Beta"]  # substring, any case
    assert names(name_contains="a") == ["gamma", "Beta", "alpha"]
    assert names(cluster="local") == ["gamma", "alpha"]
    assert names(limit=2) == ["gamma", "Beta"]
    assert names(limit=0) == ["gamma", "Beta", "alpha"]
    assert all("_id" not in d and "locustfileContent" not in d for d in store.tests.find_many())


@pytest.mark.parametrize("text", OPERATOR_LOOKING)
def test_operator_looking_names_are_plain_strings(
    make_store: Callable[..., Store], text: str
) -> None:
    store = make_store()
    store.tests.insert(_test(store, "innocent"))
    assert store.tests.find_by_id(text) is None
    assert store.tests.find_by_name(text) == []
    assert store.tests.update(text, 1, {"description": "x"}) is None
    assert store.tests.delete(text) is False
    assert store.clusters.find_by_id(text) is None
    assert store.runs.count_for_test(text) == 0
    # ... and a test may be named like that, found only by that exact name.
    odd = store.tests.insert(_test(store, text))
    assert store.tests.find_by_name(text) == [odd]
    assert [d["name"] for d in store.tests.find_many(name_contains=text)] == [text]
    assert store.db["load_tests"].count_documents({}) == 2


def test_name_substring_is_not_a_regex(make_store: Callable[..., Store]) -> None:
    store = make_store()
    store.tests.insert(_test(store, "a.c"))
    store.tests.insert(_test(store, "abc"))
    assert [d["name"] for d in store.tests.find_many(name_contains=".")] == ["a.c"]
    assert store.tests.find_many(name_contains="(") == []


def test_cluster_ids_are_unique(make_store: Callable[..., Store]) -> None:
    store = make_store()
    cluster = LocustCluster.model_validate({"id": "k8s", "baseUrl": "http://m:8089"})
    store.clusters.insert(cluster)
    with pytest.raises(Conflict, match="already exists"):
        store.clusters.insert(cluster)
    assert store.clusters.delete("k8s") is True
    assert store.clusters.find_by_id("k8s") is None
