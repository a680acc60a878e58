"""`loadmgr tests`: the group's commands, gathered from the modules that define them."""

from __future__ import annotations

import typer

from loadmgr.cli.groups import group_help
from loadmgr.cli.tests import define, history

app = typer.Typer(rich_markup_mode=None, help=group_help("tests"), no_args_is_help=True)
# In this order in `--help`: the definitions, then their history.
for module in (define, history):
    app.registered_commands.extend(module.app.registered_commands)
