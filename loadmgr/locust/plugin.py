"""The loadmgr Locust plugin as a file: where it is, its source, the protocol version it speaks.

The plugin itself (`loadmgr_plugin.py`, beside this module) imports locust, so loadmgr never
imports it: it reads it as text, to hand it to `locust -f` or print it for a remote cluster.
"""

from __future__ import annotations

import ast
from pathlib import Path

PLUGIN_FILENAME = "loadmgr_plugin.py"
# The versions of the plugin's wire protocol (docs/plugin.md) this loadmgr can read.
SUPPORTED_VERSIONS = frozenset({1})


def plugin_path() -> Path:
    """The plugin file shipped inside the loadmgr package."""
    return Path(__file__).resolve().with_name(PLUGIN_FILENAME)


def plugin_source() -> str:
    """The plugin's source text."""
    return plugin_path().read_text(encoding="utf-8")


def plugin_version(source: str) -> int:
    """The `PLUGIN_VERSION = N` literal of a plugin's source; ValueError if it has none."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ValueError(f"not a Python file: {exc.msg}") from None
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
            and node.targets[0].id == "PLUGIN_VERSION"
            and isinstance(node.value, ast.Constant)
            and type(node.value.value) is int
        ):
            return node.value.value
    raise ValueError("no PLUGIN_VERSION = <integer> at the top level")


def plugin_support_problem(version: int | None) -> str | None:
    """Why a cluster's plugin cannot be read by this loadmgr (None: readable, or absent)."""
    if version is None or version in SUPPORTED_VERSIONS:
        return None
    readable = ", ".join(str(v) for v in sorted(SUPPORTED_VERSIONS))
    return (
        f"its loadmgr plugin speaks protocol version {version}, which this loadmgr cannot "
        f"read (it reads version {readable})"
    )
