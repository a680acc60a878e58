"""The command line: the only package that imports Typer or Rich, or knows exit codes."""
