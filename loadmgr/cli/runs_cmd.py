"""`loadmgr runs`: start, stop, list, show, follow."""

from __future__ import annotations

import typer

app = typer.Typer(help="Run tests on Locust clusters and see every run.", no_args_is_help=True)
