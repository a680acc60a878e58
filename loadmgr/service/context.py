"""Opening the store a command works on: the configured MongoDB, or the embedded one."""

from __future__ import annotations

from typing import TYPE_CHECKING

from loadmgr.config import Settings
from loadmgr.models import Scope

if TYPE_CHECKING:
    from loadmgr.store import Store


def open_store(settings: Settings) -> Store:
    """A connected store for `settings`, starting the embedded server when no URI is set."""
    from loadmgr.store import Store

    uri = settings.connection_uri
    if not uri:
        from loadmgr.store.embedded import EmbeddedServer

        state = EmbeddedServer(settings.home).ensure_running()
        assert state.uri is not None
        uri = state.uri
    scope = Scope(settings.tenant, settings.env)
    store = Store.connect(
        uri,
        settings.database,
        scope,
        settings.server_selection_timeout_ms,
        tls_ca_file=settings.mongo_tls_ca_file if settings.mongo_uri else None,
        tls_cert_key_file=settings.mongo_tls_cert_key_file if settings.mongo_uri else None,
    )
    return store
