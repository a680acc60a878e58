"""What every repository shares: its collection, scope, and error translation."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeVar

from pymongo.collection import Collection

from loadmgr.errors import ValidationFailed
from loadmgr.models import Scope
from loadmgr.store.connection import translate_errors

P = ParamSpec("P")
R = TypeVar("R")

# Documents are read without MongoDB's own `_id`: loadmgr's `id` is the identity.
NO_OBJECT_ID = {"_id": False}


class Repository:
    """One collection, seen through a scope."""

    def __init__(self, collection: Collection[dict[str, Any]], scope: Scope, uri: str) -> None:
        self.collection = collection
        self.scope = scope
        self._uri = uri

    def scoped(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        """`query` restricted to the scope; every read and write goes through this."""
        return {**(query or {}), **self.scope.query()}

    def check_in_scope(self, fields: Mapping[str, Any], *, partial: bool = False) -> None:
        """Refuse to write a document (or, `partial`, changes) that would leave the scope.

        Reads are filtered by `scoped()`; this is the same rule for writes, so a caller
        cannot create or move a document into another tenant or environment.
        """
        for key, value in self.scope.query().items():
            if partial and key not in fields:
                continue
            if fields.get(key) != value:
                raise ValidationFailed(
                    f"refused to write {key} {fields.get(key)!r}: outside the scope"
                    f"{self.scope.describe()}"
                )


def mapped_errors(method: Callable[P, R]) -> Callable[P, R]:
    """Run a repository method with pymongo's errors turned into loadmgr's."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        repository = args[0]
        assert isinstance(repository, Repository)
        with translate_errors(repository._uri):
            return method(*args, **kwargs)

    return wrapper
