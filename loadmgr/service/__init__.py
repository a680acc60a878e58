"""The core: what each command does, knowing nothing of Typer or Rich."""
