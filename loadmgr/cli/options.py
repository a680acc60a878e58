"""Options several commands take, declared once: the same name, help and default in each.

The run options are shared by `runs start` and `schedules add` (a scheduled slot runs as
`runs start` would).
"""

from __future__ import annotations

from typing import Annotated

import typer

from loadmgr.cli.completion import complete_cluster

UsersOpt = Annotated[
    int | None,
    typer.Option(
        "--users", help="Users (default: the test's; a test with steps: a plain run of these)."
    ),
]
SpawnRateOpt = Annotated[
    float | None, typer.Option("--spawn-rate", help="Users started per second.")
]
ClusterOpt = Annotated[
    str | None,
    typer.Option(
        "--cluster",
        help="Run on this cluster instead of the test's.",
        autocompletion=complete_cluster,
    ),
]
WorkersOpt = Annotated[
    int | None,
    typer.Option(
        "--workers",
        help="Local cluster: worker processes (default: one a core; 0: standalone Locust).",
    ),
]
MetaOpt = Annotated[
    list[str] | None,
    typer.Option("--meta", help="KEY=VALUE metadata (repeatable).", show_default=False),
]
SaturationCpuOpt = Annotated[
    float | None,
    typer.Option(
        "--saturation-cpu",
        metavar="PCT",
        help="A load generator worker at or above this CPU % counts as saturated "
        "(10 to 100; the test's, else 90).",
    ),
]
# Stepped load: `runs start`, and `tests create/update` (the test's runs, unless --users).
StepsOpt = Annotated[
    str | None,
    typer.Option(
        "--steps",
        metavar="USERS,USERS,...",
        help="Stepped load in one run: these users, one step after another (e.g. "
        "10,20,40,80), each step its own window (tests capacity). Needs the plugin.",
    ),
]
StepDurationOpt = Annotated[
    str | None,
    typer.Option("--step-duration", help="With --steps: how long each step lasts (60s)."),
]
StepSettleOpt = Annotated[
    str | None,
    typer.Option(
        "--step-settle",
        help="With --steps: left out of each step's numbers at its start "
        "(10% of a step when not given).",
    ),
]
LimitOpt = Annotated[int, typer.Option("--limit", help="At most this many; 0 for all.")]
FloorOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--floor",
        help="METRIC=VALUE: the smallest change counted as a regression, e.g. p95=2ms or "
        "rps=2% (of the reference's); default 1ms for latencies, 1% for rps (repeatable).",
        show_default=False,
    ),
]

# `metrics compare` and `metrics report`.
MaxRegressionOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--max-regression",
        help="METRIC=PERCENT: how much worse than the first run (or the baseline) a metric "
        "may be, e.g. p95=10% (repeatable; p50 p90 p95 p99 avg max error_rate rps).",
        show_default=False,
    ),
]
