"""The results: an aligned table on stdout, a JSON file, and the machine they came from."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.harness import Row

HEADERS = ("case", "measure", "loadmgr", "floor", "vs", "ratio", "goal", "result")


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value * 1000:,.0f} ms" if value < 10 else f"{value:,.1f} s"
    if unit == "ms":
        return f"{value:,.2f} ms"
    if unit == "MB":
        return f"{value:,.1f} MB"
    if unit == "req/s":
        return f"{value:,.1f} req/s"
    return f"{value:,.3g} {unit}".strip()


def result_text(row: Row) -> str:
    if row.note.startswith(("skipped", "error")):
        return row.note
    if row.passed is None:
        return "-"
    return "ok" if row.passed else "MISS"


def table(rows: Sequence[Row]) -> str:
    lines = [HEADERS]
    for row in rows:
        ratio = row.ratio
        lines.append((
            row.case,
            row.measure,
            fmt(row.loadmgr, row.unit),
            fmt(row.floor, row.unit),
            row.floor_label or "-",
            "-" if ratio is None else f"{ratio:.2f}x",
            row.goal or "-",
            result_text(row),
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADERS))]
    right = {2, 3, 5}
    out = []
    for line in lines:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(line)
        ]
        out.append("  ".join(cells).rstrip())
    notes = [f"  {row.case}, {row.measure.strip()}: {row.note}" for row in rows
             if row.note and not row.note.startswith(("skipped", "error"))]
    if notes:
        out.extend(["", "notes:", *notes])
    return "\n".join(out)


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def _meminfo_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "?"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def machine() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory": _meminfo_total(),
        "machine": platform.machine(),
        "system": platform.platform(),
        "python": sys.version.split()[0],
        "packages": {
            name: _version(name)
            for name in ("loadmgr", "typer", "rich", "pymongo", "pydantic", "locust", "SecantusDB")
        },
    }


def write_json(path: Path, size: str, repeat: int, rows: Sequence[Row], seconds: float) -> None:
    data = {
        "size": size,
        "repeat": repeat,
        "seconds": round(seconds, 1),
        "machine": machine(),
        "results": [row.to_dict() for row in rows],
    }
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
