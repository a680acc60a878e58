"""Which locustfile a run uses: the test's stored copy, or a file given once; and whether
the stored copy still matches the file it was read from (drift)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loadmgr.errors import ValidationFailed
from loadmgr.models import LOCAL_CLUSTER_ID, LoadTest
from loadmgr.models.documents import LocustfileBundle
from loadmgr.service.definitions.locustfiles import read_locustfile

if TYPE_CHECKING:
    from loadmgr.service.runs.options import RunOptions


@dataclass(frozen=True)
class RunLocustfile:
    """The locustfile of one run: its name, content or bundle (both None on a remote
    cluster) and hash, and, when the stored copy is used but its files have changed
    since, a sentence saying so."""

    name: str
    content: str | None
    sha256: str | None
    drift: str | None = None
    bundle: LocustfileBundle | None = None

    @property
    def source(self) -> str | LocustfileBundle | None:
        """What a local cluster runs: one file's text, or a bundle."""
        return self.bundle if self.bundle is not None else self.content


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
        return RunLocustfile(given.name, given.content, given.sha256, bundle=given.bundle)
    stored = RunLocustfile(
        test.locustfile,
        test.locustfileContent,
        test.locustfileSha256,
        bundle=test.locustfileBundle,
    )
    if not local:
        return stored
    if not test.locustfileContent and test.locustfileBundle is None:
        raise ValidationFailed(
            f"test {test.name!r} has no stored locustfile to run on the local cluster",
            hint="add one with 'loadmgr tests update --locustfile PATH'",
        )
    drift = locustfile_drift(test)
    if drift and options.strict_locustfile:
        raise ValidationFailed(f"{drift} (--strict-locustfile)")
    return RunLocustfile(stored.name, stored.content, stored.sha256, drift, stored.bundle)


def locustfile_drift(test: LoadTest) -> str | None:
    """A sentence when the files at the test's stored path exist and differ from the
    stored copy (any file of a folder: changed, added or removed); None when they match,
    or cannot be found (another directory, say).

    The path is read as stored: a relative one from the current directory, as it was given.
    """
    if not test.locustfile or not test.locustfileSha256:
        return None
    try:
        current = read_locustfile(test.locustfile, "").sha256
    except ValidationFailed as exc:  # unreadable now, or no longer a locustfile at all
        return _drift_words(test, f"now refused: {exc.message}")
    if current is None or current == test.locustfileSha256:
        return None
    return _drift_words(test, f"file {current[:8]}…")


def _drift_words(test: LoadTest, now: str) -> str:
    name, shown = shlex.quote(test.name), shlex.quote(test.locustfile)
    update = f"loadmgr tests update {name} --locustfile {shown}"
    return (
        f"{test.locustfile} changed since the test stored it (stored sha256 "
        f"{(test.locustfileSha256 or '')[:8]}…, {now}); update with: {update}"
    )
