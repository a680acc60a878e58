"""Issue 27: a test stores its steps (`tests create/update --steps/--step-duration/
--step-settle`, parsed and resolved as `runs start` does them), its runs are stepped, and
`runs start --users N` asks for a plain run of N users instead."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from loadmgr.service.runs.options import RunOptions
from loadmgr.service.runs.plan import plan_run
from tests.conftest import CliResult, error_line
from tests.unit.test_cli_unit import Captured, locustfile, mock_store  # noqa: F401 - fixtures

Cli = Callable[..., CliResult]


def _tests(captured: Captured) -> list[dict[str, Any]]:
    assert captured.client is not None
    return list(captured.client["loadmgr"]["load_tests"].find())


def _create(cli: Cli, file: Path, *extra: str) -> CliResult:
    return cli(
        "tests", "create", "--name", "t", "--target-url", "http://127.0.0.1:1",
        "--locustfile", str(file), "--max-duration", "10m", *extra,
    )  # fmt: skip


def test_create_and_update_store_steps_as_runs_start_takes_them(
    cli: Cli,
    mock_store: Captured,  # noqa: F811
    locustfile: Path,  # noqa: F811
) -> None:
    created = _create(
        cli, locustfile, "--steps", "10,20,40", "--step-duration", "60s", "-o", "json"
    )
    assert created.exit_code == 0, created.stderr
    assert _tests(mock_store)[0]["steps"] == {"users": [10, 20, 40], "stepSec": 60, "settleSec": 6}
    # What is not given is the stored steps'; a new step duration gets its own settle time.
    assert cli("tests", "update", "t", "--steps", "5,10").exit_code == 0
    assert _tests(mock_store)[0]["steps"] == {"users": [5, 10], "stepSec": 60, "settleSec": 6}
    assert cli("tests", "update", "t", "--step-duration", "2m").exit_code == 0
    assert _tests(mock_store)[0]["steps"] == {"users": [5, 10], "stepSec": 120, "settleSec": 12}
    assert cli("tests", "update", "t", "--step-settle", "0s").exit_code == 0
    assert _tests(mock_store)[0]["steps"]["settleSec"] == 0
    shown = cli("tests", "show", "t")
    assert "5, 10 users, 2m each (0s settle)" in shown.stdout
    assert cli("tests", "update", "t", "--clear-steps").exit_code == 0
    assert _tests(mock_store)[0]["steps"] is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--steps", "10,20"), "--steps needs --step-duration"),
        (("--step-duration", "60s"), "need --steps"),
        (("--step-settle", "5s"), "need --steps"),
        (("--steps", "1,x", "--step-duration", "60s"), "invalid --steps"),
        (("--steps", "10", "--step-duration", "10s", "--step-settle", "10s"), "shorter than"),
        (("--steps", "10", "--step-duration", "soon"), "--step-duration"),
        (("--steps", "10,200000", "--step-duration", "60s"), "above the test's maximum of"),
        (("--steps", ",".join(["5"] * 11), "--step-duration", "60s"), "above the test's max"),
    ],
)
def test_impossible_steps_are_refused_at_create_and_update_with_nothing_written(
    cli: Cli,
    mock_store: Captured,  # noqa: F811
    locustfile: Path,  # noqa: F811
    args: tuple[str, ...],
    message: str,
) -> None:
    assert message in error_line(_create(cli, locustfile, *args), 2)
    assert _tests(mock_store) == []
    assert _create(cli, locustfile).exit_code == 0
    before = _tests(mock_store)
    assert message in error_line(cli("tests", "update", "t", *args), 2)
    assert _tests(mock_store) == before


def test_limits_changed_under_stored_steps_are_refused(
    cli: Cli,
    mock_store: Captured,  # noqa: F811
    locustfile: Path,  # noqa: F811
) -> None:
    assert _create(cli, locustfile, "--steps", "10,50", "--step-duration", "60s").exit_code == 0
    before = _tests(mock_store)
    assert "above the test's maximum of 20" in error_line(
        cli("tests", "update", "t", "--max-users", "20"), 2
    )
    assert "maximum duration" in error_line(cli("tests", "update", "t", "--max-duration", "1m"), 2)
    line = error_line(cli("tests", "update", "t", "--steps", "1", "--clear-steps"), 2)
    assert "not both" in line
    assert _tests(mock_store) == before


def test_a_run_of_a_test_with_steps_is_stepped_unless_it_asks_for_users(
    cli: Cli,
    mock_store: Captured,  # noqa: F811
    locustfile: Path,  # noqa: F811
) -> None:
    assert _create(cli, locustfile, "--steps", "2,4", "--step-duration", "30s").exit_code == 0
    from loadmgr.models import Scope
    from loadmgr.store import Store

    assert mock_store.client is not None
    store = Store(mock_store.client["loadmgr"], Scope(), "mongodb://mock")
    stepped = plan_run(store, "t", RunOptions(), "ann").run
    assert stepped.steps == {"users": [2, 4], "stepSec": 30, "settleSec": 3}
    plain = plan_run(store, "t", RunOptions(users=3), "ann").run
    assert plain.steps is None and plain.shape is None
    assert plain.targetUsers == 3 and plain.durationSeconds == 60
    for refused in (
        RunOptions(users=3, step_duration=10),
        RunOptions(users=3, steps=[1, 2], step_duration=10),
    ):
        with pytest.raises(Exception, match="--steps|--users"):
            plan_run(store, "t", refused, "ann")
