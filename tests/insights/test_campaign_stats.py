"""The campaign statistics (`insights/stats.py`) judged by simulation with fixed seeds:
thousands of experiments drawn at once with numpy, each analysed by the same functions the
campaign_results analysis calls, against what the theory promises (false-positive rate,
power, coverage, CUPED's narrowing, the sequential test under repeated looks, SRM)."""

from __future__ import annotations

import numpy as np
import pytest

from segmently.insights import stats

RUNS = 1000


def _arms(rng: np.random.Generator, n_t: int, n_h: int, p_t: float, p_h: float,
          runs: int = RUNS) -> tuple[stats.Arm, stats.Arm]:
    c_t = rng.binomial(n_t, p_t, runs).astype(float)
    c_h = rng.binomial(n_h, p_h, runs).astype(float)
    return stats.Arm(np.full(runs, n_t), c_t, c_t), stats.Arm(np.full(runs, n_h), c_h, c_h)


def test_a_a_false_positive_rate_is_five_percent() -> None:
    rng = np.random.default_rng(1)
    # the campaign's 80/20 split, a 10% conversion rate
    t, h = _arms(rng, 4000, 1000, 0.10, 0.10)
    p = stats.difference(t, h).p_value()
    assert 0.03 <= (p < 0.05).mean() <= 0.07
    # p-values of A/A runs are uniform: a tenth of them below 0.1, half below 0.5
    assert 0.08 <= (p < 0.1).mean() <= 0.12 and 0.46 <= (p < 0.5).mean() <= 0.54


def test_the_interval_covers_the_true_lift_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(2)
    p_h, p_t = 0.10, 0.13
    t, h = _arms(rng, 3000, 1500, p_t, p_h)
    low, high, rel_low, rel_high = stats.difference(t, h).interval()
    assert 0.93 <= ((low <= p_t - p_h) & (p_t - p_h <= high)).mean() <= 0.97
    true_rel = p_t / p_h - 1
    assert 0.93 <= ((rel_low <= true_rel) & (true_rel <= rel_high)).mean() <= 0.97


@pytest.mark.parametrize(("p_h", "lift", "n_t", "n_h"),
                         [(0.10, 0.02, 3000, 1000), (0.20, 0.03, 2000, 2000)])
def test_power_matches_the_normal_approximation(p_h: float, lift: float, n_t: int,
                                                 n_h: int) -> None:
    rng = np.random.default_rng(3)
    t, h = _arms(rng, n_t, n_h, p_h + lift, p_h, runs=2000)
    hit = (stats.difference(t, h).p_value() < 0.05).mean()
    expected = stats.power(p_h, lift, n_t, n_h)
    assert 0.3 < expected < 0.9  # a test of power, not of certainty
    assert abs(hit - expected) < 0.04, (hit, expected)


def test_the_power_formula_itself() -> None:
    # by hand: p 0.10 vs 0.12, 1000 per arm: se = sqrt(.12*.88/1000 + .1*.9/1000)
    # = sqrt(0.0001056 + 0.00009) = 0.013987; 0.02 / se = 1.4299; Phi(1.4299 - 1.96)
    # = Phi(-0.5301) = 0.2980, plus Phi(-3.39) = 0.0003
    assert stats.power(0.10, 0.02, 1000, 1000) == pytest.approx(0.2983, abs=0.0005)


def _users(rng: np.random.Generator, runs: int, n: int, holdout: float, lift: float,
           strength: float) -> tuple[stats.Arm, stats.Arm]:
    """Per-user simulation: x = pre-assignment active days (Poisson with a per-user rate),
    y converts with a probability rising with x when strength > 0; `lift` added to the
    treatment's probability. Summed per arm and run, as the engine sums."""
    rate = rng.gamma(1.0, 5.0, (runs, n))
    x = rng.poisson(rate).astype(float)
    base = 0.05 + strength * np.minimum(x, 15) / 15 * 0.8
    arm_t = rng.random((runs, n)) >= holdout
    y = (rng.random((runs, n)) < base + lift * arm_t).astype(float)

    def sums(mask: np.ndarray) -> stats.Arm:
        return stats.Arm(mask.sum(1), (y * mask).sum(1), (y * mask).sum(1), (x * mask).sum(1),
                         (x * x * mask).sum(1), (x * y * mask).sum(1))

    return sums(arm_t), sums(~arm_t)


def test_cuped_narrows_the_interval_when_the_covariate_correlates() -> None:
    rng = np.random.default_rng(4)
    lift = 0.03
    t, h = _users(rng, RUNS, 2000, 0.3, lift, strength=1.0)
    plain, adj = stats.difference(t, h), stats.cuped(t, h)
    width = lambda e: (lambda lo, hi, *_: hi - lo)(*e.interval())  # noqa: E731
    assert np.mean(width(adj.estimate)) < 0.9 * np.mean(width(plain))
    assert np.median(adj.variance_reduction) > 0.2
    lo, hi, *_ = adj.estimate.interval()
    assert 0.93 <= ((lo <= lift) & (lift <= hi)).mean() <= 0.97  # still unbiased, still 95%
    # the same estimate on average (the adjustment moves each run's estimate, not the mean)
    assert abs(np.mean(adj.estimate.diff) - lift) < 0.002


