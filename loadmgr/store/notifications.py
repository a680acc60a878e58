"""The `notifications` collection: webhook subscriptions, their URLs by reference only."""

from __future__ import annotations

from loadmgr.models.notifications import Notification
from loadmgr.store.base import (
    NO_OBJECT_ID,
    IndexSpec,
    ModelRepository,
    mapped_errors,
    stored,
)


class NotificationRepository(ModelRepository[Notification]):
    """Subscriptions, unique by (tenantId, envId, name)."""

    MODEL = Notification

    INDEXES: list[IndexSpec] = [
        IndexSpec([("id", 1)], "id_unique", unique=True),
        IndexSpec([("tenantId", 1), ("envId", 1), ("name", 1)], "scope_name_unique", unique=True),
    ]

    @mapped_errors
    def insert(self, notification: Notification) -> Notification:
        self.insert_unique(
            notification,
            f"a notification named {notification.name!r}",
            hint="choose another name, or remove the existing one with 'notify remove'",
        )
        return notification

    @mapped_errors
    def find_many(self) -> list[Notification]:
        cursor = self.collection.find(self.scoped(), NO_OBJECT_ID).sort([("name", 1), ("id", 1)])
        return [stored(Notification, doc) for doc in cursor]

    @mapped_errors
    def for_scope(self, tenant_id: str | None, env_id: str | None) -> list[Notification]:
        """The subscriptions of exactly this tenant and environment (a run's)."""
        query = self.scoped({"tenantId": tenant_id, "envId": env_id})
        if query.get("tenantId") != tenant_id or query.get("envId") != env_id:
            return []  # the run is outside this store's scope: nothing of it is reached
        cursor = self.collection.find(query, NO_OBJECT_ID).sort([("name", 1), ("id", 1)])
        return [stored(Notification, doc) for doc in cursor]

    @mapped_errors
    def delete(self, notification_id: str) -> bool:
        query = self.scoped({"id": notification_id})
        return self.collection.delete_one(query).deleted_count == 1
