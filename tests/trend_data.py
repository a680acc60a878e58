"""Nightly histories for the trend tests: series with a known step, noise or drift, stored
as finished runs built through loadmgr's own models (one run a night)."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from loadmgr.models import LoadTest, LoadTestRun
from tests.metrics_data import START, final_stats, make_run


def noisy(count: int, seed: int, *, level: float = 100.0, noise: float = 0.10) -> list[float]:
    """`level` ± `noise` (uniform, relative), from a seeded generator."""
    rng = random.Random(seed)
    return [level * (1 + rng.uniform(-noise, noise)) for _ in range(count)]


def stepped(
    count: int, at: int, seed: int, *, factor: float = 1.3, noise: float = 0.10
) -> list[float]:
    """Noise around 100, multiplied by `factor` from position `at` (0-based) on."""
    return [v * (factor if i >= at else 1.0) for i, v in enumerate(noisy(count, seed, noise=noise))]


def drifting(count: int, seed: int, *, per_run: float = 0.001, noise: float = 0.01) -> list[float]:
    """A slow creep of `per_run` (0.1%) a run, with a little noise."""
    return [v * (1 + per_run) ** i for i, v in enumerate(noisy(count, seed, noise=noise))]


def nightly_runs(
    test: LoadTest,
    p95: list[float],
    *,
    rps: list[float] | None = None,
    loads: dict[int, dict[str, Any]] | None = None,
    **fields: Any,
) -> list[LoadTestRun]:
    """One finished run a night, oldest first, with these p95s (and RPSs: 100 by default).

    `loads`: position → fields of a run with another load (`{"targetUsers": 50}`).
    """
    runs = []
    for night, value in enumerate(p95):
        created = START + timedelta(days=night)
        final = final_stats(
            p95=value, p99=value * 2, rps=rps[night] if rps else 100.0, failures=0
        )
        runs.append(
            make_run(
                test,
                final=final,
                name=f"{test.name} night {night + 1}",
                createdAt=created,
                updatedAt=created,
                startedAt=created,
                finishedAt=created + timedelta(seconds=600),
                **{**fields, **(loads or {}).get(night, {})},
            )
        )
    return runs
