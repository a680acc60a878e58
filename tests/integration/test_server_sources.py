"""Issue 23, step 1: `loadmgr sources` against a real Prometheus (Debian's package,
started by the test), and what a source may not be (credentials in the URL, a secret
reference this machine does not allow)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from loadmgr.store.embedded import free_port
from tests.conftest import CliResult, error_line, ok
from tests.locust_servers import running_target
from tests.prometheus_server import Prometheus, running_prometheus

Cli = Callable[..., CliResult]


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Prometheus]:
    with running_target() as target:
        host = target.url.split("//", 1)[1]
        with running_prometheus(tmp_path / "prometheus", [host]) as server:
            yield server


def test_a_source_is_added_listed_shown_checked_and_removed(
    cli: Cli, mongo_uri: str, prometheus: Prometheus
) -> None:
    ok(cli("sources", "add", "prom", "--prometheus", prometheus.url, "-q"))
    listed = ok(cli("sources", "list", "-o", "json")).json()
    assert [s["id"] for s in listed] == ["prom"]  # type: ignore[union-attr,index]
    shown: Any = ok(cli("sources", "show", "prom", "-o", "json")).json()
    assert shown["baseUrl"] == prometheus.url and shown["type"] == "prometheus"
    report: Any = ok(cli("sources", "check", "prom", "-o", "json")).json()
    assert report["reachable"] is True and report["queryOk"] is True
    assert str(report["version"]).startswith("2.")
    assert report["roundTripMs"] >= 0
    ok(cli("sources", "remove", "prom"))
    assert ok(cli("sources", "list", "-o", "json")).json() == []


def test_a_source_that_does_not_answer_is_one_line_exit_6(cli: Cli, mongo_uri: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    ok(cli("sources", "add", "gone", "--prometheus", url, "-q"))
    line = error_line(cli("sources", "check", "gone"), 6)
    assert "cannot reach Prometheus" in line and "connection refused" in line


@pytest.mark.parametrize(
    ("argv", "named"),
    [
        (("--prometheus", "http://u:p@127.0.0.1:9090"), "user:password"),
        (("--prometheus", "http://127.0.0.1:9", "--bearer-token-env", "AWS_SECRET"), "AWS_SECRET"),
        (("--prometheus", "ftp://127.0.0.1:9090"), "http"),
    ],
)  # fmt: skip
def test_a_bad_source_is_refused_and_nothing_stored(
    cli: Cli, mongo_uri: str, mongo_db: Any, argv: tuple[str, ...], named: str
) -> None:
    line = error_line(cli("sources", "add", "bad", *argv), 2)
    assert named in line or named in line.lower()
    assert mongo_db.server_sources.count_documents({}) == 0


def test_a_name_is_unique_in_its_scope(cli: Cli, mongo_uri: str) -> None:
    ok(cli("sources", "add", "prom", "--prometheus", "http://127.0.0.1:9090", "-q"))
    assert "already exists" in error_line(
        cli("sources", "add", "prom", "--prometheus", "http://127.0.0.1:9091"), 5
    )
    assert "not found" in error_line(cli("sources", "show", "nope"), 4)
