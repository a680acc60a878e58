"""A page loaded in headless Chromium: its DOM after load and what it logged to its console.

Chromium (Debian's `chromium`) is started as a process with the flags this machine's closed
network needs, a fresh profile, and a deadline; tests skip where it is not installed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

_CONSOLE = re.compile(r":CONSOLE[:(]")


@dataclass
class LoadedPage:
    dom: str
    console: list[str]  # every console message (errors, CSP violations, failed loads)


def chromium() -> str:
    """The Chromium executable, or skip the test saying why."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("headless Chromium is not installed (Debian package 'chromium')")
    return found


def load_page(path: Path, timeout: float = 90.0) -> LoadedPage:
    """Open `path` (a file) in headless Chromium and return its DOM and console lines."""
    executable = chromium()
    with tempfile.TemporaryDirectory(prefix="lm-chromium-") as profile:
        result = subprocess.run(
            [
                executable,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                "--enable-logging=stderr",
                "--v=0",
                "--dump-dom",
                path.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    assert result.returncode == 0, result.stderr[-2000:]
    console = [line for line in result.stderr.splitlines() if _CONSOLE.search(line)]
    return LoadedPage(result.stdout, console)
