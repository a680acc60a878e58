"""Where each key of a TOML file is: its line, so an error names `loadtests.toml:14`.

tomllib parses the file (and says where a syntax error is) but keeps no positions. This
walks the same text once more, already known to be valid TOML, and records the line each
table header, key and array item starts on. It reads only the shape of the file (headers,
keys, strings, arrays, inline tables), never a value, so it needs no TOML library of its
own: tomlkit would keep positions too, but it is a second parser to depend on for this.
"""

from __future__ import annotations

import json
import re

KeyPath = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_BARE_KEY_PATH = re.compile(r"[A-Za-z0-9_-]+")


def key_path(path: KeyPath) -> str:
    """`tests.checkout.thresholds[1]`; a key that is not bare is quoted, as TOML writes it."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        shown = part if _BARE_KEY_PATH.fullmatch(part) else toml_string(part)
        text += f".{shown}" if text else shown
    return text


def toml_string(key: str) -> str:
    # JSON's escapes are TOML's, but for DEL, which TOML wants escaped too.
    return json.dumps(key, ensure_ascii=False).replace("\x7f", "\\u007f")


class Locations:
    """The line of every key path of one TOML text (1-based)."""

    def __init__(self, text: str) -> None:
        self.lines: dict[KeyPath, int] = {}
        _Scanner(text, self.lines).run()

    def line_of(self, path: KeyPath) -> int:
        """The line of `path`, else of the nearest key above it that the file spells out
        (a default value is not in the file: its table is); 1 when none is."""
        below = [line for key, line in self.lines.items() if key[: len(path)] == path]
        if below:  # `[tests.x]` spells out `tests` only as part of a header
            return min(below)
        for end in range(len(path) - 1, 0, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return 1


class _Scanner:
    def __init__(self, text: str, lines: dict[KeyPath, int]) -> None:
        self.text = text
        self.at = 0
        self.line = 1
        self.lines = lines
        self.array_tables: dict[KeyPath, int] = {}

    def _peek(self, count: int = 1) -> str:
        return self.text[self.at : self.at + count]

    def _advance(self, count: int = 1) -> None:
        self.line += self.text.count("\n", self.at, self.at + count)
        self.at += count

    def _record(self, path: KeyPath, line: int) -> None:
        self.lines.setdefault(path, line)

    def _blank(self, newlines: bool) -> None:
        while self.at < len(self.text):
            char = self.text[self.at]
            if char in " \t" or (newlines and char in "\r\n"):
                self._advance()
            elif char == "#":
                end = self.text.find("\n", self.at)
                self._advance((len(self.text) if end < 0 else end) - self.at)
            else:
                return

    def run(self) -> None:
        table: KeyPath = ()
        while True:
            self._blank(newlines=True)
            if self.at >= len(self.text):
                return
            start = self.at
            if self._peek() == "[":
                table = self._header()
            else:
                line = self.line
                path = table + self._key()
                self._record(path, line)
                self._blank(newlines=False)
                if self._peek() == "=":
                    self._advance()
                self._blank(newlines=False)
                self._value(path)
            if self.at == start:  # never stuck, whatever the text
                self._advance()

    def _header(self) -> KeyPath:
        double = self._peek(2) == "[["
        self._advance(2 if double else 1)
        line = self.line
        path: KeyPath = self._key()
        self._blank(newlines=False)
        self._advance(2 if double else 1)
        if double:
            index = self.array_tables.get(path, -1) + 1
            self.array_tables[path] = index
            self._record(path, line)
            path = (*path, index)
        self._record(path, line)
        return path

    def _key(self) -> tuple[str, ...]:
        parts: list[str] = []
        while True:
            self._blank(newlines=False)
            char = self._peek()
            if char in "\"'":
                parts.append(self._string())
            else:
                match = _BARE_KEY.match(self.text, self.at)
                word = match.group() if match else ""
                self._advance(len(word))
                parts.append(word)
            self._blank(newlines=False)
            if self._peek() != ".":
                return tuple(parts)
            self._advance()

    def _value(self, path: KeyPath) -> None:
        char = self._peek()
        if char == "[":
            self._advance()
            index = 0
            while self.at < len(self.text):
                self._blank(newlines=True)
                if self._peek() == "]":
                    self._advance()
                    return
                if self._peek() == ",":
                    self._advance()
                    continue
                self._record((*path, index), self.line)
                start = self.at
                self._value((*path, index))
                index += 1
                if self.at == start:
                    self._advance()
        elif char == "{":
            self._advance()
            while self.at < len(self.text):
                self._blank(newlines=False)
                if self._peek() == "}":
                    self._advance()
                    return
                if self._peek() == ",":
                    self._advance()
                    continue
                line, start = self.line, self.at
                key = (*path, *self._key())
                self._record(key, line)
                self._blank(newlines=False)
                if self._peek() == "=":
                    self._advance()
                self._blank(newlines=False)
                self._value(key)
                if self.at == start:
                    self._advance()
        elif char in "\"'":
            self._string()
        else:
            while self.at < len(self.text) and self.text[self.at] not in ",]}\n#":
                self._advance()

    def _string(self) -> str:
        """Skip a string of any of TOML's four kinds; its text, escapes undone for the
        simple ones (a quoted key)."""
        quote = self._peek()
        if self._peek(3) == quote * 3:
            end = self.text.find(quote * 3, self.at + 3)
            end = len(self.text) if end < 0 else end
            while self.text[end + 3 : end + 4] == quote:  # `""""` ends with a quote inside
                end += 1
            text = self.text[self.at + 3 : end]
            self._advance(end + 3 - self.at)
            return text
        self._advance()
        start = self.at
        while self.at < len(self.text) and self._peek() not in (quote, "\n"):
            self._advance(2 if quote == '"' and self._peek() == "\\" else 1)
        raw = self.text[start : self.at]
        self._advance()
        return _unescaped(raw) if quote == '"' else raw


def _unescaped(raw: str) -> str:
    """A basic string's text: TOML's escapes are JSON's, and `\\UXXXXXXXX`."""
    try:
        text: str = json.loads(f'"{raw}"')
        return text
    except ValueError:
        return re.sub(r"\\U([0-9A-Fa-f]{8})", lambda m: chr(int(m.group(1), 16)), raw)
