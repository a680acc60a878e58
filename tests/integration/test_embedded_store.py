"""The embedded store: with no MongoDB URI, SecantusDB is started once and reused."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from loadmgr.store.embedded import pid_alive, port_open
from tests.conftest import CliResult, loadmgr_command
from tests.integration.conftest import created as create
from tests.polling import wait_for

pytestmark = pytest.mark.integration

Cli = Callable[..., CliResult]


def status(cli: Cli) -> dict[str, Any]:
    result = cli("db", "status", "-o", "json")
    assert result.exit_code == 0, result.stderr
    doc = result.json()
    assert isinstance(doc, dict)
    return doc


def server_pids(home: Path) -> list[int]:
    """Live SecantusDB processes whose storage is under `home`."""
    marker = str(home / "db" / "data").encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"secantusd" in cmdline and marker in cmdline and state != "Z":
            pids.append(int(entry.name))
    return pids


def test_embedded_store_lifecycle(
    cli: Cli, embedded_home: Path, locustfile: Path
) -> None:
    assert "LOADMGR_MONGO_URI" not in os.environ
    before = status(cli)
    assert before["running"] is False
    assert (before["pid"], before["port"]) == (None, None)
    assert before["dataDir"] == str(embedded_home / "db" / "data")
    assert before["inUse"] is False  # stopped: not in use (issue 15), started on first need
    assert "running" in cli("db", "status").stdout
    assert cli("db", "status", "-q").stdout == ""  # no uri while stopped, not "None"

    # The first command that needs the database starts it, in the background.
    doc = create(cli, locustfile, "api")
    first = status(cli)
    assert first["running"] is True and first["inUse"] is True
    assert first["uri"].startswith("mongodb://127.0.0.1:")
    assert server_pids(embedded_home) == [first["pid"]]
    assert (embedded_home / "db" / "data").is_dir()

    # Later commands reuse it.
    assert cli("tests", "show", "api", "-o", "json").json() == doc
    assert cli("tests", "list", "-q").stdout.split() == [doc["id"]]
    again = status(cli)
    assert (again["pid"], again["port"]) == (first["pid"], first["port"])
    started = cli("db", "start", "-o", "json")
    assert started.exit_code == 0
    assert started.json()["pid"] == first["pid"]  # type: ignore[index]

    # `db stop` stops it; the data stays for the next start.
    stopped = cli("db", "stop")
    assert stopped.exit_code == 0
    assert "stopped" in stopped.stderr
    assert wait_for(lambda: not pid_alive(first["pid"]), timeout=20)
    assert wait_for(lambda: not port_open(first["port"]), timeout=5)
    assert status(cli)["running"] is False
    assert "not running" in cli("db", "stop").stderr

    assert cli("tests", "show", "api", "-o", "json").json() == doc
    restarted = status(cli)
    assert restarted["running"] is True
    assert restarted["pid"] != first["pid"]


def test_db_start_then_commands_use_it(cli: Cli, embedded_home: Path, locustfile: Path) -> None:
    started = cli("db", "start", "-q")
    assert started.exit_code == 0, started.stderr
    uri = started.stdout.strip()
    assert uri.startswith("mongodb://127.0.0.1:")
    create(cli, locustfile, "api")
    assert status(cli)["uri"] == uri


def test_two_commands_at_once_start_one_server(embedded_home: Path) -> None:
    env = dict(os.environ)
    processes = [
        subprocess.Popen([*loadmgr_command(), "tests", "list", "-o", "json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    results = [p.communicate(timeout=90) for p in processes]
    for process, (stdout, stderr) in zip(processes, results, strict=True):
        assert process.returncode == 0, stderr
        assert stdout.strip() == "[]"
    pids = server_pids(embedded_home)
    assert len(pids) == 1, pids
    state = status_from_subprocess(env)
    assert state["pid"] == pids[0]


def status_from_subprocess(env: dict[str, str]) -> dict[str, Any]:
    import json

    result = subprocess.run([*loadmgr_command(), "db", "status", "-o", "json"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert isinstance(doc, dict)
    return doc


def _refused_with_3(result: CliResult) -> str:
    assert result.exit_code == 3, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ")
    return result.stderr


def test_unwritable_home_exits_3(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, locustfile: Path
) -> None:
    regular_file = tmp_path / "not-a-directory"
    regular_file.write_text("")
    home = regular_file / "home"
    monkeypatch.setenv("LOADMGR_HOME", str(home))
    stderr = _refused_with_3(cli("tests", "list"))
    assert str(home / "db") in stderr
    assert "LOADMGR_HOME" in stderr
    _refused_with_3(cli("db", "start"))
    stderr = _refused_with_3(
        cli("tests", "create", "--name", "api", "--target-url", "http://127.0.0.1:1",
            "--locustfile", str(locustfile))
    )
    assert not home.exists()


def test_data_directory_that_is_a_file_exits_3(cli: Cli, embedded_home: Path) -> None:
    (embedded_home / "db").mkdir(parents=True)
    (embedded_home / "db" / "data").write_text("")
    stderr = _refused_with_3(cli("db", "start"))
    assert "cannot start the embedded MongoDB server" in stderr
    assert str(embedded_home / "db" / "server.log") in stderr


def test_server_that_exits_at_start_exits_3_with_its_log(
    cli: Cli, embedded_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "secantusd-broken"
    broken.write_text("#!/bin/sh\necho 'storage engine failed: disk on fire' >&2\nexit 7\n")
    broken.chmod(0o755)
    monkeypatch.setattr("loadmgr.store.embedded.server_executable", lambda: str(broken))
    stderr = _refused_with_3(cli("tests", "list"))
    assert "exited at start (code 7)" in stderr
    assert "disk on fire" in stderr  # why
    assert str(embedded_home / "db" / "server.log") in stderr  # and where to look
    assert status(cli)["running"] is False


def test_a_configured_uri_does_not_start_the_embedded_store(
    cli: Cli, mongo_uri: str, embedded_home: Path
) -> None:
    assert cli("tests", "list", "-q").exit_code == 0
    doc = status(cli)
    assert (doc["running"], doc["inUse"]) == (False, False)
    assert server_pids(embedded_home) == []



def test_a_data_folder_opens_with_or_without_the_oplog(tmp_path: Path) -> None:
    """The embedded server runs without its replica set (`--standalone`: no oplog); a data
    folder a server with one wrote (loadmgr's before) opens as it is, and back again."""
    import pymongo

    from tests.conftest import start_secantus, stop_process

    data = tmp_path / "data"
    for number, standalone in enumerate([False, True, False], 1):
        process, port = start_secantus(data, standalone=standalone)
        try:
            client: Any = pymongo.MongoClient(
                f"mongodb://127.0.0.1:{port}/?directConnection=true", tz_aware=True
            )
            assert ("setName" in client.admin.command("hello")) is not standalone
            things = client["db"]["things"]
            things.insert_one({"n": number})
            assert sorted(d["n"] for d in things.find()) == list(range(1, number + 1))
            client.close()
        finally:
            stop_process(process)
