"""`loadmgr db migrate` on the Go control plane's database (issue 12): a dry run changes
nothing, a run converts every document, a second run changes nothing, and loadmgr's
commands work on the result."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.conftest import create_test_argv, error_line, ok
from tests.go_fixtures import (
    GO_COLLECTIONS,
    GO_TEST,
    RUN_AUTO,
    RUN_MANUAL,
    RUN_STOPPED,
    create_go_indexes,
    load_go_documents,
    require_fixtures,
)

pytestmark = pytest.mark.integration


def snapshot(db) -> dict[str, list[dict]]:
    return {name: list(db[name].find().sort("_id", 1)) for name in GO_COLLECTIONS}


def test_dry_run_changes_nothing(go_db, cli):
    before = snapshot(go_db)
    result = ok(cli("db", "migrate", "--dry-run", "-o", "json"))
    report = result.json()
    counts = {c["collection"]: c["converted"] for c in report["goImport"]["collections"]}
    assert counts == {
        "load_tests": 1,
        "load_test_runs": 3,
        "metrics_timeseries": 13,
        "script_revisions": 0,
    }
    assert "would convert test 'go-test-3'" in result.stderr
    assert snapshot(go_db) == before


def test_migrate_converts_everything_once(go_db, cli):
    first = ok(cli("db", "migrate", "-o", "json"))
    assert first.json()["goImport"]["converted"] == 17
    assert "load_tests: 1 Go documents, converted 1, skipped 0" in first.stderr
    test = go_db["load_tests"].find_one({}, {"_id": False})
    assert test["tenantId"] == "acct1" and test["envId"] == "dev" and test["version"] == 1
    assert test["targetUrl"].startswith("http://127.0.0.1") and "targeturl" not in test
    assert test["createdAt"].year == 2026
    assert "class Quick(HttpUser)" in test["locustfileContent"]
    assert (
        test["locustfileSha256"] == hashlib.sha256(test["locustfileContent"].encode()).hexdigest()
    )
    legacy = json.loads(test["metadata"]["legacy"])
    assert legacy["orgid"] == "org1" and test["metadata"]["team"] == "payments"
    stopped = go_db["load_test_runs"].find_one({"id": RUN_STOPPED})
    assert (stopped["status"], stopped["stopReason"]) == ("Finished", "user")
    assert stopped["verdict"] == "aborted" and stopped["testName"] == GO_TEST
    assert 0 < stopped["lastMetrics"]["errorRate"] < 1
    assert isinstance(stopped["lastMetrics"]["requestStats"], list)
    intervals = list(go_db["metrics_timeseries"].find({"loadTestRunId": RUN_AUTO}).sort("seq", 1))
    assert [i["seq"] for i in intervals] == [1, 2, 3, 4]
    stamps = [i["timestamp"] for i in intervals]
    assert stamps == sorted(stamps)
    assert all("totalRps" not in i and 0 <= i["errorRate"] < 1 for i in intervals)
    assert intervals[0]["tenantId"] == "acct1"

    converted = snapshot(go_db)
    again = ok(cli("db", "migrate", "-o", "json")).json()
    assert again["goImport"]["converted"] == 0
    assert snapshot(go_db) == converted


def test_commands_work_on_the_converted_history(go_db, cli, tmp_path):
    ok(cli("db", "migrate"))
    runs = ok(cli("runs", "list", "-o", "json")).json()
    assert {r["status"] for r in runs} == {"Finished"}
    ok(cli("runs", "show", RUN_STOPPED))
    ok(cli("metrics", "show", RUN_AUTO))
    compared = ok(cli("metrics", "compare", RUN_AUTO, RUN_MANUAL, "-o", "json"))
    assert compared.stdout
    ok(cli("metrics", "report", RUN_AUTO, "--html", str(tmp_path / "r.html")))
    assert "go-run-auto" in (tmp_path / "r.html").read_text()
    ok(cli("tests", "update", GO_TEST, "--description", "now loadmgr's"))
    ok(cli("tests", "baseline", GO_TEST, RUN_AUTO))
    assert go_db["load_tests"].find_one()["baselineRunId"] == RUN_AUTO


def test_tenant_from_org(go_db, cli):
    ok(cli("db", "migrate", "--tenant-from", "org"))
    assert go_db["load_tests"].find_one()["tenantId"] == "org1"
    assert go_db["metrics_timeseries"].find_one()["tenantId"] == "org1"


def test_a_new_run_of_a_converted_go_test_uses_its_stored_locustfile(go_db, cli, target_server):
    ok(cli("db", "migrate"))
    # The Go run's target is gone; the test is loadmgr's now and can be pointed elsewhere.
    ok(cli("tests", "update", GO_TEST, "--target-url", target_server.url))
    result = cli(
        "runs",
        "start",
        GO_TEST,
        "--duration",
        "3s",
        "--users",
        "2",
        "--spawn-rate",
        "2",
        "--interval",
        "1",
        "--cluster",
        "local",  # the Go cluster id is kept as it was: not a cluster loadmgr knows
        "--workers",
        "0",
        "-o",
        "json",
    )
    assert result.exit_code in (0, 1), result.stderr  # /missing fails by design
    run = result.json()
    assert run["status"] == "Finished" and run["finalStats"]["totals"]["requests"] > 0
    test = go_db["load_tests"].find_one({"name": GO_TEST})
    assert run["locustfileSha256"] == test["locustfileSha256"]
    last = go_db["load_test_runs"].find_one({"id": run["id"]})["lastMetrics"]
    assert {r["name"] for r in last["requestStats"]} >= {"/api/items"}


def test_the_migration_benchmark_runs(mongo_uri):
    from bench.go_migrate import measure

    result = measure(mongo_uri, runs=2, per_run=30, repeat=1)
    assert result["intervals"] == 60 and result["ratio"] > 0


def test_a_go_test_whose_name_is_taken_is_skipped_with_why(mongo_db, cli, tmp_path):
    require_fixtures()
    locustfile = tmp_path / "locustfile.py"
    locustfile.write_text("from locust import HttpUser\n")
    ok(
        cli(
            "--tenant",
            "acct1",
            "--env",
            "dev",
            *create_test_argv(GO_TEST, "http://127.0.0.1:9", locustfile),
        )
    )
    create_go_indexes(mongo_db)
    load_go_documents(mongo_db)
    result = ok(cli("db", "migrate", "-o", "json"))
    tests = result.json()["goImport"]["collections"][0]
    assert tests["converted"] == 0 and len(tests["skipped"]) == 1
    assert "same unique key" in tests["skipped"][0]["reason"]
    assert "skipped 1" in result.stderr and "6ca37aa8" in result.stderr
    # Left as it was, still readable; the other collections were converted.
    assert mongo_db["load_tests"].count_documents({"createdat": {"$exists": True}}) == 1
    assert mongo_db["load_test_runs"].count_documents({"createdat": {"$exists": True}}) == 0
    ok(cli("tests", "list", "-o", "json"))


def test_to_database_migrates_a_copy(go_db, cli):
    before = snapshot(go_db)
    copy_name = f"{go_db.name}_copy"
    try:
        result = ok(cli("db", "migrate", "--to-database", copy_name, "-o", "json"))
        assert result.json()["goImport"]["converted"] == 17
        assert snapshot(go_db) == before  # the original is left as it was
        copy = go_db.client[copy_name]
        assert copy["load_tests"].find_one()["tenantId"] == "acct1"
        assert copy["metrics_timeseries"].count_documents({"seq": {"$exists": True}}) == 13
        for bad in ("", "a/b", "x.y", "n" * 64):
            line = error_line(cli("db", "migrate", "--to-database", bad), 2)
            assert "invalid --to-database" in line
        again = cli("db", "migrate", "--to-database", copy_name)
        assert error_line(again, 5).startswith(f"error: database {copy_name!r} already")
    finally:
        go_db.client.drop_database(copy_name)


def test_progress_is_reported_per_collection(go_db):
    from loadmgr.models import Scope
    from loadmgr.service.migration.go_import import import_go_documents
    from loadmgr.store import Store

    seen: list[tuple[str, int, int]] = []
    import_go_documents(Store(go_db, Scope()), progress=lambda *a: seen.append(a))
    finals = {name: (done, total) for name, done, total in seen}
    assert finals == {
        "load_tests": (1, 1),
        "load_test_runs": (3, 3),
        "metrics_timeseries": (13, 13),
    }
    assert all(done <= total for _, done, total in seen)


def test_on_a_terminal_a_bar_replaces_the_per_document_lines(go_db, cli, monkeypatch):
    from types import SimpleNamespace

    from loadmgr.cli.db import commands as db_cmd

    monkeypatch.setattr(db_cmd, "sys", SimpleNamespace(stderr=SimpleNamespace(isatty=lambda: True)))
    result = ok(cli("db", "migrate"))
    assert "converted test" not in result.stderr
    assert "metrics_timeseries: 13 Go documents, converted 13, skipped 0" in result.stderr


def test_a_bad_tenant_from_changes_nothing(go_db, cli):
    before = snapshot(go_db)
    for args in (("--tenant-from", "team"), ("--tenant-from", "team", "--to-database", "x1")):
        line = error_line(cli("db", "migrate", *args), 2)
        assert "invalid --tenant-from 'team'" in line
    assert snapshot(go_db) == before
    assert "x1" not in go_db.client.list_database_names()
    assert go_db["loadmgr_meta"].count_documents({}) == 0


@pytest.mark.parametrize(
    "target",
    ["http://127.0.0.1:9/<x>", "http://127.0.0.1:99999/", "http://h/a\u202eb", "http://u:p@h/"],
)
def test_a_go_test_whose_target_a_run_would_refuse_is_skipped_with_why(mongo_db, cli, target):
    """The target URL rule (issue 21, item 13) reached through `db migrate`: a Go test
    whose target a run refuses was converted (`converted 1`) and could then never run.
    It is skipped with the rule's reason, as `tests create` refuses it; its runs are
    history and are converted."""
    require_fixtures()
    create_go_indexes(mongo_db)
    load_go_documents(mongo_db)
    mongo_db["load_tests"].update_one({"name": GO_TEST}, {"$set": {"targeturl": target}})
    result = ok(cli("db", "migrate", "-o", "json"))
    collections = {c["collection"]: c for c in result.json()["goImport"]["collections"]}
    tests = collections["load_tests"]
    assert tests["converted"] == 0 and len(tests["skipped"]) == 1, tests
    assert "target" in tests["skipped"][0]["reason"]
    assert "u:p@" not in result.stdout + result.stderr
    assert collections["load_test_runs"]["converted"] == 3
