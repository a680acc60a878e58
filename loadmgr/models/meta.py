"""`--meta KEY=VALUE` pairs."""

from __future__ import annotations


def parse_meta(pairs: list[str]) -> dict[str, str]:
    """`["team=core", "ticket=42"]` → a dict; raises ValueError on a pair without `=`."""
    result: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"invalid --meta {pair!r}: expected KEY=VALUE")
        if key.startswith("$") or "." in key:
            raise ValueError(f"invalid --meta key {key!r}: no '$' at the start and no '.'")
        result[key] = value
    return result
