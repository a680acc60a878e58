"""Short ids and locustfile drift on mongomock (issue 15.1 and 15.3), at the service level."""

from __future__ import annotations

import hashlib
from pathlib import Path

import mongomock
import pytest

from loadmgr.errors import Conflict, NotFound, ValidationFailed
from loadmgr.models import LoadTest, LoadTestRun, Scope
from loadmgr.service.definitions.tests import get_test
from loadmgr.service.runs.lookup import get_run
from loadmgr.service.runs.options import RunOptions
from loadmgr.service.runs.plan import plan_run
from loadmgr.store import Store

SOURCE = "from locust import HttpUser\n"


@pytest.fixture
def client() -> mongomock.MongoClient:
    return mongomock.MongoClient()


def _store(client: mongomock.MongoClient, tenant: str | None = None) -> Store:
    return Store(client["loadmgr"], Scope(tenant, None), "mongodb://mock")


def _run(store: Store, run_id: str, tenant: str | None = None) -> None:
    store.runs.insert(
        LoadTestRun(
            id=run_id,
            loadTestId="t",
            targetUsers=1,
            spawnRate=1,
            durationSeconds=5,
            tenantId=tenant,
        )
    )


def test_run_prefixes(client: mongomock.MongoClient) -> None:
    store = _store(client)
    _run(store, "abcdef12-0001", "a")
    _run(store, "abcdef12-0002", "b")
    _run(store, "fedcba98-0003", "a")
    assert get_run(store, "fedcba98").id == "fedcba98-0003"
    assert get_run(store, "abcdef12-0002").id == "abcdef12-0002"
    with pytest.raises(Conflict, match=r"abcdef12-0001, abcdef12-0002$"):
        get_run(store, "abcdef12")
    assert get_run(_store(client, "a"), "abcdef12").id == "abcdef12-0001"
    for ref in ("abcdef1", "abcdef1.", "........", "^abcdef12", "abcdef12$"):
        with pytest.raises(NotFound):
            get_run(store, ref)
    # Seven characters of an id: the hint says how long a prefix must be; not for others.
    with pytest.raises(NotFound) as short:
        get_run(store, "fedcba9")
    assert short.value.hint is not None and "8 characters or more" in short.value.hint
    with pytest.raises(NotFound) as other:
        get_run(store, "nightly")
    assert other.value.hint is None


def test_test_ids_names_then_prefixes(client: mongomock.MongoClient) -> None:
    store = _store(client)
    first = store.tests.insert(LoadTest(id="0123abcd-1", name="api", targetUrl="http://h"))
    # A test whose name is another test's id prefix: its name wins.
    named = store.tests.insert(LoadTest(id="99999999-2", name="0123abcd", targetUrl="http://h"))
    assert get_test(store, "0123abcd-1").id == first.id
    assert get_test(store, "0123abcd").id == named.id
    assert get_test(store, "99999999").id == named.id
    with pytest.raises(NotFound):
        get_test(store, "0123abc")


def _test_with_file(store: Store, path: Path, content: str = SOURCE) -> LoadTest:
    path.write_text(content)
    return store.tests.insert(
        LoadTest(
            name="api",
            targetUrl="http://127.0.0.1:1",
            locustfile=str(path),
            locustfileContent=content,
            locustfileSha256=hashlib.sha256(content.encode()).hexdigest(),
        )
    )


def test_no_drift_while_the_file_matches(client: mongomock.MongoClient, tmp_path: Path) -> None:
    store = _store(client)
    _test_with_file(store, tmp_path / "locustfile.py")
    plan = plan_run(store, "api", RunOptions(strict_locustfile=True), "ann")
    assert plan.locustfile_drift is None and plan.locustfile == SOURCE
    (tmp_path / "locustfile.py").unlink()  # run elsewhere: nothing to compare with
    assert plan_run(store, "api", RunOptions(), "ann").locustfile_drift is None


def test_drift_is_one_sentence_with_both_hashes(
    client: mongomock.MongoClient, tmp_path: Path
) -> None:
    store = _store(client)
    path = tmp_path / "my locustfile.py"
    test = _test_with_file(store, path)
    path.write_text(SOURCE + "# changed\n")
    changed = hashlib.sha256(path.read_bytes()).hexdigest()
    plan = plan_run(store, "api", RunOptions(), "ann")
    assert plan.locustfile == SOURCE  # the stored copy still runs
    assert plan.run.locustfileSha256 == test.locustfileSha256
    drift = plan.locustfile_drift
    assert drift is not None and "\n" not in drift
    assert f"stored sha256 {test.locustfileSha256[:8]}…, file {changed[:8]}…" in drift
    assert drift.endswith(f"update with: loadmgr tests update api --locustfile '{path}'")
    with pytest.raises(ValidationFailed, match="--strict-locustfile"):
        plan_run(store, "api", RunOptions(strict_locustfile=True), "ann")
    # On a remote cluster the stored copy is not what runs: nothing to say.
    store.clusters.collection.insert_one({"id": "k8s", "baseUrl": "http://127.0.0.1:1"})
    remote = plan_run(store, "api", RunOptions(cluster="k8s", strict_locustfile=True), "ann")
    assert remote.locustfile_drift is None


def test_a_locustfile_given_once(client: mongomock.MongoClient, tmp_path: Path) -> None:
    store = _store(client)
    test = _test_with_file(store, tmp_path / "locustfile.py")
    other = tmp_path / "other.py"
    other.write_text(SOURCE + "# other\n")
    plan = plan_run(store, "api", RunOptions(locustfile=str(other)), "ann")
    assert plan.locustfile == other.read_text()
    assert plan.run.locustfileSha256 == hashlib.sha256(other.read_bytes()).hexdigest()
    assert plan.run.locustfileOverride == str(other)
    assert plan.run.locustfileContent == other.read_text()
    assert store.tests.find_by_id(test.id) == test  # the test is not changed
    store.clusters.collection.insert_one({"id": "k8s", "baseUrl": "http://127.0.0.1:1"})
    with pytest.raises(ValidationFailed, match="local cluster only"):
        plan_run(store, "api", RunOptions(locustfile=str(other), cluster="k8s"), "ann")
    (tmp_path / "bad.py").write_text("def (:\n")
    with pytest.raises(ValidationFailed, match="syntax error"):
        plan_run(store, "api", RunOptions(locustfile=str(tmp_path / "bad.py")), "ann")
    with pytest.raises(ValidationFailed, match="not found"):
        plan_run(store, "api", RunOptions(locustfile=str(tmp_path / "none.py")), "ann")
