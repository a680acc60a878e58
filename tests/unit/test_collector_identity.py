"""Issue 21, item 8: a collector is known by where its pid means something (host name, boot
id, pid namespace), not by its host name alone. A collector of another pid namespace with
the same host name (a container with a fixed host name) was judged dead at once, taken
over by `runs follow`, and the original exited 5; the `local@HOST` lease was shared too."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from loadmgr.models import LoadTestRun, RunStatus
from loadmgr.service.runs import lease
from loadmgr.service.runs.lease import (
    collector_gone,
    is_stale,
    lease_id,
    local_master_gone,
    machine_identity,
    process_here,
)

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def _running(collector: dict[str, Any], now: datetime) -> LoadTestRun:
    return LoadTestRun(
        loadTestId="t",
        testName="t",
        name="r",
        targetUsers=1,
        spawnRate=1,
        durationSeconds=60,
        status=RunStatus.RUNNING,
        locustClusterId="local",
        heartbeatAt=now,
        collector={"interval": 5, **collector},
    )


def _elsewhere(recorded: dict[str, Any], **changed: str | None) -> dict[str, Any]:
    return {**recorded, **changed}


@linux_only
def test_the_identity_reads_the_boot_and_the_pid_namespace() -> None:
    identity = machine_identity()
    assert identity["bootId"] and identity["pidNs"] and identity["pidNs"].startswith("pid:[")
    recorded = process_here(1)
    assert {k: recorded[k] for k in identity} == identity


@linux_only
@pytest.mark.parametrize(
    "changed",
    [
        {"pidNs": "pid:[4026539999]"},  # a container with the same host name
        {"bootId": "00000000-0000-0000-0000-000000000000"},  # another boot, another node
        {"pidNs": None, "bootId": None},  # recorded before either was, or unreadable
    ],
)
def test_a_dead_pid_of_another_namespace_is_judged_by_its_heartbeat_only(
    changed: dict[str, str | None],
) -> None:
    now = datetime.now(timezone.utc)
    here = process_here(_dead_pid())
    assert collector_gone(here)  # same host, boot and namespace: gone at once
    assert is_stale(_running(here, now), now)
    other = _elsewhere(here, **changed)
    assert not collector_gone(other)
    assert not is_stale(_running(other, now), now)  # its heartbeat is fresh: alive
    assert is_stale(_running(other, now), now + timedelta(seconds=16))
    assert not local_master_gone({"localMaster": other})
    assert local_master_gone({"localMaster": here})


@linux_only
def test_the_local_lease_is_one_per_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    mine = lease_id("local")
    assert mine.startswith("local@") and lease_id("k8s") == "k8s"
    other = {**machine_identity(), "pidNs": "pid:[4026539999]"}
    monkeypatch.setattr(lease, "machine_identity", lambda: other)
    assert lease_id("local") != mine
