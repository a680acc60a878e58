"""One collector per cluster: the lease it holds, and whether a run's collector is still alive."""

from __future__ import annotations

import functools
import hashlib
import os
import socket
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadmgr.errors import ClusterBusy
from loadmgr.models import (
    LOCAL_CLUSTER_ID,
    LoadTestRun,
    RunStatus,
    format_duration,
)
from loadmgr.service.runs.options import DEFAULT_INTERVAL_SEC
from loadmgr.service.runs.plan import RunPlan

if TYPE_CHECKING:
    from loadmgr.store import Store

BOOT_ID = Path("/proc/sys/kernel/random/boot_id")
PID_NAMESPACE = Path("/proc/self/ns/pid")


@functools.cache
def machine_identity() -> dict[str, str | None]:
    """Where this process's pids mean something: the host name, the kernel's boot id and
    the pid namespace (None where /proc cannot tell, off Linux).

    A host name alone is not enough: containers with a fixed host name (host networking,
    one image on many nodes) share it, and a pid of one namespace says nothing of another.
    """
    try:
        boot: str | None = BOOT_ID.read_text().strip() or None
    except OSError:
        boot = None
    try:
        namespace: str | None = os.readlink(PID_NAMESPACE)
    except OSError:
        namespace = None
    return {"host": socket.gethostname(), "bootId": boot, "pidNs": namespace}


def same_machine(recorded: dict[str, Any]) -> bool:
    """Whether a recorded process's pid means the same here: same host, same boot, same
    pid namespace. On Linux an identity without the boot id or namespace (recorded before
    they were, or where /proc was not readable) never matches: such a run is judged by its
    heartbeat's age alone."""
    mine = machine_identity()
    if sys.platform.startswith("linux") and None in (mine["bootId"], mine["pidNs"]):
        return False
    return all(recorded.get(key) == value for key, value in mine.items())


def process_start_ticks(pid: int) -> int | None:
    """When process `pid` started (clock ticks since boot), to tell a reused pid; Linux only."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        # Field 22; the command name before it is parenthesised and may hold spaces.
        return int(stat.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def process_gone(pid: int, start_ticks: int | None) -> bool:
    """Whether process `pid` (started at `start_ticks`) no longer runs on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, ValueError):
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state in ("Z", "X"):
            return True
    except (OSError, IndexError):
        return False
    return start_ticks is not None and process_start_ticks(pid) not in (None, start_ticks)


def collector_gone(collector: dict[str, Any] | None) -> bool:
    """Whether a run's recorded collector was on this machine and its process is gone."""
    return _gone_here(collector)


def process_here(pid: int) -> dict[str, Any]:
    """A process of this machine as a run records it: `pid`, `pidStart` and where the pid
    means something (`host`, `bootId`, `pidNs`: `machine_identity`)."""
    return {"pid": pid, "pidStart": process_start_ticks(pid), **machine_identity()}


def local_master_gone(collector: dict[str, Any] | None) -> bool:
    """Whether a `local` run's Locust master (`collector.localMaster`, recorded by the
    collector that started it) was on this machine and is gone: nothing can answer."""
    master = (collector or {}).get("localMaster")
    return _gone_here(master if isinstance(master, dict) else None)


def _gone_here(recorded: dict[str, Any] | None) -> bool:
    if not recorded or not same_machine(recorded):
        return False
    collector = recorded
    pid = collector.get("pid")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        return False
    start = collector.get("pidStart")
    return process_gone(pid, start if isinstance(start, int) else None)


def lease_ttl(interval: float) -> float:
    """How long a lease lives without a heartbeat (one at least every 5 s): 30 s."""
    return 30.0


def stale_after(interval: float) -> float:
    """A collector silent this long is taken for dead (LOADMGR_STALE_AFTER_SEC overrides)."""
    override = os.environ.get("LOADMGR_STALE_AFTER_SEC")
    if override:
        try:
            return max(1.0, float(override))
        except ValueError:
            pass
    # Heartbeats come at least every 5 s, whatever the interval: three missed is dead.
    return 15.0


def lease_id(cluster_id: str) -> str:
    """The lease key: a remote cluster is shared; `local` is one per machine, known by its
    host name, boot and pid namespace (two containers sharing a host name are two)."""
    if cluster_id != LOCAL_CLUSTER_ID:
        return cluster_id
    identity = machine_identity()
    key = f"{LOCAL_CLUSTER_ID}@{identity['host']}"
    if identity["bootId"] or identity["pidNs"]:
        seen = f"{identity['bootId']}|{identity['pidNs']}".encode()
        key += "#" + hashlib.sha256(seen).hexdigest()[:12]
    return key


def take_lease(store: Store, plan: RunPlan, notify: Any = None) -> bool:
    """Take the cluster's lease for the run; False when `--if-busy skip` found it busy."""
    key = lease_id(plan.cluster_id)
    ttl = lease_ttl(plan.options.interval)
    deadline = time.monotonic() + plan.options.wait_timeout
    announced = False
    while True:
        # The server's clock: a host clock behind or ahead must neither steal nor keep a lease.
        if store.leases.acquire(key, plan.run.id, store.server_now(), ttl):
            return True
        holder = store.leases.holder(key) or {}
        busy = f"cluster {plan.cluster_id!r} is busy with run {holder.get('runId')}"
        if plan.options.if_busy == "skip":
            return False
        if plan.options.if_busy == "fail":
            raise ClusterBusy(busy, hint="use --if-busy wait to queue, or --if-busy skip")
        if time.monotonic() >= deadline:
            raise ClusterBusy(f"{busy}; gave up after waiting {plan.options.wait_timeout:g}s")
        if not announced and notify is not None:
            notify(f"{busy}; waiting (up to {format_duration(plan.options.wait_timeout)})")
            announced = True
        time.sleep(min(2.0, max(0.1, deadline - time.monotonic())))


def _seconds_since(value: object, now: datetime | None) -> float | None:
    """Seconds from a stored or JSON date to `now`; None when there is no date."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return ((now or datetime.now(timezone.utc)) - value).total_seconds()


def heartbeat_age(run: LoadTestRun | dict[str, Any], now: datetime | None = None) -> float | None:
    """Seconds since the collector last reported, None if it never did."""
    beat = run.get("heartbeatAt") if isinstance(run, dict) else run.heartbeatAt
    return _seconds_since(beat, now)


def is_stale(run: LoadTestRun | dict[str, Any], now: datetime | None = None) -> bool:
    """An active run whose collector has gone silent (died, or its machine did)."""
    data = run if isinstance(run, dict) else run.model_dump()
    status = data.get("status")
    status = status.value if isinstance(status, RunStatus) else status
    if status not in [s.value for s in RunStatus if s.is_active]:
        return False
    from loadmgr.service.runs.lease import collector_gone

    if collector_gone(data.get("collector")):
        return True  # its process on this machine is gone: no need to wait for silence
    interval = float((data.get("collector") or {}).get("interval") or DEFAULT_INTERVAL_SEC)
    age = heartbeat_age(data, now)
    if age is None:
        since_created = _seconds_since(data.get("createdAt"), now)
        if since_created is None:
            return True
        # A Pending run gets time to start its cluster before it counts as abandoned.
        return since_created > stale_after(interval) + 120
    if status == RunStatus.PENDING.value:
        # Starting a local cluster (up to a minute) sends no heartbeat; a dead starter on
        # this machine is caught at once above.
        return age > stale_after(interval) + 120
    return age > stale_after(interval)
