"""Whether a `local` run's recorded Locust address is its own master's, before it is used.

The address (`locustUrl`) comes from the run's document, which any writer of the database
may have rewritten. Loopback alone is not enough: another team's Locust master on the same
machine listens on loopback too, and `runs stop` would stop it, a take-over read it. So the
address is bound to the process the collector recorded when it started the master
(`collector.localMaster`: pid, start time, host, boot, pid namespace): the port must be a
TCP socket LISTENing that belongs to that very process. On Linux the kernel says so: the
socket's inode in /proc/net/tcp{,6} for the port is one of /proc/PID/fd's `socket:[inode]`
links. Where that cannot be told (another system, /proc unreadable, another user's
process), the address is refused, never trusted.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from loadmgr.errors import ClusterError
from loadmgr.service.runs.lease import process_gone, process_start_ticks, same_machine

PROC_NET_TCP = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
_LISTEN = "0A"  # the state column of a LISTENing socket (include/net/tcp_states.h)
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class UntrustedAddress(ClusterError):
    """A `local` run's recorded address is not its recorded master's: never contacted."""


class LocalMasterGone(ClusterError):
    """The recorded master no longer runs (its pid is gone, or reused by another process):
    nothing of the run can answer, and whatever listens on its port now is someone else's."""


def check_loopback(base_url: str) -> int:
    """The port of a plain-http loopback address with a port (what a local cluster records);
    anything else is refused unsent (`runs stop` would POST to another host)."""
    try:
        parts = urlsplit(base_url)
        port = parts.port
        loopback = (
            parts.scheme == "http"
            and parts.hostname in LOOPBACK_HOSTS
            and not parts.username
            and not parts.password
        )
    except ValueError:
        loopback, port = False, None
    if not loopback or port is None:
        raise UntrustedAddress(
            f"the run's local Locust address {base_url[:100]!r} is not on this machine's "
            "loopback: not contacted"
        )
    return port


def check_local_master(
    base_url: str, master: object, tables: Sequence[Path] = PROC_NET_TCP
) -> None:
    """Raise unless `base_url`'s port is a listening socket of the recorded `master` process
    (every listening socket on that port: a second listener could take the connection)."""
    port = check_loopback(base_url)
    shown = f"the run's local Locust address {base_url[:100]!r}"
    record: dict[str, Any] = master if isinstance(master, dict) else {}
    pid, start = _recorded(record)
    if pid is None or start is None:
        raise UntrustedAddress(f"{shown} names no Locust master process of its run: not contacted")
    if not sys.platform.startswith("linux"):
        raise UntrustedAddress(
            f"{shown} cannot be matched to its Locust master on this system (Linux only): "
            "not contacted"
        )
    if not same_machine(record):
        raise UntrustedAddress(
            f"{shown} is its Locust master's on another machine (or this machine cannot "
            "tell its identity): not contacted"
        )
    if process_gone(pid, start) or process_start_ticks(pid) != start:  # a zombie is gone
        raise LocalMasterGone(f"the run's local Locust master (pid {pid}) is gone: not contacted")
    listening = listening_inodes(port, tables)
    owned = socket_inodes(pid)
    if process_start_ticks(pid) != start:  # the pid was reused while its fds were read
        raise LocalMasterGone(f"the run's local Locust master (pid {pid}) is gone: not contacted")
    if listening is None or owned is None:
        raise UntrustedAddress(
            f"{shown} cannot be matched to its Locust master (pid {pid}): /proc does not "
            "tell (another user's process?): not contacted"
        )
    if not listening:
        raise UntrustedAddress(f"{shown}: nothing listens on port {port}: not contacted")
    if not listening <= owned:
        raise UntrustedAddress(
            f"{shown} is not its Locust master's (pid {pid} does not own what listens on "
            f"port {port}): not contacted"
        )


def _recorded(master: dict[str, Any]) -> tuple[int | None, int | None]:
    pid, start = master.get("pid"), master.get("pidStart")
    valid_pid = isinstance(pid, int) and not isinstance(pid, bool) and pid > 0
    valid_start = isinstance(start, int) and not isinstance(start, bool) and start >= 0
    return (pid if valid_pid else None), (start if valid_start else None)


def listening_inodes(port: int, tables: Sequence[Path] = PROC_NET_TCP) -> set[int] | None:
    """The inodes of the TCP sockets LISTENing on `port` (any address, IPv4 and IPv6) in
    this process's network namespace; None when a table cannot be read."""
    found: set[int] = set()
    for table in tables:
        try:
            lines = table.read_text().splitlines()[1:]
        except FileNotFoundError:
            continue  # no IPv6 on this kernel: nothing listens there
        except OSError:
            return None
        for line in lines:
            fields = line.split()
            try:
                if fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    found.add(int(fields[9]))
            except (IndexError, ValueError):
                return None
    return found


def socket_inodes(pid: int) -> set[int] | None:
    """The inodes of the sockets process `pid` holds open; None when that cannot be read
    (gone, or another user's)."""
    folder = f"/proc/{pid}/fd"
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    inodes: set[int] = set()
    for name in names:
        try:
            link = os.readlink(f"{folder}/{name}")
        except OSError:
            continue  # closed meanwhile
        if link.startswith("socket:[") and link.endswith("]"):
            inodes.add(int(link[8:-1]))
    return inodes


def refuse_untrusted(base_url: str | None, collector: dict[str, Any] | None) -> None:
    """UntrustedAddress where a local run's recorded address is not its recorded master's,
    before the run is touched; a master found gone passes (a take-over records the loss)."""
    if base_url is None:
        return
    try:
        check_local_master(base_url, master_of(collector))
    except LocalMasterGone:
        pass


def master_of(collector: dict[str, Any] | None) -> object:
    """The master process a run's collector recorded (`collector.localMaster`), as stored."""
    return (collector or {}).get("localMaster")
