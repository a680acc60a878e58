"""Run documents whose numbers another program wrote (a string, an object, NaN, infinity
where a number belongs; `totals` or `requestStats` of the wrong shape): every command that
reads them still answers, reads such a value as unknown, and never prints `NaN` as JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import ok
from tests.metrics_data import make_test, store_all
from tests.trend_data import nightly_runs, noisy

pytestmark = pytest.mark.integration

# Field set on one run each → the value: what anything (mongosh, a script, a bug) may write.
NONSENSE: list[tuple[str, Any]] = [
    ("finalStats.totals.p95ResponseMs", float("nan")),
    ("finalStats.totals.p95ResponseMs", float("inf")),
    ("finalStats.totals.p95ResponseMs", "abc"),
    ("finalStats.totals.p95ResponseMs", {"x": 1}),
    ("finalStats.totals.requests", float("nan")),
    ("finalStats.totals", "abc"),
    ("finalStats.requestStats", 5),
    ("finalStats.requestStats", [1, {"name": 3}, "x"]),
    ("lastMetrics", True),
    ("lastMetrics.totalRequests", "many"),
    ("lastMetrics.p95ResponseMs", float("-inf")),
]


def strict_json(text: str) -> Any:
    """JSON as a strict parser (jq, JSON.parse) reads it: NaN and Infinity are errors."""

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in JSON output")

    return json.loads(text, parse_constant=refuse)


def test_nonsense_numbers_read_as_unknown_everywhere(cli: Any, mongo_db: Any) -> None:
    test = make_test("hostile")
    runs = nightly_runs(test, noisy(len(NONSENSE) + 4, seed=3))
    store_all(mongo_db, test, runs)
    spoiled = runs[2 : 2 + len(NONSENSE)]
    for run, (path, value) in zip(spoiled, NONSENSE, strict=True):
        mongo_db.load_test_runs.update_one({"id": run.id}, {"$set": {path: value}})
    good = runs[0].id

    for fmt in ("json", "jsonl"):
        text = ok(cli("tests", "trend", "hostile", "-o", fmt)).stdout
        rows = [strict_json(line) for line in text.splitlines()] if fmt == "jsonl" else (
            strict_json(text)
        )
        p95 = {r["runId"]: r["value"] for r in rows if r["metric"] == "p95"}
        assert [p95[run.id] for run in spoiled[:4]] == [None] * 4  # NaN, inf, "abc", {}
    for args in (["-o", "csv"], ["-o", "table"], ["--html", "-"], ["--fail-on-regression"],
                 ["--request", "GET /api/items", "-o", "json"]):
        ok(cli("tests", "trend", "hostile", *args))
    strict_json(ok(cli("runs", "list", "-o", "json")).stdout)
    ok(cli("runs", "list", "-o", "table"))
    ok(cli("runs", "list", "-o", "csv"))
    for run in spoiled:
        shown = strict_json(ok(cli("runs", "show", run.id, "-o", "json")).stdout)
        assert isinstance(shown["lastMetrics"], dict)
        ok(cli("runs", "show", run.id, "-o", "table"))
        compared = cli("metrics", "compare", good, run.id, "-o", "json")
        assert compared.exit_code in (0, 1), compared.stderr
        strict_json(compared.stdout)
        table = cli("metrics", "compare", run.id, good, "-o", "table")
        assert table.exit_code in (0, 1) and "Traceback" not in table.stderr, table.stderr
    shown = strict_json(ok(cli("runs", "show", spoiled[5].id, "-o", "json")).stdout)
    assert shown["finalStats"]["totals"] is None  # "abc" where an object belongs
    shown = strict_json(ok(cli("runs", "show", spoiled[7].id, "-o", "json")).stdout)
    assert shown["finalStats"]["requestStats"] == [{"name": 3}]
