"""Forecast error metrics, conformal interval radii and interval scores: numpy only, no other module of ours.

Metrics follow the M-competitions: sMAPE in percent (0-200), MASE scaled by the in-sample MAE of the seasonal
naive forecast (naive when the series is no longer than a season), each computed per series and fold, then
averaged.
"""

from __future__ import annotations

import math

import numpy as np

METRICS = ("mae", "rmse", "smape", "mase")


def mae(y: np.ndarray, f: np.ndarray) -> float:
    return float(np.mean(np.abs(y - f)))


def rmse(y: np.ndarray, f: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y - f) ** 2)))


def smape(y: np.ndarray, f: np.ndarray) -> float:
    """Symmetric MAPE in percent, 200 |y - f| / (|y| + |f|); a step where both are 0 counts as 0."""
    denominator = np.abs(y) + np.abs(f)
    ratio = np.divide(2 * np.abs(y - f), denominator, out=np.zeros_like(denominator), where=denominator > 0)
    return float(100 * np.mean(ratio))


def mase_scale(insample: np.ndarray, season: int) -> float:
    """In-sample MAE of the seasonal naive forecast (lag `season`, or lag 1 when the series is too short)."""
    lag = season if len(insample) > season else 1
    if len(insample) <= lag:
        return math.nan
    return float(np.mean(np.abs(insample[lag:] - insample[:-lag])))


def mase(y: np.ndarray, f: np.ndarray, insample: np.ndarray, season: int) -> float:
    scale = mase_scale(insample, season)
    return mae(y, f) / scale if scale and scale > 0 else math.nan


def mase_scales(target: np.ndarray, starts: np.ndarray, fit_lengths: np.ndarray, season: int) -> np.ndarray:
    """(n_series,) each series' MASE scale (mase_scale) over the first fit_lengths rows of the series laid out by
    `starts` (n_series + 1,); NaN where it is undefined (a single row)."""
    return np.array([mase_scale(target[a : a + n], season) for a, n in zip(starts[:-1], fit_lengths, strict=True)])


def mase_weights(target: np.ndarray, starts: np.ndarray, fit_lengths: np.ndarray, season: int) -> np.ndarray:
    """(n_rows,) each row's weight for the "mase" loss: 1 / its series' MASE scale over the first fit_lengths
    rows of the series laid out by `starts` (n_series + 1,); 1 where that scale is undefined or negligible."""
    scales = mase_scales(target, starts, fit_lengths, season)
    per_series = np.where(scales > 1e-6, 1.0 / np.where(scales > 1e-6, scales, 1.0), 1.0)  # NaN compares False
    return np.repeat(per_series, np.diff(starts))


# --- prediction intervals ----------------------------------------------------------------------------------
#
# Intervals are split-conformal (Vovk et al. 2005; Stankeviciute et al. 2021 for multi-step forecasts) on
# normalised scores: a calibration error |y - f| made from origin t of series i is divided by the error scale
# d_i(t) = r_i x s_i(t), where s_i(t) is the series' recent variability just before t (local_scales) and r_i
# its error ratio (how its forecast errors compare with that variability); the scores of all series are pooled
# per horizon step, and series i's radius at step h of a forecast from its end T is d_i(T) times the scores'
# conformal quantile at h. So a series' band follows its own error and its current volatility (a river in
# flood, a series that has grown tenfold), and every series still draws on every calibration window.
# fit.calibrate puts it together; what is here is arrays only.

SHRINK = 5.0  # calibration windows' worth of weight the pooled error ratio gets in a series' error ratio
LOCAL_FLOOR = 0.01  # a local scale is at least this share of the series' scale so far (a flat recent stretch)


def local_span(horizon: int, season: int) -> int:
    """Steps before an origin whose variability is its local scale: two horizons, at least a season and 8 steps
    (one horizon was too noisy on stationary single series: 71% inside the 80% band of synthetic annual ones)."""
    return max(2 * horizon, season, 8)


