"""plots.py: the figures read right; checked on the figure objects (tick labels, legend entries, labels)."""

import numpy as np
import pandas as pd
import pytest

from forecast_cli.data import read_series
from forecast_cli.plots import draw_backtest, draw_forecast


def frames(ds_history, ds_future, levels=(), same_bands=False):
    history = pd.DataFrame({"unique_id": "a", "ds": ds_history, "y": np.arange(len(ds_history), dtype=float)})
    future = pd.DataFrame({"unique_id": "a", "ds": ds_future, "y_hat": np.full(len(ds_future), 5.0)})
    for i, level in enumerate(levels):
        width = 1.0 if same_bands else 1.0 + i
        future[f"y_hat_lo_{level}"], future[f"y_hat_hi_{level}"] = 5.0 - width, 5.0 + width
    return history, future


def labels(fig):
    fig.canvas.draw()
    ax = fig.axes[0]
    return [t.get_text() for t in ax.get_xticklabels() if t.get_text()], ax


def legend_texts(fig):
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


def test_daily_ticks_say_their_own_dates_and_no_offset_misleads():
    history, future = frames(pd.date_range("1988-11-01", "1988-12-31", freq="D"),
                             pd.date_range("1989-01-01", periods=30, freq="D"))
    ticks, ax = labels(draw_forecast(history, future, [], "discharge", "date"))
    assert ticks and all("1988" in t or "1989" in t for t in ticks), ticks  # the year is in every label
    assert ax.xaxis.get_offset_text().get_text() == ""  # no "1989-Jan" under December 1988
    assert ax.get_xlabel() == "date" and ax.get_ylabel() == "discharge"


def test_hourly_ticks_keep_the_day():
    history, future = frames(pd.date_range("2015-12-30", periods=48, freq="h"),
                             pd.date_range("2016-01-01", periods=24, freq="h"))
    ticks, ax = labels(draw_forecast(history, future, []))
    assert all(len(t) >= 5 for t in ticks) and ax.xaxis.get_offset_text().get_text() == ""
    assert ax.get_ylabel() == "a"  # no target name (wide layout): the series' own name


def test_integer_years_get_whole_number_ticks():
    history, future = frames(np.arange(1963, 1990), np.arange(1990, 1996))
    ticks, _ = labels(draw_forecast(history, future, [], "sales", "year"))
    assert ticks and all(t.lstrip("−-").isdigit() for t in ticks), ticks  # no 1982.5


def test_the_legend_is_off_the_data_and_names_coinciding_bands_once():
    history, future = frames(pd.date_range("2024-01-01", periods=30, freq="D"),
                             pd.date_range("2024-01-31", periods=7, freq="D"), levels=(80, 95), same_bands=True)
    fig = draw_forecast(history, future, [80, 95])
    assert fig.axes[0].get_legend() is None  # one figure legend below the panels, not on an axis
    assert legend_texts(fig) == ["history", "80% = 95% interval", "forecast"]
    history, future = frames(pd.date_range("2024-01-01", periods=30, freq="D"),
                             pd.date_range("2024-01-31", periods=7, freq="D"), levels=(80, 95))
    assert legend_texts(draw_forecast(history, future, [80, 95])) == ["history", "95% interval", "80% interval",
                                                                      "forecast"]


@pytest.fixture
def yearly_panel(write_csv):
    rows = [f"s{i},{year},{100 + i + (year % 3)}" for i in range(2) for year in range(1970, 1990)]
    return read_series(write_csv("unique_id,ds,y\n" + "\n".join(rows) + "\n"))


def test_a_backtest_names_models_that_coincide_together(yearly_panel):
    forecasts = pd.DataFrame([{"unique_id": s, "ds": 1988 + k, "model": m, "fold": 0, "y": 1.0, "y_hat": 2.0 + k}
                              for s in ("s0", "s1") for m in ("naive", "snaive", "gru") for k in range(2)])
    forecasts.loc[forecasts.model == "gru", "y_hat"] += 1
    fig = draw_backtest(yearly_panel, forecasts)
    assert legend_texts(fig) == ["actual", "naive = snaive", "gru"]
    ticks, ax = labels(fig)
    assert all(t.isdigit() for t in ticks) and ax.get_xlabel() == "ds" and ax.get_ylabel() == "y"
