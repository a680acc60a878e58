"""A real Prometheus for tests: Debian's `prometheus` package, started on a free loopback
port with a config this module writes (scrape every second), stopped when done.

Where it is not installed the tests skip, but under `CI=true` they fail: CI installs it
(`.ci/run`), so a missing Prometheus there is a broken CI, not a reason to skip. Set
LOADMGR_TEST_PROMETHEUS to use another binary.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from loadmgr.store.embedded import free_port
from tests.polling import wait_for
from tests.required_tools import required

READY_TIMEOUT = 60.0


def prometheus_path() -> str | None:
    configured = os.environ.get("LOADMGR_TEST_PROMETHEUS")
    if configured:
        return configured
    return shutil.which("prometheus")


def require_prometheus() -> str:
    return required(prometheus_path(), "Prometheus", "prometheus")


@dataclass
class Prometheus:
    """A running Prometheus: its URL, and how to stop and start it again (same port and
    data, so a test can take it away mid-run and bring it back)."""

    binary: str
    directory: Path
    port: int
    targets: list[str]
    process: subprocess.Popen[bytes] | None = None
    scrape_interval: str = "1s"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "prometheus.yml"
        targets = ", ".join(f'"{t}"' for t in self.targets)
        config.write_text(
            "global:\n"
            f"  scrape_interval: {self.scrape_interval}\n"
            "  evaluation_interval: 1s\n"
            "scrape_configs:\n"
            "  - job_name: target\n"
            f"    scrape_interval: {self.scrape_interval}\n"
            f"    static_configs:\n      - targets: [{targets}]\n",
            encoding="utf-8",
        )
        return config

    def start(self) -> None:
        config = self.write_config()
        log = open(self.directory / "prometheus.log", "ab")  # noqa: SIM115 - the process's
        self.process = subprocess.Popen(
            [
                self.binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={self.directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        log.close()
        if not wait_for(self.ready, timeout=READY_TIMEOUT, interval=0.1):
            self.stop()
            raise RuntimeError(
                "Prometheus did not become ready: "
                + (self.directory / "prometheus.log").read_text(errors="replace")[-2000:]
            )

    def ready(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError("Prometheus exited while starting")
        try:
            return requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)

    def scraped(self, metric: str) -> bool:
        """Whether `metric` has been scraped at least once (so queries have data)."""
        try:
            answer = requests.get(
                f"{self.url}/api/v1/query", params={"query": metric}, timeout=2
            ).json()
        except (requests.RequestException, ValueError):
            return False
        return bool(answer.get("data", {}).get("result"))


@contextmanager
def running_prometheus(
    directory: Path, targets: list[str], scrape_interval: str = "1s"
) -> Iterator[Prometheus]:
    """Prometheus scraping `targets` (`host:port`) every `scrape_interval`, stopped on the
    way out."""
    server = Prometheus(
        require_prometheus(), directory, free_port(), targets, scrape_interval=scrape_interval
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()
