"""The `auto` kind (the default): the GRU blended with the Theta method and exponential smoothing (ETS), the
blend's shares and Theta's drift chosen on the validation windows.

The network learns across series; Theta and ETS extrapolate each series' own level, trend and season and need
only a short history: Theta a share of the linear trend, ETS a damped trend and a season it keeps adapting,
with the form chosen per series (models/ets.py). Which is better, and how much of its trend Theta should
extrapolate, depends on the data (see docs/accuracy.md), so `auto` tries every BLENDS triple on the validation
windows and keeps the one with the least error. Series shorter than the network's lookback are forecast by the
statistical members alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from forecast_cli.errors import TrainingError
from forecast_cli.metrics import mase_weights
from forecast_cli.models import FitTask, Fitted, Model, Predictor
from forecast_cli.models import ets as exponential
from forecast_cli.models.rnn import GRU
from forecast_cli.models.theta import fit_rows, theta
from forecast_cli.windows import window_forecasts

if TYPE_CHECKING:
    from forecast_cli.artifact import Manifest

WEIGHTS = tuple(i / 10 for i in range(11))  # the network's share of the forecast, Theta has the rest (steps of
# 0.1 beat steps of 0.25 on the M1 holdouts of all three frequencies, docs/accuracy.md)
DRIFTS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5)  # Theta's share of the linear trend (0.5 is the classic method)
CONTEXT = 256  # most recent steps of each series that Theta sees (and the model directory keeps)
MAX_WINDOWS = 5000  # validation windows used to choose the weight (evenly spaced when there are more)


def context_rows(lengths: np.ndarray, lookback: int) -> int:
    """How many of the latest steps of each series to keep for Theta: all of the longest, up to CONTEXT."""
    return int(max(lookback, min(int(lengths.max()), CONTEXT)))


def histories(target: np.ndarray, starts: np.ndarray, begin: np.ndarray, lookback: int) -> np.ndarray:
    """(n, at most CONTEXT) the history of each window's series up to its forecast origin, as `complete` sees a
    series' context (NaN on the left): for the windows starting at rows `begin: (n,)` of `target: (n_rows,)`."""
    series = np.searchsorted(starts, begin, side="right") - 1
    origin = begin + lookback
    first = np.maximum(starts[series], origin - CONTEXT)
    history = np.full((len(begin), int((origin - first).max()) if len(begin) else 0), np.nan)
    for i, (a, b) in enumerate(zip(first, origin, strict=True)):
        history[i, history.shape[1] - (b - a) :] = target[a:b]
    return history


def ets_on_windows(starts: np.ndarray, begin: np.ndarray, history: np.ndarray, horizon: int, season: int
                   ) -> np.ndarray:
    """ETS forecasts (n, horizon) of the windows starting at rows `begin: (n,)`, whose histories are `history`
    (histories of the same windows): each series fitted once, on its history up to its first window's origin,
    and those parameters run over each window's history to its own origin."""
    series = np.searchsorted(starts, begin, side="right") - 1
    own, first = np.unique(series, return_index=True)
    fit = exponential.fit_rows(history[first], season)
    return exponential.refilter(fit, np.searchsorted(own, series), history, season).forecast(horizon)


def theta_on_windows(history: np.ndarray, horizon: int, season: int) -> dict[float, np.ndarray]:
    """Theta forecasts {drift: (n, horizon)} from each row of `history` (see histories)."""
    fits = fit_rows(history, season)
    return {d: np.stack([f.forecast(horizon, d) for f in fits]) for d in DRIFTS}


BLENDS = tuple((drift, w, e) for drift in DRIFTS for w in WEIGHTS for e in WEIGHTS if w + e < 1 + 1e-9)
# every (Theta's drift, the network's share, ETS's share) tried; Theta has the rest


def blend_key(drift: float, weight: float, ets_share: float) -> str:
    """The name of a triple in the manifest's blend.errors."""
    return f"{drift:g}/{weight:g}/{round(ets_share, 1):g}"


