"""The locustfile a run uses (issue 15.3), with the real local Locust: a changed file is
said (or refused with --strict-locustfile), and --locustfile runs another file once."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import documents_of, error_line, ok
from tests.locust_servers import DEMO_LOCUSTFILE
from tests.polling import wait_for

pytestmark = pytest.mark.integration

COLLECTIONS = ("load_tests", "load_test_runs", "metrics_timeseries", "cluster_leases")
# Only the items API: a run of this file shows no `/` nor `/slow` request.
ITEMS_ONLY = """
from locust import HttpUser, constant, task


class ItemsUser(HttpUser):
    wait_time = constant(0.1)

    @task
    def items(self) -> None:
        self.client.get("/api/items")
"""


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _names(run: dict[str, Any]) -> set[str]:
    return {entry["name"] for entry in run["finalStats"]["requestStats"]}


@pytest.fixture
def test_file(cli: Any, target_server: Any, tmp_path: Path) -> Path:
    path = tmp_path / "locustfile.py"
    path.write_bytes(DEMO_LOCUSTFILE.read_bytes())
    created = cli(
        "tests", "create", "--name", "demo", "--target-url", target_server.url,
        "--locustfile", str(path), "--users", "2", "--spawn-rate", "2", "--duration", "3s",
        "-o", "json",
    )  # fmt: skip
    assert ok(created).json()["locustfileSha256"] == _sha(path)
    return path


def test_a_changed_locustfile_is_said_and_the_stored_copy_runs(
    cli: Any, mongo_db: Any, test_file: Path
) -> None:
    stored = _sha(test_file)
    quiet = ok(cli("runs", "start", "demo", "--workers", "0", "-o", "json"))
    assert "changed since" not in quiet.stderr
    test_file.write_text(ITEMS_ONLY)
    result = ok(cli("runs", "start", "demo", "--workers", "0", "-o", "json"))
    warnings = [line for line in result.stderr.splitlines() if "changed since" in line]
    assert warnings == [
        f"warning: {test_file} changed since the test stored it (stored sha256 {stored[:8]}…, "
        f"file {_sha(test_file)[:8]}…); update with: loadmgr tests update demo "
        f"--locustfile {test_file}"
    ]
    run = result.json()
    assert run["locustfileSha256"] == stored and run["locustfileOverride"] is None
    assert "/slow" in _names(run) or "/" in _names(run)  # the demo file ran, not the new one


def test_strict_locustfile_refuses_a_changed_one_and_writes_nothing(
    cli: Any, mongo_db: Any, test_file: Path
) -> None:
    test_file.write_text(ITEMS_ONLY)
    before = documents_of(mongo_db, COLLECTIONS)
    line = error_line(cli("runs", "start", "demo", "--strict-locustfile", "--detach"), 2)
    assert "changed since the test stored it" in line and "--strict-locustfile" in line
    assert documents_of(mongo_db, COLLECTIONS) == before


def test_locustfile_given_once_runs_and_is_recorded(
    cli: Any, mongo_db: Any, test_file: Path, tmp_path: Path
) -> None:
    other = tmp_path / "items.py"
    other.write_text(ITEMS_ONLY)
    test_before = mongo_db.load_tests.find_one({}, {"_id": False})
    result = ok(cli("runs", "start", "demo", "--workers", "0", "--locustfile", str(other),
                    "-o", "json"))  # fmt: skip
    assert "changed since" not in result.stderr
    run = result.json()
    assert run["locustfileSha256"] == _sha(other) and run["locustfileOverride"] == str(other)
    assert _names(run) == {"/api/items"}
    shown = ok(cli("runs", "show", run["id"])).stdout  # wrapped at 100 columns when piped
    assert "given once" in " ".join(shown.replace("│", " ").split())
    assert mongo_db.load_tests.find_one({}, {"_id": False}) == test_before
    listed = ok(cli("runs", "list", "-o", "json")).json()
    assert all("locustfileContent" not in listed_run for listed_run in listed)


def test_locustfile_given_once_on_a_detached_run(
    cli: Any, mongo_db: Any, test_file: Path, tmp_path: Path
) -> None:
    other = tmp_path / "items.py"
    other.write_text(ITEMS_ONLY)
    started = ok(cli("runs", "start", "demo", "--detach", "--workers", "0", "--interval", "1",
                     "--locustfile", str(other), "-o", "json")).json()  # fmt: skip
    assert started["locustfileSha256"] == _sha(other)

    def finished() -> bool:
        doc = mongo_db.load_test_runs.find_one({"id": started["id"]})
        return bool(doc and doc["status"] in ("Finished", "Failed"))

    assert wait_for(finished, timeout=90)
    run = ok(cli("runs", "show", started["id"][:8], "-o", "json")).json()
    assert run["status"] == "Finished", run.get("error")
    assert _names(run) == {"/api/items"}


def test_locustfile_given_once_refused_on_a_remote_cluster(
    cli: Any, mongo_db: Any, test_file: Path
) -> None:
    ok(cli("clusters", "add", "k8s", "--url", "http://127.0.0.1:9", "-q"))
    before = documents_of(mongo_db, COLLECTIONS)
    line = error_line(
        cli("runs", "start", "demo", "--cluster", "k8s", "--locustfile", str(test_file)), 2
    )
    assert "local cluster only" in line
    missing = error_line(cli("runs", "start", "demo", "--locustfile", "/nonexistent.py"), 2)
    assert "not found" in missing
    assert documents_of(mongo_db, COLLECTIONS) == before
