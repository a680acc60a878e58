"""`loadmgr --help` stays light: it imports none of pymongo, requests or locust.

Structural, not timed: `python -X importtime` lists every module the process imported,
whatever the machine's speed (docs/design.md, "Start-up time"; issue #6 goal 1).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

HEAVY = ("pymongo", "requests", "locust")


def imported_modules(*args: str) -> set[str]:
    """The top-level names of every module `python -X importtime -m loadmgr ARGS` imported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOADMGR_")}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "loadmgr", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":  # the header line
                names.add(name.split(".")[0])
    assert "loadmgr" in names, "no -X importtime output parsed"
    return names


@pytest.mark.parametrize("args", [("--help",), ("--version",)])
def test_help_and_version_import_no_heavy_dependency(args: tuple[str, ...]) -> None:
    heavy = sorted(set(HEAVY) & imported_modules(*args))
    assert not heavy, f"loadmgr {' '.join(args)} imported {', '.join(heavy)}"
