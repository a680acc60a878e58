"""The models' parsers and validation: durations, thresholds, LoadTest, --meta."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from loadmgr.models import (
    LoadTest,
    LoadTestRun,
    LocustCluster,
    format_duration,
    merge_thresholds,
    parse_duration,
    parse_meta,
    parse_threshold,
)
from loadmgr.models.durations import MAX_DURATION_SEC

# --- durations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("300", 300),
        ("300s", 300),
        ("5m", 300),
        ("1h30m", 5400),
        ("1h", 3600),
        ("90s", 90),
        ("1h30m10s", 5410),
        ("2h5s", 7205),
        ("0", 0),
        (" 5m ", 300),
        ("5M", 300),
        (300, 300),
    ],
)
def test_parse_duration_accepts_locust_formats(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    "text",
    ["", " ", "s", "m", "abc", "5x", "1.5m", "-5", "-5s", "5d", "m5", "30s5m", "1h30", "5mm",
     "1e3", "99999999999h", True, -1],
)
def test_parse_duration_refuses_malformed(text: Any) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_parse_duration_message_shows_examples() -> None:
    with pytest.raises(ValueError) as info:
        parse_duration("soon")
    assert "'soon'" in str(info.value)
    assert "1h30m" in str(info.value)


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0s"), (59, "59s"), (60, "1m"), (5400, "1h30m"), (3601, "1h1s")]
)
def test_format_duration(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_duration_of_nothing() -> None:
    assert format_duration(None) == "-"


@given(st.integers(min_value=0, max_value=MAX_DURATION_SEC))
def test_parse_duration_round_trips_format_duration(seconds: int) -> None:
    assert parse_duration(format_duration(seconds)) == seconds


@given(
    st.integers(min_value=0, max_value=200),
    st.integers(min_value=0, max_value=59),
    st.integers(min_value=0, max_value=59),
)
def test_format_duration_is_canonical(hours: int, minutes: int, secs: int) -> None:
    text = format_duration(hours * 3600 + minutes * 60 + secs)
    assert format_duration(parse_duration(text)) == text


# --- thresholds --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "metric", "op", "limit", "scope"),
    [
        ("p95<500ms", "p95", "<", 500.0, None),
        ("p95<500", "p95", "<", 500.0, None),
        ("p99<=1.5s", "p99", "<=", 1500.0, None),
        ("avg < 200 ms", "avg", "<", 200.0, None),
        ("max<2s", "max", "<", 2000.0, None),
        ("P50<100ms", "p50", "<", 100.0, None),
        ("error_rate<1%", "error_rate", "<", 0.01, None),
        ("error_rate<=0.05", "error_rate", "<=", 0.05, None),
        ("rps>=100", "rps", ">=", 100.0, None),
        ("rps>10/s", "rps", ">", 10.0, None),
        ("GET /api/items:p95<300ms", "p95", "<", 300.0, "GET /api/items"),
        ("GET http://h:8080/x:p95<1s", "p95", "<", 1000.0, "GET http://h:8080/x"),
    ],
)
def test_parse_threshold(text: str, metric: str, op: str, limit: float, scope: str | None) -> None:
    threshold = parse_threshold(text)
    assert (threshold.metric, threshold.op, threshold.scope) == (metric, op, scope)
    assert threshold.limit == pytest.approx(limit)
    assert threshold.expression == text.strip()


@pytest.mark.parametrize(
    ("text", "bad_part"),
    [
        ("p95<<3", "'<3'"),
        ("p42<1s", "'p42'"),
        ("error_rate<abc", "'abc'"),
        ("p95<5kg", "'kg'"),
        ("error_rate<5ms", "error_rate"),
        ("error_rate<150%", "100%"),
        ("rps>=5ms", "rps"),
        ("p95<-1", "'-1'"),
        (":p95<1s", "expected METRIC OP VALUE"),
        ("p95", "expected METRIC OP VALUE"),
        ("p95<", "expected METRIC OP VALUE"),
        ("", "expected METRIC OP VALUE"),
        ("p95=500", "expected METRIC OP VALUE"),
    ],
)
def test_parse_threshold_names_the_bad_part(text: str, bad_part: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_threshold(text)
    assert bad_part in str(info.value)
    assert str(info.value).startswith("invalid threshold")


def test_threshold_passes_and_unknown_never_passes() -> None:
    threshold = parse_threshold("p95<500ms")
    assert threshold.passes(499)
    assert not threshold.passes(500)
    assert not threshold.passes(None)
    assert not threshold.passes(float("nan"))


def test_merge_thresholds_replaces_same_key_only() -> None:
    merged = merge_thresholds(["p95<500ms", "rps>=10", "GET /a:p95<1s"], ["p95<300ms"])
    assert merged == ["rps>=10", "GET /a:p95<1s", "p95<300ms"]


_SCOPES = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=40
).filter(lambda s: s.strip() != "")


@given(
    scope=st.none() | _SCOPES,
    metric=st.sampled_from(["p50", "p90", "p95", "p99", "avg", "min", "max"]),
    op=st.sampled_from(["<", "<=", ">", ">="]),
    number=st.integers(min_value=0, max_value=10**6),
    unit=st.sampled_from(["", "ms", "s"]),
    spaces=st.booleans(),
)
def test_any_valid_latency_threshold_parses(
    scope: str | None, metric: str, op: str, number: int, unit: str, spaces: bool
) -> None:
    gap = " " if spaces else ""
    text = f"{metric}{gap}{op}{gap}{number}{unit}"
    if scope is not None:
        text = f"{scope}:{text}"
    threshold = parse_threshold(text)
    assert threshold.metric == metric
    assert threshold.op == op
    assert threshold.limit == pytest.approx(number * (1000 if unit == "s" else 1))
    assert threshold.scope == (scope.strip() if scope is not None else None)


@given(
    op=st.sampled_from(["<", "<=", ">", ">="]),
    percent=st.integers(min_value=0, max_value=100),
    as_fraction=st.booleans(),
)
def test_any_valid_error_rate_threshold_parses(op: str, percent: int, as_fraction: bool) -> None:
    value = f"{percent / 100}" if as_fraction else f"{percent}%"
    threshold = parse_threshold(f"error_rate{op}{value}")
    assert threshold.limit == pytest.approx(percent / 100)


@given(op=st.sampled_from(["<", "<=", ">", ">="]), rps=st.floats(0, 1e6).map(lambda f: round(f, 2)))
def test_any_valid_rps_threshold_parses(op: str, rps: float) -> None:
    assert parse_threshold(f"rps{op}{rps}").limit == pytest.approx(rps)


# --- LoadTest validation -----------------------------------------------------------------


def _test(**changes: Any) -> dict[str, Any]:
    return {"name": "checkout", "targetUrl": "http://127.0.0.1:8080", **changes}


def _errors(**changes: Any) -> str:
    with pytest.raises(ValidationError) as info:
        LoadTest.model_validate(_test(**changes))
    return str(info.value)


def test_load_test_defaults_and_camel_case_fields() -> None:
    test = LoadTest.model_validate(_test())
    document = test.to_document()
    for key in ("id", "name", "description", "tags", "tenantId", "envId", "locustClusterId",
                "targetUrl", "locustfile", "scenarioId", "defaultUsers", "defaultSpawnRate",
                "defaultDurationSec", "maxDurationSec", "createdAt", "createdBy", "updatedAt",
                "updatedBy", "metadata"):
        assert key in document
    assert document["locustClusterId"] == "local"
    assert document["version"] == 1
    assert "_id" not in document


def test_load_test_name_is_trimmed() -> None:
    assert LoadTest.model_validate(_test(name="  spaced  ")).name == "spaced"


@pytest.mark.parametrize("name", ["", "   ", "\t\n"])
def test_load_test_refuses_empty_name(name: str) -> None:
    assert "must not be empty" in _errors(name=name)


def test_load_test_name_at_most_200_characters() -> None:
    assert LoadTest.model_validate(_test(name="x" * 200)).name == "x" * 200
    assert LoadTest.model_validate(_test(name=" " + "x" * 200 + " ")).name == "x" * 200
    assert "200" in _errors(name="x" * 201)


@pytest.mark.parametrize("url", ["http://h", "https://h.example.com:8443/base?x=1"])
def test_load_test_accepts_http_urls(url: str) -> None:
    assert LoadTest.model_validate(_test(targetUrl=url)).targetUrl == url


@pytest.mark.parametrize(
    "url", ["ftp://h", "h.example.com", "http://", "file:///etc/passwd", "javascript:x", ""]
)
def test_load_test_refuses_non_http_urls(url: str) -> None:
    assert "http(s) URL" in _errors(targetUrl=url)


@pytest.mark.parametrize("users", [0, -1, -100])
def test_load_test_needs_at_least_one_user(users: int) -> None:
    assert "defaultUsers" in _errors(defaultUsers=users)


@pytest.mark.parametrize("rate", [0, -0.5, float("nan"), float("inf")])
def test_load_test_spawn_rate_above_zero_and_finite(rate: float) -> None:
    assert "defaultSpawnRate" in _errors(defaultSpawnRate=rate)


def test_load_test_fractional_spawn_rate_is_fine() -> None:
    assert LoadTest.model_validate(_test(defaultSpawnRate=0.5)).defaultSpawnRate == 0.5


@pytest.mark.parametrize("field", ["defaultDurationSec", "maxDurationSec"])
@pytest.mark.parametrize("value", [0, -1])
def test_load_test_durations_positive(field: str, value: int) -> None:
    assert field in _errors(**{field: value})


def test_load_test_default_duration_not_above_max() -> None:
    ok = LoadTest.model_validate(_test(defaultDurationSec=300, maxDurationSec=300))
    assert ok.maxDurationSec == 300
    assert "above the maximum" in _errors(defaultDurationSec=301, maxDurationSec=300)


def test_load_test_validates_thresholds_tags_and_metadata() -> None:
    assert "unknown metric" in _errors(thresholds=["p42<1s"])
    assert "tag" in _errors(tags=["ok", " "])
    assert LoadTest.model_validate(_test(tags=["a", " a ", "b"])).tags == ["a", "b"]
    assert "metadata" in _errors(metadata={"$where": "x"})
    assert "metadata" in _errors(metadata={"a.b": "x"})


def test_load_test_round_trips_through_its_document() -> None:
    test = LoadTest.model_validate(_test(tags=["x"], metadata={"team": "core"}, futureField=1))
    again = LoadTest.model_validate(test.to_document())
    assert again == test
    assert again.to_document()["futureField"] == 1  # unknown stored fields survive


def test_load_test_run_and_cluster_validation() -> None:
    run = {"loadTestId": "t", "targetUsers": 1, "spawnRate": 1, "durationSeconds": 1}
    assert LoadTestRun.model_validate(run).status.value == "Pending"
    for bad in ({"targetUsers": -1}, {"spawnRate": 0}, {"durationSeconds": 0}):
        with pytest.raises(ValidationError):
            LoadTestRun.model_validate({**run, **bad})
    cluster = LocustCluster.model_validate({"id": " k8s ", "baseUrl": "http://m:8089/"})
    assert (cluster.id, cluster.baseUrl) == ("k8s", "http://m:8089")
    with pytest.raises(ValidationError):
        LocustCluster.model_validate({"id": "k8s", "baseUrl": "tcp://m"})


# --- --meta ------------------------------------------------------------------------------


def test_parse_meta() -> None:
    assert parse_meta([]) == {}
    assert parse_meta(["team=core", "ticket=42"]) == {"team": "core", "ticket": "42"}
    assert parse_meta(["url=http://x/?a=b"]) == {"url": "http://x/?a=b"}
    assert parse_meta([" k =v"]) == {"k": "v"}
    assert parse_meta(["empty="]) == {"empty": ""}
    assert parse_meta(["k=1", "k=2"]) == {"k": "2"}


@pytest.mark.parametrize("pair", ["noequals", "=value", " =x", "$where=1", "a.b=1", ""])
def test_parse_meta_refuses(pair: str) -> None:
    with pytest.raises(ValueError, match="--meta"):
        parse_meta(["ok=1", pair])


@given(st.lists(st.text(), max_size=3), st.text().filter(lambda s: "=" not in s))
def test_parse_meta_never_accepts_a_pair_without_equals(good: list[str], bad: str) -> None:
    pairs = [f"k{i}={value}" for i, value in enumerate(good)] + [bad]
    with pytest.raises(ValueError):
        parse_meta(pairs)
