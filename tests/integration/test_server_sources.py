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


# -- step 2: server metrics on a test, checked by Prometheus' own parser -----------------

CPU = "cpu:cores=sum(rate(process_cpu_seconds_total[$interval]))"


def test_a_server_metric_is_checked_by_prometheus_and_stored(
    cli: Cli, mongo_uri: str, mongo_db: Any, prometheus: Prometheus, locustfile: Path
) -> None:
    ok(cli("sources", "add", "prom", "--prometheus", prometheus.url, "-q"))
    base = ("tests", "create", "--name", "t", "--target-url", "http://127.0.0.1:1",
            "--locustfile", str(locustfile))  # fmt: skip
    line = error_line(cli(*base, "--server-metric", "bad=sum(rate(x[", "--source", "prom"), 2)
    assert "Prometheus refused the query" in line and "parse error" in line
    assert mongo_db.load_tests.count_documents({}) == 0
    assert "needs --source" in error_line(cli(*base, "--server-metric", CPU), 2)
    assert "not found" in error_line(cli(*base, "--server-metric", CPU, "--source", "x"), 4)
    created: Any = ok(cli(*base, "--server-metric", CPU, "--source", "prom", "-o", "json")).json()
    assert created["serverMetrics"] == [
        {
            "name": "cpu",
            "unit": "cores",
            "query": "sum(rate(process_cpu_seconds_total[$interval]))",
            "source": "prom",
        }
    ]
    assert "used by test 't'" in error_line(cli("sources", "remove", "prom"), 5)
    ok(cli("tests", "update", "t", "--clear-server-metrics", "-q"))
    ok(cli("sources", "remove", "prom"))


def test_a_source_that_does_not_answer_is_a_warning_and_the_metric_kept(
    cli: Cli, mongo_uri: str, locustfile: Path
) -> None:
    ok(cli("sources", "add", "gone", "--prometheus", f"http://127.0.0.1:{free_port()}", "-q"))
    result = ok(
        cli("tests", "create", "--name", "t", "--target-url", "http://127.0.0.1:1",
            "--locustfile", str(locustfile), "--server-metric", CPU, "--source", "gone", "-q")
    )  # fmt: skip
    assert "warning: server metric 'cpu' not checked" in result.stderr
    assert "connection refused" in result.stderr


def test_a_threshold_on_a_server_metric_the_run_does_not_read_is_refused(
    cli: Cli, mongo_uri: str, mongo_db: Any, locustfile: Path
) -> None:
    ok(cli("tests", "create", "--name", "t", "--target-url", "http://127.0.0.1:1",
           "--locustfile", str(locustfile), "--threshold", "server.cpu<2", "-q"))  # fmt: skip
    line = error_line(cli("runs", "start", "t"), 2)
    assert "server.cpu" in line and "does not read" in line
    assert mongo_db.load_test_runs.count_documents({}) == 0
