"""Registered Locust clusters: add, find, list, remove, check; the plugin they can load."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loadmgr.errors import Conflict, NotFound, ValidationFailed
from loadmgr.local_files import write_file_atomically
from loadmgr.models import LOCAL_CLUSTER_ID, LocustCluster
from loadmgr.secret_refs import check_env_reference, check_file_reference
from loadmgr.service.documents import new_document
from loadmgr.service.validation import check_target_url

if TYPE_CHECKING:
    from loadmgr.store import Store


@dataclass(frozen=True)
class ClusterSpec:
    """What `clusters add` was given: the master's URL, how to authenticate, how to
    verify its TLS. Only where secrets are read from is kept, never a secret."""

    cluster_id: str
    url: str
    description: str = ""
    header_name: str | None = None
    header_env: str | None = None
    header_file: str | None = None
    login_user_env: str | None = None
    login_password_env: str | None = None
    login_path: str = "/login_submit"
    ca_bundle: str | None = None
    insecure: bool = False
    fields: dict[str, Any] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        """The cluster's stored fields; ValidationFailed for options that contradict."""
        auth = self._auth()
        if self.insecure and self.ca_bundle:
            raise ValidationFailed("give --ca-bundle or --insecure, not both")
        self.fields.update(
            id=self.cluster_id,
            baseUrl=self.url,
            description=self.description,
            auth=auth,
            caBundle=self.ca_bundle,
            verifyTls=not self.insecure,
        )

    def warnings(self) -> list[str]:
        """What registering it warns about on stderr."""
        if self.insecure:
            return ["warning: https certificates of this cluster will not be verified"]
        return []

    def _auth(self) -> dict[str, Any]:
        """The stored `auth`: none, a header read from an env variable or a file, or a
        login form whose user and password are read from env variables."""
        auth: dict[str, Any] = {"type": "none"}
        if self.header_name or self.header_env or self.header_file:
            if not self.header_name or bool(self.header_env) == bool(self.header_file):
                raise ValidationFailed(
                    "header authentication needs --header-name and one of --header-env, "
                    "--header-file"
                )
            auth = {
                "type": "header",
                "headerName": self.header_name,
                "secretEnv": self.header_env,
                # As given, but absolute: the path must mean the same to a collector.
                "secretFile": str(check_file_reference(self.header_file, "--header-file"))
                if self.header_file
                else None,
            }
            if self.header_env:
                check_env_reference(self.header_env, "--header-env")
        if self.login_user_env or self.login_password_env:
            if auth["type"] != "none":
                raise ValidationFailed("choose header or login authentication, not both")
            if not (self.login_user_env and self.login_password_env):
                raise ValidationFailed("login needs --login-user-env and --login-password-env")
            check_env_reference(self.login_user_env, "--login-user-env")
            check_env_reference(self.login_password_env, "--login-password-env")
            auth = {
                "type": "login",
                "usernameEnv": self.login_user_env,
                "passwordEnv": self.login_password_env,
                "loginPath": self.login_path,
            }
        return auth


def add_cluster(store: Store, user: str, spec: ClusterSpec) -> LocustCluster:
    """Register a remote master (`spec.warnings()`: what to tell first)."""
    fields = dict(spec.fields)
    if str(fields.get("id", "")).strip() == LOCAL_CLUSTER_ID:
        raise ValidationFailed(
            f"{LOCAL_CLUSTER_ID!r} is the built-in cluster (Locust on this machine); it needs "
            "no registration: register a remote master under another id"
        )
    check_target_url("--url", fields.get("baseUrl"))
    cluster = new_document(LocustCluster, store, user, fields)
    store.ensure_indexes()
    return store.clusters.insert(cluster)


def local_cluster() -> dict[str, Any]:
    """The built-in cluster as `clusters list` and `show` print it: never stored, in every
    scope, marked `builtIn` (registered clusters have no such field)."""
    cores = os.cpu_count() or 1
    return {
        "id": LOCAL_CLUSTER_ID,
        "builtIn": True,
        "baseUrl": None,
        "description": "Locust started by loadmgr on this machine for each run, on loopback "
        "(a master and one worker a core; runs start --workers overrides)",
        "workers": cores,
    }


def is_built_in(cluster_id: str) -> bool:
    """Whether `cluster_id` names the built-in cluster (which needs no database)."""
    return cluster_id.strip() == LOCAL_CLUSTER_ID


def check_local_cluster() -> dict[str, Any]:
    """`clusters check local`: Locust's version, the cores, whether the plugin loads."""
    from loadmgr.locust.local import check_local
    from loadmgr.locust.plugin import SUPPORTED_VERSIONS

    report = check_local()
    report["pluginSupported"] = report.get("pluginVersion") in SUPPORTED_VERSIONS
    return report


def get_cluster(store: Store, cluster_id: str) -> LocustCluster:
    cluster = store.clusters.find_by_id(cluster_id)
    if cluster is None:
        raise NotFound(f"cluster {cluster_id!r} not found{store.scope.describe()}")
    return cluster


def list_clusters(store: Store) -> list[dict[str, Any]]:
    """The built-in `local` first, then the registered clusters of the scope."""
    return [local_cluster(), *store.clusters.find_many()]


