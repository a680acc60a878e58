"""`--meta KEY=VALUE` pairs."""

from __future__ import annotations

from typing import Any

# The longest metadata string a user may set (`legacy`, written by `db migrate`, excepted).
META_VALUE_MAX = 2_000
# Keys one command may give (`--meta`), and tags (`--tag`): a handful in practice; the
# bounds keep every document within MongoDB's 16 MiB (tests/unit/test_list_bounds.py).
META_KEYS_MAX = 20
TAGS_MAX = 20


def queryable_key(key: str) -> bool:
    """Whether MongoDB can store and query `key` as a field name: no `$` first, no `.`."""
    return not key.startswith("$") and "." not in key


def metadata_refusal(key: str, value: Any) -> str | None:
    """Why a stored document may not hold `key: value` in its metadata (None: it may).
    Any JSON value may be stored; keys are MongoDB field names loadmgr can query."""
    if not key or not queryable_key(key):
        return f"metadata key {key!r} must be non-empty, without '$' or '.'"
    if isinstance(value, str) and len(value) > META_VALUE_MAX and key != "legacy":
        return f"metadata value for {key!r} longer than {META_VALUE_MAX} characters"
    return None


def parse_meta(pairs: list[str]) -> dict[str, str]:
    """`["team=core", "ticket=42"]` → a dict; raises ValueError on a pair without `=`."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"invalid --meta {pair!r}: expected KEY=VALUE")
        if not queryable_key(key):
            raise ValueError(f"invalid --meta key {key!r}: no '$' at the start and no '.'")
        result[key] = value
    if len(result) > META_KEYS_MAX:
        raise ValueError(f"at most {META_KEYS_MAX} --meta keys (got {len(result)})")
    return result
