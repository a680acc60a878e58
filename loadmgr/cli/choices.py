"""Options taking one of a fixed set of values: shown in `--help`, completed by the shell.

Kept apart from `loadmgr.cli.completion` (which reads the database) so the renderer can
declare its `-o` choices without importing anything that opens a store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def choices(values: Sequence[str]) -> dict[str, Any]:
    """Settings of an option taking one of `values`: `--help` shows them as its metavar,
    the shell completes them. The command still checks the value itself, so a bad one is
    refused with loadmgr's own one-line message (naming the option and the choices)."""
    fixed = tuple(values)

    def complete(incomplete: str) -> list[str]:
        return [value for value in fixed if value.lower().startswith(incomplete.lower())]

    return {"metavar": f"<{'|'.join(fixed)}>", "autocompletion": complete}
