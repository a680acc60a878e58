"""Programs some tests need from the machine (Chromium, Prometheus): skipped where one is
missing, but failed under `CI=true`, where `.ci/run` installs them, so a broken CI install
never passes as a skip."""

from __future__ import annotations

import os

import pytest


def required(path: str | None, what: str, package: str) -> str:
    """`path` of the program, or the test skipped (failed under CI=true) naming it."""
    if path is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{what} is not installed, and CI must run these tests (.ci/run)")
        pytest.skip(f"{what} is not installed (apt-get install {package})")
    return path