def local_scales(target: np.ndarray, starts: np.ndarray, series: np.ndarray, origins: np.ndarray, season: int,
                 span: int) -> np.ndarray:
    """(n,) the recent variability of series `series[k]` just before row `origins[k]` (exclusive) of `target`,
    laid out by `starts` (n_series + 1,): the mean |y_t - y_(t-lag)| over the last `span` steps before it (lag
    `season`, or 1 when the series before the origin is no longer than a season: mase_scale's rule), and at
    least LOCAL_FLOOR of that mean over the whole series before it. NaN where there is no such difference (one
    row); missing values are skipped. Computed with running sums: O(rows + n)."""
    out = np.full(len(origins), np.nan)
    if not len(origins):
        return out
    begin = starts[series]
    lags = np.where(origins - begin > season, season, 1)
    for lag in np.unique(lags):
        mine = lags == lag
        end, first = origins[mine], begin[mine]
        recent = np.maximum(end - span, first)
        sums, counts = _running_sums_at(target, starts, int(lag), np.concatenate([end, recent, first]))
        (s_end, s_recent, s_first), (c_end, c_recent, c_first) = np.split(sums, 3), np.split(counts, 3)
        with np.errstate(invalid="ignore", divide="ignore"):
            local = (s_end - s_recent) / (c_end - c_recent)
            overall = (s_end - s_first) / (c_end - c_first)
        out[mine] = np.where(np.isfinite(local), np.fmax(local, LOCAL_FLOOR * overall), overall)
    return out


RUNNING_SUM_ROWS = 1 << 20  # rows of differences made at a time by _running_sums_at


def _running_sums_at(target: np.ndarray, starts: np.ndarray, lag: int, points: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """(sum, count) of the finite |y_r - y_(r-lag)| over the rows r < points[k] whose r - lag lies in r's own
    series (`target` laid out by `starts`), for each k: running sums read at `points`, made RUNNING_SUM_ROWS
    rows at a time, so memory follows the points, not the rows (100 million rows would take 1.4 GB at once)."""
    order = np.argsort(points, kind="stable")
    at = points[order]
    sums, counts = np.zeros(len(points)), np.zeros(len(points), np.int64)
    carry_sum, carry_count = 0.0, 0
    for a in range(0, len(target), RUNNING_SUM_ROWS):
        b = min(a + RUNNING_SUM_ROWS, len(target))
        rows = np.arange(a, b)
        own = rows - starts[np.searchsorted(starts, rows, side="right") - 1] >= lag  # r - lag in r's series
        diff = np.full(b - a, np.nan)
        diff[own] = np.abs(target[rows[own]] - target[rows[own] - lag])
        ok = np.isfinite(diff)
        diff[~ok] = 0.0
        running, running_count = np.cumsum(diff), np.cumsum(ok)
        lo, hi = np.searchsorted(at, [a, b], side="right")  # the points a < p <= b read this chunk's sums
        sums[order[lo:hi]] = carry_sum + running[at[lo:hi] - a - 1]
        counts[order[lo:hi]] = carry_count + running_count[at[lo:hi] - a - 1]
        carry_sum, carry_count = carry_sum + running[-1], carry_count + int(running_count[-1])
    return sums, counts


def normalised_scores(abs_errors: np.ndarray, series: np.ndarray, window_scale: np.ndarray, n_series: int,
                      total=np.asarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Conformal scores of calibration errors, and each series' error ratio: (scores (n_windows, horizon),
    ratio (n_series,), pooled ratio).

    `abs_errors: (n_windows, horizon)` calibration errors of series `series: (n_windows,)`, each series' windows
    in time order; `window_scale: (n_windows,)` a scale of each window known without its errors (local_scales
    at its origin, > 0, see base_scales). A window's ratio is its mean |error| / its scale; a series' ratio is
    the geometric mean of its windows' ratios, shrunk towards the pooled one (the geometric mean over every
    window) with the weight of SHRINK windows: a series with one window gets mostly the pooled ratio, one with a
    hundred mostly its own, one with none the pooled one (in logs, so that one series ten times noisier than the
    rest does not drag the others up). The scores are cross-fitted: the errors of the earlier half of a series'
    windows are divided by the ratio of its later half and the other way round, so no error is divided by a
    ratio it helped to estimate (which would make the scores too alike, and the bands too narrow). `total` sums
    over every process's windows (parallel.reduction())."""
    ratio = abs_errors.mean(axis=1) / window_scale
    positive = ratio[ratio > 0]
    sums = total(np.array([np.log(positive).sum(), len(positive)], np.float64))
    pooled = float(np.exp(sums[0] / sums[1])) if sums[1] else 1.0
    pooled = float(np.clip(pooled, 1e-9, 1e6)) if np.isfinite(pooled) else 1.0
    log_ratio = np.log(np.maximum(ratio, 1e-3 * pooled))
    count = np.bincount(series, minlength=n_series)
    rank = np.arange(len(series)) - np.searchsorted(series, series)  # position among the series' windows
    later = rank >= (count[series] + 1) // 2

    def shrunk(mask: np.ndarray) -> np.ndarray:
        n = np.bincount(series[mask], minlength=n_series)
        own = np.bincount(series[mask], weights=log_ratio[mask], minlength=n_series)
        return np.exp((own + SHRINK * np.log(pooled)) / (n + SHRINK))

    other = np.where(later, shrunk(~later)[series], shrunk(later)[series])
    return abs_errors / (window_scale * other)[:, None], shrunk(np.ones(len(series), bool)), pooled


