"""Every request loadmgr sends to Locust has a deadline for its whole answer (issue 21,
item 2): a loopback server answering one byte at a time keeps each read within its
timeout, and every call site gives up at its deadline all the same."""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from loadmgr.errors import ClusterError
from loadmgr.locust.client import LocustClient
from loadmgr.locust.transport import INTERRUPTED_ANSWER_SEC, LocustTransport
from tests.fake_locust import FakeLocust, fake_locust
from tests.polling import wait_for

DEADLINE = 1.0
DRIP = 0.3  # a byte every 0.3 s: every read well within the 1-s timeout

# Every method of the client that asks Locust something, as it is called.
CALLS: dict[str, Callable[[LocustClient], Any]] = {
    "stats": lambda c: c.stats(),
    "swarm": lambda c: c.swarm(1, 1.0, None, 10),
    "stop": lambda c: c.stop(),
    "reset_stats": lambda c: c.reset_stats(),
    "worker_count": lambda c: c.worker_count(),
    "version": lambda c: c.version(),
    "requests_csv": lambda c: c.requests_csv(),
    "exceptions": lambda c: c.exceptions(),
    "plugin_version": lambda c: c.plugin_version(),
    "plugin_info": lambda c: c.plugin_info(),
    "seconds": lambda c: c.seconds(),
    "start_swarm": lambda c: c.start_swarm(1, 1.0, None, 10, start_timeout=0.5),
    "wait_started": lambda c: c.wait_started(0.5),
    "wait_final_stats": lambda c: c.wait_final_stats(0.5),
    "check": lambda c: c.check(),  # never raises: unreachable
}
NO_REQUEST = {"close", "from_cluster"}


@pytest.fixture
def dripping() -> Iterator[FakeLocust]:
    with fake_locust() as fake:
        fake.drip = DRIP
        yield fake


def test_the_table_names_every_call_that_asks_locust() -> None:
    public = {
        name
        for cls in (LocustClient, LocustTransport)
        for name, member in vars(cls).items()
        if not name.startswith("_")
        and (inspect.isfunction(member) or isinstance(member, classmethod))
    }
    assert public - NO_REQUEST == set(CALLS)


@pytest.mark.parametrize("call", sorted(CALLS))
def test_every_call_gives_up_at_its_deadline_on_an_answer_that_drips(
    dripping: FakeLocust, call: str
) -> None:
    client = LocustClient(dripping.url, timeout=DEADLINE, stop_timeout=DEADLINE)
    started = time.monotonic()
    try:
        outcome = CALLS[call](client)
    except ClusterError as exc:
        assert "did not answer" in exc.message, exc.message
    else:
        assert call == "check" and not outcome.reachable
    # start_swarm asks twice at most before it gives up (stats, then nothing more).
    assert time.monotonic() - started < 3 * DEADLINE + 1.0
    assert dripping.dripped, "no request reached the server"


def test_an_interrupt_gives_up_a_request_at_once_and_hurries_the_next(
    dripping: FakeLocust,
) -> None:
    client = LocustClient(dripping.url, timeout=60.0, stop_timeout=90.0)
    client.interrupt = threading.Event()
    timer = threading.Timer(0.5, client.interrupt.set)
    timer.start()
    started = time.monotonic()
    with pytest.raises(ClusterError, match="interrupted while waiting"):
        client.stats()
    assert time.monotonic() - started < 1.5  # not the 60-s deadline
    started = time.monotonic()
    with pytest.raises(ClusterError, match=f"within {INTERRUPTED_ANSWER_SEC:g}s"):
        client.stop()  # the signal's path still asks Locust to stop, briefly
    assert time.monotonic() - started < INTERRUPTED_ANSWER_SEC + 1.0
    started = time.monotonic()
    with pytest.raises(ClusterError, match="not answered since the interrupt"):
        client.wait_final_stats(30.0)  # Locust is not answering: nothing more is asked
    assert time.monotonic() - started < 0.5
    assert wait_for(lambda: len(dripping.dripped) == 2, timeout=2)


def test_a_collector_beats_before_a_request_once_a_beat_is_due() -> None:
    """`beating`: before a request, the client's own check, then a beat once `every`
    seconds have passed since the last; never once the client is interrupted (a signal:
    the command must end within seconds, whatever MongoDB does)."""
    import threading

    from loadmgr.service.collection.settings import beating

    class Client:
        def __init__(self) -> None:
            self.before_send: Any = lambda: calls.append("check")
            self.interrupt = threading.Event()

    calls: list[str] = []
    now = [0.0]
    client = Client()
    beating(client, lambda: calls.append("beat"), 5.0, clock=lambda: now[0])  # type: ignore[arg-type]
    for at in (1.0, 4.9, 5.0, 6.0, 10.5):
        now[0] = at
        client.before_send()
    assert calls == ["check", "check", "check", "beat", "check", "check", "beat"]
    client.interrupt.set()
    now[0] = 60.0
    calls.clear()
    client.before_send()
    assert calls == ["check"]
