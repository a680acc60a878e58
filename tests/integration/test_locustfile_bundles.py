"""A locustfile of more than one file (issue 22, item 4): a package importing a sibling
module and reading a CSV beside it, stored whole on its test, versioned by one hash,
drift over every file, run on the real local Locust from runs/RUN/locustfile/, and with
the same requests as plain `locust --headless -f DIR` on the same target."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loadmgr.models.documents import bundle_sha256
from tests.conftest import documents_of, error_line, ok
from tests.locust_servers import running_locust
from tests.shape_locustfiles import stop_when_done

pytestmark = pytest.mark.integration

COLLECTIONS = ("load_tests", "load_test_runs", "metrics_timeseries", "cluster_leases")
# Each user makes one request per CSV row, then idles: the counts do not depend on timing.
LOCUSTFILE = """
import gevent
from locust import HttpUser, constant, task

import common


class CsvUser(HttpUser):
    wait_time = constant(0)

    def on_start(self) -> None:
        self.rows = common.rows()

    @task
    def walk(self) -> None:
        if not self.rows:
            gevent.sleep(3600)  # done: idle until the run stops (users that all stop by
            return  # themselves can turn a master `stopped` before loadmgr sees it run)
        row = self.rows.pop(0)
        self.client.get(row["path"], name=row["name"])
"""
COMMON = """
import csv
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def rows() -> list[dict[str, str]]:
    with open(os.path.join(HERE, "data", "paths.csv"), newline="") as file:
        return list(csv.DictReader(file))
"""
ROWS = [("items", "/api/items")] * 5 + [("home", "/")] * 3 + [("missing", "/missing")] * 2
USERS = 2


def write_package(folder: Path) -> Path:
    (folder / "data").mkdir(parents=True)
    (folder / "__init__.py").write_text("")
    (folder / "locustfile.py").write_text(LOCUSTFILE)
    (folder / "_common_shadow.py").write_text("raise RuntimeError('never imported')\n")
    (folder / "common.py").write_text(COMMON)
    csv = "name,path\n" + "".join(f"{name},{path}\n" for name, path in ROWS)
    (folder / "data" / "paths.csv").write_text(csv)
    # Left out of the bundle: compiled files, hidden files, a symlink out of the folder.
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "common.cpython-311.pyc").write_bytes(b"\0junk")
    (folder / ".env").write_text("SECRET=1\n")
    (folder / "outside.txt").symlink_to(folder.parent / "elsewhere.txt")
    (folder.parent / "elsewhere.txt").write_text("not ours\n")
    return folder


def _files(folder: Path) -> list[tuple[str, bytes]]:
    names = ["__init__.py", "_common_shadow.py", "common.py", "data/paths.csv", "locustfile.py"]
    return [(name, (folder / name).read_bytes()) for name in names]


def _counts(request_stats: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """(requests, failures) per name, from a run's finalStats."""
    return {entry["name"]: (entry["numRequests"], entry["numFailures"]) for entry in request_stats}


def _locust_counts(stats: list[dict[str, Any]]) -> dict[str, tuple[int, int]]:
    """The same from plain Locust's `--json`."""
    return {
        entry["name"]: (entry["num_requests"], entry["num_failures"])
        for entry in stats
        if entry["name"] != "Aggregated"
    }


