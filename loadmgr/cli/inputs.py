"""A command's parameters handed to the core by name, so no command spells out each
option twice: once as a parameter, once as a field of the core's typed input."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def given(to: Callable[..., T], params: Mapping[str, Any]) -> T:
    """`to(...)` called with the entries of `params` (a command's `locals()`) that it
    takes by name: a typed input's fields, or a parser's arguments, are named as the
    command's parameters."""
    names = inspect.signature(to).parameters
    return to(**{name: value for name, value in params.items() if name in names})