def blended(weight: float, ets_share: float, network: np.ndarray, by_theta: np.ndarray,
            by_ets: np.ndarray | None) -> np.ndarray:
    """The forecast of a blend; `by_ets` may be None when its share is 0."""
    out = weight * network + (1 - weight - ets_share) * by_theta
    return out + ets_share * by_ets if ets_share > 0 else out


def blend_error_sums(network: np.ndarray, by_theta: dict[float, np.ndarray], by_ets: np.ndarray, truth: np.ndarray,
                     window_weight: np.ndarray) -> np.ndarray:
    """(len(BLENDS),) each triple's sum over the windows of (mean absolute error x window weight). Sums, so that
    processes holding different windows can add theirs up before choosing (see choose_from_sums).

    `network`, `by_ets`, `truth` and each `by_theta[drift]`: (n_windows, horizon) in the same units;
    `window_weight: (n_windows,)` each window's weight (the inverse of its series' error scale)."""
    return np.array([np.sum(np.mean(np.abs(blended(w, e, network, by_theta[drift], by_ets) - truth), axis=1)
                            * window_weight) for drift, w, e in BLENDS])


def choose_from_sums(sums: np.ndarray, total_weight: float) -> tuple[float, float, float, dict[str, float]]:
    """The triple with the least weighted mean error: (drift, network share, ETS share, the error of each triple
    by blend_key, leaving out those that overflowed); ties go to the larger network share, then the smaller ETS
    share (the cheaper forecast), then the classic drift 0.5. ValueError when no triple's error is finite."""
    errors = dict(zip(BLENDS, (float(e) for e in np.asarray(sums) / total_weight), strict=True))
    finite = [e for e in errors.values() if np.isfinite(e)]
    if not finite:
        raise ValueError("no blend has a finite validation error")
    best = min(finite)
    drift, weight, share = max((b for b, e in errors.items() if e <= best),
                               key=lambda b: (b[1], -b[2], -abs(b[0] - 0.5)))
    return drift, weight, share, {blend_key(*b): round(e, 6) for b, e in errors.items() if np.isfinite(e)}


def choose_blend(network: np.ndarray, by_theta: dict[float, np.ndarray], by_ets: np.ndarray, truth: np.ndarray,
                 window_weight: np.ndarray) -> tuple[float, float, float, dict[str, float]]:
    """The triple of BLENDS with the least weighted mean absolute error on the validation windows
    (blend_error_sums, then choose_from_sums)."""
    return choose_from_sums(blend_error_sums(network, by_theta, by_ets, truth, window_weight),
                            float(np.sum(window_weight)))


