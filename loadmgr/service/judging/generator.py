"""What a saturated or broken load generator does to a verdict (docs/verdicts.md).

A worker out of CPU queues requests inside itself, so latencies rise and the rate falls
while the service idles; a lost worker lowers the load. A run whose checks failed while
its generator was saturated (or lost a worker) is `inconclusive`: the failure may be the
generator's. Saturation only makes the numbers worse, so a pass stays a pass, with the
generator's reason as a warning; so does a run with no check. An aborted or errored run
keeps its verdict (they rank above) and lists the generator after its cause.

A failure the generator cannot have caused stays `failed` (with the generator's reason as
a warning): the locustfile's users raised, or no request succeeded (a saturated worker is
slow, not wrong).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loadmgr.models import ReasonKind, Verdict, VerdictReason
from loadmgr.models.stats.generator import generator_condition

# The failures a saturated generator can cause: numbers judged worse than they are.
MEASURED = frozenset({ReasonKind.THRESHOLD, ReasonKind.BASELINE, ReasonKind.TREND})


_AFTERWORDS: dict[Verdict | None, str] = {
    Verdict.INCONCLUSIVE: "; the failed checks may be the generator's, not the service's",
    Verdict.PASSED: " (passed all the same: a saturated generator only makes numbers worse)",
}


def generator_reason(
    stats: Mapping[str, Any] | None, verdict: Verdict | None
) -> VerdictReason | None:
    """The `generator` reason a run's `generatorStats` make beside `verdict`, if any;
    `warning` unless it is what made the run inconclusive."""
    condition = generator_condition(stats)
    if condition is None:
        return None
    message = condition.pop("message") + _AFTERWORDS.get(verdict, "")
    warning = verdict != Verdict.INCONCLUSIVE
    return VerdictReason.model_validate(
        {"kind": ReasonKind.GENERATOR, "message": message, "warning": warning, **condition}
    )


def with_generator(
    verdict: Verdict | None, reasons: list[VerdictReason], stats: Mapping[str, Any] | None
) -> tuple[Verdict | None, list[VerdictReason]]:
    """A verdict and its reasons, with what the generator's health makes of them."""
    # Only numbers judged worse can be the generator's doing: a locustfile that raised or
    # requests that all failed stay `failed`, with the generator as a warning after them.
    blamed = verdict == Verdict.FAILED and all(reason.kind in MEASURED for reason in reasons)
    decided = Verdict.INCONCLUSIVE if blamed else verdict
    # A run already inconclusive (a change not significant) gets the generator as a warning.
    doubted = verdict == Verdict.INCONCLUSIVE and not blamed
    reason = generator_reason(stats, None if doubted else decided)
    if reason is None:
        return verdict, reasons
    if blamed:
        return decided, [reason, *reasons]
    return verdict, [*reasons, reason]
