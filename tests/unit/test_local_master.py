"""A `local` run's recorded Locust address is used only when it is its recorded master's
listening socket (issue 21's leftovers, item 1). Loopback alone let a writer of the database
point a run at another Locust master on the same machine (another team's), which `runs
stop` would have stopped and a take-over read.

The trust rule, `local_master.check_local_master`: every TCP socket LISTENing on the
address's port belongs to the recorded master process (same pid, same start time, this
machine's boot and pid namespace); where /proc cannot tell, the address is refused. Here
this test process plays the run's master and a child process another team's Locust.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from loadmgr.errors import ClusterError
from loadmgr.models import LoadTestRun
from loadmgr.service.collection.settings import recorded_client
from loadmgr.service.runs import local_master
from loadmgr.service.runs.lease import process_here
from loadmgr.service.runs.local_master import (
    LocalMasterGone,
    UntrustedAddress,
    check_local_master,
)
from tests.polling import wait_for
from tests.unit.test_collector_identity import _running

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

# Another process listening on a loopback port (SO_REUSEPORT: it may share one of ours).
LISTENER = """
import socket, sys
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
sock.bind(("127.0.0.1", int(sys.argv[1])))
sock.listen()
print(sock.getsockname()[1], flush=True)
sys.stdin.read()
"""


def _listen(port: int = 0, reuse: bool = False) -> socket.socket:
    sock = socket.socket()
    if reuse:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    return sock


class Other:
    """Another team's Locust on this machine: a child process listening on a port."""

    def __init__(self, port: int = 0) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", LISTENER, str(port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.port = int(self.process.stdout.readline())

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=10)


@pytest.fixture
def world() -> Iterator[dict[str, Any]]:
    """The master (this process) listening on `mine`, shared `shared` with the other, the
    other listening on `theirs`, a connected (not listening) port of ours, a closed port."""
    mine = _listen()
    shared = _listen(reuse=True)
    other = Other()
    sharer = Other(shared.getsockname()[1])
    client = socket.create_connection(("127.0.0.1", mine.getsockname()[1]))
    closed = _listen()
    closed_port = closed.getsockname()[1]
    closed.close()
    try:
        yield {
            "me": process_here(os.getpid()),
            "other": process_here(other.process.pid),
            "mine": mine.getsockname()[1],
            "shared": shared.getsockname()[1],
            "theirs": other.port,
            "connected": client.getsockname()[1],
            "closed": closed_port,
        }
    finally:
        client.close()
        for sock in (mine, shared):
            sock.close()
        other.close()
        sharer.close()


def _url(port: int, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{port}"


def test_the_recorded_masters_own_address_is_used(world: dict[str, Any]) -> None:
    for host in ("127.0.0.1", "localhost", "[::1]"):
        check_local_master(_url(world["mine"], host), world["me"])


# Each forged document: (what the run's address is, what its master record says), and the
# error: untrusted (never contacted, exit 6) or gone (nothing of the run can answer).
FORGED: dict[str, tuple[Any, Any, type[ClusterError]]] = {
    "another Locust's port": ("theirs", "me", UntrustedAddress),
    "another pid": ("mine", "other", UntrustedAddress),
    "pid reused: another start time": ("mine", {"pidStart": 1}, LocalMasterGone),
    "nothing listens": ("closed", "me", UntrustedAddress),
    "a connected socket, not listening": ("connected", "me", UntrustedAddress),
    "the port shared with another listener": ("shared", "me", UntrustedAddress),
    "another boot": ("mine", {"bootId": "0" * 36}, UntrustedAddress),
    "another pid namespace": ("mine", {"pidNs": "pid:[1]"}, UntrustedAddress),
    "no master recorded": ("mine", None, UntrustedAddress),
    "a master of another shape": ("mine", ["pid", 1], UntrustedAddress),
    "pid as text": ("mine", {"pid": "1"}, UntrustedAddress),
    "pid as a bool": ("mine", {"pid": True}, UntrustedAddress),
    "no start time": ("mine", {"pidStart": None}, UntrustedAddress),
    "a start time as a float": ("mine", {"pidStart": 1.5}, UntrustedAddress),
}


def _forged(world: dict[str, Any], port: str, master: Any) -> tuple[str, Any]:
    if isinstance(master, str):
        master = world[master]
    elif isinstance(master, dict):
        base = world["other"] if port == "theirs" else world["me"]
        master = {**base, **master}
    return _url(world[port]), master


@pytest.mark.parametrize("case", FORGED, ids=list(FORGED))
def test_a_forged_address_is_never_contacted(world: dict[str, Any], case: str) -> None:
    port, master, error = FORGED[case]
    url, record = _forged(world, port, master)
    with pytest.raises(error, match="not contacted"):
        check_local_master(url, record)
    with pytest.raises(error, match="not contacted"):  # no client is made to send anything
        recorded_client(None, _run(url, record))


def test_where_proc_cannot_tell_the_address_is_refused(
    world: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _url(world["mine"])
    with pytest.raises(UntrustedAddress, match="/proc does not tell"):
        check_local_master(url, world["me"], tables=(tmp_path,))  # unreadable: a folder
    monkeypatch.setattr(local_master, "socket_inodes", lambda pid: None)  # another user's
    with pytest.raises(UntrustedAddress, match="/proc does not tell"):
        check_local_master(url, world["me"])
    monkeypatch.setattr(local_master.sys, "platform", "darwin")
    with pytest.raises(UntrustedAddress, match="Linux only"):
        check_local_master(url, world["me"])


def test_every_request_checks_again(world: dict[str, Any]) -> None:
    """The master may stop listening (die) after the client is made, and another Locust
    take its port: each request is checked before it is sent."""
    sock = _listen()
    url = _url(sock.getsockname()[1])
    client = recorded_client(None, _run(url, world["me"]))
    try:
        sock.close()
        with pytest.raises(UntrustedAddress, match="nothing listens"):
            client.stop(2.0)
    finally:
        client.close()


def test_a_remote_clusters_address_is_not_bound_to_a_process() -> None:
    from loadmgr.models import LocustCluster

    cluster = LocustCluster(id="k8s", baseUrl="http://127.0.0.1:1")
    client = recorded_client(cluster, _run("http://127.0.0.1:1", None))
    try:
        assert client.before_send is None
    finally:
        client.close()


def _run(url: str, master: Any) -> LoadTestRun:
    running = _running({"localMaster": master}, datetime.now(timezone.utc))
    return running.model_copy(update={"locustUrl": url})


def test_a_master_that_exited_unreaped_is_gone(world: dict[str, Any]) -> None:
    """Found by the take-over test: a master killed with its collector may linger as a
    zombie (its /proc entry stays, its socket is closed): gone, not an untrusted address."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        record = process_here(process.pid)
        zombie = wait_for(lambda: _state(process.pid) == "Z", timeout=10)
        assert zombie
        with pytest.raises(LocalMasterGone, match="is gone"):
            check_local_master(_url(world["mine"]), record)
    finally:
        process.wait()


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
