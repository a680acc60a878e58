"""Help that reads well everywhere (issue 15.7), checked over the whole command tree, so a
command added later is held to the same: no `<list[str]>`, fixed choices shown and
completed, no group line cut short, no default shown by an `update`."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import CliResult, walk_commands

Cli = Callable[..., CliResult]

COMMANDS = [(path, command) for path, command in walk_commands() if not command.hidden]
IDS = [" ".join(path) or "loadmgr" for path, _ in COMMANDS]
# A metavar listing the values an option takes: `<table|json|jsonl|csv>` (or `json|slack`).
CHOICES_METAVAR = re.compile(r"^<?([^<>|\s]+(?:\|[^<>|\s]+)+)>?$")
# Options that take one of a few values: each must show and complete them.
FIXED_CHOICE_OPTIONS = [
    (["runs", "start"], "--if-busy"),
    (["runs", "list"], "--status"),
    (["runs", "list"], "--verdict"),
    (["metrics", "show"], "--view"),
    (["metrics", "export"], "--output"),
    (["db", "migrate"], "--tenant-from"),
    (["notify", "add"], "--format"),
    (["tests", "trend"], "--metric"),
]


def _help(cli: Cli, path: list[str]) -> str:
    result = cli(*path, "--help")
    assert result.exit_code == 0, result.stderr
    return result.stdout


def _choices(param: Any) -> list[str] | None:
    """The values an option is declared to take (Typer's own choices, or loadmgr's)."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None and descriptor.is_choice:
        return [str(getattr(c, "value", c)) for c in descriptor.choices]
    match = CHOICES_METAVAR.match(param.metavar or "")
    return match.group(1).split("|") if match else None


def _completed(command: Any, param: Any, incomplete: str) -> list[str]:
    ctx = command.make_context(command.name, [], resilient_parsing=True)
    return [item.value for item in param.shell_complete(ctx, incomplete)]


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_help_shows_one_value_of_a_repeatable_option(
    cli: Cli, path: list[str], command: Any
) -> None:
    text = _help(cli, path)
    assert "list[" not in text, text


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_fixed_choices_are_shown_and_completed(cli: Cli, path: list[str], command: Any) -> None:
    text = " ".join(_help(cli, path).split())
    for param in command.params:
        if param.name == "output" and param.param_type_name == "option":
            assert _choices(param), f"{' '.join(path)} -o shows no formats"
        values = _choices(param)
        if not values:
            continue
        assert "|".join(values) in text, (path, param.name)
        assert _completed(command, param, "") == values, (path, param.name)
        assert _completed(command, param, values[0][:1]) == [
            v for v in values if v.lower().startswith(values[0][:1].lower())
        ]


@pytest.mark.parametrize(("path", "option"), FIXED_CHOICE_OPTIONS)
def test_options_with_fixed_values_declare_them(path: list[str], option: str) -> None:
    command = {tuple(p): c for p, c in COMMANDS}[tuple(path)]
    param = next(p for p in command.params if option in p.opts)
    assert _choices(param), f"{' '.join(path)} {option}"


@pytest.mark.parametrize(("path", "command"), COMMANDS, ids=IDS)
def test_group_help_lists_whole_sentences(cli: Cli, path: list[str], command: Any) -> None:
    if not hasattr(command, "list_commands"):
        return
    for columns in ("60", "80", "200"):
        result = cli(*path, "--help") if columns == "80" else None
        text = result.stdout if result else _help_at_width(path, columns)
        listed = text.split("Commands:", 1)[-1]
        assert "..." not in listed, (columns, listed)


def _help_at_width(path: list[str], columns: str) -> str:
    from typer.testing import CliRunner

    from loadmgr.cli.main import app

    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": columns})
    assert result.exit_code == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize(
    ("path", "command"),
    [(p, c) for p, c in COMMANDS if p and p[-1] == "update"],
    ids=[i for (p, _), i in zip(COMMANDS, IDS, strict=True) if p and p[-1] == "update"],
)
def test_an_update_shows_no_default(cli: Cli, path: list[str], command: Any) -> None:
    """An update changes only what is given: a default in its help would read as one it
    applies."""
    text = _help(cli, path)
    assert "default:" not in text.lower(), text


def test_the_light_copies_of_the_choices_match_the_models() -> None:
    """The CLI modules keep their choices as text so `--help` imports no model."""
    from loadmgr.cli.metrics import commands as metrics_cmd
    from loadmgr.cli.output import FORMATS
    from loadmgr.cli.runs import watch as runs_cmd
    from loadmgr.cli.streaming import DATA_FORMATS
    from loadmgr.config import OUTPUT_FORMATS
    from loadmgr.models import RunStatus
    from loadmgr.models.foreign import TENANT_SOURCES
    from loadmgr.service.analysis.views import VIEWS
    from loadmgr.service.runs.lookup import VERDICT_FILTERS
    from loadmgr.service.runs.options import BUSY_POLICIES

    assert runs_cmd.STATUSES == tuple(s.value for s in RunStatus)
    assert runs_cmd.VERDICTS == VERDICT_FILTERS
    assert metrics_cmd.VIEWS == VIEWS and metrics_cmd.EXPORT_FORMATS == DATA_FORMATS
    from loadmgr.cli.tests import history as tests_cmd
    from loadmgr.service.analysis.trends import TREND_METRICS

    assert tests_cmd.TREND_METRICS == TREND_METRICS
    assert FORMATS == OUTPUT_FORMATS
    declared = {
        (" ".join(p), o): _choices(next(x for x in c.params if o in x.opts))
        for p, c in COMMANDS
        for o in ("--if-busy", "--tenant-from")
        if any(o in x.opts for x in c.params)
    }
    assert declared[("runs start", "--if-busy")] == list(BUSY_POLICIES)
    assert declared[("db migrate", "--tenant-from")] == list(TENANT_SOURCES)
