"""The load generator's health: what Locust measures of its own processes, per interval
and per run (docs/verdicts.md, "The load generator").

A worker at 100 % CPU queues requests inside itself: latencies rise and the rate falls
while the service idles; a worker that dies lowers the load without a word. So each poll
reads Locust's own measures (every worker's CPU and memory, the master's CPU, who stopped
sending heartbeats), each interval stores what its polls saw (`generator`), and the run
keeps a summary (`generatorStats`) that the verdict reads.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# Locust's own warning level (locust.runners.CPU_WARNING_THRESHOLD): a worker at or above
# it may constrain the load and skew the response times it measures.
SATURATION_CPU_PCT = 90.0
SATURATION_CPU_RANGE = (10.0, 100.0)
# A worker saturated for at least this share of the judged window makes the run saturated.
SATURATED_SHARE = 0.10
# Workers read from one answer: beyond, the rest are not looked at (a bound, not a limit
# any real cluster reaches: a local cluster has at most 256).
MAX_WORKERS_READ = 4096
LOADING_STATES = frozenset({"spawning", "running"})


@dataclass(frozen=True)
class GeneratorReading:
    """What one poll read of the generator: each reporting worker's CPU (%), the largest
    worker memory (bytes), the master's CPU, and how many workers are missing (connected
    but silent for 3 heartbeats). `loading`: the test was spawning or running."""

    at: float
    loading: bool
    cpus: tuple[float, ...]
    master_cpu: float | None = None
    memory_max: int | None = None
    missing: int = 0
    reporting: int = 0  # workers not missing (their CPU may be unknown)


def _number(value: Any) -> float | None:
    """A measure as Locust reports it; None for anything that is not a sane one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and number >= 0 else None


def read_generator(
    at: float, state: str, workers: Any, master_cpu: Any = None
) -> GeneratorReading | None:
    """A reading from a master's `workers` list (`/stats/requests`, or the plugin's
    `generator.workers`: `{cpu_usage, memory_usage, state}` each) and the master's CPU.
    None when it says nothing of the generator (a standalone Locust without the plugin).
    Entries that are not workers, and numbers that are no measures, are left out."""
    if not isinstance(workers, list):
        return None
    cpus: list[float] = []
    memory: list[float] = []
    missing = reporting = 0
    for worker in workers[:MAX_WORKERS_READ]:
        if not isinstance(worker, Mapping):
            continue
        if worker.get("state") == "missing":
            missing += 1
            continue
        reporting += 1
        cpu = _number(worker.get("cpu_usage"))
        if cpu is not None:
            cpus.append(cpu)
        rss = _number(worker.get("memory_usage"))
        if rss is not None:
            memory.append(rss)
    return GeneratorReading(
        at=at,
        loading=state in LOADING_STATES,
        cpus=tuple(cpus),
        master_cpu=_number(master_cpu),
        memory_max=int(max(memory)) if memory else None,
        missing=missing,
        reporting=reporting,
    )


def interval_generator(
    readings: Sequence[GeneratorReading], interval_sec: float, saturation_pct: float
) -> dict[str, Any] | None:
    """An interval's `generator` from the readings of its window taken while the test
    loaded (at a stop, workers leave as they should): `workers` (reporting, at the last
    reading), `cpuMaxPct` (the busiest worker), `cpuAvgPct` (the mean worker), the
    master's `masterCpuPct` (its highest; the plugin only), `missingWorkers` (the most at
    once), `memMaxBytes`, and `saturatedSec`: the interval's seconds in which a worker was
    at or above `saturation_pct`. None without a reading taken while loading."""
    loading = [r for r in readings if r.loading]
    if not loading:
        return None
    cpus = [cpu for r in loading for cpu in r.cpus]
    masters = [r.master_cpu for r in loading if r.master_cpu is not None]
    memory = [r.memory_max for r in loading if r.memory_max is not None]
    hot = sum(1 for r in loading if r.cpus and max(r.cpus) >= saturation_pct)
    return {
        "workers": loading[-1].reporting,
        "cpuMaxPct": round(max(cpus), 1) if cpus else None,
        "cpuAvgPct": round(sum(cpus) / len(cpus), 1) if cpus else None,
        "masterCpuPct": round(max(masters), 1) if masters else None,
        "missingWorkers": max(r.missing for r in loading),
        "memMaxBytes": max(memory) if memory else None,
        "saturatedSec": round(interval_sec * hot / len(loading), 1),
    }


def check_saturation_cpu(value: float) -> float:
    """`--saturation-cpu PCT`: a percentage within SATURATION_CPU_RANGE; ValueError else."""
    low, high = SATURATION_CPU_RANGE
    if isinstance(value, bool) or not (isinstance(value, int | float) and low <= value <= high):
        raise ValueError(
            f"invalid --saturation-cpu: {value!r} (a CPU percentage from {low:g} to {high:g})"
        )
    return float(value)


def saturation_level(run: Any) -> float:
    """The CPU level a run's workers count as saturated at: its own (`saturationCpuPct`,
    from `--saturation-cpu` or its test), else SATURATION_CPU_PCT."""
    value = getattr(run, "saturationCpuPct", None)
    try:
        return check_saturation_cpu(value) if value is not None else SATURATION_CPU_PCT
    except ValueError:
        return SATURATION_CPU_PCT  # written by anything: the default rather than nonsense