def base_scales(scales: np.ndarray) -> np.ndarray:
    """In-sample error scales `scales: (n_series,)` (NaN where undefined) made usable as divisors: NaN takes the
    median of the others, and none is below 1% of that median (a constant series still gets a band); all ones
    when no series has a positive scale."""
    finite = scales[np.isfinite(scales) & (scales > 0)]
    if not len(finite):
        return np.ones(len(scales))
    median = float(np.median(finite))
    return np.maximum(np.where(np.isfinite(scales), scales, median), 0.01 * median)


def end_scales(target: np.ndarray, starts: np.ndarray, season: int, horizon: int) -> np.ndarray:
    """(n_series,) each series' local scale (local_scales) just after its last row: what a forecast's
    radius is scaled by, before the series' error ratio."""
    n_series = len(starts) - 1
    return base_scales(local_scales(target, starts, np.arange(n_series), starts[1:], season,
                                    local_span(horizon, season)))


def conformal_quantiles(scores: np.ndarray, level: float) -> np.ndarray:
    """Per-step split-conformal radius of `scores: (n_windows, horizon)` -> (horizon,): the ceil((n+1)·level)-th
    smallest score of each column.

    When n is too small for the level (ceil((n+1)·level) > n, i.e. level > n / (n+1): 4 windows and 95%), the
    sample holds no such score and the radius is extrapolated instead: the largest score s_max is the
    n/(n+1) quantile, and past it the tail is taken as exponential with the mean score as its scale, so the
    radius is s_max + mean · ln(1 / ((n+1)(1 - level))). It grows with the level, so two levels never share
    a band. `extrapolated(n, level)` says when this happens."""
    n = scores.shape[0]
    ordered = np.sort(scores, axis=0)
    if not extrapolated(n, level):
        return ordered[_rank(n, level) - 1]
    return ordered[-1] + scores.mean(axis=0) * math.log(1 / ((n + 1) * (1 - level)))


def _rank(n: int, level: float) -> int:
    return math.ceil(round((n + 1) * level, 9))  # (rounded: 20 x 0.95 is 19, not 19.000000000000004)


def extrapolated(n: int, level: float) -> bool:
    """Whether n calibration windows are too few for a split-conformal `level` (in (0, 1))."""
    return _rank(n, level) > n


def supported_level(n: int) -> float:
    """The highest level (percent) that n calibration windows calibrate without extrapolating."""
    return 100 * n / (n + 1)


def interval_radius(scores: np.ndarray, level: float, horizon: int) -> np.ndarray:
    """(horizon,) radii in units of the scores; beyond the calibrated horizon they grow like sqrt(step)."""
    q = conformal_quantiles(scores, level)
    calibrated = len(q)
    if horizon <= calibrated:
        return q[:horizon]
    extra = q[-1] * np.sqrt(np.arange(calibrated + 1, horizon + 1) / calibrated)
    return np.concatenate([q, extra])


# --- scores of intervals and quantiles ---------------------------------------------------------------------


def coverage(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """Share of `y` inside [lo, hi]."""
    return float(np.mean((y >= lo) & (y <= hi)))


def interval_score(y: np.ndarray, lo: np.ndarray, hi: np.ndarray, level: float) -> float:
    """Mean Winkler (interval) score of a `level` interval: its width plus 2/(1 - level) times how far y falls
    outside it (Gneiting and Raftery 2007). Divided by the MASE scale it is the M4 competition's MSIS."""
    alpha = 1 - level
    return float(np.mean(hi - lo + 2 / alpha * (np.maximum(lo - y, 0) + np.maximum(y - hi, 0))))


def pinball(y: np.ndarray, q_hat: np.ndarray, q: float) -> float:
    """Mean quantile (pinball) loss of forecasts `q_hat` of the `q` quantile."""
    diff = y - q_hat
    return float(np.mean(np.maximum(q * diff, (q - 1) * diff)))


def level_quantiles(levels: list[int] | tuple[int, ...]) -> list[float]:
    """The quantiles that central intervals of `levels` (percent) bound, with the median: 80 -> 0.1, 0.5, 0.9."""
    qs = {0.5} | {round((100 - lv) / 200, 6) for lv in levels} | {round((100 + lv) / 200, 6) for lv in levels}
    return sorted(qs)
