"""Security: MongoDB with SCRAM and TLS, secrets that never show, https Locust, scope, audit.

Servers here are private to this module (SecantusDB with `--auth` or `--tls-*`, a Locust
standalone behind an https/auth proxy); certificates come from a throwaway trustme CA.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pymongo
import pytest

from tests.conftest import CliResult, ok
from tests.conftest import error_line as one_error
from tests.locust_servers import DEMO_LOCUSTFILE, pid_alive, running_locust, running_target
from tests.polling import wait_for
from tests.secure_servers import (
    Certificates,
    LocustProxy,
    MongoUser,
    SecureMongo,
    make_certificates,
    mongo_with_tls,
    mongo_with_users,
)

pytestmark = pytest.mark.integration

Cli = Callable[..., CliResult]

DB = "lm_secure"
ADMIN_PASSWORD = "Adm1n-pw-7f3a9c"
WRITER_PASSWORD = "Wr1ter-pw-5d2e8b"
READER_PASSWORD = "Re4der-pw-9c1f4a"
TOKEN = "tok-3b9f0c6e1d2a-SECRET"
LOGIN_USER = "locust-admin-e5c7"
LOGIN_PASSWORD = "L0gin-pw-a8d3f1"
# Every character a URI reserves: merged into one, it must be percent-encoded.
ODD_PASSWORD = "0dd:p@ss/w%rd?#&= 4e7b"
SECRETS = (
    ADMIN_PASSWORD, WRITER_PASSWORD, READER_PASSWORD, TOKEN, LOGIN_PASSWORD, ODD_PASSWORD
)


# --- servers, shared by the module ---------------------------------------------------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureMongo]:
    users = [
        MongoUser("root", ADMIN_PASSWORD, [{"role": "root", "db": "admin"}]),
        MongoUser("writer", WRITER_PASSWORD, [{"role": "readWrite", "db": DB}]),
        MongoUser("reader", READER_PASSWORD, [{"role": "read", "db": DB}]),
        MongoUser("odd", ODD_PASSWORD, [{"role": "readWrite", "db": DB}]),
    ]
    with mongo_with_users(tmp_path_factory.mktemp("auth") / "data", users) as server:
        yield server


@pytest.fixture
def auth_mongo(auth_server: SecureMongo, monkeypatch: pytest.MonkeyPatch) -> Iterator[SecureMongo]:
    """loadmgr pointed at the `--auth` server as `writer`; the database emptied afterwards."""
    monkeypatch.setenv("LOADMGR_MONGO_URI", auth_server.uri("writer"))
    monkeypatch.setenv("LOADMGR_DATABASE", DB)
    yield auth_server
    with pymongo.MongoClient(auth_server.uri("root"), serverSelectionTimeoutMS=5000) as admin:
        admin.drop_database(DB)


def admin_db(server: SecureMongo) -> Any:
    return pymongo.MongoClient(server.uri("root"), serverSelectionTimeoutMS=5000, tz_aware=True)[DB]


@pytest.fixture(scope="module")
def tls_server(
    tmp_path_factory: pytest.TempPathFactory, certificates: Certificates
) -> Iterator[SecureMongo]:
    with mongo_with_tls(tmp_path_factory.mktemp("tls") / "data", certificates) as server:
        yield server


@pytest.fixture(scope="module")
def mtls_server(
    tmp_path_factory: pytest.TempPathFactory, certificates: Certificates
) -> Iterator[SecureMongo]:
    root = tmp_path_factory.mktemp("mtls")
    with mongo_with_tls(root / "data", certificates, require_client_cert=True) as server:
        yield server


@pytest.fixture(scope="module")
def target() -> Iterator[Any]:
    with running_target() as server:
        yield server


@pytest.fixture(scope="module")
def locust(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One standalone Locust for the module; each run leaves it idle for the next."""
    with running_locust(DEMO_LOCUSTFILE, 0, log_dir=tmp_path_factory.mktemp("locust")) as cluster:
        yield cluster


# --- helpers -----------------------------------------------------------------------------


