"""Rows written as they come: a JSON array, JSON lines or CSV, one row at a time.

The shared Renderer takes a list; a run's intervals may be 100,000 documents, so the
metrics commands stream them here instead. A JSON array holds one row a line: still easy
to read, and encoded by json's C encoder (an indented dump runs in pure Python and would
cost more than reading the rows from the database).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from loadmgr.cli.output import json_safe, json_text, sanitize, write_csv

DATA_FORMATS = ("json", "jsonl", "csv")

_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode


def _encode(row: object) -> str:
    try:
        return json_safe(_JSON(row))
    except ValueError:  # NaN or infinity in a stored document: written as null
        return json_safe(json_text(row))


def write_rows(
    fmt: str,
    rows: Iterable[dict[str, Any]],
    fields: Sequence[str],
    *,
    quiet_key: str | None = None,
    out: TextIO | None = None,
) -> int:
    """Write `rows` (dicts of JSON-ready values) to stdout; returns how many were written.

    With `quiet_key`, only that field of each row, one a line (like `-q` elsewhere).
    """
    stream = out or sys.stdout
    count = 0
    if quiet_key is not None:
        for row in rows:
            stream.write(sanitize(str(row.get(quiet_key, "")), in_cell=True) + "\n")
            count += 1
    elif fmt == "json":
        stream.write("[")
        for row in rows:
            stream.write(("\n  " if count == 0 else ",\n  ") + _encode(row))
            count += 1
        stream.write("\n]\n" if count else "]\n")
    elif fmt == "jsonl":
        for row in rows:
            stream.write(_encode(row) + "\n")
            count += 1
    elif fmt == "csv":
        # Through the renderer's writer: one cleaning of every cell, terminal or file.
        names = list(fields)
        count = write_csv(stream, names, ([row.get(name) for name in names] for row in rows))
    else:  # pragma: no cover - callers choose among DATA_FORMATS
        raise ValueError(f"not a data format: {fmt}")
    stream.flush()
    return count
