"""Bad input to `tests` and `clusters` commands, and an unreachable MongoDB: its exit code, one
`error:` line on stderr, nothing stored, no password printed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from loadmgr.store.embedded import free_port
from tests.conftest import create_test_argv
from tests.integration.conftest import Cli, create, refused

# Every test here talks to the real server, never to an embedded one.
pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("mongo_uri")]

OPERATOR_LOOKING = ['{"$ne": null}', '{"$gt": ""}', "$where", "$ne", "a.b", ".*"]


@pytest.mark.usefixtures("unchanged")
def test_duplicate_name_is_a_conflict(cli: Cli, locustfile: Path) -> None:
    line = refused(create(cli, locustfile, name="api"), 5)
    assert "'api' already exists" in line
    refused(create(cli, locustfile, name="  api  "), 5)  # trimmed first


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    "args",
    [
        ("tests", "show", "nope"),
        ("tests", "update", "nope", "--users", "3"),
        ("tests", "delete", "nope", "--yes"),
        ("tests", "delete", "nope", "--yes", "--force"),
        ("tests", "show", "api-"),
        ("clusters", "show", "nope"),
        ("clusters", "remove", "nope"),
    ],
)
def test_unknown_is_not_found(cli: Cli, args: tuple[str, ...]) -> None:
    assert "not found" in refused(cli(*args), 4)


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (("--users", "0"), "--users"),
        (("--users", "-5"), "--users"),
        (("--spawn-rate", "0"), "--spawn-rate"),
        (("--spawn-rate", "-1"), "--spawn-rate"),
        (("--spawn-rate", "nan"), "--spawn-rate"),
        (("--duration", "soon"), "--duration"),
        (("--duration", "5x"), "--duration"),
        (("--duration", "1h30"), "--duration"),
        (("--duration", "0"), "--duration"),
        (("--max-duration", "-1m"), "--max-duration"),
        (("--duration", "10m", "--max-duration", "5m"), "above the maximum"),
        (("--meta", "noequals"), "--meta"),
        (("--meta", "=value"), "--meta"),
        (("--threshold", "p95<<3"), "'<3'"),
        (("--threshold", "p42<1s"), "'p42'"),
        (("--tag", " "), "--tag"),
        (("-o", "yaml"), "unknown output format"),
        (("--output", "xml"), "unknown output format"),
    ],
)
def test_bad_values_are_usage_errors(
    cli: Cli, locustfile: Path, extra: tuple[str, ...], needle: str
) -> None:
    assert needle in refused(create(cli, locustfile, *extra), 2)


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/x", "127.0.0.1:8080", "file:///etc/passwd", "http://", ""]
)
def test_target_url_must_be_http(cli: Cli, locustfile: Path, url: str) -> None:
    result = cli(
        "tests", "create", "--name", "new", "--target-url", url, "--locustfile", str(locustfile)
    )
    assert "--target-url" in refused(result, 2)


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("name", ["", "   ", "x" * 201])
def test_bad_names(cli: Cli, locustfile: Path, name: str) -> None:
    assert "--name" in refused(create(cli, locustfile, name=name), 2)


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    "args",
    [
        ("tests", "create", "--target-url", "http://h"),  # no --name
        ("tests", "create", "--name", "new"),  # no --target-url
        ("tests", "create", "--name", "new", "--target-url", "http://h"),  # local, no file
        (
            *create_test_argv("new", "http://h", "/nonexistent/locustfile.py"),
        ),
        ("tests", "update", "api", "--users", "0"),
        ("tests", "update", "api", "--duration", "forever"),
        ("tests", "update", "api", "--meta", "novalue"),
        ("tests", "update", "api", "--name", ""),
        ("tests", "update", "api", "-o", "yaml", "--users", "3"),
        ("tests", "list", "-o", "yaml"),
        ("tests", "list", "--limit", "-1"),
        ("clusters", "add", "local", "--url", "http://h"),
        ("clusters", "add", "k", "--url", "gopher://h"),
    ],
)
def test_more_usage_errors(cli: Cli, args: tuple[str, ...]) -> None:
    refused(cli(*args), 2)


@pytest.mark.usefixtures("unchanged")
def test_unknown_cluster_on_create(cli: Cli, locustfile: Path) -> None:
    assert "cluster 'nope' not found" in refused(create(cli, locustfile, "--cluster", "nope"), 4)


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("ref", OPERATOR_LOOKING)
@pytest.mark.parametrize(
    "command",
    [
        ("tests", "show"),
        ("tests", "update", "--users", "3"),
        ("tests", "delete", "--yes"),
        ("tests", "delete", "--yes", "--force"),
        ("clusters", "show"),
        ("clusters", "remove"),
    ],
)
def test_operator_looking_refs_are_only_strings(
    cli: Cli, ref: str, command: tuple[str, ...]
) -> None:
    group, verb, *options = command
    line = refused(cli(group, verb, ref, *options), 4)
    assert "not found" in line


def test_operator_looking_names_are_stored_as_given(
    cli: Cli, locustfile: Path, existing: dict[str, Any], mongo_db: Any
) -> None:
    result = create(cli, locustfile, "-q", name='{"$ne": null}')
    assert result.exit_code == 0, result.stderr
    shown = cli("tests", "show", '{"$ne": null}', "-o", "json")
    assert shown.exit_code == 0
    assert shown.json()["id"] == result.stdout.strip()  # type: ignore[index]
    assert mongo_db["load_tests"].count_documents({"name": '{"$ne": null}'}) == 1
    assert cli("tests", "list", "-q", "--name", "$ne").stdout.split() == [result.stdout.strip()]


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
