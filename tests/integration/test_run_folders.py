"""Run-folder housekeeping (issue 22, item 6): Locust logs capped with a marker, old
`runs/RUN/` folders removed (never a live run's, never one in use), and `db status`
showing the space they take."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from loadmgr.models import LoadTestRun, RunStatus
from tests.conftest import error_line, ok

pytestmark = pytest.mark.integration

DAY = 86_400
# Each request prints 20 kB: a log grows by megabytes a second.
NOISY = """
from locust import HttpUser, constant, task


class NoisyUser(HttpUser):
    wait_time = constant(0)

    @task
    def items(self):
        self.client.get("/api/items")
        print("x" * 20_000, flush=True)
"""


def _run_document(run_id: str, status: RunStatus) -> dict[str, Any]:
    run = LoadTestRun(
        id=run_id, loadTestId="t", targetUsers=1, spawnRate=1, durationSeconds=60, status=status
    )
    return run.model_dump(mode="python")


def _folder(home: Path, name: str, *, age_sec: float) -> Path:
    folder = home / "runs" / name
    (folder / "locustfile").mkdir(parents=True)
    (folder / "master.log").write_bytes(b"m" * 1000)
    (folder / "locustfile" / "a.py").write_bytes(b"a" * 500)
    then = time.time() - age_sec
    for path in (folder / "locustfile" / "a.py", folder / "locustfile", folder / "master.log",
                 folder):  # fmt: skip
        os.utime(path, (then, then))
    return folder


def test_old_folders_go_live_and_recent_ones_stay(
    cli: Any, mongo_db: Any, isolated_env: Path
) -> None:
    names = {"ended": 8 * DAY, "live": 30 * DAY, "unknown": 8 * DAY, "recent": 6 * DAY}
    for name, age in names.items():
        _folder(isolated_env, name, age_sec=age)
    mongo_db.load_test_runs.insert_one(_run_document("ended", RunStatus.FINISHED))
    mongo_db.load_test_runs.insert_one(_run_document("live", RunStatus.RUNNING))
    status = ok(cli("db", "status", "-o", "json")).json()
    assert status["runFolders"] == 4 and status["runFoldersBytes"] == 4 * 1500
    pruned = ok(cli("db", "prune", "-o", "json")).json()
    assert sorted(pruned["removed"]) == ["ended", "unknown"]
    assert pruned["freedBytes"] == 3000 and pruned["olderThanSec"] == 7 * DAY
    assert sorted(p.name for p in (isolated_env / "runs").iterdir()) == ["live", "recent"]
    again = ok(cli("db", "prune", "--older-than", "0s", "-o", "json")).json()
    assert again["removed"] == ["recent"]  # the live run's folder stays, whatever its age


def test_a_bad_age_or_cap_is_a_usage_error(
    cli: Any, mongo_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "--older-than" in error_line(cli("db", "prune", "--older-than", "soon"), 2)
    monkeypatch.setenv("LOADMGR_RUN_FILES_KEEP", "forever")
    assert "LOADMGR_RUN_FILES_KEEP" in error_line(cli("db", "prune"), 2)
    monkeypatch.delenv("LOADMGR_RUN_FILES_KEEP")
    monkeypatch.setenv("LOADMGR_LOCUST_LOG_MAX", "1kB")
    ok(cli("tests", "create", "--name", "t", "--target-url", "http://127.0.0.1:9",
           "--locustfile", str(Path(__file__)), "-q"))  # fmt: skip
    assert "LOADMGR_LOCUST_LOG_MAX" in error_line(cli("runs", "start", "t"), 2)


def test_locust_logs_are_capped_with_a_marker(
    cli: Any, mongo_db: Any, target_server: Any, tmp_path: Path, isolated_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    cap = 300_000
    monkeypatch.setenv("LOADMGR_LOCUST_LOG_MAX", "300kB")
    noisy = tmp_path / "noisy.py"
    noisy.write_text(NOISY)
    ok(cli("tests", "create", "--name", "noisy", "--target-url", target_server.url,
           "--locustfile", str(noisy), "--users", "2", "--spawn-rate", "2", "--duration", "4s",
           "-q"))  # fmt: skip
    run = ok(cli("runs", "start", "noisy", "--workers", "1", "-o", "json")).json()
    assert run["status"] == "Finished", run.get("error")
    log = isolated_env / "runs" / run["id"] / "worker-1.log"
    text = log.read_bytes()
    assert len(text) <= cap
    assert b"bytes of this log dropped here" in text and b"Starting Locust" in text
