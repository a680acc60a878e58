"""Tables and views at narrow widths (issue 20, item 16): text cells wrap, so a failed run's
long error does not make piped `runs show` hundreds of columns wide, and a header is never
split mid-word (`STATU`/`S` at 60 columns)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from loadmgr.cli import output
from loadmgr.cli.output import VIEW_WIDTH, Column, Renderer
from loadmgr.cli.runs.views import list_columns, run_view

ERROR = "cannot reach Locust at http://locust.example:8089/stats/requests: " + "refused " * 70


def _run(**fields: Any) -> dict[str, Any]:
    return {
        "id": "2d1ebd01-2317-47e0-903e-906e4a1cfd46", "name": "checkout-2026-12-06T08:12:11Z",
        "testName": "checkout", "loadTestId": "t1", "status": "Failed", "verdict": "error",
        "targetUsers": 5, "spawnRate": 1, "durationSeconds": 10, "locustClusterId": "local",
        "createdBy": "alice", "error": ERROR, **fields,
    }


def _print(monkeypatch: pytest.MonkeyPatch, console: Console, call: Any) -> list[str]:
    monkeypatch.setattr(output, "stdout_console", lambda: console)
    call()
    file = console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue().splitlines()


def test_piped_runs_show_wraps_a_long_error(monkeypatch: pytest.MonkeyPatch) -> None:
    piped = Console(file=io.StringIO(), width=10_000, no_color=True, soft_wrap=True)
    lines = _print(monkeypatch, piped, lambda: Renderer("table", False).one(_run(), run_view))
    assert max(map(len, lines)) <= VIEW_WIDTH, max(map(len, lines))
    assert "refused" in "".join(lines) and sum("refused" in line for line in lines) > 2


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=60, max_value=140))
def test_runs_list_never_splits_a_header(width: int) -> None:
    columns = list_columns()
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=True, color_system=None)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(output, "stdout_console", lambda: console)
        Renderer("table", False).many([_run(), _run(testName="a-much-longer-test-name")],
                                      columns)
    text = out.getvalue()
    lines = text.splitlines()
    assert max(map(len, lines)) <= width, text
    words = set(lines[0].split())
    left_out = next((line for line in lines if line.startswith("not shown at")), "")
    for column in columns:
        assert column.header in words or column.header in left_out, (column.header, text)
    assert {"ID", "TEST", "STATUS", "VERDICT"} <= words, text


def test_a_header_of_two_words_stays_whole_per_word(monkeypatch: pytest.MonkeyPatch) -> None:
    console = Console(file=io.StringIO(), width=30, force_terminal=True, color_system=None)
    columns = [Column("LONGEST WORDS", lambda d: "x " * 30), Column("STATUS", lambda d: "ok")]
    lines = _print(monkeypatch, console, lambda: Renderer("table", False).many([{}], columns))
    head = " ".join(lines[:2])
    assert "LONGEST" in head and "STATUS" in head
