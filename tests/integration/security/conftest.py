"""The servers and secrets of the security tests: SecantusDB with `--auth` or `--tls-*`, a
Locust standalone behind an https/auth proxy; certificates come from a throwaway trustme CA.

The servers are shared by the package's modules (one of each per xdist worker), as they were
by the single module these tests came from.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pymongo
import pytest

from tests.conftest import CliResult, create_test_argv, ok
from tests.locust_servers import DEMO_LOCUSTFILE, running_locust, running_target
from tests.secure_servers import (
    Certificates,
    MongoUser,
    SecureMongo,
    make_certificates,
    mongo_with_tls,
    mongo_with_users,
)

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


# --- servers, shared by the package --------------------------------------------------------


@pytest.fixture(scope="package")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="package")
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


def use_server(server: SecureMongo, monkeypatch: pytest.MonkeyPatch) -> None:
    """loadmgr pointed at `server` (no user), in a database of this test's own."""
    monkeypatch.setenv("LOADMGR_MONGO_URI", server.uri())
    monkeypatch.setenv("LOADMGR_DATABASE", f"lm_{uuid.uuid4().hex[:8]}")


def admin_db(server: SecureMongo) -> Any:
    return pymongo.MongoClient(server.uri("root"), serverSelectionTimeoutMS=5000, tz_aware=True)[DB]


@pytest.fixture(scope="package")
def tls_server(
    tmp_path_factory: pytest.TempPathFactory, certificates: Certificates
) -> Iterator[SecureMongo]:
    with mongo_with_tls(tmp_path_factory.mktemp("tls") / "data", certificates) as server:
        yield server


@pytest.fixture(scope="package")
def mtls_server(
    tmp_path_factory: pytest.TempPathFactory, certificates: Certificates
) -> Iterator[SecureMongo]:
    root = tmp_path_factory.mktemp("mtls")
    with mongo_with_tls(root / "data", certificates, require_client_cert=True) as server:
        yield server


@pytest.fixture(scope="package")
def target() -> Iterator[Any]:
    with running_target() as server:
        yield server


@pytest.fixture(scope="package")
def locust(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One standalone Locust for the package; each run leaves it idle for the next."""
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
            *create_test_argv(name, target_url, "deployed.py", "--cluster", cluster),
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


