"""Opening the store a command works on: the configured MongoDB, or the embedded one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from loadmgr.config import Settings
from loadmgr.errors import DatabaseError
from loadmgr.models import Scope

if TYPE_CHECKING:
    from loadmgr.store import Store


def open_store(
    settings: Settings, *, timeout_ms: int | None = None, start_embedded: bool = True
) -> Store:
    """A connected store for `settings`, starting the embedded server when no URI is set.

    `timeout_ms` caps the server selection below the configured one; without
    `start_embedded`, no URI and no embedded server running is a DatabaseError (shell
    completion must never start a server).
    """
    from loadmgr.store import Store

    uri = settings.connection_uri
    if not uri:
        from loadmgr.store.embedded import EmbeddedServer

        server = EmbeddedServer(settings.home)
        state = server.ensure_running() if start_embedded else server.status()
        if state.uri is None:
            raise DatabaseError("the embedded store is not running")
        uri = state.uri
    scope = Scope(settings.tenant, settings.env)
    selection_ms = settings.server_selection_timeout_ms
    store = Store.connect(
        uri,
        settings.database,
        scope,
        selection_ms if timeout_ms is None else min(selection_ms, timeout_ms),
        tls_ca_file=settings.mongo_tls_ca_file if settings.mongo_uri else None,
        tls_cert_key_file=settings.mongo_tls_cert_key_file if settings.mongo_uri else None,
    )
    return store


def embedded_state(settings: Settings, *, start: bool = False) -> dict[str, Any]:
    """The embedded store on this machine as `db status` prints it (started first when
    `start`)."""
    from loadmgr.store.embedded import EmbeddedServer

    server = EmbeddedServer(settings.home)
    if start:
        server.ensure_running()
    state = server.status()
    from loadmgr.service.runs.folders import run_folders, runs_folder

    folders = run_folders(settings.home)
    return {
        "running": state.running,
        "pid": state.pid,
        "port": state.port,
        "uri": state.uri,
        "dataDir": str(state.data_dir),
        "logFile": str(state.log_file),
        # In use: running, and what loadmgr talks to (no MongoDB URI configured instead).
        "inUse": state.running and not settings.mongo_uri,
        # The local runs' folders (locustfile, Locust logs): what `db prune` removes.
        "runFolders": folders.count,
        "runFoldersBytes": folders.bytes,
        "runFoldersDir": str(runs_folder(settings.home)),
    }


def stop_embedded(settings: Settings) -> bool:
    """Stop the embedded store if it runs (its data stays); whether it was running."""
    from loadmgr.store.embedded import EmbeddedServer

    return EmbeddedServer(settings.home).stop()
