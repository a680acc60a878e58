"""Writing the files `loadmgr export` makes: sections of tables of plain values.

The values are only texts, numbers, lists of texts and tables of texts, so a few lines
write them exactly (tomllib reads back what was written; a test proves it over every
text): no TOML writer to depend on.
"""

from __future__ import annotations

from typing import Any

from loadmgr.service.declared.locations import key_path, toml_string

HEADER = (
    "# Written by `loadmgr export`; apply it with `loadmgr apply -f FILE`.\n"
    "# Locustfiles are relative to this file's folder; webhooks are named, never their URL.\n"
)


def toml_text(data: dict[str, dict[str, dict[str, Any]]]) -> str:
    """`{section: {name: {key: value}}}` as TOML: one `[section.name]` table each."""
    parts = [HEADER]
    for section, entries in data.items():
        for name, entry in entries.items():
            lines = [f"[{key_path((section, name))}]"]
            lines += [f"{key_path((key,))} = {value_text(value)}" for key, value in entry.items()]
            parts.append("\n".join(lines) + "\n")
    return "\n".join(parts)


def value_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)  # a float keeps its point (10.0), so it reads back as a float
    if isinstance(value, str):
        return toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(value_text(item) for item in value) + "]"
    if isinstance(value, dict):
        items = [f"{key_path((str(k),))} = {value_text(v)}" for k, v in value.items()]
        return "{ " + ", ".join(items) + " }" if items else "{}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")
