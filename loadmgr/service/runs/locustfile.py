"""Which locustfile a run uses: the test's stored copy, or a file given once; and whether
the stored copy still matches the file it was read from (drift)."""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from loadmgr.errors import ValidationFailed
from loadmgr.models import LOCAL_CLUSTER_ID, LoadTest
from loadmgr.models.documents import LOCUSTFILE_MAX_BYTES
from loadmgr.service.definitions.tests import read_locustfile

if TYPE_CHECKING:
    from loadmgr.service.runs.options import RunOptions


@dataclass(frozen=True)
class RunLocustfile:
    """The locustfile of one run: its name, content (None on a remote cluster) and hash,
    and, when the stored copy is used but its file has changed since, a sentence saying so."""

    name: str
    content: str | None
    sha256: str | None
    drift: str | None = None


def choose_locustfile(test: LoadTest, cluster_id: str, options: RunOptions) -> RunLocustfile:
    """`--locustfile PATH` (local cluster only), else the test's stored copy.

    A local run of a stored copy whose file (at the stored path) now differs is warned
    about, or refused with `--strict-locustfile`. Raises before anything is stored.
    """
    local = cluster_id == LOCAL_CLUSTER_ID
    if options.locustfile is not None:
        if not local:
            raise ValidationFailed(
                f"--locustfile runs a file on the local cluster only; cluster {cluster_id!r} "
                "runs the locustfile deployed with it",
                hint="deploy the file there, or run it here with --cluster local",
            )
        given = read_locustfile(options.locustfile, LOCAL_CLUSTER_ID)
        return RunLocustfile(given.name, given.content, given.sha256)
    stored = RunLocustfile(test.locustfile, test.locustfileContent, test.locustfileSha256)
    if not local:
        return stored
    if not test.locustfileContent:
        raise ValidationFailed(
            f"test {test.name!r} has no stored locustfile to run on the local cluster",
            hint="add one with 'loadmgr tests update --locustfile PATH'",
        )
    drift = locustfile_drift(test)
    if drift and options.strict_locustfile:
        raise ValidationFailed(f"{drift} (--strict-locustfile)")
    return RunLocustfile(stored.name, stored.content, stored.sha256, drift)


def locustfile_drift(test: LoadTest) -> str | None:
    """A sentence when the file at the test's stored path exists and differs from the
    stored copy; None when it matches, or cannot be read (another directory, say).

    The path is read as stored: a relative one from the current directory, as it was given.
    """
    if not test.locustfile or not test.locustfileSha256:
        return None
    path = Path(test.locustfile).expanduser()
    try:
        if not path.is_file():
            return None
        with path.open("rb") as file:
            data = file.read(LOCUSTFILE_MAX_BYTES + 1)
    except (OSError, ValueError):
        return None
    current = hashlib.sha256(data).hexdigest()
    if current == test.locustfileSha256:
        return None
    name, shown = shlex.quote(test.name), shlex.quote(test.locustfile)
    update = f"loadmgr tests update {name} --locustfile {shown}"
    return (
        f"{test.locustfile} changed since the test stored it (stored sha256 "
        f"{test.locustfileSha256[:8]}…, file {current[:8]}…); update with: {update}"
    )
