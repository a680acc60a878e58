"""examples/: the cron job works as written (issue 11): no password in the crontab, and
nothing printed (so no mail from cron) unless something needs a look."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

EXAMPLES = REPO / "examples"


@pytest.fixture
def fake_loadmgr(tmp_path: Path) -> Path:
    """A `loadmgr` that exits with $FAKE_EXIT, writing JSON on stdout and progress on stderr."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "loadmgr"
    script.write_text('#!/bin/sh\necho \'{"id": "r1"}\'\necho "progress" >&2\nexit "$FAKE_EXIT"\n')
    script.chmod(0o755)
    return bin_dir


def run_nightly(fake_loadmgr: Path, tmp_path: Path, code: int) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": f"{fake_loadmgr}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "HOME": str(tmp_path),
        "LOADMGR_HOME": str(tmp_path / "home"),
        "FAKE_EXIT": str(code),
    }
    return subprocess.run(
        ["bash", str(EXAMPLES / "nightly.sh"), "checkout"],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )


def test_nightly_prints_nothing_when_the_test_passes(fake_loadmgr: Path, tmp_path: Path) -> None:
    result = run_nightly(fake_loadmgr, tmp_path, 0)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
    kept = sorted(p.suffix for p in (tmp_path / "home" / "nightly").iterdir())
    assert kept == [".json", ".log"]  # the run and its progress are kept, not mailed


@pytest.mark.parametrize("code", [1, 2, 3, 5, 6, 7, 70])
def test_nightly_says_one_line_on_stderr_otherwise(
    fake_loadmgr: Path, tmp_path: Path, code: int
) -> None:
    result = run_nightly(fake_loadmgr, tmp_path, code)
    assert result.returncode == code
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("checkout: ")


def test_crontab_keeps_the_password_out_of_itself() -> None:
    text = (EXAMPLES / "crontab").read_text()
    uri = re.search(r"^LOADMGR_MONGO_URI=(\S+)$", text, re.M)
    assert uri is not None and re.match(r"mongodb://[^:/@]+@", uri.group(1))  # a user, no ":pw"
    assert "LOADMGR_MONGO_PASSWORD_FILE=" in text
    job = [line for line in text.splitlines() if line and not line.startswith("#")][-1]
    assert job.split()[5].startswith("LOADMGR_MONGO_PASSWORD_FILE=")
    assert "nightly.sh" in job
