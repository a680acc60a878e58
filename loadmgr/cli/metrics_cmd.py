"""`loadmgr metrics`: show, export, compare."""

from __future__ import annotations

import typer

app = typer.Typer(help="What a run measured, and how runs compare.", no_args_is_help=True)
