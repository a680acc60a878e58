"""loadmgr beside the Go control plane, on one database (issue 12): indexes coexist in
either order, and loadmgr's uniqueness rules never reject the Go service's documents."""

from __future__ import annotations

import pytest

from loadmgr.models import Scope
from loadmgr.store import Store
from tests.conftest import create_test_argv, ok
from tests.go_fixtures import create_go_indexes, load_go_documents, require_fixtures

pytestmark = pytest.mark.integration


@pytest.fixture
def go_db(mongo_db):
    require_fixtures()
    create_go_indexes(mongo_db)
    load_go_documents(mongo_db)
    return mongo_db


def _loadmgr_writes(cli, tmp_path) -> None:
    locustfile = tmp_path / "locustfile.py"
    locustfile.write_text(
        "from locust import HttpUser, task\n\nclass U(HttpUser):\n"
        "    @task\n    def t(self):\n        self.client.get('/')\n"
    )
    ok(
        cli(
            *create_test_argv("go-test-3", "http://127.0.0.1:9", locustfile),
            "-o",
            "json",
        )
    )
    # loadmgr's own names stay unique among its tests.
    again = cli(
        *create_test_argv("go-test-3", "http://127.0.0.1:9", locustfile),
    )
    assert again.exit_code == 5, again.stderr
    ok(cli("clusters", "add", "remote1", "--url", "http://127.0.0.1:9", "-o", "json"))


def test_loadmgr_writes_after_the_go_indexes_exist(go_db, cli, tmp_path):
    _loadmgr_writes(cli, tmp_path)
    names = set(go_db["load_tests"].index_information())
    # No second index on keys the Go service already indexes.
    assert "id_unique" not in names and "created_desc" not in names
    assert {"id_unique_idx", "created_at_idx", "scope_name_unique"} <= names
    assert go_db["load_tests"].count_documents({}) == 2


def test_go_indexes_created_after_loadmgr_s(mongo_db, cli, tmp_path):
    require_fixtures()
    _loadmgr_writes(cli, tmp_path)
    create_go_indexes(mongo_db)  # what the Go service does when it starts: must not fail
    load_go_documents(mongo_db)
    ok(cli("tests", "list", "-o", "json"))


def test_uniqueness_rules_leave_go_documents_alone(go_db):
    Store(go_db, Scope()).ensure_indexes()
    # Go intervals have no seq; Go tests no version: many of each may share (run, null)
    # or (null scope, name).
    runs = go_db["metrics_timeseries"]
    run_id = runs.find_one()["loadTestRunId"]
    runs.insert_many([{"loadTestRunId": run_id, "totalRps": 1.0} for _ in range(3)])
    go_db["load_tests"].insert_many(
        [{"id": f"go-{n}", "name": "go-test-3", "createdat": 0} for n in range(2)]
    )
    assert go_db["load_tests"].count_documents({"name": "go-test-3"}) == 3


OLD_LOADMGR_INDEXES = {
    "load_tests": [
        ([("id", 1)], "id_unique", {"unique": True}),
        ([("tenantId", 1), ("envId", 1), ("name", 1)], "scope_name_unique", {"unique": True}),
        ([("createdAt", -1)], "created_desc", {}),
    ],
    "load_test_runs": [
        ([("id", 1)], "id_unique", {"unique": True}),
        ([("loadTestId", 1), ("createdAt", -1)], "test_created", {}),
        ([("createdAt", -1)], "created_desc", {}),
        ([("status", 1)], "status", {}),
    ],
    "metrics_timeseries": [
        ([("loadTestRunId", 1), ("timestamp", 1)], "run_time", {}),
        ([("loadTestRunId", 1), ("seq", 1)], "run_seq_unique", {"unique": True}),
    ],
}


def test_db_migrate_replaces_an_older_loadmgr_s_indexes(mongo_db, cli):
    require_fixtures()
    for collection, specs in OLD_LOADMGR_INDEXES.items():
        for keys, name, options in specs:
            mongo_db[collection].create_index(keys, name=name, **options)
    # A database at schema 1: the index step is pending.
    mongo_db["loadmgr_meta"].insert_one({"_id": "schema", "version": 1})
    migrated = ok(cli("db", "migrate", "-o", "json"))
    assert "schema 2: indexes" in migrated.stderr
    metrics = mongo_db["metrics_timeseries"].index_information()
    assert metrics["run_seq_unique"]["partialFilterExpression"] == {"seq": {"$exists": True}}
    assert "run_time" not in metrics and "loadtestrun_timestamp_idx" in metrics
    tests = mongo_db["load_tests"].index_information()
    assert "partialFilterExpression" in tests["scope_name_unique"]
    assert {"id_unique_idx", "created_at_idx"} <= set(tests)
    # The Go service starts on it now, and its documents are all accepted.
    create_go_indexes(mongo_db)
    load_go_documents(mongo_db)
    assert mongo_db["metrics_timeseries"].count_documents({}) == 13
    assert ok(cli("db", "migrate", "-o", "json")).json()["steps"] == []
