"""The smaller things a new user tripped over (issue 15, item 8), one test each."""

from __future__ import annotations

import json
import re
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from loadmgr.cli.output import jsonable
from loadmgr.cli.runs.views import threshold_table
from loadmgr.service.collection.startup import local_cluster_words
from tests.conftest import REPO, CliResult, error_line, ok
from tests.metrics_data import make_run, make_test, snapshots, store_all
from tests.unit.test_cli_unit import Captured, mock_store  # noqa: F401 - a fixture

Cli = Callable[..., CliResult]
ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


# -- --mongo-uri notauri: a usage error at once --------------------------------------------


@pytest.mark.parametrize(
    ("uri", "said"),
    [
        ("notauri", "it must start with mongodb://"),
        ("mongodb://alice:s3cret@mongo one/", "a host name cannot hold blanks"),
        ("mongodb://alice:s3cret@h:port/", "Port"),
    ],
)
def test_a_malformed_mongo_uri_is_refused_before_any_connection(
    cli: Cli, uri: str, said: str
) -> None:
    began = time.monotonic()
    line = error_line(cli("--mongo-uri", uri, "tests", "list"), 2)
    assert time.monotonic() - began < 3  # not after a server selection timeout
    assert said in line and "s3cret" not in line


# -- validation in loadmgr's words -----------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--users", "0", "error: --users must be at least 1 (got 0)"),
        ("--users", "many", "error: --users must be a whole number"),
        ("--spawn-rate", "0", "error: --spawn-rate must be more than 0 (got 0.0)"),
        ("--spawn-rate", "nan", "error: --spawn-rate must be a finite number"),
        ("--duration", "0", "error: --duration must be more than 0 (got 0)"),
        ("--duration", "5x", "error: invalid --duration: duration '5x' (expected e.g. 300"),
        ("--max-users", "0", "error: --max-users must be at least 1 (got 0)"),
        ("--threshold", "p95<", "error: invalid threshold 'p95<': expected METRIC OP VALUE"),
        ("--meta", "novalue", "error: invalid --meta 'novalue': expected KEY=VALUE"),
    ],
)
def test_validation_speaks_of_options_not_of_pydantic(
    cli: Cli, mock_store: Captured, tmp_path: Path, option: str, value: str, said: str  # noqa: F811
) -> None:
    locustfile = tmp_path / "locustfile.py"
    locustfile.write_text("from locust import HttpUser\n")
    result = cli(
        "tests", "create", "--name", "api", "--target-url", "http://127.0.0.1:1",
        "--locustfile", str(locustfile), option, value,
    )
    line = error_line(result, 2)
    assert line.startswith(said), line
    assert "Input should" not in result.stderr and "pydantic" not in result.stderr
    assert mock_store.client is None or mock_store.client["loadmgr"]["load_tests"].count_documents(
        {}
    ) == 0


@pytest.mark.parametrize(
    "args",
    [
        ("runs", "start", "api", "--lost-timeout", "5x"),
        ("runs", "start", "api", "--duration", "5x"),
        ("schedules", "add", "api", "--cron", "0 3 * * *", "--grace", "5x"),
    ],
)
def test_a_bad_duration_names_its_option_once(cli: Cli, args: tuple[str, ...]) -> None:
    option = args[-2]
    line = error_line(cli(*args), 2)
    assert line.startswith(f"error: invalid {option}: duration '5x' (expected e.g."), line


def test_a_bad_number_of_any_command_is_in_our_words(cli: Cli) -> None:
    line = error_line(cli("metrics", "show", "some-run", "--points", "x"), 2)
    assert line == "error: --points must be a whole number"


# -- --workers 0 ---------------------------------------------------------------------------------


def test_the_local_cluster_says_what_it_starts() -> None:
    assert "standalone" in local_cluster_words(0) and "no workers" in local_cluster_words(0)
    assert local_cluster_words(1) == "starting a local Locust: a master and 1 worker"
    assert local_cluster_words(4) == "starting a local Locust: a master and 4 workers"


# -- one timestamp format -------------------------------------------------------------------


