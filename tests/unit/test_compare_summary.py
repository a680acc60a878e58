"""`metrics compare` as a user reads it: the summary's count, changes that add up, max not
counted by default, a warning when the runs had different load (issue 15, item 5)."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable

from loadmgr.models.formatting import side_by_side
from loadmgr.models.verdicts import Regression
from tests.conftest import CliResult, ok
from tests.metrics_data import final_stats, make_run, make_test, steady_intervals, store_all
from tests.unit.test_cli_unit import Captured, mock_store  # noqa: F401 - a fixture

Cli = Callable[..., CliResult]


def _store(captured: Captured, *finals: dict[str, object], **per_run: list[object]) -> list[str]:
    """A test and one finished run per `finals`; `per_run[field]` sets that field per run."""
    assert captured.client is not None
    db = captured.client["loadmgr"]
    test = make_test()
    runs = []
    for index, final in enumerate(finals):
        fields = {name: values[index] for name, values in per_run.items()}
        runs.append(make_run(test, final=final, **fields))
    # Steady intervals that say what the final numbers say: each change is tested on them.
    store_all(db, test, runs, [i for n, r in enumerate(runs) for i in steady_intervals(r, seed=n)])
    return [run.id for run in runs]


def test_a_change_below_the_shown_precision_never_reads_zero() -> None:
    # The issue's `2ms → 1ms (-0ms -23.5%)`: values and change now add up.
    texts, changes = side_by_side("p50", [2.0, 1.53])
    assert texts == ["2.0ms", "1.5ms"] and changes == ["-0.5ms"]
    texts, changes = side_by_side("p95", [1.53, 1.17])
    assert texts == ["1.53ms", "1.17ms"] and changes == ["-0.36ms"]
    texts, changes = side_by_side("p95", [12.4, 12.6])
    assert texts == ["12.4ms", "12.6ms"] and changes == ["+0.2ms"]
    assert side_by_side("p95", [120.0, 148.0]) == (["120ms", "148ms"], ["+28ms"])
    assert side_by_side("p95", [120.0, 120.0, None]) == (["120ms", "120ms", "-"], [None, None])
    assert side_by_side("error_rate", [0.01, 0.0101]) == (["1.00%", "1.01%"], ["+0.01%"])
    assert side_by_side("requests", [100, 120]) == (["100", "120"], ["+20"])


def test_a_regression_sentence_never_shows_the_same_number_twice() -> None:
    line = Regression("p95", 2.0, 2.04, 0.02, 0.01, True).describe()
    assert "(2.00ms → 2.04ms; allowed 1.0%)" in line


def test_the_table_shows_changes_computed_on_the_stored_values(
    cli: Cli, mock_store: Captured  # noqa: F811
) -> None:
    first, second = _store(mock_store, final_stats(p50=2.0), final_stats(p50=1.53))
    table = ok(cli("metrics", "compare", first, second)).stdout
    p50 = next(line for line in table.splitlines() if re.search(r"\bp50\b", line))
    assert "2.0ms" in p50 and "1.5ms (-0.5ms -23.5%)" in p50
    assert "-0ms" not in table


def _summary(result: CliResult) -> tuple[int, list[str], int]:
    """The last stderr line, `N regression(s): a, b and M more` → (N, [a, b], M)."""
    line = result.stderr.splitlines()[-1]
    match = re.fullmatch(r"(\d+) regression\(s\): (.*?)(?: and (\d+) more)?", line)
    assert match is not None, line
    return int(match[1]), match[2].split(", "), int(match[3] or 0)


def test_the_summary_counts_what_it_names(cli: Cli, mock_store: Captured) -> None:  # noqa: F811
    ids = _store(mock_store, final_stats(), final_stats(p95=200.0))
    count, listed, more = _summary(ok(cli("metrics", "compare", *ids)))
    # Worse in the totals and in each of the two requests: three names, said to be three.
    assert listed == ["p95 (Aggregated)", "p95 (GET /api/items)", "p95 (POST /api/orders)"]
    assert (count, more) == (3, 0)


def test_the_summary_names_the_run_of_each_regression(
    cli: Cli, mock_store: Captured  # noqa: F811
) -> None:
    ids = _store(mock_store, final_stats(), final_stats(p95=200.0), final_stats(p99=400.0))
    count, listed, more = _summary(ok(cli("metrics", "compare", *ids)))
    assert count == len(listed) + more == 6 and len(set(listed)) == len(listed)
    assert "p95 (Aggregated) #2" in listed and "p99 (Aggregated) #3" in listed


def test_more_regressions_than_are_named_are_counted(
    cli: Cli, mock_store: Captured  # noqa: F811
) -> None:
    worse = final_stats(p50=80.0, p90=180.0, p95=240.0, p99=500.0, avg=100.0, rps=50.0)
    ids = _store(mock_store, final_stats(), worse)
    count, listed, more = _summary(ok(cli("metrics", "compare", *ids)))
    assert count == len(listed) + more == 6 * 3 and len(listed) == 8


def test_max_is_shown_but_counted_only_when_asked(
    cli: Cli, mock_store: Captured  # noqa: F811
) -> None:
    ids = _store(mock_store, final_stats(max_ms=900.0), final_stats(max_ms=3000.0))
    default = ok(cli("metrics", "compare", *ids, "--fail-on-regression"))
    assert "regression" not in default.stderr
    max_line = next(line for line in default.stdout.splitlines() if re.search(r"\bmax\b", line))
    assert "3,000ms (+2,100ms +233.3%)" in max_line and "worse" not in max_line
    as_csv = ok(cli("metrics", "compare", *ids, "-o", "csv")).stdout
    rows = list(csv.DictReader(io.StringIO(as_csv)))
    assert not any(r["regression"] == "true" for r in rows)

    counted = cli("metrics", "compare", *ids, "--include-max", "--fail-on-regression")
    assert counted.exit_code == 1
    assert counted.stderr.splitlines()[-1].startswith("3 regression(s): max (Aggregated)")
    # An allowance of its own for max is asking too.
    allowed = cli("metrics", "compare", *ids, "--max-regression", "max=50%")
    assert "max (Aggregated)" in allowed.stderr


def test_a_warning_when_the_load_differed(cli: Cli, mock_store: Captured) -> None:  # noqa: F811
    same = _store(mock_store, final_stats(), final_stats())
    assert "different load" not in ok(cli("metrics", "compare", *same)).stderr
    ids = _store(
        mock_store,
        final_stats(),
        final_stats(),
        final_stats(),
        targetUsers=[20, 40, 20],
        durationSeconds=[600, 600, 300],
        locustClusterId=["local", "local", "k8s"],
    )
    warning = ok(cli("metrics", "compare", *ids, "-o", "json")).stderr
    assert (
        "warning: the runs had different load, so their numbers may differ for that: "
        "users 20 (#1) vs 40 (#2) vs 20 (#3); duration 10m (#1) vs 10m (#2) vs 5m (#3); "
        "cluster local (#1) vs local (#2) vs k8s (#3)"
    ) in warning
