"""`loadmgr apply` / `export` end to end on a real MongoDB-wire server (SecantusDB), and
two applies of different files at once, as separate processes: each file is applied
whole or not at all, never half."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult, documents_of, error_line, loadmgr_command, ok, reaped
from tests.secret_allowance import allow_secrets
from tests.unit.test_declared import COLLECTIONS, FULL

pytestmark = pytest.mark.integration
Cli = Callable[..., CliResult]


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    allow_secrets(monkeypatch, "TEAM_HOOK", directory=tmp_path)
    monkeypatch.setenv("TEAM_HOOK", "https://hooks.example.com/T0/secret")
    (tmp_path / "hook.url").write_text("https://hooks.example.com/T2/secret\n")
    (tmp_path / "locust").mkdir()
    (tmp_path / "locust" / "checkout.py").write_text("from locust import HttpUser\n")
    (tmp_path / "locust" / "search.py").write_text("from locust import HttpUser\n# s\n")
    return tmp_path


def test_apply_export_round_trip_on_the_real_server(cli: Cli, mongo_db: Any, folder: Path) -> None:
    path = folder / "loadtests.toml"
    path.write_text(FULL)
    assert "5 to create" in ok(cli("apply", "-f", str(path), "--dry-run")).stdout
    assert all(not docs for docs in documents_of(mongo_db, COLLECTIONS).values())
    ok(cli("apply", "-f", str(path)))
    stored = documents_of(mongo_db, COLLECTIONS)
    assert ok(cli("apply", "-f", str(path))).stdout.startswith("no changes")
    exported = ok(cli("export")).stdout
    path.write_text(exported)
    assert ok(cli("apply", "-f", str(path))).stdout.startswith("no changes")
    assert documents_of(mongo_db, COLLECTIONS) == stored
    path.write_text(exported.replace('format = "slack"', 'format = "json"'))
    changed = ok(cli("apply", "-f", str(path), "-o", "json")).json()["changes"]
    assert [(c["name"], c["fields"]) for c in changed] == [
        ("team", [{"key": "format", "old": "slack", "new": "json"}])
    ]
    bad = exported.replace("p95<500ms", "p96<500ms")
    path.write_text(bad)
    line = next(n for n, text in enumerate(bad.splitlines(), 1) if "p96" in text)
    message = error_line(cli("apply", "-f", str(path)), 2)
    assert f"loadtests.toml:{line}: tests.checkout.thresholds[0]: " in message


def _file(folder: Path, name: str, tests: list[str]) -> Path:
    path = folder / name
    path.write_text(
        "".join(
            f'[tests.{test}]\ntarget_url = "http://127.0.0.1:1"\n'
            'locustfile = "locust/checkout.py"\n\n'
            for test in tests
        )
    )
    return path


def _at_once(*paths: Path) -> list[int]:
    """`loadmgr apply -f PATH` for each path, as processes started together."""
    processes = [
        subprocess.Popen(
            [*loadmgr_command(), "apply", "-f", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for path in paths
    ]
    codes = []
    for process in processes:
        with reaped(process):
            _, err = process.communicate(timeout=120)
            assert b"Traceback" not in err, err
            codes.append(process.returncode)
    return codes


def test_two_applies_of_different_files_at_once_never_leave_half_a_file(
    mongo_db: Any, folder: Path
) -> None:
    """Both files declare `shared`: one apply wins whole, the other keeps nothing (exit 5);
    files with nothing in common are both applied whole."""
    a = [f"a{i}" for i in range(8)]
    b = [f"b{i}" for i in range(8)]
    for round_ in range(3):
        mongo_db.load_tests.delete_many({})
        first = _file(folder, "a.toml", [*a[: 2 + round_], "shared", *a[2 + round_ :]])
        second = _file(folder, "b.toml", [*b[: 5 - round_], "shared", *b[5 - round_ :]])
        codes = _at_once(first, second)
        assert sorted(codes) == [0, 5], codes
        names = {d["name"]: d.get("managedBy") for d in mongo_db.load_tests.find()}
        winner, loser = (a, b) if codes[0] == 0 else (b, a)
        file = "a.toml" if winner is a else "b.toml"
        assert names == dict.fromkeys([*winner, "shared"], file), (codes, names)
        assert not set(loser) & set(names)
    mongo_db.load_tests.delete_many({})
    codes = _at_once(_file(folder, "a.toml", a), _file(folder, "b.toml", b))
    assert codes == [0, 0]
    assert mongo_db.load_tests.count_documents({}) == len(a) + len(b)
