"""The probe's statistics and rule files: no torch needed."""

import math

import pytest

from auditor.probe import stats
from auditor.probe.codes import PROBE_CODES


def test_normal_quantile_matches_tables():
    assert stats.normal_quantile(0.975) == pytest.approx(1.959964, abs=1e-5)
    assert stats.normal_quantile(0.5) == pytest.approx(0.0, abs=1e-9)
    assert stats.normal_quantile(1 - 1e-6) == pytest.approx(4.753424, abs=1e-4)


def test_exact_binomial_small_n():
    # 2 successes in 20 at p=0.5: two-sided exact p-value 0.000402 (textbook value)
    assert stats.binom_test(2, 20, 0.5) == pytest.approx(0.000402, rel=1e-2)
    assert stats.binom_test(10, 20, 0.5) == pytest.approx(1.0)
    assert stats.binom_test(0, 10, 0.0) == 1.0 and stats.binom_test(1, 10, 0.0) == 0.0


def test_normal_branch_agrees_with_exact_near_the_switch():
    n, p = 1200, 0.1  # n p (1-p) = 108: normal branch
    k = 140
    exact = sum(math.exp(stats._log_binom_pmf(i, n, p)) for i in range(n + 1)
                if stats._log_binom_pmf(i, n, p) <= stats._log_binom_pmf(k, n, p) + 1e-9)
    assert stats.binom_test(k, n, p) == pytest.approx(exact, rel=0.1)


def test_wilson_interval_covers_the_rate():
    lo, hi = stats.wilson_interval(100, 1000, 0.05)
    assert lo < 0.1 < hi and hi - lo == pytest.approx(0.0375, abs=0.002)


def test_rate_test_flags_a_clear_mismatch_only():
    assert stats.rate_test(1000, 10000, 0.1, 1e-4).consistent
    assert not stats.rate_test(0, 10000, 0.1, 1e-4).consistent
    assert not stats.rate_test(1200, 10000, 0.1, 1e-4).consistent


def test_outside_band():
    assert stats.outside_band(1.11, 0.005, 1.0, 0.05, 1e-3)
    assert not stats.outside_band(0.99, 0.005, 1.0, 0.05, 1e-3)


def test_every_probe_code_has_a_rule_file():
    from auditor.core import catalogue

    rules = {r.code: r for r in catalogue.load() if r.check == "probe"}
    assert {c: (r.name, r.severity) for c, r in rules.items()} == PROBE_CODES
    assert all(r.category == "probe" for r in rules.values())
