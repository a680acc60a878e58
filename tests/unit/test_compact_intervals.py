"""Issue 26: a stored interval in the compact form (models/documents/compact.py).

The rule: `expand(compact(doc))` is `doc`, exactly (every count, every float, every
histogram's text byte for byte, so every percentile is what it was); an interval is at
least 5× smaller at 20 and at 200 request names (bench case 8's load); a compact field
that is corrupt, truncated, hostile or a decompression bomb makes its document unreadable
(named and left out by the store), never a crash and never unbounded memory.
"""

from __future__ import annotations

import json
import math
import random
import zlib
from typing import Any

import bson
import mongomock
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadmgr.models import MetricSnapshot, RequestStats, Scope
from loadmgr.models.documents import compact as compact_form
from loadmgr.models.documents.compact import (
    ENCODING,
    JSON_ENCODING,
    PACKED_ENCODING,
    CompactError,
    compact,
    compact_fields,
    expand,
    flat_text,
    hist_flat,
    packed_steps,
    stored_projection,
    wanted_fields,
)
from loadmgr.models.histogram import MAX_BUCKET_MS, MAX_COUNT, decode, encode, summary
from loadmgr.store import Store
from tests.metrics_data import (
    START,
    in_encoding_1,
    in_encoding_2,
    json_z,
    make_run,
    make_test,
    plugin_snapshots,
)

histograms = st.dictionaries(
    st.integers(0, MAX_BUCKET_MS), st.integers(1, MAX_COUNT), max_size=60
) | st.dictionaries(st.integers(0, 2_000), st.integers(1, 500), max_size=200)
floats = st.floats(allow_nan=True, allow_infinity=True) | st.integers(0, 10**6).map(
    lambda n: n / 1000
)
names = st.text(max_size=40).filter(lambda s: "\x00" not in s)


