"""Starting a run's load: `/swarm` with the run's `--if-busy` policy, never ending a test
loadmgr did not start.

The cluster's lease keeps loadmgr's own runs apart, but Locust may be busy anyway: another
database (another tenant's loadmgr) drives the same Locust, or a lease expired under a run
whose collector was paused. With `--if-busy wait` the start then waits for Locust too,
within what is left of `--wait-timeout`, holding the lease and the run's heartbeat so that
neither the cluster nor the run is taken for abandoned meanwhile.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from loadmgr.errors import ClusterBusy, Interrupted, ValidationFailed
from loadmgr.models import LOCAL_CLUSTER_ID, LoadTestRun, format_duration, utcnow
from loadmgr.models.locust_options import swarm_form
from loadmgr.service.runs.lease import lease_id, lease_ttl
from loadmgr.service.runs.options import DEFAULT_INTERVAL_SEC
from loadmgr.service.runs.steps import steps_form

if TYPE_CHECKING:
    from collections.abc import Callable

    from loadmgr.locust.client import LocustClient
    from loadmgr.store import Store


# While waiting, the lease and heartbeat are renewed every half interval, at most this often.
RENEW_MIN_SEC = 2.0


def busy_wait_sec(run: LoadTestRun, now: datetime | None = None) -> float:
    """Seconds the run's start may still wait for a Locust busy with another test."""
    if run.busyWaitUntil is None:
        return 0.0
    return max(0.0, (run.busyWaitUntil - (now or utcnow())).total_seconds())


@dataclass(frozen=True)
class SwarmStarted:
    """A run's load, started: the first stats payload showing it, and when /swarm was sent.

    Locust's run_time counts from the /swarm, which may come long after the start began
    (it waited for a busy Locust): a run's clock starts at `sent_at` / `sent_mono`.
    """

    payload: dict[str, Any]
    sent_at: datetime
    sent_mono: float


def start_run_swarm(
    store: Store,
    run: LoadTestRun,
    client: LocustClient,
    *,
    start_timeout: float,
    worker_wait_sec: float,
    notify: Callable[[str], None] | None = None,
    stop_event: threading.Event | None = None,
) -> SwarmStarted:
    """`client.start_swarm` for `run`, with its `--if-busy` policy toward Locust itself.

    Raises what `start_swarm` raises (ClusterBusy, ClusterError), never having stopped a
    test it did not start; and, while waiting for a busy Locust, ClusterBusy when the run's
    lease was taken or `runs stop` asked for the run to stop, Interrupted when
    `stop_event` is set (Ctrl-C, SIGTERM).
    """
    interval = float((run.collector or {}).get("interval") or DEFAULT_INTERVAL_SEC)
    wait = busy_wait_sec(run)
    renew_every = max(RENEW_MIN_SEC, interval / 2)
    last_renewal = time.monotonic()
    announced = False

    def while_busy(payload: dict[str, Any]) -> None:
        nonlocal last_renewal, announced
        if stop_event is not None and stop_event.is_set():
            raise Interrupted("interrupted while waiting for the cluster; nothing was started")
        if not announced and notify is not None and wait > 0:
            notify(
                f"Locust at {client.display_url} is busy with a test this run did not start "
                f"(state {payload.get('state')}, {payload.get('user_count', 0)} users); "
                f"waiting up to {format_duration(wait)}"
            )
            announced = True
        if time.monotonic() - last_renewal >= renew_every:
            last_renewal = time.monotonic()
            _hold_while_waiting(store, run, interval)

    try:  # checked again: the run's stored options may have been written after its plan
        extra = swarm_form(run.locustOptions) if run.locustClusterId != LOCAL_CLUSTER_ID else []
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from None
    payload = client.start_swarm(
        run.targetUsers,
        run.spawnRate,
        run.targetUrl,
        run.durationSeconds,
        start_timeout=start_timeout,
        worker_wait_sec=worker_wait_sec,
        wait_busy_sec=wait,
        while_busy=while_busy,
        # The local cluster had them on its command line; a remote master takes them here.
        extra=[*extra, *steps_form(run.steps)],  # the plugin's step shape, if any
    )
    sent_mono = client.swarm_sent_mono
    assert sent_mono is not None  # start_swarm returns only once its /swarm was accepted
    sent_at = utcnow() - timedelta(seconds=time.monotonic() - sent_mono)
    return SwarmStarted(payload, sent_at, sent_mono)


def _hold_while_waiting(store: Store, run: LoadTestRun, interval: float) -> None:
    """Keep the lease and the heartbeat of a run waiting for Locust; give up if either goes."""
    now = store.server_now()
    key = lease_id(run.locustClusterId)
    if not store.leases.renew(key, run.id, now, lease_ttl(interval)):
        raise ClusterBusy(
            f"cluster {run.locustClusterId!r} was taken by another run while this one waited"
        )
    state = store.runs.heartbeat(run.id, run.collectorEpoch, {"heartbeatAt": now})
    if state is None or state.get("stopRequested"):
        raise ClusterBusy(f"run {run.id} was stopped while it waited for the cluster")
