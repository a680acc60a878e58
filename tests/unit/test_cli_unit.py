"""The command line without a server: help, version, errors, global options, configuration.

Where a command needs a database, `mock_store` swaps in mongomock and records the settings
the command resolved, so precedence is checked on what the command really used.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mongomock
import pytest

from loadmgr import __version__
from loadmgr.config import DEFAULT_DATABASE, Settings
from loadmgr.models import Scope
from loadmgr.store import Store
from tests.conftest import REPO, CliResult, walk_commands

Cli = Callable[..., CliResult]


COMMANDS = list(walk_commands())
COMMAND_PATHS = [path for path, _ in COMMANDS]
COMMAND_IDS = [" ".join(path) or "loadmgr" for path in COMMAND_PATHS]


def test_the_tree_has_every_command_of_the_design() -> None:
    paths = {" ".join(p) for p in COMMAND_PATHS}
    for expected in ("tests create", "tests list", "tests show", "tests update", "tests delete",
                     "clusters add", "clusters list", "clusters show", "clusters remove",
                     "db status", "db start", "db stop", "runs", "metrics"):
        assert expected in paths


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=COMMAND_IDS)
def test_help_of_every_command_exits_0(cli: Cli, path: list[str]) -> None:
    result = cli(*path, "--help")
    assert result.exit_code == 0, result.stderr
    assert "Usage" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=COMMAND_IDS)
def test_every_command_and_option_has_help_text(path: list[str], command: Any) -> None:
    if path:
        assert (command.help or command.short_help or "").strip(), f"{path} has no help"
    for param in command.params:
        if param.param_type_name == "option":
            assert (param.help or "").strip(), f"{' '.join(path)} {param.opts} has no help"
        elif param.param_type_name == "argument":
            assert (getattr(param, "help", None) or "").strip(), f"{path} {param.name} no help"


def test_version(cli: Cli) -> None:
    result = cli("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"loadmgr {__version__}"


def test_no_arguments_shows_help_and_exits_2(cli: Cli) -> None:
    result = cli()
    assert result.exit_code == 2
    assert "Usage" in result.stdout + result.stderr


def _one_error_line(result: CliResult, code: int) -> str:
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines and lines[0].startswith("error: ")
    assert all(line.startswith("hint: ") for line in lines[1:])
    return lines[0]


@pytest.mark.parametrize(
    "args",
    [
        ("tests", "list", "-o", "yaml"),
        ("tests", "show", "x", "--output", "xml"),
        ("clusters", "list", "-o", "table2"),
        ("db", "status", "-o", "yaml"),
    ],
)
def test_bad_output_format_is_a_usage_error(cli: Cli, args: tuple[str, ...]) -> None:
    line = _one_error_line(cli(*args), 2)
    assert "unknown output format" in line
    assert "json" in line


def test_bad_output_format_from_the_environment(
    cli: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOADMGR_OUTPUT", "yaml")
    assert "'yaml'" in _one_error_line(cli("tests", "list"), 2)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("tests", "bogus"), "No such command"),
        (("tests", "list", "--bogus"), "--bogus"),
        (("tests", "create", "--users", "many"), "--users"),
        (("tests", "show"), "Missing argument"),
        (("--tenant",), "requires an argument"),
        (("tests", "list", "--limit", "x"), "--limit"),
    ],
)
def test_usage_errors_are_one_line_exit_2(
    cli: Cli, args: tuple[str, ...], needle: str
) -> None:
    assert needle in _one_error_line(cli(*args), 2)


# --- with a mongomock store in place of the server -----------------------------------------


class Captured:
    settings: Settings | None = None
    client: mongomock.MongoClient | None = None


@pytest.fixture
def mock_store(monkeypatch: pytest.MonkeyPatch) -> Captured:
    captured = Captured()
    captured.client = mongomock.MongoClient()

    def open_store(settings: Settings, **_options: Any) -> Store:
        captured.settings = settings
        assert captured.client is not None
        database = captured.client[settings.database]
        return Store(database, Scope(settings.tenant, settings.env), settings.mongo_uri or "")

    monkeypatch.setattr("loadmgr.service.context.open_store", open_store)
    # mongomock has neither collStats nor $bsonSize: `db status` measures on a real server.
    monkeypatch.setattr(
        "loadmgr.service.upkeep.space.database_space", lambda _settings: (None, "mongomock")
    )
    return captured


@pytest.fixture
def locustfile(tmp_path: Path) -> Path:
    path = tmp_path / "locustfile.py"
    path.write_text("from locust import HttpUser\n")
    return path


def _create(cli: Cli, locustfile: Path, *extra: str) -> CliResult:
    return cli("tests", "create", "--name", "api", "--target-url", "http://127.0.0.1:1",
               "--locustfile", str(locustfile), "-o", "json", *extra)


def test_create_and_show_on_mongomock(cli: Cli, mock_store: Captured, locustfile: Path) -> None:
    created = _create(cli, locustfile)
    assert created.exit_code == 0, created.stderr
    shown = cli("tests", "show", "api", "-o", "json")
    assert shown.exit_code == 0, shown.stderr
    assert json.loads(shown.stdout) == json.loads(created.stdout)


@pytest.mark.parametrize(
    "args",
    [
        ("tests", "list", "--tenant", "x", "-o", "json"),
        ("--tenant", "x", "tests", "list", "-o", "json"),
        ("tests", "--tenant", "x", "list", "-o", "json"),
        ("tests", "list", "-o", "json", "--tenant=x"),
    ],
)
def test_global_options_anywhere_on_the_line(
    cli: Cli, mock_store: Captured, args: tuple[str, ...]
) -> None:
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    assert mock_store.settings is not None
    assert mock_store.settings.tenant == "x"


def test_global_options_after_the_command_create_in_scope(
    cli: Cli, mock_store: Captured, locustfile: Path
) -> None:
    result = _create(cli, locustfile, "--tenant", "t1", "--env", "e1", "--user", "alice")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["tenantId"], doc["envId"], doc["createdBy"]) == ("t1", "e1", "alice")


def _write_config(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


PROFILES = """
default_profile = "team"

