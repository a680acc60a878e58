"""Secrets never appear: header and login secrets, the MongoDB password, in outputs, logs and
command lines; the unattended password apart from the URI."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult, ok
from tests.conftest import error_line as one_error
from tests.integration.security.conftest import (
    LOGIN_PASSWORD,
    LOGIN_USER,
    ODD_PASSWORD,
    TOKEN,
    WRITER_PASSWORD,
    Cli,
    admin_db,
    assert_no_secret,
    remote_test,
)
from tests.locust_servers import DEMO_LOCUSTFILE, pid_alive
from tests.polling import wait_for
from tests.secure_servers import Certificates, LocustProxy, SecureMongo

pytestmark = pytest.mark.integration


# --- secrets never appear --------------------------------------------------------------------


def collector_cmdline(db: Any, run_id: str) -> tuple[int, str]:
    pid = int(db.load_test_runs.find_one({"id": run_id})["collector"]["pid"])
    return pid, Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def run_detached_to_the_end(cli: Cli, db: Any, test: str) -> tuple[list[CliResult], str, str]:
    """Start a detached run with debugging on; its outputs, collector command line and log."""
    started = ok(cli("--debug", "runs", "start", test, "--detach", "--interval", "2", "-o", "json"))
    run = started.json()
    assert isinstance(run, dict)
    pid, cmdline = collector_cmdline(db, run["id"])
    assert wait_for(
        lambda: db.load_test_runs.find_one({"id": run["id"]})["status"] == "Finished", 60
    )
    assert wait_for(lambda: not pid_alive(pid), timeout=30)
    shown = ok(cli("runs", "show", run["id"], "-o", "json"))
    table = ok(cli("runs", "show", run["id"]))
    assert shown.json()["finalStats"]["totals"]["requests"] > 0  # type: ignore[index]
    log = (Path(os.environ["LOADMGR_HOME"]) / "logs" / f"run-{run['id']}.log").read_text()
    return [started, shown, table], cmdline, log


def test_header_secret_never_appears(
    cli: Cli,
    auth_mongo: SecureMongo,
    certificates: Certificates,
    locust: Any,
    target: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOADMGR_SECRET_LOCUST_TOKEN", TOKEN)
    monkeypatch.setenv("LOADMGR_DEBUG", "1")  # the detached collector inherits it
    with LocustProxy(
        locust.base_url, certificate=certificates.server, header=("X-Token", TOKEN)
    ) as proxy:
        added = ok(
            cli(
                "clusters",
                "add",
                "guarded",
                "--url",
                proxy.url,
                "--header-name",
                "X-Token",
                "--header-env",
                "LOADMGR_SECRET_LOCUST_TOKEN",
                "--ca-bundle",
                str(certificates.ca_file),
                "-o",
                "json",
            )
        )
        db = admin_db(auth_mongo)
        stored = db.locust_clusters.find_one({"id": "guarded"}, {"_id": False})
        assert stored["auth"]["secretEnv"] == "LOADMGR_SECRET_LOCUST_TOKEN"
        outputs = [
            added,
            ok(cli("clusters", "show", "guarded", "-o", "json")),
            ok(cli("clusters", "show", "guarded")),
            ok(cli("clusters", "list", "-o", "json")),
            ok(cli("clusters", "list")),
            ok(cli("--debug", "clusters", "check", "guarded", "-o", "json")),
        ]
        remote_test(cli, "guarded-test", target.url, "guarded")
        runs, cmdline, log = run_detached_to_the_end(cli, db, "guarded-test")
        # A wrong token: the proxy refuses, and the error names no secret either.
        monkeypatch.setenv("LOADMGR_SECRET_LOCUST_TOKEN", "not-the-token")
        refused = cli("--debug", "clusters", "check", "guarded")
        assert refused.exit_code == 6 and "HTTP 401" in refused.stderr
    assert proxy.log.passed and len(proxy.log.refused) == 1  # the header really was sent
    assert_no_secret(json.dumps(stored, default=str), cmdline, log)
    for result in [*outputs, *runs, refused]:
        assert_no_secret(result.stdout, result.stderr)
    assert "runs collect" in cmdline and "mongodb://" not in cmdline
    documents = [*db.load_test_runs.find({}, {"_id": 0}), *db.load_tests.find({}, {"_id": 0})]
    assert_no_secret(json.dumps(documents, default=str))


def test_login_secrets_never_appear(
    cli: Cli, auth_mongo: SecureMongo, locust: Any, target: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOADMGR_SECRET_LOGIN_USER", LOGIN_USER)
    monkeypatch.setenv("LOADMGR_SECRET_LOGIN_PASSWORD", LOGIN_PASSWORD)
    monkeypatch.setenv("LOADMGR_DEBUG", "1")
    with LocustProxy(locust.base_url, login=(LOGIN_USER, LOGIN_PASSWORD)) as proxy:
        added = ok(
            cli(
                "clusters",
                "add",
                "behind-login",
                "--url",
                proxy.url,
                "--login-user-env",
                "LOADMGR_SECRET_LOGIN_USER",
                "--login-password-env",
                "LOADMGR_SECRET_LOGIN_PASSWORD",
                "-o",
                "json",
            )
        )
        db = admin_db(auth_mongo)
        stored = db.locust_clusters.find_one({"id": "behind-login"}, {"_id": False})
        outputs = [
            added,
            ok(cli("clusters", "show", "behind-login", "-o", "json")),
            ok(cli("clusters", "list")),
            ok(cli("clusters", "check", "behind-login", "-o", "json")),
        ]
        remote_test(cli, "login-test", target.url, "behind-login")
        runs, cmdline, log = run_detached_to_the_end(cli, db, "login-test")
        monkeypatch.setenv("LOADMGR_SECRET_LOGIN_PASSWORD", "wrong-password")
        refused = cli("--debug", "clusters", "check", "behind-login")
        assert refused.exit_code == 6 and "login to Locust" in refused.stderr
    assert any(line == "POST /login_submit" for line in proxy.log.passed)
    for text in (json.dumps(stored, default=str), cmdline, log):
        assert_no_secret(text)
        assert LOGIN_USER not in text
    for result in [*outputs, *runs, refused]:
        assert_no_secret(result.stdout, result.stderr)
        assert LOGIN_USER not in result.stdout + result.stderr


def test_mongodb_password_never_printed_anywhere(
    cli: Cli, auth_mongo: SecureMongo, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = [
        cli("db", "status"),
        cli("db", "status", "-o", "json"),
        cli("--debug", "tests", "show", "missing"),
        cli("runs", "show", "missing"),
        cli("--debug", "clusters", "check", "missing"),
        cli("tests", "create", "--name", "x", "--target-url", "ftp://nope"),
    ]
    assert [r.exit_code for r in results] == [0, 0, 4, 4, 4, 2]
    base = f"mongodb://writer:{WRITER_PASSWORD}@127.0.0.1:{auth_mongo.port}/?"
    for bad in ("authMechanism=MONGODB-X509", "authSource="):  # refused by pymongo
        monkeypatch.setenv("LOADMGR_MONGO_URI", base + bad)
        results.append(cli("--debug", "tests", "list"))
        assert results[-1].exit_code == 2 and "invalid MongoDB URI" in results[-1].stderr
    for result in results:
        assert_no_secret(result.stdout, result.stderr)


# --- unattended credentials: the password apart from the URI (issue 11) ---------------------


def user_only_uri(server: SecureMongo, user: str) -> str:
    """The server's URI naming `user`, without a password."""
    return f"mongodb://{user}@127.0.0.1:{server.port}/?authSource=admin&{server.query}"