def _dates_in(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [d for v in value.values() for d in _dates_in(v)]
    if isinstance(value, list):
        return [d for v in value for d in _dates_in(v)]
    return [value] if isinstance(value, str) and re.match(r"\d{4}-\d\d-\d\dT", value) else []


def test_every_printed_date_has_milliseconds_and_z(
    cli: Cli, mock_store: Captured  # noqa: F811
) -> None:
    assert jsonable(datetime(2026, 12, 2, 13, 45, 1, 123456)) == "2026-12-02T13:45:01.123Z"
    assert jsonable(datetime(2026, 12, 2, 13, 45, 1, tzinfo=timezone.utc)) == (
        "2026-12-02T13:45:01.000Z"
    )
    assert mock_store.client is not None
    test = make_test()
    run = make_run(test, startedAt=datetime(2026, 3, 1, 12, 0, 0, 250_000, tzinfo=timezone.utc))
    store_all(mock_store.client["loadmgr"], test, [run], snapshots(run, 3))
    dates: list[str] = []
    for args in (
        ("runs", "show", run.id),
        ("runs", "list"),
        ("tests", "show", test.id),
        ("metrics", "show", run.id),
        ("metrics", "show", run.id, "--view", "timeseries"),
        ("metrics", "show", run.id, "--view", "timeseries", "--points", "2"),
        ("metrics", "export", run.id),
    ):
        dates += _dates_in(json.loads(ok(cli(*args, "-o", "json")).stdout))
    assert len(dates) > 10 and all(ISO_MS.fullmatch(d) for d in dates), dates
    assert "2026-03-01T12:00:00.250Z" in dates
    line = ok(cli("runs", "list", "--absolute-time")).stdout
    assert "2026-03-01T12:00:00.250Z" in line and "ago" not in line


# -- db status -------------------------------------------------------------------------------


def test_a_stopped_store_is_not_in_use(cli: Cli) -> None:
    status = json.loads(ok(cli("db", "status", "-o", "json")).stdout)
    assert (status["running"], status["inUse"]) == (False, False)


# -- bootstrap.sh ------------------------------------------------------------------------------


def test_bootstrap_silences_build_backend_warnings_only() -> None:
    script = (REPO / "scripts" / "bootstrap.sh").read_text()
    install = next(line for line in script.splitlines() if "pip install" in line and "-e" in line)
    assert "-W ignore::UserWarning" in install
    # What that flag does to pip's process: the backend's notes go, errors stay.
    code = (
        "import sys, warnings\n"
        "from pip._vendor.pyproject_hooks import BuildBackendWarning\n"
        "warnings.warn_explicit('Editable installation.', BuildBackendWarning, 'x.py', 1)\n"
        "warnings.warn('a real deprecation', DeprecationWarning)\n"
        "sys.exit('error: a real failure')\n"
    )
    done = subprocess.run(
        # The last -W wins: pip's ignore::UserWarning as bootstrap.sh gives it.
        [sys.executable, "-W", "always::DeprecationWarning", "-W", "ignore::UserWarning"]
        + ["-c", code],
        capture_output=True,
        text=True,
    )
    assert "Editable installation" not in done.stderr
    assert "a real deprecation" in done.stderr and "a real failure" in done.stderr


# -- the threshold table -----------------------------------------------------------------------


def test_the_threshold_table_shows_units() -> None:
    results = [
        {"expression": "p95<500", "metric": "p95", "op": "<", "limit": 500, "actual": 412.3,
         "passed": True},
        {"expression": "error_rate<1%", "metric": "error_rate", "op": "<", "limit": 0.01,
         "actual": 0.003, "passed": True},
        {"expression": "rps>=100", "metric": "rps", "op": ">=", "limit": 100, "actual": 40,
         "passed": False},
    ]
    console = Console(record=True, width=100)
    console.print(threshold_table(results))
    rows = console.export_text().splitlines()
    assert rows[1].split() == ["THRESHOLD", "LIMIT", "ACTUAL", "RESULT"]
    assert rows[2].split()[1:] == ["<", "500ms", "412ms", "pass"]
    assert rows[3].split()[1:] == ["<", "1%", "0.30%", "pass"]
    assert rows[4].split()[1:] == [">=", "100/s", "40.0/s", "FAIL"]


# -- runs list --tag, --verdict, --absolute-time -----------------------------------------------


def test_runs_list_by_the_tests_tag_and_verdict(cli: Cli, mock_store: Captured) -> None:  # noqa: F811
    assert mock_store.client is not None
    db = mock_store.client["loadmgr"]
    nightly, adhoc = make_test("nightly", tags=["nightly", "api"]), make_test("adhoc")
    store_all(db, nightly)
    store_all(db, adhoc)
    passed, failed = make_run(nightly, verdict="passed"), make_run(nightly, verdict="failed")
    other = make_run(adhoc, verdict="failed")
    store_all(db, runs=[passed, failed, other])

    def ids(*args: str) -> set[str]:
        return set(ok(cli("runs", "list", *args, "-q")).stdout.split())

    assert ids("--tag", "nightly") == {passed.id, failed.id}
    assert ids("--tag", "nightly", "--tag", "api", "--verdict", "failed") == {failed.id}
    assert ids("--tag", "nightly", "--tag", "other") == set()
    assert ids("--verdict", "failed") == {failed.id, other.id}
    table = ok(cli("runs", "list", "--absolute-time")).stdout
    assert "2026-03-01T12:00:00.000Z" in table


# -- the demo target ---------------------------------------------------------------------------


def test_the_demo_target_says_nothing_when_clients_hang_up() -> None:
    server = subprocess.Popen(
        [sys.executable, str(REPO / "examples" / "demo_target.py"), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline().rsplit(":", 1)[1])
        requests = [b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n", b"GET /slow HTTP/1.1\r\nHo",
                    b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /slow HTTP/1.1\r\nHost: x\r\n\r\n"]
        for request in requests * 10:
            # As Locust's users stop: mid-answer, with a reset (no orderly close).
            with socket.create_connection(("127.0.0.1", port)) as client:
                client.sendall(request)
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with socket.create_connection(("127.0.0.1", port)) as client:  # still serving
            client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            assert client.recv(100).startswith(b"HTTP/1.")
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert "Traceback" not in stderr and "Error" not in stderr, stderr


# -- library warnings (issue 20, item 10) ------------------------------------------------------


def test_no_library_warning_reaches_the_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """A warning raised under any command (scipy's precision loss on a near-flat trend)
    is not printed: the user gets one-line errors, not a library's notes with file paths."""
    import warnings

    from loadmgr.cli import main

    def command() -> None:
        warnings.warn("Precision loss occurred", RuntimeWarning, stacklevel=1)

    class Ended(Exception):
        pass

    def end(code: int) -> None:
        raise Ended(code)

    monkeypatch.setattr(main, "app", command)
    monkeypatch.setattr(main.os, "_exit", end)
    monkeypatch.setattr(sys, "warnoptions", [])
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with pytest.raises(Ended):
            main.run()
    assert [str(w.message) for w in shown] == []
