"""Issue 21, item 12: no CSV loadmgr writes carries a raw control character or
bidirectional override, into a file as on a terminal (docs/output.md: a CSV file is safe to
`cat`). Every CSV-producing command and view runs over stored names of any text (request
names, test and run names, tags, metadata, errors, descriptions) with its stdout captured
(not a terminal), and its output must hold none of them: they are the text `\\x1b`."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loadmgr.models import LocustCluster
from tests.conftest import CliResult
from tests.metrics_data import final_stats, make_run, make_test, plugin_snapshots, store_all
from tests.unit.test_cli_unit import Captured, mock_store  # noqa: F401 - a fixture

Cli = Callable[..., CliResult]

# What must never reach a file raw: C0 but newline (CSV quotes it), DEL, C1, the line and
# paragraph separators, zero-width and bidirectional marks and overrides (the set
# `sanitize` escapes).
RAW = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069]")
HOSTILE = ["\x1b]0;owned\x07", "\x1b[31m", "\r", "\x00", "\u202e", "\x9b2J", "\x07", "\u2066",
           "\u061c", "\u2028"]  # fmt: skip
NAMES = st.lists(
    st.sampled_from(HOSTILE) | st.text(st.characters(codec="utf-8"), max_size=4),
    min_size=1,
    max_size=4,
).map("".join)


def commands(test: str, run: str, other: str) -> list[list[str]]:
    """Every command and view that writes CSV from stored data (docs/output.md)."""
    views = ("summary", "timeseries", "requests", "errors", "scatter")
    return [
        ["tests", "list"],
        ["tests", "show", test],
        ["tests", "trend", test, "--metric", "p95"],
        ["runs", "list"],
        ["runs", "show", run],
        *(["metrics", "show", run, "--view", view] for view in views),
        ["metrics", "show", run, "--view", "timeseries", "--points", "2"],
        ["metrics", "export", run],
        ["metrics", "export", run, "--requests"],
        ["metrics", "compare", run, other],
        ["clusters", "list"],
        ["clusters", "show", "k8s"],
    ]


def _store(db: Any, name: str) -> tuple[str, str, str]:
    test = make_test(f"t{name}", tags=[f"g{name}"], metadata={"k": name}, description=name)
    per_request = [
        {"method": "GET", "name": name, "numRequests": 10, "numFailures": 1, "p95ResponseMs": 9.0}
    ]
    errors = [{"method": "GET", "name": name, "error": name, "occurrences": 1}]
    run = make_run(
        test,
        name=name,
        error=name,
        metadata={"m": name},
        final=final_stats(per_request=per_request, errors=errors),
    )
    other = make_run(test, name=f"o{name}")
    intervals = plugin_snapshots(run, 3)
    for snapshot in intervals:
        for item in snapshot.requestStats:
            item.name = f"{item.name}{name}"
    store_all(db, test, [run, other], intervals)
    cluster = LocustCluster(id="k8s", baseUrl="http://127.0.0.1:1", description=name)
    db["locust_clusters"].insert_one(cluster.to_document())
    return test.id, run.id, other.id


def test_every_csv_holds_no_raw_control_character(cli: Cli, mock_store: Captured) -> None:  # noqa: F811
    assert mock_store.client is not None

    @settings(
        max_examples=8,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    @given(name=NAMES)
    def one(name: str) -> None:
        assert mock_store.client is not None
        mock_store.client.drop_database("loadmgr")
        ids = _store(mock_store.client["loadmgr"], name)
        for argv in commands(*ids):
            result = cli(*argv, "-o", "csv")
            assert result.exit_code in (0, 1), (argv, result.stdout, result.stderr)
            assert "Traceback" not in result.stderr
            raw = RAW.search(result.stdout)
            assert raw is None, (argv, raw, result.stdout[:2000])

    one()
