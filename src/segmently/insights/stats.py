"""The statistics of a two-arm experiment (treatment against holdout), from sufficient
statistics only: the engine sums, this module turns sums into estimates.

Every function takes numbers or numpy arrays (broadcast element-wise), so the simulation
tests (tests/insights/test_campaign_stats.py) run thousands of experiments in one call.

- `difference`: the fixed-horizon estimate of a difference of means (a conversion rate is
  the mean of a 0/1 outcome): absolute lift with a Wald interval and two-sided z-test
  (unpooled variances, so the test and the interval agree), relative lift by the delta
  method (Var(a/b) ~ (a/b)^2 (Var a / a^2 + Var b / b^2)).
- `cuped`: CUPED (Deng, Xu, Kohavi and Walker 2013): Y - theta (X - mean X) with theta =
  Cov(X, Y) / Var(X) pooled over both arms, X a pre-assignment covariate (so independent
  of the arm): the same expected difference, with variance shrunk by 1 - corr(X, Y)^2.
- `sequential`: the always-valid confidence sequence and p-value of the normal mixture
  sequential probability ratio test (mSPRT; Robbins 1970, Johari, Pekelis and Walsh
  2017, "Always valid inference"; in the asymptotic form of Howard, Ramdas, McAuliffe and
  Sekhon 2021 that GrowthBook's gbstats uses): the estimate ~ N(theta, V), theta mixed
  over N(0, tau^2), Lambda = sqrt(V / (V + tau^2)) exp(tau^2 d^2 / (2 V (V + tau^2)));
  by Ville's inequality P(some look has Lambda >= 1/alpha | theta = 0) <= alpha, so a
  team may look every day and stop at the first significant look. tau^2 = rho^2 * s2
  with s2 the per-user variance (V times the total sample) and rho^2 = (-2 log alpha +
  log(1 - 2 log alpha)) / n_star: the interval is tightest near n_star users (5,000 by
  default, gbstats's default too).
- `srm`: the sample-ratio-mismatch check, Pearson's chi-square of the arms' counts
  against the expected split (1 degree of freedom: p = erfc(sqrt(chi2 / 2))).

Hand-written (a few standard lines each) rather than a dependency: statsmodels has no
sequential test or CUPED, and gbstats's API works on its own dataclasses and pandas
frames; these work on sufficient sums the engine aggregates. The normal distribution
comes from the standard library (scipy, a dependency for feature lift's exact tests, is
not needed here). Each formula is validated by simulation (false-positive rate, power, coverage,
CUPED's narrowing, SRM), not only by examples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

Number = Any  # a float or a numpy array of floats
_N = NormalDist()
_erfc = np.vectorize(math.erfc, otypes=[float])


def z_of(alpha: float) -> float:
    """The two-sided critical value: 1.96 for alpha 0.05."""
    return _N.inv_cdf(1 - alpha / 2)


def two_sided_p(z: Number) -> Number:
    """P(|N(0,1)| >= |z|) = erfc(|z| / sqrt 2)."""
    out = _erfc(np.abs(np.asarray(z, float)) / math.sqrt(2))
    return float(out) if out.ndim == 0 else out


def _safe(x: Number) -> Number:
    return np.where(np.asarray(x, float) > 0, x, np.nan)


@dataclass(frozen=True)
class Arm:
    """Sufficient statistics of one arm: users n, sums of the outcome y, of y^2, of the
    covariate x, x^2 and x*y (for a 0/1 outcome sum_y2 = sum_y)."""

    n: Number
    sum_y: Number
    sum_y2: Number
    sum_x: Number = 0.0
    sum_x2: Number = 0.0
    sum_xy: Number = 0.0

    @property
    def mean(self) -> Number:
        return np.asarray(self.sum_y, float) / _safe(self.n)

    @property
    def var(self) -> Number:
        """The sample variance of y (n - 1 in the denominator)."""
        n = np.asarray(self.n, float)
        return (np.asarray(self.sum_y2, float) - n * self.mean ** 2) / _safe(n - 1)

    @property
    def x_mean(self) -> Number:
        return np.asarray(self.sum_x, float) / _safe(self.n)


@dataclass(frozen=True)
class Estimate:
    """A difference of means, treatment minus holdout, and its relative form."""

    treatment: Number  # the arm means the estimate compares
    holdout: Number
    diff: Number
    var_diff: Number  # the estimate's variance
    rel: Number  # treatment / holdout - 1
    var_rel: Number
    n: Number  # users in both arms (the sequential test's sample size)

    def interval(self, alpha: float = 0.05) -> tuple[Number, Number, Number, Number]:
        """(low, high) of the absolute difference, then of the relative one."""
        z = z_of(alpha)
        sd, sr = np.sqrt(self.var_diff), np.sqrt(self.var_rel)
        return self.diff - z * sd, self.diff + z * sd, self.rel - z * sr, self.rel + z * sr

    def p_value(self) -> Number:
        return two_sided_p(self.diff / np.sqrt(_safe(self.var_diff)))


def _estimate(m_t: Number, v_t: Number, m_h: Number, v_h: Number, n: Number) -> Estimate:
    """v_t, v_h: the variances of the arm means."""
    diff = m_t - m_h
    ratio = m_t / _safe(m_h)
    var_rel = ratio ** 2 * (v_t / _safe(m_t ** 2) + v_h / _safe(m_h ** 2))
    return Estimate(m_t, m_h, diff, v_t + v_h, ratio - 1, var_rel, n)


def difference(t: Arm, h: Arm) -> Estimate:
    """The plain (fixed-horizon) estimate of mean(treatment) - mean(holdout)."""
    return _estimate(t.mean, t.var / _safe(t.n), h.mean, h.var / _safe(h.n),
                     np.asarray(t.n, float) + h.n)


@dataclass(frozen=True)
class Cuped:
    estimate: Estimate
    theta: Number
    variance_reduction: Number  # 1 - Var(adjusted difference) / Var(plain difference)


def cuped(t: Arm, h: Arm) -> Cuped:
    """The CUPED-adjusted estimate. theta from both arms pooled (the covariate is
    measured before assignment, so both arms share its distribution); each arm's mean is
    shifted by theta (its covariate mean - the overall one) and its variance becomes
    Var(y) - 2 theta Cov(x, y) + theta^2 Var(x)."""
    n_t, n_h = np.asarray(t.n, float), np.asarray(h.n, float)
    n = n_t + n_h
    sx, sy = np.asarray(t.sum_x, float) + h.sum_x, np.asarray(t.sum_y, float) + h.sum_y
    sxx = np.asarray(t.sum_x2, float) + h.sum_x2
    sxy = np.asarray(t.sum_xy, float) + h.sum_xy
    var_x = (sxx - sx ** 2 / _safe(n)) / _safe(n - 1)
    cov = (sxy - sx * sy / _safe(n)) / _safe(n - 1)
    theta = np.where(var_x > 0, cov / np.where(var_x > 0, var_x, 1.0), 0.0)
    x_bar = sx / _safe(n)

    def arm(a: Arm, na: Number) -> tuple[Number, Number]:
        xm = a.x_mean
        vx = (np.asarray(a.sum_x2, float) - na * xm ** 2) / _safe(na - 1)
        cxy = (np.asarray(a.sum_xy, float) - na * xm * a.mean) / _safe(na - 1)
        v = a.var - 2 * theta * cxy + theta ** 2 * vx
        return a.mean - theta * (xm - x_bar), np.maximum(v, 0.0) / _safe(na)

    m_t, v_t = arm(t, n_t)
    m_h, v_h = arm(h, n_h)
    adjusted = _estimate(m_t, v_t, m_h, v_h, n)
    plain = difference(t, h)
    reduction = 1 - adjusted.var_diff / _safe(plain.var_diff)
    return Cuped(adjusted, theta, reduction)


# -- always valid ------------------------------------------------------------------------
N_STAR = 5000  # the total sample size the confidence sequence is tuned for


def rho2(alpha: float = 0.05, n_star: float = N_STAR) -> float:
    a = -2 * math.log(alpha)
    return (a + math.log(a + 1)) / n_star


def _half_width(var: Number, n: Number, alpha: float, n_star: float) -> Number:
    """The normal-mixture boundary for an estimate of variance `var` from n users."""
    r = np.asarray(n, float) * rho2(alpha, n_star)  # tau^2 / var
    r = _safe(r)
    return np.sqrt(var * 2 * (r + 1) / r * np.log(np.sqrt(r + 1) / alpha))


def _always_valid_p(est: Number, var: Number, n: Number, alpha: float,
                    n_star: float) -> Number:
    """min(1, 1 / Lambda): below alpha exactly when 0 is outside the sequence."""
    r = _safe(np.asarray(n, float) * rho2(alpha, n_star))
    z2 = np.asarray(est, float) ** 2 / _safe(var)
    log_lambda = -0.5 * np.log1p(r) + z2 * r / (2 * (1 + r))
    return np.minimum(1.0, np.exp(-log_lambda))


@dataclass(frozen=True)
class Sequential:
    low: Number
    high: Number
    rel_low: Number
    rel_high: Number
    p_value: Number


def sequential(e: Estimate, alpha: float = 0.05, n_star: float = N_STAR) -> Sequential:
    """The mSPRT confidence sequence of the difference and of the relative lift, and the
    always-valid p-value of the difference (valid at every look, however many)."""
    hw = _half_width(e.var_diff, e.n, alpha, n_star)
    hr = _half_width(e.var_rel, e.n, alpha, n_star)
    p = _always_valid_p(e.diff, e.var_diff, e.n, alpha, n_star)
    return Sequential(e.diff - hw, e.diff + hw, e.rel - hr, e.rel + hr, p)


# -- sample ratio ------------------------------------------------------------------------
SRM_ALPHA = 0.001


def srm(n_treatment: Number, n_holdout: Number, expected_holdout: Number) -> tuple[Number,
                                                                                    Number]:
    """(chi-square, p) of the arms' counts against the expected holdout share (0-1)."""
    n = np.asarray(n_treatment, float) + n_holdout
    e_h = n * expected_holdout
    e_t = n - e_h
    chi2 = (n_holdout - e_h) ** 2 / _safe(e_h) + (n_treatment - e_t) ** 2 / _safe(e_t)
    p = _erfc(np.sqrt(np.asarray(chi2, float) / 2))
    return (float(chi2), float(p)) if np.ndim(chi2) == 0 else (chi2, p)


def power(p_holdout: float, lift: float, n_treatment: float, n_holdout: float,
          alpha: float = 0.05) -> float:
    """The normal-approximation power of the two-sided z-test for rates p_holdout and
    p_holdout + lift."""
    p_t = p_holdout + lift
    se = math.sqrt(p_t * (1 - p_t) / n_treatment + p_holdout * (1 - p_holdout) / n_holdout)
    z = z_of(alpha)
    return _N.cdf(lift / se - z) + _N.cdf(-lift / se - z)
