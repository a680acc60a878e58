"""The compact form of a stored interval (`encoding: 3`, reading 1 and 2 too; issue 26;
docs/storage.md).

An interval's histogram and its per-request entries were 90 % of its bytes as plain BSON
(every request's 17 field names, every histogram as `"ms:count,…"` text). Stored compactly,
they are two BSON binaries, each zlib (RFC 1950):

- `histZ`: the interval's `hist` as one flat array `[ms₀, n₀, ms₁−ms₀, n₁, …]`: the first
  bucket, then each next bucket as its distance from the one before, each with its count;
  packed integers (encodings 2 and 3: `packed.py`), or UTF-8 JSON in encoding 1 (read,
  never written: `db migrate` converts it).
- `requestStatsZ`: `requestStats[]` by column. Encoding 3 (`columns.py`): a segment per
  column, so a read decodes only the columns it asks for, the histograms packed integers.
  Encodings 1 and 2 (read, never written): UTF-8 JSON (RFC 8259),
  `{"columns": {field: [value per item]}}`, the `hist` column holding each item's
  histogram as the flat array above (JSON), or its text where the text is not one
  `histogram.encode` writes, or null.

Everything else in the document stays as it was (the top-level numbers are what servers
aggregate and index). Decoding gives back the exact document: every count, every float
(JSON's shortest repr reads back to the same double), every histogram's text byte for
byte; the encoder checks each histogram's text comes back the same and keeps any that
would not as text. Models never see the compact form: the store expands it on read.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import accumulate, repeat
from operator import sub
from typing import Any

from loadmgr.models.documents import columns as request_columns
from loadmgr.models.documents.packed import CompactError as CompactError
from loadmgr.models.documents.packed import json_value, pack, unpack
from loadmgr.models.histogram import StepsText, steps_fault, whole_steps_fault

ENCODING = 3  # the `encoding` field of a compact interval; a future form migrates from it
# The older forms still read (`db migrate` converts them to ENCODING): 1's `histZ` is
# JSON; 1's and 2's `requestStatsZ` is one JSON object.
JSON_ENCODING = 1
PACKED_ENCODING = 2
OLDER_ENCODINGS = (JSON_ENCODING, PACKED_ENCODING)
ENCODING_FIELD = "encoding"
HIST_FIELD = "histZ"
REQUESTS_FIELD = "requestStatsZ"
# Never stored: where `expand(steps=True)` gives a compact histogram, as its checked flat
# array (an interval's, and an item's in place of its `hist`; a text kept as text stays
# text there). Models allow extra fields, so the screening of a read leaves it as it is.
STEPS_FIELD = "histSteps"
# zlib's level (docs/storage.md): 4 costs a quarter of the default 6's CPU at 500 names
# (0.8 against 3 ms an interval) for intervals 5-8 % larger, 5.7x and 11.6x smaller than
# plain at 20 and 200 names; 1 would leave 5.1x, too near the 5x the issue asks for.
LEVEL = 4
# Decoded bytes allowed per field: a plain interval never exceeded MongoDB's 16 MiB, and
# its columns are smaller than its BSON, so more than this is a decompression bomb.
MAX_DECODED = 16 * 1024 * 1024

_NUMBER = "(?:0|[1-9][0-9]*)"
_CANONICAL = re.compile(f"{_NUMBER}:{_NUMBER}(?:,{_NUMBER}:{_NUMBER})*", re.ASCII)


def _scalar(kind: type) -> bool:
    """A type whose values JSON gives back as they were stored (BSON's Int64 is an int)."""
    return kind is type(None) or issubclass(kind, str | int | float)


_PAIR = "%d:%d".__mod__


# -- histograms -------------------------------------------------------------------------


def hist_flat(text: str) -> list[int] | None:
    """`text` (`"ms:count,…"`) as the flat delta array, or None when the array would not
    give back the same text (not `histogram.encode`'s: unsorted, signs, leading zeros)."""
    if not text:
        return []
    # Whole numbers without sign or leading zero, ascending: then `_hist_text` of the
    # array is `text` again, byte for byte (checked by C loops: the collector's hot path).
    if _CANONICAL.fullmatch(text) is None:
        return None
    numbers = list(map(int, text.replace(",", ":").split(":")))
    buckets = numbers[0::2]
    steps = list(map(sub, buckets[1:], buckets[:-1]))
    if steps and min(steps) < 1:
        return None
    numbers[2::2] = steps
    # Out of the ranges a read accepts (a count above MAX_COUNT): kept as text, so the
    # interval stays readable rather than being refused whole on every read.
    return None if whole_steps_fault(numbers) is not None else numbers


def _hist_text(flat: list[int]) -> str:
    """The histogram text of a flat delta array (C loops: the read path of every window)."""
    return ",".join(map(_PAIR, zip(accumulate(flat[0::2]), flat[1::2], strict=True)))


def checked_steps(flat: Any) -> list[int]:
    """A decoded flat array, checked (whole numbers, ascending buckets, in range): what
    `histogram.merge_steps_into` takes as it is. CompactError for anything else."""
    fault = steps_fault(flat)
    if fault is not None:
        raise CompactError(fault)
    checked: list[int] = flat
    return checked


def flat_text(flat: Any) -> str:
    """The histogram text of a decoded flat array; CompactError for anything else."""
    return _hist_text(checked_steps(flat))


# -- bytes ------------------------------------------------------------------------------


def _unpacked(field: str, data: Any) -> Any:
    """The JSON value of a compact field, decoding at most MAX_DECODED bytes."""
    return json_value(field, _inflated(field, data))


def _inflated(field: str, data: Any) -> bytes:
    """The bytes a compact field holds, at most MAX_DECODED of them (a bomb is refused)."""
    if not isinstance(data, bytes):  # bson's Binary of subtype 0 reads as bytes
        raise CompactError(f"{field}: not binary")
    inflate = zlib.decompressobj()
    try:
        raw = inflate.decompress(data, MAX_DECODED)
    except zlib.error:
        raise CompactError(f"{field}: corrupt zlib data") from None
    if inflate.unconsumed_tail:
        raise CompactError(f"{field}: decodes to more than {MAX_DECODED} bytes")
    if not inflate.eof:
        raise CompactError(f"{field}: truncated")
    return raw


def _unpacked_steps(field: str, data: Any) -> list[int]:
    """A compact histogram's checked flat array: `checked_steps(_unpacked(…))`, cheaper
    for what loadmgr writes. JSON of digits and commas alone in brackets is a flat list
    of whole numbers ≥ 0 (no float, sign, string, nesting), so only the order and the
    ranges are left to check (`whole_steps_fault`); anything else takes the full check."""
    raw = _inflated(field, data)
    if raw[:1] == b"[" and raw[-1:] == b"]" and not raw[1:-1].translate(None, _DIGITS):
        flat: list[int] = json_value(field, raw.decode("ascii"))  # (no encoding to detect)
        fault = whole_steps_fault(flat)
        if fault is not None:
            raise CompactError(fault)
        return flat
    return checked_steps(json_value(field, raw))


_DIGITS = b"0123456789,"


def packed_steps(flat: list[int]) -> bytes | None:
    """A flat array as `histZ` in encodings 2 and 3 (zlib'd packed integers); None when a
    number is out of what 8 bytes hold (kept as text)."""
    packed = pack(flat)
    return None if packed is None else zlib.compress(packed, LEVEL)


def _unpacked_packed_steps(field: str, data: Any) -> list[int]:
    """A packed `histZ` as its checked flat array: whole numbers ≥ 0 by construction, so
    only the width, the length, the order and the ranges are left to check."""
    flat = unpack(field, _inflated(field, data))
    fault = whole_steps_fault(flat)
    if fault is not None:
        raise CompactError(fault)
    return flat


# Encoding → how its `histZ` is read (as a checked flat array).
_HIST_READERS: dict[int, Callable[[str, Any], list[int]]] = {
    JSON_ENCODING: _unpacked_steps,
    PACKED_ENCODING: _unpacked_packed_steps,
    ENCODING: _unpacked_packed_steps,
}


# -- documents --------------------------------------------------------------------------


def _columns(items: list[Any]) -> dict[str, list[Any]] | None:
    """`items` by column; None when they cannot be (not all alike, or holding a value JSON
    would not give back as it is: a date, a nested object), so they stay as they are."""
    if not items or not all(type(item) is dict and item for item in items):
        return None
    keys = list(items[0])
    if any(list(item) != keys for item in items):
        return None
    columns: dict[str, list[Any]] = {}
    for key in keys:
        column = [item[key] for item in items]
        if key == "hist":
            column = [_hist_value(value) for value in column]
        elif not all(map(_scalar, set(map(type, column)))):
            return None
        columns[key] = column
    if any(value is _KEEP for value in columns.get("hist", ())):
        return None
    return columns


_KEEP = object()  # a `hist` the compact form cannot hold


def _hist_value(value: Any) -> Any:
    if value is None:
        return None
    if type(value) is StepsText:
        return value.steps  # what `hist_flat(value)` gives, known where it was made
    if type(value) is not str:
        return _KEEP
    flat = hist_flat(value)
    return value if flat is None else flat


def compact(doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` (a plain interval) in the compact form (a new dict); `doc` itself when it is
    compact already. A field the form cannot hold exactly stays as it is."""
    if ENCODING_FIELD in doc:
        return doc
    result = dict(doc)
    hist = doc.get("hist")
    if type(hist) in (str, StepsText) and hist:
        flat = hist.steps if type(hist) is StepsText else hist_flat(hist)
        packed = None if flat is None else packed_steps(flat)
        if packed is not None:
            del result["hist"]
            result[HIST_FIELD] = packed
    items = doc.get("requestStats")
    if type(items) is list:
        columns = _columns(items)
        if columns is not None:
            del result["requestStats"]
            result[REQUESTS_FIELD] = zlib.compress(request_columns.encode(columns), LEVEL)
    # Set even when nothing was smaller (no histogram, no items): it says the document was
    # examined, so `db migrate` looks at each interval once.
    result[ENCODING_FIELD] = ENCODING
    return result


def compact_fields(doc: dict[str, Any]) -> tuple[dict[str, Any], list[str]] | None:
    """What makes `doc` (plain, or in an older encoding) compact in ENCODING in place: the
    fields to set and the ones to unset (for `db migrate`); None when it is in ENCODING
    already (or a form this loadmgr does not know). CompactError: an older encoding it
    cannot read."""
    if doc.get(ENCODING_FIELD) in OLDER_ENCODINGS:
        # Read back to plain and written again: the same document the writer stores now
        # (expanding and compacting are exact both ways).
        done = compact(expand(dict(doc)))
    else:
        done = compact(doc)
        if done is doc:
            return None
    fields = (ENCODING_FIELD, HIST_FIELD, REQUESTS_FIELD, "hist", "requestStats")
    # A field `compact` kept as it was (the very object) is not written again.
    changes = {key: done[key] for key in fields if key in done and done[key] is not doc.get(key)}
    return changes, [key for key in fields if key in doc and key not in done]


def _items(
    columns: Any, wanted: frozenset[str] | None, steps: bool = False
) -> list[dict[str, Any]]:
    """Encodings 1 and 2: `requestStatsZ`'s JSON columns as items."""
    if not isinstance(columns, dict) or not columns:
        raise CompactError(f"{REQUESTS_FIELD}: no columns")
    if not all(isinstance(column, list) for column in columns.values()):
        raise CompactError(f"{REQUESTS_FIELD}: a column that is no list")
    if len({len(column) for column in columns.values()}) != 1:
        raise CompactError(f"{REQUESTS_FIELD}: columns of different lengths")
    size = len(next(iter(columns.values())))
    picked = {key: column for key, column in columns.items() if wanted is None or key in wanted}
    return _rows(picked, size, checked=False, steps=steps)


def _rows(
    columns: dict[str, list[Any]], size: int, *, checked: bool, steps: bool
) -> list[dict[str, Any]]:
    """Items from `columns` (each `size` long); `checked`: the `hist` column's arrays are
    checked already (packed), else JSON values to check. With `steps`, histograms as
    their flat arrays under STEPS_FIELD, else as text."""
    if steps:
        # Only `expand` makes it, from the checked `hist` column: a stored column of that
        # name would be merged as checked steps, or shadow the checked one.
        columns.pop(STEPS_FIELD, None)
    keys = list(columns)
    picked = list(columns.values())
    if "hist" in columns:
        at = keys.index("hist")
        read: Callable[[Any], Any] | None = checked_steps if steps else flat_text
        if checked:
            read = None if steps else _hist_text
        if read is not None:
            picked[at] = [
                value if value is None or type(value) is str else read(value)
                for value in picked[at]
            ]
        if steps:
            keys[at] = STEPS_FIELD
    if not keys:
        return [{} for _ in range(size)]
    # Every column is `size` long (checked where it was read): one dict a row, made in C.
    return list(map(dict, map(zip, repeat(keys), zip(*picked, strict=False))))


def _requests(encoding: int, data: Any, wanted: frozenset[str] | None, steps: bool) -> Any:
    """`requestStatsZ` of `encoding` as items."""
    if encoding == ENCODING:
        raw = _inflated(REQUESTS_FIELD, data)
        columns, size, checked = request_columns.decode(raw, wanted)
        return _rows(columns, size, checked=checked, steps=steps)
    packed = _unpacked(REQUESTS_FIELD, data)
    if not isinstance(packed, dict):
        raise CompactError(f"{REQUESTS_FIELD}: not an object")
    return _items(packed.get("columns"), wanted, steps)


def expand(
    doc: dict[str, Any], wanted: frozenset[str] | None = None, *, steps: bool = False
) -> dict[str, Any]:
    """`doc` as it was before `compact`; `wanted`: the per-request fields to give (the
    projection's `requestStats.FIELD`s; None for all). With `steps`, each compact
    histogram is given as its checked flat array under STEPS_FIELD instead of as `hist`
    text (the window reads merge it as it is: no text built to be parsed again).
    CompactError when it cannot be."""
    # Checked steps are only ever made here: a stored one (on the interval, or on a plain
    # entry where steps are asked for) is no one's to trust: a merge takes it as checked.
    doc.pop(STEPS_FIELD, None)
    plain_items = doc.get("requestStats")
    if steps and type(plain_items) is list:
        for item in plain_items:
            if type(item) is dict:
                item.pop(STEPS_FIELD, None)
    encoding = doc.pop(ENCODING_FIELD, None)
    if encoding is None:
        # Compact fields without the mark that they are: not loadmgr's, and of no use.
        doc.pop(HIST_FIELD, None)
        doc.pop(REQUESTS_FIELD, None)
        return doc
    # An int (BSON's Int64 is one), not a bool, float or anything unhashable a spoiled
    # document may hold.
    whole = isinstance(encoding, int) and not isinstance(encoding, bool)
    read_hist = _HIST_READERS.get(encoding) if whole else None
    if read_hist is None:
        raise CompactError(f"encoding {encoding!r} is not one this loadmgr reads")
    if HIST_FIELD in doc:
        flat = read_hist(HIST_FIELD, doc.pop(HIST_FIELD))
        if steps:
            doc[STEPS_FIELD] = flat
        else:
            doc["hist"] = _hist_text(flat)
    if REQUESTS_FIELD in doc:
        doc["requestStats"] = _requests(encoding, doc.pop(REQUESTS_FIELD), wanted, steps)
    return doc


# -- projections ------------------------------------------------------------------------


def stored_projection(projection: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """A projection over plain intervals, asking also for the compact fields that hold
    what it names (`hist` → `histZ`, `requestStats…` → `requestStatsZ`)."""
    if not projection:
        return None if projection is None else dict(projection)
    result = dict(projection)
    including = any(
        value is True or value == 1 for key, value in projection.items() if key != "_id"
    )
    for key, value in projection.items():
        target = HIST_FIELD if key == "hist" else None
        if key == "requestStats" or key.startswith("requestStats."):
            target = REQUESTS_FIELD
        if target is not None:
            result[target] = value
    if including:
        result[ENCODING_FIELD] = True
    return result


def wanted_fields(projection: Mapping[str, Any] | None) -> frozenset[str] | None:
    """The per-request fields a projection names (`requestStats.method` → method); None
    when it asks for whole items (or for nothing in particular)."""
    if not projection or projection.get("requestStats"):
        return None
    fields = frozenset(
        key.split(".", 2)[1]
        for key, value in projection.items()
        if key.startswith("requestStats.") and (value is True or value == 1)
    )
    return fields or None


def expanded(
    docs: Iterable[dict[str, Any]],
    wanted: frozenset[str] | None,
    unreadable: Callable[[dict[str, Any], str], None],
    *,
    steps: bool = False,
) -> Iterator[dict[str, Any]]:
    """Each of `docs` expanded (`expand`); one that cannot be is handed to `unreadable`
    with why (to be named and left out) and the others go on."""
    for doc in docs:
        try:
            yield expand(doc, wanted, steps=steps)
        except CompactError as exc:
            unreadable(doc, str(exc))
