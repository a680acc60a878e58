"""Fixtures the integration tests share: a locustfile, a test made through the CLI, and the
check that a refused command left every collection as it was."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliResult, create_test_argv, documents_of, error_line, ok

Cli = Callable[..., CliResult]

# Every collection a command may write: a refused command must leave them all as they were.
COLLECTIONS = (
    "load_tests",
    "load_test_runs",
    "metrics_timeseries",
    "locust_clusters",
    "cluster_leases",
)
# Nothing listens there: defining a test never reaches its target.
DEAD_TARGET = "http://127.0.0.1:1"


# What `locustfile` holds unless the test module sets its own `LOCUSTFILE`: a valid file
# with one user class, for the tests that define tests but never run them.
IDLE_LOCUSTFILE = "from locust import HttpUser\n\n\nclass Web(HttpUser):\n    pass\n"


@pytest.fixture
def locustfile(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """The test module's `LOCUSTFILE` (else `IDLE_LOCUSTFILE`) as `locustfile.py`."""
    path = tmp_path / "locustfile.py"
    path.write_text(getattr(request.module, "LOCUSTFILE", IDLE_LOCUSTFILE))
    return path


def create(cli: Cli, locustfile: Path, *extra: str, name: str = "new") -> CliResult:
    """`tests create` of a test aimed at a dead target, `extra` options appended."""
    return cli(*create_test_argv(name, DEAD_TARGET, locustfile), *extra)


def created(cli: Cli, locustfile: Path, name: str, *extra: str) -> dict[str, Any]:
    """The document of a test made through the CLI, as `-o json` prints it."""
    doc = ok(create(cli, locustfile, "-o", "json", *extra, name=name)).json()
    assert isinstance(doc, dict)
    return doc


@pytest.fixture
def existing(cli: Cli, locustfile: Path) -> dict[str, Any]:
    """One test named `api`, to collide with and to leave untouched."""
    return created(cli, locustfile, "api")


@pytest.fixture
def unchanged(mongo_db: Any, existing: dict[str, Any]) -> Iterator[None]:
    """Asserts at the end that no collection gained, lost or changed a document."""
    before = documents_of(mongo_db, COLLECTIONS)
    assert len(before["load_tests"]) == 1
    yield
    assert documents_of(mongo_db, COLLECTIONS) == before


def refused(result: CliResult, code: int = 2) -> str:
    """The one error line of a refused command, with nothing at all on stdout."""
    assert result.stdout == "", result.stdout
    return error_line(result, code)
