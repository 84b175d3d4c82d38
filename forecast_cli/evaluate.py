"""Rolling-origin backtests: how good each model's forecasts are against naive baselines, fold by fold.

Built on forecast_cli.fit and forecast_cli.forecast; the metrics themselves are in forecast_cli.metrics.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from forecast_cli import limits, timeindex
from forecast_cli.config import TrainSpec
from forecast_cli.errors import ConfigError, DataError
from forecast_cli.fit import fit_model, future_columns, resolve_window
from forecast_cli.forecast import predict
from forecast_cli.future import Future, of_rows
from forecast_cli.metrics import (
    METRICS,
    coverage,
    interval_score,
    level_quantiles,
    mae,
    mase,
    mase_scale,
    pinball,
    rmse,
    smape,
)

if TYPE_CHECKING:
    import pandas as pd

    from forecast_cli.data import Panel

BASELINES = ("naive", "snaive")
LEVELS = (80, 95)  # the intervals a backtest scores by default


def interval_metrics(levels: list[int] | tuple[int, ...]) -> list[str]:
    """The score columns of the intervals of `levels`: coverage, mean width and MSIS per level, then the scaled
    quantile loss over their bounds and the median."""
    return [f"{name}_{lv}" for lv in levels for name in ("cov", "width", "msis")] + (["sql"] if levels else [])


def cutoffs_for(folds: int, horizon: int, step: int) -> list[int]:
    """Rows dropped from the end of each series for each fold, oldest fold first."""
    check_backtest_options(folds, horizon, step)
    return [horizon + (folds - 1 - k) * step for k in range(folds)]


def check_backtest_options(folds: int, horizon: int, step: int) -> None:
    """The CLI's ranges (forecast_cli.limits), for library callers too: refused before anything is built."""
    for name, value, high in (("--folds", folds, limits.MAX_FOLDS), ("--horizon", horizon, limits.MAX_HORIZON),
                              ("--step", step, limits.MAX_STEP)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 1 <= value <= high:
            raise ConfigError(f"{name} {value!r}: expected a whole number from 1 to {high:,}")


def resolve_folds(panel: Panel, horizon: int | None, folds: int, step: int | None) -> tuple[int, int]:
    """(horizon, step) with their defaults (one season; the horizon), checked against the limits and against the
    longest series: the oldest fold's cutoff must leave it some history. Refused before any training."""
    horizon = timeindex.default_horizon(panel.freq) if horizon is None else horizon
    step = horizon if step is None else step
    check_backtest_options(folds, horizon, step)
    held_out = horizon + (folds - 1) * step
    longest = int(panel.lengths.max()) if len(panel.lengths) else 0
    if held_out >= longest:
        raise ConfigError(f"{panel.source}: {folds} fold(s) of horizon {horizon}, {step} step(s) apart, hold out "
                          f"the last {held_out} rows of each series, but the longest has {longest}; use fewer "
                          "--folds, a smaller --step or a shorter --horizon")
    return horizon, step


def backtest(panel: Panel, specs: list, horizon: int | None, folds: int = 3, step: int | None = None,
             refit: bool = True, on_fold: Callable[[str, int, int], None] | None = None,
             levels: list[int] | tuple[int, ...] = LEVELS, compare_covariates: bool = False
             ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rolling-origin evaluation of every TrainSpec in `specs` (naive and seasonal naive are always added).

    Fold k forecasts `horizon` steps from a cutoff that leaves horizon + (folds-1-k)·step rows after it, using
    only the data up to the cutoff; with refit=False each model is trained once, at the first cutoff, and
    later folds only feed it the newer data. Returns (scores: one row per model, series and fold, forecasts:
    unique_id, ds, model, fold, y, y_hat and the interval bounds). `on_fold(model, fold, folds)` is called after
    each fold of each model (fold counts from 1).

    Each model's conformal intervals at `levels` (percent; the baselines' too, calibrated on their own errors)
    are scored by interval_metrics: coverage, mean width, MSIS (the M4 competition's mean scaled interval
    score: width plus 2/(1 - level) times any miss, over the in-sample seasonal-naive MAE) and sql (the
    quantile loss averaged over the bounds and the median, over the same scale). They are NaN for a fold whose
    model kept no calibration windows.

    Future covariates (panel.future_covariates) are given their actual values after each cutoff: an oracle
    future, which measures what the covariates are worth when they are known. With `compare_covariates`, each
    model of `specs` is also backtested on the target alone, as "<kind> without covariates".
    """
    import pandas as pd

    horizon, step = resolve_folds(panel, horizon, folds, step)
    drops = cutoffs_for(folds, horizon, step)
    first = panel.truncate(drops[0])
    if not len(first.ids):
        raise DataError(f"{panel.source}: too short for {folds} folds of horizon {horizon}; use fewer --folds")
    names = [s.kind for s in specs]
    bare = panel.without_covariates()  # the baselines forecast from the target alone
    runs = [(s.kind, s, panel) for s in specs] + \
        ([(f"{s.kind} without covariates", _target_only(s), bare) for s in specs] if compare_covariates else []) + \
        [(k, TrainSpec(kind=k), bare) for k in BASELINES if k not in names]
    season = timeindex.season_length(panel.freq)
    scores, forecasts = [], []
    for label, spec, data in runs:
        window = resolve_window(first, horizon, spec.lookback)  # one window for all folds
        spec = dataclasses.replace(spec, horizon=horizon, lookback=window.lookback)  # val_size follows each fold
        oracle = _oracle(data)
        artifact = None
        for fold, drop in enumerate(drops):
            past = data.truncate(drop)
            if refit or artifact is None:
                artifact = fit_model(past, spec)
            calibrated = len(artifact.arrays["calibration/scores"]) > 0
            result = predict(artifact, None if refit or fold == 0 else past, horizon,
                             levels if calibrated else (), future=oracle).frame
            actual = _actuals(panel, drop, horizon)
            merged = result.merge(actual, on=["unique_id", "ds"], how="inner")
            merged["model"], merged["fold"] = label, fold
            forecasts.append(merged)
            scores.append(_score(merged, past, season, levels))
            if on_fold:
                on_fold(label, fold + 1, folds)
    return pd.concat(scores, ignore_index=True), pd.concat(forecasts, ignore_index=True)


def _target_only(spec: TrainSpec) -> TrainSpec:
    return dataclasses.replace(spec, data=dataclasses.replace(spec.data, covariates=(), future_covariates=(),
                                                              holidays=None, static=()))


def _oracle(panel: Panel) -> Future | None:
    """The actual values of `panel`'s future covariates at every step (a backtest's oracle future); None
    without any."""
    if not panel.future_covariates:
        return None
    columns = list(future_columns(len(panel.covariates), len(panel.future_covariates), 0, None))
    return of_rows(panel.ids, panel.ds, panel.values[:, columns], panel.starts, panel.future_covariates,
                   f"{panel.source} (its actual future covariates)")


def _actuals(panel: Panel, drop: int, horizon: int) -> pd.DataFrame:
    """unique_id, ds, y of the `horizon` rows of each series that come before its last `drop - horizon`."""
    return panel.truncate(drop - horizon).tail(horizon).to_frame()[["unique_id", "ds", "y"]]


def _score(merged: pd.DataFrame, past: Panel, season: int, levels: list[int] | tuple[int, ...]) -> pd.DataFrame:
    history = {sid: past.values[s:e, 0] for sid, s, e in zip(past.ids, past.starts[:-1], past.starts[1:],
                                                                strict=True)}
    import pandas as pd

    rows = []
    for (sid, model, fold), group in merged.groupby(["unique_id", "model", "fold"], sort=False):
        y, f = group["y"].to_numpy(), group["y_hat"].to_numpy()
        row = {"model": model, "unique_id": sid, "fold": fold, "cutoff": group["ds"].min(),
               "mae": mae(y, f), "rmse": rmse(y, f), "smape": smape(y, f), "mase": mase(y, f, history[sid], season)}
        row.update(_interval_row(group, y, mase_scale(history[sid], season), levels))
        rows.append(row)
    return pd.DataFrame(rows)


def _interval_row(group: pd.DataFrame, y: np.ndarray, scale: float, levels) -> dict:
    """interval_metrics of one series' forecast (NaN without bounds; the scaled ones NaN without a scale)."""
    row = dict.fromkeys(interval_metrics(levels), np.nan)
    if not levels or f"y_hat_lo_{levels[0]}" not in group:
        return row
    per = scale if scale and scale > 0 else np.nan
    bounds = {0.5: group["y_hat"].to_numpy()}
    for lv in levels:
        lo, hi = group[f"y_hat_lo_{lv}"].to_numpy(), group[f"y_hat_hi_{lv}"].to_numpy()
        bounds[round((100 - lv) / 200, 6)], bounds[round((100 + lv) / 200, 6)] = lo, hi
        row.update({f"cov_{lv}": coverage(y, lo, hi), f"width_{lv}": float(np.mean(hi - lo)),
                    f"msis_{lv}": interval_score(y, lo, hi, lv / 100) / per})
    row["sql"] = float(np.mean([pinball(y, bounds[q], q) for q in level_quantiles(levels)])) / per
    return row


def summarize_scores(scores: pd.DataFrame, per_series: bool = False) -> pd.DataFrame:
    """Mean of each metric per model (and per series when asked), averaged over series and folds (the interval
    metrics over the folds that had intervals)."""
    import pandas as pd

    keys = ["model", "unique_id"] if per_series else ["model"]
    order = list(dict.fromkeys(scores["model"]))
    metrics = [c for c in scores.columns if c in METRICS or c.split("_")[0] in ("cov", "width", "msis") or c == "sql"]
    table = scores.groupby(keys, sort=False)[metrics].mean().reset_index()
    table["model"] = pd.Categorical(table["model"], order, ordered=True)
    return table.sort_values(keys).reset_index(drop=True).assign(model=lambda t: t["model"].astype(str))
