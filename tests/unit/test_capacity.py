"""The Universal Scalability Law fit (issue 27): synthetic series with known σ and κ are
recovered; the knee is read from p95; too few distinct loads is a clear exit 2."""

from __future__ import annotations

import math
import random

import pytest

from loadmgr.service.capacity.usl import NotEnoughLoads, Point, fit_usl, knee, usl

LOADS = [1, 2, 4, 8, 16, 32, 64, 128]


@pytest.mark.parametrize(
    ("lam", "sigma", "kappa"),
    [
        (10.0, 0.05, 0.0005),
        (100.0, 0.02, 0.0001),
        (3.0, 0.2, 0.002),
        (50.0, 0.0, 0.001),  # coherency only
        (20.0, 0.1, 0.0),  # contention only: no peak, a ceiling of λ/σ
    ],
)
@pytest.mark.parametrize("seed", range(5))
def test_fits_of_synthetic_series_recover_sigma_and_kappa(lam, sigma, kappa, seed):
    rng = random.Random(seed)
    points = [
        Point(n, usl(n, lam, sigma, kappa) * (1 + rng.uniform(-0.02, 0.02)))
        for n in LOADS
        for _ in range(2)
    ]
    fit = fit_usl(points)
    assert fit.lam == pytest.approx(lam, rel=0.05)
    assert fit.sigma == pytest.approx(sigma, abs=0.02)
    assert fit.kappa == pytest.approx(kappa, abs=0.0003)
    assert fit.r2 > 0.97
    if kappa > 0:
        n_star = math.sqrt((1 - sigma) / kappa)
        assert fit.peak_users == pytest.approx(n_star, rel=0.25)
        assert fit.peak_rps == pytest.approx(usl(n_star, lam, sigma, kappa), rel=0.05)
    else:
        assert fit.peak_users is None or fit.peak_users > max(LOADS)
        assert fit.peak_rps == pytest.approx(lam / sigma, rel=0.25)


def test_an_exact_series_is_recovered_exactly():
    fit = fit_usl([Point(n, usl(n, 12.0, 0.03, 0.0004)) for n in LOADS])
    assert (fit.lam, fit.sigma, fit.kappa) == pytest.approx((12.0, 0.03, 0.0004), rel=1e-3)
    assert fit.r2 == pytest.approx(1.0)


@pytest.mark.parametrize(
    "points",
    [
        [],
        [Point(10, 100.0)],
        [Point(10, 100.0), Point(10, 101.0), Point(20, 180.0)],  # two distinct loads
        [Point(10, 100.0), Point(20, math.nan), Point(40, math.inf), Point(0, 5.0)],
    ],
)
def test_too_few_distinct_loads_is_a_clear_usage_error(points):
    with pytest.raises(NotEnoughLoads, match="not enough distinct loads to fit") as caught:
        fit_usl(points)
    assert caught.value.exit_code == 2


@pytest.mark.parametrize(
    ("p95s", "expected"),
    [
        ({1: 50, 2: 51, 4: 55, 8: 100, 16: 200}, 4),  # the pool fills at 4
        ({1: 50, 2: 90}, 1),  # climbs at once
        ({1: 50, 2: 50, 4: 52}, None),  # never climbs within the loads tried
        ({1: 50}, None),
        ({1: None, 2: 50, 4: 70}, 2),  # a load without p95 is left out
    ],
)
def test_the_knee_is_the_last_load_before_p95_climbs(p95s, expected):
    assert knee([Point(n, 1.0, p95) for n, p95 in p95s.items()]) == expected
