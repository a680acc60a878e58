"""loadmgr beside the Go control plane, on one database (issue 12): indexes coexist in
either order, and loadmgr's uniqueness rules never reject the Go service's documents."""

from __future__ import annotations

import pytest

from loadmgr.models import Scope
from loadmgr.store import Store
from tests.conftest import ok
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
            "tests",
            "create",
            "--name",
            "go-test-3",
            "--target-url",
            "http://127.0.0.1:9",
            "--locustfile",
            str(locustfile),
            "-o",
            "json",
        )
    )
    # loadmgr's own names stay unique among its tests.
    again = cli(
        "tests",
        "create",
        "--name",
        "go-test-3",
        "--target-url",
        "http://127.0.0.1:9",
        "--locustfile",
        str(locustfile),
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