def private_file(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o600)
    return path


def test_password_file_and_variable_are_merged_in_memory(
    cli: Cli, auth_mongo: SecureMongo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOADMGR_MONGO_URI", user_only_uri(auth_mongo, "odd"))
    # No password anywhere: refused at once, with where to give it.
    results = [cli("tests", "list")]
    assert "A password is required" in one_error(results[0], 2)
    assert "hint: give the password with --mongo-password-file" in results[0].stderr
    password_file = private_file(tmp_path / "mongo-password", ODD_PASSWORD + "\n")
    results.append(
        ok(
            cli(
                "--debug", "--mongo-password-file", str(password_file),
                "tests", "create", "--name", "via-file", "--target-url", "http://127.0.0.1:1",
                "--cluster", "local", "--locustfile", str(DEMO_LOCUSTFILE),
            )
        )
    )
    monkeypatch.setenv("LOADMGR_MONGO_PASSWORD_FILE", str(password_file))
    results.append(ok(cli("--debug", "tests", "show", "via-file", "-o", "json")))
    monkeypatch.delenv("LOADMGR_MONGO_PASSWORD_FILE")
    monkeypatch.setenv("LOADMGR_MONGO_PASSWORD", ODD_PASSWORD)
    results.append(ok(cli("--debug", "tests", "list", "-o", "json")))
    monkeypatch.delenv("LOADMGR_MONGO_PASSWORD")
    config = tmp_path / "config.toml"
    config.write_text(f'[profiles.default]\nmongo_password_file = "{password_file}"\n')
    results.append(ok(cli("--config", str(config), "db", "status", "-o", "json")))
    results.append(ok(cli("--config", str(config), "tests", "list", "-o", "json")))
    listed = results[-1].json()
    assert isinstance(listed, list) and [t["name"] for t in listed] == ["via-file"]
    # A wrong password in the file: exit 3, and the wrong one is not printed either.
    wrong = private_file(tmp_path / "wrong", "Wr0ng-pw-31f9d0\n")
    refused = cli("--debug", "--mongo-password-file", str(wrong), "tests", "list")
    assert refused.exit_code == 3 and "Wr0ng-pw-31f9d0" not in refused.stderr
    for result in [*results, refused]:
        assert_no_secret(result.stdout, result.stderr)


def test_detached_collector_gets_the_password_file_not_the_password(
    cli: Cli,
    auth_mongo: SecureMongo,
    locust: Any,
    target: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LOADMGR_MONGO_URI", user_only_uri(auth_mongo, "writer"))
    password_file = private_file(tmp_path / "mongo-password", WRITER_PASSWORD + "\n")
    monkeypatch.setenv("LOADMGR_MONGO_PASSWORD_FILE", str(password_file))
    ok(cli("clusters", "add", "plain", "--url", locust.base_url))
    remote_test(cli, "unattended", target.url, "plain")
    started = ok(cli("runs", "start", "unattended", "--detach", "--interval", "2", "-o", "json"))
    run = started.json()
    assert isinstance(run, dict)
    db = admin_db(auth_mongo)
    pid = int(db.load_test_runs.find_one({"id": run["id"]})["collector"]["pid"])
    proc = Path(f"/proc/{pid}")
    cmdline, environ = (proc / "cmdline").read_bytes(), (proc / "environ").read_bytes()
    assert wait_for(
        lambda: db.load_test_runs.find_one({"id": run["id"]})["status"] == "Finished", 60
    )
    assert wait_for(lambda: not pid_alive(pid), timeout=30)
    assert b"LOADMGR_MONGO_PASSWORD_FILE=" + str(password_file).encode() in environ
    for text in (cmdline, environ):
        assert WRITER_PASSWORD.encode() not in text
    assert_no_secret(started.stdout, started.stderr)
