"""Reading a locustfile the way Locust's `-f` takes it: one file, a folder (a package or a
plain folder of modules and data files), or several paths joined by commas (`a.py,b.py`).

One file is stored as it always was (its text and the sha256 of its bytes). Anything more
is a bundle: every file under the folders named, relative to the folder they share, and
one sha256 over all of them (`bundle_sha256`), so a change to any file is drift. Python
files are compiled, never imported or run. Left out of a folder: `__pycache__`, `.git` and
every other hidden name, `*.pyc`, and symlinks that lead out of the folder (a symlinked
folder is not followed). Bounded by BUNDLE_MAX_FILES and BUNDLE_MAX_BYTES (exit 2 beyond).
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadmgr.errors import ValidationFailed
from loadmgr.local_files import read_regular_file
from loadmgr.models import LOCAL_CLUSTER_ID
from loadmgr.models.documents import (
    BUNDLE_MAX_BYTES,
    BUNDLE_MAX_FILES,
    LOCUSTFILE_MAX_BYTES,
    BundleFile,
    LocustfileBundle,
)


@dataclass(frozen=True)
class Locustfile:
    """A locustfile as stored with its test: the name given, its content (one file) or
    bundle (several), and its hash."""

    name: str
    content: str | None
    sha256: str | None
    bundle: LocustfileBundle | None = None

    @property
    def stored(self) -> bool:
        return self.content is not None or self.bundle is not None


def read_locustfile(path_text: str, cluster_id: str) -> Locustfile:
    """Read and check a local locustfile; on a remote cluster a name deployed there is allowed.

    A path that exists must be readable: a file must be regular UTF-8 whose Python
    compiles; a FIFO, a device, an unreadable file or a syntax error is refused now, not
    when a run starts.
    """
    parts = [part.strip() for part in path_text.split(",")] if "," in path_text else [path_text]
    paths = [Path(part).expanduser() for part in parts if part]
    missing = [str(path) for path in paths if not os.path.exists(path)]
    if missing or not paths:
        if cluster_id == LOCAL_CLUSTER_ID:
            shown = missing[0] if len(parts) > 1 and missing else path_text
            raise ValidationFailed(
                f"locustfile {shown!r} not found",
                hint="the local cluster runs a locustfile from this machine: give its path",
            )
        return Locustfile(path_text, None, None)
    if len(paths) == 1 and not paths[0].is_dir():
        data = read_regular_file(paths[0], "locustfile", max_bytes=LOCUSTFILE_MAX_BYTES)
        content = _python_text(data, path_text)
        return Locustfile(path_text, content, hashlib.sha256(data).hexdigest())
    bundle = read_bundle(paths, path_text)
    return Locustfile(path_text, None, bundle.sha256(), bundle)


def read_bundle(paths: list[Path], name: str) -> LocustfileBundle:
    """Every file of the folders and files named, relative to the folder they share."""
    resolved = [path.resolve() for path in paths]
    root = Path(os.path.commonpath([p if p.is_dir() else p.parent for p in resolved]))
    found: dict[str, Path] = {}
    entries: list[str] = []
    for path in resolved:
        if path.is_dir():
            found.update(_walk(path, root, name))
            entries.append(path.relative_to(root).as_posix() if path != root else ".")
        else:
            if path.suffix != ".py":
                raise ValidationFailed(
                    f"locustfile {str(path)!r} does not end with .py (Locust loads only those)"
                )
            found[path.relative_to(root).as_posix()] = path
            entries.append(path.relative_to(root).as_posix())
        _check_count(found, name)
    return LocustfileBundle(entries=list(dict.fromkeys(entries)), files=_read_all(found, name))


def _read_all(found: dict[str, Path], name: str) -> list[BundleFile]:
    files: list[BundleFile] = []
    left = BUNDLE_MAX_BYTES
    for relative in sorted(found):
        try:
            data = read_regular_file(found[relative], "locustfile file", max_bytes=left)
        except ValidationFailed as exc:
            if "larger than" not in exc.message:
                raise
            raise ValidationFailed(
                f"locustfile {name!r} is larger than {BUNDLE_MAX_BYTES // 1_000_000} MB "
                f"in all (at {relative})",
                hint="leave large data files out of the locustfile's folder",
            ) from None
        left -= len(data)
        if relative.endswith(".py"):
            _python_text(data, relative)
        files.append(BundleFile.of(relative, data))
    if not any(Path(path).suffix == ".py" for path in found):
        raise ValidationFailed(f"locustfile {name!r} has no Python file (.py)")
    return files


def _skipped(name: str) -> bool:
    return name.startswith(".") or name == "__pycache__" or name.endswith(".pyc")


def _walk(folder: Path, root: Path, name: str) -> dict[str, Path]:
    """The files under `folder` (resolved) as {path relative to `root`: path}."""
    found: dict[str, Path] = {}
    for directory, subdirectories, filenames in os.walk(folder):  # never into symlinks
        subdirectories[:] = sorted(d for d in subdirectories if not _skipped(d))
        for filename in sorted(filenames):
            path = Path(directory) / filename
            if _skipped(filename) or not path.resolve().is_relative_to(folder):
                continue  # hidden, compiled, or a symlink out of the folder
            if path.is_symlink() and not path.resolve().is_file():
                continue
            found[path.relative_to(root).as_posix()] = path
            _check_count(found, name)
    return found


def _check_count(found: dict[str, Path], name: str) -> None:
    if len(found) > BUNDLE_MAX_FILES:
        raise ValidationFailed(
            f"locustfile {name!r} has more than {BUNDLE_MAX_FILES} files",
            hint="give a folder with the locustfile and what it needs only",
        )


def _python_text(data: bytes, name: str) -> str:
    try:
        content = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValidationFailed(f"locustfile {name!r} is not UTF-8 text") from None
    check_python(data, name)
    return content


def check_python(source: bytes, name: str) -> None:
    """ValidationFailed unless `source` compiles; it is compiled only, never executed."""
    try:
        with warnings.catch_warnings():
            # e.g. an invalid escape sequence: Locust's own import will say so, not us.
            warnings.simplefilter("ignore")
            compile(source, name, "exec", dont_inherit=True)
    except SyntaxError as exc:
        where = f" at line {exc.lineno}" if exc.lineno else ""
        raise ValidationFailed(
            f"locustfile {name!r} has a syntax error{where}: {exc.msg}",
            hint=f"check it with: python -m py_compile {name}",
        ) from None
    except (ValueError, RecursionError, MemoryError) as exc:  # NUL bytes, absurd nesting
        raise ValidationFailed(
            f"locustfile {name!r} cannot be compiled: {exc or type(exc).__name__}"
        ) from None


def locustfile_fields(locustfile: Locustfile) -> dict[str, Any]:
    """The test's stored fields for a locustfile (a bundle replaces a single file and back)."""
    bundle = locustfile.bundle
    return {
        "locustfile": locustfile.name,
        "locustfileContent": locustfile.content,
        "locustfileSha256": locustfile.sha256,
        "locustfileBundle": bundle.model_dump() if bundle is not None else None,
        "shape": shape_of(locustfile.content, bundle, locustfile.name),
    }


def shape_of(
    content: str | None, bundle: LocustfileBundle | None, name: str = "locustfile.py"
) -> dict[str, Any] | None:
    """The load shape a stored locustfile declares (models/shapes.py), None without one."""
    from loadmgr.models.shapes import find_shape

    if content is not None:
        return find_shape([(name, content)])
    if bundle is None:
        return None
    return find_shape(
        (item.path, item.content)
        for item in bundle.files
        if item.path.endswith(".py") and item.encoding == "utf-8"
    )
