"""The built-in `local` cluster is visible (issue 15.2): listed, shown and checked like a
registered one, in every scope, and refused where it cannot apply."""

from __future__ import annotations

import os
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import documents_of, error_line, ok

pytestmark = pytest.mark.integration


def test_local_is_listed_first_marked_built_in_in_every_scope(cli: Any, mongo_db: Any) -> None:
    ok(cli("clusters", "add", "k8s", "--url", "http://127.0.0.1:9", "--tenant", "b"))
    for scope in ((), ("--tenant", "a"), ("--tenant", "b", "--env", "x")):
        listed = ok(cli(*scope, "clusters", "list", "-o", "json")).json()
        assert listed[0]["id"] == "local" and listed[0]["builtIn"] is True
        assert all("builtIn" not in cluster for cluster in listed[1:])
    table = ok(cli("clusters", "list")).stdout
    assert "local" in table and "built in" in table and "k8s" in table
    assert mongo_db.locust_clusters.count_documents({"id": "local"}) == 0  # never stored


def test_show_local(cli: Any) -> None:
    shown = ok(cli("clusters", "show", "local", "-o", "json")).json()
    assert shown["builtIn"] is True and shown["workers"] == (os.cpu_count() or 1)
    assert "built in" in ok(cli("clusters", "show", "local")).stdout


def test_check_local_reports_locust_cores_and_plugin(cli: Any, isolated_env: Path) -> None:
    report = ok(cli("clusters", "check", "local", "-o", "json")).json()
    assert report["version"] == version("locust")
    assert report["cores"] == (os.cpu_count() or 1) == report["workers"]
    assert report["pluginLoads"] is True and report["pluginSupported"] is True
    assert not (isolated_env / "db").exists()  # no store was needed, none was started


def test_check_local_without_a_loadable_locust_is_exit_6(
    cli: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A `locust` package that fails to import, first on the probe's path.
    broken = tmp_path / "site" / "locust"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('no gevent here')\n")
    monkeypatch.setenv("PYTHONPATH", str(broken.parent))
    line = error_line(cli("clusters", "check", "local"), 6)
    assert "local cluster cannot be used" in line and "no gevent here" in line


def test_local_cannot_be_removed_nor_added(cli: Any, mongo_db: Any) -> None:
    before = documents_of(mongo_db, ("locust_clusters",))
    assert "built-in" in error_line(cli("clusters", "remove", "local"), 2)
    assert "built-in" in error_line(cli("clusters", "add", "local", "--url", "http://h"), 2)
    assert documents_of(mongo_db, ("locust_clusters",)) == before