class Auto(Model):
    """The default kind: the GRU, blended with Theta and ETS by the shares and drift that validation chose."""

    name = "auto"
    trained_on_loss = True
    sees_future = True
    context = True
    short_series = "Theta"

    def fit(self, task: FitTask) -> Fitted:
        return GRU.fit(task)

    def predictor(self, model: dict, horizon: int, season: int, params: dict[str, np.ndarray]) -> Predictor:
        return GRU.predictor(model, horizon, season, params)

    def update(self, task: FitTask, manifest: Manifest, params: dict[str, np.ndarray],
               state: dict[str, np.ndarray]) -> Fitted:
        """The network trains on (GRU.update); the blend stays (chosen again on the newest windows, one per series,
        it measured worse: docs/accuracy.md); Theta refits at forecast time on the updated context."""
        return GRU.update(task, manifest, params, state)

    def after_fit(self, task: FitTask, predictor: Predictor, val_idx: np.ndarray, chosen: dict | None = None
                  ) -> tuple[dict, np.ndarray, np.ndarray | None]:
        """The network's and ETS's shares and Theta's drift, and the blended validation forecasts (scaled units)
        of at most MAX_WINDOWS evenly spaced validation windows, which validation then judges; weight 1 (the
        statistical members left out)
        when there are no validation windows to judge by. They are chosen on the MASE of the blend in original
        units (each window's error divided by its series' in-sample seasonal-naive error), unless `chosen`
        already holds a blend (chosen on a calibration holdout's windows, which are more). With several
        processes, each adds up its own windows' errors and the sums are shared, so all choose alike."""
        if len(val_idx) > MAX_WINDOWS:
            val_idx = val_idx[np.linspace(0, len(val_idx) - 1, MAX_WINDOWS).astype(int)]
        if chosen is None and not task.total(np.array(len(val_idx))):
            return {"blend": {"weight": 1.0, "drift": 0.5, "ets": 0.0, "errors": {}}}, val_idx, None
        panel, scaler, season = task.panel, task.scaler, task.season
        sums, weight_sum = np.zeros(len(BLENDS)), 0.0
        if len(val_idx):
            L, H = task.window.lookback, task.window.horizon
            scaled, Y = window_forecasts(predictor, task.inputs, val_idx, L, H, task.future)
            series = np.searchsorted(panel.starts, val_idx, side="right") - 1
            network = scaler.inverse_target(scaled, series)
            history = histories(panel.values[:, 0], panel.starts, val_idx, L)
            by_theta = theta_on_windows(history, H, season)
            share = None if chosen is None else chosen["blend"].get("ets", 0.0)
            by_ets = ets_on_windows(panel.starts, val_idx, history, H, season) \
                if share is None or share > 0 else None
            if chosen is None:
                window_weight = mase_weights(panel.values[:, 0], panel.starts, task.fit_lengths, season)[val_idx]
                sums = blend_error_sums(network, by_theta, by_ets, scaler.inverse_target(Y, series), window_weight)
                weight_sum = float(np.sum(window_weight))
        if chosen is None:
            shared = task.total(np.append(sums, weight_sum))
            try:
                drift, weight, share, errors = choose_from_sums(shared[:-1], float(shared[-1]))
            except ValueError as e:
                raise TrainingError(f"cannot choose the blend: {e} (a numerical overflow); nothing was saved. Try "
                                    "--scaling robust or another --model") from e
            chosen = {"blend": {"weight": weight, "drift": drift, "ets": share, "errors": errors}}
        if not len(val_idx):
            return chosen, val_idx, np.zeros((0, task.window.horizon))
        b = chosen["blend"]
        forecast = blended(b["weight"], b.get("ets", 0.0), network, by_theta[b["drift"]], by_ets)
        return chosen, val_idx, scaler.target_to_scaled(forecast, series)

    def context_state(self, context: np.ndarray, season: int, fields: dict) -> dict[str, np.ndarray]:
        """ETS fitted on the context once, when the blend uses it: a forecast of the saved context then only
        projects its state."""
        if fields["blend"].get("ets", 0.0) <= 0:
            return {}
        return exponential.fit_rows(context, season).arrays()

    def complete(self, forecast: np.ndarray, short: np.ndarray, context: np.ndarray | None, horizon: int,
                 manifest: Manifest, saved: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """The network's share blended with Theta (fitted now, on the context) and ETS (from its saved state, or
        fitted now on fresh data); series too short for the network get the statistical members alone, in the
        blend's proportion between them (Theta alone when the blend has neither)."""
        b = manifest.blend
        share = b.get("ets", 0.0)  # models saved before ETS joined have none
        by_theta = theta(context, horizon, manifest.season, b.get("drift", 0.5))
        by_ets = None
        if share > 0:
            by_ets = exponential.forecast_saved(saved, horizon) if saved else \
                exponential.ets(context, horizon, manifest.season)
        long = blended(b["weight"], share, forecast, by_theta, by_ets)
        statistical = 1 - b["weight"]
        alone = blended(0.0, share / statistical if statistical > 0 else 0.0, forecast, by_theta, by_ets)
        return np.where(short[:, None], alone, long)


AUTO = Auto()
