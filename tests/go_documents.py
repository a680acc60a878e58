"""Documents the Go control plane can write, generated (issue 20, item 7).

The shared fixtures (tests/data/go-control-plane/) are three runs of one test; the Go
service writes more shapes than those. These strategies start from a fixture document and
vary what its model lets vary (tests/data/README.md, the Go model's types): `metadata` a
free map of any JSON value with every number a double, or null; `tags` null; durations
null; a run `Pending`, `Running`, `Failed` or `Stopped` with `targetusers: 0`, `name: ""`,
no dates and no metrics. Keys, BSON types (int32, int64, double) and date encodings stay
the Go service's.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from bson.int64 import Int64
from hypothesis import strategies as st

from tests.go_fixtures import GO_TEST, go_documents

# Text BSON can hold as a key (no NUL byte: the Go driver refuses one too).
KEY_TEXT = st.characters(exclude_characters="\x00", exclude_categories=("Cs",))  # BSON is UTF-8
# JSON as the Go service stores a `map[string]any`: every number a double.
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.text(max_size=20),
)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.text(KEY_TEXT, min_size=1, max_size=8), inner, max_size=3),
    ),
    max_leaves=8,
)
# Keys as Go's JSON decoder takes them: any text (dots and `$` included).
METADATA_KEYS = st.one_of(
    st.sampled_from(["team", "retries", "owner", "ratio", "nested", "list"]),
    st.text(KEY_TEXT, min_size=0, max_size=12),
)
METADATA = st.one_of(st.none(), st.dictionaries(METADATA_KEYS, JSON_VALUES, max_size=5))
GO_STATUSES = ("Pending", "Running", "Stopping", "Finished", "Failed", "Stopped")


def _fresh_ids(doc: dict[str, Any]) -> dict[str, Any]:
    from bson import ObjectId

    doc = copy.deepcopy(doc)
    doc["_id"] = ObjectId()
    doc["id"] = str(uuid.uuid4())
    return doc


@st.composite
def go_tests(draw: st.DrawFn) -> dict[str, Any]:
    """A Go `load_tests` document: the fixture's, with its own ids and varied fields."""
    doc = _fresh_ids(go_documents("load_tests")[0])
    doc["name"] = f"{GO_TEST}-{doc['id'][:8]}"
    doc["metadata"] = draw(METADATA)
    doc["tags"] = draw(st.one_of(st.none(), st.just([]), st.just(["nightly", "go"])))
    doc["description"] = draw(st.sampled_from(["", "Go-only db"]))
    if draw(st.booleans()):
        doc["recentruns"] = None
    return doc


@st.composite
def go_runs(draw: st.DrawFn, test_id: str | None = None) -> dict[str, Any]:
    """A Go `load_test_runs` document of `test_id` (else the fixture's test)."""
    base = draw(st.sampled_from(go_documents("load_test_runs")))
    doc = _fresh_ids(base)
    if test_id is not None:
        doc["loadtestid"] = test_id
    doc["metadata"] = draw(METADATA)
    doc["status"] = draw(st.sampled_from(GO_STATUSES))
    doc["name"] = draw(st.sampled_from(["", "go-run", doc["name"]]))
    doc["targetusers"] = draw(st.sampled_from([0, 1, 4]))
    if draw(st.booleans()):
        doc["durationseconds"] = None
    if doc["status"] in ("Pending", "Failed") and draw(st.booleans()):
        # Never started: no dates, no metrics (a failed swarm).
        doc["startedat"] = doc["finishedat"] = None
        doc["lastmetrics"] = None
    elif doc["status"] in ("Pending", "Running", "Stopping"):
        doc["finishedat"] = None
    if draw(st.booleans()) and isinstance(doc.get("lastmetrics"), dict):
        doc["lastmetrics"]["requeststats"] = None
    if draw(st.booleans()):
        doc["updatedat"] = Int64(doc["createdat"])
    return doc


@st.composite
def go_databases(draw: st.DrawFn) -> dict[str, list[dict[str, Any]]]:
    """A Go test with a few runs, each with its intervals: collection → documents."""
    test = draw(go_tests())
    runs = draw(st.lists(go_runs(test["id"]), min_size=1, max_size=3))
    intervals = []
    fixture_runs = sorted({d["loadTestRunId"] for d in go_documents("metrics_timeseries")})
    for run in runs:
        source_run = draw(st.sampled_from(fixture_runs))
        source = [d for d in go_documents("metrics_timeseries") if d["loadTestRunId"] == source_run]
        for interval in source[: draw(st.integers(0, 3))]:
            copied = copy.deepcopy(interval)
            copied.pop("_id")
            copied["loadTestRunId"] = run["id"]
            intervals.append(copied)
    return {"load_tests": [test], "load_test_runs": runs, "metrics_timeseries": intervals}
