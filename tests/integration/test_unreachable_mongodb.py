"""An unreachable MongoDB: exit 3 within the selection timeout, and a URI's password never
printed, whatever the URI's shape or the debug setting."""

from __future__ import annotations

import time

import pytest

from loadmgr.store.embedded import free_port
from tests.conftest import create_test_argv
from tests.integration.conftest import Cli, refused

pytestmark = pytest.mark.integration


# --- MongoDB unreachable -----------------------------------------------------------------


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    return free_port()


@pytest.mark.parametrize(
    "args",
    [
        ("tests", "list"),
        (
            *create_test_argv("n", "http://h", "remote.py", "--cluster", "k8s"),
        ),
    ],
)
def test_unreachable_mongodb_exits_3_within_the_timeout(
    cli: Cli, closed_port: int, args: tuple[str, ...]
) -> None:
    started = time.monotonic()
    result = cli(
        "--mongo-uri",
        f"mongodb://127.0.0.1:{closed_port}/",
        "--server-selection-timeout",
        "1000",
        *args,
    )
    elapsed = time.monotonic() - started
    line = refused(result, 3)
    assert "cannot reach MongoDB" in line
    assert elapsed < 5, f"took {elapsed:.1f}s with a 1 s timeout"


def test_unreachable_mongodb_timeout_from_the_environment(
    cli: Cli, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOADMGR_MONGO_URI", f"mongodb://127.0.0.1:{closed_port}/")
    monkeypatch.setenv("LOADMGR_SERVER_SELECTION_TIMEOUT_MS", "300")
    started = time.monotonic()
    refused(cli("tests", "list"), 3)
    assert time.monotonic() - started < 4


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize(
    ("uri", "password", "code"),
    [
        ("mongodb://bob:s3cretpw@127.0.0.1:{port}/", "s3cretpw", 3),
        ("mongodb://bob:s3cretpw@127.0.0.1:{port}/?authSource=admin", "s3cretpw", 3),
        ("mongodb://bob:s3c%40retpw@127.0.0.1:{port}/", "retpw", 3),
        # Malformed URIs are usage errors (issue 11): an unescaped '@', a port that is not.
        ("mongodb://bob:s3c@retpw@127.0.0.1:{port}/", "retpw", 2),
        ("mongodb://bob:s3cretpw@127.0.0.1:notaport/", "s3cretpw", 2),
    ],
)
def test_password_is_never_printed(
    cli: Cli, closed_port: int, uri: str, password: str, code: int, debug: bool
) -> None:
    args = ["--mongo-uri", uri.format(port=closed_port), "--server-selection-timeout", "200"]
    if debug:
        args.append("--debug")
    result = cli(*args, "tests", "show", "x")
    assert result.exit_code == code, result.stderr
    assert password not in result.stdout
    assert password not in result.stderr
    assert "***" in result.stderr
    if not debug:
        assert "Traceback" not in result.stderr


def test_password_never_printed_with_debug_from_the_environment(
    cli: Cli, closed_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOADMGR_MONGO_URI", f"mongodb://bob:s3cretpw@127.0.0.1:{closed_port}/")
    monkeypatch.setenv("LOADMGR_DEBUG", "1")
    monkeypatch.setenv("LOADMGR_SERVER_SELECTION_TIMEOUT_MS", "200")
    result = cli("tests", "list")
    assert result.exit_code == 3
    assert "s3cretpw" not in result.stdout + result.stderr
