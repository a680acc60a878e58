"""Conditional writes found by one indexed key: the collector's writes to its run.

SecantusDB plans on an index only when every field of the filter is in it (docs/storage.md,
"Indexes"), so a write filtered on a run's `id` and its epoch, status, scope and
`createdat: {$exists: false}` (`owned()`) scanned every run, once per interval. Here the
filter is the key alone (its unique index finds the document on every server) and the
condition moves into the update: a pipeline that sets each field to the new value if the
condition holds and to itself otherwise, in the same atomic step as the find, so a
concurrent change the condition names (a claim moving the epoch on) still wins. The
document as it was before tells whether the condition held: it is checked here by the same
rule the server applied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pymongo import ReturnDocument
from pymongo.collection import Collection

# In a condition's allowed values: the field is absent or null. A condition does not tell
# the two apart (None means the same): `$type` is not an expression every server knows,
# servers differ on a missing field `$in` a list with null, and loadmgr writes neither an
# epoch nor `createdat` as null.
MISSING: Any = object()

# Field → the values it may hold (MISSING: it may be absent).
Condition = Mapping[str, Sequence[Any]]


def condition_of(query: Mapping[str, Any]) -> dict[str, list[Any]]:
    """A filter of equalities, `$in`s and `$exists: false` (the scope, `owned()`'s rule)
    as a condition."""
    condition: dict[str, list[Any]] = {}
    for field, rule in query.items():
        if rule == {"$exists": False}:
            condition[field] = [MISSING]
        elif isinstance(rule, Mapping) and set(rule) == {"$in"}:
            condition[field] = list(rule["$in"])
        elif isinstance(rule, Mapping) or field.startswith("$"):
            raise ValueError(f"not a condition on values: {field}: {rule!r}")
        else:
            condition[field] = [rule]
    return condition


def expression(condition: Condition) -> Any:
    """`condition` as an aggregation expression on the document being written."""
    clauses = []
    for field, allowed in condition.items():
        values = [value for value in allowed if value is not MISSING and value is not None]
        either: list[dict[str, Any]] = []
        if values:  # `$literal`: a value starting with `$` stays a value
            either.append({"$in": [f"${field}", {"$literal": values}]})
        if len(values) < len(allowed):
            either.append({"$eq": [{"$ifNull": [f"${field}", None]}, None]})
        clauses.append({"$or": either})
    return {"$and": clauses}


def holds(condition: Condition, doc: Mapping[str, Any]) -> bool:
    """Whether `doc` meets `condition`, as the server's `expression` judges it."""
    return all(
        any(_same(doc.get(field, MISSING), value) for value in allowed)
        for field, allowed in condition.items()
    )


def _same(stored: Any, wanted: Any) -> bool:
    if wanted is MISSING or wanted is None:
        return stored is MISSING or stored is None
    if stored is MISSING or stored is None:
        return False
    # The server's equality: true is not 1; 0 is 0.0.
    return isinstance(stored, bool) == isinstance(wanted, bool) and bool(stored == wanted)


def set_where(condition: Condition, changes: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The update pipeline: each of `changes` set if `condition` holds, else left as it
    is (an absent field stays absent). Top-level fields only: a pipeline's dotted path
    would walk arrays otherwise than `$set` does."""
    for key in changes:
        if "." in key or key.startswith("$"):
            raise ValueError(f"a guarded write sets top-level fields only, not {key!r}")
    held = expression(condition)
    fields = {
        key: {"$cond": [held, {"$literal": value}, f"${key}"]} for key, value in changes.items()
    }
    return [{"$set": fields}]


def set_if(
    collection: Collection[dict[str, Any]],
    key: dict[str, Any],
    condition: Condition,
    changes: Mapping[str, Any],
    fields: Sequence[str] | None = None,
    *,
    omit: Sequence[str] = (),
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Set `changes` on the document `key` (a unique indexed field) finds, if `condition`
    holds when it is written. (The document before, None when there is none; the document
    after, None when nothing was written.) `fields`: only these come back (None: all but
    `omit`)."""
    if fields is None:
        wanted = {name: False for name in omit if name not in condition and name not in changes}
    else:
        wanted = dict.fromkeys([*fields, *condition], True)
    before = collection.find_one_and_update(
        key,
        set_where(condition, changes),
        projection={"_id": False, **wanted},
        return_document=ReturnDocument.BEFORE,
    )
    if before is None or not holds(condition, before):
        return before, None
    after = {**before, **changes}
    if fields is not None:
        after = {name: after[name] for name in fields if name in after}
    return before, after
