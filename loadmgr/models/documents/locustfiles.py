"""A locustfile that is more than one file (a folder, a package, `a.py,b.py`), stored whole
on its test (`locustfileBundle`), and the options a test or run hands to Locust itself
(`locustOptions`).

A single-file locustfile keeps the fields it always had (`locustfileContent`, its sha256
over the file's bytes), so documents written before bundles read the same. A bundle's
sha256 is `bundle_sha256()` over all its files; see docs/design.md, "Locustfiles".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import posixpath
from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# The bounds of a bundle: a folder past them is refused when read (exit 2), so a test
# document stays far below MongoDB's 16 MB (base64 of binary files adds a third).
BUNDLE_MAX_FILES = 200
BUNDLE_MAX_BYTES = 4_000_000
BUNDLE_PATH_MAX = 500


def bundle_sha256(files: Iterable[tuple[str, bytes]]) -> str:
    """One hash over (relative path, bytes) pairs, sorted by path: for each, the path in
    UTF-8, a NUL, the length in decimal, a NUL, then the bytes (no pair can run into the
    next, whatever the names and contents)."""
    digest = hashlib.sha256()
    for path, data in sorted(files):
        digest.update(path.encode("utf-8") + b"\0" + str(len(data)).encode() + b"\0")
        digest.update(data)
    return digest.hexdigest()


def safe_relative_path(path: str) -> str:
    """`path` if it is relative, '/'-separated and stays inside its folder; ValueError else."""
    parts = path.split("/")
    if (
        not path
        or len(path) > BUNDLE_PATH_MAX
        or posixpath.isabs(path)
        or "\\" in path
        or "\0" in path
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise ValueError(f"not a safe relative path inside the locustfile folder: {path!r}")
    return path


class BundleFile(BaseModel):
    """One file of a bundle: UTF-8 text as it is, anything else in base64."""

    model_config = ConfigDict(extra="ignore")

    path: str  # relative, '/'-separated
    content: str
    encoding: str = "utf-8"  # or "base64"

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str) -> str:
        return safe_relative_path(value)

    @field_validator("encoding")
    @classmethod
    def _check_encoding(cls, value: str) -> str:
        if value not in ("utf-8", "base64"):
            raise ValueError(f"unknown encoding {value!r} (utf-8 or base64)")
        return value

    @classmethod
    def of(cls, path: str, data: bytes) -> BundleFile:
        try:
            return cls(path=path, content=data.decode("utf-8"))
        except UnicodeDecodeError:
            return cls(path=path, content=base64.b64encode(data).decode(), encoding="base64")

    def data(self) -> bytes:
        if self.encoding == "utf-8":
            return self.content.encode("utf-8")
        try:
            return base64.b64decode(self.content, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"{self.path}: bad base64 content ({exc})") from None


class LocustfileBundle(BaseModel):
    """A locustfile of several files: what Locust's `-f` is given (`entries`, relative to
    the folder the files are written to; `.` is the folder itself) and every file."""

    model_config = ConfigDict(extra="ignore")

    entries: list[str] = Field(min_length=1)
    files: list[BundleFile] = Field(min_length=1, max_length=BUNDLE_MAX_FILES)

    @field_validator("entries")
    @classmethod
    def _check_entries(cls, value: list[str]) -> list[str]:
        return [entry if entry == "." else safe_relative_path(entry) for entry in value]

    @model_validator(mode="after")
    def _check_files(self) -> LocustfileBundle:
        paths = [file.path for file in self.files]
        if len(set(paths)) != len(paths):
            raise ValueError("a locustfile bundle names a file twice")
        known = set(paths)
        for entry in self.entries:
            if entry != "." and entry not in known:
                raise ValueError(f"locustfile entry {entry!r} is not one of its files")
        return self

    def sha256(self) -> str:
        return bundle_sha256((file.path, file.data()) for file in self.files)

    @property
    def size(self) -> int:
        return sum(len(file.data()) for file in self.files)
