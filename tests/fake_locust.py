"""A fake Locust master for fault tests: answers as a real one until told to lie.

It serves what loadmgr uses (`/stats/requests`, `/swarm`, `/stop`, `/worker-count`, `/`,
and, with `plugin=True`, the plugin's `/loadmgr/v1/info` and `/loadmgr/v1/seconds`) on a
free loopback port, records every `/stop`, and from a chosen moment on answers
`/stats/requests` with a given body, has the plugin's answers rewritten (`plugin_lie`), or
restarts (`restart_after_swarm_sec`: a new master, its counters and test start new).

Its plugin is honest by default: 5 requests in every second of the test, stamped
`worker_ahead` seconds ahead of its `now` (workers whose clocks run ahead), the watermark
with them, as docs/plugin.md says a master computes it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

Body = Callable[[], tuple[int, str, bytes]]  # status, content type, body


def stats_payload(state: str, requests: int, users: int = 2) -> dict[str, Any]:
    entry = {
        "method": "GET", "name": "/", "num_requests": requests, "num_failures": 0,
        "avg_response_time": 2.0, "min_response_time": 1.0, "max_response_time": 5.0,
        "median_response_time": 2, "response_time_percentile_0.95": 4,
        "response_time_percentile_0.99": 5, "current_rps": 10.0, "current_fail_per_sec": 0.0,
        "total_rps": 10.0, "total_fail_per_sec": 0.0, "avg_content_length": 10.0,
    }
    total = {**entry, "method": "", "name": "Aggregated"}
    return {
        "state": state, "user_count": users, "stats": [entry, total], "errors": [],
        "current_response_time_percentiles": {
            "response_time_percentile_0.5": 2, "response_time_percentile_0.95": 4,
        },
        "total_rps": 10.0, "fail_ratio": 0.0, "current_rps": 10.0,
    }


class FakeLocust:
    def __init__(self, plugin: bool = False) -> None:
        self.state = "ready"
        self.requests = 0
        self.stops = 0
        self.swarms = 0
        self.lie: Body | None = None  # once set, /stats/requests answers with this
        self.lie_after_swarm_sec: float | None = None
        # Once set (seconds a byte), every answer, headers included, drips one byte at a
        # time: each read is within any read timeout, the whole never within a minute.
        self.drip: float | None = None
        self.dripped: list[str] = []  # "METHOD path" of each answer that dripped
        # Once set (seconds), every answer comes whole, that long after it was asked: slow,
        # yet within every deadline.
        self.answer_delay: float | None = None
        self.closed = threading.Event()
        self._swarmed_at: float | None = None
        self.plugin = plugin
        self.plugin_lie: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self.worker_ahead = 0  # seconds the workers' clocks run ahead of the master's
        self.test_started: float | None = None  # the master's clock at the test's start
        self.stopped_at: float | None = None
        self.restart_after_swarm_sec: float | None = None
        self.restarts = 0
        self.never_starts = False  # /swarm says success, the state stays as it was
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _since_swarm(self, delay: float | None) -> bool:
        if self._swarmed_at is None:
            return False
        return time.monotonic() - self._swarmed_at >= (delay or 0.0)

    def _lying(self) -> bool:
        return self.lie is not None and self._since_swarm(self.lie_after_swarm_sec)

    def _maybe_restart(self) -> None:
        """A new master: counters from 0, a new test start, the old workers loading."""
        with self._lock:
            if self.restart_after_swarm_sec is None or self.restarts:
                return
            if self._since_swarm(self.restart_after_swarm_sec):
                self.restarts += 1
                self.requests = 0
                self.test_started = time.time()
                self.state, self.stopped_at = "running", None

    def plugin_seconds(self, after: int, limit: int) -> dict[str, Any]:
        """The plugin's answer, honest, then rewritten by `plugin_lie` once lying."""
        now = time.time()
        ahead = self.worker_ahead
        complete = int(now) + ahead
        seconds = []
        if self.test_started is not None:
            first = max(after + 1, int(self.test_started) + ahead)
            last = int(self.stopped_at or now) + ahead  # the last second with requests
            seconds = list(range(first, min(complete, last + 1)))
        stopped = self.state == "stopped"
        if stopped and seconds:
            complete = max(complete, seconds[-1] + 1)
        answer = {
            "plugin": "loadmgr", "version": 1, "now": now, "complete": complete,
            "final": stopped, "oldest": None, "test_started": self.test_started,
            "state": self.state, "user_count": 2 if self.state == "running" else 0,
            "worker_count": 2, "workers_without_plugin": 0, "more": len(seconds) > limit,
            "seconds": [
                {"t": t, "entries": [["GET", "/", 5, 0, [[3, 5]]]]} for t in seconds[:limit]
            ],
        }
        if self.plugin_lie is not None and self._since_swarm(self.lie_after_swarm_sec):
            answer = self.plugin_lie(answer)
        return answer

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, content_type: str, body: bytes) -> None:
                if fake.answer_delay is not None:
                    fake.closed.wait(fake.answer_delay)
                if fake.drip is not None:
                    self._drip(fake.drip, status, content_type, body)
                    return
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _drip(self, pause: float, status: int, content_type: str, body: bytes) -> None:
                fake.dripped.append(f"{self.command} {self.path}")
                head = (
                    f"HTTP/1.1 {status} OK\r\nContent-Type: {content_type}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                ).encode()
                try:
                    for byte in head + body:
                        if fake.closed.wait(pause):
                            return
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                except OSError:
                    return  # the client gave up on us

            def _json(self, value: Any) -> None:
                self._send(200, "application/json", json.dumps(value).encode())

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                fake._maybe_restart()
                url = urlsplit(self.path)
                if fake.plugin and url.path == "/loadmgr/v1/info":
                    self._json({"plugin": "loadmgr", "version": 1})
                elif fake.plugin and url.path == "/loadmgr/v1/seconds":
                    query = parse_qs(url.query)
                    after = int(query.get("after", ["-1"])[0])
                    limit = int(query.get("limit", ["600"])[0])
                    self._json(fake.plugin_seconds(after, limit))
                elif self.path == "/stats/requests":
                    if fake._lying():
                        assert fake.lie is not None
                        self._send(*fake.lie())
                        return
                    if fake.state == "running":
                        fake.requests += 10
                    self._json(stats_payload(fake.state, fake.requests))
                elif self.path == "/worker-count":
                    self._json({"worker_count": 0})
                elif self.path == "/":
                    self._send(200, "text/html", b'{"version": "2.47.0"}')
                elif self.path.startswith("/stats/requests/csv"):
                    self._send(200, "text/csv", b"Type,Name\n")
                else:
                    self._send(404, "text/html", b"not found")

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                if self.path == "/swarm":
                    fake.swarms += 1
                    if fake.never_starts:
                        self._json({"success": True, "message": "Swarming started"})
                        return
                    fake.state = "running"
                    fake._swarmed_at = time.monotonic()
                    fake.test_started, fake.stopped_at = time.time(), None
                    self._json({"success": True, "message": "Swarming started"})
                elif self.path == "/stop":
                    fake.stops += 1
                    fake.state = "stopped"
                    fake.stopped_at = fake.stopped_at or time.time()
                    self._json({"success": True, "message": "Test stopped"})
                else:
                    self._send(404, "text/html", b"not found")

        return Handler


@contextmanager
def fake_locust(plugin: bool = False) -> Iterator[FakeLocust]:
    fake = FakeLocust(plugin)
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.closed.set()  # dripping answers end
        fake.server.shutdown()
        fake.server.server_close()
        thread.join(timeout=5)
