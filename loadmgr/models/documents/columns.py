"""`requestStatsZ` in encoding 3 (docs/storage.md): the per-request entries by column,
each column a segment of its own, so that a read decodes only the columns it asks for,
and the histograms as packed integers (`packed.py`), not JSON.

Inflated, the field is:

- 4 bytes: the header's length H, little-endian unsigned;
- H bytes: the header, UTF-8 JSON `{"rows": N, "columns": [[FIELD, KIND, BYTES], …]}`, the
  items' fields in their order;
- each column's BYTES, in the header's order: KIND `json` is a JSON array of N values (as a
  column of encoding 2); KIND `steps` (the `hist` column alone) is packed integers: N
  lengths (0: no histogram; k + 1: a flat step array of k numbers), then those arrays one
  after another.

A `db prune` merges 8 of an entry's 14 fields and `metrics show` reads fewer: the floats
they skip (JSON's slowest part) are never parsed, nor any histogram they do not ask for.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import chain
from typing import Any

from loadmgr.models.documents.packed import CompactError, json_value, pack, unpack
from loadmgr.models.histogram import whole_steps_fault

FIELD = "requestStatsZ"
JSON_KIND = "json"
STEPS_KIND = "steps"
_LENGTH_BYTES = 4


def encode(columns: dict[str, list[Any]]) -> bytes:
    """The field's bytes (before zlib) for `columns` (every one as long, at least one):
    the `hist` column packed when each of its values is a flat array or null."""
    rows = len(next(iter(columns.values())))
    described: list[list[Any]] = []
    segments: list[bytes] = []
    for name, values in columns.items():
        segment = _packed_histograms(values) if name == "hist" else None
        kind = STEPS_KIND
        if segment is None:
            kind = JSON_KIND
            segment = json.dumps(values, separators=(",", ":"), allow_nan=True).encode()
        described.append([name, kind, len(segment)])
        segments.append(segment)
    header = json.dumps({"rows": rows, "columns": described}, separators=(",", ":")).encode()
    return len(header).to_bytes(_LENGTH_BYTES, "little") + header + b"".join(segments)


def _packed_histograms(values: list[Any]) -> bytes | None:
    if not all(value is None or type(value) is list for value in values):
        return None  # a text kept as text: the column stays JSON, as in encoding 2
    lengths = [0 if value is None else len(value) + 1 for value in values]
    return pack([*lengths, *chain.from_iterable(value for value in values if value)])


def decode(raw: bytes, wanted: frozenset[str] | None) -> tuple[dict[str, list[Any]], int, bool]:
    """The columns of `raw` that `wanted` names (all when None), their length N, and
    whether the `hist` column among them holds checked flat arrays (packed: whole numbers
    by construction, order and ranges checked here) rather than JSON values left to check.
    CompactError for anything `encode` did not write."""
    rows, described, body = _header(raw)
    columns: dict[str, list[Any]] = {}
    checked = False
    at = 0
    for name, kind, size in described:
        segment, at = body[at : at + size], at + size
        if wanted is not None and name not in wanted:
            continue
        if kind == STEPS_KIND:
            columns[name], checked = list(_histograms(segment, rows)), True
        else:
            columns[name] = _json_column(name, segment, rows)
    return columns, rows, checked


def _header(raw: bytes) -> tuple[int, list[tuple[str, str, int]], memoryview]:
    if len(raw) < _LENGTH_BYTES:
        raise CompactError(f"{FIELD}: no header")
    end = _LENGTH_BYTES + int.from_bytes(raw[:_LENGTH_BYTES], "little")
    if end > len(raw):
        raise CompactError(f"{FIELD}: truncated header")
    header = json_value(FIELD, raw[_LENGTH_BYTES:end])
    if not isinstance(header, dict) or set(header) != {"rows", "columns"}:
        raise CompactError(f"{FIELD}: not the header loadmgr writes")
    rows, described = header["rows"], header["columns"]
    if type(rows) is not int or rows < 1:
        raise CompactError(f"{FIELD}: no rows")
    if type(described) is not list or not described:
        raise CompactError(f"{FIELD}: no columns")
    names: set[str] = set()
    columns = []
    for column in described:
        if (
            type(column) is not list
            or len(column) != 3
            or type(column[0]) is not str
            or column[1] not in (JSON_KIND, STEPS_KIND)
            or type(column[2]) is not int
            or column[2] < 0
            or column[0] in names
            or (column[1] == STEPS_KIND and column[0] != "hist")
        ):
            raise CompactError(f"{FIELD}: a column loadmgr does not write")
        if column[2] < _least_bytes(column[1], rows):
            # Checked for every column, read or not: N is then bounded by the bytes (a
            # read that skips every column still makes N items).
            raise CompactError(f"{FIELD}: more rows than its columns' bytes hold")
        names.add(column[0])
        columns.append((column[0], column[1], column[2]))
    body = memoryview(raw)[end:]
    if sum(size for _, _, size in columns) != len(body):
        raise CompactError(f"{FIELD}: columns of other lengths than their bytes")
    return rows, columns, body


def _least_bytes(kind: str, rows: int) -> int:
    """The fewest bytes a column of `kind` holding `rows` values takes: a JSON array
    `[v,v,…]` has a byte a value and one between each two; packed steps a width byte and
    a length of at least one byte a row."""
    return 2 * rows + 1 if kind == JSON_KIND else rows + 1


def _json_column(name: str, segment: memoryview, rows: int) -> list[Any]:
    values = json_value(FIELD, bytes(segment))
    if type(values) is not list:
        raise CompactError(f"{FIELD}: column {name!r} is no list")
    if len(values) != rows:
        raise CompactError(f"{FIELD}: columns of different lengths")
    return values


def _histograms(segment: memoryview, rows: int) -> Iterator[list[int] | None]:
    numbers = unpack(FIELD, bytes(segment))
    lengths = numbers[:rows]
    if len(lengths) != rows or sum(lengths) - rows + lengths.count(0) != len(numbers) - rows:
        raise CompactError(f"{FIELD}: histograms of other lengths than their numbers")
    at = rows
    for length in lengths:
        if not length:
            yield None
            continue
        flat = numbers[at : at + length - 1]
        at += length - 1
        fault = whole_steps_fault(flat)
        if fault is not None:
            raise CompactError(f"{FIELD}: {fault}")
        yield flat
