"""Locust's own options as given (`--locust-option`) and locustfile bundles as stored
(issue 22, items 4 and 5): every owned option refused, the command line and /swarm form
each option becomes, and a bundle's hash and paths."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadmgr.models.documents import BundleFile, LocustfileBundle, bundle_sha256
from loadmgr.models.locust_options import (
    LOCUST_PARSER,
    OPTION_DESTS,
    OWNED_DESTS,
    check_stored_options,
    command_line,
    locust_dest,
    parse_locust_options,
    remote_builtin,
    swarm_form,
)

# Run in a child: importing Locust monkey-patches the process with gevent.
_REAL_PARSER = """
import contextlib, io, json, os, sys
for name in [n for n in os.environ if n.startswith("LOCUST_")]:
    del os.environ[name]
from locust.argument_parser import get_parser
parser = get_parser(default_config_files=[])
table = {a.dest: list(a.option_strings) for a in parser._actions if a.option_strings}
defaults = vars(parser.parse_known_args([])[0])
changed = []
for args in json.load(sys.stdin):
    try:  # --help and --version print and exit: not onto the answer
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            parsed = vars(parser.parse_known_args(args)[0])
    except BaseException:  # Locust refuses it (an ambiguous prefix, a bad value) or exits
        changed.append([])
        continue
    changed.append(sorted(d for d, v in parsed.items() if v != defaults.get(d)))
print(json.dumps({"table": table, "changed": changed}))
"""


def _real_parser(command_lines: list[list[str]]) -> dict[str, Any]:
    """Locust 2.47's own parser: its dest table, and the dests each command line sets."""
    done = subprocess.run(
        [sys.executable, "-c", _REAL_PARSER],
        input=json.dumps(command_lines), capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("LOCUST_")},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def _spellings(name: str) -> set[str]:
    return {name, name.replace("-", "_"), name.replace("_", "-"), name.upper(), f"--{name}"}


def _every_key() -> list[str]:
    """Every spelling of every prefix of every option string and dest of Locust's parser."""
    names = {s.lstrip("-") for strings in LOCUST_PARSER.values() for s in strings}
    names |= set(LOCUST_PARSER)
    keys = {
        spelled for n in names for end in range(1, len(n) + 1) for spelled in _spellings(n[:end])
    }
    return sorted(keys)


def test_the_parser_table_is_locust_s_own() -> None:
    real = _real_parser([])["table"]
    assert {dest: tuple(strings) for dest, strings in real.items()} == LOCUST_PARSER


def test_no_accepted_key_sets_an_owned_option_in_locust_s_own_parser() -> None:
    """Every prefix of every Locust option (its unique prefixes are what argparse's
    allow_abbrev accepts), in every spelling, as a flag and with a value: refused, or
    handed to Locust as a command line that sets no option loadmgr owns."""
    accepted: list[list[str]] = []
    for key in _every_key():
        for pair in (key, f"{key}=1"):
            try:
                accepted.append(command_line(parse_locust_options([pair])))
            except ValueError:
                pass
    changed = _real_parser(accepted)["changed"]
    owned = [
        (args, dests)
        for args, dests in zip(accepted, changed, strict=True)
        if OWNED_DESTS & set(dests)
    ]
    assert owned == []
    assert ["--loglevel=1"] in accepted and ["--tags", "1"] in accepted  # not all refused


@pytest.mark.parametrize("dest", sorted(OWNED_DESTS - {"user_classes"}))
def test_every_owned_option_and_its_prefixes_are_refused_in_any_spelling(dest: str) -> None:
    for string in LOCUST_PARSER[dest]:
        name = string.lstrip("-")
        shortest = 1 if len(name) == 1 else 2  # `-c` is no abbreviation of `--config`
        for end in range(shortest, len(name) + 1):
            for spelled in _spellings(name[:end]):
                if len(spelled) == 1 and spelled != name:
                    continue
                with pytest.raises(ValueError, match="set by loadmgr|abbreviates"):
                    parse_locust_options([f"{spelled}=1"])
    for spelled in _spellings(dest):  # its dest, as a /swarm form field names it
        with pytest.raises(ValueError, match="set by loadmgr"):
            parse_locust_options([f"{spelled}=1"])


@given(st.from_regex(r"[A-Za-z][A-Za-z0-9_-]{0,20}", fullmatch=True))
def test_an_accepted_key_is_a_full_locust_name_or_no_locust_option_at_all(key: str) -> None:
    try:
        [stored] = parse_locust_options([key])
    except ValueError:
        return
    dest = locust_dest(stored)
    flag = f"-{stored}" if len(stored) == 1 else f"--{stored}"
    if dest is None:  # a custom argument: no Locust option it could abbreviate
        assert not any(s.startswith(flag) for s in OPTION_DESTS)
    else:
        assert dest not in OWNED_DESTS and flag in LOCUST_PARSER[dest]


def test_stored_options_are_checked_again() -> None:
    assert check_stored_options({"L": "DEBUG", "T": "a", "x": ""}) == {
        "loglevel": "DEBUG", "tags": "a", "x": "",
    }  # fmt: skip
    for stored in ({"html": "/x"}, {"config": "/x"}, {"f": "/x"}, {"logf": "/x"}, {"a b": ""}):
        with pytest.raises(ValueError, match="--locust-option"):
            check_stored_options(stored)
        with pytest.raises(ValueError, match="--locust-option"):
            command_line(stored)


@pytest.mark.parametrize(
    "key", ["html_file", "csv_prefix", "stats_history_enabled", "num_users", "loglevel", "tags"]
)
def test_a_remote_master_is_handed_no_option_of_locust_s_own(key: str) -> None:
    assert remote_builtin({"item-path": "/x", key: "1"}) == key
    with pytest.raises(ValueError, match="--locust-option"):
        swarm_form({key: "1"})


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
