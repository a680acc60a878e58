"""A fake Locust master for fault tests: answers as a real one until told to lie.

It serves what loadmgr uses (`/stats/requests`, `/swarm`, `/stop`, `/worker-count`, `/`,
and optionally the plugin's routes) on a free loopback port, records every `/stop`, and
from a chosen moment on answers `/stats/requests` (or the plugin) with a given body.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

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
    def __init__(self) -> None:
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
        self.closed = threading.Event()
        self._swarmed_at: float | None = None
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _lying(self) -> bool:
        if self.lie is None or self._swarmed_at is None:
            return False
        delay = self.lie_after_swarm_sec or 0.0
        return time.monotonic() - self._swarmed_at >= delay

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, content_type: str, body: bytes) -> None:
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
                if self.path == "/stats/requests":
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
                    fake.state = "running"
                    fake._swarmed_at = time.monotonic()
                    self._json({"success": True, "message": "Swarming started"})
                elif self.path == "/stop":
                    fake.stops += 1
                    fake.state = "stopped"
                    self._json({"success": True, "message": "Test stopped"})
                else:
                    self._send(404, "text/html", b"not found")

        return Handler


@contextmanager
def fake_locust() -> Iterator[FakeLocust]:
    fake = FakeLocust()
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.closed.set()  # dripping answers end
        fake.server.shutdown()
        fake.server.server_close()
        thread.join(timeout=5)
