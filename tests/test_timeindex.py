import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from forecast_cli import timeindex
from forecast_cli.errors import ConfigError, DataError

FREQS = ["h", "D", "W-SUN", "MS", "ME", "QS-JAN", "QE-DEC", "YS-JAN", "15min", "B"]


@given(freq=st.sampled_from(FREQS), periods=st.integers(2, 30), horizon=st.integers(1, 30),
       offset=st.integers(0, 500))
def test_future_times_continue_the_series(freq, periods, horizon, offset):
    start = pd.Timestamp("2001-01-01") + pd.Timedelta(days=offset)
    history = pd.date_range(start, periods=periods, freq=freq).to_numpy()
    future = timeindex.future_times(history[-1], freq, horizon)
    assert len(future) == horizon
    assert (np.diff(np.concatenate([history[-1:], future])) > np.timedelta64(0)).all()
    assert future[0] == pd.date_range(history[-1], periods=2, freq=freq)[1]
    if freq != "B" or periods + horizon >= 8:  # three weekdays in a row are also plain daily
        assert timeindex.infer_freq(np.concatenate([history, future])) == timeindex.check_freq(freq)


@given(last=st.integers(1800, 2100), step=st.integers(1, 5), horizon=st.integers(1, 10))
def test_integer_periods_continue(last, step, horizon):
    future = timeindex.future_times(np.int64(last), f"int:{step}", horizon)
    assert future.tolist() == [last + step * k for k in range(1, horizon + 1)]


def test_seasons_and_default_horizons():
    assert [timeindex.season_length(f) for f in ("h", "D", "W-SUN", "MS", "QS-JAN", "YS-JAN", "int:1")] == [
        24, 7, 52, 12, 4, 1, 1]
    assert [timeindex.default_horizon(f) for f in ("h", "D", "W-SUN", "MS", "QS-JAN", "YS-JAN")] == [
        24, 7, 13, 12, 8, 6]


def test_calendar_features_are_bounded_cycles():
    ds = pd.date_range("2024-01-01", periods=48, freq="h").to_numpy()
    features = timeindex.calendar_features(ds, "h")
    assert features.shape == (48, 4)  # sin/cos of hour of day and day of week
    assert np.allclose(features[0], features[24], atol=1e-6) is False  # day of week differs
    assert np.allclose(features[0, :2], features[24, :2], atol=1e-6)  # hour of day repeats
    assert np.abs(features).max() <= 1.0


@pytest.mark.parametrize("freq, expected", [
    ("0D", "a step must be positive"), ("-1D", "a step must be positive"), ("0h", "a step must be positive"),
    ("1ns", "shorter than a second"), ("5ms", "shorter than a second"), ("int:0", "int:STEP"),
    (f"int:{10**19}", "an integer step is at most"), ("200000D", "longer than the dates"),
    ("10000YS", "longer than the dates"),
])
def test_check_freq_refuses_steps_that_are_not_positive_or_representable(freq, expected):
    with pytest.raises(ConfigError, match=expected):
        timeindex.check_freq(freq)


@pytest.mark.parametrize("freq", ["D", "h", "MS", "W-SUN", "YS-JAN"])
def test_future_times_raise_instead_of_wrapping_past_2262(freq):
    last = pd.date_range("2261-01-01", "2262-04-11", freq=freq).to_numpy()[-1]
    with pytest.raises(DataError, match="past 2262-04-11, the last date forecast can represent; use a shorter"):
        timeindex.future_times(last, freq, 400)


def test_integer_stamps_never_overflow_int64():
    with pytest.raises(DataError, match="past integer period"):
        timeindex.future_times(np.int64(2**63 - 5), "int:1", 10)
    with pytest.raises(DataError, match="before integer period"):
        timeindex.past_times(np.int64(-(10**18) + 3), "int:1", 10)
    assert timeindex.grid_between(np.int64(2**63 - 3), np.int64(2**63 - 1), "int:1").tolist() == [
        2**63 - 3, 2**63 - 2, 2**63 - 1]
    # a step of centuries: step x k overflows int64 though each stamp fits
    past = timeindex.past_times(np.datetime64("2262-01-01", "ns"), "50000D", 3)
    assert (np.diff(past) > np.timedelta64(0)).all() and past[-1] == np.datetime64("2262-01-01")
    assert timeindex.past_times(np.datetime64("2262-04-11", "ns"), "D", 0).shape == (0,)


def test_frequency_messages_escape_control_characters():
    with pytest.raises(ConfigError) as excinfo:
        timeindex.check_freq("\x1b[31mD")
    assert "'\\x1b[31mD'" in str(excinfo.value) and "\x1b" not in str(excinfo.value)
