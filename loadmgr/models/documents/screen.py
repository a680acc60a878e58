"""Stored documents of any shape, made safe to read (issue 21, item 11).

Anything may have written a document: the Go control plane, a script, a hand in mongosh,
a bug. Reading one must never crash a command. Each field a model knows is checked
against its type, on its own (so a list's projected documents are checked as well as a
whole one): a field of the wrong type reads as unknown (null) where the model allows
null, and is read as the model reads it otherwise (`"5"` for a number: 5); a field the
model needs that is of no use (a string for a run's status) makes the document
unreadable: a list leaves it out with one warning naming it, a command on that one
document says so (exit 2).
"""

from __future__ import annotations

import functools
import math
import types
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError

from loadmgr.models.documents.base import UtcDatetime

M = TypeVar("M", bound=BaseModel)


def _admits_none(annotation: Any) -> bool:
    if annotation is None or annotation is type(None):
        return True
    if get_origin(annotation) in (Union, types.UnionType):
        return any(_admits_none(arg) for arg in get_args(annotation))
    return annotation is Any


@functools.cache
def _nullable(model: type[BaseModel]) -> frozenset[str]:
    """The fields of `model` that may be null."""
    return frozenset(n for n, info in model.model_fields.items() if _admits_none(info.annotation))


@functools.cache
def _fields(model: type[BaseModel]) -> dict[str, tuple[TypeAdapter[Any], bool]]:
    """Each field of `model`: an adapter checking a value against its type, and whether
    the field may be null."""
    checks: dict[str, tuple[TypeAdapter[Any], bool]] = {}
    # A field the model reads through its own tolerant validator first (a verdict it does
    # not know, stats of any shape) is the model's to read, not checked here.
    tolerant = {
        name
        for decorator in model.__pydantic_decorators__.field_validators.values()
        if decorator.info.mode != "after"
        for name in decorator.info.fields
    }
    for name, info in model.model_fields.items():
        if name in tolerant:
            continue
        annotation = info.annotation
        typed: Any = annotation
        if info.metadata:
            typed = Annotated.__class_getitem__((annotation, *info.metadata))  # type: ignore[attr-defined]
        checks[name] = (TypeAdapter(typed), _admits_none(annotation))
    return checks


# The plain types whose value, of exactly that type, every field so annotated reads as
# stored (a float: when finite); dates too where the only validator is `as_utc`, which
# never refuses one (`_as_stored` shows the stored date, as the type is the same).
_PLAIN = (bool, int, float, str)


@functools.cache
def _plain_types(model: type[BaseModel]) -> dict[str, type]:
    """The fields of `model` checked by `_fields` whose value of one exact type needs no
    check: `screened` leaves it as it is without asking pydantic (a window read screens
    thousands of documents of about ten fields). Tests prove each such field reads such
    values as pydantic's check would."""
    plain: dict[str, type] = {}
    for name in _fields(model):
        info = model.model_fields[name]
        annotation: Any = info.annotation
        if get_origin(annotation) in (Union, types.UnionType):
            rest = [arg for arg in get_args(annotation) if arg is not type(None)]
            annotation = rest[0] if len(rest) == 1 else None
        if info.metadata:
            annotation = Annotated.__class_getitem__((annotation, *info.metadata))  # type: ignore[attr-defined]
        if annotation in _PLAIN:
            plain[name] = annotation
        elif annotation == UtcDatetime:
            plain[name] = datetime
    return plain


def _as_stored(raw: Any, read: Any) -> Any:
    """What a list shows for a field that checked out: the stored value, unless the model
    reads it as another kind of scalar (`"5"` as 5, `"2026-01-01"` as a date)."""
    if isinstance(read, bool | int | float | datetime) and not isinstance(read, Enum):
        same = type(raw) is type(read) or (
            isinstance(read, float) and isinstance(raw, int) and not isinstance(raw, bool)
        )
        if isinstance(read, float) and not math.isfinite(read):
            return None
        return raw if same else read
    return raw


class Unreadable(ValueError):
    """A stored document a model cannot read: the field and why."""


def screened(model: type[BaseModel], doc: dict[str, Any]) -> dict[str, Any]:
    """`doc` (raw, with loadmgr's field names) with each field of the wrong type read as
    unknown where `model` allows it (see the module); Unreadable when a field it needs
    is of no use. Fields `model` does not know are left as they are."""
    checks = _fields(model)
    plain = _plain_types(model)
    result: dict[str, Any] | None = None
    for key, value in doc.items():
        kind = type(value)
        if kind is plain.get(key) and (kind is not float or math.isfinite(value)):
            continue  # read as stored (`_plain_types`)
        check = checks.get(key)
        # Null is left to the model: as unknown, or read as its default (a Go document's
        # `metadata: null` is empty) when a whole document is read.
        if check is None or value is None:
            continue
        adapter, nullable = check
        try:
            read = _as_stored(value, adapter.validate_python(value))
        except ValidationError as exc:
            if not nullable:
                raise Unreadable(f"{key}: {exc.errors()[0].get('msg')}") from None
            read = None
        if read is not value:
            result = result if result is not None else dict(doc)
            result[key] = read
    return doc if result is None else result


def read_model(model: type[M], doc: dict[str, Any]) -> M:
    """`doc` read as `model`, each field of the wrong type as unknown where the model
    allows it (`screened`); Unreadable, naming the field, when it cannot be read."""
    screened_doc = screened(model, doc)
    for _ in range(2):
        try:
            return model.model_validate(screened_doc)
        except ValidationError as exc:
            errors = exc.errors()
            nullable = _nullable(model)
            wrong = {str(e["loc"][0]) for e in errors if e.get("loc")}
            first = errors[0]
            where = ".".join(str(part) for part in first.get("loc", ())) or "document"
            if not wrong or not wrong <= nullable:
                raise Unreadable(f"{where}: {first.get('msg')}") from None
            # Wrong only after the model's own reading (a Go key, a tolerant validator):
            # unknown, as the model allows.
            screened_doc = {**screened_doc, **dict.fromkeys(wrong, None)}
    raise Unreadable("document: cannot be read")  # pragma: no cover - nulls always read
