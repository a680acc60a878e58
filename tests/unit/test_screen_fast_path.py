"""Issue 26: screening a stored document leaves a value already of its field's plain type
without asking pydantic (models/documents/screen.py, `_plain_types`).

The rule: for every field of every stored model that takes the fast path, any value of
that exact type screens to what pydantic's check of the field gives (NaN and infinity as
unknown, a date as stored, whatever its zone), so the window reads are faster and read
nothing differently.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

import loadmgr.models  # noqa: F401  (every stored model defined)
from loadmgr.models.documents import screen
from loadmgr.models.documents.base import Document
from loadmgr.models.documents.screen import Unreadable, _plain_types, screened


def _models() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    todo: list[type[BaseModel]] = [Document]
    while todo:
        model = todo.pop()
        found.append(model)
        todo.extend(model.__subclasses__())
    return sorted(set(found), key=lambda model: model.__qualname__)


FIELDS = [(model, name) for model in _models() for name in sorted(_plain_types(model))]

VALUES: dict[type, st.SearchStrategy[Any]] = {
    bool: st.booleans(),
    int: st.integers(-(2**70), 2**70),
    float: st.floats(allow_nan=True, allow_infinity=True),
    str: st.text(max_size=30),
    datetime: st.datetimes(
        timezones=st.none() | st.just(timezone.utc) | st.just(timezone(timedelta(hours=-5)))
    ),
}


def _checked(model: type[BaseModel], doc: dict[str, Any]) -> Any:
    """`screened` with every field asked of pydantic (no fast path): the reference."""
    with mock.patch.object(screen, "_plain_types", lambda model: {}):
        try:
            return screened(model, doc)
        except Unreadable as exc:
            return ("unreadable", str(exc))


def test_the_fast_path_covers_the_window_reads_fields() -> None:
    from loadmgr.models import MetricSnapshot

    plain = _plain_types(MetricSnapshot)
    for name in ("seq", "windowStart", "windowEnd", "timestamp", "intervalSec", "hist"):
        assert name in plain
    assert len(FIELDS) > 50


@pytest.mark.parametrize(("model", "name"), FIELDS, ids=[f"{m.__name__}.{n}" for m, n in FIELDS])
@settings(max_examples=25, deadline=None, derandomize=True)
@given(data=st.data())
def test_a_value_of_its_fields_plain_type_screens_as_pydantic_checks_it(
    model: type[BaseModel], name: str, data: st.DataObject
) -> None:
    value = data.draw(VALUES[_plain_types(model)[name]])
    doc = {name: value}
    fast = screened(model, doc)
    slow = _checked(model, doc)
    assert type(fast) is type(slow)
    assert fast == slow or (value != value and slow == {name: None})
    assert type(fast[name]) is type(slow[name])
