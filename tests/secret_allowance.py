"""What a machine allows stored secret references to read (loadmgr/secret_refs.py), set for
a test: the variable names it uses, and a directory for its secret files."""

from __future__ import annotations

from pathlib import Path

import pytest

from loadmgr.secret_refs import ALLOWED_SECRET_DIRS_VAR, ALLOWED_SECRETS_VAR


def allow_secrets(
    monkeypatch: pytest.MonkeyPatch, *names: str, directory: Path | None = None
) -> None:
    """This machine (and the collectors it spawns) may read `names` and files in `directory`."""
    monkeypatch.setenv(ALLOWED_SECRETS_VAR, ",".join(names))
    if directory is not None:
        monkeypatch.setenv(ALLOWED_SECRET_DIRS_VAR, str(directory))