def plain_locust(folder: Path, host: str, cwd: Path) -> dict[str, tuple[int, int]]:
    """Plain `locust --headless -f DIR` on the same target: its own counts (--json). The
    package's test ends itself once its requests are made (`stop_when_done`), within 60 s."""
    done = subprocess.run(
        [sys.executable, "-m", "locust", "--headless", "-f", str(folder), "-u", str(USERS),
         "-r", str(USERS), "-t", "60s", "--host", host, "--json", "--skip-log-setup"],
        cwd=cwd, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr.decode()[-2000:]  # 1: failures happened
    return _locust_counts(json.loads(done.stdout))


def test_a_package_is_stored_whole_and_runs_like_plain_locust(
    cli: Any, mongo_db: Any, target_server: Any, tmp_path: Path, isolated_env: Path
) -> None:
    folder = write_package(tmp_path / "pkg")
    # Ended once every row is requested (the duration a deadline): counts, not speed.
    with (folder / "locustfile.py").open("a", encoding="utf-8") as file:
        file.write(stop_when_done(USERS * len(ROWS)))
    created = ok(cli(
        "tests", "create", "--name", "pkg", "--target-url", target_server.url,
        "--locustfile", str(folder), "--users", str(USERS), "--spawn-rate", str(USERS),
        "--duration", "60s", "-o", "json",
    )).json()  # fmt: skip
    bundle = created["locustfileBundle"]
    assert bundle["entries"] == ["."]
    assert sorted(f["path"] for f in bundle["files"]) == [name for name, _ in _files(folder)]
    assert created["locustfileSha256"] == bundle_sha256(_files(folder))
    assert created["locustfileContent"] is None

    before = target_server.counts()
    run = ok(cli("runs", "start", "pkg", "--workers", "1", "-o", "json")).json()
    assert run["status"] == "Finished", run.get("error")
    assert run["locustfileSha256"] == created["locustfileSha256"]
    ours = _counts(run["finalStats"]["requestStats"])
    # Every row once per user, as the package read them from its CSV.
    assert ours == {"items": (10, 0), "home": (6, 0), "missing": (4, 4)}
    written = isolated_env / "runs" / run["id"] / "locustfile"
    assert (written / "data" / "paths.csv").read_text() == (folder / "data/paths.csv").read_text()
    # Left out of the bundle, so never written back (Python may make its own __pycache__
    # there as Locust imports the package: its bytecode, not the decoy's junk).
    assert not (written / ".env").exists()
    decoy = written / "__pycache__" / "common.cpython-311.pyc"
    assert not decoy.exists() or decoy.read_bytes() != b"\0junk"

    seen = {path: target_server.counts().get(path, 0) - before.get(path, 0)
            for path in ("/api/items", "/", "/missing")}  # fmt: skip
    assert seen == {"/api/items": 10, "/": 6, "/missing": 4}
    assert plain_locust(folder, target_server.url, tmp_path) == ours


def test_drift_is_seen_in_any_file_of_a_folder(
    cli: Any, mongo_db: Any, target_server: Any, tmp_path: Path
) -> None:
    folder = write_package(tmp_path / "pkg")
    ok(cli("tests", "create", "--name", "pkg", "--target-url", target_server.url,
           "--locustfile", str(folder), "-q"))  # fmt: skip
    (folder / "data" / "paths.csv").write_text("name,path\nitems,/api/items\n")
    before = documents_of(mongo_db, COLLECTIONS)
    line = error_line(cli("runs", "start", "pkg", "--strict-locustfile", "--detach"), 2)
    assert "changed since the test stored it" in line
    (folder / "data" / "paths.csv").unlink()
    assert "changed since" in error_line(cli("runs", "start", "pkg", "--strict-locustfile"), 2)
    (folder / "extra.py").write_text("X = 1\n")
    assert documents_of(mongo_db, COLLECTIONS) == before


def test_several_files_and_a_folder_given_once(
    cli: Any, mongo_db: Any, target_server: Any, tmp_path: Path
) -> None:
    folder = write_package(tmp_path / "pkg")
    ok(cli("tests", "create", "--name", "one", "--target-url", target_server.url,
           "--locustfile", str(folder / "locustfile.py"), "-q"))  # fmt: skip
    # a.py,b.py as Locust's -f takes it: relative to the folder they share.
    pair = f"{folder / 'locustfile.py'},{folder / 'common.py'}"
    stored = ok(cli("tests", "update", "one", "--locustfile", pair, "-o", "json")).json()
    assert stored["locustfileBundle"]["entries"] == ["locustfile.py", "common.py"]
    assert stored["locustfileContent"] is None
    run = ok(cli("runs", "start", "one", "--workers", "0", "--duration", "3s",
                 "--locustfile", str(folder), "-o", "json")).json()  # fmt: skip
    assert run["status"] == "Finished", run.get("error")
    assert run["locustfileOverride"] == str(folder)
    assert _counts(run["finalStats"]["requestStats"])["items"] == (50, 0)  # 10 users


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        (lambda f: [(f / f"m{i}.py").write_text("") for i in range(201)], "more than 200 files"),
        (lambda f: (f / "big.bin").write_bytes(b"\1" * 4_000_001), "larger than 4 MB"),
        (lambda f: (f / "bad.py").write_text("def (:\n"), "syntax error"),
        (lambda f: (f / "data.csv").write_text("a\n"), "no Python file"),
        (lambda f: os.mkfifo(f / "pipe.py"), "is a named pipe (FIFO), not a file"),
        (lambda f: (f / "latin.py").write_bytes(b"# caf\xe9\n"), "is not UTF-8 text"),
    ],
)
def test_a_folder_past_its_bounds_is_refused(
    cli: Any, mongo_db: Any, tmp_path: Path, setup: Any, words: str
) -> None:
    folder = tmp_path / "pkg"
    folder.mkdir()
    setup(folder)
    before = documents_of(mongo_db, COLLECTIONS)
    line = error_line(cli("tests", "create", "--name", "x", "--target-url", "http://h",
                          "--locustfile", str(folder)), 2)  # fmt: skip
    assert words in line
    assert documents_of(mongo_db, COLLECTIONS) == before


