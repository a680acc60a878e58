"""Short ids: a unique prefix of a run's or test's id names it, as in git and docker."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from loadmgr.errors import Conflict

if TYPE_CHECKING:
    from loadmgr.store.base import Repository

# Progress lines print a run's first 8 characters: a prefix as short names it.
MIN_PREFIX = 8
# Ids are UUIDs (hex and '-'); anything else is no prefix of one, and no pattern either.
_PREFIX = re.compile(rf"[A-Za-z0-9_-]{{{MIN_PREFIX},100}}")
# How many candidates an ambiguous prefix lists before "…".
SHOWN_CANDIDATES = 10


def id_by_prefix(repository: Repository, ref: str, kind: str, scope_text: str) -> str | None:
    """The one id in the scope starting with `ref`; None when none does (or `ref` cannot
    be a prefix: too short, or not id characters); Conflict listing them when several do."""
    prefix = ref.strip()
    if not _PREFIX.fullmatch(prefix):
        return None
    ids = repository.ids_starting_with(prefix, SHOWN_CANDIDATES + 1)
    if len(ids) <= 1:
        return ids[0] if ids else None
    shown = ", ".join(ids[:SHOWN_CANDIDATES]) + (", …" if len(ids) > SHOWN_CANDIDATES else "")
    raise Conflict(
        f"{kind} id prefix {prefix!r} is ambiguous{scope_text}: {shown}",
        hint="give more characters of the id",
    )


def too_short_hint(ref: str) -> str | None:
    """For a ref that could be the start of an id but is shorter than a prefix may be."""
    ref = ref.strip()
    if re.fullmatch(rf"[0-9a-fA-F-]{{1,{MIN_PREFIX - 1}}}", ref):
        return f"an id prefix has {MIN_PREFIX} characters or more, as progress lines print it"
    return None
