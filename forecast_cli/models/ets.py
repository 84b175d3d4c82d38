"""Exponential smoothing (Holt-Winters in the ETS family) for every series at once, in JAX.

Each series gets its own smoothing parameters: alpha (level), beta (trend), phi (damping) and gamma (season),
fitted together for all series by gradient descent on the in-sample one-step squared error (one compiled
function: the recursion is a `lax.scan` over time, each series a row of the arrays). Four forms are fitted
side by side, trend none or damped x season none or seasonal (multiplicative when the series is positive,
additive otherwise), and each series keeps the form with the least AICc (Hyndman et al. 2002). The initial
states come from the first observations (a regression line through the first seasons, seasonal indices by
their ratio to it), so a fit is a function of the history alone; `auto` keeps the state at the end of the
context (EtsFit.arrays) so that a forecast only projects it.

Works on plain arrays, one row per series, NaN on the left where a series is shorter than the row, like
models/theta.py; `auto` blends it with the network and Theta (models/auto.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

PHI = (0.8, 0.98)  # the damping range: 0.98 is close to a linear trend, 0.8 flattens within a few steps
STEPS = 80  # Adam iterations of the fit: 60, 100 and 250 gave M1 MASE within 1% of each other, in time ~ STEPS
RATE = 0.1  # Adam's learning rate on the parameters' logits
MAX_SEASON = 52  # longer seasons (hourly data's 168) are left to the network; ETS fits them as non-seasonal
FORMS = ((False, False), (True, False), (False, True), (True, True))  # (damped trend, seasonal)
TIME_BUCKET = 32  # histories are padded to a power of two steps (at least this), and the fitted rows to one of
# eight sizes per power of two (at least ROW_BUCKET): validation, calibration and forecasts of one data set then
# share compiled fits
ROW_BUCKET = 64


@dataclass(frozen=True)
class EtsFit:
    """Per series (rows): the chosen form, its parameters and the state at the end of the history, in units
    of each series' `unit`."""

    trend: np.ndarray  # (n,) bool: damped trend
    seasonal: np.ndarray  # (n,) bool
    multiplicative: np.ndarray  # (n,) bool: the season multiplies (positive series)
    params: np.ndarray  # (n, 4): alpha, beta, gamma, phi
    level: np.ndarray  # (n,)
    slope: np.ndarray  # (n,)
    season: np.ndarray  # (n, m): the seasonal factors of the next m steps, the first one's first
    unit: np.ndarray  # (n,)

    def forecast(self, horizon: int) -> np.ndarray:
        """(n, horizon) forecasts: level + (phi + ... + phi^h) slope, times or plus the season."""
        return _project(self.level, self.slope, self.season, self.params[:, 3], self.multiplicative,
                        horizon) * self.unit[:, None]


    def arrays(self) -> dict[str, np.ndarray]:
        """What a forecast needs, as the model directory keeps it ("ets/state": level, slope, phi, unit and the
        next m seasonal factors per row; "ets/multiplicative")."""
        state = np.column_stack([self.level, self.slope, self.params[:, 3], self.unit, self.season])
        return {"ets/state": state, "ets/multiplicative": self.multiplicative.astype(bool)}


def forecast_saved(arrays: dict[str, np.ndarray], horizon: int) -> np.ndarray:
    """(n, horizon) forecasts from EtsFit.arrays(): no fit and no pass over the history."""
    state = np.asarray(arrays["ets/state"], np.float64)
    return _project(state[:, 0], state[:, 1], state[:, 4:], state[:, 2], arrays["ets/multiplicative"],
                    horizon) * state[:, 3:4]


def state_width(season: int) -> int:
    """Columns of "ets/state" for a model of this season length."""
    return 4 + (season if 1 < season <= MAX_SEASON else 1)


def _project(level, slope, season, phi, multiplicative, horizon: int) -> np.ndarray:
    h = np.arange(1, horizon + 1)
    damped = np.cumsum(phi[:, None] ** h[None, :], axis=1)
    base = level[:, None] + damped * slope[:, None]
    factor = season[:, (h - 1) % season.shape[1]]
    return np.where(multiplicative[:, None], base * factor, base + factor)