@dataclass
class GeneratorTally:
    """The run's intervals' `generator` fields, kept as they are stored (a few numbers an
    interval), to summarise the run at its end (`generator_stats`)."""

    items: list[tuple[float | None, float, dict[str, Any]]]

    def __init__(self) -> None:
        self.items = []

    def add(self, window_start: float | None, interval_sec: Any, generator: Any) -> None:
        seconds = _number(interval_sec)
        if isinstance(generator, Mapping) and seconds is not None:
            self.items.append((window_start, seconds, dict(generator)))


def _count(value: Any) -> int:
    number = _number(value)
    return int(number) if number is not None else 0


def generator_stats(
    items: Iterable[tuple[float | None, float, Mapping[str, Any]]],
    *,
    warmup_sec: float,
    saturation_pct: float,
) -> dict[str, Any] | None:
    """The run's `generatorStats` from its intervals' (window start, seconds, generator):
    `peakCpuPct`, `peakMasterCpuPct`, `saturatedSec` of `judgedSec` (the intervals that
    start `warmup_sec` or more after the first), `saturationCpuPct`, `workersLost` (the most
    workers missing or gone below the most seen, while the test loaded), and `saturated`:
    a worker at or above the level for SATURATED_SHARE of the judged window. None when no
    interval read the generator."""
    items = list(items)
    starts = [start for start, _, _ in items if start is not None]
    judged_from = min(starts) + warmup_sec if starts and warmup_sec > 0 else None
    peak_cpu: float | None = None
    peak_master: float | None = None
    saturated = judged = 0.0
    most = lost = 0
    seen = False
    for start, seconds, generator in items:
        seen = True
        cpu, master = _number(generator.get("cpuMaxPct")), _number(generator.get("masterCpuPct"))
        if cpu is not None:
            peak_cpu = cpu if peak_cpu is None else max(peak_cpu, cpu)
        if master is not None:
            peak_master = master if peak_master is None else max(peak_master, master)
        workers, missing = _count(generator.get("workers")), _count(generator.get("missingWorkers"))
        most = max(most, workers + missing)
        lost = max(lost, missing, most - workers)
        if judged_from is None or start is None or start >= judged_from:
            judged += seconds
            saturated += min(seconds, _number(generator.get("saturatedSec")) or 0.0)
    if not seen:
        return None
    share = saturated / judged if judged > 0 else 0.0
    return {
        "peakCpuPct": peak_cpu,
        "peakMasterCpuPct": peak_master,
        "saturatedSec": round(saturated, 1),
        "judgedSec": round(judged, 1),
        "saturationCpuPct": saturation_pct,
        "maxWorkers": most,
        "workersLost": lost,
        "saturated": judged > 0 and share >= SATURATED_SHARE,
    }


def generator_condition(stats: Any) -> dict[str, Any] | None:
    """The run condition its `generatorStats` make, as a reason's details and sentence:
    saturated, a worker lost, or both; None when the generator kept up (or was not read).
    Read from a stored document: anything malformed counts as not recorded."""
    if not isinstance(stats, Mapping):
        return None
    lost = _count(stats.get("workersLost"))
    saturated = stats.get("saturated") is True
    if not lost and not saturated:
        return None
    parts = []
    if saturated:
        level = _number(stats.get("saturationCpuPct")) or SATURATION_CPU_PCT
        busy, judged = _number(stats.get("saturatedSec")) or 0.0, _number(stats.get("judgedSec"))
        of = f" of {judged:g}s judged" if judged else ""
        parts.append(f"a worker was at or above {level:g}% CPU for {busy:g}s{of}")
    if lost:
        most = _count(stats.get("maxWorkers"))
        of = f" of {most}" if most >= lost else ""
        parts.append(f"{lost} worker{'' if lost == 1 else 's'}{of} lost while loading")
    return {
        "message": f"the load generator was not trustworthy: {'; '.join(parts)}",
        "saturated": saturated,
        "workersLost": lost,
        "saturatedSec": _number(stats.get("saturatedSec")),
        "peakCpuPct": _number(stats.get("peakCpuPct")),
    }


def _pct(value: Any) -> str:
    number = _number(value)
    return "-" if number is None else f"{number:.0f}%"


def interval_words(generator: Any) -> str | None:
    """An interval's generator in a few words for the live view: `cpu 97% (avg 61%, 2
    workers, 1 missing)`; None when it was not read."""
    if not isinstance(generator, Mapping):
        return None
    missing = _count(generator.get("missingWorkers"))
    workers = _count(generator.get("workers"))
    more = f", {missing} missing" if missing else ""
    plural = "" if workers == 1 else "s"
    return (
        f"cpu {_pct(generator.get('cpuMaxPct'))} (avg {_pct(generator.get('cpuAvgPct'))}, "
        f"{workers} worker{plural}{more})"
    )


def stats_words(stats: Any) -> str | None:
    """The run's `generatorStats` in one line for `runs show`: `peak worker CPU 100%
    (master 3%); 30s of 60s judged at or above 90%; 1 worker lost of 2`."""
    if not isinstance(stats, Mapping):
        return None
    level = _number(stats.get("saturationCpuPct")) or SATURATION_CPU_PCT
    parts = [
        f"peak worker CPU {_pct(stats.get('peakCpuPct'))} "
        f"(master {_pct(stats.get('peakMasterCpuPct'))})",
        f"{_number(stats.get('saturatedSec')) or 0:g}s of {_number(stats.get('judgedSec')) or 0:g}s"
        f" judged at or above {level:g}%"
        + (" (saturated)" if stats.get("saturated") is True else ""),
    ]
    lost = _count(stats.get("workersLost"))
    if lost:
        parts.append(
            f"{lost} worker{'' if lost == 1 else 's'} lost of {_count(stats.get('maxWorkers'))}"
        )
    return "; ".join(parts)
