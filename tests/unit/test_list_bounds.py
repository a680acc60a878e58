"""Every list or map a test's or run's document holds from the command line is bounded in
count (and each item in length), so that a document always fits MongoDB's 16 MiB
(tests/unit/test_document_sizes.py): beyond a bound, exit 2 and nothing stored."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from loadmgr.models.meta import META_KEYS_MAX, TAGS_MAX
from loadmgr.models.thresholds import THRESHOLD_MAX_CHARS, THRESHOLDS_MAX
from loadmgr.service.server_metrics.definitions import SERVER_METRICS_MAX
from tests.conftest import CliResult, error_line
from tests.unit.test_cli_unit import Captured, mock_store  # noqa: F401 - a fixture

Cli = Callable[..., CliResult]


@pytest.fixture
def locustfile(tmp_path: Path) -> Path:
    path = tmp_path / "locustfile.py"
    path.write_text("from locust import HttpUser\n")
    return path


def _thresholds(count: int, first: int = 0) -> list[str]:
    args: list[str] = []
    for i in range(first, first + count):
        args += ["--threshold", f"GET /r{i}:p95<500ms"]
    return args


def _create(cli: Cli, locustfile: Path, *extra: str) -> CliResult:
    return cli(
        "tests", "create", "--name", "t", "--target-url", "http://127.0.0.1:1/",
        "--locustfile", str(locustfile), *extra,
    )  # fmt: skip


# (what is given, the option the error names) past each bound.
def _repeated(option: str, count: int, value: str) -> list[str]:
    args: list[str] = []
    for i in range(count):
        args += [option, value.format(i=i)]
    return args


PAST_THE_BOUND = [
    (_thresholds(THRESHOLDS_MAX + 1), "--threshold"),
    (_repeated("--tag", TAGS_MAX + 1, "t{i}"), "--tag"),
    (_repeated("--meta", META_KEYS_MAX + 1, "k{i}=v"), "--meta"),
    (
        ["--source", "prom", *_repeated("--server-metric", SERVER_METRICS_MAX + 1, "m{i}=up")],
        "--server-metric",
    ),
    (["--threshold", "GET /" + "x" * THRESHOLD_MAX_CHARS + ":p95<1s"], "threshold"),
]


@pytest.mark.parametrize(("args", "named"), PAST_THE_BOUND)
def test_tests_create_refuses_past_each_bound_and_stores_nothing(
    cli: Cli,
    mock_store: Captured,  # noqa: F811
    locustfile: Path,
    args: list[str],
    named: str,
) -> None:
    assert named in error_line(_create(cli, locustfile, *args), 2)
    assert cli("tests", "update", "t", *args).exit_code != 0
    assert mock_store.client is not None
    assert mock_store.client["loadmgr"]["load_tests"].count_documents({}) == 0


def test_at_the_bound_a_test_is_stored_and_its_run_may_hold_no_more(
    cli: Cli,
    mock_store: Captured,  # noqa: F811
    locustfile: Path,
) -> None:
    assert _create(cli, locustfile, *_thresholds(THRESHOLDS_MAX)).exit_code == 0
    # A run's own thresholds are bounded too, and what they make with the test's.
    over = ("runs", "start", "t", "--cluster", "local", *_thresholds(THRESHOLDS_MAX + 1))
    assert "--threshold" in error_line(cli(*over), 2)
    assert "thresholds" in error_line(cli("runs", "start", "t", *_thresholds(1, 500)), 2)
    assert mock_store.client is not None
    assert mock_store.client["loadmgr"]["load_test_runs"].count_documents({}) == 0


def test_the_writer_stores_at_most_max_events_the_last_counting_the_rest() -> None:
    from loadmgr.service.collection.events import DROPPED, MAX_DETAIL, MAX_EVENTS, RunEvents

    events = RunEvents()
    for i in range(100_000):
        events.add("worker-joined", f"workers: {i} → {i + 1}" + "x" * 5_000)
    stored = events.fields()["events"]
    assert len(stored) == MAX_EVENTS
    assert all(len(e["detail"]) <= MAX_DETAIL for e in stored)
    assert stored[-1]["kind"] == DROPPED
    assert stored[-1]["dropped"] == 100_000 - (MAX_EVENTS - 1)
    # A take-over reads them back and goes on counting; a run holding more is cut down.
    again = RunEvents(list(stored))
    again.add("worker-lost", "workers: 2 → 1")
    assert len(again.items) == MAX_EVENTS and again.items[-1]["dropped"] == 100_000 - (
        MAX_EVENTS - 2
    )
    flood = RunEvents([{"at": None, "kind": "worker-lost", "detail": "x"}] * 100_000)
    assert len(flood.fields()["events"]) == MAX_EVENTS
    assert flood.items[-1]["dropped"] == 100_000 - (MAX_EVENTS - 1)


def test_runs_show_prints_the_first_events_and_how_many_more(
    cli: Cli,
    mock_store: Captured,  # noqa: F811
) -> None:
    from loadmgr.cli.runs.views import SHOWN_EVENTS
    from tests.metrics_data import make_test, store_all
    from tests.trend_data import nightly_runs, stepped

    assert mock_store.client is not None
    db = mock_store.client["loadmgr"]
    test = make_test("checkout")
    run = nightly_runs(test, stepped(2, 30, seed=3))[-1]
    store_all(db, test, [run])
    events = [{"at": None, "kind": "worker-lost", "detail": f"n{i}"} for i in range(100_000)]
    db.load_test_runs.update_one({"id": run.id}, {"$set": {"events": events}})
    shown = cli("runs", "show", run.id, "-o", "table")
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout.count("worker-lost") == SHOWN_EVENTS
    assert f"and {100_000 - SHOWN_EVENTS:,} more" in shown.stdout
