"""A webhook receiver on loopback for tests: records what it gets, answers as scripted."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Answer:
    """One scripted answer: a status, headers, or `hang` (accept, read, never answer), or
    `trickle` (the answer a byte every `trickle` seconds: each read is quick, the whole
    answer takes minutes)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: str = "ok"
    hang: bool = False
    trickle: float = 0.0


class Receiver:
    """Answers POSTs with `answers` in turn (the last one for ever); keeps each body."""

    def __init__(self, answers: list[Answer] | None = None) -> None:
        self.answers = list(answers or [Answer()])
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with receiver._lock:
                    receiver.received.append(json.loads(raw))
                    receiver.headers.append(dict(self.headers))
                    turn = min(len(receiver.received), len(receiver.answers))
                    answer = receiver.answers[turn - 1]
                if answer.hang:
                    receiver.release.wait(120)
                    return
                if answer.trickle:
                    head = f"HTTP/1.1 {answer.status} OK\r\n" + "X-Slow: " + "a" * 200
                    for byte in head.encode():
                        if receiver.release.wait(answer.trickle):
                            return
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                    return
                data = answer.body.encode()
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # Slack-like: the secret is the path; every test checks it never shows anywhere.
        self.token = uuid.uuid4().hex
        self.secret = f"T0SECRET/B0SECRET/{self.token}"
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/services/{self.secret}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@contextmanager
def receiving(*answers: Answer) -> Iterator[Receiver]:
    receiver = Receiver(list(answers) or None)
    try:
        yield receiver
    finally:
        receiver.close()
