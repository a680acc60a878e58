"""Issue 11, hostile environments: each case injected, its exit code, its one line, and
nothing written (or, where something must change, exactly that)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult, error_line, ok

pytestmark = pytest.mark.integration

Cli = Callable[..., CliResult]

COLLECTIONS = (
    "load_tests",
    "load_test_runs",
    "metrics_timeseries",
    "locust_clusters",
    "cluster_leases",
)


@pytest.fixture(autouse=True)
def _real_server(mongo_uri: str) -> str:
    return mongo_uri


@pytest.fixture
def locustfile(tmp_path: Path) -> Path:
    path = tmp_path / "locustfile.py"
    path.write_text("from locust import HttpUser\n\n\nclass Web(HttpUser):\n    pass\n")
    return path


def snapshot(mongo_db: Any) -> dict[str, list[str]]:
    return {
        name: sorted(
            json.dumps(d, sort_keys=True, default=str)
            for d in mongo_db[name].find({}, {"_id": False})
        )
        for name in COLLECTIONS
    }


@pytest.fixture
def existing(cli: Cli, locustfile: Path) -> dict[str, Any]:
    """One test named `api`, which a refused command must leave as it is."""
    doc = ok(
        cli(
            "tests", "create", "--name", "api", "--target-url", "http://127.0.0.1:1",
            "--locustfile", str(locustfile), "-o", "json",
        )
    ).json()
    assert isinstance(doc, dict)
    return doc


@pytest.fixture
def unchanged(mongo_db: Any, existing: dict[str, Any]) -> Iterator[None]:
    """Asserts at the end that no collection gained, lost or changed a document."""
    before = snapshot(mongo_db)
    yield
    assert snapshot(mongo_db) == before


def refused(result: CliResult, code: int = 2) -> str:
    """The one error line of a refused command, with nothing on stdout."""
    assert result.stdout == "", result.stdout
    return error_line(result, code)


def create(cli: Cli, locustfile: Path, *extra: str, name: str = "new") -> CliResult:
    return cli(
        "tests", "create", "--name", name, "--target-url", "http://127.0.0.1:1",
        "--locustfile", str(locustfile), *extra,
    )


# -- 6. no exit 70 on bad input ------------------------------------------------------------

# What Python makes of the bytes b"bad\xffutf" in argv: a lone surrogate for the bad byte.
BAD_UTF8 = b"bad\xffutf".decode("utf-8", "surrogateescape")


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    ("extra", "option"),
    [
        (("--name", BAD_UTF8), "--name"),
        ((f"--name={BAD_UTF8}",), "--name"),
        (("--description", BAD_UTF8), "--description"),
        (("--tag", BAD_UTF8), "--tag"),
        (("--meta", f"k={BAD_UTF8}"), "--meta"),
        (("--meta", f"{BAD_UTF8}=v"), "--meta"),
        (("--scenario", "\ud800x"), "--scenario"),
    ],
)
def test_invalid_utf8_in_any_option_is_a_usage_error(
    cli: Cli, locustfile: Path, extra: tuple[str, ...], option: str
) -> None:
    base = ["tests", "create", "--target-url", "http://127.0.0.1:1"]
    base += ["--locustfile", str(locustfile)]
    if "--name" not in option:
        base += ["--name", "fine"]
    line = refused(cli(*base, *extra))
    assert line.startswith(f"error: invalid {option}: not valid UTF-8 text (")
    assert "\\x" in line or "\\u" in line  # the bad byte, shown readably


@pytest.mark.usefixtures("unchanged")
def test_invalid_utf8_in_an_argument_or_the_environment(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "not valid UTF-8" in refused(cli("tests", "show", BAD_UTF8))
    monkeypatch.setenv("LOADMGR_TENANT", BAD_UTF8)
    line = refused(cli("tests", "list"))
    assert line == "error: invalid LOADMGR_TENANT: not valid UTF-8 text (bad\\xffutf)"


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("since", ["10000000d", "99999999999999999999d", "9" * 400 + "d"])
def test_since_too_far_back_is_a_usage_error(cli: Cli, since: str) -> None:
    assert "invalid --since" in refused(cli("runs", "list", "--since", since))


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("group", ["tests", "runs"])
def test_huge_limit_is_a_usage_error(cli: Cli, group: str) -> None:
    line = refused(cli(group, "list", "--limit", "99999999999999999999"))
    assert "invalid --limit" in line


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    "value", ["1e20", "100000000000000000", "9223372036854775807", "0", "-5", "true"]
)
def test_absurd_server_selection_timeout_in_a_profile(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.delenv("LOADMGR_SERVER_SELECTION_TIMEOUT_MS")  # or it beats the profile
    config = tmp_path / "config.toml"
    config.write_text(f"[profiles.default]\nserver_selection_timeout_ms = {value}\n")
    line = refused(cli("--config", str(config), "tests", "list"))
    assert "server_selection_timeout_ms" in line or "server selection timeout" in line
    assert "URI" not in line


@pytest.mark.usefixtures("unchanged")
def test_absurd_server_selection_timeout_option(cli: Cli) -> None:
    line = refused(cli("--server-selection-timeout", "99999999999999999999", "tests", "list"))
    assert "server selection timeout" in line
    assert "URI" not in line


# -- 8. CSV escapes control characters ----------------------------------------------------

HOSTILE_NAME = "t\x1b]0;pwned\x07\x1b]8;;http://evil\x1b\\x\x9b2J\x7f\u202eeman"


def test_csv_output_escapes_control_characters(cli: Cli, locustfile: Path) -> None:
    ok(create(cli, locustfile, "--tag", "\x1b[31mred", "--meta", "k=\x07bell", name=HOSTILE_NAME))
    for args in (("tests", "list", "-o", "csv"), ("tests", "show", HOSTILE_NAME, "-o", "csv")):
        out = ok(cli(*args)).stdout
        assert not any(ch in out for ch in "\x1b\x07\x9b\x7f\u202e"), out
        assert "t\\x1b]0;pwned\\x07" in out
        assert "\\x1b[31mred" in out
    # The data is stored intact: only what is shown is escaped.
    stored = ok(cli("tests", "show", HOSTILE_NAME, "-o", "json")).json()
    assert isinstance(stored, dict) and stored["name"] == HOSTILE_NAME


# -- 7. an empty scope given explicitly ----------------------------------------------------


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize(
    "args",
    [
        ("--tenant", "", "tests", "list"),
        ("--env", "", "tests", "list"),
        ("tests", "list", "--tenant", ""),
        ("--tenant=", "tests", "delete", "api", "--yes", "--force"),
        ("--env", "  ", "tests", "create", "--name", "x", "--target-url", "http://127.0.0.1:1"),
    ],
)
def test_empty_scope_option_is_a_usage_error(cli: Cli, args: tuple[str, ...]) -> None:
    line = refused(cli(*args))
    assert "is given but empty" in line


@pytest.mark.usefixtures("unchanged")
@pytest.mark.parametrize("variable", ["LOADMGR_TENANT", "LOADMGR_ENV"])
def test_empty_scope_variable_is_a_usage_error(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "")  # `LOADMGR_TENANT=$TEAM` with $TEAM unset
    result = cli("tests", "list", "-o", "json")
    line = refused(result)
    assert line.startswith("error: --") and "is given but empty" in line
    assert "hint: leave --" in result.stderr


def test_empty_scope_never_falls_back_to_the_profile(
    cli: Cli, tmp_path: Path, existing: dict[str, Any]
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[profiles.default]\ntenant = "payments"\n')
    refused(cli("--config", str(config), "--tenant", "", "tests", "list"))
    # Leaving it out uses the profile's tenant: `api` (no tenant) is not listed.
    assert ok(cli("--config", str(config), "tests", "list", "-o", "json")).json() == []
    assert existing["tenantId"] is None
