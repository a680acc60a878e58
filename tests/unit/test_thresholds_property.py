"""Property tests of the threshold parser, merger and evaluator (hypothesis)."""

from __future__ import annotations

import math
import operator
from typing import Any

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from loadmgr.models import Threshold, merge_thresholds, parse_threshold
from loadmgr.models.stats.catalog import BY_NAME
from loadmgr.models.stats.stored import METRIC_KEYS
from loadmgr.models.thresholds import LATENCY_METRICS, METRICS, accept_threshold
from loadmgr.service.judging.verdicts import evaluate, verdict_of

OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}

ops = st.sampled_from(sorted(OPS))
spaces = st.sampled_from(["", " ", "  "])
# Decimals as people write them: 500, 0.5, 12.25 (no exponent, no sign).
decimals = st.builds(
    lambda whole, frac: f"{whole}.{frac}" if frac else str(whole),
    st.integers(min_value=0, max_value=10**6),
    st.one_of(st.none(), st.integers(min_value=0, max_value=999).map(str)),
)
# A request name: anything printable on one line that is not blank (':' allowed).
scopes = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=40
).filter(lambda s: s.strip() != "")


def _case(metric: str) -> st.SearchStrategy[str]:
    return st.sampled_from([metric, metric.upper()]) if metric != "error_rate" else st.just(metric)


@st.composite
def valid_thresholds(draw: st.DrawFn) -> tuple[str, str, str, float, str | None]:
    """(text, metric, op, expected limit, expected scope)."""
    metric = draw(st.sampled_from(METRICS))
    op = draw(ops)
    value = draw(decimals)
    number = float(value)
    if metric in LATENCY_METRICS:
        unit, factor = draw(st.sampled_from([("", 1.0), ("ms", 1.0), ("s", 1000.0)]))
        limit = number * factor
    elif metric == "error_rate":
        unit = draw(st.sampled_from(["", "%"]))
        limit = number / 100.0 if unit == "%" else number
        assume(limit <= 1.0)
    else:
        unit = draw(st.sampled_from(["", "/s", "rps"]))
        limit = number
    scope = draw(st.one_of(st.none(), scopes))
    written = draw(_case(metric))
    pad = draw(spaces)
    body = f"{written}{pad}{op}{draw(spaces)}{value}{unit}"
    text = f"{scope}:{body}" if scope is not None else body
    return text, metric, op, limit, scope.strip() if scope is not None else None


@given(valid_thresholds())
@example(("GET http://h:8080/x:p95<1s", "p95", "<", 1000.0, "GET http://h:8080/x"))
@example(("error_rate<100%", "error_rate", "<", 1.0, None))
def test_valid_thresholds_parse_to_their_parts(
    case: tuple[str, str, str, float, str | None],
) -> None:
    text, metric, op, limit, scope = case
    parsed = parse_threshold(text)
    assert parsed.metric == metric
    assert parsed.op == op
    assert math.isclose(parsed.limit, limit, rel_tol=1e-12, abs_tol=1e-12)
    assert parsed.scope == scope
    assert parsed.expression == text.strip()
    # Parsing what was parsed changes nothing: the stored expression is canonical enough.
    assert parse_threshold(parsed.expression) == parsed


@given(st.text(max_size=60))
@example("p95<<3")
@example("p42<1s")
@example("error_rate<abc")
@example(":p95<1")
@example("p95<")
def test_any_text_parses_or_fails_with_a_value_error(text: str) -> None:
    try:
        parsed = parse_threshold(text)
    except ValueError as exc:
        assert "invalid threshold" in str(exc)
        return
    assert parsed.metric in METRICS
    assert parsed.op in OPS
    assert parsed.limit >= 0
    assert parsed.scope is None or parsed.scope == parsed.scope.strip() != ""


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("p95<<3", "p95<<3"),
        ("p42<1s", "p42"),
        ("error_rate<abc", "abc"),
        ("p95<3h", "'h'"),
        ("error_rate<2", "above 100%"),
        ("rps>=10ms", "rps"),
        (" :p95<1", "expected METRIC OP VALUE"),
    ],
)
def test_malformed_thresholds_name_the_bad_part(text: str, named: str) -> None:
    with pytest.raises(ValueError, match="invalid threshold") as raised:
        parse_threshold(text)
    assert named in str(raised.value)


@given(st.sampled_from(LATENCY_METRICS), ops, decimals, st.sampled_from(["", "ms", "s"]))
def test_seconds_are_a_thousand_milliseconds(metric: str, op: str, value: str, unit: str) -> None:
    in_ms = parse_threshold(f"{metric}{op}{value}ms").limit
    in_s = parse_threshold(f"{metric}{op}{value}s").limit
    assert math.isclose(in_s, in_ms * 1000, rel_tol=1e-12)


finite = st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False)


