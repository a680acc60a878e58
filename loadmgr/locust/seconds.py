"""The loadmgr plugin's per-second data (`GET /loadmgr/v1/seconds`), checked before use.

Everything a Locust master (or a proxy in front of it) sends is untrusted: wrong types,
non-finite or negative numbers, huge integers and oversized lists are refused here with
one `InvalidPayload`, so nothing downstream ever sees them (docs/plugin.md has the format).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, NamedTuple

from loadmgr.errors import ClusterError
from loadmgr.models.histogram import MAX_BUCKET_MS, MAX_COUNT, Histogram, steps_fault
from loadmgr.models.stats.generator import GeneratorReading, read_generator

SUPPORTED_VERSIONS = frozenset({1})
MAX_SECONDS = 3600  # per answer; the collector asks for at most this many
MAX_ENTRIES = 5000  # (method, name) keys in one second
MAX_BUCKETS = 5000  # histogram buckets in one entry
# Entries in one whole answer (seconds x entries): within every per-second limit, 590
# seconds of 1,100 names once cost 3.85 GB and 40 s to parse. The plugin folds a second's
# names past its MAX_KEYS_PER_SECOND (2,000) into one "(other)", and the collector asks
# for ASK_SECONDS at a time, so a real answer holds at most ASK_SECONDS x 2,001 entries.
PLUGIN_KEYS_PER_SECOND = 2_001
ASK_SECONDS = 100
MAX_ANSWER_ENTRIES = ASK_SECONDS * PLUGIN_KEYS_PER_SECOND
# Characters of a request name and method: every document loadmgr writes fits MongoDB's
# 16 MiB at these (service/collection/fitting.py has the sums).
MAX_NAME = 2_000
MAX_METHOD = 100
# A real name may be longer (a URL with a long query and no `name=`): such a name is kept,
# shortened by `stored_name`, not taken for nonsense. Past this it cannot be a real one.
MAX_RAW_NAME = 100_000
_DIGEST_CHARS = 16
MAX_EPOCH = 2**40  # seconds: far beyond any real clock, far below float trouble
KNOWN_STATES = frozenset(
    {"ready", "spawning", "running", "cleanup", "stopping", "stopped", "missing"}
)


class InvalidPayload(ClusterError):
    """Locust (or something in front of it) answered with data that cannot be true."""


class LocustRestarted(ClusterError):
    """The master answering is not the one that ran the run's test: it restarted (its test
    start changed, or its counters fell). What it says now is not this run's."""


class SecondEntry(NamedTuple):
    """One (method, name)'s requests that completed within one second (or within the
    seconds of one window, merged by the plugin: then `histogram` is its checked flat
    step array, [ms0, n0, ms1 - ms0, n1, ...], as the plugin sent it)."""

    # A NamedTuple, not a dataclass: thousands are made per poll, and tuples build fastest.
    method: str
    name: str
    requests: int
    failures: int
    histogram: Histogram | list[int]


class Second(NamedTuple):
    """A second's entries; or, merged by the plugin, the seconds `first`..`t` of one
    window, `with_data` of them with data."""

    t: int
    entries: tuple[SecondEntry, ...]
    first: int | None = None  # None: the second `t` alone
    with_data: int = 1


@dataclass(frozen=True)
class SecondsBatch:
    """One answer of the plugin: complete seconds after the cursor, and the cluster's state."""

    version: int
    now: float
    complete: int  # every second before this is final: no more data will come for it
    oldest: int | None
    test_started: float | None
    state: str
    user_count: int
    worker_count: int | None
    seconds: tuple[Second, ...]
    more: bool
    final: bool = False  # the test is over and every worker's last report is in
    workers_without_plugin: int | None = None
    shape: str | None = None  # the load shape class Locust runs (a newer plugin says)
    # Who stopped the test: shape, run_time, request, locustfile (a newer plugin says).
    stop_cause: str | None = None
    # The generator's CPU and workers as Locust measures them (a newer plugin says; what
    # is no measure reads as unknown, never as a refused answer).
    generator: GeneratorReading | None = None


def stored_name(name: str) -> str:
    """`name` as loadmgr keeps it: unchanged up to MAX_NAME characters; a longer one cut,
    with a digest of the whole, so distinct names stay distinct and every source (the
    plugin's seconds, `/stats/requests`, its errors) gives the same key for one request."""
    if len(name) <= MAX_NAME:
        return name
    whole = name.encode("utf-8", "surrogatepass")
    digest = hashlib.sha256(whole).hexdigest()[:_DIGEST_CHARS]
    return f"{name[: MAX_NAME - _DIGEST_CHARS - 2]}…#{digest}"


def _fail(what: str) -> InvalidPayload:
    return InvalidPayload(f"the loadmgr plugin sent an invalid answer: {what}")