def assert_no_secret(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked into: {text[:400]!r}"


def remote_test(cli: Cli, name: str, target_url: str, cluster: str, *extra: str) -> dict[str, Any]:
    result = ok(
        cli(
            "tests",
            "create",
            "--name",
            name,
            "--target-url",
            target_url,
            "--cluster",
            cluster,
            "--locustfile",
            "deployed.py",
            "--users",
            "2",
            "--spawn-rate",
            "2",
            "--duration",
            "3s",
            *extra,
            "-o",
            "json",
        )
    )
    doc = result.json()
    assert isinstance(doc, dict)
    return doc


# --- MongoDB with SCRAM-SHA-256 authentication ----------------------------------------------


def test_loadmgr_works_with_scram_credentials(
    cli: Cli, auth_mongo: SecureMongo, tmp_path: Path
) -> None:
    created = ok(
        cli(
            "tests",
            "create",
            "--name",
            "authed",
            "--target-url",
            "http://127.0.0.1:1",
            "--locustfile",
            str(DEMO_LOCUSTFILE),
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
            "tests",
            "create",
            "--name",
            "readable",
            "--target-url",
            "http://127.0.0.1:1",
            "--locustfile",
            str(DEMO_LOCUSTFILE),
        )
    )
    monkeypatch.setenv("LOADMGR_MONGO_URI", auth_mongo.uri("reader"))
    assert ok(cli("tests", "list", "-q")).stdout.strip()
    ok(cli("tests", "show", "readable"))
    ok(cli("runs", "list"))
    refused = cli(
        "tests",
        "create",
        "--name",
        "nope",
        "--target-url",
        "http://127.0.0.1:1",
        "--locustfile",
        str(DEMO_LOCUSTFILE),
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
    monkeypatch.setenv("LOADMGR_MONGO_URI", tls_server.uri())
    monkeypatch.setenv("LOADMGR_DATABASE", f"lm_{uuid.uuid4().hex[:8]}")
    ca = ("--mongo-tls-ca-file", str(certificates.ca_file))
    ok(
        cli(
            *ca,
            "tests",
            "create",
            "--name",
            "tls",
            "--target-url",
            "http://127.0.0.1:1",
            "--locustfile",
            str(DEMO_LOCUSTFILE),
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
    monkeypatch.setenv("LOADMGR_MONGO_URI", mtls_server.uri())
    monkeypatch.setenv("LOADMGR_DATABASE", f"lm_{uuid.uuid4().hex[:8]}")
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
    monkeypatch.setenv("TOKEN_ENV", TOKEN)
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
                "TOKEN_ENV",
                "--ca-bundle",
                str(certificates.ca_file),
                "-o",
                "json",
            )
        )
        db = admin_db(auth_mongo)
        stored = db.locust_clusters.find_one({"id": "guarded"}, {"_id": False})
        assert stored["auth"]["secretEnv"] == "TOKEN_ENV"
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
        monkeypatch.setenv("TOKEN_ENV", "not-the-token")
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
    monkeypatch.setenv("LM_LOGIN_USER", LOGIN_USER)
    monkeypatch.setenv("LM_LOGIN_PASSWORD", LOGIN_PASSWORD)
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
                "LM_LOGIN_USER",
                "--login-password-env",
                "LM_LOGIN_PASSWORD",
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
        monkeypatch.setenv("LM_LOGIN_PASSWORD", "wrong-password")
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


# --- Locust over https -----------------------------------------------------------------------


@pytest.fixture
def https_locust(locust: Any, certificates: Certificates, mongo_uri: str) -> Iterator[LocustProxy]:
    with LocustProxy(locust.base_url, certificate=certificates.server) as proxy:
        yield proxy


def test_https_cluster_with_a_ca_bundle(
    cli: Cli, https_locust: LocustProxy, certificates: Certificates
) -> None:
    ok(
        cli(
            "clusters",
            "add",
            "tls",
            "--url",
            https_locust.url,
            "--ca-bundle",
            str(certificates.ca_file),
        )
    )
    checked = ok(cli("clusters", "check", "tls", "-o", "json"))
    report = checked.json()
    assert isinstance(report, dict)
    assert report["reachable"] is True and report["state"] in ("ready", "stopped")
    assert "warning" not in checked.stderr


def test_https_cluster_without_the_ca_is_exit_6(
    cli: Cli, https_locust: LocustProxy, certificates: Certificates
) -> None:
    ok(cli("clusters", "add", "untrusted", "--url", https_locust.url))
    line = one_error(cli("clusters", "check", "untrusted"), 6)
    assert "TLS certificate verification failed" in line
    ok(
        cli(
            "clusters",
            "add",
            "wrong-ca",
            "--url",
            https_locust.url,
            "--ca-bundle",
            str(certificates.other_ca_file),
        )
    )
    assert "TLS certificate verification failed" in one_error(
        cli("clusters", "check", "wrong-ca"), 6
    )


def test_insecure_https_works_but_warns(cli: Cli, https_locust: LocustProxy) -> None:
    added = ok(cli("clusters", "add", "lax", "--url", https_locust.url, "--insecure", "-q"))
    assert added.stdout.strip() == "lax"
    assert "warning:" in added.stderr and "not be verified" in added.stderr
    checked = ok(cli("clusters", "check", "lax", "-o", "json"))
    assert checked.json()["reachable"] is True  # type: ignore[index]
    assert "warning:" in checked.stderr and "not verified" in checked.stderr
    shown = ok(cli("clusters", "show", "lax"))
    assert "NOT verified" in shown.stdout


def test_ca_bundle_and_insecure_together_are_refused(cli: Cli, mongo_db: Any) -> None:
    line = one_error(
        cli(
            "clusters",
            "add",
            "both",
            "--url",
            "https://127.0.0.1:1",
            "--ca-bundle",
            "ca.pem",
            "--insecure",
        ),
        2,
    )
    assert "--insecure" in line
    assert mongo_db.locust_clusters.count_documents({}) == 0


# --- tenant and environment scope, in the repository layer and through the CLI ------------


def _theirs(mongo_db: Any) -> dict[str, Any]:
    """Documents of tenant b (and of tenant a in another env), written with pymongo."""
    now = datetime.now(timezone.utc)
    audit = {"createdAt": now, "createdBy": "b", "updatedAt": now, "updatedBy": "b"}
    docs: dict[str, Any] = {}
    for test_id, tenant, env in (("t-b", "b", "x"), ("t-ay", "a", "y")):
        mongo_db.load_tests.insert_one(
            {
                "id": test_id,
                "name": "shared",
                "tenantId": tenant,
                "envId": env,
                "tags": ["t"],
                "targetUrl": "http://127.0.0.1:1",
                "locustClusterId": "c-b",
                "version": 1,
                "defaultUsers": 1,
                "defaultSpawnRate": 1.0,
                "defaultDurationSec": 5,
                "metadata": {},
                "description": "",
                "thresholds": [],
                **audit,
            }
        )
        run_id = f"r-{test_id}"
        mongo_db.load_test_runs.insert_one(
            {
                "id": run_id,
                "loadTestId": test_id,
                "name": "their run",
                "tenantId": tenant,
                "envId": env,
                "targetUsers": 1,
                "spawnRate": 1.0,
                "durationSeconds": 5,
                "status": "Running",
                "heartbeatAt": now,
                "locustClusterId": "c-b",
                "collector": {"interval": 5},
                "metadata": {},
                "lastMetrics": {},
                **audit,
            }
        )
        for seq in (1, 2):
            mongo_db.metrics_timeseries.insert_one(
                {
                    "loadTestRunId": run_id,
                    "seq": seq,
                    "timestamp": now,
                    "tenantId": tenant,
                    "envId": env,
                    "totalRPS": 5.0,
                    "currentUsers": 1,
                    "requestStats": [],
                }
            )
        docs[test_id] = run_id
    mongo_db.locust_clusters.insert_one(
        {
            "id": "c-b",
            "baseUrl": "http://127.0.0.1:1",
            "tenantId": "b",
            "envId": "x",
            "auth": {"type": "none"},
            "verifyTls": True,
            "description": "",
            **audit,
        }
    )
    return docs


def _snapshot(mongo_db: Any) -> dict[str, list[dict[str, Any]]]:
    names = ("load_tests", "load_test_runs", "metrics_timeseries", "locust_clusters")
    return {
        name: sorted(
            mongo_db[name].find({}, {"_id": False}),
            key=lambda d: json.dumps(d, sort_keys=True, default=str),
        )
        for name in names
    }


def test_repositories_never_reach_outside_their_scope(mongo_uri: str, mongo_db: Any) -> None:
    from loadmgr.errors import ValidationFailed
    from loadmgr.models import LoadTest, LoadTestRun, LocustCluster, MetricSnapshot, Scope
    from loadmgr.store import Store

    _theirs(mongo_db)
    scoped = Store(mongo_db, Scope("a", "x"), mongo_uri)
    scoped.ensure_indexes()
    ours = scoped.tests.insert(LoadTest(name="ours", targetUrl="http://h", tenantId="a", envId="x"))
    before = _snapshot(mongo_db)

    for test_id in ("t-b", "t-ay"):
        run_id = f"r-{test_id}"
        assert scoped.tests.find_by_id(test_id) is None
        assert scoped.tests.update(test_id, 1, {"description": "pwned"}) is None
        assert scoped.tests.delete(test_id) is False
        assert scoped.runs.find_by_id(run_id) is None
        assert scoped.runs.update(run_id, {"status": "Failed"}) is None
        assert scoped.runs.claim(run_id, 0, {"heartbeatAt": None}) is None
        assert scoped.runs.count_for_test(test_id) == 0
        assert scoped.runs.ids_for_test(test_id) == []
        assert scoped.runs.delete_for_test(test_id) == 0
        assert scoped.metrics.find_for_run(run_id) == []
        assert list(scoped.metrics.iter_for_run(run_id, {})) == []
        assert scoped.metrics.count_for_run(run_id) == 0
        assert scoped.metrics.latest(run_id) is None
        assert scoped.metrics.last_seq(run_id) == 0
        assert scoped.metrics.downsampled(run_id, 1, {"rps": {"$max": "$totalRPS"}}) == []
        assert scoped.metrics.peaks(run_id, ["totalRPS"]) == {"totalRPS": None}
        assert scoped.metrics.delete_for_runs([run_id]) == 0
    assert scoped.metrics.aggregate([{"$group": {"_id": None, "n": {"$sum": 1}}}]) == []
    assert scoped.tests.find_by_name("shared") == []
    assert [d["id"] for d in scoped.tests.find_many(limit=0)] == [ours.id]
    assert scoped.tests.find_many(tags=["t"], name_contains="shared", cluster="c-b") == []
    assert scoped.runs.find_many(limit=0) == []
    assert scoped.clusters.find_by_id("c-b") is None
    assert scoped.clusters.find_many() == []
    assert scoped.clusters.delete("c-b") is False

    # Writes that would put a document outside the scope are refused, not performed.
    outside = {"tenantId": "b", "envId": "x"}
    with pytest.raises(ValidationFailed):
        scoped.tests.insert(LoadTest(name="planted", targetUrl="http://h", **outside))
    with pytest.raises(ValidationFailed):
        scoped.tests.update(ours.id, ours.version, {"tenantId": "b"})
    with pytest.raises(ValidationFailed):
        scoped.runs.insert(
            LoadTestRun(
                loadTestId=ours.id, targetUsers=1, spawnRate=1, durationSeconds=5, **outside
            )
        )
    with pytest.raises(ValidationFailed):
        scoped.clusters.insert(LocustCluster(id="planted", baseUrl="http://h", **outside))
    with pytest.raises(ValidationFailed):
        scoped.metrics.save(
            [
                MetricSnapshot(
                    loadTestRunId="r-t-b", seq=3, timestamp=datetime.now(timezone.utc), **outside
                )
            ]
        )
    assert _snapshot(mongo_db) == before

    # The same calls in tenant b's scope do reach them: the checks above are not vacuous.
    theirs = Store(mongo_db, Scope("b", "x"), mongo_uri)
    assert theirs.tests.find_by_id("t-b") is not None
    assert theirs.metrics.count_for_run("r-t-b") == 2
    assert theirs.clusters.find_by_id("c-b") is not None


def test_cli_with_a_scope_sees_and_touches_nothing_outside(
    cli: Cli, mongo_db: Any, tmp_path: Path
) -> None:
    _theirs(mongo_db)
    before = _snapshot(mongo_db)
    scope = ("--tenant", "a", "--env", "x")
    not_found = [
        ("tests", "show", "t-b"),
        ("tests", "show", "shared"),
        ("tests", "show", "t-ay"),
        ("tests", "update", "t-b", "--users", "9"),
        ("tests", "update", "shared", "--tag", "z"),
        ("tests", "delete", "t-b", "--yes", "--force"),
        ("tests", "delete", "shared", "--yes"),
        ("runs", "show", "r-t-b"),
        ("runs", "stop", "r-t-b"),
        ("runs", "follow", "r-t-b"),
        ("runs", "list", "--test", "t-b"),
        ("runs", "start", "shared"),
        ("metrics", "show", "r-t-b"),
        ("metrics", "export", "r-t-b"),
        ("clusters", "show", "c-b"),
        ("clusters", "remove", "c-b"),
        ("clusters", "check", "c-b"),
        (
            "tests",
            "create",
            "--name",
            "new",
            "--target-url",
            "http://h",
            "--cluster",
            "c-b",
            "--locustfile",
            "x.py",
        ),
    ]
    for args in not_found:
        line = one_error(cli(*scope, *args), 4)
        assert "not found in tenant 'a', env 'x'" in line, (args, line)
    for args in (("tests", "list"), ("runs", "list")):
        assert ok(cli(*scope, *args, "-o", "json")).json() == [], args
    listed = ok(cli(*scope, "clusters", "list", "-o", "json")).json()
    assert [cluster["id"] for cluster in listed] == ["local"]  # built in, in every scope
    assert ok(cli(*scope, "tests", "list", "--name", "shared", "-q")).stdout == ""
    assert _snapshot(mongo_db) == before

    # What is created in the scope is stamped with it, even with a name taken elsewhere.
    created = ok(
        cli(
            *scope,
            "tests",
            "create",
            "--name",
            "shared",
            "--target-url",
            "http://127.0.0.1:1",
            "--locustfile",
            str(DEMO_LOCUSTFILE),
            "-o",
            "json",
        )
    )
    doc = created.json()
    assert isinstance(doc, dict)
    assert (doc["tenantId"], doc["envId"]) == ("a", "x")
    ok(cli(*scope, "clusters", "add", "c-a", "--url", "http://127.0.0.1:1"))
    assert mongo_db.locust_clusters.find_one({"id": "c-a"})["tenantId"] == "a"
    after = _snapshot(mongo_db)
    for name, documents in before.items():
        assert all(d in after[name] for d in documents), name


# --- audit fields come from the configured identity ---------------------------------------


def test_created_by_and_updated_by_follow_user_and_environment(
    cli: Cli, mongo_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok(
        cli(
            "--user",
            "alice",
            "tests",
            "create",
            "--name",
            "audited",
            "--target-url",
            "http://127.0.0.1:1",
            "--locustfile",
            str(DEMO_LOCUSTFILE),
        )
    )
    monkeypatch.setenv("LOADMGR_USER", "bob")
    ok(cli("tests", "update", "audited", "--users", "3"))
    stored = mongo_db.load_tests.find_one({"name": "audited"})
    assert (stored["createdBy"], stored["updatedBy"]) == ("alice", "bob")
    assert stored["updatedAt"] >= stored["createdAt"]
    ok(cli("tests", "update", "audited", "--users", "4", "--user", "carol"))  # option wins
    assert mongo_db.load_tests.find_one({"name": "audited"})["updatedBy"] == "carol"
    ok(cli("clusters", "add", "k", "--url", "http://127.0.0.1:1"))
    assert mongo_db.locust_clusters.find_one({"id": "k"})["createdBy"] == "bob"
    shown = ok(cli("tests", "show", "audited"))
    assert "by alice" in shown.stdout and "by carol" in shown.stdout


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
