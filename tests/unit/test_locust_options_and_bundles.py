"""Locust's own options as given (`--locust-option`) and locustfile bundles as stored
(issue 22, items 4 and 5): every owned option refused, the command line and /swarm form
each option becomes, and a bundle's hash and paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadmgr.models.documents import BundleFile, LocustfileBundle, bundle_sha256
from loadmgr.models.locust_options import (
    OWNED,
    command_line,
    parse_locust_options,
    swarm_form,
)


@pytest.mark.parametrize("key", sorted(OWNED))
def test_every_owned_option_is_refused_in_any_spelling(key: str) -> None:
    for spelled in (key, f"--{key}", key.replace("-", "_"), key.upper()):
        with pytest.raises(ValueError, match="is set by loadmgr"):
            parse_locust_options([f"{spelled}=1"])


def test_options_become_locust_arguments_and_swarm_fields() -> None:
    options = parse_locust_options(["tags=a, b", "--exclude-tags=slow", "item-path=/x=y", "flag"])
    assert options == {"tags": "a, b", "exclude-tags": "slow", "item-path": "/x=y", "flag": ""}
    assert command_line(options) == [
        "--tags", "a", "b", "--exclude-tags", "slow", "--item-path=/x=y", "--flag",
    ]  # fmt: skip
    assert swarm_form(options) == [("item_path", "/x=y"), ("flag", "true")]


@pytest.mark.parametrize("pair", ["=1", "1x=2", "a b=1", "x=" + "v" * 1001, "x=a\nb"])
def test_a_malformed_option_is_refused(pair: str) -> None:
    with pytest.raises(ValueError, match="--locust-option"):
        parse_locust_options([pair])


@given(st.lists(st.tuples(st.text(min_size=1), st.binary()), max_size=5))
def test_the_bundle_hash_tells_apart_any_two_different_file_lists(
    files: list[tuple[str, bytes]],
) -> None:
    unique = dict(files)
    pairs = list(unique.items())
    assert bundle_sha256(pairs) == bundle_sha256(list(reversed(pairs)))  # order given
    if pairs:
        path, data = pairs[0]
        moved = [(path + "x", data), *pairs[1:]]
        if dict(moved) != unique:
            assert bundle_sha256(moved) != bundle_sha256(pairs)
        # A byte moved from content into the name is another bundle.
        if data:
            shifted = [(path + chr(data[0]), data[1:]), *pairs[1:]]
            assert bundle_sha256(shifted) != bundle_sha256(pairs)


@pytest.mark.parametrize("path", ["", "/etc/passwd", "../x", "a/../b", "a//b", "./a", "a\\b"])
def test_a_stored_path_never_leaves_its_folder(path: str) -> None:
    with pytest.raises(ValueError):
        BundleFile(path=path, content="")


def test_binary_files_round_trip_and_entries_name_files() -> None:
    binary = BundleFile.of("data/x.bin", b"\xff\x00")
    assert binary.encoding == "base64" and binary.data() == b"\xff\x00"
    bundle = LocustfileBundle(entries=["."], files=[binary, BundleFile.of("a.py", b"")])
    assert bundle.sha256() == bundle_sha256([("data/x.bin", b"\xff\x00"), ("a.py", b"")])
    with pytest.raises(ValueError, match="not one of its files"):
        LocustfileBundle(entries=["b.py"], files=[BundleFile.of("a.py", b"")])


def test_a_log_over_its_cap_keeps_its_start_a_marker_and_its_end(tmp_path: Path) -> None:
    from loadmgr.locust.logs import cut_log

    log = tmp_path / "worker.log"
    log.write_bytes(b"start\n" + b"x" * 1_000_000 + b"\nlast words\n")
    dropped = cut_log(log, 200_000)
    text = log.read_bytes()
    assert len(text) <= 200_000 and dropped > 800_000
    assert text.startswith(b"start\n") and text.endswith(b"\nlast words\n")
    assert f"{dropped:,} bytes of this log dropped here".encode() in text
    assert cut_log(log, 200_000) == 0  # under the cap: left alone
