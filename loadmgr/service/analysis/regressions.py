"""What counts as a regression: worse than its limit, significant, and beyond its floor.

A change worse than its limit is a regression only when the runs' steady intervals say
it is more than their noise (significance.py) and it is larger than the metric's floor
(`floor`/`floor_of_base` in the metric catalog, or `--floor METRIC=VALUE`): 4ms → 6ms is
+50 % and nothing a user would notice. Beyond the limit and the floor but not
significant (or with too few intervals to tell) is "not significant": the check is
inconclusive, never a silent pass and never a failure. docs/trends.md has the table.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from loadmgr.errors import ValidationFailed
from loadmgr.models.stats.catalog import REGRESSION, check_metric
from loadmgr.models.stats.catalog import metric as catalog_metric
from loadmgr.models.verdicts import Regression
from loadmgr.service.analysis.samples import Samples
from loadmgr.service.analysis.significance import Significance, significance

# What `--floor` may name: every metric a regression may be judged on.
_FLOOR = re.compile(r"^\s*(?P<metric>[A-Za-z0-9_.]+)\s*=\s*(?P<value>.*?)\s*$")


@dataclass(frozen=True)
class Floor:
    """A floor given for one metric: `absolute` in its unit, or `of_base` of the reference."""

    absolute: float = 0.0
    of_base: float = 0.0

    def amount(self, base: float | None) -> float:
        return max(self.absolute, self.of_base * abs(base or 0.0))

    def to_document(self) -> dict[str, float]:
        return {"ofBaseline": self.of_base} if self.of_base else {"absolute": self.absolute}

    @classmethod
    def from_document(cls, doc: Any) -> Floor | None:
        """A stored floor back; None when it is not one (written by anything)."""
        if not isinstance(doc, Mapping):
            return None
        numbers = {
            key: float(value)
            for key, value in doc.items()
            if key in ("absolute", "ofBaseline")
            and isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and value >= 0
        }
        if not numbers:
            return None
        return cls(numbers.get("absolute", 0.0), numbers.get("ofBaseline", 0.0))


def parse_floor(text: str, allowed: tuple[str, ...] = REGRESSION) -> tuple[str, Floor]:
    """`p95=2ms` → ("p95", Floor(absolute=2.0)); `rps=2%` → of the reference's value.

    A latency takes a duration (`2ms`, `0.5s`) or milliseconds; any metric takes a number
    in its unit (an error rate as a fraction: `0.001`) or a percentage of the reference."""
    invalid = f"invalid --floor {text!r}"
    match = _FLOOR.match(text)
    if match is None:
        raise ValidationFailed(f"{invalid}: expected METRIC=VALUE, e.g. p95=2ms or rps=1%")
    try:
        name = check_metric(match.group("metric"), allowed, invalid, server=True)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None
    value = match.group("value")
    try:
        if value.endswith("%"):
            floor = Floor(of_base=float(value[:-1]) / 100.0)
        elif catalog_metric(name).unit == "ms" and value.endswith("ms"):
            floor = Floor(absolute=float(value[:-2]))
        elif catalog_metric(name).unit == "ms" and value.endswith("s"):
            floor = Floor(absolute=float(value[:-1]) * 1000.0)
        else:
            floor = Floor(absolute=float(value.removesuffix("/s")))
    except ValueError:
        floor = Floor(absolute=-1.0)
    if not (0 <= floor.absolute < math.inf and 0 <= floor.of_base < math.inf):
        raise ValidationFailed(
            f"{invalid}: bad value {value!r} (a number 0 or more in the metric's unit, "
            "a duration such as 2ms, or a percentage of the reference such as 1%)"
        )
    return name, floor


def parse_floors(texts: list[str], allowed: tuple[str, ...] = REGRESSION) -> dict[str, Floor]:
    """Several `--floor` options; a later one for a metric replaces an earlier."""
    return dict(parse_floor(text, allowed) for text in texts)


def floors_document(floors: Mapping[str, Floor]) -> dict[str, dict[str, float]]:
    return {name: floor.to_document() for name, floor in floors.items()}


def floors_from_document(doc: Any) -> dict[str, Floor]:
    """Stored floors (a test's, a run's requested); what is not one is left out."""
    found: dict[str, Floor] = {}
    for name, item in doc.items() if isinstance(doc, Mapping) else ():
        floor = Floor.from_document(item)
        if isinstance(name, str) and floor is not None:
            found[name] = floor
    return found


def floor_of(name: str, base: float | None, floors: Mapping[str, Floor]) -> float:
    """The floor of metric `name` against reference value `base`: given, else the catalog's."""
    given = floors.get(name)
    return given.amount(base) if given is not None else catalog_metric(name).floor_for(base)


@dataclass(frozen=True)
class Judgement:
    """A change judged: `regression` and `inconclusive` are never both true."""

    regression: bool
    inconclusive: bool
    floor: float
    note: str | None  # why a change beyond the limit is not a regression


def judge(
    worse: float | None,
    limit: float,
    change: float | None,
    floor: float,
    tested: Significance | None,
) -> Judgement:
    """A change `worse` (fraction) than a limit, by `change` in the metric's unit."""
    if worse is None or worse <= limit:
        return Judgement(False, False, floor, None)
    if change is not None and abs(change) <= floor:
        return Judgement(False, False, floor, "below the floor")
    if tested is None or tested.significant is None:
        why = tested.note if tested is not None and tested.note else "not tested"
        return Judgement(False, True, floor, why)
    if not tested.significant:
        return Judgement(False, True, floor, "not significant")
    return Judgement(True, False, floor, None)


def tested_change(
    before: Samples,
    after: Samples,
    request: str | None,
    metric: str,
    change: float | None,
    reference: float | None,
) -> Significance | None:
    """The significance of a change of `metric` (of `request`, None: the totals); None for
    a metric without a better side (a count)."""
    if not catalog_metric(metric).direction:
        return None
    key = (request, metric)
    return significance(before.get(key, []), after.get(key, []), change=change, reference=reference)


def test_fields(tested: Significance | None) -> dict[str, Any]:
    """A comparison row's (and a stored check's) fields of the test made, or nulls."""
    return {
        "significant": None if tested is None else tested.significant,
        "pValue": None if tested is None else tested.p_value,
        "test": None if tested is None else tested.test,
        "detectable": None if tested is None else tested.detectable,
        "samples": None if tested is None else list(tested.samples),
    }


def regression(
    metric: str,
    before: float | None,
    after: float | None,
    worse: float | None,
    allowed: float,
    judged: Judgement,
    tested: Significance | None,
) -> Regression:
    """A baseline check: the change judged, with the test made."""
    return Regression(
        metric,
        before,
        after,
        worse,
        allowed,
        judged.regression,
        significant=None if tested is None else tested.significant,
        p_value=None if tested is None else tested.p_value,
        test=None if tested is None else tested.test,
        detectable=None if tested is None else tested.detectable,
        floor=judged.floor,
        inconclusive=judged.inconclusive,
        note=judged.note,
    )
