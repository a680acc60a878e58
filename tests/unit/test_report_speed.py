"""The run report's fast path (issue 26, case 13 of docs/benchmarks.md): what it skips
and what it must still give exactly."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from typing import Any

import mongomock
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadmgr.models import LoadTestRun, Scope
from loadmgr.models.documents.compact import compact, hist_flat
from loadmgr.service.analysis import latency, views
from loadmgr.service.analysis.change_points import Detection, detect_shifts, noise_sigma
from loadmgr.service.reports import charts, run_html
from loadmgr.service.reports.charts import _worker_cpu as _worker_cpu_of
from loadmgr.store import Store
from tests.metrics_data import START, make_run, make_test, plugin_snapshots, store_all


def _modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running `code`."""
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return set(done.stdout.split())


def test_a_series_that_cannot_shift_never_imports_ruptures() -> None:
    """ruptures (with scipy: ~0.8 s of imports) only for a series that can hold a shift,
    numpy only for one with noise: a flat or short one is answered without them."""
    code = (
        "from loadmgr.service.analysis.change_points import Detection, detect_shifts\n"
        "assert detect_shifts([5.0] * 30, Detection()) == []\n"
        "assert detect_shifts([1.0, 9.0, 1.0, 9.0], Detection()) == []\n"
        "assert detect_shifts([], Detection()) == []\n"
    )
    loaded = _modules_after(code)
    assert "ruptures" not in loaded
    assert "numpy" not in loaded
    assert not any(name.startswith("scipy") for name in loaded)


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False), st.integers(0, 200))
def test_the_flat_shortcut_is_what_the_search_would_answer(value: float, count: int) -> None:
    """A series of one value has no noise (`noise_sigma` 0), which the search answers with
    no change: what the shortcut before numpy answers."""
    series = [value] * count
    assert noise_sigma(series) == 0.0
    assert detect_shifts(series, Detection()) == []


# -- the run report's charts: the fast path against the old one ---------------------------


def _odd_intervals(run: LoadTestRun, count: int = 40) -> list[dict[str, Any]]:
    """The plugin's intervals with what the charts must skip or keep as it is: a request
    without requests, one without a p95, a histogram text the compact form keeps as text,
    an interval without a histogram, one without its window (only its timestamp), the
    load generator's CPU in two intervals of three."""
    docs = [snapshot.model_dump(mode="python") for snapshot in plugin_snapshots(run, count)]
    docs[3]["requestStats"][0]["intervalRequests"] = 0
    docs[5]["requestStats"][1]["p95ResponseMs"] = None
    docs[7]["hist"] = "030:5,7:2"  # not `encode`'s (a leading zero, descending)
    docs[7]["requestStats"][1]["hist"] = "9:1,3:1"
    docs[9]["hist"] = None
    docs[11]["windowEnd"] = docs[11]["windowStart"] = None
    docs[13]["requestStats"][0]["p95ResponseMs"] = 10_000.0  # the highest of its column
    for index, doc in enumerate(docs):
        if index % 3:
            doc["generator"] = {"workers": 2, "cpuMaxPct": float(index % 97)}
    return docs


def _stored(docs: list[dict[str, Any]], *, compact_form: bool, run: LoadTestRun) -> Store:
    store = Store(mongomock.MongoClient()["db"], Scope(), "mongodb://x")
    store.ensure_indexes()
    test = make_test()
    store_all(store.db, test, [run])
    stored = [compact(dict(doc)) if compact_form else doc for doc in docs]
    store.db["metrics_timeseries"].insert_many([dict(doc) for doc in stored])
    return store


def _old_scatter(
    store: Store, run: LoadTestRun, *, end: float | None = None, columns: int | None = None
) -> dict[tuple[str, str], list[tuple[float, float]]]:
    return latency.by_request(latency.scatter_points(store, run), end=end, columns=columns)


def _old_charts(store: Store, run: LoadTestRun, **bounds: Any) -> Any:
    """The scatter of every point, and the heatmap of its own read (a pass each)."""
    return _old_scatter(store, run, **bounds), latency.heatmap(store, run)


def _without_steps(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The store's interval reads as before the fast path: histograms always as text."""
    read = store.metrics.iter_for_run

    def as_text(run_id: str, projection: dict[str, Any], batch_size: int = 1000, **_: Any) -> Any:
        return read(run_id, projection, batch_size)

    monkeypatch.setattr(store.metrics, "iter_for_run", as_text)


@pytest.mark.parametrize("compact_form", [True, False])
@pytest.mark.parametrize("end,columns", [(None, None), (80.0, 1000), (80.0, 7), (0.0, 5)])
def test_the_report_scatter_and_heatmap_are_those_of_their_own_reads(
    compact_form: bool, end: float | None, columns: int | None
) -> None:
    test = make_test()
    run = make_run(test, durationSeconds=80, finishedAt=START + timedelta(seconds=80))
    store = _stored(_odd_intervals(run), compact_form=compact_form, run=run)
    fast, matrix = latency.scatter_and_heatmap(store, run, end=end, columns=columns)
    assert fast == _old_scatter(store, run, end=end, columns=columns)
    assert sum(map(len, fast.values())) > 0
    assert matrix == latency.heatmap(store, run)


@pytest.mark.parametrize("columns", [1, 7, 120])
def test_the_heatmap_from_steps_is_the_heatmap_from_text(
    columns: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    test = make_test()
    run = make_run(test, durationSeconds=80, finishedAt=START + timedelta(seconds=80))
    store = _stored(_odd_intervals(run), compact_form=True, run=run)
    fast = latency.heatmap(store, run, columns)
    _without_steps(store, monkeypatch)
    assert fast == latency.heatmap(store, run, columns)
    assert fast.intervals == 39 and fast.without_histogram == 1


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.dictionaries(st.integers(0, 120_000), st.integers(0, 1000), max_size=12),
        max_size=30,
    ),
    st.integers(1, 15),
)
def test_a_heatmap_of_step_arrays_is_the_heatmap_of_their_texts(
    shapes: list[dict[int, int]], columns: int
) -> None:
    texts = [
        (2.0 * i, 2.0 * (i + 1), ",".join(f"{ms}:{n}" for ms, n in sorted(h.items())), 1)
        for i, h in enumerate(shapes)
    ]
    steps = [(a, b, hist_flat(text) if text else None, n) for a, b, text, n in texts]
    assert latency.heatmap_matrix(steps, columns) == latency.heatmap_matrix(texts, columns)


def _old_worker_cpu(store: Store, run: LoadTestRun, origin: Any, **_: Any) -> Any:
    return _worker_cpu_of(store, run, origin)


@pytest.mark.parametrize("count", [40, 310])
def test_the_report_is_byte_for_byte_the_old_one(
    count: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole HTML of a compact run, by the fast path and by the old one (the points'
    scatter and the heatmap each of its own read, histograms as text, the CPU chart's own
    merge): the same bytes but for the footer's time. 310 intervals: merged two at a time
    by the database."""
    test = make_test()
    run = make_run(
        test,
        durationSeconds=2 * count,
        finishedAt=START + timedelta(seconds=2 * count),
        thresholds=["p95<=500ms", "POST /api/orders:p95<700ms"],
    )
    store = _stored(_odd_intervals(run, count), compact_form=True, run=run)
    monkeypatch.setattr(run_html, "footer", lambda: "<footer>made</footer>")
    fast = run_html.render_html(run_html.gather(store, run.id))
    monkeypatch.setattr(charts, "scatter_and_heatmap", _old_charts)
    monkeypatch.setattr(charts, "_worker_cpu", _old_worker_cpu)
    _without_steps(store, monkeypatch)
    old = run_html.render_html(run_html.gather(store, run.id))
    assert fast == old
    for chart in ("heatmap", "scatter", "worker-cpu"):
        assert f'class="chart {chart}"' in fast


def test_an_interval_that_cannot_be_read_is_left_out_of_both_charts_named_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    test = make_test()
    run = make_run(test, durationSeconds=80, finishedAt=START + timedelta(seconds=80))
    store = _stored(_odd_intervals(run), compact_form=True, run=run)
    spoiled = store.db["metrics_timeseries"].find_one({"seq": 20})
    store.db["metrics_timeseries"].update_one(
        {"_id": spoiled["_id"]}, {"$set": {"histZ": b"\x78\x9c not zlib"}}
    )
    seen: list[tuple[Any, ...]] = []
    monkeypatch.setattr("loadmgr.store.metrics.left_out", lambda *named: seen.append(named))
    scatter, matrix = latency.scatter_and_heatmap(store, run, end=80.0, columns=1000)
    assert seen == [("metrics_timeseries", spoiled["_id"], "histZ: corrupt zlib data")]
    assert matrix.intervals == 38  # 40, less the one without a histogram and this one
    assert all(x != 40.0 for points in scatter.values() for x, _ in points)
    assert sum(map(len, scatter.values())) == 2 * 39 - 2  # (no requests; no p95)


def test_an_old_runs_peaks_and_mean_rate_are_one_pass_and_what_two_gave(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A run recorded before the collector kept its peaks and mean rate: the summary asks
    its intervals once for both, and gets the numbers the two reads gave."""
    test = make_test()
    run = make_run(test, durationSeconds=80, finishedAt=START + timedelta(seconds=80))
    docs = _odd_intervals(run)
    for index, doc in enumerate(docs):
        doc["intervalSec"] = 2.0 + index / 7  # seconds that do not add up exactly
    store = _stored(docs, compact_form=True, run=run)
    assert not (run.lastMetrics or {}).get("meanRPS")
    sent: list[Any] = []
    aggregate = store.metrics.collection.aggregate

    def counted(pipeline: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(pipeline)
        return aggregate(pipeline, *args, **kwargs)

    monkeypatch.setattr(store.metrics.collection, "aggregate", counted)
    numbers = views.summary(store, run)
    assert len(sent) == 1
    seconds = sum(doc["intervalSec"] for doc in docs)
    assert numbers["rpsMean"] == sum(doc["intervalRequests"] for doc in docs) / seconds
    assert numbers["maxUsers"] == max(doc["currentUsers"] for doc in docs)
    old_sums = store.metrics.downsampled(run.id, 2**62, views._MEAN_SUMS)[0]
    assert numbers["rpsMean"] == old_sums["counted"] / old_sums["seconds"]
    assert numbers["rpsMax"] == store.metrics.peaks(run.id, ["totalRPS"])["totalRPS"]
