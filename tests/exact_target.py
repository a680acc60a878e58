"""A target that counts its own hits per second and whose latency can step: the ground
truth that recorded intervals are checked against (issue 9)."""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

CONSTANT_LOCUSTFILE = '''
from locust import HttpUser, constant_throughput, task


class Steady(HttpUser):
    wait_time = constant_throughput(10)

    @task
    def index(self):
        self.client.get("/")
'''


class ExactTarget(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hits: Counter[int] = Counter()  # whole second → hits answered in it
        self.delay = 0.0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Locust stopping its users hangs up mid-answer: no traceback for that.
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)

    def hits_between(self, start: float, end: float) -> int:
        with self.lock:
            return sum(n for second, n in self.hits.items() if start <= second < end)

    def total(self) -> int:
        with self.lock:
            return sum(self.hits.values())

    def last_hit_after(self, moment: float) -> bool:
        with self.lock:
            return any(second >= moment for second in self.hits)


class _Handler(BaseHTTPRequestHandler):
    server: ExactTarget

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.server.delay:
            time.sleep(self.server.delay)
        body = b"ok"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        # Counted when answered: the moment Locust's request completes, as the plugin sees it.
        with self.server.lock:
            self.server.hits[int(time.time())] += 1

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def exact_target() -> Iterator[ExactTarget]:
    server = ExactTarget()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def write_locustfile(directory: Path, text: str = CONSTANT_LOCUSTFILE) -> Path:
    path = directory / "steady.py"
    path.write_text(text, encoding="utf-8")
    return path
