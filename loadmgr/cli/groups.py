"""The command groups: where each lives and what it is for, known without importing it.

The root lists and loads groups from this table, so `loadmgr --help` and `--version` build
no group at all, and a command builds only its own.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

# name → (module, one-line help). The modules' Typer apps take their help from here.
GROUPS: dict[str, tuple[str, str]] = {
    "tests": ("loadmgr.cli.tests.app", "Define load tests once; run them many times."),
    "runs": ("loadmgr.cli.runs.app", "Run tests on Locust clusters and see every run."),
    "metrics": ("loadmgr.cli.metrics.commands", "What a run measured, and how runs compare."),
    "clusters": (
        "loadmgr.cli.clusters.commands",
        "Register remote Locust masters ('local' is built in); get the plugin they load.",
    ),
    "sources": (
        "loadmgr.cli.sources.commands",
        "Register Prometheus servers that server-side metrics are read from.",
    ),
    "schedules": (
        "loadmgr.cli.schedules.commands",
        "Run tests on cron schedules, once per slot whatever machines tick.",
    ),
    "notify": (
        "loadmgr.cli.notify.commands",
        "Tell webhooks (Slack or JSON) when runs fail, regress or change verdict.",
    ),
    "db": (
        "loadmgr.cli.db.commands",
        "Manage the embedded store used when no MongoDB URI is configured; migrate a database.",
    ),
}


# Commands of the root itself: name → (module, one-line help); the module's `app` holds
# the command under that name.
COMMANDS: dict[str, tuple[str, str]] = {
    "apply": (
        "loadmgr.cli.declared.commands",
        "Make the database hold the tests, schedules and notifications TOML files declare.",
    ),
    "export": (
        "loadmgr.cli.declared.commands",
        "Write tests, schedules and notifications as a TOML file 'apply' reads.",
    ),
}


def group_help(name: str) -> str:
    return GROUPS[name][1]


def new_group(name: str, *parts: ModuleType) -> typer.Typer:
    """A group's Typer app, its help taken from GROUPS; with `parts`, the modules the
    group is split into, whose commands it lists in that order."""
    import typer

    app = typer.Typer(rich_markup_mode=None, help=group_help(name), no_args_is_help=True)
    for part in parts:
        app.registered_commands.extend(part.app.registered_commands)
    return app


def group_app(name: str) -> typer.Typer:
    """The Typer app of one group, imported now."""
    app: typer.Typer = importlib.import_module(GROUPS[name][0]).app
    return app


def root_command(name: str) -> Any:
    """The click command of one of the root's own commands (COMMANDS), built now."""
    import typer.main

    app: typer.Typer = importlib.import_module(COMMANDS[name][0]).app
    group = typer.main.get_group(app)
    return group.commands[name]