def test_a_remote_master_is_checked_by_the_hash_of_what_it_loaded(
    cli: Any, mongo_db: Any, target_server: Any, tmp_path: Path
) -> None:
    """The plugin's info route tells the hash of what the master's -f named (a folder, or
    one file beside the plugin), by loadmgr's rule; `runs start` on that cluster compares it
    with the test's: another is a warning and an event, refused with --strict-locustfile."""
    from loadmgr.locust.client import LocustClient

    folder = write_package(tmp_path / "pkg")
    single = tmp_path / "single.py"
    single.write_text(LOCUSTFILE.replace("import common", "import csv as common"))
    with running_locust(single, workers=0, log_dir=tmp_path / "one") as one:
        info = LocustClient(one.base_url).plugin_info()
        assert info is not None and info["locustfile_sha256"] == bundle_free_sha256(single)
    with running_locust(folder, workers=1, log_dir=tmp_path / "remote") as remote:
        ok(cli("clusters", "add", "remote", "--url", remote.base_url, "-q"))
        created = ok(cli(
            "tests", "create", "--name", "pkg", "--target-url", target_server.url,
            "--locustfile", str(folder), "--cluster", "remote", "--users", str(USERS),
            "--spawn-rate", str(USERS), "--duration", "4s", "-o", "json",
        )).json()  # fmt: skip
        info = LocustClient(remote.base_url).plugin_info()
        assert info is not None and info["locustfile_sha256"] == created["locustfileSha256"]
        same = cli("runs", "start", "pkg", "--strict-locustfile", "-o", "json")
        assert same.exit_code == 0, same.stderr
        assert "another locustfile" not in same.stderr
        assert not [e for e in same.json()["events"] if e["kind"] == "locustfile-mismatch"]

        # The test's copy changes here; the master still runs what it loaded.
        (folder / "data" / "paths.csv").write_text("name,path\nitems,/api/items\n")
        ok(cli("tests", "update", "pkg", "--locustfile", str(folder), "-q"))
        before = documents_of(mongo_db, COLLECTIONS)
        line = error_line(cli("runs", "start", "pkg", "--strict-locustfile"), 2)
        assert "runs another locustfile than test 'pkg' stored" in line
        assert "(--strict-locustfile)" in line
        assert documents_of(mongo_db, COLLECTIONS) == before
        warned = cli("runs", "start", "pkg", "-o", "json")
        assert warned.exit_code == 0, warned.stderr
        assert "warning: cluster 'remote' runs another locustfile" in warned.stderr
        kinds = [e["kind"] for e in warned.json()["events"]]
        assert kinds.count("locustfile-mismatch") == 1
        assert warned.json()["status"] == "Finished"


def bundle_free_sha256(path: Path) -> str:
    """One file's hash, as loadmgr stores it: the sha256 of its bytes."""
    import hashlib

    return hashlib.sha256(path.read_bytes()).hexdigest()
