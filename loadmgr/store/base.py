"""What every repository shares: its collection, scope, and error translation."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, ParamSpec, TypeVar

import pymongo.errors
from pydantic import BaseModel
from pymongo.collection import Collection

from loadmgr.errors import Conflict, ValidationFailed, left_out
from loadmgr.models import Scope
from loadmgr.models.documents.base import Document
from loadmgr.models.documents.screen import Unreadable, read_model, screened
from loadmgr.models.foreign import newest_first, readable
from loadmgr.store.connection import translate_errors
from loadmgr.store.upkeep import newest

P = ParamSpec("P")
R = TypeVar("R")
M = TypeVar("M", bound=BaseModel)
D = TypeVar("D", bound=Document)

# Documents are read without MongoDB's own `_id`: loadmgr's `id` is the identity.
NO_OBJECT_ID = {"_id": False}


@dataclass(frozen=True)
class IndexSpec:
    """One index a repository needs: its keys, the name it gets if created, its options."""

    keys: list[tuple[str, int]]
    name: str
    unique: bool = False
    partialFilterExpression: dict[str, Any] | None = None

    def options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"unique": True} if self.unique else {}
        if self.partialFilterExpression:
            options["partialFilterExpression"] = self.partialFilterExpression
        return options


class Repository:
    """One collection, seen through a scope."""

    INDEXES: list[IndexSpec] = []

    def ensure_indexes(self) -> None:
        """Create this collection's indexes (see `ensure_index`)."""
        for spec in self.INDEXES:
            ensure_index(self.collection, spec.keys, spec.name, **spec.options())

    def replace_outdated_indexes(self) -> int:
        """For `db migrate`: each index an older loadmgr created with another name or
        definition (a unique rule that also caught other programs' documents) is dropped
        and created as today's; another program's index is never touched. The number of
        indexes replaced."""
        with translate_errors(self._uri):
            replaced = 0
            for spec in self.INDEXES:
                for name, index in self.collection.index_information().items():
                    if not _same_keys(index, spec.keys) or name not in OLD_INDEX_NAMES | {
                        spec.name
                    }:
                        continue
                    if name == spec.name and _same_options(index, spec.options()):
                        continue
                    # Dropped first: the server refuses a second index on the same keys.
                    self.collection.drop_index(name)
                    self.collection.create_index(spec.keys, name=spec.name, **spec.options())
                    replaced += 1
                ensure_index(self.collection, spec.keys, spec.name, **spec.options())
            return replaced

    def __init__(self, collection: Collection[dict[str, Any]], scope: Scope, uri: str) -> None:
        self.collection = collection
        self.scope = scope
        self._uri = uri

    def scoped(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        """`query` restricted to the scope; every read and write goes through this."""
        return {**(query or {}), **self.scope.query()}

    # -- the scope applied here, for queries sent on indexed fields alone ----------------
    # SecantusDB plans on an index only when every field of the filter is in it, and the
    # scope's fields are in few indexes: a run's intervals, asked with the scope beside
    # the run, were a collection scan (docs/storage.md, "Indexes"). Those reads send the
    # indexed fields only (the run bounds the result) and check the scope in this process.

    def in_scope(self, doc: Mapping[str, Any]) -> bool:
        """Whether `doc` is in the scope (a stored value equal to the scope's, as the
        server's equality on a scalar field)."""
        return all(doc.get(key) == value for key, value in self.scope.query().items())

    def with_scope_fields(self, projection: dict[str, Any] | None) -> dict[str, Any] | None:
        """`projection`, also fetching the fields `scope_checked` reads."""
        clause = self.scope.query()
        if projection is None or not clause:
            return projection
        if any(value for key, value in projection.items() if key != "_id"):
            return {**projection, **dict.fromkeys(clause, True)}
        return {key: value for key, value in projection.items() if key not in clause}

    def scope_checked(
        self, docs: Iterable[dict[str, Any]], projection: Mapping[str, Any] | None
    ) -> Iterator[dict[str, Any]]:
        """`docs` (fetched with `with_scope_fields(projection)`) in the scope, each as
        `projection` asked for it."""
        clause = self.scope.query()
        if not clause:
            yield from docs
            return
        inclusive = bool(projection) and any(
            value for key, value in (projection or {}).items() if key != "_id"
        )
        added = [
            key
            for key in clause
            if projection and (key not in projection if inclusive else key in projection)
        ]
        for doc in docs:
            if self.in_scope(doc):
                for key in added:
                    doc.pop(key, None)
                yield doc

    def where_in_scope(self, query: dict[str, Any]) -> dict[str, Any]:
        """A write's filter for the documents `query` (on indexed fields) matches in the
        scope: `query` itself when there is no scope, else their `_id`s, found through the
        index and checked here (`_id` alone is a point lookup on every server)."""
        if not self.scope.query():
            return query
        fields = {"_id": True, **dict.fromkeys(self.scope.query(), True)}
        cursor = self.collection.find(query, fields)
        return {"_id": {"$in": [doc["_id"] for doc in cursor if self.in_scope(doc)]}}

    def count_in_scope(self, query: dict[str, Any]) -> int:
        """How many documents `query` (on indexed fields) matches in the scope."""
        if not self.scope.query():
            return self.collection.count_documents(query)
        fields = {"_id": False, **dict.fromkeys(self.scope.query(), True)}
        return sum(map(self.in_scope, self.collection.find(query, fields)))

    def scope_stage(self) -> list[dict[str, Any]]:
        """An aggregation's scope, as a `$match` after the one on indexed fields (only a
        pipeline's first `$match` chooses the index, on SecantusDB)."""
        clause = self.scope.query()
        return [{"$match": clause}] if clause else []

    # In a collection the Go control plane writes too: the filter that leaves its
    # documents out (store/foreign.py). Empty: nobody else writes the collection.
    OWN: dict[str, Any] = {}

    def owned(self, query: dict[str, Any] | None = None) -> dict[str, Any]:
        """`query` in the scope and on loadmgr's own documents: every write's filter, so
        that no command but `db migrate` changes a document another program wrote."""
        return {**self.scoped(query), **self.OWN}

    def refuse_foreign(self, kind: str, document_id: str) -> None:
        """After a write by id matched nothing: ValidationFailed when that is because the
        document is the Go control plane's (the caller would otherwise say something
        misleading: changed meanwhile, not found)."""
        if not self.OWN:
            return
        foreign = {key: {"$exists": True} for key in self.OWN}
        if self.collection.find_one(self.scoped({"id": document_id, **foreign}), {"_id": 1}):
            raise ValidationFailed(
                f"{kind} {document_id!r} was written by the Go control plane: loadmgr "
                "changes only its own documents",
                hint="convert the database with 'loadmgr db migrate' (see README, "
                "'Coming from the Go control plane')",
            )

    def ids_starting_with(self, prefix: str, limit: int) -> list[str]:
        """Up to `limit` ids in the scope that start with `prefix`, in id order.

        Asked as the range [prefix, prefix with its last character's successor): the same
        ids as an anchored regex, but every server (not only MongoDB) walks the unique `id`
        index over that range only, never the collection; and the prefix stays text, never
        a pattern. `prefix` must not be empty.
        """
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        query = self.scoped({"id": {"$gte": prefix, "$lt": upper}})
        with translate_errors(self._uri):
            cursor = self.collection.find(query, {"_id": False, "id": True})
            return [str(doc["id"]) for doc in cursor.sort("id", 1).limit(limit)]

    def insert_new(self, document: dict[str, Any]) -> bool:
        """Insert `document` (refused outside the scope); False when a unique index already
        holds its key, for the caller to say which."""
        self.check_in_scope(document)
        try:
            self.collection.insert_one(document)
        except pymongo.errors.DuplicateKeyError:
            return False
        return True

    def find_newest(
        self, model: type[BaseModel], query: dict[str, Any], projection: dict[str, Any], limit: int
    ) -> list[dict[str, Any]]:
        """Raw documents of the scope matching `query`, newest first (at most `limit`, 0:
        all), the Go service's read with `model`'s keys: a list must not pay for validation."""
        # With `_id`: a document that cannot be read is named by it.
        fields = {key: value for key, value in projection.items() if key != "_id"} or None
        query = self.scoped(query)
        order = [("createdAt", -1), ("id", 1)]
        if newest.served((spec.keys for spec in self.INDEXES), query):
            # Equalities alone (a scope, a branch): read in `createdAt` windows, so the
            # server builds the newest `limit` and a few more, not every match.
            walk = newest.in_windows(self.collection, query, order, fields, batch=limit)
            try:
                found = list(itertools.islice(walk, limit or None))
            finally:
                walk.close()
        else:
            cursor = self.collection.find(query, fields).sort(order)
            found = list(cursor.limit(limit) if limit else cursor)
        docs = newest_first(found)
        return self.screen_all(model, (readable(doc, model.model_fields) for doc in docs))

    def screen_all(self, model: type[BaseModel], docs: Iterable[dict[str, Any]]) -> list[Any]:
        """`docs` (raw, loadmgr's field names) made safe to show (`screened`): one that
        cannot be read is left out, with one warning naming it (collection and `_id`)."""
        return list(self.iter_screened(model, docs))

    def iter_screened(
        self, model: type[BaseModel], docs: Iterable[dict[str, Any]]
    ) -> Iterator[dict[str, Any]]:
        """`screen_all`, one document at a time (a run's intervals may be 100,000s)."""
        for doc in docs:
            object_id = doc.pop("_id", None)
            try:
                yield screened(model, doc)
            except Unreadable as exc:
                named = object_id if object_id is not None else doc.get("id")
                left_out(self.collection.name, named, str(exc))

    def models_of(self, model: type[M], docs: Iterable[dict[str, Any]]) -> list[M]:
        """`docs` read as `model`; one that cannot be read is left out with a warning."""
        read = []
        for doc in docs:
            object_id = doc.pop("_id", None)
            try:
                read.append(read_model(model, doc))
            except Unreadable as exc:
                named = object_id if object_id is not None else doc.get("id")
                left_out(self.collection.name, named, str(exc))
        return read

    def find_one_as(
        self, model: type[M], query: dict[str, Any], projection: dict[str, Any] = NO_OBJECT_ID
    ) -> M | None:
        """The one document in the scope matching `query` (by a unique key: `id`), read
        as `model`. Asked by the key alone and checked against the scope here: with the
        scope beside it, SecantusDB's planner scanned the collection (`scope_checked`)."""
        docs = self.scope_checked(self.collection.find(query, projection), projection)
        doc = next(docs, None)
        return stored(model, doc) if doc else None

    def find_named(self, model: type[M], name: str, limit: int = 3) -> list[M]:
        """Up to `limit` documents in the scope named `name` (a few: enough to see that a
        name is ambiguous)."""
        docs = self.collection.find(self.scoped({"name": name.strip()}), NO_OBJECT_ID)
        return [stored(model, doc) for doc in docs.limit(limit)]

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


class ModelRepository(Repository, Generic[D]):
    """A repository of one model's named documents (`MODEL`), unique by name in a scope,
    found by id and by name."""

    MODEL: type[D]
    # For a name the scope already holds: what a document is called, and what to do.
    KIND: str
    TAKEN_HINT: str

    @mapped_errors
    def insert(self, document: D) -> D:
        """Insert `document`; Conflict when a unique index already holds its name."""
        fields = document.to_document()
        if not self.insert_new(fields):
            raise Conflict(
                f"a {self.KIND} named {fields['name']!r} already exists{self.scope.describe()}",
                hint=self.TAKEN_HINT,
            )
        return document

    @mapped_errors
    def find_by_id(self, document_id: str) -> D | None:
        return self.find_one_as(self.MODEL, {"id": document_id})

    @mapped_errors
    def find_by_name(self, name: str) -> list[D]:
        """A few documents named `name` (more than one: the name is ambiguous)."""
        return self.find_named(self.MODEL, name)

    @mapped_errors
    def update_unchanged(
        self, document_id: str, updated_at: datetime, changes: dict[str, Any]
    ) -> bool:
        """Set `changes` if the document was not changed since it was read (its
        `updatedAt` is still `updated_at`); False otherwise (`apply` then undoes its own)."""
        self.check_in_scope(changes, partial=True)
        query = self.owned({"id": document_id, "updatedAt": updated_at})
        return self.collection.update_one(query, {"$set": changes}).matched_count == 1

    @mapped_errors
    def take_managed(self, document_id: str, managed_by: str) -> dict[str, Any] | None:
        """Delete the document if `managed_by`'s apply still manages it; the document
        deleted (to put back with `put_back`), else None."""
        query = self.owned({"id": document_id, "managedBy": managed_by})
        return self.collection.find_one_and_delete(query, projection=NO_OBJECT_ID)

    @mapped_errors
    def put_back(self, document: dict[str, Any]) -> bool:
        """Insert a document `take_managed` returned, as it was; False if its name was
        taken meanwhile."""
        return self.insert_new(dict(document))


def scope_name_unique(**options: Any) -> IndexSpec:
    """The index that keeps names unique within a tenant and environment."""
    return IndexSpec(
        [("tenantId", 1), ("envId", 1), ("name", 1)], "scope_name_unique", unique=True, **options
    )


def scope_created() -> list[IndexSpec]:
    """A list's order (`find_newest`) in a scope: `--tenant` with or without `--env`, and
    `--env` alone. SecantusDB plans on an index only when it holds every field of the
    filter, and `created_id_idx` holds neither scope field (docs/storage.md, "Indexes")."""
    return [
        IndexSpec(
            [("tenantId", 1), ("envId", 1), ("createdAt", -1), ("id", 1)], "scope_created_idx"
        ),
        IndexSpec([("envId", 1), ("createdAt", -1), ("id", 1)], "env_created_idx"),
    ]


def stored(model: type[M], doc: Mapping[str, Any]) -> M:
    """`doc` read as `model`; a stored document loadmgr cannot read (another program's,
    with a value loadmgr refuses) is a usage error naming the field, not a crash."""
    try:
        return read_model(model, dict(doc))
    except Unreadable as exc:
        kind = {"LoadTest": "test", "LoadTestRun": "run"}.get(model.__name__, model.__name__)
        raise ValidationFailed(
            f"stored {kind} {doc.get('id')!r} cannot be read: {exc}",
            hint="documents another program wrote (the Go control plane) are converted by "
            "'loadmgr db migrate'; one it skipped needs fixing by hand",
        ) from None


# Names loadmgr gave its indexes before it used the Go control plane's (issue 12).
OLD_INDEX_NAMES = frozenset(
    {
        "id_unique",
        "scope_name_unique",
        "created_desc",
        "test_created",
        "status",
        "run_time",
        "run_seq_unique",
    }
)
# Server codes for "an index on these keys (or of this name) exists with other options".
INDEX_CONFLICT_CODES = (85, 86)


def _same_keys(index: Mapping[str, Any], keys: list[tuple[str, int]]) -> bool:
    return [(str(k), int(d)) for k, d in index.get("key", [])] == keys


def _same_options(index: Mapping[str, Any], options: Mapping[str, Any]) -> bool:
    return bool(index.get("unique", False)) == bool(options.get("unique", False)) and (
        index.get("partialFilterExpression") or None
    ) == (options.get("partialFilterExpression") or None)


def ensure_index(
    collection: Collection[dict[str, Any]],
    keys: list[tuple[str, int]],
    name: str,
    **options: Any,
) -> None:
    """Create an index unless one on the same keys already exists, under any name.

    Another program sharing the database (the Go control plane) creates its own indexes
    on the same keys under its own names; MongoDB refuses a second index on the same keys
    (IndexOptionsConflict, 85), so insisting on our name would fail every first write.
    An index on the same keys with other options (an older loadmgr's, without its
    partial filter) is left alone here: `loadmgr db migrate` replaces it, because dropping
    an index is not something a `tests create` should do behind a user's back.
    """
    existing = collection.index_information()
    if any(_same_keys(index, keys) for index in existing.values()):
        return
    if name in existing:
        return  # same name, other keys: someone else's; never fail a write over it
    try:
        collection.create_index(keys, name=name, **options)
    except pymongo.errors.OperationFailure as exc:
        # A racing process created it (or its equivalent) between our look and our create.
        if exc.code not in INDEX_CONFLICT_CODES:
            raise
