"""`loadmgr tests …` and `loadmgr clusters …` against a real MongoDB-wire server."""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import os
import re
import subprocess
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from loadmgr.errors import Conflict
from loadmgr.models import Scope
from loadmgr.service.definitions.tests import update_test
from loadmgr.store import Store
from tests.conftest import CliResult, create_test_argv, loadmgr_command, ok
from tests.conftest import error_line as fails
from tests.integration.conftest import Cli, created
from tests.secret_allowance import allow_secrets


@pytest.fixture(autouse=True)
def _machine_allows_these_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The variables (and files) these tests name: allowed, as a machine's owner allows them."""
    allow_secrets(monkeypatch, "LOCUST_PROXY_TOKEN", "LM_USER", "LM_PASS")

# Every test here talks to the real server, never to an embedded one.
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("mongo_uri")]


@pytest.fixture
def create(cli: Cli, locustfile: Path) -> Callable[..., dict[str, Any]]:
    """`create("api", "--tag", "x")` → the stored document, as printed by `-o json`."""
    return functools.partial(created, cli, locustfile)


def stored(mongo_db: Any, test_id: str) -> dict[str, Any]:
    doc = mongo_db["load_tests"].find_one({"id": test_id}, {"_id": False})
    assert doc is not None
    return dict(doc)


ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def parse_iso(text: str) -> datetime:
    assert ISO_UTC.match(text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- create / show / list / update / delete ----------------------------------------------


def test_create_prints_the_stored_document(
    create: Callable[..., dict[str, Any]], mongo_db: Any, locustfile: Path
) -> None:
    doc = create(
        "api",
        "--description",
        "the API",
        "--tag",
        "smoke",
        "--tag",
        "nightly",
        "--users",
        "20",
        "--spawn-rate",
        "2.5",
        "--duration",
        "5m",
        "--max-duration",
        "1h30m",
        "--scenario",
        "sc-1",
        "--meta",
        "team=core",
        "--threshold",
        "p95<500ms",
        "--threshold",
        "GET /api/items:p95<300ms",
    )
    db_doc = stored(mongo_db, doc["id"])
    assert doc["name"] == "api"
    assert doc["tags"] == ["smoke", "nightly"]
    assert (doc["defaultUsers"], doc["defaultSpawnRate"]) == (20, 2.5)
    assert (doc["defaultDurationSec"], doc["maxDurationSec"]) == (300, 5400)
    assert doc["metadata"] == {"team": "core"}
    assert doc["thresholds"] == ["p95<500ms", "GET /api/items:p95<300ms"]
    assert doc["locustClusterId"] == "local"
    assert (doc["tenantId"], doc["envId"]) == (None, None)
    assert doc["createdBy"] == doc["updatedBy"] == "tester"
    assert doc["locustfileSha256"] == hashlib.sha256(locustfile.read_bytes()).hexdigest()
    assert db_doc["locustfileContent"] == locustfile.read_text()
    # The printed document is the stored one, dates as ISO-8601 UTC.
    assert isinstance(db_doc["createdAt"], datetime)
    for key in ("createdAt", "updatedAt"):
        assert parse_iso(doc[key]) == db_doc[key]
    assert {k: v for k, v in doc.items() if not k.endswith("At")} == {
        k: v for k, v in db_doc.items() if not k.endswith("At")
    }


def test_show_by_id_and_by_name_prints_the_same_document(
    cli: Cli, create: Callable[..., dict[str, Any]]
) -> None:
    doc = create("api")
    by_id = ok(cli("tests", "show", doc["id"], "-o", "json"))
    by_name = ok(cli("tests", "show", "api", "-o", "json"))
    assert by_id.json() == by_name.json() == {**doc}
    assert by_id.stderr == ""


def test_show_table_for_people(cli: Cli, create: Callable[..., dict[str, Any]]) -> None:
    doc = create("api", "--tag", "smoke")
    result = ok(cli("tests", "show", "api"))
    assert doc["id"] in result.stdout
    assert "just now by tester" in result.stdout
    assert "\x1b[" not in result.stdout  # no colour when stdout is not a terminal


def test_output_formats_parse_back(cli: Cli, create: Callable[..., dict[str, Any]]) -> None:
    first = create("first", "--tag", "a", "--tag", "b", "--meta", "k=v")
    second = create("second")

    as_json = ok(cli("tests", "list", "-o", "json"))
    docs = json.loads(as_json.stdout)
    assert [d["id"] for d in docs] == [second["id"], first["id"]]
    assert as_json.stderr == ""
    assert all("locustfileContent" not in d for d in docs)

    lines = ok(cli("tests", "list", "-o", "jsonl")).stdout.splitlines()
    assert [json.loads(line)["name"] for line in lines] == ["second", "first"]
    assert json.loads(lines[1]) == docs[1]

    rows = list(csv.DictReader(io.StringIO(ok(cli("tests", "list", "-o", "csv")).stdout)))
    assert [r["name"] for r in rows] == ["second", "first"]
    assert rows[1]["tags"] == "a;b"
    assert rows[1]["metadata"] == "k=v"  # one column, whatever the keys (docs/output.md)
    assert rows[1]["id"] == first["id"]

    assert ok(cli("tests", "list", "-q")).stdout.split() == [second["id"], first["id"]]
    assert ok(cli("tests", "show", "first", "-q")).stdout == first["id"] + "\n"
    one = list(csv.DictReader(io.StringIO(ok(cli("tests", "show", "first", "-o", "csv")).stdout)))
    assert len(one) == 1 and one[0]["id"] == first["id"]
    shown = ok(cli("tests", "show", "first", "-o", "jsonl")).stdout.splitlines()
    assert len(shown) == 1 and json.loads(shown[0])["id"] == first["id"]

    table = ok(cli("tests", "list")).stdout
    assert "first" in table and "second" in table and "NAME" in table


def test_output_format_from_the_environment(
    cli: Cli, create: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    create("api")
    monkeypatch.setenv("LOADMGR_OUTPUT", "jsonl")
    assert json.loads(ok(cli("tests", "list")).stdout)["name"] == "api"
    assert isinstance(ok(cli("tests", "list", "-o", "json")).json(), list)  # option wins


def test_json_on_stdout_notices_on_stderr(cli: Cli) -> None:
    result = ok(
        cli("clusters", "add", "k8s", "--url", "https://m:8089", "--insecure", "-o", "json")
    )
    assert json.loads(result.stdout)["verifyTls"] is False
    assert "not be verified" in result.stderr
    empty = ok(cli("tests", "list", "-o", "json"))
    assert empty.json() == []
    assert empty.stderr == ""
    assert "no tests" in ok(cli("tests", "list")).stderr


def test_list_filters(cli: Cli, create: Callable[..., dict[str, Any]]) -> None:
    ok(cli("clusters", "add", "k8s", "--url", "http://127.0.0.1:1"))
    create("checkout-api", "--tag", "smoke", "--tag", "api")
    create("Checkout-web", "--tag", "smoke")
    create("search", "--tag", "api", "--cluster", "k8s")

    def names(*args: str) -> list[str]:
        return [d["name"] for d in ok(cli("tests", "list", "-o", "json", *args)).json()]

    assert names() == ["search", "Checkout-web", "checkout-api"]
    assert names("--tag", "smoke") == ["Checkout-web", "checkout-api"]
    assert names("--tag", "smoke", "--tag", "api") == ["checkout-api"]
    assert names("--tag", "none") == []
    assert names("--name", "CHECKOUT") == ["Checkout-web", "checkout-api"]
    assert names("--name", "-a") == ["checkout-api"]
    assert names("--name", ".*") == []  # a substring, not a pattern
    assert names("--cluster", "k8s") == ["search"]
    assert names("--cluster", "local", "--tag", "api") == ["checkout-api"]
    assert names("--limit", "1") == ["search"]
    fails(cli("tests", "list", "--limit", "-1"), 2)


def test_list_limit_default_50_and_0_for_all(cli: Cli, mongo_db: Any) -> None:
    base = datetime(2024, 1, 1, tzinfo=timezone.utc)
    mongo_db["load_tests"].insert_many(
        [
            {
                "id": f"id-{i:02d}",
                "name": f"t{i:02d}",
                "targetUrl": "http://h",
                "tags": [],
                "createdAt": base + timedelta(minutes=i),
                "updatedAt": base,
                "version": 1,
                "tenantId": None,
                "envId": None,
            }
            for i in range(55)
        ]
    )
    default = ok(cli("tests", "list", "-q")).stdout.split()
    assert len(default) == 50
    assert default[:3] == ["id-54", "id-53", "id-52"]  # newest first
    assert len(ok(cli("tests", "list", "-q", "--limit", "0")).stdout.split()) == 55
    assert ok(cli("tests", "list", "-q", "--limit", "2")).stdout.split() == ["id-54", "id-53"]


def test_update_changes_only_the_given_fields(
    cli: Cli, create: Callable[..., dict[str, Any]], mongo_db: Any
) -> None:
    before = create("api", "--tag", "x", "--description", "old", "--meta", "a=1")
    after = ok(
        cli(
            "tests",
            "update",
            "api",
            "--users",
            "7",
            "--description",
            "new",
            "--user",
            "bob",
            "-o",
            "json",
        )
    ).json()
    assert isinstance(after, dict)
    assert (after["defaultUsers"], after["description"]) == (7, "new")
    assert after["version"] == before["version"] + 1
    assert after["updatedBy"] == "bob"
    assert parse_iso(after["updatedAt"]) > parse_iso(before["updatedAt"])
    assert (after["createdAt"], after["createdBy"]) == (before["createdAt"], "tester")
    unchanged = set(before) - {"defaultUsers", "description", "version", "updatedAt", "updatedBy"}
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}
    assert after == ok(cli("tests", "show", before["id"], "-o", "json")).json()
    assert stored(mongo_db, before["id"])["defaultUsers"] == 7


def test_update_by_id_meta_merges_tags_replace(
    cli: Cli, create: Callable[..., dict[str, Any]]
) -> None:
    doc = create("api", "--tag", "x", "--meta", "a=1", "--threshold", "p95<1s")
    updated = ok(
        cli(
            "tests",
            "update",
            doc["id"],
            "--meta",
            "b=2",
            "--tag",
            "y",
            "--threshold",
            "rps>=10",
            "--name",
            "renamed",
            "-o",
            "json",
        )
    ).json()
    assert isinstance(updated, dict)
    assert updated["metadata"] == {"a": "1", "b": "2"}
    assert updated["tags"] == ["y"]
    assert updated["thresholds"] == ["rps>=10"]
    assert updated["name"] == "renamed"
    cleared = ok(
        cli("tests", "update", "renamed", "--clear-tags", "--clear-thresholds", "-o", "json")
    ).json()
    assert isinstance(cleared, dict)
    assert (cleared["tags"], cleared["thresholds"]) == ([], [])
    fails(cli("tests", "show", "api"), 4)


def test_update_locustfile_stores_new_content_and_hash(
    cli: Cli, create: Callable[..., dict[str, Any]], mongo_db: Any, tmp_path: Path
) -> None:
    doc = create("api")
    new = tmp_path / "v2.py"
    new.write_text("from locust import HttpUser\n# version 2\n")
    updated = ok(cli("tests", "update", "api", "--locustfile", str(new), "-o", "json")).json()
    assert isinstance(updated, dict)
    expected = hashlib.sha256(new.read_bytes()).hexdigest()
    assert updated["locustfileSha256"] == expected != doc["locustfileSha256"]
    assert updated["locustfile"] == str(new)
    db_doc = stored(mongo_db, doc["id"])
    assert db_doc["locustfileContent"] == new.read_text()
    assert db_doc["locustfileSha256"] == expected


def test_update_refusals_change_nothing(
    cli: Cli, create: Callable[..., dict[str, Any]], mongo_db: Any
) -> None:
    doc = create("api", "--duration", "5m", "--max-duration", "10m")
    create("other")
    before = stored(mongo_db, doc["id"])
    fails(cli("tests", "update", "api"), 2)  # nothing to update
    fails(cli("tests", "update", "api", "--duration", "11m"), 2)  # above the maximum
    fails(cli("tests", "update", "api", "--max-duration", "1m"), 2)
    fails(cli("tests", "update", "api", "--users", "0"), 2)
    fails(cli("tests", "update", "api", "--target-url", "ftp://x"), 2)
    fails(cli("tests", "update", "api", "--cluster", "nope"), 4)
    assert "already exists" in fails(cli("tests", "update", "api", "--name", "other"), 5)
    assert stored(mongo_db, doc["id"]) == before


def test_delete_by_id_and_by_name(
    cli: Cli, create: Callable[..., dict[str, Any]], mongo_db: Any
) -> None:
    one, two = create("one"), create("two")
    result = ok(cli("tests", "delete", "one", "--yes"))
    assert "deleted test 'one'" in result.stderr and result.stdout == ""
    assert ok(cli("tests", "delete", two["id"], "-y", "-q")).stdout.strip() == two["id"]
    assert mongo_db["load_tests"].count_documents({}) == 0
    fails(cli("tests", "show", one["id"]), 4)


def test_delete_refuses_a_test_with_runs_unless_force(
    cli: Cli, create: Callable[..., dict[str, Any]], mongo_db: Any
) -> None:
    doc, other = create("api"), create("other")
    now = datetime.now(timezone.utc)
    runs, metrics = mongo_db["load_test_runs"], mongo_db["metrics_timeseries"]
    for run_id, test_id in (("run-1", doc["id"]), ("run-2", doc["id"]), ("run-x", other["id"])):
        runs.insert_one(
            {
                "id": run_id,
                "loadTestId": test_id,
                "status": "Finished",
                "tenantId": None,
                "envId": None,
                "createdAt": now,
            }
        )
        metrics.insert_one(
            {"loadTestRunId": run_id, "timestamp": now, "seq": 1, "tenantId": None, "envId": None}
        )

    line = fails(cli("tests", "delete", "api", "--yes"), 5)
    assert "2 run(s)" in line
    assert mongo_db["load_tests"].count_documents({"id": doc["id"]}) == 1
    assert runs.count_documents({}) == 3 and metrics.count_documents({}) == 3

    result = ok(cli("tests", "delete", "api", "--force", "--yes"))
    assert "2 run(s)" in result.stderr
    assert mongo_db["load_tests"].count_documents({"id": doc["id"]}) == 0
    assert runs.count_documents({"loadTestId": doc["id"]}) == 0
    assert metrics.count_documents({"loadTestRunId": {"$in": ["run-1", "run-2"]}}) == 0
    # Another test's runs and metrics are untouched.
    assert runs.count_documents({"id": "run-x"}) == 1
    assert metrics.count_documents({"loadTestRunId": "run-x"}) == 1


def test_delete_force_refuses_a_run_in_progress(
    cli: Cli, create: Callable[..., dict[str, Any]], mongo_db: Any
) -> None:
    doc = create("api")
    mongo_db["load_test_runs"].insert_one(
        {
            "id": "run-live",
            "loadTestId": doc["id"],
            "status": "Running",
            "tenantId": None,
            "envId": None,
            "createdAt": datetime.now(timezone.utc),
        }
    )
    assert "in progress" in fails(cli("tests", "delete", "api", "--force", "--yes"), 5)
    assert mongo_db["load_tests"].count_documents({}) == 1
    assert mongo_db["load_test_runs"].count_documents({}) == 1


# --- tenant and environment scope --------------------------------------------------------


def test_scope_stamps_and_isolates(cli: Cli, locustfile: Path, mongo_db: Any) -> None:
    def create_in(tenant: str, env: str, name: str) -> dict[str, Any]:
        result = ok(
            cli(
                "--tenant",
                tenant,
                "--env",
                env,
                *create_test_argv(name, "http://127.0.0.1:1", locustfile),
                "-o",
                "json",
            )
        )
        doc = result.json()
        assert isinstance(doc, dict)
        return doc

    theirs = create_in("b", "prod", "shared-name")
    ours = create_in("a", "prod", "shared-name")  # same name, other tenant: fine
    assert (theirs["tenantId"], theirs["envId"]) == ("b", "prod")
    assert stored(mongo_db, theirs["id"])["tenantId"] == "b"
    before = stored(mongo_db, theirs["id"])

    in_a = ("--tenant", "a")
    listed = ok(cli("tests", "list", "-o", "json", *in_a)).json()
    assert [d["id"] for d in listed] == [ours["id"]]  # type: ignore[union-attr]
    shown = ok(cli("tests", "show", "shared-name", "-o", "json", *in_a)).json()
    assert shown["id"] == ours["id"]  # type: ignore[index]
    for ref in (theirs["id"],):
        assert "not found in tenant 'a'" in fails(cli("tests", "show", ref, *in_a), 4)
        fails(cli("tests", "update", ref, "--users", "99", *in_a), 4)
        fails(cli("tests", "delete", ref, "--yes", "--force", *in_a), 4)
    # Another environment of the same tenant sees nothing either.
    assert ok(cli("tests", "list", "-q", "--tenant", "a", "--env", "dev")).stdout == ""
    fails(cli("tests", "show", "shared-name", "--tenant", "a", "--env", "dev"), 4)
    assert stored(mongo_db, theirs["id"]) == before

    # Without a scope both exist; the shared name is ambiguous, ids are not.
    assert len(ok(cli("tests", "list", "-q")).stdout.split()) == 2
    assert "several tests" in fails(cli("tests", "show", "shared-name"), 2)
    ok(cli("tests", "show", theirs["id"]))


def test_scope_from_the_environment(
    cli: Cli, create: Callable[..., dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    create("unscoped")
    monkeypatch.setenv("LOADMGR_TENANT", "t1")
    doc = create("scoped")
    assert doc["tenantId"] == "t1"
    assert ok(cli("tests", "list", "-q")).stdout.split() == [doc["id"]]


# --- concurrent updates ------------------------------------------------------------------


@pytest.fixture
def store(mongo_uri: str) -> Any:
    opened = Store.connect(mongo_uri, os.environ["LOADMGR_DATABASE"], Scope(), 5000)
    yield opened
    opened.close()


def _race_before_first_write(
    monkeypatch: pytest.MonkeyPatch, store: Store, other_writer: Callable[[], None]
) -> None:
    """Make `other_writer` land between our read of the test and our first write."""
    real_update = store.tests.update
    raced: list[bool] = []

    def update(test_id: str, version: int, changes: dict[str, Any]) -> Any:
        if not raced:
            raced.append(True)
            other_writer()
        return real_update(test_id, version, changes)

    monkeypatch.setattr(store.tests, "update", update)


def test_concurrent_change_to_other_fields_is_kept(
    cli: Cli, create: Callable[..., dict[str, Any]], store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = create("api")
    _race_before_first_write(
        monkeypatch,
        store,
        lambda: ok(cli("tests", "update", "api", "--description", "theirs")) and None,
    )
    updated = update_test(store, "me", doc["id"], {"defaultUsers": 7})
    assert (updated.defaultUsers, updated.description) == (7, "theirs")
    assert updated.version == 3
    fresh = store.tests.find_by_id(doc["id"])
    assert fresh is not None and fresh.model_dump() == updated.model_dump()


def test_concurrent_change_to_the_same_field_is_a_conflict(
    cli: Cli, create: Callable[..., dict[str, Any]], store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = create("api")
    _race_before_first_write(
        monkeypatch, store, lambda: ok(cli("tests", "update", "api", "--users", "3")) and None
    )
    with pytest.raises(Conflict, match="changed by someone else"):
        update_test(store, "me", doc["id"], {"defaultUsers": 7})
    fresh = store.tests.find_by_id(doc["id"])
    assert fresh is not None
    assert (fresh.defaultUsers, fresh.version) == (3, 2)


def test_concurrent_metadata_keys_merge(
    cli: Cli, create: Callable[..., dict[str, Any]], store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = create("api", "--meta", "team=core")
    _race_before_first_write(
        monkeypatch, store, lambda: ok(cli("tests", "update", "api", "--meta", "b=2")) and None
    )
    updated = update_test(store, "me", doc["id"], {}, metadata={"a": "1"})
    assert updated.metadata == {"team": "core", "a": "1", "b": "2"}


def test_concurrent_change_to_the_same_metadata_key_is_a_conflict(
    cli: Cli, create: Callable[..., dict[str, Any]], store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    doc = create("api")
    _race_before_first_write(
        monkeypatch, store, lambda: ok(cli("tests", "update", "api", "--meta", "a=2")) and None
    )
    with pytest.raises(Conflict, match="metadata.a"):
        update_test(store, "me", doc["id"], {}, metadata={"a": "1"})
    fresh = store.tests.find_by_id(doc["id"])
    assert fresh is not None and fresh.metadata == {"a": "2"}


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*loadmgr_command(), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def _finish(process: subprocess.Popen[str]) -> CliResult:
    stdout, stderr = process.communicate(timeout=60)
    return CliResult(process.returncode, stdout, stderr)


def test_concurrent_processes_updating_different_fields_all_land(
    create: Callable[..., dict[str, Any]], mongo_db: Any
) -> None:
    doc = create("api")
    changes = [
        ("--users", "3"),
        ("--spawn-rate", "2.5"),
        ("--description", "d"),
        ("--scenario", "sc"),
    ]
    processes = [_spawn("tests", "update", doc["id"], *change, "-q") for change in changes]
    results = [_finish(p) for p in processes]
    for result in results:
        assert result.exit_code == 0, result.stderr
    final = stored(mongo_db, doc["id"])
    assert final["defaultUsers"] == 3
    assert final["defaultSpawnRate"] == 2.5
    assert final["description"] == "d"
    assert final["scenarioId"] == "sc"
    assert final["version"] == 1 + len(changes)


def test_concurrent_processes_updating_the_same_field_never_lose_silently(
    create: Callable[..., dict[str, Any]], mongo_db: Any
) -> None:
    doc = create("api")
    values = ["alpha", "beta", "gamma"]
    processes = [_spawn("tests", "update", doc["id"], "--description", v) for v in values]
    results = dict(zip(values, (_finish(p) for p in processes), strict=True))
    winners = [v for v, r in results.items() if r.exit_code == 0]
    for value, result in results.items():
        if value not in winners:
            assert result.exit_code == 5, result.stderr
            assert result.stderr.startswith("error: ")
            assert "changed by someone else" in result.stderr
    final = stored(mongo_db, doc["id"])
    # Every success is one version; the last one to succeed is what is stored.
    assert final["version"] == 1 + len(winners)
    assert final["description"] in winners


# --- clusters ----------------------------------------------------------------------------


def test_clusters_add_list_show_remove(cli: Cli, mongo_db: Any) -> None:
    added = ok(
        cli(
            "clusters",
            "add",
            "k8s",
            "--url",
            "http://127.0.0.1:8089/",
            "--description",
            "the big one",
            "-o",
            "json",
        )
    ).json()
    assert isinstance(added, dict)
    assert (added["id"], added["baseUrl"]) == ("k8s", "http://127.0.0.1:8089")
    assert added["createdBy"] == "tester"
    assert ok(cli("clusters", "show", "k8s", "-o", "json")).json() == added
    # The built-in `local` first (issue 15.2), then the registered ones as stored.
    assert ok(cli("clusters", "list", "-q")).stdout.split() == ["local", "k8s"]
    built_in, *registered = ok(cli("clusters", "list", "-o", "json")).json()
    assert built_in["id"] == "local" and built_in["builtIn"] is True
    assert registered == [added]
    assert "http://127.0.0.1:8089" in ok(cli("clusters", "list")).stdout
    assert "the big one" in ok(cli("clusters", "show", "k8s")).stdout
    ok(cli("clusters", "remove", "k8s"))
    assert mongo_db["locust_clusters"].count_documents({}) == 0
    fails(cli("clusters", "show", "k8s"), 4)


def test_clusters_refusals(cli: Cli, create: Callable[..., dict[str, Any]], mongo_db: Any) -> None:
    ok(cli("clusters", "add", "k8s", "--url", "http://127.0.0.1:8089"))
    assert "already exists" in fails(cli("clusters", "add", "k8s", "--url", "http://h"), 5)
    fails(cli("clusters", "show", "nope"), 4)
    fails(cli("clusters", "remove", "nope"), 4)
    assert "built-in" in fails(cli("clusters", "add", "local", "--url", "http://h"), 2)
    fails(cli("clusters", "add", "bad", "--url", "ftp://h"), 2)
    fails(cli("clusters", "add", "bad", "--url", "http://h", "--header-name", "X-Token"), 2)
    assert mongo_db["locust_clusters"].count_documents({}) == 1

    create("uses-it", "--cluster", "k8s")
    assert "uses-it" in fails(cli("clusters", "remove", "k8s"), 5)
    assert mongo_db["locust_clusters"].count_documents({"id": "k8s"}) == 1
    ok(cli("tests", "update", "uses-it", "--cluster", "local"))
    ok(cli("clusters", "remove", "k8s"))


def test_cluster_header_auth_stores_only_the_variable_name(
    cli: Cli, mongo_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOCUST_PROXY_TOKEN", "s3cret-token-value")
    result = ok(
        cli(
            "clusters",
            "add",
            "k8s",
            "--url",
            "https://127.0.0.1:8443",
            "--header-name",
            "X-Token",
            "--header-env",
            "LOCUST_PROXY_TOKEN",
            "-o",
            "json",
        )
    )
    assert "s3cret-token-value" not in result.stdout + result.stderr
    doc = mongo_db["locust_clusters"].find_one({"id": "k8s"}, {"_id": False})
    assert doc["auth"] == {
        "type": "header",
        "headerName": "X-Token",
        "secretEnv": "LOCUST_PROXY_TOKEN",
        "secretFile": None,
        "usernameEnv": None,
        "passwordEnv": None,
        "loginPath": None,
    }
    assert "s3cret-token-value" not in json.dumps(doc, default=str)
    shown = ok(cli("clusters", "show", "k8s"))
    assert "LOCUST_PROXY_TOKEN" in shown.stdout
    assert "s3cret-token-value" not in shown.stdout


def test_cluster_login_auth_stores_only_variable_names(
    cli: Cli, mongo_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LM_USER", "alice")
    monkeypatch.setenv("LM_PASS", "hunter2-secret")
    ok(
        cli(
            "clusters",
            "add",
            "k8s",
            "--url",
            "http://127.0.0.1:8089",
            "--login-user-env",
            "LM_USER",
            "--login-password-env",
            "LM_PASS",
        )
    )
    doc = mongo_db["locust_clusters"].find_one({"id": "k8s"}, {"_id": False})
    assert doc["auth"]["type"] == "login"
    assert (doc["auth"]["usernameEnv"], doc["auth"]["passwordEnv"]) == ("LM_USER", "LM_PASS")
    assert "hunter2-secret" not in json.dumps(doc, default=str)
    assert "alice" not in json.dumps(doc, default=str)


def test_clusters_are_scoped(cli: Cli) -> None:
    ok(cli("clusters", "add", "k8s", "--url", "http://127.0.0.1:8089", "--tenant", "b"))
    assert ok(cli("clusters", "list", "-q", "--tenant", "a")).stdout.split() == ["local"]
    fails(cli("clusters", "show", "k8s", "--tenant", "a"), 4)
    fails(cli("clusters", "remove", "k8s", "--tenant", "a"), 4)
    assert ok(cli("clusters", "list", "-q", "--tenant", "b")).stdout.split() == ["local", "k8s"]
