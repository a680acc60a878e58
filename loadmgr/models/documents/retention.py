"""Retention policies (collection `retention_policies`): how long a run's intervals keep
their detail, the step they are then merged to, and when they (or the runs) go.

A policy applies to one test (`testId`), to the tests carrying a tag (`tag`), or to every
test in its scope (neither). For a run, the most specific level that has a policy wins
(test, then tag, then all); of several tag policies the run's test matches, each age is
the one that keeps the most (`combined`), so two policies never drop what one would keep.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import Field, model_validator

from loadmgr.models.documents.base import Named

# Ages: `30d`, `12h`, `400d`, `1d12h`, `90m`, `45s` (units in order, no bare number: a
# retention age without its unit is a mistake waiting to delete data).
_AGE = re.compile(r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")
MAX_AGE_SEC = 100 * 366 * 86400  # a century: beyond any history's life
# A merged window may not be shorter than this (the collector's own step is 5 s) nor
# longer than a day (a report's chart needs some points).
MIN_DOWNSAMPLE_SEC = 10
MAX_DOWNSAMPLE_SEC = 86400


def parse_age(text: str, option: str) -> int:
    """Seconds in `text` (`30d`, `12h`, `1m`); ValueError naming `option` otherwise."""
    cleaned = str(text).strip().lower()
    match = _AGE.match(cleaned)
    if not cleaned or match is None or not any(match.groupdict().values()):
        raise ValueError(f"invalid {option} {text!r} (expected e.g. 30d, 12h, 1m, 1d12h)")
    d, h, m, s = (int(match.group(k) or 0) for k in ("d", "h", "m", "s"))
    seconds = ((d * 24 + h) * 60 + m) * 60 + s
    if seconds > MAX_AGE_SEC:
        raise ValueError(f"invalid {option} {text!r}: longer than 100 years")
    return seconds


def format_age(seconds: int | None) -> str:
    """`2592000` → `30d`, `90` → `1m30s`; `-` for none (never)."""
    if seconds is None:
        return "-"
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{n}{u}" for n, u in ((days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")) if n]
    return "".join(parts) or "0s"


class RetentionPolicy(Named):
    """One policy; `name` is its target as shown (`test:NAME`, `tag:T`, `all`)."""

    name: str
    testId: str | None = None
    tag: str | None = None
    keepDetailSec: int = Field(ge=0, le=MAX_AGE_SEC)
    downsampleSec: int | None = Field(default=None, ge=MIN_DOWNSAMPLE_SEC, le=MAX_DOWNSAMPLE_SEC)
    dropIntervalsAfterSec: int | None = Field(default=None, ge=0, le=MAX_AGE_SEC)
    dropRunsAfterSec: int | None = Field(default=None, ge=0, le=MAX_AGE_SEC)

    @model_validator(mode="after")
    def _ordered(self) -> RetentionPolicy:
        check_order(self.rules())
        return self

    def rules(self) -> Rules:
        return Rules(
            self.keepDetailSec,
            self.downsampleSec,
            self.dropIntervalsAfterSec,
            self.dropRunsAfterSec,
        )


@dataclass(frozen=True)
class Rules:
    """What a policy asks, in seconds of a run's age (since it finished); None: never."""

    keep_detail: int
    downsample: int | None
    drop_intervals_after: int | None
    drop_runs_after: int | None


def check_order(rules: Rules) -> None:
    """ValueError unless the ages follow each other: detail, then fewer, then none."""
    if rules.drop_intervals_after is not None and rules.drop_intervals_after < rules.keep_detail:
        raise ValueError("--drop-intervals-after must not be shorter than --keep-detail")
    if rules.drop_runs_after is not None:
        if rules.drop_runs_after < rules.keep_detail:
            raise ValueError("--drop-runs-after must not be shorter than --keep-detail")
        if (
            rules.drop_intervals_after is not None
            and rules.drop_runs_after < rules.drop_intervals_after
        ):
            raise ValueError("--drop-runs-after must not be shorter than --drop-intervals-after")


def _longest(values: list[int | None]) -> int | None:
    """The age that keeps the most: None (never) over any number."""
    return None if any(v is None for v in values) else max(v for v in values if v is not None)


def combined(policies: list[RetentionPolicy]) -> Rules | None:
    """The rules of a run with these matching policies (see the module's docstring)."""
    if not policies:
        return None
    for level in ("test", "tag", "all"):
        chosen = [p for p in policies if _level(p) == level]
        if chosen:
            break
    steps = [p.downsampleSec for p in chosen if p.downsampleSec is not None]
    return Rules(
        keep_detail=max(p.keepDetailSec for p in chosen),
        # The finest step any of them asks for (none asks: no downsampling).
        downsample=min(steps) if len(steps) == len(chosen) else None,
        drop_intervals_after=_longest([p.dropIntervalsAfterSec for p in chosen]),
        drop_runs_after=_longest([p.dropRunsAfterSec for p in chosen]),
    )


def _level(policy: RetentionPolicy) -> str:
    return "test" if policy.testId else "tag" if policy.tag else "all"


def intervals_resolution(kept: dict[str, object] | None) -> str:
    """What a run's intervals are, as its views and reports say: `as collected`, `1m
    (downsampled)`, or `dropped (final numbers only)`."""
    state = (kept or {}).get("state")
    if state == "dropped":
        return "dropped (final numbers only)"
    step = (kept or {}).get("resolutionSec")
    if state == "downsampled" and isinstance(step, int | float):
        return f"{format_age(int(step))} (downsampled)"
    return "as collected"
