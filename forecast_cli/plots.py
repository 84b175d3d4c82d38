"""Pictures of forecasts and backtests: one panel per series, dates on the x axis, the target's name on the y
axis. matplotlib runs with its non-interactive Agg backend, and files are written atomically."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

MAX_PANELS = 12
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def _figure(n_panels: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 1 if n_panels == 1 else 2
    rows = math.ceil(n_panels / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(7 * columns, 3.2 * rows), squeeze=False)
    for ax in axes.flat[n_panels:]:
        ax.set_visible(False)
    return fig, list(axes.flat[:n_panels])


def _format_axis(ax, ds, ylabel: str) -> None:
    import matplotlib.dates as mdates

    if np.issubdtype(np.asarray(ds).dtype, np.datetime64):
        locator = mdates.AutoDateLocator(minticks=3, maxticks=7)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    else:
        ax.set_xlabel("period")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)


def _save(fig, path: str | Path) -> None:
    """Render the PNG, then write it atomically (persistence.write_atomic: a temporary file beside `path` and a
    rename; a link keeps pointing at the new picture, the mode of a replaced file is kept). A filesystem error
    is an OutputError naming `path`, and what was there before is unchanged."""
    import matplotlib.pyplot as plt

    from forecast_cli.persistence import write_atomic

    try:
        fig.tight_layout()
        write_atomic(path, lambda f: fig.savefig(f, format="png", dpi=110))
    finally:
        plt.close(fig)


def pick_series(ids: list[str], wanted: list[str] | None) -> tuple[list[str], str | None]:
    """The series to draw (at most MAX_PANELS) and a note when some were left out."""
    if wanted:
        return list(wanted)[:MAX_PANELS], None
    if len(ids) > MAX_PANELS:
        return list(ids)[:MAX_PANELS], f"showing the first {MAX_PANELS} of {len(ids)} series; choose with --series"
    return list(ids), None


def plot_forecast(history: pd.DataFrame, forecast: pd.DataFrame, levels: list[int], path: str | Path,
                  ylabel: str = "y") -> None:
    """history: unique_id, ds, y (recent observations); forecast: unique_id, ds, y_hat[, y_hat_lo_L, ...]."""
    ids = list(dict.fromkeys(forecast["unique_id"]))
    fig, axes = _figure(len(ids))
    for ax, sid in zip(axes, ids, strict=True):
        past = history[history["unique_id"] == sid]
        future = forecast[forecast["unique_id"] == sid]
        ax.plot(past["ds"], past["y"], color="black", linewidth=1.2, label="history")
        for level, alpha in zip(sorted(levels, reverse=True), (0.18, 0.32, 0.45), strict=False):
            ax.fill_between(future["ds"], future[f"y_hat_lo_{level}"], future[f"y_hat_hi_{level}"],
                            color=COLORS[0], alpha=alpha, linewidth=0, label=f"{level}% interval")
        joined = pd.concat([past.tail(1).rename(columns={"y": "y_hat"}), future])  # no gap at the origin
        ax.plot(joined["ds"], joined["y_hat"], color=COLORS[0], linewidth=1.8, label="forecast")
        ax.set_title(str(sid), fontsize=10, loc="left")
        _format_axis(ax, future["ds"].to_numpy(), ylabel)
    axes[0].legend(loc="upper left", fontsize=8, frameon=False)
    _save(fig, path)


def plot_backtest(panel, forecasts: pd.DataFrame, path: str | Path, series: list[str] | None = None) -> None:
    """What happened against each model's forecast from every backtest cutoff."""
    ids, _ = pick_series(list(panel.ids), series)
    fig, axes = _figure(len(ids))
    models = list(dict.fromkeys(forecasts["model"]))
    start = forecasts["ds"].min()
    frame = panel.select(np.isin(panel.ids, ids)).to_frame()
    for ax, sid in zip(axes, ids, strict=True):
        actual = frame[frame["unique_id"] == sid]
        span = actual[actual["ds"] >= start]
        context = actual[actual["ds"] < start].tail(max(len(span), 10))
        shown = pd.concat([context, span])
        ax.plot(shown["ds"], shown["y"], color="black", linewidth=1.2, label="actual")
        for color, model in zip(COLORS, models, strict=False):
            mine = forecasts[(forecasts["unique_id"] == sid) & (forecasts["model"] == model)]
            for k, (_, fold) in enumerate(mine.groupby("fold")):
                ax.plot(fold["ds"], fold["y_hat"], color=color, linewidth=1.5, label=model if k == 0 else None,
                        linestyle="--" if model in ("naive", "snaive") else "-")
        ax.axvline(start, color="grey", linewidth=0.8, linestyle=":")
        ax.set_title(str(sid), fontsize=10, loc="left")
        _format_axis(ax, shown["ds"].to_numpy(), panel.columns.get("target") or "y")
    axes[0].legend(loc="upper left", fontsize=8, frameon=False, ncol=2)
    _save(fig, path)
