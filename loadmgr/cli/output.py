"""One renderer for every command: table, json, jsonl or csv on stdout; -q for ids only.

Documents are serialised the same way everywhere (ISO-8601 UTC dates with `Z`), whether
they come from a pydantic model or straight from the database.
"""

from __future__ import annotations

import csv
import json
import math
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from loadmgr.cli.choices import choices
from loadmgr.errors import ValidationFailed
from loadmgr.models.formatting import Lines, format_timestamp

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

FORMATS = ("table", "json", "jsonl", "csv")
# The first `-o csv` columns of what belongs to a test (a run, a schedule): what it is, of
# which test, in which scope.
OF_A_TEST_CSV = ("id", "name", "loadTestId", "testName", "tenantId", "envId")

OutputOption = Annotated[
    str | None,
    typer.Option(
        "--output",
        "-o",
        envvar="LOADMGR_OUTPUT",
        help="Output format [env: LOADMGR_OUTPUT].",
        show_default=False,
        show_envvar=False,
        **choices(FORMATS),
    ),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Print only ids, one a line.")]

# Control characters (C0 but newline, DEL, C1), the line and paragraph separators (a line
# break to many readers) and the bidirectional controls (marks, the Arabic letter mark,
# embeddings, overrides, isolates): data must never steer the terminal, so they are shown
# escaped. In a table cell newlines are escaped too. Lone surrogates (undecodable bytes of
# argv, kept by Python as \udcXX) cannot be written as UTF-8 at all: they are shown escaped
# too, so an error quoting one can still be printed.
_STEERING = r"\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2066-\u2069"
_UNSAFE = re.compile(rf"[\x00-\x09\x0b-\x1f{_STEERING}\ud800-\udfff]")
_UNSAFE_IN_CELL = re.compile(rf"[\x00-\x1f{_STEERING}\ud800-\udfff]")


# In JSON text these can only stand inside strings, where `\u0085` means the same: written
# so, no C1 control or bidi override from data reaches a terminal through `-o json` either.
_UNSAFE_IN_JSON = re.compile(rf"[{_STEERING}]")


def json_safe(text: str) -> str:
    """JSON text with DEL, C1 controls and bidi overrides as `\\uXXXX` escapes."""
    return _UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def sanitize(text: str, *, in_cell: bool = False) -> str:
    """`text` with control and bidi characters shown as escapes (`\\x1b`)."""
    pattern = _UNSAFE_IN_CELL if in_cell else _UNSAFE
    return pattern.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


# Every date loadmgr prints: ISO-8601 UTC to the millisecond, with `Z` (docs/output.md).
iso = format_timestamp


def jsonable(value: Any) -> Any:
    """A document (model or raw dict) as JSON-ready data, dates as `iso()` writes them."""
    if hasattr(value, "model_dump"):
        return jsonable(value.model_dump(mode="python"))
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items() if k != "_id"}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Enum):
        return value.value
    return value


