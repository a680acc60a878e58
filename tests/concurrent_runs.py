"""Cases that each wait a fixed minimum (a lost-timeout, a fake's lie delay), run at once.

Each case's command is a `loadmgr` process of its own, in the test's environment (its
database, its home), so the cases wait their minimum together instead of one after the
other; each case is then checked by name, and a failure says which case it was.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import CliResult, loadmgr_command, reaped
from tests.polling import wait_for


@dataclass
class Ended(CliResult):
    """A case's command as it ended, and how long it took from the start of them all."""

    took: float = 0.0


def run_at_once(
    commands: Mapping[str, Sequence[str]], folder: Path, timeout: float = 120
) -> dict[str, Ended]:
    """Each case's `loadmgr` arguments run at once; their ends by case, none left running.

    Output goes to files (a pipe nobody reads while another case is awaited could fill
    and stall its writer)."""
    folder.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    ended_at: dict[str, float] = {}
    with ExitStack() as stack:
        processes: dict[str, subprocess.Popen[bytes]] = {}
        for number, (case, argv) in enumerate(commands.items()):
            out = stack.enter_context(open(folder / f"{number}.out", "wb"))  # noqa: SIM115
            err = stack.enter_context(open(folder / f"{number}.err", "wb"))  # noqa: SIM115
            process = subprocess.Popen([*loadmgr_command(), *argv], stdout=out, stderr=err)
            processes[case] = stack.enter_context(reaped(process))

        def all_ended() -> bool:
            for case, process in processes.items():
                if case not in ended_at and process.poll() is not None:
                    ended_at[case] = time.monotonic()
            return len(ended_at) == len(processes)

        finished = wait_for(all_ended, timeout=timeout)
        assert finished, f"still running after {timeout} s: {set(processes) - set(ended_at)}"
        codes = {case: process.returncode for case, process in processes.items()}
    return {
        case: Ended(
            codes[case],
            (folder / f"{number}.out").read_text(errors="replace"),
            (folder / f"{number}.err").read_text(errors="replace"),
            ended_at[case] - began,
        )
        for number, case in enumerate(commands)
    }


def check_each(checks: Mapping[str, Callable[[], None]]) -> None:
    """Every case's check, run to the end; the failing cases named, each with its message."""
    failures: dict[str, str] = {}
    for case, check in checks.items():
        try:
            check()
        except AssertionError as failure:
            failures[case] = str(failure) or repr(failure)
    _assert_none_failed(failures)


def each_at_once(cases: Mapping[str, Callable[[], None]], timeout: float = 240) -> None:
    """Every case in a thread of its own, all at once (cases that wait on processes and
    fakes, never on the in-process `cli`, which is one at a time); failing cases named."""
    failures: dict[str, str] = {}

    def run(case: str, body: Callable[[], None]) -> None:
        try:
            body()
        except Exception as failure:  # noqa: BLE001 - each case's failure, reported by name
            failures[case] = f"{type(failure).__name__}: {failure}"

    threads = {
        case: threading.Thread(target=run, args=(case, body), daemon=True)
        for case, body in cases.items()
    }
    deadline = time.monotonic() + timeout
    for thread in threads.values():
        thread.start()
    for thread in threads.values():
        thread.join(max(0.0, deadline - time.monotonic()))
    running = [case for case, thread in threads.items() if thread.is_alive()]
    assert not running, f"still running after {timeout} s: {running}"
    _assert_none_failed(failures)


def _assert_none_failed(failures: Mapping[str, str]) -> None:
    assert not failures, "\n".join(f"[{case}] {message}" for case, message in failures.items())
