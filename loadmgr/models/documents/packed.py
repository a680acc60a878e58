"""The compact form's bytes (docs/storage.md, "The layout"): whole numbers ≥ 0 as packed
little-endian unsigned integers of one width (how it stores histograms), and its JSON read
back (how it stores the rest), each refused with a CompactError when it is not its own.

One byte W (1, 2, 4 or 8), then each number as a W-byte little-endian unsigned integer;
the writer picks the narrowest W that holds the largest number. Python's `array` packs
and unpacks it in C (`frombytes`, `tolist`), a third of the time of JSON's parse, and any
language reads it with a loop of shifts.
"""

from __future__ import annotations

import json
import sys
from array import array
from typing import Any


class CompactError(ValueError):
    """A compact interval that cannot be read: corrupt, truncated or not ours."""


WIDTHS = (1, 2, 4, 8)
# The array type of each width, whatever the platform's C sizes (each width has one of
# these codes on every platform Python runs on).
_TYPECODES = {array(code).itemsize: code for code in "QLIHB"}
_SWAP = sys.byteorder != "little"
WIDEST = 2**64 - 1


def pack(numbers: list[int]) -> bytes | None:
    """`numbers` (whole, ≥ 0) with their width first; None when one is out of what 8
    bytes hold (or below 0: never one loadmgr writes)."""
    if numbers and (min(numbers) < 0 or max(numbers) > WIDEST):
        return None
    largest = max(numbers, default=0)
    width = next(width for width in WIDTHS if largest < 1 << (8 * width))
    packed = array(_TYPECODES[width], numbers)
    if _SWAP:
        packed.byteswap()
    return bytes((width,)) + packed.tobytes()


def unpack(field: str, raw: bytes) -> list[int]:
    """The numbers `pack` wrote (whole, ≥ 0 by construction); CompactError for a width not
    in WIDTHS or a length that is not a whole number of them."""
    if not raw or raw[0] not in WIDTHS:
        raise CompactError(f"{field}: no width of packed integers (1, 2, 4 or 8)")
    width = raw[0]
    if (len(raw) - 1) % width:
        raise CompactError(f"{field}: truncated packed integers")
    numbers = array(_TYPECODES[width])
    numbers.frombytes(raw[1:])
    if _SWAP:
        numbers.byteswap()
    return numbers.tolist()


def json_value(field: str, raw: bytes | str) -> Any:
    """The JSON value of `raw` (a field's bytes); CompactError when it is not JSON, or is
    nested past Python's recursion limit."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise CompactError(f"{field}: not the JSON loadmgr writes") from None