[profiles.team]
tenant = "from-profile"
database = "profiledb"
user = "profile-user"
server_selection_timeout_ms = 1234

[profiles.other]
tenant = "other-profile"
"""


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("LOADMGR_USER", raising=False)
    monkeypatch.delenv("LOADMGR_SERVER_SELECTION_TIMEOUT_MS", raising=False)
    path = _write_config(tmp_path / "cfg" / "loadmgr.toml", PROFILES)
    monkeypatch.setenv("LOADMGR_CONFIG", str(path))
    return path


def _settings(cli: Cli, captured: Captured, *args: str) -> Settings:
    captured.settings = None
    result = cli(*args, "tests", "list", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert captured.settings is not None
    return captured.settings


def test_precedence_option_env_profile_default(
    cli: Cli, mock_store: Captured, config_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # profile beats default
    settings = _settings(cli, mock_store)
    assert (settings.tenant, settings.database) == ("from-profile", "profiledb")
    assert (settings.user, settings.server_selection_timeout_ms) == ("profile-user", 1234)
    # environment beats profile
    monkeypatch.setenv("LOADMGR_TENANT", "from-env")
    monkeypatch.setenv("LOADMGR_SERVER_SELECTION_TIMEOUT_MS", "999")
    settings = _settings(cli, mock_store)
    assert (settings.tenant, settings.server_selection_timeout_ms) == ("from-env", 999)
    assert settings.database == "profiledb"
    # option beats environment
    settings = _settings(cli, mock_store, "--tenant", "from-option", "--database", "optdb")
    assert (settings.tenant, settings.database) == ("from-option", "optdb")
    # a named profile instead of the default one
    monkeypatch.delenv("LOADMGR_TENANT")
    assert _settings(cli, mock_store, "--profile", "other").tenant == "other-profile"
    monkeypatch.setenv("LOADMGR_PROFILE", "other")
    assert _settings(cli, mock_store).tenant == "other-profile"


def test_defaults_without_config(cli: Cli, mock_store: Captured) -> None:
    settings = _settings(cli, mock_store)
    assert settings.tenant is None and settings.env is None
    assert settings.database == DEFAULT_DATABASE
    assert settings.user == "tester"  # LOADMGR_USER from the isolated environment


def test_config_file_in_loadmgr_home_is_found(
    cli: Cli, mock_store: Captured, isolated_env: Path
) -> None:
    _write_config(isolated_env / "config.toml", '[profiles.default]\nenv = "home-env"\n')
    assert _settings(cli, mock_store).env == "home-env"


def test_config_option_beats_environment(
    cli: Cli, mock_store: Captured, config_file: Path, tmp_path: Path
) -> None:
    other = _write_config(tmp_path / "other.toml", '[profiles.default]\nenv = "e2"\n')
    assert _settings(cli, mock_store, "--config", str(other)).env == "e2"


def test_malformed_config_names_file_and_line(
    cli: Cli, mock_store: Captured, tmp_path: Path
) -> None:
    path = _write_config(tmp_path / "bad.toml", '[profiles.default]\ntenant = "ok"\nenv = \n')
    line = _one_error_line(cli("--config", str(path), "tests", "list"), 2)
    assert str(path) in line
    assert "line 3" in line
    assert mock_store.settings is None  # never got as far as the database


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('[profiles.default]\nmongo_url = "x"\n', "unknown key 'mongo_url'"),
        ('[profiles.default]\nserver_selection_timeout_ms = "10"\n', "must be int"),
        ("profiles = 3\n", "must be a table"),
    ],
)
def test_config_with_wrong_keys_is_refused(
    cli: Cli, mock_store: Captured, tmp_path: Path, text: str, needle: str
) -> None:
    path = _write_config(tmp_path / "c.toml", text)
    assert needle in _one_error_line(cli("--config", str(path), "tests", "list"), 2)


def test_unknown_profile(cli: Cli, mock_store: Captured, config_file: Path) -> None:
    line = _one_error_line(cli("--profile", "nope", "tests", "list"), 2)
    assert "'nope'" in line and "team" in line


def test_unknown_profile_without_a_config_file(cli: Cli, mock_store: Captured) -> None:
    assert "'nope'" in _one_error_line(cli("--profile", "nope", "tests", "list"), 2)


def test_missing_explicit_config_file(cli: Cli, mock_store: Captured, tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    assert str(missing) in _one_error_line(cli("--config", str(missing), "tests", "list"), 2)


def test_bad_timeout_and_scope_values(cli: Cli, mock_store: Captured) -> None:
    _one_error_line(cli("--server-selection-timeout", "0", "tests", "list"), 2)
    _one_error_line(cli("--tenant", " ", "tests", "list"), 2)


def test_delete_asks_on_a_terminal(
    cli: Cli, mock_store: Captured, locustfile: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _create(cli, locustfile).exit_code == 0

    class Terminal:
        @staticmethod
        def isatty() -> bool:
            return True

    monkeypatch.setattr("loadmgr.cli.tests.define.sys", type("sys", (), {"stdin": Terminal}))
    declined = cli("tests", "delete", "api", input="n\n")
    assert declined.exit_code != 0
    assert "Delete test 'api'" in declined.stderr
    assert "Traceback" not in declined.stderr
    assert cli("tests", "show", "api", "-q").exit_code == 0
    accepted = cli("tests", "delete", "api", input="y\n")
    assert accepted.exit_code == 0, accepted.stderr
    assert cli("tests", "show", "api").exit_code == 4
    assert _create(cli, locustfile).exit_code == 0
    assert cli("tests", "delete", "api", "--yes").exit_code == 0  # no question asked


# --- start-up cost ------------------------------------------------------------------------


def test_help_does_not_import_pymongo_requests_or_locust() -> None:
    script = (
        "import sys, io, contextlib\n"
        "sys.argv = ['loadmgr', '--help']\n"
        "from loadmgr.cli.main import run\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        run()\n"
        "    except SystemExit:\n"
        "        pass\n"
        "heavy = ('pymongo', 'bson', 'requests', 'locust', 'gevent')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def test_shell_completion_works() -> None:
    script = Path(sys.executable).parent / "loadmgr"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "loadmgr"]
    env = {**os.environ, "_LOADMGR_COMPLETE": "complete_bash", "COMP_WORDS": "loadmgr te",
           "COMP_CWORD": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["tests"]
