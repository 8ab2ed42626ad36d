"""Statistics the probe's verdicts rest on, in plain Python (no scipy in the probe extra).

Every verdict that depends on randomness is a hypothesis test at a stated level, with a
Bonferroni split of one family-wise alpha across the sites of one run, so the false-alarm rate
of a whole probe on a clean model stays below that alpha. The functions here are small enough
to check against textbook values in tests.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

# Family-wise false-alarm rate of one probe run (split across sites and checks).
FAMILY_ALPHA = 1e-3


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def normal_quantile(q: float) -> float:
    """The z with P(Z <= z) = q, by bisection on erfc (exact to ~1e-12, fast enough here)."""
    if not 0.0 < q < 1.0:
        raise ValueError("q must be in (0, 1)")
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if 1.0 - normal_sf(mid) < q:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _log_binom_pmf(k: int, n: int, p: float) -> float:
    if p <= 0.0:
        return 0.0 if k == 0 else -math.inf
    if p >= 1.0:
        return 0.0 if k == n else -math.inf
    return (math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + k * math.log(p) + (n - k) * math.log1p(-p))


def binom_test(k: int, n: int, p: float) -> float:
    """Two-sided binomial test p-value of k successes in n trials under success rate p.

    Exact (sum of the outcomes no more likely than k) while n*p*(1-p) < 100; beyond that the
    normal approximation with continuity correction, whose error is far below the alphas used.
    """
    if n <= 0:
        return 1.0
    if p <= 0.0:
        return 1.0 if k == 0 else 0.0
    if p >= 1.0:
        return 1.0 if k == n else 0.0
    var = n * p * (1 - p)
    if var >= 100:
        z = max(0.0, abs(k - n * p) - 0.5) / math.sqrt(var)
        return min(1.0, 2 * normal_sf(z))
    ref = _log_binom_pmf(k, n, p) + 1e-9
    total = 0.0
    for i in range(n + 1):
        lp = _log_binom_pmf(i, n, p)
        if lp <= ref:
            total += math.exp(lp)
    return min(1.0, total)


def wilson_interval(k: int, n: int, alpha: float) -> tuple:
    """Wilson score interval for a binomial rate at confidence 1 - alpha."""
    if n <= 0:
        return (0.0, 1.0)
    z = normal_quantile(1 - alpha / 2)
    phat = k / n
    denom = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(slots=True)
class RateTest:
    """The verdict on one site's dropped fraction."""

    k: int
    n: int
    p: float
    alpha: float
    p_value: float
    ci: tuple

    @property
    def rate(self) -> float:
        return self.k / self.n if self.n else 0.0

    @property
    def consistent(self) -> bool:
        return self.p_value >= self.alpha

    def describe(self) -> str:
        lo, hi = self.ci
        return (f"dropped {self.k}/{self.n} = {self.rate:.4f} "
                f"({(1 - self.alpha) * 100:.4g}% Wilson CI [{lo:.4f}, {hi:.4f}]; "
                f"two-sided binomial test vs p={self.p:g}: p-value {self.p_value:.3g}, alpha {self.alpha:.2g})")


def rate_test(k: int, n: int, p: float, alpha: float) -> RateTest:
    return RateTest(k, n, p, alpha, binom_test(k, n, p), wilson_interval(k, n, alpha))


def mean_and_se(values: list) -> tuple:
    n = len(values)
    if n == 0:
        return (math.nan, math.nan)
    m = sum(values) / n
    if n == 1:
        return (m, math.inf)
    var = sum((v - m) ** 2 for v in values) / (n - 1)
    return (m, math.sqrt(var / n))


def outside_band(mean: float, se: float, centre: float, tol: float, alpha: float) -> bool:
    """One-sided z-test that |mean - centre| exceeds tol (reject 'within the band')."""
    if math.isnan(mean):
        return False
    z = normal_quantile(1 - alpha)
    return abs(mean - centre) - tol > z * se


def median(values: list) -> float:
    s = sorted(values)
    if not s:
        return math.nan
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) / 2


def ratio_of_medians_ci(a: list, b: list, alpha: float = 0.05, rounds: int = 2000, seed: int = 0) -> tuple:
    """median(a)/median(b) with a percentile-bootstrap interval (timings are not normal)."""
    if not a or not b:
        return (math.nan, (math.nan, math.nan))
    rng = random.Random(seed)
    point = median(a) / median(b)
    boots = []
    for _ in range(rounds):
        ra = [a[rng.randrange(len(a))] for _ in a]
        rb = [b[rng.randrange(len(b))] for _ in b]
        boots.append(median(ra) / median(rb))
    boots.sort()
    lo = boots[int(alpha / 2 * rounds)]
    hi = boots[min(rounds - 1, int((1 - alpha / 2) * rounds))]
    return (point, (lo, hi))
