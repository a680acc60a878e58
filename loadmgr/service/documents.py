"""What the services of every collection share: a new document, stamped and checked; one
found by id or by name."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from loadmgr.errors import NotFound, ValidationFailed
from loadmgr.models import utcnow
from loadmgr.service.validation import validation_failed

if TYPE_CHECKING:
    from loadmgr.models.documents.base import Named
    from loadmgr.store import Store

M = TypeVar("M", bound=BaseModel)
D = TypeVar("D")


def new_document(
    model: type[M],
    store: Store,
    user: str,
    fields: dict[str, Any],
    option_names: dict[str, str] | None = None,
) -> M:
    """`fields` as a new `model` in the store's scope, with its audit fields; one-line
    ValidationFailed naming the options (see `validation_failed`) when invalid."""
    document = {**fields, **store.scope.stamp(), **audit_stamp(user)}
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        raise validation_failed(exc, option_names) from None


def audit_stamp(user: str, now: datetime | None = None) -> dict[str, Any]:
    """The audit fields of a document `user` creates now: created and updated alike."""
    now = now or utcnow()
    return {"createdAt": now, "createdBy": user, "updatedAt": now, "updatedBy": user}


def stamp_for(owner: Named, user: str, now: datetime | None = None) -> dict[str, Any]:
    """The scope and audit fields of a document `user` creates for `owner` (a run or a
    schedule of a test, a slot of a schedule): it lives where its owner does."""
    return {"tenantId": owner.tenantId, "envId": owner.envId, **audit_stamp(user, now)}


def by_id_or_name(
    store: Store,
    ref: str,
    kind: str,
    find_by_id: Callable[[str], D | None],
    find_by_name: Callable[[str], list[D]],
) -> D:
    """The document whose id is `ref`, else the one named `ref` (names are unique within
    a tenant and environment: several means several scopes are in view)."""
    found = find_by_id(ref)
    if found is not None:
        return found
    matches = find_by_name(ref)
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ValidationFailed(
            f"several {kind}s are named {ref!r} in different tenants or environments",
            hint="name it by id, or set --tenant and --env",
        )
    raise NotFound(f"{kind} {ref!r} not found{store.scope.describe()}")