def ets(history: np.ndarray, horizon: int, season: int) -> np.ndarray:
    """history: (n, length), NaN-padded on the left -> (n, horizon) forecasts."""
    if not len(history):
        return np.zeros((0, horizon))
    return fit_rows(history, season).forecast(horizon)


def fit_rows(history: np.ndarray, season: int) -> EtsFit:
    """Fit every form to every row of `history: (n, length)` (NaN on the left) and keep each row's best by
    AICc; the seasonal forms only for rows of at least two seasons."""
    y, mask, unit, m = _prepare(history, season)
    n = len(y)
    positive = np.where(mask, y, np.inf).min(axis=1) > 0
    lengths = mask.sum(axis=1)
    can_season = (m > 1) & (lengths >= 2 * m)
    series = np.concatenate([np.arange(n) if not seasonal else np.flatnonzero(can_season) for _, seasonal in FORMS])
    form = np.concatenate([np.full(n if not s else int(can_season.sum()), i) for i, (_, s) in enumerate(FORMS)])
    trend, seasonal = np.array(FORMS)[form].T
    multiplicative = seasonal & positive[series]
    Y, M = y[series], mask[series]
    level0, slope0, season0 = _initial(Y, M, m, seasonal, multiplicative)
    params, sse = _fit(Y.astype(np.float32), M, level0, slope0 * trend, season0, trend, seasonal, multiplicative)
    counts = lengths[series].astype(np.float64)
    n_params = 2 + 3 * trend + (m if m > 1 else 0) * seasonal  # alpha, l0 (+ beta, phi, b0) (+ gamma, m - 1 indices)
    aicc = counts * np.log(np.maximum(sse / np.maximum(counts, 1), 1e-12)) + 2 * n_params + \
        2 * n_params * (n_params + 1) / np.maximum(counts - n_params - 1, 1)
    table = np.full((len(FORMS), n), np.inf)
    table[form, series] = np.where(np.isfinite(aicc), aicc, np.inf)
    chosen = np.argmin(table, axis=0)
    row_of = np.full((len(FORMS), n), -1)
    row_of[form, series] = np.arange(len(series))
    best = row_of[chosen, np.arange(n)]
    level, slope, factors = _filter(Y[best].astype(np.float32), M[best], level0[best], slope0[best] * trend[best],
                                    season0[best], params[best], trend[best], seasonal[best], multiplicative[best])
    return EtsFit(trend[best], seasonal[best], multiplicative[best], params[best], level, slope, factors, unit)


def refilter(fit: EtsFit, rows: np.ndarray, history: np.ndarray, season: int) -> EtsFit:
    """Run the forms and parameters of `fit`'s rows `rows: (n,)` over new histories `history: (n, length)` (NaN
    on the left), without fitting again: their states at the end of each new history. What `auto` does for its
    validation windows, many per series: one fit per series, one cheap pass per window."""
    y, mask, unit, m = _prepare(history, season)
    trend, seasonal = fit.trend[rows], fit.seasonal[rows] & (mask.sum(axis=1) >= 2 * m) & (m > 1)
    multiplicative = seasonal & (np.where(mask, y, np.inf).min(axis=1) > 0)
    params = fit.params[rows].copy()
    params[~seasonal, 2] = 0.0
    level0, slope0, season0 = _initial(y, mask, m, seasonal, multiplicative)
    level, slope, factors = _filter(y.astype(np.float32), mask, level0, slope0 * trend, season0, params, trend,
                                    seasonal, multiplicative)
    return EtsFit(trend, seasonal, multiplicative, params, level, slope, factors, unit)


