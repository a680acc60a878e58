"""`clusters plugin` and the plugin as a file; `clusters check` reporting the plugin.

The plugin itself runs in Locust (tests/integration/test_plugin.py); here it is only text.
"""

from __future__ import annotations

import ast
import importlib.resources
import os
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mongomock
import pytest
import responses

from loadmgr.config import Settings
from loadmgr.locust.plugin import (
    PLUGIN_FILENAME,
    SUPPORTED_VERSIONS,
    plugin_path,
    plugin_source,
    plugin_support_problem,
    plugin_version,
)
from loadmgr.models import Scope
from loadmgr.store import Store
from tests.conftest import REPO, CliResult, error_line, ok

Cli = Callable[..., CliResult]
LOCUST = "http://locust.test:8089"


# -- the file ------------------------------------------------------------------------------


def test_the_plugin_ships_inside_the_package() -> None:
    shipped = importlib.resources.files("loadmgr.locust").joinpath(PLUGIN_FILENAME)
    assert shipped.is_file()
    assert shipped.read_text(encoding="utf-8") == plugin_source()
    assert plugin_path().name == PLUGIN_FILENAME and plugin_path().is_file()


def test_its_version_is_a_supported_literal() -> None:
    assert plugin_version(plugin_source()) == 1
    assert 1 in SUPPORTED_VERSIONS
    assert plugin_support_problem(1) is None and plugin_support_problem(None) is None
    problem = plugin_support_problem(2)
    assert problem and "version 2" in problem and "cannot read" in problem


@pytest.mark.parametrize(
    "source",
    [
        "x = 1\n",
        "PLUGIN_VERSION = '1'\n",
        "PLUGIN_VERSION = True\n",
        "def f():\n    PLUGIN_VERSION = 1\n",
        "PLUGIN_VERSION = (\n",
    ],
)
def test_version_parsing_refuses_what_is_not_a_top_level_integer(source: str) -> None:
    with pytest.raises(ValueError):
        plugin_version(source)


