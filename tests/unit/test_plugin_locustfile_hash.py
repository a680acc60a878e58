"""The plugin's hash of what a master's -f named equals loadmgr's stored hash of the same
locustfile (one file, a folder, a.py,b.py), whatever the tree holds: hidden names,
__pycache__, compiled files, symlinks out of the folder, the plugin itself beside the
locustfile. Where loadmgr could not store it, the plugin says null, never a wrong hash."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadmgr.service.definitions.locustfiles import read_locustfile
from tests.unit.test_plugin_logic import StubEvents, load_plugin

PLUGIN_FILE = "/opt/plugin/loadmgr_plugin.py"  # what the plugin takes for its own path


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> Any:
    return load_plugin(monkeypatch, StubEvents()).locustfile_sha256


def stored(option: str) -> str | None:
    return read_locustfile(option, "remote").sha256


NAMES = st.sampled_from(
    ["common.py", "data.csv", "users.py", "__init__.py", ".env", "x.pyc", "_private.py",
     "notes.txt", "a b.py", "é.py"]
)  # fmt: skip
FOLDERS = st.sampled_from(["", "pkg", "pkg/sub", "data", "__pycache__", ".git", "other"])
CONTENT = st.binary(max_size=64).map(lambda raw: b"X = %r\n" % raw)


@st.composite
def trees(draw: st.DrawFn) -> list[tuple[str, bytes]]:
    files = draw(st.lists(st.tuples(FOLDERS, NAMES, CONTENT), min_size=1, max_size=12))
    tree = {f"{folder}/{name}".lstrip("/"): data for folder, name, data in files}
    tree["locustfile.py"] = b"from locust import HttpUser\n"
    return sorted(tree.items())


def write(root: Path, tree: list[tuple[str, bytes]]) -> None:
    for relative, data in tree:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root.parent / "outside.py").write_text("Y = 1\n")
    (root / "link_out.py").symlink_to(root.parent / "outside.py")  # left out by both


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tree=trees(), how=st.sampled_from(["folder", "file", "pair", "subfolder", "with-plugin"]))
def test_the_plugin_hashes_what_loadmgr_stores(hashed: Any, tree: Any, how: str) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "deploy"
        root.mkdir()
        write(root, tree)
        option = {
            "folder": str(root),
            "file": str(root / "locustfile.py"),
            "pair": f"{root / 'locustfile.py'},{root / 'data.csv'}",
            "subfolder": f"{root / 'locustfile.py'},{root / 'pkg'}",
            "with-plugin": str(root / "locustfile.py"),
        }[how]
        if how == "pair" and not (root / "data.csv").exists():
            option = f"{root / 'locustfile.py'},{root / 'link_out.py'}"
        if how == "subfolder" and not (root / "pkg").is_dir():
            option = str(root)
        try:
            expected = stored(option)
        except Exception:  # noqa: BLE001 - loadmgr refuses it (not UTF-8, no .py...): no claim
            expected = None
        # The master's -f as the docs say to start it: the locustfile, then the plugin.
        master_option = f"{option},{root / 'loadmgr_plugin.py'}" if how == "with-plugin" else option
        if expected is not None:
            assert hashed(master_option, PLUGIN_FILE) == expected


def test_a_relative_option_is_read_from_the_masters_directory(
    hashed: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "locustfile.py").write_text("A = 1\n")
    monkeypatch.chdir(tmp_path)
    assert hashed("locustfile.py, /srv/loadmgr_plugin.py", PLUGIN_FILE) == stored("locustfile.py")
    assert hashed(f"locustfile.py,{PLUGIN_FILE}", PLUGIN_FILE) == stored("locustfile.py")


@pytest.mark.parametrize(
    "option",
    [None, "", "-", "https://example.com/locustfile.py", "missing.py", "locustfile.py,gone.py",
     "many", "big"],
)  # fmt: skip
def test_what_it_cannot_tell_is_null(
    hashed: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, option: str | None
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "locustfile.py").write_text("A = 1\n")
    if option == "many":  # past loadmgr's 200 files
        os.mkdir("many")
        for index in range(201):
            (tmp_path / "many" / f"m{index}.py").write_text("")
    if option == "big":  # past its 4 MB
        os.mkdir("big")
        (tmp_path / "big" / "locustfile.py").write_text("A = 1\n")
        (tmp_path / "big" / "data.bin").write_bytes(b"\1" * 4_000_001)
    assert hashed(option, PLUGIN_FILE) is None