def test_cuped_keeps_the_false_positive_rate_and_costs_nothing_without_correlation() -> None:
    rng = np.random.default_rng(5)
    t, h = _users(rng, RUNS, 2000, 0.5, 0.0, strength=1.0)
    assert 0.03 <= (stats.cuped(t, h).estimate.p_value() < 0.05).mean() <= 0.07
    t, h = _users(rng, RUNS, 2000, 0.5, 0.0, strength=0.0)
    reduction = stats.cuped(t, h).variance_reduction
    assert abs(np.median(reduction)) < 0.01  # an unrelated covariate changes ~nothing


def _looks(rng: np.random.Generator, p_t: float, p_h: float, looks: int, per_look: int,
           holdout: float = 0.2, runs: int = RUNS) -> tuple[np.ndarray, ...]:
    """Cumulative arms at each look: (runs, looks) arrays of n and conversions."""
    n_h = rng.binomial(per_look, holdout, (runs, looks))
    n_t = per_look - n_h
    c_t = rng.binomial(n_t, p_t).cumsum(1).astype(float)
    c_h = rng.binomial(n_h, p_h).cumsum(1).astype(float)
    return n_t.cumsum(1).astype(float), c_t, n_h.cumsum(1).astype(float), c_h


def test_the_sequential_test_stays_at_five_percent_under_repeated_looks() -> None:
    rng = np.random.default_rng(6)
    n_t, c_t, n_h, c_h = _looks(rng, 0.1, 0.1, looks=10, per_look=1000)
    e = stats.difference(stats.Arm(n_t, c_t, c_t), stats.Arm(n_h, c_h, c_h))
    seq = stats.sequential(e)
    always = (seq.p_value < 0.05).any(axis=1).mean()
    assert always <= 0.05
    # and the sequence is the test: 0 outside it exactly when p < 0.05
    assert np.array_equal((seq.low > 0) | (seq.high < 0), seq.p_value < 0.05)
    # what it guards against: the fixed-horizon test peeked at 10 times
    peeking = (e.p_value() < 0.05).any(axis=1).mean()
    assert peeking > 0.10


def test_the_confidence_sequence_covers_the_lift_at_every_look_and_finds_it() -> None:
    rng = np.random.default_rng(7)
    p_h, p_t = 0.10, 0.13
    n_t, c_t, n_h, c_h = _looks(rng, p_t, p_h, looks=10, per_look=1000)
    e = stats.difference(stats.Arm(n_t, c_t, c_t), stats.Arm(n_h, c_h, c_h))
    seq = stats.sequential(e)
    covered = ((seq.low <= p_t - p_h) & (p_t - p_h <= seq.high)).all(axis=1).mean()
    assert covered >= 0.95
    rel = p_t / p_h - 1
    assert ((seq.rel_low <= rel) & (rel <= seq.rel_high)).all(axis=1).mean() >= 0.95
    # wider than the fixed interval, but it finds a 30% relative lift by 10,000 users
    lo, hi, *_ = e.interval()
    assert np.all(seq.high - seq.low > hi - lo)
    assert (seq.p_value[:, -1] < 0.05).mean() > 0.7


def test_srm_flags_a_45_55_split_and_not_a_fair_one() -> None:
    chi2, p = stats.srm(11_000, 9_000, 0.5)
    # by hand: expected 10,000 each: 1000^2/10000 * 2 = 200
    assert chi2 == pytest.approx(200.0) and p < stats.SRM_ALPHA
    rng = np.random.default_rng(8)
    fair = rng.binomial(20_000, 0.5, RUNS)
    _, p = stats.srm(20_000 - fair, fair, 0.5)
    assert (p < stats.SRM_ALPHA).mean() <= 0.005
    skewed = rng.binomial(20_000, 0.45, RUNS)
    _, p = stats.srm(20_000 - skewed, skewed, 0.5)
    assert (p < stats.SRM_ALPHA).all()
    held = rng.binomial(20_000, 0.2, RUNS)  # a fair 20% holdout
    _, p = stats.srm(20_000 - held, held, 0.2)
    assert (p < stats.SRM_ALPHA).mean() <= 0.005
    assert stats.srm(16_000, 4_000, 0.2) == (0.0, 1.0)


def test_a_hand_computed_difference() -> None:
    # treatment 30 of 100, holdout 10 of 100: diff 0.2; var = .3*.7/99*100/100... with
    # n - 1 variances: .3 * .7 * 100/99 / 100 + .1 * .9 * 100/99 / 100 = 0.0030303
    e = stats.difference(stats.Arm(100, 30, 30), stats.Arm(100, 10, 10))
    assert e.diff == pytest.approx(0.2) and e.rel == pytest.approx(2.0)
    assert e.var_diff == pytest.approx((0.21 + 0.09) / 99)
    lo, hi, _, _ = e.interval()
    assert (lo, hi) == pytest.approx((0.2 - 1.959964 * 0.055048, 0.2 + 1.959964 * 0.055048),
                                     abs=1e-5)
    # z = 0.2 / 0.055048 = 3.633: two-sided p = 0.00028
    assert e.p_value() == pytest.approx(0.00028, abs=0.00002)
    # relative: 3^2 * (0.0021212 / 0.09 + 0.00090909 / 0.01) = 9 * (0.023569 + 0.090909)
    assert e.var_rel == pytest.approx(9 * (0.21 / 99 / 0.09 + 0.09 / 99 / 0.01))
