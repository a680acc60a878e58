"""Bad input to `tests` commands: its exit code, one `error:` line on stderr, nothing stored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

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
