"""The line a shell asks to complete gets its global options hoisted, like argv."""

from __future__ import annotations

import pytest

from loadmgr.cli.app import hoist_completion_words
from loadmgr.cli.choices import choices


@pytest.mark.parametrize(
    ("words", "cword", "expected"),
    [
        ("loadmgr tests show --tenant a ", 5, "loadmgr --tenant a tests show"),
        ("loadmgr tests show --tenant a x", 5, "loadmgr --tenant a tests show x"),
        ("loadmgr runs list --tenant ", 4, "loadmgr runs list --tenant"),  # its value next
        ("loadmgr runs list --debug --status F", 5, "loadmgr --debug runs list --status F"),
        ("loadmgr runs show", 2, "loadmgr runs show"),
        ("loadmgr tests show 'unfinished", 3, "loadmgr tests show 'unfinished"),
    ],
)
def test_bash_words(words: str, cword: int, expected: str) -> None:
    environ = {"COMP_WORDS": words, "COMP_CWORD": str(cword)}
    hoist_completion_words(environ)
    assert environ["COMP_WORDS"] == expected and environ["COMP_CWORD"] == str(cword)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("loadmgr tests show --tenant a ", "loadmgr --tenant a tests show "),
        ("loadmgr tests show --tenant a al", "loadmgr --tenant a tests show al"),
        ("loadmgr tests show --tenant ", "loadmgr tests show --tenant "),
        ("loadmgr ", "loadmgr "),
    ],
)
def test_zsh_fish_line(line: str, expected: str) -> None:
    environ = {"_TYPER_COMPLETE_ARGS": line}
    hoist_completion_words(environ)
    assert environ["_TYPER_COMPLETE_ARGS"] == expected


def test_choices_show_and_complete_any_case() -> None:
    declared = choices(("Pending", "Running"))
    assert declared["metavar"] == "<Pending|Running>"
    assert declared["autocompletion"]("p") == ["Pending"]
    assert declared["autocompletion"]("") == ["Pending", "Running"]
