"""MongoDB with SCRAM-SHA-256 authentication and over TLS: what works, and the exit code of
what does not."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from tests.conftest import create_test_argv, ok
from tests.conftest import error_line as one_error
from tests.integration.security.conftest import DB, Cli, admin_db, assert_no_secret, use_server
from tests.locust_servers import DEMO_LOCUSTFILE
from tests.secure_servers import Certificates, SecureMongo

pytestmark = pytest.mark.integration


# --- MongoDB with SCRAM-SHA-256 authentication ----------------------------------------------


def test_loadmgr_works_with_scram_credentials(
    cli: Cli, auth_mongo: SecureMongo, tmp_path: Path
) -> None:
    created = ok(
        cli(
            *create_test_argv("authed", "http://127.0.0.1:1", DEMO_LOCUSTFILE),
            "-o",
            "json",
        )
    )
    listed = ok(cli("tests", "list", "-o", "json"))
    assert [t["name"] for t in listed.json()] == ["authed"]  # type: ignore[union-attr]
    shown = ok(cli("tests", "show", "authed"))
    status = ok(cli("db", "status", "-o", "json"))
    assert status.json()["inUse"] is False  # type: ignore[index]
    stored = admin_db(auth_mongo).load_tests.find_one({"name": "authed"})
    assert stored["createdBy"] == "tester"
    for result in (created, listed, shown, status):
        assert_no_secret(result.stdout, result.stderr)


@pytest.mark.parametrize("debug", ["", "--debug", "LOADMGR_DEBUG"])
def test_wrong_password_is_exit_3_and_never_printed(
    cli: Cli, auth_server: SecureMongo, monkeypatch: pytest.MonkeyPatch, debug: str
) -> None:
    wrong = "Wr0ng-pw-0e4d7b"
    monkeypatch.setenv("LOADMGR_MONGO_URI", auth_server.uri("writer", wrong))
    monkeypatch.setenv("LOADMGR_DATABASE", DB)
    args = ["--debug"] if debug == "--debug" else []
    if debug == "LOADMGR_DEBUG":
        monkeypatch.setenv("LOADMGR_DEBUG", "1")
    result = cli(*args, "tests", "list")
    assert result.exit_code == 3, result.stderr
    assert wrong not in result.stdout + result.stderr
    assert "authentication failed" in result.stderr
    assert "writer:***@" in result.stderr
    if not debug:
        one_error(result, 3)


def test_missing_credentials_are_refused(
    cli: Cli, auth_server: SecureMongo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOADMGR_MONGO_URI", auth_server.uri())
    monkeypatch.setenv("LOADMGR_DATABASE", DB)
    line = one_error(cli("tests", "list"), 3)
    assert "MongoDB refused the request" in line and "requires authentication" in line


def test_read_only_role_can_read_but_not_write(
    cli: Cli, auth_mongo: SecureMongo, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok(
        cli(
            *create_test_argv("readable", "http://127.0.0.1:1", DEMO_LOCUSTFILE),
        )
    )
    monkeypatch.setenv("LOADMGR_MONGO_URI", auth_mongo.uri("reader"))
    assert ok(cli("tests", "list", "-q")).stdout.strip()
    ok(cli("tests", "show", "readable"))
    ok(cli("runs", "list"))
    refused = cli(
        *create_test_argv("nope", "http://127.0.0.1:1", DEMO_LOCUSTFILE),
    )
    line = one_error(refused, 3)
    assert "MongoDB refused the request" in line and "not authorized" in line
    assert_no_secret(refused.stderr)
    assert one_error(cli("tests", "update", "readable", "--users", "3"), 3)
    assert one_error(cli("tests", "delete", "readable", "--yes"), 3)
    assert one_error(cli("clusters", "add", "k", "--url", "http://127.0.0.1:1"), 3)
    assert one_error(cli("runs", "start", "readable"), 3)  # before any Locust is started
    assert not any((Path(os.environ["LOADMGR_HOME"]) / "runs").glob("*"))
    stored = admin_db(auth_mongo).load_tests
    assert admin_db(auth_mongo).load_test_runs.count_documents({}) == 0
    assert [d["name"] for d in stored.find()] == ["readable"]
    assert stored.find_one()["defaultUsers"] == 10


# --- MongoDB over TLS ------------------------------------------------------------------------


def test_tls_through_the_options(
    cli: Cli, tls_server: SecureMongo, certificates: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_server(tls_server, monkeypatch)
    ca = ("--mongo-tls-ca-file", str(certificates.ca_file))
    ok(
        cli(
            *ca,
            *create_test_argv("tls", "http://127.0.0.1:1", DEMO_LOCUSTFILE),
        )
    )
    assert ok(cli("tests", "list", "-o", "json", *ca)).json()[0]["name"] == "tls"  # type: ignore[index]
    monkeypatch.setenv("LOADMGR_MONGO_TLS_CA_FILE", str(certificates.ca_file))
    ok(cli("tests", "show", "tls"))


def test_tls_through_the_uri_and_a_profile(
    cli: Cli,
    tls_server: SecureMongo,
    certificates: Certificates,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("LOADMGR_DATABASE", f"lm_{uuid.uuid4().hex[:8]}")
    uri = tls_server.uri(tls="true", tlsCAFile=str(certificates.ca_file))
    ok(cli("--mongo-uri", uri, "tests", "list"))
    config = tmp_path / "config.toml"
    config.write_text(
        "[profiles.secure]\n"
        f'mongo_uri = "{tls_server.uri()}"\n'
        f'mongo_tls_ca_file = "{certificates.ca_file}"\n'
    )
    ok(cli("--config", str(config), "--profile", "secure", "tests", "list"))


@pytest.mark.parametrize("how", ["no CA", "another CA", "plain client"])
def test_tls_without_the_right_ca_is_exit_3(
    cli: Cli,
    tls_server: SecureMongo,
    certificates: Certificates,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    args = {
        "no CA": ["--mongo-uri", tls_server.uri(tls="true")],
        "another CA": [
            "--mongo-uri",
            tls_server.uri(),
            "--mongo-tls-ca-file",
            str(certificates.other_ca_file),
        ],
        "plain client": ["--mongo-uri", tls_server.uri()],
    }[how]
    result = cli(*args, "--server-selection-timeout", "1000", "tests", "list")
    line = one_error(result, 3)
    assert "cannot reach MongoDB" in line and len(line) < 300
    if how != "plain client":
        assert "certificate verify failed" in line
        assert "hint: TLS failed: check --mongo-tls-ca-file" in result.stderr


def test_client_certificate(
    cli: Cli, mtls_server: SecureMongo, certificates: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_server(mtls_server, monkeypatch)
    ca = ("--mongo-tls-ca-file", str(certificates.ca_file))
    ok(cli(*ca, "--mongo-tls-cert-key-file", str(certificates.client_file), "tests", "list"))
    uri = mtls_server.uri(
        tls="true",
        tlsCAFile=str(certificates.ca_file),
        tlsCertificateKeyFile=str(certificates.client_file),
    )
    ok(cli("--mongo-uri", uri, "tests", "list"))
    # The server hangs up on a client without a certificate (how depends on the TLS
    # version's timing): either way one line, and a hint naming the option.
    refused = cli(*ca, "--server-selection-timeout", "1000", "tests", "list")
    assert "cannot reach MongoDB" in one_error(refused, 3)
    assert "--mongo-tls-cert-key-file" in refused.stderr
