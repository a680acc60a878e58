"""A run's verdict, the reasons stored with it, and the checks against a reference run.

The verdict is what cron jobs and CI act on (through the exit code) and what the history
shows, so it is stored once, with its reasons, and every view reads the same two fields.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict

from loadmgr.models.formatting import side_by_side, threshold_line


class Verdict(str, Enum):
    """How a run went (docs/design.md, "Stored documents"); null only when nothing was checked
    and nothing went wrong.

    - `passed`: every check held (thresholds, baseline, trend).
    - `failed`: a threshold, a baseline or trend regression, or no successful request.
    - `inconclusive`: a check failed while the load generator was saturated or lost a
      worker, so the failure may be the generator's; or none failed but a comparison's
      change beyond its limit is not significant (docs/verdicts.md).
    - `aborted`: stopped before its duration by someone or something else.
    - `error`: the run could not complete (it failed to start, or Locust was lost).
    """

    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"
    ABORTED = "aborted"
    ERROR = "error"


class ReasonKind(str, Enum):
    """What a verdict reason is about."""

    THRESHOLD = "threshold"
    BASELINE = "baseline"
    TREND = "trend"
    NO_SUCCESS = "no_success"
    ABORTED = "aborted"
    ERROR = "error"
    EXCEPTION = "exception"  # the locustfile's users raised (Locust's /exceptions)
    # The load generator was saturated (a worker's CPU) or lost a worker: why a failed
    # check is `inconclusive`, or a warning beside a pass.
    GENERATOR = "generator"


class VerdictReason(BaseModel):
    """One entry of `verdictReasons[]`: its kind, a sentence for people, and the details.

    The details depend on the kind (a threshold's `expression`, `limit` and `actual`; a
    regression's `metric`, `baseline`, `actual`, `worseBy` and `allowed`; an error's
    `source`…) and are stored as they are, so a reader needs nothing but the document.
    """

    model_config = ConfigDict(extra="allow")

    kind: ReasonKind
    message: str

    def detail(self, key: str, default: Any = None) -> Any:
        """A detail field, or `default` when this reason has none of that name."""
        return (self.model_extra or {}).get(key, default)


@dataclass(frozen=True)
class Regression:
    """One metric of a run against a reference (its test's baseline run, or its trend).

    `regressed` when worse than `allowed` (fractions; `worse_by` is inf from a reference
    of 0 that got worse, None when either value is unknown), significant and beyond its
    floor; `inconclusive` when worse than allowed and beyond the floor but not significant
    (or not testable: `note` says why). The test's fields are None where none was made
    (a trend check, a check stored before they existed).
    """

    metric: str
    baseline: float | None
    actual: float | None
    worse_by: float | None
    allowed: float
    regressed: bool
    reference: str = "the baseline"
    significant: bool | None = None
    p_value: float | None = None
    test: str | None = None
    detectable: float | None = None  # the smallest change the runs could detect (fraction)
    floor: float | None = None  # in the metric's unit
    inconclusive: bool = False
    note: str | None = None  # why a change beyond its limit is not a regression

    def describe(self) -> str:
        """`p95 is 23.0% worse than the baseline (120ms → 148ms; allowed 10%)`, and why a
        change beyond its limit is no regression (`…: not significant (p=0.31; …)`)."""
        if self.worse_by is None:
            return f"{self.metric}: not compared (no value in the run or {self.reference})"
        amount = "infinitely" if math.isinf(self.worse_by) else f"{abs(self.worse_by):.1%}"
        how = "worse" if self.worse_by > 0 else "better"
        # Written so that the two numbers differ as the values do (never `2ms → 2ms`).
        before, after = side_by_side(self.metric, [self.baseline, self.actual])[0]
        text = (
            f"{self.metric} is {amount} {how} than {self.reference} "
            f"({before} → {after}; allowed {self.allowed:.1%})"
        )
        return text + self._why_not()

    def _why_not(self) -> str:
        if self.regressed or not self.note:
            return ""
        if self.note == "below the floor":
            floor = side_by_side(self.metric, [self.floor, None])[0][0]
            return f", below its floor of {floor}: not counted"
        detectable = (
            f"; the runs could detect {self.detectable:.1%}" if self.detectable is not None else ""
        )
        if self.p_value is not None:
            return f": not significant (p={self.p_value:.2g}{detectable}), inconclusive"
        return f": {self.note}, inconclusive"

    def to_document(self) -> dict[str, Any]:
        worse = self.worse_by
        document: dict[str, Any] = {
            "metric": self.metric,
            "baseline": self.baseline,
            "actual": self.actual,
            # JSON has no infinity: a regression from a zero baseline reads as null + flag.
            "worseBy": None if worse is None or math.isinf(worse) else worse,
            "allowed": self.allowed,
            "regressed": self.regressed,
        }
        if self.test is not None or self.floor is not None:
            document.update(
                significant=self.significant,
                pValue=self.p_value,
                test=self.test,
                detectable=self.detectable,
                floor=self.floor,
                inconclusive=self.inconclusive,
                note=self.note,
            )
        return document

    @classmethod
    def from_document(cls, doc: Any, reference: str = "the baseline") -> Regression | None:
        """A stored check back; None when the document is not one (written by anything).
        A trend check made against another branch (`--against-branch main`) names it:
        "worse than main's current regime"."""
        if not isinstance(doc, dict) or not isinstance(doc.get("metric"), str):
            return None
        branch = doc.get("againstBranch")
        if isinstance(branch, str) and branch:
            reference = f"{branch}'s current regime"
        try:
            allowed = float(doc.get("allowed") or 0.0)
            baseline = _optional_float(doc.get("baseline"))
            actual = _optional_float(doc.get("actual"))
            worse = _optional_float(doc.get("worseBy"))
        except (TypeError, ValueError):
            return None
        regressed = bool(doc.get("regressed"))
        if worse is None and regressed:
            worse = math.inf  # stored as null + flag: worse from a reference of 0
        significant = doc.get("significant")
        try:
            p_value, detectable, floor = (
                _optional_float(doc.get(key)) for key in ("pValue", "detectable", "floor")
            )
        except (TypeError, ValueError):
            p_value = detectable = floor = None
        test, note = doc.get("test"), doc.get("note")
        return cls(
            doc["metric"], baseline, actual, worse, allowed, regressed, reference,
            significant=significant if isinstance(significant, bool) else None,
            p_value=p_value,
            test=test if isinstance(test, str) else None,
            detectable=detectable,
            floor=floor,
            inconclusive=doc.get("inconclusive") is True and not regressed,
            note=note if isinstance(note, str) else None,
        )


def _optional_float(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    return float(value)


_SHORT = {
    ReasonKind.NO_SUCCESS: "no successful request",
    ReasonKind.ABORTED: "stopped early",
    ReasonKind.EXCEPTION: "user code raised",
}


def reason_label(reason: VerdictReason) -> str:
    """A reason in a few words, for a table cell: `p95<500ms`, `rps vs baseline`."""
    if reason.kind == ReasonKind.THRESHOLD:
        return str(reason.detail("expression") or "threshold")
    if reason.kind == ReasonKind.BASELINE:
        return f"{reason.detail('metric') or '?'} vs baseline"
    if reason.kind == ReasonKind.TREND:
        return f"{reason.detail('metric') or '?'} vs trend"
    if reason.kind == ReasonKind.GENERATOR:
        return "worker lost" if reason.detail("workersLost") else "generator saturated"
    if reason.kind == ReasonKind.ERROR:
        # Where it came from (`database`, `locust`); never "error" again after the verdict.
        source = reason.detail("source")
        return "Locust lost" if reason.detail("stopReason") == "lost" else str(source or "")
    return _SHORT[reason.kind]


def verdict_label(verdict: Verdict | str | None, reasons: list[VerdictReason]) -> str:
    """`failed (p95<500ms, +1)`, `aborted (stopped early)`, `passed`, `-`: one table cell."""
    if verdict is None:
        return "-"
    text = verdict.value if isinstance(verdict, Verdict) else str(verdict)
    if not reasons:
        return text
    more = f", +{len(reasons) - 1}" if len(reasons) > 1 else ""
    label = reason_label(reasons[0])
    if not label or label == text:
        return f"{text} (+{len(reasons) - 1})" if more else text
    return f"{text} ({label}{more})"


def parse_reasons(items: Any) -> list[VerdictReason]:
    """Stored reasons, leaving out any that is not one (a document written by anything)."""
    reasons = []
    for item in items if isinstance(items, list) else ():
        if isinstance(item, VerdictReason):
            reasons.append(item)
            continue
        try:
            reasons.append(VerdictReason.model_validate(item))
        except ValueError:
            continue
    return reasons


def error_source(reasons: list[VerdictReason]) -> str | None:
    """Where the error of an `error` verdict came from (`database`, `locust`…), if said."""
    for reason in reasons:
        if reason.kind == ReasonKind.ERROR:
            source = reason.detail("source")
            return str(source) if source else None
    return None


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def verdict_summary(
    verdict: Verdict | str | None,
    reasons: list[VerdictReason],
    *,
    thresholds: int,
    baseline: int,
    finished: bool = True,
    trend: int = 0,
) -> list[str]:
    """Why a run got its verdict, one sentence a line: every view says it the same way."""
    if not finished:
        return ["not decided yet: the run is still going"]
    value = verdict.value if isinstance(verdict, Verdict) else verdict
    if reasons and value != Verdict.PASSED.value:
        return [reason.message for reason in reasons]
    if value == Verdict.PASSED.value:
        held = []
        if thresholds:
            held.append(_plural(thresholds, "threshold"))
        if baseline:
            held.append(f"{_plural(baseline, 'metric')} against the baseline")
        if trend:
            held.append(f"{_plural(trend, 'metric')} against its trend")
        line = f"every check held ({' and '.join(held)})" if held else "every check held"
        return [line, *(reason.message for reason in reasons)]  # warnings (the generator)
    if value is None:
        return ["nothing was checked (no threshold, no baseline) and nothing went wrong"]
    return [f"{value} (no reason recorded)"]


ACTIVE_STATUSES = ("Pending", "Running", "Stopping")


def explain(doc: Mapping[str, Any]) -> tuple[str, list[str]]:
    """A stored run (or its JSON) → its verdict cell and the sentences saying why."""
    reasons = parse_reasons(doc.get("verdictReasons"))
    verdict = doc.get("verdict")
    verdict = verdict.value if isinstance(verdict, Verdict) else verdict
    status = doc.get("status")
    status = getattr(status, "value", status)
    finished = status not in ACTIVE_STATUSES
    thresholds = doc.get("thresholdResults")
    checks = doc.get("baselineChecks")
    trend = doc.get("trendChecks")
    lines = verdict_summary(
        verdict,
        reasons,
        thresholds=len(thresholds) if isinstance(thresholds, list) else 0,
        baseline=len(checks) if isinstance(checks, list) else 0,
        finished=finished,
        trend=len(trend) if isinstance(trend, list) else 0,
    )
    if finished and not reasons:
        lines = _unreasoned(doc, verdict, status) or lines
    return verdict_label(verdict, reasons), lines


def _unreasoned(doc: Mapping[str, Any], verdict: Any, status: Any) -> list[str]:
    """Why, for a run recorded without reasons (by an older loadmgr, before `db migrate`):
    what it recorded says it, rather than "nothing went wrong" next to a failure."""
    if status == "Failed" and verdict != Verdict.ABORTED.value:
        error = doc.get("error")
        return [f"the run could not complete: {error}" if error else "the run could not complete"]
    if verdict != Verdict.FAILED.value:
        return []
    lines = [
        threshold_line(
            str(r.get("expression", "")),
            str(r.get("metric", "")),
            str(r.get("op", "<")),
            _float_or_zero(r.get("limit")),
            r.get("scope") if isinstance(r.get("scope"), str) else None,
            r.get("actual"),
        )
        for r in _items(doc.get("thresholdResults"))
        if r.get("passed") is False
    ]
    for key, reference in (("baselineChecks", "the baseline"), ("trendChecks", "its trend")):
        for item in _items(doc.get(key)):
            check = Regression.from_document(item, reference)
            if check is not None and check.regressed:
                lines.append(check.describe())
    return lines


def _float_or_zero(value: Any) -> float:
    try:
        return float(value or 0.0)
    except (TypeError, ValueError):
        return 0.0


def _items(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []
