"""The Universal Scalability Law fitted to throughput against concurrency.

    X(N) = λN / (1 + σ(N − 1) + κN(N − 1))

λ is the throughput of one user, σ the contention (the share of work that queues, 0 to 1),
κ the coherency cost (crosstalk between users, ≥ 0). Fitted by least squares with
scipy's `curve_fit`, σ and κ bounded to [0, 1] and [0, ∞). With κ > 0 the curve peaks at
N* = √((1 − σ)/κ): past it, more users get less done. With κ = 0 it only flattens toward
λ/σ. The knee is read from the points themselves, not the curve: the highest load whose
p95 is still within KNEE_RISE of the p95 at the lowest load; past it, latency climbs.

Pure arithmetic over points: nothing here reads the store. numpy and scipy are the
optional `trend` extra's, imported when a fit is made.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

from loadmgr.errors import ValidationFailed

MIN_DISTINCT_LOADS = 3  # three parameters: fewer loads fit any curve, or none
KNEE_RISE = 1.25  # p95 more than 25 % above the lowest load's: latency has started to climb


class NotEnoughLoads(ValidationFailed):
    """The points hold fewer than MIN_DISTINCT_LOADS distinct user counts (exit 2)."""


@dataclass(frozen=True)
class Point:
    """Throughput at one concurrency: a step of a stepped run, or a whole run."""

    users: float
    rps: float
    p95: float | None = None
    run_id: str | None = None
    step: int | None = None  # 1 first; None: the whole run
    # The load generator was saturated here: its throughput is the generator's ceiling,
    # not the service's, so neither the fit nor the knee reads it (it is still shown).
    saturated: bool = False


@dataclass(frozen=True)
class UslFit:
    """The fitted law, where it peaks, and how well it fits (R², 1 is perfect)."""

    lam: float
    sigma: float
    kappa: float
    r2: float
    peak_users: float | None  # N*; None when κ = 0 (no peak: the curve only flattens)
    peak_rps: float  # X(N*), or λ/σ with κ = 0 (the ceiling it flattens toward)

    def throughput(self, users: float) -> float:
        return usl(users, self.lam, self.sigma, self.kappa)


def usl(n: float, lam: float, sigma: float, kappa: float) -> float:
    return lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))


def fit_usl(points: Sequence[Point]) -> UslFit:
    """The USL through `points`; NotEnoughLoads below MIN_DISTINCT_LOADS distinct users,
    ValidationFailed when the least squares do not converge."""
    usable = [
        p for p in points if p.users > 0 and math.isfinite(p.rps) and p.rps >= 0 and not p.saturated
    ]
    loads = {p.users for p in usable}
    if len(loads) < MIN_DISTINCT_LOADS:
        raise NotEnoughLoads(
            f"not enough distinct loads to fit: {len(loads)} (at least "
            f"{MIN_DISTINCT_LOADS} user counts with throughput)",
            hint="run with --steps 10,20,40,80 (one run), or runs at more loads",
        )
    import numpy as np
    from scipy.optimize import OptimizeWarning, curve_fit

    n = np.array([p.users for p in usable], dtype=float)
    x = np.array([p.rps for p in usable], dtype=float)
    lowest = n.min()
    guess_lam = max(float(x[n == lowest].mean() / lowest), 1e-9)

    def model(n: object, lam: float, sigma: float, kappa: float) -> object:
        return lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))  # type: ignore[operator]

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", OptimizeWarning)
            params, _ = curve_fit(
                model,
                n,
                x,
                p0=[guess_lam, 0.01, 0.0001],
                bounds=([0.0, 0.0, 0.0], [np.inf, 1.0, np.inf]),
                maxfev=20_000,
            )
    except (RuntimeError, ValueError) as exc:
        raise ValidationFailed(f"the scalability law could not be fitted: {exc}") from None
    lam, sigma, kappa = (float(v) for v in params)
    predicted = np.array([usl(float(v), lam, sigma, kappa) for v in n])
    total = float(((x - x.mean()) ** 2).sum())
    residual = float(((x - predicted) ** 2).sum())
    r2 = 1.0 - residual / total if total > 0 else (1.0 if residual == 0 else 0.0)
    peak_users: float | None = None
    if kappa > 1e-12:
        peak_users = math.sqrt(max(1.0 - sigma, 0.0) / kappa)
        peak_rps = usl(peak_users, lam, sigma, kappa)
    elif sigma > 1e-12:
        peak_rps = lam / sigma
    else:
        peak_rps = float(x.max())  # linear so far: no ceiling in sight, the best seen
    return UslFit(lam, sigma, kappa, r2, peak_users, peak_rps)


def knee(points: Sequence[Point], rise: float = KNEE_RISE) -> float | None:
    """The highest load whose p95 (the mean of its points') is still within `rise` × the
    lowest load's, the load after it being above; None when p95 never climbs within the
    loads tried (or fewer than two loads have a p95)."""
    by_load: dict[float, list[float]] = {}
    for point in points:
        if point.saturated:
            continue
        if point.p95 is not None and math.isfinite(point.p95) and point.p95 >= 0:
            by_load.setdefault(point.users, []).append(point.p95)
    loads = sorted(by_load)
    if len(loads) < 2:
        return None
    base = sum(by_load[loads[0]]) / len(by_load[loads[0]])
    for before, load in zip(loads, loads[1:], strict=False):
        if sum(by_load[load]) / len(by_load[load]) > base * rise:
            return before
    return None