def _stored(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` as MongoDB gives it back (BSON both ways, dates with their zone)."""
    options = bson.CodecOptions(tz_aware=True)
    return bson.decode(bson.encode(doc), codec_options=options)


def _same(left: Any, right: Any) -> bool:
    """Equal, with NaN equal to NaN and a float's type kept (1.0 is not 1)."""
    if isinstance(left, dict) and isinstance(right, dict):
        return set(left) == set(right) and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(_same, left, right))
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left):
        return math.isnan(right)
    return type(left) is type(right) and left == right


@settings(max_examples=300, derandomize=True)
@given(histograms)
def test_every_histogram_comes_back_with_its_text_and_percentiles(
    histogram: dict[int, int],
) -> None:
    text = encode(histogram)
    flat = hist_flat(text)
    assert flat is not None
    back = _stored({"h": json_z(flat)})["h"]
    again = flat_text(compact_form._unpacked("h", back))
    assert again == text
    assert decode(again) == histogram
    assert summary(decode(again)) == summary(histogram)


@settings(max_examples=150, derandomize=True)
@given(
    st.lists(
        st.tuples(names, names, histograms | st.none(), floats, st.integers(0, 2**62)),
        min_size=1,
        max_size=30,
    ),
    histograms,
)
def test_every_interval_comes_back_exactly(
    entries: list[tuple[str, str, dict[int, int] | None, float, int]], total: dict[int, int]
) -> None:
    items = []
    for method, name, histogram, number, count in entries:
        numbers = summary(histogram or {})
        items.append(
            RequestStats(
                method=method,
                name=name,
                numRequests=count,
                intervalRequests=count,
                avgResponseTimeMs=number,
                p50ResponseMs=numbers["p50"],
                p95ResponseMs=numbers["p95"],
                p99ResponseMs=numbers["p99"],
                requestsPerSec=number,
                hist=None if histogram is None else encode(histogram),
            )
        )
    snapshot = MetricSnapshot(
        loadTestRunId="r", timestamp=START, seq=1, requestStats=items, hist=encode(total)
    )
    plain = _stored(snapshot.model_dump(mode="python"))
    stored = _stored(compact(plain))
    assert stored["encoding"] == ENCODING and "requestStats" not in stored
    assert _same(_stored(expand(stored)), plain)
    for item, original in zip(expand(_stored(compact(plain)))["requestStats"], items, strict=True):
        assert summary(decode(item["hist"])) == summary(decode(original.hist))


ODD_HISTOGRAMS = ["05:1", "2:1,1:1", "1:-1", "1:1,1:1", "x", "1:2,", "+1:2", "1:2:3", "٣:1", ""]


@pytest.mark.parametrize("text", ODD_HISTOGRAMS)
def test_a_histogram_text_loadmgr_never_writes_is_kept_as_it_is(text: str) -> None:
    doc = {
        "loadTestRunId": "r",
        "hist": text,
        "requestStats": [{"method": "GET", "name": "/", "hist": text}],
    }
    assert expand(_stored(compact(dict(doc)))) == doc


def test_items_of_other_shapes_stay_plain() -> None:
    uneven = [{"method": "GET", "name": "/"}, {"name": "/", "method": "GET"}]
    nested = [{"method": "GET", "name": "/", "extra": {"a": 1}}]
    for items in (uneven, nested, [], ["text"], [{}]):
        doc = {"loadTestRunId": "r", "requestStats": items}
        assert compact(doc) == {**doc, "encoding": ENCODING}


def _bench_interval(names: int) -> dict[str, Any]:
    from bench.cases_windows import INTERVAL, ORIGIN, _answer
    from loadmgr.locust.seconds import parse_seconds
    from loadmgr.service.collection.windows import WindowBuilder

    builder = WindowBuilder("size", origin=ORIGIN, interval=INTERVAL)
    batch = parse_seconds(json.loads(_answer(ORIGIN, INTERVAL, names, random.Random(names))))
    builder.add(batch)
    (snapshot,) = builder.ready(batch)
    return snapshot.model_dump(mode="python")


@pytest.mark.parametrize("names", [20, 200])
def test_a_stored_interval_is_five_times_smaller(names: int) -> None:
    plain = _bench_interval(names)
    before, after = len(bson.encode(plain)), len(bson.encode(compact(plain)))
    assert before >= 5 * after, f"{before} → {after} bytes"
    assert _same(_stored(expand(_stored(compact(plain)))), _stored(plain))


def _packed_raw(raw: bytes) -> bytes:
    return zlib.compress(raw)


HOSTILE: dict[str, dict[str, Any]] = {
    "not binary": {"histZ": "0:1"},
    "corrupt zlib": {"histZ": b"\x78\x9c not zlib"},
    "truncated": {"requestStatsZ": zlib.compress(b'{"columns":{"name":["a"]}}')[:-6]},
    "bomb": {"requestStatsZ": _packed_raw(b" " * (compact_form.MAX_DECODED + 1))},
    "not json": {"histZ": _packed_raw(b"\xff\xfe")},
    "deep json": {"requestStatsZ": _packed_raw(b"[" * 200_000 + b"]" * 200_000)},
    "huge number": {"histZ": _packed_raw(b"[" + b"9" * 5000 + b",1]")},
    "not an object": {"requestStatsZ": _packed_raw(b"[1]")},
    "no columns": {"requestStatsZ": _packed_raw(b'{"columns":{}}')},
    "uneven columns": {"requestStatsZ": _packed_raw(b'{"columns":{"a":[1],"b":[1,2]}}')},
    "column no list": {"requestStatsZ": _packed_raw(b'{"columns":{"a":1}}')},
    "hist no list": {"requestStatsZ": _packed_raw(b'{"columns":{"hist":[{"a":1}]}}')},
    "odd hist": {"histZ": _packed_raw(b"[1,2,3]")},
    "float hist": {"histZ": _packed_raw(b"[1.5,2]")},
    "bool hist": {"histZ": _packed_raw(b"[true,2]")},
    "descending hist": {"histZ": _packed_raw(b"[5,1,0,1]")},
    "negative count": {"histZ": _packed_raw(b"[5,-1]")},
    "out of range": {"histZ": _packed_raw(f"[{MAX_BUCKET_MS},1,1,1]".encode())},
    "count out of range": {"histZ": _packed_raw(f"[3,{MAX_COUNT + 1}]".encode())},
    "step out of range": {"histZ": _packed_raw(f"[0,1,{MAX_BUCKET_MS + 1},1]".encode())},
    "leading zero": {"histZ": _packed_raw(b"[3,01]")},
    "nested hist": {"histZ": _packed_raw(b"[[3],1]")},
    "unknown encoding": {"encoding": 99},
}


def _read_either_way(data: bytes) -> tuple[Any, Any]:
    """A histogram field read by the window reads' fast check, and by the full one."""
    results = []
    for read in (
        lambda: compact_form._unpacked_steps("histZ", data),
        lambda: compact_form.checked_steps(compact_form._unpacked("histZ", data)),
    ):
        try:
            results.append(read())
        except CompactError as exc:
            results.append(("refused", str(exc)))
    return results[0], results[1]


whole_numbers = st.integers(0, 3) | st.integers(0, 2 * MAX_COUNT) | st.just(MAX_BUCKET_MS)
flat_values = st.lists(
    whole_numbers | st.integers(-3, 3) | st.booleans() | st.floats(), max_size=12
)


@settings(max_examples=400, derandomize=True)
@given(flat_values | st.lists(whole_numbers, max_size=12) | histograms.map(encode).map(hist_flat))
def test_the_fast_check_of_a_histogram_reads_what_the_full_one_reads(flat: Any) -> None:
    first, second = _read_either_way(zlib.compress(json.dumps(flat).replace(" ", "").encode()))
    assert first == second


@settings(max_examples=400, derandomize=True)
@given(st.text(alphabet="0123456789,[]", max_size=20))
def test_the_fast_check_refuses_what_the_full_one_refuses(text: str) -> None:
    first, second = _read_either_way(zlib.compress(text.encode()))
    assert first == second


@pytest.mark.parametrize("encoding", [JSON_ENCODING, PACKED_ENCODING])
@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_compact_field_is_a_bad_document(case: str, encoding: int) -> None:
    doc = {"loadTestRunId": "r", "encoding": encoding, **HOSTILE[case]}
    with pytest.raises(CompactError):
        expand(_stored(doc))


def _columns_raw(header: Any, *segments: bytes) -> bytes:
    """Encoding 3's `requestStatsZ` (before zlib) of `header` and `segments`."""
    text = json.dumps(header).encode() if not isinstance(header, bytes) else header
    return len(text).to_bytes(4, "little") + text + b"".join(segments)


def _steps_segment(width: int, numbers: list[int]) -> bytes:
    return bytes((width,)) + b"".join(n.to_bytes(width, "little") for n in numbers)


_NAMES = b'["a","b"]'
_GOOD_STEPS = _steps_segment(1, [3, 0, 3, 1])  # [3,1] for the first, none for the second

# Encoding 3's `requestStatsZ`, spoiled each way it can be (inflated bytes).
HOSTILE_COLUMNS: dict[str, bytes] = {
    "no header": b"\x01\x00",
    "header past the end": (100).to_bytes(4, "little") + b"{}",
    "header not json": _columns_raw(b"\xff\xfe"),
    "deep header": _columns_raw(b"[" * 100_000 + b"]" * 100_000),
    "header no object": _columns_raw([1]),
    "header with more": _columns_raw({"rows": 2, "columns": [["name", "json", 9]], "x": 1}, _NAMES),
    "no rows": _columns_raw({"rows": 0, "columns": [["name", "json", 2]]}, b"[]"),
    "rows a bool": _columns_raw({"rows": True, "columns": [["name", "json", 5]]}, b'["a"]'),
    "rows a float": _columns_raw({"rows": 2.0, "columns": [["name", "json", 9]]}, _NAMES),
    "no columns": _columns_raw({"rows": 2, "columns": []}),
    "columns no list": _columns_raw({"rows": 2, "columns": {"name": 9}}, _NAMES),
    "column no triple": _columns_raw({"rows": 2, "columns": [["name", "json"]]}, _NAMES),
    "column name no text": _columns_raw({"rows": 2, "columns": [[1, "json", 9]]}, _NAMES),
    "unknown kind": _columns_raw({"rows": 2, "columns": [["name", "csv", 9]]}, _NAMES),
    "negative size": _columns_raw({"rows": 2, "columns": [["name", "json", -9]]}, _NAMES),
    "size a float": _columns_raw({"rows": 2, "columns": [["name", "json", 9.0]]}, _NAMES),
    "twice a name": _columns_raw(
        {"rows": 2, "columns": [["name", "json", 9], ["name", "json", 9]]}, _NAMES, _NAMES
    ),
    "steps not hist": _columns_raw({"rows": 2, "columns": [["name", "steps", 5]]}, _GOOD_STEPS),
    "sizes short": _columns_raw({"rows": 2, "columns": [["name", "json", 8]]}, _NAMES),
    "sizes long": _columns_raw({"rows": 2, "columns": [["name", "json", 10]]}, _NAMES),
    "column not json": _columns_raw({"rows": 2, "columns": [["name", "json", 2]]}, b"[x"),
    "column no list": _columns_raw({"rows": 2, "columns": [["name", "json", 1]]}, b"1"),
    "column short": _columns_raw({"rows": 3, "columns": [["name", "json", 9]]}, _NAMES),
    "json hist no list": _columns_raw({"rows": 1, "columns": [["hist", "json", 9]]}, b'[{"a":1}]'),
    "json hist descending": _columns_raw(
        {"rows": 1, "columns": [["hist", "json", 11]]}, b"[[5,1,0,1]]"
    ),
    "steps width": _columns_raw(
        {"rows": 2, "columns": [["hist", "steps", 5]]}, b"\x03" + _GOOD_STEPS[1:]
    ),
    "steps truncated": _columns_raw(
        {"rows": 2, "columns": [["hist", "steps", 6]]}, _steps_segment(2, [3, 0, 3])[:-1]
    ),
    "steps fewer than rows": _columns_raw(
        {"rows": 3, "columns": [["hist", "steps", 3]]}, _steps_segment(1, [1, 1])
    ),
    "steps lengths past the numbers": _columns_raw(
        {"rows": 2, "columns": [["hist", "steps", 5]]}, _steps_segment(1, [9, 0, 3, 1])
    ),
    "steps numbers past the lengths": _columns_raw(
        {"rows": 2, "columns": [["hist", "steps", 7]]}, _steps_segment(1, [3, 0, 3, 1, 1, 1])
    ),
    "steps odd": _columns_raw(
        {"rows": 1, "columns": [["hist", "steps", 5]]}, _steps_segment(1, [4, 3, 1, 1])
    ),
    "steps descending": _columns_raw(
        {"rows": 1, "columns": [["hist", "steps", 6]]}, _steps_segment(1, [5, 5, 1, 0, 1])
    ),
    "steps count out of range": _columns_raw(
        {"rows": 1, "columns": [["hist", "steps", 25]]}, _steps_segment(8, [3, 3, MAX_COUNT + 1])
    ),
    "bomb": _columns_raw({"rows": 1, "columns": [["name", "json", 5]]}, b'["a"]')
    + bytes(compact_form.MAX_DECODED),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_COLUMNS))
def test_a_hostile_encoding_3_request_field_is_a_bad_document(case: str) -> None:
    doc = {
        "loadTestRunId": "r",
        "encoding": ENCODING,
        "requestStatsZ": zlib.compress(HOSTILE_COLUMNS[case]),
    }
    for steps in (False, True):
        with pytest.raises(CompactError):
            expand(_stored(doc), steps=steps)


def test_the_spoiled_encoding_3_cases_are_each_one_change_from_a_good_one() -> None:
    """The hostile cases above fail for what they spoil: the same shapes, unspoiled, read."""
    good = {
        "names": _columns_raw({"rows": 2, "columns": [["name", "json", 9]]}, _NAMES),
        "steps": _columns_raw({"rows": 2, "columns": [["hist", "steps", 5]]}, _GOOD_STEPS),
    }
    doc = {"loadTestRunId": "r", "encoding": ENCODING}
    named = expand(_stored({**doc, "requestStatsZ": zlib.compress(good["names"])}))
    assert named["requestStats"] == [{"name": "a"}, {"name": "b"}]
    steps = expand(_stored({**doc, "requestStatsZ": zlib.compress(good["steps"])}))
    assert steps["requestStats"] == [{"hist": "3:1"}, {"hist": None}]


@settings(max_examples=150, derandomize=True)
@given(
    st.lists(st.tuples(names, histograms | st.none(), floats), min_size=1, max_size=12),
    st.sets(st.sampled_from(["method", "name", "hist", "avgResponseTimeMs", "other"])),
    st.booleans(),
)
def test_a_read_of_some_columns_gives_those_fields_exactly(
    entries: list[tuple[str, dict[int, int] | None, float]], wanted: set[str], steps: bool
) -> None:
    """Encoding 3 decodes only the columns a read asks for; what it gives is the plain
    items' fields, exactly (histograms as text, or as their flat arrays with `steps`)."""
    items = [
        {
            "method": "GET",
            "name": name,
            "avgResponseTimeMs": number,
            "hist": None if histogram is None else encode(histogram),
        }
        for name, histogram, number in entries
    ]
    stored = _stored(compact({"loadTestRunId": "r", "requestStats": items}))
    asked = frozenset(wanted) or None
    got = expand(dict(stored), asked, steps=steps)["requestStats"]
    expected = [{k: v for k, v in item.items() if asked is None or k in asked} for item in items]
    if steps:
        for item in expected:
            if "hist" in item:
                text = item.pop("hist")
                item["histSteps"] = None if text is None else hist_flat(text)
    assert _same(got, expected)


@settings(max_examples=300, derandomize=True)
@given(st.binary(max_size=60), st.booleans())
def test_any_bytes_in_encoding_3_read_or_are_refused(raw: bytes, steps: bool) -> None:
    doc = {"loadTestRunId": "r", "encoding": ENCODING, "requestStatsZ": zlib.compress(raw)}
    try:
        expand(_stored(doc), steps=steps)
    except CompactError:
        pass


def _packed_at(width: int, numbers: list[int], cut: int = 0) -> bytes:
    """Encoding 2's `histZ` of `numbers` at `width` bytes each, less its last `cut` bytes."""
    raw = bytes((width,)) + b"".join(n.to_bytes(width, "little") for n in numbers)
    return zlib.compress(raw[: len(raw) - cut])


# Encoding 2's `histZ` (packed integers), spoiled each way it can be.
HOSTILE_PACKED: dict[str, Any] = {
    "not binary": [3, 1],
    "corrupt zlib": b"\x78\x9c not zlib",
    "truncated zlib": _packed_at(2, [3, 1, 1, 1])[:-3],
    "bomb": _packed_raw(b"\x01" + bytes(compact_form.MAX_DECODED)),
    "empty": _packed_raw(b""),
    "unknown width": _packed_raw(b"\x03" + bytes(6)),
    "width zero": _packed_raw(b"\x00"),
    "json in encoding 2": _packed_raw(b"[3,1]"),
    "truncated integers": _packed_at(4, [3, 1, 1, 1], cut=1),
    "odd count of integers": _packed_at(1, [3, 1, 1]),
    "descending": _packed_at(2, [5, 1, 0, 1]),
    "bucket out of range": _packed_at(4, [MAX_BUCKET_MS, 1, 1, 1]),
    "step out of range": _packed_at(4, [0, 1, MAX_BUCKET_MS + 1, 1]),
    "count out of range": _packed_at(8, [3, MAX_COUNT + 1]),
    "largest integer": _packed_at(8, [3, 2**64 - 1]),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_PACKED))
def test_a_hostile_packed_histogram_is_a_bad_document(case: str) -> None:
    doc = {"loadTestRunId": "r", "encoding": ENCODING, "histZ": HOSTILE_PACKED[case]}
    with pytest.raises(CompactError):
        expand(_stored(doc))


@pytest.mark.parametrize("encoding", [0, 4, 99, -1, 2**40, True, 2.0, "2", [2], {"a": 2}, None])
def test_an_encoding_loadmgr_does_not_know_is_a_bad_document(encoding: Any) -> None:
    doc = {"loadTestRunId": "r", "encoding": encoding}
    if encoding is None:  # no mark: not compact (read as plain)
        assert expand(_stored(doc)) == {"loadTestRunId": "r"}
        return
    with pytest.raises(CompactError, match="not one this loadmgr reads"):
        expand(_stored(doc))


@settings(max_examples=300, derandomize=True)
@given(histograms, st.sampled_from([1, 2, 4, 8]))
def test_every_histogram_comes_back_packed_at_any_width(
    histogram: dict[int, int], width: int
) -> None:
    """Encoding 2's `histZ` read back (whatever width a writer chose that holds it) is the
    same flat array, the same text and the same percentiles; the writer picks the
    narrowest width."""
    text = encode(histogram)
    flat = hist_flat(text)
    assert flat is not None
    packed = packed_steps(flat)
    assert packed is not None
    narrowest = zlib.decompress(packed)[0]
    assert max(flat, default=0) < 1 << (8 * narrowest)
    assert narrowest == 1 or max(flat) >= 1 << (4 * narrowest)
    candidates = [packed]
    if max(flat, default=0) < 1 << (8 * width):
        candidates.append(_packed_at(width, flat))
    for data in candidates:
        doc = _stored({"loadTestRunId": "r", "encoding": ENCODING, "histZ": data})
        assert expand(dict(doc))["hist"] == text
        assert expand(doc, steps=True)["histSteps"] == flat
    assert summary(decode(text)) == summary(histogram)


@settings(max_examples=400, derandomize=True)
@given(
    st.lists(
        st.integers(0, 3) | st.integers(0, 2 * MAX_COUNT) | st.just(MAX_BUCKET_MS), max_size=12
    ),
    st.sampled_from([1, 2, 4, 8]),
)
def test_the_packed_read_accepts_and_refuses_what_the_full_check_does(
    flat: list[int], width: int
) -> None:
    """Whole numbers ≥ 0 packed at any width are read as `checked_steps` reads the same
    list: the same array, or refused, never anything else."""
    flat = [n % (1 << (8 * width)) for n in flat]
    try:
        expected: Any = compact_form.checked_steps(flat)
    except CompactError as exc:
        expected = ("refused", str(exc))
    try:
        got: Any = compact_form._unpacked_packed_steps("histZ", _packed_at(width, flat))
    except CompactError as exc:
        got = ("refused", str(exc))
    assert got == expected


@settings(max_examples=300, derandomize=True)
@given(st.binary(max_size=40))
def test_any_packed_bytes_read_as_a_checked_histogram_or_refused(raw: bytes) -> None:
    try:
        flat = compact_form._unpacked_packed_steps("histZ", zlib.compress(raw))
    except CompactError:
        return
    assert compact_form.checked_steps(flat) == flat


def test_a_number_no_width_holds_stays_text() -> None:
    text = f"3:{2**64}"
    assert packed_steps([3, 2**64]) is None
    assert compact({"loadTestRunId": "r", "hist": text})["hist"] == text


@pytest.mark.parametrize("older", [in_encoding_1, in_encoding_2])
@pytest.mark.parametrize("names", [20, 200])
def test_an_older_interval_reads_exactly_and_migrates_to_encoding_3(names: int, older: Any) -> None:
    """Old intervals stay readable; `db migrate`'s change of one (1 or 2 → 3) gives the
    very document the writer stores now, and a second look changes nothing."""
    plain = _stored(_bench_interval(names))
    old = _stored(older(plain))
    assert old["encoding"] in (JSON_ENCODING, PACKED_ENCODING)
    assert _same(_stored(expand(dict(old))), plain)
    assert _same(
        _stored(expand(dict(old), steps=True)), _stored(expand(compact(plain), steps=True))
    )
    found = compact_fields(old)
    assert found is not None
    fields, gone = found
    assert gone == [] and set(fields) == {"encoding", "histZ", "requestStatsZ"}
    migrated = _stored({**old, **fields})
    assert migrated == _stored(compact(dict(plain)))
    assert _same(_stored(expand(dict(migrated))), plain)
    assert compact_fields(migrated) is None


def test_an_encoding_1_interval_it_cannot_read_is_not_migrated() -> None:
    spoiled = {"loadTestRunId": "r", "encoding": JSON_ENCODING, "histZ": _packed_raw(b"[5,-1]")}
    with pytest.raises(CompactError):
        compact_fields(spoiled)


def test_the_store_leaves_a_bad_compact_interval_out_and_reads_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = Store(mongomock.MongoClient()["db"], Scope(), "mongodb://x")
    run = make_run(make_test())
    store.metrics.save(plugin_snapshots(run, 4))
    stored = store.db["metrics_timeseries"].find_one({"seq": 2})
    assert stored is not None and stored["encoding"] == ENCODING
    store.db["metrics_timeseries"].update_one(
        {"_id": stored["_id"]}, {"$set": {"requestStatsZ": b"spoiled"}}
    )
    seen: list[tuple[str, object, str]] = []
    monkeypatch.setattr("loadmgr.store.metrics.left_out", lambda *named: seen.append(named))
    seqs = [doc["seq"] for doc in store.metrics.iter_for_run(run.id, {"seq": True})]
    assert seqs == [1, 2, 3, 4]  # requestStatsZ was not asked for: seq 2 reads
    assert [doc["seq"] for doc in store.metrics.find_for_run(run.id)] == [1, 3, 4]
    assert seen == [("metrics_timeseries", stored["_id"], "requestStatsZ: corrupt zlib data")]


def test_reads_are_the_same_over_plain_and_compact_intervals() -> None:
    run = make_run(make_test())
    intervals = plugin_snapshots(run, 6)
    plain = Store(mongomock.MongoClient()["db"], Scope(), "mongodb://x")
    plain.db["metrics_timeseries"].insert_many([s.model_dump(mode="python") for s in intervals])
    small = Store(mongomock.MongoClient()["db"], Scope(), "mongodb://x")
    small.metrics.save(intervals)
    assert small.db["metrics_timeseries"].count_documents({"requestStatsZ": {"$exists": True}})
    projections: list[dict[str, Any]] = [
        {},
        {"seq": True, "hist": True},
        {"seq": True, "requestStats.method": 1, "requestStats.name": 1, "requestStats.hist": 1},
        {"requestStats": True},
        {"hist": False, "requestStats": False},
    ]
    for projection in projections:
        assert list(small.metrics.iter_for_run(run.id, projection)) == list(
            plain.metrics.iter_for_run(run.id, projection)
        ), projection
    assert small.metrics.find_for_run(run.id) == plain.metrics.find_for_run(run.id)
    assert small.metrics.latest(run.id) == plain.metrics.latest(run.id)
    assert small.metrics.request_totals(run.id) == plain.metrics.request_totals(run.id)


def test_projections_ask_for_the_compact_fields() -> None:
    assert stored_projection({"seq": True, "hist": True}) == {
        "seq": True,
        "hist": True,
        "histZ": True,
        "encoding": True,
    }
    assert stored_projection({"requestStats.name": True})["requestStatsZ"] is True  # type: ignore[index]
    assert stored_projection({"hist": False}) == {"hist": False, "histZ": False}
    assert wanted_fields({"requestStats.name": True, "requestStats.hist": 1}) == {"name", "hist"}
    assert wanted_fields({"requestStats": True}) is None


def test_compaction_never_rewrites_the_go_control_planes_intervals() -> None:
    from loadmgr.service.migration.compaction import compact_intervals

    store = Store(mongomock.MongoClient()["db"], Scope(), "mongodb://x")
    run = make_run(make_test())
    collection = store.db["metrics_timeseries"]
    collection.insert_many([s.model_dump(mode="python") for s in plugin_snapshots(run, 3)])
    go = {"loadTestRunId": run.id, "totalRps": 5.0, "hist": "1:1", "requestStats": []}
    collection.insert_one(dict(go))
    lines: list[str] = []
    done = compact_intervals(store, progress=lambda *_: None, line=lines.append)
    assert done == {"examined": 3, "changed": 3}
    assert collection.find_one({"totalRps": 5.0}, {"_id": False}) == go
    assert compact_intervals(store, progress=lambda *_: None, line=lines.append) == {
        "examined": 0,
        "changed": 0,
    }


def test_compaction_converts_plain_and_older_forms_once_and_leaves_the_rest() -> None:
    """`db migrate` converts plain, encoding-1 and encoding-2 intervals to encoding 3; one
    in encoding 3 already, one in a form it does not know, and an encoding-1 one it cannot
    read are left as they are (the last named)."""
    from loadmgr.service.migration.compaction import compact_intervals

    store = Store(mongomock.MongoClient()["db"], Scope(), "mongodb://x")
    run = make_run(make_test())
    plain = [s.model_dump(mode="python") for s in plugin_snapshots(run, 8)]
    collection = store.db["metrics_timeseries"]
    collection.insert_many(
        plain[:2]
        + [in_encoding_2(plain[2])]
        + [in_encoding_1(doc) for doc in plain[3:6]]
        + [compact(plain[6])]
    )
    spoiled = {**in_encoding_1(plain[7]), "histZ": _packed_raw(b"[5,-1]")}
    future = {"loadTestRunId": run.id, "seq": 99, "encoding": 4, "histZ": b"?"}
    collection.insert_many([dict(spoiled), dict(future)])
    before = list(collection.find({"seq": {"$in": [7, 8, 99]}}))
    with pytest.warns(Warning, match="buckets do not ascend; not converted"):
        done = compact_intervals(store, progress=lambda *_: None, line=lambda _: None)
    assert done == {"examined": 7, "changed": 6}
    assert collection.count_documents({"encoding": ENCODING}) == 7
    assert list(collection.find({"seq": {"$in": [7, 8, 99]}})) == before
    expected = [_stored(expand(compact(doc))) for doc in plain[:7]]
    read = [_stored(expand(doc)) for doc in collection.find({"seq": {"$lte": 7}}, {"_id": 0})]
    assert read == [{k: v for k, v in doc.items() if k != "_id"} for doc in expected]
    with pytest.warns(Warning, match="not converted"):
        again = compact_intervals(store, progress=lambda *_: None, line=lambda _: None)
    assert again == {"examined": 1, "changed": 0}  # the spoiled one, looked at again


# -- the review of encoding 3 (issue 26): bounds, trust, exactness --------------------------


@pytest.mark.parametrize("kind", ["json", "steps"])
@pytest.mark.parametrize("rows", [3, 10**12, 2**64])
def test_a_header_claiming_more_rows_than_its_columns_hold_is_refused(kind: str, rows: int) -> None:
    """N is bounded by each column's bytes (a JSON array of N values takes 2N + 1 bytes at
    least, packed steps N + 1), checked for every column, read or not: a read that skips
    every column would otherwise make N items out of nothing."""
    name, segment = ("name", b'["a"]') if kind == "json" else ("hist", bytes((1, 0)))
    raw = _columns_raw({"rows": rows, "columns": [[name, kind, len(segment)]]}, segment)
    doc = {"loadTestRunId": "r", "encoding": ENCODING, "requestStatsZ": zlib.compress(raw)}
    for wanted in (frozenset({"method"}), None):
        with pytest.raises(CompactError, match="more rows than"):
            expand(dict(doc), wanted)


def _well_formed(items: Any, wanted: frozenset[str] | None, size: int) -> None:
    assert type(items) is list and len(items) <= size
    for item in items:
        assert type(item) is dict
        assert wanted is None or set(item) <= wanted | {"histSteps"}
        assert item.get("hist") is None or type(item["hist"]) is str
        steps = item.get("histSteps")
        assert steps is None or type(steps) is str or flat_text(steps) is not None


_REVIEW_ITEMS = [
    {"method": "GET", "name": "a", "numRequests": 3, "avgResponseTimeMs": 1.5, "hist": "3:1,9:2"},
    {"method": "GET", "name": "b", "numRequests": 0, "avgResponseTimeMs": 0.0, "hist": None},
    {"method": "PUT", "name": "c", "numRequests": 9, "avgResponseTimeMs": 2.0, "hist": ""},
]


@settings(max_examples=300, derandomize=True)
@given(
    st.sampled_from([None, frozenset({"name"}), frozenset({"hist"}), frozenset({"x"})]),
    st.booleans(),
    st.integers(0, 10**6),
    st.sampled_from(["flip", "cut", "extend"]),
    st.binary(min_size=1, max_size=8),
    st.booleans(),
)
def test_one_change_to_a_good_encoding_3_field_reads_well_formed_or_is_refused(
    wanted: frozenset[str] | None,
    steps: bool,
    at: int,
    change: str,
    extra: bytes,
    text_kept: bool,
) -> None:
    """Any one byte changed, a cut or an extension of a good `requestStatsZ` (packed or
    JSON `hist` column): CompactError, or items of the fields asked for, no more of them
    than the bytes, histograms as text or checked steps; never another exception."""
    items = [dict(item) for item in _REVIEW_ITEMS]
    if text_kept:
        items[0]["hist"] = "09:1"  # a text `histogram.encode` never writes: column stays JSON
    good = zlib.decompress(compact({"requestStats": items})["requestStatsZ"])
    at %= len(good)
    if change == "flip":
        raw = good[:at] + bytes(((good[at] + extra[0]) % 256 or 1,)) + good[at + 1 :]
    elif change == "cut":
        raw = good[:at]
    else:
        raw = good[:at] + extra + good[at:]
    doc = {"loadTestRunId": "r", "encoding": ENCODING, "requestStatsZ": zlib.compress(raw)}
    try:
        got = expand(doc, wanted, steps=steps)
    except CompactError:
        return
    _well_formed(got["requestStats"], wanted, len(raw))


@pytest.mark.parametrize(
    "text",
    [f"3:{MAX_COUNT + 1}", f"3:{2**64}", f"{MAX_BUCKET_MS + 1}:1", f"3:1,{MAX_BUCKET_MS + 4}:1"],
)
def test_a_histogram_out_of_the_read_ranges_stays_text_and_the_interval_reads(
    text: str,
) -> None:
    """What a read would refuse (a count above MAX_COUNT, a bucket above MAX_BUCKET_MS) is
    kept as text, top-level and per request: the interval reads back exactly, not refused."""
    plain = {"loadTestRunId": "r", "hist": text, "requestStats": [{"name": "a", "hist": text}]}
    stored = _stored(compact(dict(plain)))
    assert stored["hist"] == text and "histZ" not in stored
    assert expand(dict(stored)) == plain
    assert expand(dict(stored), steps=True)["requestStats"] == [{"name": "a", "histSteps": text}]


@pytest.mark.parametrize("older", [None, in_encoding_2, in_encoding_1])
@pytest.mark.parametrize("first", [True, False])
def test_a_stored_steps_column_is_never_taken_for_checked_steps(older: Any, first: bool) -> None:
    """`histSteps` is made by `expand(steps=True)` alone, from the checked `hist`: a stored
    column of that name (anywhere among the columns) never reaches a merge as steps."""
    spoiled = {"name": "a", "histSteps": "5:1", "hist": "3:1"}
    if not first:
        spoiled = {"name": "a", "hist": "3:1", "histSteps": "5:1"}
    plain = {"loadTestRunId": "r", "requestStats": [spoiled]}
    stored = _stored(older(plain) if older else compact(plain))
    assert expand(dict(stored))["requestStats"] == [spoiled]  # read whole: exactly
    assert expand(dict(stored), steps=True)["requestStats"] == [{"name": "a", "histSteps": [3, 1]}]
    alone = _stored(compact({"loadTestRunId": "r", "requestStats": [{"histSteps": "5:1"}]}))
    assert expand(dict(alone), steps=True)["requestStats"] == [{}]


@pytest.mark.parametrize("form", ["plain", "items kept plain"])
def test_a_stored_steps_field_of_a_plain_entry_is_never_taken_for_checked_steps(
    form: str,
) -> None:
    """The same for entries stored plain (an interval never made compact, or entries the
    compact form could not hold): a read for merging gives no `histSteps` it did not make,
    so the merge reads the entry's `hist` text, checked; a plain read gives it as stored."""
    spoiled = {"name": "a", "hist": "3:1", "histSteps": [-5, "x", 1]}
    doc: dict[str, Any] = {"loadTestRunId": "r", "requestStats": [dict(spoiled)]}
    if form == "items kept plain":
        doc["requestStats"][0]["at"] = START  # a date: the entries stay plain
        spoiled["at"] = START
        doc = compact(doc)
        assert "requestStats" in doc and doc["encoding"] == ENCODING
    stored = _stored(doc)
    read = expand(_stored(doc), steps=True)["requestStats"]
    assert read == [{k: v for k, v in spoiled.items() if k != "histSteps"}]
    assert expand(stored)["requestStats"] == [spoiled]


_SCALARS = [0, 1.0, -0.0, float("nan"), float("inf"), 2**70, -(2**64), True, False, None, "", "é"]
_HISTS = {
    "packed": ["3:1,9:2", None, ""],
    "texts kept": ["3:1", "09:1", None, ""],  # a text kept as text: the column stays JSON
    "out of range": ["3:1", f"3:{2**64}", None],  # no width holds it: the column stays JSON
}


@pytest.mark.parametrize("hists", sorted(_HISTS))
@pytest.mark.parametrize("wanted", [None, {"hist"}, {"hist", "value"}, {"value"}, {"x"}])
@pytest.mark.parametrize("steps", [False, True])
def test_every_kind_of_value_reads_back_exactly_and_as_encoding_2_reads(
    hists: str, wanted: set[str] | None, steps: bool
) -> None:
    """Scalars of every type (int vs float kept, NaN, -0.0, ints past 2**63, bools, None)
    and `hist` columns packed or kept JSON (texts kept, "" and null among them): encoding
    3 gives back the plain items, and what encoding 2 gives of the same document."""
    items = [
        {"name": str(i), "value": _SCALARS[i % len(_SCALARS)], "hist": hist}
        for i, hist in enumerate(_HISTS[hists] * 4)
    ]
    plain = {"loadTestRunId": "r", "requestStats": items}
    asked = None if wanted is None else frozenset(wanted)
    got = expand(dict(compact(plain)), asked, steps=steps)["requestStats"]
    assert _same(got, expand(dict(in_encoding_2(plain)), asked, steps=steps)["requestStats"])
    expected = [{k: v for k, v in item.items() if asked is None or k in asked} for item in items]
    if steps:
        for item in expected:
            if "hist" in item:
                text = item.pop("hist")
                flat = None if text is None else hist_flat(text)
                item["histSteps"] = text if flat is None or packed_steps(flat) is None else flat
    assert _same(got, expected)


def _older_forms() -> dict[str, dict[str, Any]]:
    items = [
        {"name": "a", "numRequests": 2, "hist": "3:2"},
        {"name": "b", "numRequests": 1, "hist": None},
    ]
    plain = {"loadTestRunId": "r", "seq": 1, "hist": "3:2", "requestStats": items}
    return {
        "plain": plain,
        "encoding 1": in_encoding_1(plain),
        "encoding 2": in_encoding_2(plain),
        "items with a date": {**plain, "requestStats": [{**items[0], "at": START}]},
        "hist kept as text": {**plain, "hist": "09:2"},
        "encoding 2, hist kept as text": in_encoding_2({**plain, "hist": "09:2"}),
        "encoding 2, no items": in_encoding_2({**plain, "requestStats": []}),
        "encoding 1, no hist": in_encoding_1({k: v for k, v in plain.items() if k != "hist"}),
    }


@pytest.mark.parametrize("form", sorted(_older_forms()))
def test_compact_fields_of_every_older_form_make_what_the_writer_stores_now(form: str) -> None:
    """`db migrate`'s change of any older form is exactly `compact(expand(old))`: it sets
    what differs, unsets only what the new form does not hold, and a second look finds
    nothing to change."""
    old = _stored(_older_forms()[form])
    expected = _stored(compact(expand(dict(old))))
    found = compact_fields(dict(old))
    assert found is not None
    fields, gone = found
    migrated = {k: v for k, v in {**old, **fields}.items() if k not in gone}
    assert _stored(migrated) == expected
    assert set(gone) == set(old) - set(expected)
    assert compact_fields(_stored(migrated)) is None
