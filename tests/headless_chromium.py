"""A page loaded in headless Chromium: its DOM after load, what its console showed, and
what it lays out.

Talks the DevTools protocol over a pipe (`--remote-debugging-pipe`: JSON messages ending
in NUL on fds 3 and 4), so it needs no driver, no websocket library and no port, and can
evaluate expressions in the loaded page (sizes of what it drew, at a given window width)
as well as collect every console message, exception, CSP refusal and failed load.

Tests using it skip when no Chromium is installed (Debian's `chromium`; or set
LOADMGR_TEST_CHROMIUM to its path), but under `CI=true` they fail: CI installs it
(`.ci/run`), so a missing Chromium there is a broken CI, not a reason to skip.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.required_tools import required

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")
TIMEOUT = 60.0


def chromium_path() -> str | None:
    configured = os.environ.get("LOADMGR_TEST_CHROMIUM")
    if configured:
        return configured
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def require_chromium() -> str:
    return required(chromium_path(), "headless Chromium", "chromium")


@dataclass
class LoadedPage:
    """What the browser saw: the DOM after load, every console message (errors, CSP
    violations, failed loads, exceptions), the answers to the expressions, a screenshot."""

    dom: str = ""
    console: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    screenshot: bytes = b""


class _Pipe:
    def __init__(
        self, process: subprocess.Popen[bytes], to_browser: int, from_browser: int,
        timeout: float,
    ) -> None:
        self.process = process
        self.timeout = timeout
        self.to_browser = to_browser
        self.from_browser = from_browser
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result") or {})
            self.events.append(reply)

    def wait_for(self, method: str) -> dict[str, Any]:
        for event in self.events:
            if event.get("method") == method:
                return event
        while True:
            event = self._read()
            self.events.append(event)
            if event.get("method") == method:
                return event

    def _read(self, deadline: float | None = None) -> dict[str, Any]:
        deadline = deadline or time.monotonic() + self.timeout
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self.from_browser], [], [], left)
            if ready:
                chunk = os.read(self.from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed its pipe")
                self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return dict(json.loads(message))


def _console(events: list[dict[str, Any]]) -> list[str]:
    """Every console message, exception and browser log entry (CSP, failed loads) but the
    browser's verbose chatter."""
    lines = []
    for event in events:
        method, params = event.get("method"), event.get("params") or {}
        if method == "Runtime.exceptionThrown":
            lines.append(json.dumps(params.get("exceptionDetails"))[:300])
        elif method == "Runtime.consoleAPICalled":
            lines.append(f"{params.get('type')}: {json.dumps(params.get('args'))[:300]}")
        elif method == "Log.entryAdded":
            entry = params.get("entry") or {}
            if entry.get("level") != "verbose":
                lines.append(f"{entry.get('level')}: {str(entry.get('text'))[:300]}")
    return lines


def _high(fds: tuple[int, int]) -> tuple[int, int]:
    """The pipe's ends moved above fd 9, so that putting them on 3 and 4 overwrites neither."""
    moved = tuple(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in fds)
    for fd in fds:
        os.close(fd)
    return moved[0], moved[1]


def load_page(
    path: Path,
    expressions: dict[str, str] | None = None,
    *,
    width: int = 1400,
    height: int = 900,
    timeout: float = TIMEOUT,
) -> LoadedPage:
    """Open `path` (a file) at a `width`×`height` window, wait for its load event, evaluate
    each expression (by name) in it, and take a screenshot; every wait has `timeout`."""
    binary = require_chromium()
    to_read, to_browser = _high(os.pipe())  # the browser reads commands on its fd 3
    from_browser, to_write = _high(os.pipe())  # and writes answers on its fd 4

    # The shell puts the pipes on fds 3 and 4 (and closes their first numbers) for the
    # browser it execs: safer than moving fds between fork and exec ourselves.
    redirect = f'exec "$0" "$@" 3<&{to_read} 4>&{to_write} {to_read}<&- {to_write}>&-'
    # Chromium's helpers (renderer, zygote, crashpad) outlive its main process for a moment
    # and keep writing to the profile: the whole process group is ended and waited for
    # before the profile is removed, and a straggler's file never fails the test.
    with tempfile.TemporaryDirectory(
        prefix="loadmgr-chromium-", ignore_cleanup_errors=True
    ) as profile:
        process = subprocess.Popen(
            [
                "/bin/bash",
                "-c",
                redirect,
                binary,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--disable-extensions",
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=None if os.environ.get("LOADMGR_TEST_CHROMIUM_LOG") else subprocess.DEVNULL,
            pass_fds=(to_read, to_write),
            start_new_session=True,
        )
        os.close(to_read)
        os.close(to_write)
        pipe = _Pipe(process, to_browser, from_browser, timeout)
        try:
            target = pipe.send("Target.createTarget", url="about:blank")["targetId"]
            session = pipe.send("Target.attachToTarget", targetId=target, flatten=True)[
                "sessionId"
            ]
            for domain in ("Page", "Runtime", "Log"):
                pipe.send(f"{domain}.enable", session)
            pipe.send(
                "Emulation.setDeviceMetricsOverride", session,
                width=width, height=height, deviceScaleFactor=1, mobile=False,
            )
            pipe.events.clear()
            pipe.send("Page.navigate", session, url=path.resolve().as_uri())
            pipe.wait_for("Page.loadEventFired")
            page = LoadedPage()
            for name, expression in {
                "_dom": "document.documentElement.outerHTML",
                "pageHeight": "document.documentElement.scrollHeight",
                **(expressions or {}),
            }.items():
                answer = pipe.send(
                    "Runtime.evaluate", session, expression=expression, returnByValue=True
                )
                if "exceptionDetails" in answer:
                    raise RuntimeError(f"{name}: {answer['exceptionDetails']}")
                page.values[name] = answer["result"].get("value")
            shot = pipe.send("Page.captureScreenshot", session, captureBeyondViewport=True,
                             clip={"x": 0, "y": 0, "width": width,
                                   "height": page.values.get("pageHeight") or height,
                                   "scale": 1})
            page.screenshot = base64.b64decode(shot["data"])
            page.dom = page.values.pop("_dom")
            page.console = _console(pipe.events)
            return page
        finally:
            os.close(to_browser)
            os.close(from_browser)
            _end_group(process)


def _end_group(process: subprocess.Popen[bytes]) -> None:
    """End the browser and every process of its group; wait, with a deadline, until none is
    left (SIGTERM first, SIGKILL for what is still there after 10 s)."""
    group = process.pid
    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(group, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            process.poll()  # reap the main process so the group can empty
            try:
                os.killpg(group, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)
    process.wait(timeout=15)