def _int(value: Any, what: str, *, low: int = 0, high: int = MAX_COUNT) -> int:
    # bool is an int in Python, and 2.0 is a valid JSON integer for some encoders.
    if isinstance(value, bool):
        raise _fail(f"{what} is not a number")
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise _fail(f"{what} is not a whole number")
        value = int(value)
    if not isinstance(value, int):
        raise _fail(f"{what} is not a number")
    if not low <= value <= high:
        raise _fail(f"{what} {value} is out of range")
    return value


def _float(value: Any, what: str, *, high: float = float(MAX_EPOCH)) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(f"{what} is not a number")
    number = float(value)
    if not math.isfinite(number) or not 0 <= number <= high:
        raise _fail(f"{what} {value!r} is out of range")
    return number


def _text(value: Any, what: str, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise _fail(f"{what} is not a string of at most {limit:,} characters")
    return value


def _histogram(value: Any, what: str) -> Histogram:
    if not isinstance(value, list) or len(value) > MAX_BUCKETS:
        raise _fail(f"{what} histogram is not a list of [ms, count] pairs")
    histogram: Histogram = {}
    # The common case in one comprehension: pairs of plain ints within range.
    if all(
        type(pair) is list
        and len(pair) == 2
        and type(pair[0]) is int
        and type(pair[1]) is int
        and 0 <= pair[0] <= MAX_BUCKET_MS
        and 0 <= pair[1] <= MAX_COUNT
        for pair in value
    ):
        for ms, count in value:
            histogram[ms] = histogram.get(ms, 0) + count
        return histogram
    for pair in value:
        if not isinstance(pair, list) or len(pair) != 2:
            raise _fail(f"{what} histogram is not a list of [ms, count] pairs")
        ms = _int(pair[0], f"{what} response time", high=MAX_BUCKET_MS)
        histogram[ms] = histogram.get(ms, 0) + _int(pair[1], f"{what} count")
    return histogram


def _plainly_fine(method: Any, name: Any, requests: Any, failures: Any) -> bool:
    """An entry's method, name and counts as almost every entry has them, in one
    expression: text within its bounds, counts whole and in order."""
    return (
        type(method) is str
        and type(name) is str
        and len(method) <= MAX_METHOD
        and len(name) <= MAX_NAME
        and type(requests) is int
        and type(failures) is int
        and 0 <= failures <= requests <= MAX_COUNT
    )


def _entry(value: Any, t: int) -> SecondEntry:
    if not isinstance(value, list) or len(value) != 5:
        raise _fail(f"an entry of second {t} is not [method, name, requests, failures, hist]")
    method, name, requests, failures, hist = value
    # The common case checked at once (the collector's hot path); anything odd goes
    # through the checks below, which say what is wrong.
    if _plainly_fine(method, name, requests, failures):
        histogram = _histogram(hist, name)
        if sum(histogram.values()) <= requests:
            return SecondEntry(method, name, requests, failures, histogram)
    method = _text(value[0], "a method", MAX_METHOD)
    name = stored_name(_text(value[1], "a name", MAX_RAW_NAME))
    what = f"{method} {name[:60]} at {t}"
    requests = _int(value[2], f"{what} requests")
    failures = _int(value[3], f"{what} failures")
    if failures > requests:
        raise _fail(f"{what} has more failures ({failures}) than requests ({requests})")
    histogram = _histogram(value[4], what)
    if sum(histogram.values()) > requests:
        raise _fail(f"{what} histogram counts more requests than the entry")
    return SecondEntry(method, name, requests, failures, histogram)


def parse_seconds(
    payload: Any, after: int | None = None, windows: tuple[int, int] | None = None
) -> SecondsBatch:
    """A checked `SecondsBatch`; InvalidPayload for anything the plugin would never send.

    `windows`: the (origin, interval) the seconds were asked merged on. A plugin that
    merges says so (`windows`, the same pair) and each item is one window's seconds; an
    older one answers per second, read as before (docs/plugin.md)."""
    if not isinstance(payload, dict) or payload.get("plugin") != "loadmgr":
        raise _fail("not a loadmgr plugin answer")
    version = payload.get("version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise _fail("no protocol version")
    if version not in SUPPORTED_VERSIONS:
        raise InvalidPayload(
            f"the cluster's loadmgr plugin speaks protocol {version}, which this loadmgr "
            f"cannot read (it reads {', '.join(map(str, sorted(SUPPORTED_VERSIONS)))})",
            hint="install the matching plugin: 'loadmgr clusters plugin --write PATH'",
        )
    state = payload.get("state")
    if not isinstance(state, str) or state not in KNOWN_STATES:
        raise _fail(f"unknown state {str(state)[:40]!r}")
    complete = _int(payload.get("complete"), "complete", high=MAX_EPOCH)
    raw_seconds = payload.get("seconds")
    if not isinstance(raw_seconds, list) or len(raw_seconds) > MAX_SECONDS:
        raise _fail("seconds is not a list of at most 3600 items")
    _check_answer_size(raw_seconds)
    merged = _merged_on(payload.get("windows"), windows)
    seconds: list[Second] = []
    previous = -1 if after is None else after
    for item in raw_seconds:
        if not isinstance(item, dict):
            raise _fail("a second is not an object")
        t = _int(item.get("t"), "a second's t", high=MAX_EPOCH)
        first, count = t, 1
        if merged is not None:
            first, count = _window_span(item, t, merged)
        if first <= previous or t >= complete:
            raise _fail(f"second {t} is out of order or not yet complete")
        entries = item.get("entries")
        if not isinstance(entries, list) or len(entries) > MAX_ENTRIES:
            raise _fail(f"second {t} has no list of at most {MAX_ENTRIES} entries")
        read = _entry if merged is None else _window_entry
        checked = tuple(read(entry, t) for entry in entries)
        seconds.append(Second(t, checked) if merged is None else Second(t, checked, first, count))
        previous = t
    worker_count = payload.get("worker_count")
    oldest = payload.get("oldest")
    started = payload.get("test_started")
    more = payload.get("more", False)
    final = payload.get("final", False)
    if not isinstance(more, bool) or not isinstance(final, bool):
        raise _fail("more or final is not true or false")
    lacking = payload.get("workers_without_plugin")
    now = _float(payload.get("now"), "now")
    told = payload.get("generator")
    return SecondsBatch(
        version=version,
        now=now,
        complete=complete,
        oldest=None if oldest is None else _int(oldest, "oldest", high=MAX_EPOCH),
        test_started=None if started is None else _float(started, "test_started"),
        state=state,
        user_count=_int(payload.get("user_count"), "user_count", high=10**9),
        worker_count=None if worker_count is None else _int(worker_count, "worker_count"),
        seconds=tuple(seconds),
        more=more,
        final=final,
        workers_without_plugin=None if lacking is None else _int(lacking, "workers_without_plugin"),
        shape=_word(payload.get("shape")),
        stop_cause=_word(payload.get("stop_cause")),
        generator=(
            read_generator(now, state, told.get("workers"), told.get("master_cpu"))
            if isinstance(told, dict)
            else None
        ),
    )


def _merged_on(said: Any, asked: tuple[int, int] | None) -> tuple[int, int] | None:
    """The (origin, interval) the answer's seconds are merged on: None for seconds one by
    one (an older plugin ignores the ask); only ever the pair asked for."""
    if said is None:
        return None
    if asked is None or said != {"origin": asked[0], "interval": asked[1]}:
        raise _fail("seconds merged on windows that were not asked for")
    return asked


def _window_span(item: dict[str, Any], t: int, windows: tuple[int, int]) -> tuple[int, int]:
    """(first second, seconds with data) of a merged item: all of one window."""
    first = _int(item.get("first"), "a window's first second", high=t)
    count = _int(item.get("n"), "a window's seconds", low=1, high=t - first + 1)
    origin, interval = windows
    if max(0, (first - origin) // interval) != max(0, (t - origin) // interval):
        raise _fail(f"seconds {first} to {t} are not of one window")
    return first, count


def _window_entry(value: Any, t: int) -> SecondEntry:
    """An entry of a merged window: its histogram as a flat step array, kept as sent."""
    if not isinstance(value, list) or len(value) != 5:
        raise _fail(f"an entry of second {t} is not [method, name, requests, failures, hist]")
    method, name, requests, failures, steps = value
    if (
        _plainly_fine(method, name, requests, failures)
        and type(steps) is list
        and len(steps) <= 2 * MAX_BUCKETS
        and steps_fault(steps) is None
        and sum(steps[1::2]) <= requests
    ):
        return SecondEntry(method, name, requests, failures, steps)
    # Anything odd: the checks of an entry one second long say what is wrong (a long name
    # is shortened there), on the histogram as pairs.
    if type(steps) is not list or len(steps) > 2 * MAX_BUCKETS or steps_fault(steps):
        fault = "is not a list" if type(steps) is not list else steps_fault(steps)
        raise _fail(f"{str(name)[:60]} at {t}: {fault or 'has too many buckets'}")
    pairs = [[ms, count] for ms, count in zip(accumulate(steps[0::2]), steps[1::2], strict=True)]
    entry = _entry([method, name, requests, failures, pairs], t)
    return entry._replace(histogram=steps)


def _check_answer_size(raw_seconds: list[Any]) -> None:
    """Refuse an answer of more than MAX_ANSWER_ENTRIES entries before building any."""
    total = 0
    for item in raw_seconds:
        entries = item.get("entries") if isinstance(item, dict) else None
        total += len(entries) if isinstance(entries, list) else 0
    if total > MAX_ANSWER_ENTRIES:
        raise _fail(f"{total:,} entries in one answer (at most {MAX_ANSWER_ENTRIES:,})")


def _word(value: Any) -> str | None:
    """A short name the plugin told (a class name, a cause); anything else is unknown."""
    if isinstance(value, str) and 0 < len(value) <= 200 and value.isprintable():
        return value
    return None
