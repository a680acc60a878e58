"""The `notifications` collection: webhook subscriptions, their URLs by reference only."""

from __future__ import annotations

from loadmgr.models.notifications import Notification
from loadmgr.store.base import (
    IndexSpec,
    ModelRepository,
    mapped_errors,
    scope_name_unique,
)


class NotificationRepository(ModelRepository[Notification]):
    """Subscriptions, unique by (tenantId, envId, name)."""

    MODEL = Notification
    KIND = "notification"
    TAKEN_HINT = "choose another name, or remove the existing one with 'notify remove'"

    INDEXES: list[IndexSpec] = [
        IndexSpec([("id", 1)], "id_unique", unique=True),
        scope_name_unique(),
    ]

    @mapped_errors
    def find_many(self) -> list[Notification]:
        cursor = self.collection.find(self.scoped()).sort([("name", 1), ("id", 1)])
        return self.models_of(Notification, cursor)

    @mapped_errors
    def for_scope(self, tenant_id: str | None, env_id: str | None) -> list[Notification]:
        """The subscriptions of exactly this tenant and environment (a run's)."""
        query = self.scoped({"tenantId": tenant_id, "envId": env_id})
        if query.get("tenantId") != tenant_id or query.get("envId") != env_id:
            return []  # the run is outside this store's scope: nothing of it is reached
        cursor = self.collection.find(query).sort([("name", 1), ("id", 1)])
        return self.models_of(Notification, cursor)

    @mapped_errors
    def delete(self, notification_id: str) -> bool:
        query = self.scoped({"id": notification_id})
        return self.collection.delete_one(query).deleted_count == 1
