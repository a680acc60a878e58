"""The repository layer: the only package that imports pymongo."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import pymongo
from pymongo.database import Database

from loadmgr.errors import Conflict, ValidationFailed
from loadmgr.models import Scope, utcnow
from loadmgr.store.clusters import ClusterRepository, ServerValueRepository, SourceRepository
from loadmgr.store.connection import get_database, open_client, redact_uri, translate_errors
from loadmgr.store.foreign import ForeignDocuments
from loadmgr.store.leases import LeaseRepository
from loadmgr.store.load_tests import LoadTestRepository
from loadmgr.store.meta import MetaRepository
from loadmgr.store.metrics import MetricsRepository
from loadmgr.store.notifications import NotificationRepository
from loadmgr.store.runs import RunRepository
from loadmgr.store.schedules import ScheduleRepository, ScheduleSlotRepository
from loadmgr.store.upkeep.retention import RetentionRepository

__all__ = ["Store", "redact_uri"]


class Store:
    """The database of one command: its repositories, all seen through one scope."""

    def __init__(
        self,
        database: Database[dict[str, Any]],
        scope: Scope,
        uri: str = "",
        client: pymongo.MongoClient[dict[str, Any]] | None = None,
    ) -> None:
        self.db = database
        self.scope = scope
        self.uri = uri
        self._client = client
        self.tests = LoadTestRepository(database["load_tests"], scope, uri)
        self.runs = RunRepository(database["load_test_runs"], scope, uri)
        self.metrics = MetricsRepository(database["metrics_timeseries"], scope, uri)
        self.clusters = ClusterRepository(database["locust_clusters"], scope, uri)
        self.leases = LeaseRepository(database["cluster_leases"], Scope(), uri)
        self.meta = MetaRepository(database["loadmgr_meta"], Scope(), uri)
        self.notifications = NotificationRepository(database["notifications"], scope, uri)
        self.schedules = ScheduleRepository(database["schedules"], scope, uri)
        self.schedule_slots = ScheduleSlotRepository(database["schedule_slots"], scope, uri)
        self.sources = SourceRepository(database["server_sources"], scope, uri)
        self.server_values = ServerValueRepository(database["metrics_timeseries"], scope, uri)
        self.retention = RetentionRepository(database["retention_policies"], scope, uri)
        self._indexed = False
        self._clock_offset: timedelta | None = None
        self._clock_measured = 0.0

    @classmethod
    def connect(
        cls,
        uri: str,
        database: str,
        scope: Scope,
        timeout_ms: int,
        *,
        tls_ca_file: str | None = None,
        tls_cert_key_file: str | None = None,
    ) -> Store:
        client = open_client(
            uri, timeout_ms, tls_ca_file=tls_ca_file, tls_cert_key_file=tls_cert_key_file
        )
        return cls(get_database(client, database), scope, uri, client)

    def ensure_indexes(self) -> None:
        """Create every index once per process; idempotent, so racing commands are fine."""
        if self._indexed:
            return
        with translate_errors(self.uri):
            for repository in (self.tests, self.runs, self.metrics, self.clusters, self.leases):
                repository.ensure_indexes()
        self._indexed = True

    def ensure_schedule_indexes(self) -> None:
        """The indexes of schedules and their slots, made by `schedules add` (a tick's query
        and history rely on them), apart so that a run's start does not pay for them."""
        with translate_errors(self.uri):
            self.schedules.ensure_indexes()
            self.schedule_slots.ensure_indexes()

    def space(self) -> dict[str, Any]:
        """Where the space goes (`db status`): bytes per collection, and the scope's runs
        and intervals per test and per run-hour."""
        from loadmgr.store.upkeep.sizes import collection_sizes, history_sizes

        return {
            "collections": collection_sizes(self.db, self.uri),
            **history_sizes(self.db, self.scope, self.uri),
        }

    def foreign(self) -> ForeignDocuments:
        """The Go control plane's documents in this database, whatever the scope."""
        return ForeignDocuments(self.db, self.uri)

    def copy_to(self, name: str, batch: int = 1000) -> Store:
        """Every document of every collection copied, as it is, into database `name` on the
        same server (`db migrate --to-database`), which must not exist yet; the copy's
        store. Indexes are not copied: loadmgr creates its own there, the Go service its.

        Shares this store's client, which only this store closes.
        """
        # MongoDB's rules for a database name, checked here so a bad one is a usage error.
        if not name or len(name.encode()) >= 64 or any(c in name for c in '/\\. "$*<>:|?\0'):
            raise ValidationFailed(
                f'invalid --to-database {name!r}: 1 to 63 bytes, without / \\ . space " $ '
                "* < > : | ?"
            )
        with translate_errors(self.uri):
            if name == self.db.name:
                raise ValidationFailed(f"--to-database {name!r} is the database in use")
            target = self.db.client[name]
            if target.list_collection_names():
                raise Conflict(
                    f"database {name!r} already has collections",
                    hint="choose a new --to-database name, or drop that database first",
                )
            for collection in self.db.list_collection_names():
                if collection.startswith("system."):
                    continue
                chunk: list[dict[str, Any]] = []
                for doc in self.db[collection].find().sort("_id", 1).batch_size(batch):
                    chunk.append(doc)
                    if len(chunk) >= batch:
                        target[collection].insert_many(chunk, ordered=False)
                        chunk = []
                if chunk:
                    target[collection].insert_many(chunk, ordered=False)
        return Store(target, Scope(), self.uri)

    def unscoped(self) -> Store:
        """The same database seen whole, for what concerns all of it (a migration).

        Shares this store's client, which only this store closes.
        """
        return Store(self.db, Scope(), self.uri)

    @contextmanager
    def bounded(self, seconds: float) -> Iterator[None]:
        """Every operation inside gives up after `seconds` (a collector must keep polling)."""
        with pymongo.timeout(seconds):
            yield

    def server_now(self) -> datetime:
        """Now on the database server's clock, so that heartbeats, leases and staleness
        mean the same to every host, whatever their own clocks say.

        The offset of the server's clock (`hello`'s localTime) is measured once a minute;
        where the server does not say (or cannot be asked), the host's clock is used.
        """
        if self._clock_offset is None or time.monotonic() - self._clock_measured > 60:
            self._clock_offset = self._measure_offset()
            self._clock_measured = time.monotonic()
        return utcnow() + self._clock_offset

    def _measure_offset(self) -> timedelta:
        try:
            with pymongo.timeout(2.0):
                before = time.time()
                answer = self.db.client.admin.command("hello")
                after = time.time()
        except Exception:  # mongomock, or a server that is away: the host clock will do
            return self._clock_offset or timedelta(0)
        server = answer.get("localTime")
        if not isinstance(server, datetime):
            return timedelta(0)
        if server.tzinfo is None:
            server = server.replace(tzinfo=timezone.utc)
        middle = datetime.fromtimestamp((before + after) / 2, tz=timezone.utc)
        return server - middle

    def ping(self) -> None:
        """Fail with DatabaseError (exit 3) unless the server answers."""
        with translate_errors(self.uri):
            self.db.client.admin.command("ping")

    def server_version(self) -> str:
        with translate_errors(self.uri):
            return str(self.db.client.server_info().get("version", "?"))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