def _json_default(value: Any) -> Any:
    """What json.dumps cannot write itself, written as `jsonable` would."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Enum):
        return value.value
    if hasattr(value, "model_dump"):
        return jsonable(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def json_text(payload: Any, indent: int | None = None) -> str:
    """`payload` as JSON. NaN and infinity (a stored document may hold them: BSON doubles
    can) are written as null: `NaN` is not JSON, and jq or a JSON.parse would reject the
    whole output for it."""
    try:
        return json.dumps(
            payload, indent=indent, ensure_ascii=False, default=_json_default, allow_nan=False
        )
    except ValueError:
        return json.dumps(
            _finite(jsonable(payload)), indent=indent, ensure_ascii=False, default=_json_default
        )


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def ago(value: datetime | str | None, now: datetime | None = None) -> str:
    """`3 h ago`, for people; the exact date stays in JSON."""
    if value is None:
        return "-"
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    seconds = ((now or datetime.now(timezone.utc)) - value).total_seconds()
    if seconds < 0:
        return "in the future"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"


@dataclass(frozen=True)
class Column:
    """A table column: header and how to get the cell from a JSON-ready document."""

    header: str
    value: Callable[[dict[str, Any]], Any]
    justify: str = "left"
    # On a terminal too narrow for the whole table, only the cell's first `short`
    # characters: an id folded over four lines can be neither read nor copied, and a
    # prefix of 8 is taken wherever an id is (`runs show 3b966bf1`).
    short: int | None = None
    # Kept whole when the table must fold: numbers (right-aligned) always, and dates.
    no_wrap: bool = False


def field(name: str, header: str | None = None, justify: str = "left") -> Column:
    return Column(header or name, lambda doc: doc.get(name), justify)


def id_field(header: str = "ID") -> Column:
    """The `id` column of tests and runs: their short id when the table would not fit."""
    return Column(header, lambda doc: doc.get("id"), short=SHORT_ID_LENGTH)


SHORT_ID_LENGTH = 8
# The width a view of one document (`runs show`, `tests show`) wraps its text at when stdout
# is not a terminal: a long error then wraps instead of making a line hundreds of columns
# wide. Lists keep their rows on one line each (for grep and cut).
VIEW_WIDTH = 100


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):  # for people, as `clusters show` says it; JSON keeps true
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.2f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:,.0f}"
    if isinstance(value, list):
        return ", ".join(cell(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={cell(v)}" for k, v in value.items())
    return sanitize(str(value), in_cell=True)


# -- CSV -----------------------------------------------------------------------------------
# Every command that prints data declares its CSV columns: one tuple of dotted paths per
# view, next to its table columns (`LIST_CSV` beside `LIST_COLUMNS`), listed in
# docs/output.md. The header is always those columns, in that order, rows or none.


def csv_cell(value: Any) -> Any:
    """One value as a CSV cell (docs/output.md): null empty, `true`/`false`, a list's items
    joined by `;`, a map's `key=value` pairs joined by `;` (an object inside a list: by `,`)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return ""  # a stored NaN or infinity: unknown, as JSON's null
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return ";".join(f"{k}={_item(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ";".join(_item(v) for v in value)
    return value


def csv_cells(values: Iterable[Any]) -> list[Any]:
    """One CSV row's cells as every CSV loadmgr writes them (the renderer's and the
    streamed `metrics export`/scatter rows alike): `csv_cell`, then control and bidi
    characters as the text `\\x1b`, whether stdout is a terminal or a file someone will
    `cat` later (CSV has no escape of its own). Newlines stay: CSV quotes them."""
    cells: list[Any] = []
    for value in values:
        if value.__class__ is str:  # most cells: the quick way, for 100,000s of rows
            cells.append(sanitize(value))
            continue
        written = csv_cell(value)
        if not isinstance(written, str | int | float):
            written = str(written)  # anything else csv would write as its str()
        cells.append(sanitize(written) if isinstance(written, str) else written)
    return cells


def _item(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}={_item(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ",".join(_item(v) for v in value)
    return str(csv_cell(value))


def csv_value(document: dict[str, Any], path: str) -> Any:
    """The field at a dotted path (`lastMetrics.totalRPS`); through a list of objects, that
    field of each item (`verdictReasons.kind` → `threshold;regression`)."""
    value: Any = document
    for key in path.split("."):
        if isinstance(value, list):
            value = [item.get(key) if isinstance(item, dict) else None for item in value]
        elif isinstance(value, dict):
            value = value.get(key)
        else:
            return ""
    return csv_cell(value)


def flatten(doc: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested keys joined with '.', lists as `csv_cell` writes them: the columns of a data
    command that declares none (every command should declare its own)."""
    flat: dict[str, Any] = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = csv_cell(value)
    return flat


def stdout_console() -> Console:
    """Rich console on stdout: colour only on a terminal and without NO_COLOR."""
    from rich.console import Console

    terminal = sys.stdout.isatty()
    return Console(
        file=sys.stdout,
        width=None if terminal else 10_000,
        no_color=not terminal or None,
        soft_wrap=not terminal,
        highlight=False,
    )


def stderr_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def notice(message: str) -> None:
    """Progress, hints and confirmations: stderr, so stdout stays data."""
    typer.echo(sanitize(message), err=True)


def removed(quiet: bool, ident: str, message: str) -> None:
    """What a command that removed something prints: its id with -q, else a sentence."""
    if quiet:
        typer.echo(ident)
    else:
        notice(message)


class Renderer:
    """Prints documents in the chosen format."""

    def __init__(self, fmt: str | None, quiet: bool, default: str | None = None) -> None:
        chosen = (fmt or default or "table").strip().lower()
        if chosen not in FORMATS:
            raise ValidationFailed(
                f"unknown output format {fmt or default!r} (one of {', '.join(FORMATS)})"
            )
        self.format = chosen
        self.quiet = quiet

    @property
    def is_table(self) -> bool:
        return self.format == "table" and not self.quiet

    def many(
        self,
        documents: Sequence[Any],
        columns: Sequence[Column],
        *,
        id_key: str = "id",
        title: str | None = None,
        empty: str = "nothing found",
        csv_columns: Sequence[str] | None = None,
    ) -> None:
        """A list: JSON array, one JSON document a line, CSV rows (`csv_columns`), or a
        table."""
        if self.quiet:
            ids = (jsonable(d).get(id_key) for d in documents)
            self._write_lines(str(i) for i in ids if i is not None)
            return
        if self.format in ("json", "jsonl"):
            # Straight from the stored documents: no copy of thousands of them first.
            self._write_data(list(documents), many=True)
            return
        if self.format == "csv":
            self._write_csv([jsonable(d) for d in documents], csv_columns)
            return
        if not documents:
            notice(empty)
            return
        from loadmgr.cli.tables import fitted_table

        rows = [[cell(c.value(data)) for c in columns] for data in map(jsonable, documents)]
        console = stdout_console()
        table = fitted_table(console, columns, rows, title)
        console.print(table)

    def one(
        self,
        document: Any,
        view: Callable[[dict[str, Any]], RenderableType] | None = None,
        *,
        id_key: str = "id",
        csv_columns: Sequence[str] | None = None,
    ) -> None:
        """One document: as stored (JSON), a one-row CSV (`csv_columns`), or a view for
        people."""
        data = jsonable(document)
        if self.quiet:
            # Nothing at all (not "None") when there is no id, e.g. `db status -q` when stopped.
            self._write_lines([] if data.get(id_key) is None else [str(data[id_key])])
        elif self.format == "csv":
            self._write_csv([data], csv_columns)
        elif self.format in ("json", "jsonl"):
            self._write_data([data], many=False)
        else:
            console = stdout_console()
            if not console.is_terminal:
                console.width = min(console.width, VIEW_WIDTH)
            console.print(key_value_view(data) if view is None else view(data))

    def _write_lines(self, lines: Iterable[str]) -> None:
        out = sys.stdout
        for line in lines:
            out.write(sanitize(line, in_cell=True) + "\n")
        out.flush()

    def _write_data(self, rows: list[dict[str, Any]], *, many: bool) -> None:
        out = sys.stdout
        if self.format == "json":
            payload = rows if many else rows[0]
            out.write(json_safe(json_text(payload, indent=2)))
            out.write("\n")
        elif self.format == "jsonl":
            for row in rows:
                out.write(json_safe(json_text(row)) + "\n")
        out.flush()

    def _write_csv(self, rows: list[dict[str, Any]], columns: Sequence[str] | None) -> None:
        """The declared columns, header first (even without rows); a command that declares
        none gets the union of its rows' flattened fields."""
        out = sys.stdout
        if columns is None:
            flat = [flatten(row) for row in rows]
            names = list({name: None for row in flat for name in row})
        else:
            names = list(columns)
            flat = [{path: csv_value(row, path) for path in names} for row in rows]
        write_csv(out, names, ([row.get(n, "") for n in names] for row in flat))
        out.flush()


def write_csv(out: TextIO, header: Sequence[str], rows: Iterable[Iterable[Any]]) -> int:
    """The one CSV writer: `header`, then each row's cells cleaned by `csv_cells`; how
    many rows were written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([sanitize(name, in_cell=True) for name in header])
    count = 0
    for row in rows:
        writer.writerow(csv_cells(row))
        count += 1
    return count


def key_value_view(data: dict[str, Any], title: str | None = None) -> RenderableType:
    """A two-column grid of a document's fields, for people."""
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for key, value in data.items():
        shown = "\n".join(cell(line) for line in value) if isinstance(value, Lines) else cell(value)
        grid.add_row(Text(sanitize(key, in_cell=True)), Text(shown))
    if title is None:
        return grid
    from rich.panel import Panel

    return Panel(grid, title=Text(sanitize(title, in_cell=True)), title_align="left", expand=False)


def audit_line(data: dict[str, Any], what: str) -> str:
    """`3 h ago by alice` from `<what>At` and `<what>By`."""
    when = data.get(f"{what}At")
    who = data.get(f"{what}By") or "?"
    return f"{ago(when)} by {who} ({when})" if when else "-"
