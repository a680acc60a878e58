"""Data never steers the terminal, whatever the output format."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadmgr.cli.output import Renderer, json_safe, sanitize

UNSAFE = [chr(c) for c in (*range(0x00, 0x20), *range(0x7F, 0xA0))] + [
    "\u200b",
    "\u200e",
    "\u202a",
    "\u202e",
    "\u2066",
    "\u2069",
]


def test_json_output_escapes_every_control_and_bidi_character():
    text = json_safe(json.dumps({"name": "".join(UNSAFE)}, ensure_ascii=False))
    assert not any(ch in text for ch in UNSAFE)
    assert json.loads(text) == {"name": "".join(UNSAFE)}


@given(st.text())
def test_json_safe_keeps_the_data(value: str) -> None:
    text = json_safe(json.dumps({"v": value}, ensure_ascii=False))
    assert json.loads(text) == {"v": value}
    assert not any(ch in text for ch in UNSAFE if ch not in "\n")


def test_csv_output_escapes_controls_even_into_a_file(capsys: Any) -> None:
    # Not a terminal here (pytest captures stdout): a file someone will `cat` later.
    hostile = "t\x1b]0;pwned\x07\x1b]8;;http://evil\x1b\\link\x9b2J\x7f\u202eeman"
    Renderer("csv", quiet=False).many(
        [{"name": hostile, "tags": [hostile], "metadata": {"k\x1b[31m": hostile}}], []
    )
    out = capsys.readouterr().out
    assert not any(ch in out for ch in UNSAFE if ch != "\n")
    assert "t\\x1b]0;pwned\\x07" in out
    assert "\\u202eeman" in out
    assert "metadata.k\\x1b[31m" in out.splitlines()[0]


@given(st.text())
def test_csv_cells_never_carry_a_control_character(value: str) -> None:
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        Renderer("csv", quiet=False).one({"v": value})
    assert not any(ch in buffer.getvalue() for ch in UNSAFE if ch != "\n")


def test_json_output_writes_nan_and_infinity_as_null(capsys: Any) -> None:
    # BSON doubles can be NaN: a stored interval or document with one must still print
    # JSON that jq and JSON.parse accept (`NaN` is not JSON).
    from loadmgr.cli.streaming import write_rows

    row = {"p95": float("nan"), "rps": [1.5, float("inf"), float("-inf")], "n": 3}
    finite = {"p95": None, "rps": [1.5, None, None], "n": 3}
    Renderer("json", False).many([row], [])
    assert json.loads(capsys.readouterr().out) == [finite]
    Renderer("json", False).one(row)
    assert json.loads(capsys.readouterr().out) == finite
    Renderer("jsonl", False).many([row, row], [])
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == [finite] * 2
    write_rows("jsonl", iter([row]), [])
    text = capsys.readouterr().out
    assert "NaN" not in text and "Infinity" not in text and json.loads(text) == finite
    Renderer("csv", False).many([row], [])
    assert capsys.readouterr().out.splitlines() == ["p95,rps,n", ',1.5;;,3']


# Every character that can steer what a terminal or a viewer shows, by Unicode's own
# classes: the controls (Cc), the line and paragraph separators (Zl, Zp: a line break to
# many readers) and every bidirectional control (the embeddings, overrides and isolates,
# and the marks LRM, RLM and the Arabic letter mark ALM, as "Trojan Source" lists them).
BIDI_CONTROLS = [
    "\u061c", "\u200e", "\u200f", *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))
]  # fmt: skip
STEERING = [
    c
    for c in map(chr, range(0x10000))
    if unicodedata.category(c) in ("Cc", "Zl", "Zp") and c != "\n"
] + BIDI_CONTROLS


@pytest.mark.parametrize("char", STEERING, ids=lambda c: f"U+{ord(c):04X}")
def test_every_steering_character_is_escaped_in_every_output(char: str, capsys: Any) -> None:
    """The class, not a list: before, U+061C (ALM, a bidi mark) and U+2028/U+2029 (read as
    line breaks) went raw through tables, messages, JSON and CSV files."""
    value = f"a{char}b"
    assert char not in sanitize(value) and char not in sanitize(value, in_cell=True)
    text = json_safe(json.dumps({"v": value}, ensure_ascii=False))
    assert char not in text and json.loads(text) == {"v": value}
    Renderer("csv", quiet=False).one({"v": value})
    assert char not in capsys.readouterr().out
