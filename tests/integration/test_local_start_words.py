"""What `runs start` says while it brings up the `local` cluster (issue 15, item 8): one
line, once, naming what it starts; `--workers 0` is a standalone Locust."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.test_runs import create_test

pytestmark = pytest.mark.integration


def test_workers_0_says_standalone_once(cli: Any, mongo_db: Any, target_server: Any) -> None:
    create_test(cli, target_server.url, "standalone", "--duration", "3s")
    result = cli("runs", "start", "standalone", "--workers", "0", "--interval", "1", "-o", "json")
    assert result.exit_code == 0, result.stderr
    starting = [line for line in result.stderr.splitlines() if "local Locust" in line]
    assert starting == [
        "starting a standalone local Locust (one process, no workers: --workers 0)"
    ], result.stderr
    assert result.json()["collector"]["workers"] == 0  # type: ignore[index]
