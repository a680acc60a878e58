"""A tiny HTTP server to point load tests at: `python examples/demo_target.py --port 8000`.

Paths: `/` 200 text, `/api/items` 200 JSON, `/slow` 200 after ~50 ms, `/pool` 200 from a
bounded pool (`--pool-workers N --pool-ms M`: N requests served at once, M ms each, so a
known capacity of N/M requests a second, and a latency that climbs past it), `/missing` 404,
`/error` 500, `/metrics` its own counters for Prometheus, anything else 404. It counts the
requests it answered per path, so tests can compare Locust's numbers with what the target
really received, and exposes them at `/metrics` (Prometheus' text format):
`demo_requests_total{path=...}`, `demo_in_flight_requests`, `process_cpu_seconds_total`.
Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

ITEMS = [{"id": i, "name": f"item-{i}"} for i in range(1, 6)]
SLOW_DELAY_SEC = 0.05


class DemoServer(ThreadingHTTPServer):
    """A threaded HTTP server that remembers how many requests each path received."""

    daemon_threads = True
    # Load tests open many connections at once; the default backlog of 5 drops some.
    request_queue_size = 1024

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__((host, port), DemoHandler)
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.in_flight = 0
        self.delay = 0.0  # added to every answer but /metrics (a latency step, in tests)
        self.jitter = 0.0  # the delay varies by up to this fraction either way (noise)
        self._thread: threading.Thread | None = None
        self.pool_ms = 50.0
        self._pool = threading.BoundedSemaphore(4)

    @property
    def url(self) -> str:
        """The base URL, e.g. `http://127.0.0.1:41234`."""
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def count(self, path: str) -> None:
        """Record one answered request to `path`."""
        with self._lock:
            self._counts[path] += 1

    def counts(self) -> dict[str, int]:
        """A copy of the per-path request counts."""
        with self._lock:
            return dict(self._counts)

    def exposition(self) -> bytes:
        """Its counters in Prometheus' text format (what `/metrics` answers)."""
        with self._lock:
            counts, in_flight = dict(self._counts), self.in_flight
        lines = [
            "# HELP demo_requests_total Requests answered, by path.",
            "# TYPE demo_requests_total counter",
            *(
                f'demo_requests_total{{path="{_label(path)}"}} {count}'
                for path, count in sorted(counts.items())
            ),
            "# HELP demo_in_flight_requests Requests being answered now.",
            "# TYPE demo_in_flight_requests gauge",
            f"demo_in_flight_requests {in_flight}",
            "# HELP process_cpu_seconds_total CPU time of this process.",
            "# TYPE process_cpu_seconds_total counter",
            f"process_cpu_seconds_total {sum(os.times()[:2]):.3f}",
        ]
        return ("\n".join(lines) + "\n").encode()

    def set_pool(self, workers: int, service_ms: float) -> None:
        """`/pool` from now on: `workers` requests served at once, `service_ms` each."""
        self._pool = threading.BoundedSemaphore(workers)
        self.pool_ms = service_ms

    def pooled(self) -> None:
        """Wait for a worker of the pool, then hold it for the service time."""
        pool = self._pool
        with pool:
            time.sleep(self.pool_ms / 1000)

    def reset_counts(self) -> None:
        """Forget every count (between two tests sharing one server)."""
        with self._lock:
            self._counts.clear()

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up mid-answer (Locust stopping its users) is no fault of the
        # target's: say nothing, rather than print a traceback for each. ConnectionError:
        # a broken pipe, a reset or an aborted connection, however the hang-up is seen.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)

    def start_background(self) -> DemoServer:
        """Serve from a daemon thread and return self."""
        self._thread = threading.Thread(target=self.serve_forever, name="demo-target", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and release the port."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.server_close()


class DemoHandler(BaseHTTPRequestHandler):
    """Answers the demo paths; see the module docstring."""

    server: DemoServer
    protocol_version = "HTTP/1.1"  # keep-alive, as a real service would
    # Headers and body go out as two writes: with Nagle's algorithm the body waited for the
    # client's delayed ACK (40 ms on Linux), on top of every answer's own time.
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/metrics":
            self._reply(200, self.server.exposition(), "text/plain; version=0.0.4")
            return  # a scrape is not load: not counted
        with self.server._lock:
            self.server.in_flight += 1
        try:
            self._answer(path)
        finally:
            with self.server._lock:
                self.server.in_flight -= 1
        # Counted after the reply is written: a request Locust saw answered is counted.
        self.server.count(path)

    def _answer(self, path: str) -> None:
        if self.server.delay:
            spread = self.server.jitter
            time.sleep(self.server.delay * (1 + random.uniform(-spread, spread)))
        if path == "/":
            self._reply(200, b"demo target\n", "text/plain")
        elif path == "/api/items":
            self._reply(200, json.dumps(ITEMS).encode(), "application/json")
        elif path == "/slow":
            time.sleep(SLOW_DELAY_SEC)
            self._reply(200, b"slow\n", "text/plain")
        elif path == "/pool":
            self.server.pooled()
            self._reply(200, b"pooled\n", "text/plain")
        elif path == "/error":
            self._reply(500, b"internal error\n", "text/plain")
        else:
            self._reply(404, b"not found\n", "text/plain")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Stay quiet: a load test would flood the terminal."""


def _label(value: str) -> str:
    """A label value escaped as Prometheus' text format wants it."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def main(argv: list[str] | None = None) -> None:
    """Serve the demo target until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument("--pool-workers", type=int, default=4, help="/pool: served at once")
    parser.add_argument("--pool-ms", type=float, default=50.0, help="/pool: ms each")
    args = parser.parse_args(argv)
    server = DemoServer(args.host, args.port)
    server.set_pool(args.pool_workers, args.pool_ms)
    print(f"demo target listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