def _prepare(history: np.ndarray, season: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(y in units of each row's mean absolute value with 0 where missing, the mask of values, the unit, the
    season length the fit uses). The time axis is padded on the left to a power of two (at least TIME_BUCKET),
    so that the validation histories and the context of one data set share one compiled fit."""
    history = np.asarray(history, np.float64)
    pad = max(TIME_BUCKET, 1 << max(history.shape[1] - 1, 0).bit_length()) - history.shape[1]
    history = np.concatenate([np.full((len(history), pad), np.nan), history], axis=1)
    mask = np.isfinite(history)
    size = np.where(mask, np.abs(history), 0)
    largest = size.max(axis=1) if size.size else np.zeros(len(size))
    largest = np.where(largest > 0, largest, 1.0)  # the mean taken in units of the largest cannot overflow
    unit = largest * ((size / largest[:, None]).sum(axis=1) / np.maximum(mask.sum(axis=1), 1))
    unit = np.where(unit > 0, unit, 1.0)
    y = np.where(mask, history, 0.0) / unit[:, None]
    return y, mask, unit, season if 1 < season <= MAX_SEASON else 1


def _initial(y: np.ndarray, mask: np.ndarray, m: int, seasonal: np.ndarray, multiplicative: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Initial level, slope and seasonal factors (n, m) of each row, from its first values: a least-squares line
    through the first max(2m, 10) of them (its value one step before the first observation, and its slope),
    the seasonal factors the first season's ratios (or differences) to that line, normalised."""
    n, T = y.shape
    first = T - mask.sum(axis=1)
    span = max(2 * m, 10)
    offsets = np.arange(span)
    cols = np.minimum(first[:, None] + offsets, T - 1)
    valid = (first[:, None] + offsets) < T
    v = np.where(valid, y[np.arange(n)[:, None], cols], 0.0)
    t = np.where(valid, offsets, 0.0)
    count = np.maximum(valid.sum(axis=1), 1)
    t_mean, v_mean = t.sum(axis=1) / count, v.sum(axis=1) / count
    var = np.where(valid, (t - t_mean[:, None]) ** 2, 0).sum(axis=1)
    slope = np.where(var > 0, np.where(valid, (t - t_mean[:, None]) * (v - v_mean[:, None]), 0).sum(axis=1) /
                     np.where(var > 0, var, 1), 0.0)
    level = v_mean - slope * (t_mean + 1)
    line = level[:, None] + slope[:, None] * (offsets[None, :m] + 1)
    first_season = v[:, :m]
    ratio = first_season / np.where(np.abs(line) > 1e-9, line, 1e-9)
    ratio = np.clip(ratio, 0.05, 20.0)
    ratio = ratio / ratio.mean(axis=1, keepdims=True)
    diff = first_season - line
    diff = diff - diff.mean(axis=1, keepdims=True)
    neutral = np.where(multiplicative, 1.0, 0.0)[:, None] * np.ones((1, m))
    factors = np.where(seasonal[:, None], np.where(multiplicative[:, None], ratio, diff), neutral)
    slots = (first[:, None] + np.arange(m)[None, :]) % m  # the factor of column first + j sits at its column % m
    placed = np.empty_like(factors)
    placed[np.arange(n)[:, None], slots] = factors
    return level, slope, placed


def _constrain(raw, trend, seasonal):
    """Logits (n, 4) -> alpha in (0, 1), beta in (0, alpha), gamma in (0, 1 - alpha), phi in PHI; beta and gamma
    0 for forms without a trend or season, phi 0 without a trend."""
    import jax.numpy as jnp
    from jax.nn import sigmoid

    alpha = 0.0001 + 0.9998 * sigmoid(raw[:, 0])
    beta = jnp.where(trend, alpha * sigmoid(raw[:, 1]), 0.0)
    gamma = jnp.where(seasonal, (1 - alpha) * sigmoid(raw[:, 2]), 0.0)
    phi = jnp.where(trend, PHI[0] + (PHI[1] - PHI[0]) * sigmoid(raw[:, 3]), 0.0)
    return jnp.stack([alpha, beta, gamma, phi], axis=1)


def _recursion(y, mask, level, slope, factors, params, multiplicative):
    """Run the smoothing over time: (final level, slope, factors, squared one-step errors summed per row).

    `factors: (n, m)` holds the seasonal factor of column t at t % m (the same slot for every row, so a step
    reads and writes one slot rather than rolling the whole array). The scan carries them slot-major, (m, n), so
    that a slot is a contiguous row: with the (n, m) column read and written by dynamic index at every step, the
    fit of M1 monthly's 617 contexts (2,468 rows x 256 steps) took 3.6-3.9 s warm, slot-major 2.4 s, the same
    forecasts to the bit."""
    import jax
    import jax.numpy as jnp

    alpha, beta, gamma, phi = (params[:, i] for i in range(4))
    m = factors.shape[1]

    def step(carry, inputs):
        level, slope, factors, sse = carry
        value, seen, t = inputs
        s = jax.lax.dynamic_index_in_dim(factors, t % m, axis=0, keepdims=False)
        base = level + phi * slope
        guess = jnp.where(multiplicative, base * s, base + s)
        error = value - guess
        adjusted = jnp.where(multiplicative, value / jnp.maximum(s, 1e-3), value - s)
        new_level = alpha * adjusted + (1 - alpha) * base
        new_slope = beta * (new_level - level) + (1 - beta) * phi * slope
        ratio = jnp.where(multiplicative, value / jnp.where(jnp.abs(new_level) > 1e-3, new_level, 1e-3),
                          value - new_level)
        new_s = jnp.where(seen, gamma * ratio + (1 - gamma) * s, s)
        factors = jax.lax.dynamic_update_index_in_dim(factors, new_s, t % m, axis=0)
        level = jnp.where(seen, new_level, level)
        slope = jnp.where(seen, new_slope, slope)
        sse = sse + jnp.where(seen, jnp.minimum(error**2, 1e6), 0.0)
        return (level, slope, factors, sse), None

    init = (level, slope, factors.T, jnp.zeros_like(level))
    steps = jnp.arange(y.shape[1])
    (level, slope, factors, sse), _ = jax.lax.scan(step, init, (y.T, mask.T, steps))
    return level, slope, factors.T, sse


@cache
def _compiled():
    """The jitted fit and filter (built on first use, so importing this module does not import JAX)."""
    import jax
    import jax.numpy as jnp
    import optax

    def fit(y, mask, level, slope, factors, trend, seasonal, multiplicative):
        tx = optax.adam(RATE)
        count = jnp.maximum(mask.sum(axis=1), 1)

        def loss(raw):
            """The sum of the rows' mean squared errors: each row's depends on its own parameters only."""
            sse = _recursion(y, mask, level, slope, factors, _constrain(raw, trend, seasonal), multiplicative)[3]
            return jnp.sum(sse / count), sse

        raw = jnp.zeros((len(y), 4), jnp.float32).at[:, 0].set(-1.0).at[:, 1].set(-2.0).at[:, 2].set(-2.0)
        raw = raw.at[:, 3].set(1.0)

        def body(_, state):
            raw, opt = state
            updates, opt = tx.update(jax.grad(lambda r: loss(r)[0])(raw), opt)
            return optax.apply_updates(raw, updates), opt

        raw, _ = jax.lax.fori_loop(0, STEPS, body, (raw, tx.init(raw)))
        return _constrain(raw, trend, seasonal), loss(raw)[1]

    def run(y, mask, level, slope, factors, params, multiplicative):
        return _recursion(y, mask, level, slope, factors, params, multiplicative)[:3]

    return jax.jit(fit), jax.jit(run)


def _padded(n: int, *arrays: np.ndarray) -> list[np.ndarray]:
    """`arrays` (each with n rows) padded with rows of zeros to one of eight sizes per power of two (at least
    ROW_BUCKET): at most 1/8 more work, and few distinct shapes to compile."""
    step = max(ROW_BUCKET, 1 << max(n - 1, 0).bit_length()) // 8
    rows = max(ROW_BUCKET, -(-n // step) * step)
    return [np.concatenate([a, np.zeros((rows - n, *a.shape[1:]), a.dtype)]) for a in arrays]


def _fit(y, mask, level, slope, factors, trend, seasonal, multiplicative) -> tuple[np.ndarray, np.ndarray]:
    """(params (n, 4), each row's in-sample squared one-step error sum) of the fit."""
    fit, _ = _compiled()
    n = len(y)
    params, sse = fit(*_padded(n, y, mask, level.astype(np.float32), slope.astype(np.float32),
                               factors.astype(np.float32), trend, seasonal, multiplicative))
    return np.asarray(params, np.float64)[:n], np.asarray(sse, np.float64)[:n]


def _filter(y, mask, level, slope, factors, params, trend, seasonal, multiplicative):
    """The state (level, slope, the factors of the next m steps) at the end of each row's history under
    `params`."""
    _, run = _compiled()
    n = len(y)
    level, slope, factors = (np.asarray(a, np.float64)[:n] for a in run(*_padded(
        n, y, mask, level.astype(np.float32), slope.astype(np.float32), factors.astype(np.float32),
        params.astype(np.float32), multiplicative)))
    return level, slope, np.roll(factors, -(y.shape[1] % factors.shape[1]), axis=1)
