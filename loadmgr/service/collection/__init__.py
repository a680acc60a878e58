"""Collecting a run: sources (plugin or stats API), windows, the writer, and the run's life.

- `settings`: how a collector behaves, what it shows, who it is.
- `sources`: the loadmgr plugin's seconds, or `/stats/requests` deltas.
- `windows`: exact intervals from the plugin's per-second histograms.
- `clocks`: whether an answer's times can be true (a restart, a lie, workers ahead).
- `events`: what happened to the cluster while the run ran (`events[]`).
- `writer`: spool, fenced heartbeats, interval writes that never block the end.
- `startup`: a local Locust, the plugin's version, a new or resumed source.
- `ending`: final stats, verdict and the record of the end.
- `end_steps`: what follows the end (`EndPlan`, `EndStep`), handed in by service/lifecycle/.
- `life`: launch, follow, take over, finalise.
"""

from loadmgr.service.collection.end_steps import EndPlan, EndStep, run_end_steps
from loadmgr.service.collection.ending import last_metrics
from loadmgr.service.collection.life import Collector
from loadmgr.service.collection.settings import (
    CollectorSettings,
    CompositeObserver,
    QuietObserver,
    RunObserver,
    client_for,
    recorded_client,
)
from loadmgr.service.collection.startup import LocalFilesError
from loadmgr.service.collection.writer import Fenced

__all__ = [
    "Collector",
    "CollectorSettings",
    "CompositeObserver",
    "EndPlan",
    "EndStep",
    "Fenced",
    "LocalFilesError",
    "QuietObserver",
    "RunObserver",
    "client_for",
    "recorded_client",
    "run_end_steps",
    "last_metrics",
]
