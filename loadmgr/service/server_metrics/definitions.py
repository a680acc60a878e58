"""`--server-metric 'NAME[:UNIT]=PROMQL'` (with `--source NAME`): parsed when given,
checked by Prometheus' own parser when the source answers (a query at now), merged into a
run from its test's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from loadmgr.errors import SourceError, ValidationFailed
from loadmgr.models import ServerMetric
from loadmgr.models.documents.server import INTERVAL_PLACEHOLDER, SERVER_UNIT_MAX

if TYPE_CHECKING:
    from loadmgr.store import Store

Warn = Callable[[str], None]
SYNTAX = "NAME[:UNIT]=PROMQL, e.g. 'cpu:cores=sum(rate(process_cpu_seconds_total[30s]))'"
CHECK_WINDOW_SEC = 10.0  # what `$interval` stands for when a query is checked


# Each is a query per interval and one at the end: a few tell the story; the bound also
# keeps the end's range queries and every document within their limits.
SERVER_METRICS_MAX = 20


def parse_server_metrics(texts: Iterable[str] | None, source: str | None) -> list[dict[str, Any]]:
    """`--server-metric` values as stored items; ValidationFailed (exit 2) naming the bad one."""
    items: list[dict[str, Any]] = []
    texts = list(texts or [])
    if len(texts) > SERVER_METRICS_MAX:
        raise ValidationFailed(
            f"at most {SERVER_METRICS_MAX} --server-metric values (got {len(texts)})"
        )
    if texts and not (source or "").strip():
        raise ValidationFailed("--server-metric needs --source NAME (see 'loadmgr sources list')")
    for text in texts:
        head, equals, query = text.partition("=")
        name, _, unit = head.strip().partition(":")
        if not equals or not name.strip() or not query.strip():
            raise ValidationFailed(f"invalid --server-metric {text!r}: expected {SYNTAX}")
        if len(unit) > SERVER_UNIT_MAX:
            raise ValidationFailed(
                f"invalid --server-metric {text!r}: a unit has at most {SERVER_UNIT_MAX} characters"
            )
        try:
            metric = ServerMetric(
                name=name.strip(), unit=unit.strip(), query=query, source=str(source).strip()
            )
        except ValidationError as exc:
            why = exc.errors()[0].get("msg", "invalid").removeprefix("Value error, ")
            raise ValidationFailed(f"invalid --server-metric {text!r}: {why}") from None
        if any(item["name"] == metric.name for item in items):
            raise ValidationFailed(f"--server-metric {metric.name!r} is given twice")
        items.append(metric.model_dump())
    return items


def merged(base: list[ServerMetric], overrides: list[ServerMetric]) -> list[ServerMetric]:
    """A test's server metrics with a run's added, a run's replacing one of the same name."""
    names = {m.name for m in overrides}
    return [m for m in base if m.name not in names] + list(overrides)


def expression_for(metric: ServerMetric, window_sec: float) -> str:
    """The query as sent for a window of `window_sec`: `$interval` is that window."""
    millis = max(1, round(window_sec * 1000))
    duration = f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"
    return metric.query.replace(INTERVAL_PLACEHOLDER, duration)


def check_server_metrics(
    store: Store, metrics: Iterable[ServerMetric | dict[str, Any]], warn: Warn | None
) -> None:
    """Each metric's source exists (NotFound, exit 4) and Prometheus parses its query
    (ValidationFailed, exit 2, with Prometheus' own message); a source that cannot be
    asked now is a warning: the run asks again."""
    from loadmgr.prometheus.client import QueryRefused
    from loadmgr.service.server_metrics.sources import client_for, get_source

    # A source that did not answer is asked no more: each further query would wait out its
    # timeout the same way (ten metrics on a silent Prometheus held a start for 50 s).
    silent: dict[str, str] = {}
    for item in metrics:
        metric = item if isinstance(item, ServerMetric) else ServerMetric.model_validate(item)
        source = get_source(store, metric.source)
        try:
            if source.id in silent:
                raise SourceError(silent[source.id])
            client_for(source).query(expression_for(metric, CHECK_WINDOW_SEC), at=time.time())
        except QueryRefused as exc:
            raise ValidationFailed(
                f"invalid --server-metric {metric.name!r}: {exc.message}"
            ) from None
        except SourceError as exc:
            silent.setdefault(source.id, exc.message)
            if warn is not None:
                warn(f"warning: server metric {metric.name!r} not checked: {exc.message}")
