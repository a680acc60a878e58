"""Servers for the security tests: SecantusDB with SCRAM users or TLS, and an https proxy.

Everything listens on 127.0.0.1, is reached by polling with deadlines, and is stopped by
its owner. Certificates come from a throwaway `trustme` CA.
"""

from __future__ import annotations

import http.client
import http.server
import secrets
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pymongo
import trustme

from tests.conftest import start_secantus, stop_process


@dataclass(frozen=True)
class Certificates:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""

    ca: trustme.CA
    server: trustme.LeafCert
    ca_file: Path
    server_cert_file: Path
    server_key_file: Path
    client_file: Path  # the client's certificate and key in one PEM, as pymongo wants
    other_ca_file: Path  # a CA that signed nothing here: verifying with it must fail


def make_certificates(directory: Path) -> Certificates:
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    for index, blob in enumerate(server.cert_chain_pems):
        blob.write_to_path(str(directory / "server.pem"), append=index > 0)
    server.private_key_pem.write_to_path(str(directory / "server.key"))
    client = ca.issue_cert("loadmgr-client")
    client.private_key_and_cert_chain_pem.write_to_path(str(directory / "client.pem"))
    trustme.CA().cert_pem.write_to_path(str(directory / "other-ca.pem"))
    return Certificates(
        ca=ca,
        server=server,
        ca_file=directory / "ca.pem",
        server_cert_file=directory / "server.pem",
        server_key_file=directory / "server.key",
        client_file=directory / "client.pem",
        other_ca_file=directory / "other-ca.pem",
    )


@dataclass(frozen=True)
class MongoUser:
    name: str
    password: str
    roles: list[dict[str, str]]


@dataclass
class SecureMongo:
    """A private SecantusDB started with extra flags (`--auth`, `--tls-*`)."""

    port: int
    process: Any
    query: str = "directConnection=true"
    users: dict[str, MongoUser] = field(default_factory=dict)

    def uri(self, user: str | None = None, password: str | None = None, **params: str) -> str:
        query = "&".join([self.query, *(f"{k}={v}" for k, v in params.items())])
        if user is None:
            return f"mongodb://127.0.0.1:{self.port}/?{query}"
        secret = self.users[user].password if password is None else password
        return f"mongodb://{user}:{secret}@127.0.0.1:{self.port}/?authSource=admin&{query}"


@contextmanager
def mongo_with_users(data_dir: Path, users: list[MongoUser]) -> Iterator[SecureMongo]:
    """SecantusDB with `--auth`: users created over a first, open start, then restarted."""
    process, port = start_secantus(data_dir)
    try:
        client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(
            f"mongodb://127.0.0.1:{port}/?directConnection=true", serverSelectionTimeoutMS=10_000
        )
        with client:
            for user in users:
                client.admin.command(
                    "createUser", user.name, pwd=user.password, roles=user.roles,
                    mechanisms=["SCRAM-SHA-256"],
                )
    finally:
        stop_process(process)
    process, port = start_secantus(data_dir, "--auth")
    try:
        yield SecureMongo(port, process, users={user.name: user for user in users})
    finally:
        stop_process(process)


@contextmanager
def mongo_with_tls(
    data_dir: Path, certificates: Certificates, *, require_client_cert: bool = False
) -> Iterator[SecureMongo]:
    """SecantusDB speaking TLS only, optionally requiring a client certificate (mTLS)."""
    extra = [
        "--tls-cert-file", str(certificates.server_cert_file),
        "--tls-key-file", str(certificates.server_key_file),
    ]
    if require_client_cert:
        extra += ["--tls-ca-file", str(certificates.ca_file), "--tls-require-client-cert"]
    process, port = start_secantus(data_dir, *extra)
    try:
        yield SecureMongo(port, process)
    finally:
        stop_process(process)


# --- a reverse proxy in front of a Locust web UI ------------------------------------------


@dataclass
class ProxyLog:
    """What the proxy saw: requests let through and requests refused."""

    passed: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, allowed: bool, line: str) -> None:
        with self.lock:
            (self.passed if allowed else self.refused).append(line)


class LocustProxy:
    """Locust behind https and/or authentication, as a Kubernetes ingress would put it.

    `header=(name, value)` lets through only requests carrying that header (else 401);
    `login=(user, password)` wants a `/login_submit` form first and then a session cookie
    (else a redirect to `/login`), like Locust's own `--web-login`.
    """

    def __init__(
        self,
        upstream: str,
        *,
        certificate: trustme.LeafCert | None = None,
        header: tuple[str, str] | None = None,
        login: tuple[str, str] | None = None,
    ) -> None:
        self.upstream = urlsplit(upstream)
        self.header = header
        self.login = login
        self.session = secrets.token_hex(16)
        self.log = ProxyLog()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        scheme = "http"
        if certificate is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            certificate.configure_cert(context)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> LocustProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802
                self._handle()

            def do_POST(self) -> None:  # noqa: N802
                self._handle()

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                line = f"{self.command} {self.path}"
                if proxy.header is not None:
                    name, value = proxy.header
                    if self.headers.get(name) != value:
                        proxy.log.add(False, line)
                        self._reply(401, b"no token", {"Content-Type": "text/plain"})
                        return
                if proxy.login is not None:
                    if self.path == "/login_submit" and self.command == "POST":
                        form = parse_qs(body.decode(), keep_blank_values=True)
                        user, password = proxy.login
                        good = form.get("username") == [user] and form.get("password") == [
                            password
                        ]
                        proxy.log.add(good, line)
                        headers = {"Location": "/" if good else "/login"}
                        if good:
                            headers["Set-Cookie"] = f"proxy_session={proxy.session}; Path=/"
                        self._reply(302, b"", headers)
                        return
                    if f"proxy_session={proxy.session}" not in (self.headers.get("Cookie") or ""):
                        proxy.log.add(False, line)
                        self._reply(302, b"", {"Location": "/login"})
                        return
                proxy.log.add(True, line)
                self._forward(body)

            def _forward(self, body: bytes) -> None:
                upstream = proxy.upstream
                connection = http.client.HTTPConnection(
                    upstream.hostname or "127.0.0.1", upstream.port, timeout=30
                )
                try:
                    headers = {}
                    if self.headers.get("Content-Type"):
                        headers["Content-Type"] = self.headers["Content-Type"]
                    connection.request(self.command, self.path, body=body, headers=headers)
                    response = connection.getresponse()
                    data = response.read()
                    kept = {
                        k: v
                        for k, v in response.getheaders()
                        if k.lower() in ("content-type", "location")
                    }
                    self._reply(response.status, data, kept)
                finally:
                    connection.close()

            def _reply(self, status: int, data: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
