"""The run report's fast path (issue 26, case 13 of docs/benchmarks.md): what it skips
and what it must still give exactly."""

from __future__ import annotations

import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from loadmgr.service.analysis.change_points import Detection, detect_shifts, noise_sigma


def _modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running `code`."""
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    return set(done.stdout.split())


def test_a_series_that_cannot_shift_never_imports_ruptures() -> None:
    """ruptures (with scipy: ~0.8 s of imports) only for a series that can hold a shift,
    numpy only for one with noise: a flat or short one is answered without them."""
    code = (
        "from loadmgr.service.analysis.change_points import Detection, detect_shifts\n"
        "assert detect_shifts([5.0] * 30, Detection()) == []\n"
        "assert detect_shifts([1.0, 9.0, 1.0, 9.0], Detection()) == []\n"
        "assert detect_shifts([], Detection()) == []\n"
    )
    loaded = _modules_after(code)
    assert "ruptures" not in loaded
    assert "numpy" not in loaded
    assert not any(name.startswith("scipy") for name in loaded)


@settings(max_examples=200, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False), st.integers(0, 200))
def test_the_flat_shortcut_is_what_the_search_would_answer(value: float, count: int) -> None:
    """A series of one value has no noise (`noise_sigma` 0), which the search answers with
    no change: what the shortcut before numpy answers."""
    series = [value] * count
    assert noise_sigma(series) == 0.0
    assert detect_shifts(series, Detection()) == []
