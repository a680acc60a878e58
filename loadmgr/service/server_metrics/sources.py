"""Registered sources of server-side metrics: add, find, list, remove, check."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from loadmgr.errors import Conflict, NotFound, ValidationFailed
from loadmgr.models import ServerSource
from loadmgr.secret_refs import check_env_reference, check_file_reference
from loadmgr.service.documents import new_document
from loadmgr.service.validation import refuse_url_credentials

if TYPE_CHECKING:
    from loadmgr.prometheus.client import PrometheusClient
    from loadmgr.store import Store

CHECK_QUERY = "1+1"  # a trivial query: Prometheus answers it without any series


@dataclass(frozen=True)
class SourceSpec:
    """What `sources add` was given. Only where credentials are read from is kept."""

    name: str
    prometheus: str
    description: str = ""
    bearer_token_env: str | None = None
    bearer_token_file: str | None = None
    header_name: str | None = None
    header_env: str | None = None
    ca_bundle: str | None = None
    timeout: float = 5.0
    fields: dict[str, Any] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        refuse_url_credentials("--prometheus", self.prometheus)
        if self.bearer_token_env and self.bearer_token_file:
            raise ValidationFailed("give --bearer-token-env or --bearer-token-file, not both")
        if bool(self.header_name) != bool(self.header_env):
            raise ValidationFailed("a header needs --header-name and --header-env")
        if self.bearer_token_env:
            check_env_reference(self.bearer_token_env, "--bearer-token-env")
        if self.header_env:
            check_env_reference(self.header_env, "--header-env")
        token_file = (
            str(check_file_reference(self.bearer_token_file, "--bearer-token-file"))
            if self.bearer_token_file
            else None
        )
        if not 0 < self.timeout <= 60:
            raise ValidationFailed("--timeout must be more than 0 and at most 60 seconds")
        self.fields.update(
            id=self.name.strip(),
            type="prometheus",
            baseUrl=self.prometheus.strip(),
            description=self.description,
            bearerTokenEnv=self.bearer_token_env,
            bearerTokenFile=token_file,
            headerName=self.header_name,
            headerEnv=self.header_env,
            caBundle=self.ca_bundle,
            timeoutSec=self.timeout,
        )


def add_source(store: Store, user: str, spec: SourceSpec) -> ServerSource:
    source = new_document(ServerSource, store, user, dict(spec.fields))
    store.sources.ensure_indexes()
    return store.sources.insert(source)


def get_source(store: Store, name: str) -> ServerSource:
    found = store.sources.find_by_id(name)
    if found is None:
        raise NotFound(f"source {name!r} not found{store.scope.describe()}")
    return found


def list_sources(store: Store) -> list[dict[str, Any]]:
    return store.sources.find_many()


def remove_source(store: Store, name: str) -> ServerSource:
    source = get_source(store, name)
    in_use = store.tests.find_many(server_source=source.id, limit=1)
    if in_use:
        raise Conflict(
            f"source {source.id!r} is used by test {in_use[0]['name']!r}",
            hint="remove its server metrics with 'tests update --clear-server-metrics' first",
        )
    store.sources.delete(source.id)
    return source


def client_for(source: ServerSource, timeout: float | None = None) -> PrometheusClient:
    """A client for `source` (its credentials read when each request is sent)."""
    from loadmgr.prometheus.client import Credentials, PrometheusClient

    credentials = Credentials(
        bearer_token_env=source.bearerTokenEnv,
        bearer_token_file=source.bearerTokenFile,
        header_name=source.headerName,
        header_env=source.headerEnv,
    )
    return PrometheusClient(
        source.baseUrl,
        credentials=credentials,
        ca_file=source.caBundle,
        timeout=timeout or source.timeoutSec,
    )


def check_source(store: Store, name: str) -> dict[str, Any]:
    """Prometheus' version and the round trip of a trivial query; SourceError (exit 6)
    when it cannot be asked."""
    source = get_source(store, name)
    client = client_for(source)
    info = client.build_info()
    began = time.monotonic()
    reading = client.query(CHECK_QUERY)
    took = time.monotonic() - began
    return {
        "id": source.id,
        "baseUrl": source.baseUrl,
        "reachable": True,
        "version": info.get("version"),
        "roundTripMs": round(took * 1000, 1),
        "queryOk": reading.value == 2.0,
    }
