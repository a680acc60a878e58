"""Which locustfile a run uses: the test's stored copy, or a file given once; and whether
the stored copy still matches the file it was read from (drift)."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import TYPE_CHECKING

from loadmgr.errors import ClusterError, ValidationFailed
from loadmgr.models import LOCAL_CLUSTER_ID, LoadTest, utcnow
from loadmgr.models.documents import LocustfileBundle
from loadmgr.service.definitions.locustfiles import read_locustfile

if TYPE_CHECKING:
    from collections.abc import Callable

    from loadmgr.models import LoadTestRun, LocustCluster
    from loadmgr.service.runs.options import RunOptions

LOCUSTFILE_MISMATCH = "locustfile-mismatch"  # the run's event when a master loaded other files
_INFO_TIMEOUT = 5.0  # asked before the run starts: a master that does not answer is the run's


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


def check_remote_locustfile(
    cluster: LocustCluster, run: LoadTestRun, strict: bool, notify: Callable[[str], None]
) -> None:
    """Whether a remote master loaded the test's locustfile: its plugin tells the hash of
    what its -f named (docs/plugin.md, the info route), compared with the hash the test
    stored. Another hash is a warning and a `locustfile-mismatch` event on the run, or
    refused (exit 2, nothing stored) with `--strict-locustfile`. Nothing to compare (no
    stored copy, no plugin, a plugin that cannot tell, a master that does not answer: the
    run itself meets that) says nothing."""
    stored = run.locustfileSha256
    if not stored:
        return
    from loadmgr.locust.client import LocustClient

    try:
        with LocustClient.from_cluster(cluster, timeout=_INFO_TIMEOUT) as client:
            info = client.plugin_info()
    except ClusterError:
        return
    loaded = info["locustfile_sha256"] if info else None
    if loaded is None or loaded == stored:
        return
    mismatch = (
        f"cluster {cluster.id!r} runs another locustfile than test {run.testName!r} stored "
        f"(its master loaded sha256 {loaded[:8]}…, the test has {stored[:8]}…)"
    )
    if strict:
        raise ValidationFailed(
            f"{mismatch} (--strict-locustfile)",
            hint="deploy the test's locustfile with the master, or update the test's copy",
        )
    notify(f"warning: {mismatch}")
    run.events.append({"at": utcnow(), "kind": LOCUSTFILE_MISMATCH, "detail": mismatch})