@given(ops, finite, st.one_of(st.none(), st.just(math.nan), finite))
def test_passes_is_the_operator_and_unknown_never_passes(
    op: str, limit: float, actual: float | None
) -> None:
    threshold = Threshold(f"p95{op}{limit}", "p95", op, limit)
    if actual is None or math.isnan(actual):
        assert threshold.passes(actual) is False
    else:
        assert threshold.passes(actual) is OPS[op](actual, limit)


def _final(totals: dict[str, float | None], request: dict[str, Any]) -> dict[str, Any]:
    return {"totals": totals, "requestStats": [request]}


@given(
    st.lists(st.tuples(st.sampled_from(METRICS), ops, finite), min_size=1, max_size=6),
    st.dictionaries(st.sampled_from(METRICS), st.one_of(st.none(), finite)),
    st.booleans(),
)
def test_evaluate_reads_the_right_value_and_verdict_is_all_passed(
    rules: list[tuple[str, str, float]],
    values: dict[str, float | None],
    scoped: bool,
) -> None:
    totals = {METRIC_KEYS[m][0]: values.get(m) for m in METRICS}
    request = {"method": "GET", "name": "/x", **{METRIC_KEYS[m][1]: values.get(m) for m in METRICS}}
    expressions = []
    for metric, op, limit in rules:
        limit = min(limit, 1.0) if metric == "error_rate" else limit
        prefix = "GET /x:" if scoped else ""
        expressions.append(f"{prefix}{metric}{op}{limit:.6f}")
    results = evaluate(expressions, _final(totals, request))
    assert len(results) == len(expressions)
    for result, expression in zip(results, expressions, strict=True):
        threshold = parse_threshold(expression)
        actual = values.get(threshold.metric)
        assert result.actual == (None if actual is None else float(actual))
        assert result.passed == threshold.passes(actual)
        assert result.scope == ("GET /x" if scoped else None)
    verdict = verdict_of(results)
    assert verdict is not None
    assert (verdict.value == "passed") == all(r.passed for r in results)


def test_no_thresholds_no_verdict() -> None:
    assert verdict_of([]) is None


rule = st.builds(
    lambda scope, metric, op, value: f"{scope + ':' if scope else ''}{metric}{op}{value}",
    st.sampled_from([None, "GET /a", "POST /b"]),
    st.sampled_from(METRICS),
    ops,
    st.integers(min_value=0, max_value=1).map(str),
)


@given(st.lists(rule, max_size=6), st.lists(rule, max_size=6))
def test_merge_keeps_every_override_and_drops_what_it_replaces(
    base: list[str], overrides: list[str]
) -> None:
    merged = merge_thresholds(base, overrides)
    override_keys = {parse_threshold(t).key for t in overrides}
    assert merged[len(merged) - len(overrides) :] == overrides
    for kept in merged[: len(merged) - len(overrides)]:
        assert kept in base
        assert parse_threshold(kept).key not in override_keys
    assert merge_thresholds(merged, overrides) == merged


# --- issue 20, item 14: what is accepted is stored in one canonical form ----------------


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("p95 < 500", "p95<500ms"),
        ("p95<500", "p95<500ms"),
        ("P95 <= 1.50 S", "p95<=1.5s"),
        ("GET /x : p99<0300ms", "GET /x:p99<300ms"),
        ("error_rate < 1 %", "error_rate<1%"),
        ("error_rate<0.010", "error_rate<0.01"),
        ("rps >= 100/s", "rps>=100"),
        ("rps>=100rps", "rps>=100"),
        ("avg<0.0ms", "avg<0ms"),
        ("min > 1", "min>1ms"),  # both bounds: faster than possible is a fault
    ],
)
def test_accepted_thresholds_are_stored_canonical(text: str, canonical: str) -> None:
    assert accept_threshold(text).canonical == canonical


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("p95>500ms", "lower is better"),
        ("max>=1s", "lower is better"),
        ("error_rate>1%", "lower is better"),
        ("rps<100", "higher is better"),
        ("GET /x:rps<=5", "higher is better"),
    ],
)
def test_a_direction_against_the_metric_is_refused(text: str, named: str) -> None:
    with pytest.raises(ValueError, match="invalid threshold") as raised:
        accept_threshold(text)
    assert named in str(raised.value)
    parse_threshold(text)  # a stored one (written before) still reads and is judged


@given(valid_thresholds())
def test_the_canonical_form_means_the_same_and_is_a_fixed_point(
    case: tuple[str, str, str, float, str | None],
) -> None:
    text, metric, op, _, _ = case
    if op not in BY_NAME[metric].threshold_ops:
        with pytest.raises(ValueError, match="is better"):
            accept_threshold(text)
        return
    parsed = accept_threshold(text)
    again = accept_threshold(parsed.canonical)
    assert again == parsed and again.canonical == parsed.canonical == again.expression
    assert " " not in parsed.canonical.rsplit(":", 1)[-1]
    assert parsed.canonical.endswith(("ms", "s")) or metric not in LATENCY_METRICS
