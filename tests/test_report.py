"""forecast_cli.report: what the commands print, rendered from small inputs into consoles of a fixed width."""

from __future__ import annotations

import io
import re
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from forecast_cli import report
from forecast_cli.artifact import Manifest
from forecast_cli.config import DataConfig, TrainConfig, WindowConfig
from forecast_cli.data import read_series, summarize


@pytest.fixture
def screen(monkeypatch):
    """report's stdout and stderr consoles, captured: screen.out() and screen.err() return what was printed."""
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(report, "out", Console(file=out, width=100, soft_wrap=True))
    monkeypatch.setattr(report, "err", Console(file=err, width=100, soft_wrap=True))
    monkeypatch.setattr(report, "LOG_FILE", [])
    return SimpleNamespace(out=out.getvalue, err=err.getvalue)


def two_series(write_csv, n_series=2):
    """a: 1.5 .. 10.5 daily; b: 250,000 .. 250,009 with 2024-01-04 missing (filled); more series copy a."""
    rows = [f"a,2024-01-{d:02d},{0.5 + d}" for d in range(1, 11)]
    rows += [f"b,2024-01-{d:02d},{249999 + d}" for d in range(1, 11) if d != 4]
    rows += [f"s{k:02d},2024-01-{d:02d},{d}" for k in range(n_series - 2) for d in range(1, 11)]
    panel = read_series(str(write_csv("unique_id,ds,y\n" + "\n".join(rows) + "\n")), DataConfig())
    return panel, summarize(panel)


def test_numbers_and_stamps_are_short():
    assert report.number_text(3.14159) == "3.142"
    assert report.number_text(99999.0) == "1e+05"
    assert report.number_text(123456.7) == "123,457"
    assert report.number_text(-2e5) == "-200,000"
    assert report.stamp_text(pd.Timestamp("2024-01-01")) == "2024-01-01"
    assert report.stamp_text(pd.Timestamp("2024-01-01 06:30")) == "2024-01-01 06:30:00"
    assert report.stamp_text(12) == "12"


def test_print_inspect_has_a_row_per_series_and_a_total(write_csv, screen):
    panel, table = two_series(write_csv)
    report.print_inspect(panel, table)
    lines = screen.out().splitlines()
    assert lines[0] == "data.csv: 2 series, long layout, daily (D)"
    assert re.split(r"\s*[┃]\s*", lines[2].strip("┃ ")) == ["series", "length", "start", "end", "filled", "min",
                                                             "mean", "max"]
    cells = [re.split(r"\s*│\s*", line.strip("│ ")) for line in lines if line.startswith("│")]
    assert cells == [
        ["a", "10", "2024-01-01", "2024-01-10", "0", "1.5", "6", "10.5"],
        ["b", "10", "2024-01-01", "2024-01-10", "1", "250,000", "250,004", "250,009"],
        ["total: 2", "20", "2024-01-01", "2024-01-10", "1", "1.5", "125,005", "250,009"],
    ]
    assert screen.err() == ""


def test_print_inspect_of_many_series_shows_the_first_ten_and_the_lengths(write_csv, screen):
    panel, table = two_series(write_csv, n_series=25)
    report.print_inspect(panel, table)
    text = screen.out()
    assert "│ … 15 more │" in text and "│ s07 " in text and "│ s08 " not in text
    assert text.endswith("lengths: min 10, median 10, max 10; use --json for every series\n")


def test_inspect_json_totals_and_series(write_csv):
    panel, table = two_series(write_csv)
    found = report.inspect_json(panel, table)
    assert {k: found[k] for k in ("layout", "freq", "frequency", "covariates", "n_series", "n_rows",
                                  "missing_timestamps", "missing_values")} == {
        "layout": "long", "freq": "D", "frequency": "daily", "covariates": [], "n_series": 2, "n_rows": 20,
        "missing_timestamps": 1, "missing_values": 0}
    assert found["series"][1] == {"unique_id": "b", "length": 10, "start": "2024-01-01", "end": "2024-01-10",
                                  "missing_timestamps": 1, "missing_values": 0, "min": 250000.0,
                                  "mean": 250004.5, "max": 250009.0}


