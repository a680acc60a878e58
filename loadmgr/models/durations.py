"""Durations as Locust writes them: `300`, `300s`, `5m`, `1h30m`."""

from __future__ import annotations

import re

# Seconds alone (`300`), or units in order (`1h30m`, `5m`, `90s`). A bare number after a
# unit (`1h30`) is refused: Locust would silently read it as `1h`.
_DURATION = re.compile(r"^(?:(?P<bare>\d+)|(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?)$")

# Far beyond any load test; keeps int conversions and date arithmetic sane.
MAX_DURATION_SEC = 366 * 24 * 3600


def parse_duration(text: str | int) -> int:
    """Seconds in `text`; raises ValueError with a readable message when malformed."""
    if isinstance(text, bool):
        raise ValueError(f"invalid duration {text!r}")
    if isinstance(text, int):
        seconds = text
    else:
        cleaned = text.strip().lower().replace(" ", "")
        match = _DURATION.match(cleaned)
        if not cleaned or match is None or not any(match.groupdict().values()):
            raise ValueError(f"invalid duration {text!r} (expected e.g. 300, 300s, 5m, 1h30m)")
        hours, minutes, secs, bare = (int(match.group(k) or 0) for k in ("h", "m", "s", "bare"))
        seconds = bare + hours * 3600 + minutes * 60 + secs
    if seconds < 0:
        raise ValueError(f"invalid duration {text!r}: must not be negative")
    if seconds > MAX_DURATION_SEC:
        raise ValueError(f"invalid duration {text!r}: longer than 366 days")
    return seconds


def format_duration(seconds: float | None) -> str:
    """`5400` → `1h30m`; the inverse of parse_duration for whole seconds."""
    if seconds is None:
        return "-"
    total = int(round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    if hours:
        parts.append(f"{hours}h")
    if minutes:
        parts.append(f"{minutes}m")
    if secs or not parts:
        parts.append(f"{secs}s")
    return "".join(parts)
