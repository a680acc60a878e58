"""Tables on a narrow terminal: ids are cut to their short form, never folded (issue 15)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from loadmgr.cli import output
from loadmgr.cli.output import Column, Renderer, field, id_field

RUN_ID = "2d1ebd01-2317-47e0-903e-906e4a1cfd46"
COLUMNS = [id_field(), field("testName", "TEST"), Column("WHY", lambda d: d["why"])]


def printed(monkeypatch: pytest.MonkeyPatch, width: int, why: str) -> list[str]:
    out = io.StringIO()
    terminal = Console(file=out, width=width, force_terminal=True, color_system=None)
    monkeypatch.setattr(output, "stdout_console", lambda: terminal)
    Renderer("table", quiet=False).many(
        [
            {"id": RUN_ID, "testName": "checkout", "why": why},
            {"id": None, "testName": "x", "why": ""},
        ],
        COLUMNS,
    )
    return [line.rstrip() for line in out.getvalue().splitlines()]


def test_a_table_that_fits_shows_whole_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = printed(monkeypatch, 120, "every check held")
    assert RUN_ID in lines[1]


def test_a_narrow_terminal_shows_short_ids_on_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = printed(monkeypatch, 80, "a long reason " * 4)
    assert lines[1].startswith("2d1ebd01 checkout")  # one space apart when narrow
    assert RUN_ID not in "".join(lines) and "2317" not in "".join(lines)
    assert any(line.startswith("- ") for line in lines)  # no id: still "-"


def test_tables_say_yes_and_no_not_python_booleans() -> None:
    from loadmgr.cli.output import cell

    assert (cell(True), cell(False), cell(None), cell(0)) == ("yes", "no", "-", "0")


def test_numbers_and_their_headers_never_fold(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    terminal = Console(file=out, width=60, force_terminal=True, color_system=None)
    monkeypatch.setattr(output, "stdout_console", lambda: terminal)
    columns = [
        field("name", "NAME"),
        *(Column(header, lambda d: d["n"], "right") for header in ("REQUESTS", "FAILURES")),
        *(Column(f"P{n}", lambda d: "12,345ms", "right") for n in (50, 90, 95)),
    ]
    Renderer("table", quiet=False).many([{"name": "/api/items/" * 3, "n": "1,234,567"}], columns)
    lines = out.getvalue().splitlines()
    assert "REQUESTS" in lines[0] and "FAILURES" in lines[0]
    assert lines[1].count("1,234,567") == 2
    assert lines[1].count("12,345ms") == 3
