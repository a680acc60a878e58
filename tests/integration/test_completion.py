"""Shell completion (issue 15.7) through the real console script and Typer's bash protocol,
against the real wire server: test names, run ids (recent first), cluster ids, choices."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from loadmgr.models import LoadTest, LoadTestRun, Scope, utcnow
from loadmgr.store import Store
from loadmgr.store.embedded import free_port
from tests.conftest import loadmgr_command

pytestmark = pytest.mark.integration

OLD_RUN = "0ld00000-0000-4000-8000-000000000001"
NEW_RUN = "9ew00000-0000-4000-8000-000000000002"
OTHER_TENANT_RUN = "07e00000-0000-4000-8000-000000000003"


def complete(line: str, env: dict[str, str] | None = None) -> tuple[list[str], str, float]:
    """What bash would be offered for `line` (a trailing space: a new word), the stderr,
    and how long it took."""
    words = line.split()
    cword = len(words) if line.endswith(" ") else len(words) - 1
    started = time.monotonic()
    done = subprocess.run(
        loadmgr_command(),
        env={
            **os.environ,
            **(env or {}),
            "_LOADMGR_COMPLETE": "complete_bash",
            "COMP_WORDS": line,
            "COMP_CWORD": str(cword),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.split(), done.stderr, time.monotonic() - started


@pytest.fixture
def seeded(mongo_uri: str) -> Iterator[None]:
    store = Store.connect(mongo_uri, os.environ["LOADMGR_DATABASE"], Scope(), 5000)
    for name, tenant in (("checkout", "a"), ("catalog", "a"), ("search", "b")):
        store.tests.insert(LoadTest(name=name, targetUrl="http://h", tenantId=tenant))
    now = utcnow()
    for run_id, tenant, age in ((OLD_RUN, "a", 60), (NEW_RUN, "a", 1), (OTHER_TENANT_RUN, "b", 30)):
        store.runs.insert(
            LoadTestRun(
                id=run_id,
                loadTestId="t",
                testName="checkout",
                targetUsers=1,
                spawnRate=1,
                durationSeconds=5,
                tenantId=tenant,
                createdAt=now - timedelta(minutes=age),
            )
        )
    store.clusters.collection.insert_one({"id": "k8s-prod", "baseUrl": "http://h"})
    store.close()
    yield


@pytest.mark.usefixtures("seeded")
def test_names_ids_and_clusters_are_completed() -> None:
    assert complete("loadmgr tests show ")[0] == ["search", "catalog", "checkout"]
    assert complete("loadmgr runs start ch")[0] == ["checkout"]
    assert complete("loadmgr --tenant a runs start ")[0] == ["catalog", "checkout"]
    assert complete("loadmgr runs list --test ca")[0] == ["catalog"]
    # Recent first.
    assert complete("loadmgr runs show ")[0] == [NEW_RUN, OTHER_TENANT_RUN, OLD_RUN]
    assert complete("loadmgr --tenant a metrics show ")[0] == [NEW_RUN, OLD_RUN]
    # Global options after the command apply too, as they do when the command runs.
    assert complete("loadmgr runs show --tenant a ")[0] == [NEW_RUN, OLD_RUN]
    assert complete("loadmgr tests show --env dev --tenant b ")[0] == []
    assert complete("loadmgr tests show --tenant b s")[0] == ["search"]
    assert complete("loadmgr runs stop 9e")[0] == [NEW_RUN]
    assert complete("loadmgr metrics compare 0l")[0] == [OLD_RUN]
    assert complete("loadmgr tests baseline checkout ")[0] == [NEW_RUN, OTHER_TENANT_RUN, OLD_RUN]
    assert complete("loadmgr clusters check ")[0] == ["local", "k8s-prod"]
    assert complete("loadmgr runs start checkout --cluster k")[0] == ["k8s-prod"]
    assert complete("loadmgr tests create --cluster ")[0] == ["local", "k8s-prod"]


@pytest.mark.usefixtures("mongo_uri")
def test_fixed_choices_are_completed() -> None:
    assert complete("loadmgr tests list -o ")[0] == ["table", "json", "jsonl", "csv"]
    assert complete("loadmgr metrics export x -o ")[0] == ["json", "jsonl", "csv"]
    assert complete("loadmgr metrics show x --view t")[0] == ["timeseries"]
    assert complete("loadmgr runs start x --if-busy ")[0] == ["fail", "wait", "skip"]
    assert complete("loadmgr runs list --status F")[0] == ["Finished", "Failed"]
    assert complete("loadmgr runs list --verdict ")[0] == [
        "passed", "failed", "inconclusive", "aborted", "error", "none"
    ]  # fmt: skip
    assert complete("loadmgr db migrate --tenant-from ")[0] == ["account", "org", "project"]


def test_an_unreachable_server_completes_nothing_quietly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOADMGR_MONGO_URI", f"mongodb://127.0.0.1:{free_port()}/")
    monkeypatch.setenv("LOADMGR_SERVER_SELECTION_TIMEOUT_MS", "30000")
    offered, stderr, took = complete("loadmgr runs show ")
    assert offered == [] and stderr == ""
    assert took < 15  # the completion timeout, not the configured 30 s, plus start-up
    # A broken config file is no error either.
    offered, stderr, _ = complete("loadmgr tests show ", {"LOADMGR_CONFIG": "/nonexistent.toml"})
    assert offered == [] and stderr == ""


def test_completion_never_starts_the_embedded_store(isolated_env: Path) -> None:
    offered, stderr, _ = complete("loadmgr tests show ")
    assert offered == [] and stderr == ""
    assert not (isolated_env / "db").exists()


def test_install_completion_for_bash(tmp_path: Path) -> None:
    home = tmp_path / "user"
    home.mkdir()
    # Typer's own switch for tests: the shell is the option's value, not guessed from the
    # processes above this one (under pytest-xdist, no shell may be found among them).
    env = {**os.environ, "HOME": str(home), "_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"}
    done = subprocess.run(
        [*loadmgr_command(), "--install-completion", "bash"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    script = home / ".bash_completions" / "loadmgr.sh"
    assert "_LOADMGR_COMPLETE=complete_bash" in script.read_text()
    assert str(script) in (home / ".bashrc").read_text()