def remove_cluster(store: Store, cluster_id: str) -> LocustCluster:
    if is_built_in(cluster_id):
        raise ValidationFailed(
            f"{LOCAL_CLUSTER_ID!r} is the built-in cluster; it is not registered and cannot "
            "be removed"
        )
    cluster = get_cluster(store, cluster_id)
    in_use = store.tests.find_many(cluster=cluster.id, limit=1)
    if in_use:
        raise Conflict(
            f"cluster {cluster.id!r} is used by test {in_use[0]['name']!r}",
            hint="point its tests at another cluster with 'tests update --cluster' first",
        )
    store.clusters.delete(cluster.id)
    return cluster


def check_cluster(store: Store, cluster_id: str) -> dict[str, Any]:
    """Reachability, Locust version, state, workers, plugin; ClusterError when unreachable."""
    from loadmgr.errors import ClusterError
    from loadmgr.locust.client import LocustClient
    from loadmgr.locust.plugin import SUPPORTED_VERSIONS

    cluster = get_cluster(store, cluster_id)
    with LocustClient.from_cluster(cluster) as client:
        status = client.check()
    report = {
        "id": cluster.id,
        "baseUrl": cluster.baseUrl,
        "verifyTls": cluster.verifyTls,
        **status.to_dict(),
        # Whether this loadmgr can read the cluster's plugin (None: no plugin there).
        "pluginSupported": None
        if status.pluginVersion is None
        else status.pluginVersion in SUPPORTED_VERSIONS,
    }
    if not status.reachable:
        raise ClusterError(f"cluster {cluster.id!r} is not reachable: {status.error}")
    return report


def check_warnings(report: dict[str, Any]) -> list[str]:
    """What `clusters check` warns about on stderr: certificates not verified, and a
    plugin this loadmgr cannot read."""
    from loadmgr.locust.plugin import plugin_support_problem

    warnings = []
    url = str(report["baseUrl"])
    if not report["verifyTls"] and url.lower().startswith("https:"):
        warnings.append(f"warning: the https certificate of {url} is not verified (--insecure)")
    problem = plugin_support_problem(report.get("pluginVersion"))
    if problem:
        warnings.append(f"warning: cluster {report['id']!r}: {problem}")
        warnings.append(
            "hint: load this loadmgr's plugin there (loadmgr clusters plugin), "
            "or use the loadmgr that matches it"
        )
    return warnings


@dataclass(frozen=True)
class PluginExport:
    """The loadmgr Locust plugin's source, and where it was written (None: nowhere)."""

    source: str
    version: int
    path: Path | None = None
    unchanged: bool = False  # the file was already there with this very content


def export_plugin(destination: str | Path | None = None, *, force: bool = False) -> PluginExport:
    """The plugin's source; written to `destination` (a file, or a directory) when given.

    An existing different file is replaced only with `force`. The file is written whole to
    a temporary file beside it, then renamed: it is never seen half-written.
    """
    from loadmgr.locust.plugin import PLUGIN_FILENAME, plugin_source, plugin_version

    source = plugin_source()
    version = plugin_version(source)
    if destination is None:
        return PluginExport(source, version)
    target = _plugin_target(str(destination), PLUGIN_FILENAME)
    content = source.encode("utf-8")
    try:
        existing = target.stat()
    except FileNotFoundError:
        existing = None
    except OSError as exc:
        raise ValidationFailed(f"cannot write {target}: {_reason(exc)}") from None
    if existing is not None:
        if not stat.S_ISREG(existing.st_mode):
            raise ValidationFailed(f"cannot write {target}: it exists and is not a file")
        try:
            same = target.read_bytes() == content
        except OSError as exc:
            raise ValidationFailed(f"cannot read {target}: {_reason(exc)}") from None
        if same:
            return PluginExport(source, version, target, unchanged=True)
        if not force:
            raise ValidationFailed(
                f"{target} exists and differs from this loadmgr's plugin",
                hint="add --force to replace it",
            )
    write_file_atomically(target, content)
    return PluginExport(source, version, target)


def _plugin_target(raw: str, filename: str) -> Path:
    """The file to write: `raw` itself, or `filename` inside it when it is a directory."""
    if not raw.strip():
        raise ValidationFailed("--write needs a path")
    path = Path(raw).expanduser()
    if path.is_dir():
        return path / filename
    if raw.endswith(("/", os.sep)):
        raise ValidationFailed(f"cannot write into {raw}: no such directory")
    parent = path.parent
    if not parent.is_dir():
        what = "is not a directory" if parent.exists() else "does not exist"
        raise ValidationFailed(f"cannot write {path}: directory {parent} {what}")
    return path


def _reason(exc: OSError) -> str:
    return (exc.strerror or type(exc).__name__).lower()


LOCUST_PEEK_TIMEOUT_SEC = 5.0


def busy_outside_loadmgr(cluster: LocustCluster) -> str | None:
    """Why a remote Locust is running a test that no loadmgr lease covers (another tool's,
    another database's), else None; unreachable counts as not known to be busy (the start
    itself then says what is wrong).

    A detached run's collector would find it too, but only after `runs start` (or a
    schedule's tick) returned, and would record the run Failed: with `--if-busy skip`, a
    busy cluster is a skip, not a failure."""
    from loadmgr.errors import LoadmgrError
    from loadmgr.locust.client import LocustClient
    from loadmgr.locust.protocol import BUSY_STATES

    try:
        with LocustClient.from_cluster(cluster, timeout=LOCUST_PEEK_TIMEOUT_SEC) as client:
            state = client.stats().get("state")
    except LoadmgrError:
        return None
    if state not in BUSY_STATES:
        return None
    return (
        f"Locust at {cluster.baseUrl} is already running a test loadmgr did not start "
        f"(state {state})"
    )
