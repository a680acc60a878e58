"""Data never steers the terminal, whatever the output format."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from loadmgr.cli.output import json_safe

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
