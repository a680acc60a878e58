"""Checking a test's server metrics when it is defined or planned: a source that does not
answer is asked once, not once a metric (ten metrics on a silent Prometheus held a start
for 50 s in an adversarial pass)."""

from __future__ import annotations

from typing import Any

import pytest

from loadmgr.errors import SourceError
from loadmgr.service.server_metrics import definitions, sources


def test_a_silent_source_is_asked_once_and_each_metric_warned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []

    class Silent:
        def query(self, expression: str, at: float) -> Any:
            asked.append(expression)
            raise SourceError("Prometheus at http://prom.test did not answer within 5s")

    class Source:
        id = "prom"

    monkeypatch.setattr(sources, "get_source", lambda store, name: Source())
    monkeypatch.setattr(sources, "client_for", lambda source, *a: Silent())
    warned: list[str] = []
    metrics = [{"name": f"m{i}", "query": "up", "source": "prom"} for i in range(10)]
    definitions.check_server_metrics(object(), metrics, warned.append)  # type: ignore[arg-type]
    assert len(asked) == 1
    assert len(warned) == 10 and all("did not answer" in w for w in warned)
