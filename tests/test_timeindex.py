import numpy as np
import pandas as pd
from hypothesis import given
from hypothesis import strategies as st

from forecast_cli import timeindex

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