def test_report_filled_says_what_was_filled_and_the_notes(screen):
    panel = SimpleNamespace(source="x.csv", fill="ffill", missing_timestamps=np.array([2, 0, 1]),
                            missing_values=np.array([0, 0, 3]), notes=("dropped 1 empty row",), layout="long",
                            ids=np.array(["a", "b", "c"]))
    report.report_filled(panel)
    assert screen.err() == ("Note: x.csv: filled 3 missing timestamp(s) and 3 empty value(s) in 2 series by "
                            "--fill ffill\nNote: x.csv: dropped 1 empty row\n")


def test_report_filled_is_silent_when_nothing_was_filled(screen):
    report.report_filled(SimpleNamespace(source="x.csv", fill="ffill", missing_timestamps=np.zeros(2, int),
                                         missing_values=np.zeros(2, int), notes=(), layout="long",
                                         ids=np.array(["a", "b"])))
    assert screen.err() == ""


def test_report_filled_names_the_series_a_wide_layout_made(screen):
    panel = SimpleNamespace(source="river.csv", fill="interpolate", missing_timestamps=np.zeros(3, int),
                            missing_values=np.zeros(3, int), notes=(), layout="wide",
                            ids=np.array(["discharge", "rain", "temp"]))
    report.report_filled(panel)
    assert screen.err() == ("Note: river.csv: wide layout: each of the 3 value columns is a series (discharge, "
                            "rain, temp); to forecast one column with the others as inputs, pass --target and "
                            "--covariates\n")
    before = screen.err()
    report.report_filled(SimpleNamespace(**{**vars(panel), "ids": np.array(["discharge"])}))
    assert screen.err() == before  # one column: nothing to say


def test_say_escapes_markup_and_controls_and_logs_plain_text(screen, tmp_path, monkeypatch):
    log = tmp_path / "run.log"
    monkeypatch.setattr(report, "LOG_FILE", [str(log)])
    report.say("id [bold]x\x1b[2J\nsecond")
    report.warn("[red]not red[/red]")
    assert screen.err() == "id [bold]x\\x1b[2J\nsecond\nNote: [red]not red[/red]\n"
    stamped = log.read_text().splitlines()
    assert [line.split(" ", 1)[1] for line in stamped] == ["id [bold]x\\x1b[2J", "second",
                                                           "Note: [red]not red[/red]"]
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d ", line) for line in stamped)


def test_error_is_one_line(screen):
    report.error("bad  value\n  in [bold]row 3[/bold]\x1b")
    assert screen.err() == "Error: bad value in [bold]row 3[/bold]\\x1b\n"


MANIFEST = Manifest(
    kind="auto", window=WindowConfig(lookback=28, horizon=7), train=TrainConfig(), data=DataConfig(), freq="D",
    season=7, covariates=(), columns={}, n_features=3, calendar=("weekday",), series=("a",),
    fingerprint="0" * 16, device="cpu", model={}, fit={},
    validation={"windows": 40, "model_mae": 2.0, "snaive_mae": 2.5, "naive_mae": 3.125},
    calibration={"windows": 40, "origins": "validation windows", "ratio": 0.8},
    blend={"weight": 0.625, "drift": 0.25}, training_seconds=12.34)


def test_train_summary_names_the_blend_and_the_gain_over_seasonal_naive():
    assert report.train_summary(MANIFEST, "forecast-model") == (
        "trained auto (horizon 7, lookback 28) in 12.3s; saved to forecast-model\n"
        "blend: 62% GRU, 38% Theta (drift 0.25 of the trend), 0% ETS\n"
        "validation MAE over 40 windows: 2 (seasonal naive 2.5, naive 3.125; 20.0% below seasonal naive)")


def test_train_summary_worse_than_seasonal_naive_and_without_validation():
    worse = replace(MANIFEST, kind="gru", validation={**MANIFEST.validation, "model_mae": 3.0}, blend=None)
    assert report.train_summary(worse, "m").endswith("(seasonal naive 2.5, naive 3.125; 20.0% above seasonal naive)")
    one = replace(worse, validation={**worse.validation, "windows": 1})
    assert "validation MAE over 1 window: 3 " in report.train_summary(one, "m")
    none = replace(worse, validation={"windows": 0})
    assert report.train_summary(none, "m") == "trained gru (horizon 7, lookback 28) in 12.3s; saved to m"


def test_epoch_reporter_off_a_terminal_says_the_last_epoch_at_the_end(screen):
    metrics = {"train_loss": 0.51234, "val_loss": 0.6, "best_val_loss": 0.55}
    with report.EpochReporter(10, quiet=False) as reporter:
        reporter(3, metrics)
    with report.EpochReporter(10, quiet=True) as reporter:
        reporter(4, metrics)
    assert screen.err() == "epoch 3/10: train loss 0.5123, val loss 0.6000 (best 0.5500)\n"