def imports(source: str) -> set[str]:
    """Every module a source imports, anywhere in it (functions included), in full."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_it_needs_nothing_but_locust_and_what_locust_brings() -> None:
    imported = {name.split(".")[0] for name in imports(plugin_source())}
    allowed = set(sys.stdlib_module_names) | {"locust", "flask", "gevent"}
    assert imported - allowed == set(), imported - allowed
    assert "locust" in imported


def test_loadmgr_never_imports_it() -> None:
    module = PLUGIN_FILENAME.removesuffix(".py")
    for path in (REPO / "loadmgr").rglob("*.py"):
        found = [name for name in imports(path.read_text(encoding="utf-8")) if module in name]
        assert not found, (path, found)


# -- clusters plugin -------------------------------------------------------------------------


def test_plugin_prints_the_file(cli: Cli) -> None:
    result = ok(cli("clusters", "plugin"))
    assert result.stdout == plugin_source()
    assert result.stderr == ""


def test_help_says_how_to_load_it(cli: Cli) -> None:
    text = ok(cli("clusters", "plugin", "--help")).stdout
    assert "locust -f locustfile.py,loadmgr_plugin.py --master" in text
    assert "--worker" in text and "import loadmgr_plugin" in text


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_write_to_a_file(cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "my_plugin.py"
    result = ok(cli("clusters", "plugin", "--write", str(target)))
    assert result.stdout == ""
    assert result.stderr.startswith(f"wrote {target} ")
    assert target.read_text(encoding="utf-8") == plugin_source()
    assert leftovers(tmp_path) == []


def test_write_into_a_directory(cli: Cli, tmp_path: Path) -> None:
    ok(cli("clusters", "plugin", "--write", str(tmp_path)))
    assert (tmp_path / PLUGIN_FILENAME).read_text(encoding="utf-8") == plugin_source()


def test_new_file_mode_follows_the_umask(cli: Cli, tmp_path: Path) -> None:
    previous = os.umask(0o027)
    try:
        ok(cli("clusters", "plugin", "--write", str(tmp_path)))
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / PLUGIN_FILENAME).stat().st_mode) == 0o640


def test_writing_the_same_file_again_changes_nothing(cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / PLUGIN_FILENAME
    ok(cli("clusters", "plugin", "--write", str(target)))
    before = target.stat()
    result = ok(cli("clusters", "plugin", "--write", str(tmp_path)))
    assert "already this plugin" in result.stderr
    assert target.stat().st_ino == before.st_ino and target.stat().st_mtime == before.st_mtime


def test_a_different_file_is_kept_without_force(cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / PLUGIN_FILENAME
    target.write_text("# my own edits\n")
    line = error_line(cli("clusters", "plugin", "--write", str(tmp_path)), 2)
    assert line == f"error: {target} exists and differs from this loadmgr's plugin"
    assert target.read_text() == "# my own edits\n"
    assert leftovers(tmp_path) == []


def test_force_replaces_it_and_keeps_its_mode(cli: Cli, tmp_path: Path) -> None:
    target = tmp_path / "plugin.py"
    target.write_text("# old\n")
    target.chmod(0o600)
    ok(cli("clusters", "plugin", "--write", str(target), "--force"))
    assert target.read_text(encoding="utf-8") == plugin_source()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: str(d / "nowhere" / "p.py"), "directory {d}/nowhere does not exist"),
        (lambda d: str(d / "nowhere") + "/", "no such directory"),
        (lambda d: str(d / "afile" / "p.py"), "directory {d}/afile is not a directory"),
        (lambda d: str(d / "adir"), "{d}/adir/loadmgr_plugin.py: it exists and is not a file"),
        (lambda d: " ", "--write needs a path"),
    ],
    ids=["missing-dir", "missing-dir-slash", "parent-is-a-file", "target-is-a-dir", "blank"],
)
def test_bad_paths_are_exit_2(
    cli: Cli, tmp_path: Path, make: Callable[[Path], str], expected: str
) -> None:
    (tmp_path / "afile").write_text("x")
    (tmp_path / "adir" / PLUGIN_FILENAME).mkdir(parents=True)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    line = error_line(cli("clusters", "plugin", "--write", make(tmp_path)), 2)
    assert expected.format(d=tmp_path) in line
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written


def test_force_needs_write(cli: Cli) -> None:
    line = error_line(cli("clusters", "plugin", "--force"), 2)
    assert line == "error: --force applies only with --write"


def test_a_failed_write_leaves_nothing_half_written(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / PLUGIN_FILENAME
    target.write_text("# old\n")

    def refuse(*_args: Any) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    line = error_line(cli("clusters", "plugin", "--write", str(target), "--force"), 2)
    assert line == f"error: cannot write {target}: no space left on device"
    assert target.read_text() == "# old\n"
    assert leftovers(tmp_path) == []


def test_an_unwritable_directory_is_exit_2(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Simulated: these tests may run as root, whom a read-only directory does not stop.
    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("tempfile.mkstemp", refuse)
    line = error_line(cli("clusters", "plugin", "--write", str(tmp_path)), 2)
    assert line == f"error: cannot write {tmp_path / PLUGIN_FILENAME}: permission denied"
    assert list(tmp_path.iterdir()) == []


# -- clusters check ----------------------------------------------------------------------------


@pytest.fixture
def registered(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> Iterator[responses.RequestsMock]:
    """A cluster `remote` registered in mongomock, its Locust answered by `responses`."""
    client: mongomock.MongoClient[dict[str, Any]] = mongomock.MongoClient()

    def open_store(settings: Settings) -> Store:
        return Store(client[settings.database], Scope(), settings.mongo_uri or "")

    monkeypatch.setattr("loadmgr.service.context.open_store", open_store)
    ok(cli("clusters", "add", "remote", "--url", LOCUST, "-q"))
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.get(f"{LOCUST}/stats/requests", json={"state": "ready", "stats": [], "user_count": 0})
        mock.get(f"{LOCUST}/", body="<html></html>", content_type="text/html")
        yield mock


def check_with_plugin(
    cli: Cli, registered: responses.RequestsMock, version: int
) -> tuple[dict[str, Any], str]:
    """`clusters check` of a master whose plugin speaks `version`: its report and stderr."""
    registered.get(f"{LOCUST}/loadmgr/v1/info", json={"plugin": "loadmgr", "version": version})
    result = ok(cli("clusters", "check", "remote", "-o", "json"))
    report = result.json()
    assert isinstance(report, dict)
    return report, result.stderr


def test_check_reports_a_readable_plugin(
    cli: Cli, registered: responses.RequestsMock
) -> None:
    report, stderr = check_with_plugin(cli, registered, 1)
    assert report["pluginVersion"] == 1 and report["pluginSupported"] is True
    assert {"id", "baseUrl", "verifyTls", "reachable", "version", "state"} <= set(report)
    assert stderr == ""


def test_check_says_an_unknown_plugin_version_cannot_be_read(
    cli: Cli, registered: responses.RequestsMock
) -> None:
    report, stderr = check_with_plugin(cli, registered, 99)
    assert report["pluginVersion"] == 99 and report["pluginSupported"] is False
    assert (
        "warning: cluster 'remote': its loadmgr plugin speaks protocol version 99, which this "
        "loadmgr cannot read (it reads version 1)" in stderr
    )


def test_check_without_the_plugin(cli: Cli, registered: responses.RequestsMock) -> None:
    registered.get(f"{LOCUST}/loadmgr/v1/info", status=404, body="Not Found")
    result = ok(cli("clusters", "check", "remote", "-o", "json"))
    report = result.json()
    assert isinstance(report, dict)
    assert report["pluginVersion"] is None and report["pluginSupported"] is None
    assert result.stderr == ""
