"""Issue 21, item 9: `schedules install` writes exactly the crontab lines and unit-file
directives it means, whatever the tenant, env, database, home or URI hold: a newline is
refused (at the CLI, and by install itself), `%` is escaped for cron, and every value is
quoted for cron and systemd so that it reads back as it was."""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadmgr.config import Settings
from loadmgr.errors import ValidationFailed
from loadmgr.service.scheduling.install import (
    crontab_text,
    loadmgr_command,
    systemd_text,
    tick_environment,
    tick_log,
)
from tests.conftest import CliResult, error_line

Cli = Callable[..., CliResult]
HOSTILE_TENANT = "team\n* * * * * touch /tmp/pwned #"
BASE = Settings(home=Path("/srv/load mgr"), mongo_uri="mongodb://db.example/")


@pytest.mark.parametrize(
    "option", [("--tenant", HOSTILE_TENANT), ("--env", "prod\rx"), ("--database", "d\nb")]
)
def test_a_newline_in_the_scope_is_refused_at_the_cli(cli: Cli, option: tuple[str, str]) -> None:
    result = cli(*option, "schedules", "install")
    assert "control character" in error_line(result, 2)
    assert "touch" not in result.stdout


def test_the_reproductions_write_only_the_expected_lines() -> None:
    with pytest.raises(ValidationFailed, match="LOADMGR_TENANT holds a newline"):
        crontab_text(replace(BASE, tenant=HOSTILE_TENANT))
    unit, _ = systemd_text(replace(BASE, tenant="t' ExecStartPre=/bin/evil '"))
    assert [line for line in unit.splitlines() if line.startswith("ExecStartPre")] == []
    text, _ = crontab_text(replace(BASE, home=Path("/srv/100%/x")))
    assert len(text.splitlines()) == 3 and "100\\%" in text.splitlines()[-1]


# -- reading them back as cron and systemd do ---------------------------------------------


def _cron_variables(lines: list[str]) -> dict[str, str]:
    variables = {}
    for line in lines:
        name, value = line.split("=", 1)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]  # cron drops one pair of quotes, nothing else
        variables[name] = value
    return variables


def _cron_argv(line: str) -> list[str]:
    command = line.removeprefix("* * * * * ")
    assert re.search(r"(?<!\\)%", command) is None  # a bare % would be a newline to cron
    return shlex.split(command.replace("\\%", "%"))  # cron unescapes, then the shell splits


def _systemd_words(text: str, *, command: bool) -> list[str]:
    words = []
    for quoted, bare in re.findall(r'"((?:[^"\\]|\\.)*)"|(\S+)', text):
        word = re.sub(r"\\(.)", r"\1", quoted) if quoted or not bare else bare
        word = word.replace("%%", "%")
        words.append(word.replace("$$", "$") if command else word)
    return words


VALUE = st.text(max_size=30)


@settings(max_examples=150, deadline=None)
@given(home=VALUE, tenant=VALUE, env=VALUE, database=VALUE, uri_path=VALUE)
def test_any_value_gives_the_expected_lines_or_a_refusal(
    home: str, tenant: str, env: str, database: str, uri_path: str
) -> None:
    chosen = replace(
        BASE,
        home=Path("/h") / home.replace("\x00", ""),
        tenant=tenant or None,
        env=env or None,
        database=database or "loadmgr",
        mongo_uri=f"mongodb://db.example/{uri_path}",
    )
    try:
        expected, _ = tick_environment(chosen)
        cron, _ = crontab_text(chosen)
        unit, _ = systemd_text(chosen)
    except ValidationFailed as exc:
        assert "\n" not in exc.message
        return
    lines = cron.split("\n")
    assert lines[-1] == "" and len(lines) == len(expected) + 2
    assert _cron_variables(lines[:-2]) == expected
    argv = [*loadmgr_command(), "schedules", "tick", ">>", str(tick_log(chosen)), "2>&1"]
    assert _cron_argv(lines[-2]) == argv

    service = unit.split("[Service]\n", 1)[1].split("\n\n", 1)[0]
    directives = [line for line in service.split("\n") if line and not line.startswith("#")]
    keys = [line.split("=", 1)[0] for line in directives]
    assert keys == ["Type", *["Environment"] * len(expected), "ExecStart", "KillMode"]
    variables = dict(
        _systemd_words(line.split("=", 1)[1], command=False)[0].split("=", 1)
        for line in directives
        if line.startswith("Environment=")
    )
    assert variables == expected
    [exec_start] = [line for line in directives if line.startswith("ExecStart=")]
    assert _systemd_words(exec_start.split("=", 1)[1], command=True) == argv[:-3]
