"""Options several commands take, declared once: the same name, help and default in each.

The run options are shared by `runs start` and `schedules add` (a scheduled slot runs as
`runs start` would).
"""

from __future__ import annotations

from typing import Annotated

import typer

from loadmgr.cli.completion import complete_cluster

UsersOpt = Annotated[int | None, typer.Option("--users", help="Users (default: the test's).")]
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
LimitOpt = Annotated[int, typer.Option("--limit", help="At most this many; 0 for all.")]
