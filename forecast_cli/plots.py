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


# Tick labels by tick spacing (years, months, days, hours, minutes, seconds): every label says its own date, so
# no offset label is needed (ConciseDateFormatter's offset named the last tick's year, "1989-Jan" under December
# 1988 data)
DATE_FORMATS = ["%Y", "%b %Y", "%Y-%m-%d", "%m-%d %H:%M", "%m-%d %H:%M", "%H:%M:%S"]


def _format_axis(ax, ds, ylabel: str, xlabel: str | None = None) -> None:
    import matplotlib.dates as mdates
    from matplotlib.ticker import MaxNLocator

    if np.issubdtype(np.asarray(ds).dtype, np.datetime64):
        locator = mdates.AutoDateLocator(minticks=3, maxticks=7)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(
            locator, formats=DATE_FORMATS, zero_formats=DATE_FORMATS, show_offset=False))
    else:  # integer periods (years, ...): whole-number ticks only
        ax.xaxis.set_major_locator(MaxNLocator(nbins=7, integer=True))
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)


def _legend(fig, axes) -> None:
    """One legend for the figure, below the panels, so that it never sits on the data."""
    handles, labels = axes[0].get_legend_handles_labels()
    if not handles:
        fig.tight_layout()
        return
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.4 / fig.get_figheight(), 1, 1))  # room for the legend: 0.4 inch


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-9, atol=1e-12)


def _save(fig, path: str | Path) -> None:
    """Render the PNG, then write it atomically (persistence.write_atomic: a temporary file beside `path` and a
    rename; a link keeps pointing at the new picture, the mode of a replaced file is kept). A filesystem error
    is an OutputError naming `path`, and what was there before is unchanged."""
    import matplotlib.pyplot as plt

    from forecast_cli.persistence import write_atomic

    try:
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
                  ylabel: str | None = None, xlabel: str | None = None) -> None:
    """history: unique_id, ds, y (recent observations); forecast: unique_id, ds, y_hat[, y_hat_lo_L, ...].
    ylabel: the target's name (None: each panel's series id, as in the wide layout); xlabel: the time column's."""
    _save(draw_forecast(history, forecast, levels, ylabel, xlabel), path)


def draw_forecast(history: pd.DataFrame, forecast: pd.DataFrame, levels: list[int], ylabel: str | None = None,
                  xlabel: str | None = None):
    """The figure plot_forecast saves. Intervals of equal width on every series are drawn once, labelled
    together ("80% = 95% interval")."""
    ids = list(dict.fromkeys(forecast["unique_id"]))
    fig, axes = _figure(len(ids))
    shown: list[list[int]] = []  # groups of levels whose bands coincide everywhere
    for level in sorted(levels, reverse=True):
        bounds = forecast[[f"y_hat_lo_{level}", f"y_hat_hi_{level}"]].to_numpy()
        for group in shown:
            if _same(bounds, forecast[[f"y_hat_lo_{group[0]}", f"y_hat_hi_{group[0]}"]].to_numpy()):
                group.append(level)
                break
        else:
            shown.append([level])
    for ax, sid in zip(axes, ids, strict=True):
        past = history[history["unique_id"] == sid]
        future = forecast[forecast["unique_id"] == sid]
        ax.plot(past["ds"], past["y"], color="black", linewidth=1.2, label="history")
        for group, alpha in zip(shown, (0.18, 0.32, 0.45), strict=False):
            label = " = ".join(f"{level}%" for level in sorted(group)) + " interval"
            ax.fill_between(future["ds"], future[f"y_hat_lo_{group[0]}"], future[f"y_hat_hi_{group[0]}"],
                            color=COLORS[0], alpha=alpha, linewidth=0, label=label)
        joined = pd.concat([past.tail(1).rename(columns={"y": "y_hat"}), future])  # no gap at the origin
        ax.plot(joined["ds"], joined["y_hat"], color=COLORS[0], linewidth=1.8, label="forecast")
        ax.set_title(str(sid), fontsize=10, loc="left")
        _format_axis(ax, future["ds"].to_numpy(), ylabel or str(sid), xlabel)
    _legend(fig, axes)
    return fig


def plot_backtest(panel, forecasts: pd.DataFrame, path: str | Path, series: list[str] | None = None) -> None:
    """What happened against each model's forecast from every backtest cutoff."""
    _save(draw_backtest(panel, forecasts, series), path)


def draw_backtest(panel, forecasts: pd.DataFrame, series: list[str] | None = None):
    """The figure plot_backtest saves. A model whose forecasts equal another's everywhere (naive and seasonal
    naive with a season of 1) is drawn once, labelled with both names."""
    ids, _ = pick_series(list(panel.ids), series)
    fig, axes = _figure(len(ids))
    start = forecasts["ds"].min()
    frame = panel.select(np.isin(panel.ids, ids)).to_frame()
    groups: list[list[str]] = []
    for model in dict.fromkeys(forecasts["model"]):
        mine = forecasts[forecasts["model"] == model]["y_hat"].to_numpy()
        for group in groups:
            if _same(mine, forecasts[forecasts["model"] == group[0]]["y_hat"].to_numpy()):
                group.append(model)
                break
        else:
            groups.append([model])
    for ax, sid in zip(axes, ids, strict=True):
        actual = frame[frame["unique_id"] == sid]
        span = actual[actual["ds"] >= start]
        context = actual[actual["ds"] < start].tail(max(len(span), 10))
        shown = pd.concat([context, span])
        ax.plot(shown["ds"], shown["y"], color="black", linewidth=1.2, label="actual")
        for color, group in zip(COLORS, groups, strict=False):
            mine = forecasts[(forecasts["unique_id"] == sid) & (forecasts["model"] == group[0])]
            for k, (_, fold) in enumerate(mine.groupby("fold")):
                ax.plot(fold["ds"], fold["y_hat"], color=color, linewidth=1.5,
                        label=" = ".join(group) if k == 0 else None,
                        linestyle="--" if group[0] in ("naive", "snaive") else "-")
        ax.axvline(start, color="grey", linewidth=0.8, linestyle=":")
        ax.set_title(str(sid), fontsize=10, loc="left")
        _format_axis(ax, shown["ds"].to_numpy(), panel.columns.get("target") or str(sid), panel.columns.get("time"))
    _legend(fig, axes)
    return fig
