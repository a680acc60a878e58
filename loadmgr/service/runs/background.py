"""Detached collectors: `runs start --detach` hands the run to a background process."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from loadmgr.config import Settings
from loadmgr.local_files import ensure_directory
from loadmgr.processes import start_logged


def collector_log(home: Path, run_id: str) -> Path:
    return home / "logs" / f"run-{run_id}.log"


def connection_environment(settings: Settings) -> dict[str, str | None]:
    """The LOADMGR_* variables that reach the same database in the same scope (None:
    unset). A password given in a file is passed as the file's path, not its content."""
    password_file = settings.mongo_password_file
    return {
        "LOADMGR_MONGO_URI": settings.mongo_uri,
        "LOADMGR_MONGO_PASSWORD_FILE": (
            str(Path(password_file).expanduser().absolute()) if password_file else None
        ),
        "LOADMGR_MONGO_PASSWORD": None if password_file else settings.mongo_password,
        "LOADMGR_TENANT": settings.tenant,
        "LOADMGR_ENV": settings.env,
        "LOADMGR_MONGO_TLS_CA_FILE": settings.mongo_tls_ca_file,
        "LOADMGR_MONGO_TLS_CERT_KEY_FILE": settings.mongo_tls_cert_key_file,
    }


def spawn_collector(settings: Settings, run_id: str) -> Path:
    """Start `loadmgr runs collect RUN` in its own session; returns its log file.

    Settings travel in the environment, not the command line, so a MongoDB password is
    never visible in the process list. A password given in a file is passed as the file's
    path, not its content, so it is not in the collector's environment either.
    """
    log_path = collector_log(settings.home, run_id)
    ensure_directory(log_path.parent)  # a file there: one usage error, not FileExistsError
    env = dict(os.environ)
    env.update(
        {
            "LOADMGR_HOME": str(settings.home),
            "LOADMGR_DATABASE": settings.database,
            "LOADMGR_USER": settings.user,
            "LOADMGR_SERVER_SELECTION_TIMEOUT_MS": str(settings.server_selection_timeout_ms),
        }
    )
    for name, value in connection_environment(settings).items():
        if value:
            env[name] = value
        else:
            env.pop(name, None)
    # The profile's values were resolved above; the child must not re-read another file.
    env.pop("LOADMGR_PROFILE", None)
    env["LOADMGR_CONFIG"] = os.devnull
    with open(log_path, "ab") as log:
        start_logged(
            [sys.executable, "-m", "loadmgr", "runs", "collect", run_id],
            log,
            env=env,
            close_fds=True,
        )
    return log_path
