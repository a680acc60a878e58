"""Starting the processes loadmgr leaves running in the background or watches: a detached
collector, the embedded MongoDB server, the processes of a local Locust.

Each is started the same way, so that none of them reads the terminal or dies with a
Ctrl-C meant for the command that started it, and whatever it prints is kept in its log.
"""

from __future__ import annotations

import subprocess
from typing import IO, Any


def start_logged(command: list[str], log: IO[bytes], **options: Any) -> subprocess.Popen[bytes]:
    """`command` started in a session of its own, reading nothing, its output and errors
    written to `log`; `options`: Popen's others (cwd, env, …)."""
    return subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        **options,
    )