def test_prediction_notes(screen):
    result = SimpleNamespace(rolled=True, fallback=[f"s{i}" for i in range(7)], fallback_by="Theta", notes=[])
    report.prediction_notes(result, MANIFEST, 14)
    report.prediction_notes(SimpleNamespace(rolled=False, fallback=["x"], fallback_by="seasonal naive", notes=[]),
                            replace(MANIFEST, kind="gru"), None)
    report.prediction_notes(SimpleNamespace(rolled=False, fallback=[], fallback_by="Theta", notes=["widened"]),
                            MANIFEST, None)
    report.prediction_notes(SimpleNamespace(rolled=True, fallback=[], notes=[]),
                            replace(MANIFEST, covariates=("rain",), data=DataConfig(covariates=("rain",))), 9)
    report.prediction_notes(SimpleNamespace(rolled=True, fallback=[], notes=[]),
                            replace(MANIFEST, covariates=("tide",), data=DataConfig(future_covariates=("tide",))), 9)
    assert screen.err() == (
        "Note: horizon 14 is longer than the trained 7: forecasts are fed back as inputs (recursive "
        "roll-forward)\n"
        "Note: 7 series shorter than the lookback (28) forecast by Theta: s0, s1, s2, s3, s4 …\n"
        "Note: 1 series shorter than the lookback (28) forecast by seasonal naive: x\n"
        "Note: widened\n"
        "Note: horizon 9 is longer than the trained 7: forecasts are fed back as inputs (recursive "
        "roll-forward); past-only covariates are held at their last value\n"
        "Note: horizon 9 is longer than the trained 7: forecasts are fed back as inputs (recursive "
        "roll-forward); future covariates take their supplied values\n")


SCORES = pd.DataFrame({"model": ["gru", "snaive"], "unique_id": ["a", "a"], "mae": [1.23456, 123456.0],
                       "rmse": [2.0, 200000.0], "smape": [12.345, 50.0], "mase": [0.81234, 1.0]})


def test_print_scores_and_backtest_json(screen):
    panel = SimpleNamespace(source="s.csv", ids=np.array(["a", "b"]))
    report.print_scores(SCORES, panel, 3, per_series=True)
    lines = screen.out().splitlines()
    assert lines[0] == "s.csv: backtest over 2 series × 3 folds"
    cells = [re.split(r"\s*│\s*", line.strip("│ ")) for line in lines if line.startswith("│")]
    assert cells == [["gru", "a", "1.235", "2", "12.35", "0.812"],
                     ["snaive", "a", "123,456", "200,000", "50.00", "1.000"]]
    assert lines[-1] == "sMAPE in %; MASE against in-sample seasonal naive"
    forecasts = pd.DataFrame({"model": ["gru"] * 5, "fold": [0, 0, 0, 1, 1], "unique_id": ["a"] * 5})
    found = report.backtest_json(panel, forecasts, SCORES, 3, refit=False)
    assert {k: v for k, v in found.items() if k != "rows"} == {"source": "s.csv", "horizon": 3, "folds": 3,
                                                               "refit": False, "series": 2}
    assert found["rows"][1]["model"] == "snaive" and found["rows"][1]["mae"] == 123456.0


def test_epoch_reporter_off_a_terminal_says_a_handful_of_lines(screen):
    metrics = {"train_loss": 0.5, "val_loss": 0.6, "best_val_loss": 0.55}
    with report.EpochReporter(100, quiet=False) as reporter:
        for epoch in range(1, 58):  # early stopping at 57
            reporter(epoch, metrics)
        for epoch in range(1, 101):  # the refit pass
            reporter(epoch, metrics)
    epochs = [int(line.split()[1].split("/")[0]) for line in screen.err().splitlines()]
    assert epochs == [1, 20, 40, 57, 1, 20, 40, 60, 80, 100]


def test_epoch_reporter_says_no_last_line_after_an_interruption(screen):
    metrics = {"train_loss": 0.5, "val_loss": 0.6, "best_val_loss": 0.55}
    with pytest.raises(KeyboardInterrupt), report.EpochReporter(100, quiet=False) as reporter:
        reporter(1, metrics)
        reporter(2, metrics)
        raise KeyboardInterrupt
    assert screen.err().count("\n") == 1
