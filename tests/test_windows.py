import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from forecast_cli.windows import (
    every_window,
    fit_scaler,
    gather_windows,
    make_windows,
    spread_windows,
    window_starts,
)


@st.composite
def panels(draw):
    """(values (n_rows, n_features), starts) with 1-5 series of 1-40 rows."""
    lengths = draw(st.lists(st.integers(1, 40), min_size=1, max_size=5))
    n_features = draw(st.integers(1, 3))
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    values = np.arange(starts[-1] * n_features, dtype=np.float64).reshape(-1, n_features)
    return values, starts


@given(length=st.integers(0, 60), lookback=st.integers(1, 10), horizon=st.integers(1, 10))
def test_make_windows_lines_up_with_the_source(length, lookback, horizon):
    series = np.arange(length, dtype=np.float64) * 1.5
    X, Y = make_windows(series, lookback, horizon)
    assert len(X) == max(0, length - lookback - horizon + 1)
    for i in range(len(X)):
        assert X[i, :, 0].tolist() == series[i : i + lookback].tolist()
        assert Y[i].tolist() == series[i + lookback : i + lookback + horizon].tolist()


@settings(max_examples=200)
@given(panel=panels(), lookback=st.integers(1, 8), horizon=st.integers(1, 6), val=st.integers(1, 12))
def test_split_keeps_windows_inside_series_and_validation_out_of_training(panel, lookback, horizon, val):
    values, starts = panel
    val = max(val, horizon)
    train, valid = window_starts(starts, lookback, horizon, val)
    series_of_row = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
    cut = starts[1:] - val  # first validation row of each series
    for begin in np.concatenate([train, valid]):
        s = series_of_row[begin]
        assert begin + lookback + horizon <= starts[s + 1]  # never crosses into the next series
    for begin in train:
        s = series_of_row[begin]
        assert begin + lookback + horizon <= cut[s]  # input and target before the cut
    for begin in valid:
        s = series_of_row[begin]
        assert begin + lookback >= cut[s]  # the target is validation data
    # every window that fits is either training or validation, never both
    assert len(set(train.tolist()) & set(valid.tolist())) == 0
    X, Y = gather_windows(values, valid, lookback, horizon)
    for i, begin in enumerate(valid):
        assert (X[i] == values[begin : begin + lookback]).all()
        assert (Y[i] == values[begin + lookback : begin + lookback + horizon, 0]).all()
        assert not set(X[i, :, 0].tolist()) & set(Y[i].tolist())  # no input value from its own target span


@settings(max_examples=200)
@given(panel=panels(), method=st.sampled_from(["standard", "robust"]), shift=st.floats(-1e4, 1e4),
       spread=st.floats(1e-3, 1e4))
def test_scaler_round_trips(panel, method, shift, spread):
    values, starts = panel
    values = values * spread + shift
    scaler = fit_scaler(values, starts, method=method)
    scaled = scaler.transform(values, starts)
    assert np.isfinite(scaled).all()
    series = np.repeat(np.arange(len(starts) - 1), np.diff(starts))
    back = scaler.inverse_target(scaled[:, :1], series)[:, 0]
    np.testing.assert_allclose(back, values[:, 0], rtol=1e-9, atol=1e-6 * (abs(shift) + spread))


def test_standard_scaler_statistics_use_only_the_fitted_prefix():
    values = np.array([[1.0], [3.0], [100.0], [10.0], [10.0], [10.0]])
    starts = np.array([0, 3, 6])
    scaler = fit_scaler(values, starts, fit_lengths=np.array([2, 3]))
    assert scaler.loc[:, 0].tolist() == [2.0, 10.0]
    assert scaler.scale[:, 0].tolist() == [1.0, 1.0]  # std of [1, 3] is 1; constant series gets scale 1
    scaled = scaler.transform(values, starts)
    assert scaled[:, 0].tolist() == [-1.0, 1.0, 98.0, 0.0, 0.0, 0.0]


def test_constant_series_does_not_divide_by_zero():
    values = np.full((10, 2), 7.0)
    for method in ("standard", "robust"):
        scaler = fit_scaler(values, np.array([0, 10]), method=method)
        assert (scaler.transform(values, np.array([0, 10])) == 0).all()


@settings(max_examples=60, deadline=None)
@given(panels(), st.integers(1, 6), st.integers(1, 4), st.integers(1, 9))
def test_spread_windows_are_a_bounded_even_subset_of_every_window(panel, lookback, horizon, most):
    """At most `most` windows per series, each one a real window, the first and the last of a series among
    them (the last alone when most is 1), evenly spaced; every window of a series that has no more."""
    _, starts = panel
    every = every_window(starts, lookback, horizon)
    got = spread_windows(starts, lookback, horizon, most)
    assert np.all(np.isin(got, every)) and np.all(np.diff(got) > 0)
    for a, b in zip(starts[:-1], starts[1:], strict=True):
        own, mine = every[(every >= a) & (every < b)], got[(got >= a) & (got < b)]
        if len(own) <= most:
            np.testing.assert_array_equal(mine, own)
        else:
            assert len(mine) == most and mine[-1] == own[-1] and (most == 1 or mine[0] == own[0])
            gaps = np.diff(mine)
            assert most == 1 or gaps.max() - gaps.min() <= 1


def test_window_forecasts_in_chunks_equal_one_gather(monkeypatch):
    from forecast_cli import windows

    values = np.arange(200, dtype=np.float32).reshape(100, 2)
    begin = np.array([0, 5, 17, 40, 41, 80, 90])

    def predictor(X):
        return X[:, -3:, 0] + X[:, :1, 1]

    X, Y = gather_windows(values, begin, 6, 3)
    whole = windows.window_forecasts(predictor, values, begin, 6, 3)
    monkeypatch.setattr(windows, "WINDOW_CHUNK", 2)
    chunked = windows.window_forecasts(predictor, values, begin, 6, 3)
    for a, b, want in zip(whole, chunked, (predictor(X), Y), strict=True):
        np.testing.assert_array_equal(a, want)
        np.testing.assert_array_equal(b, want)
    assert windows.window_forecasts(predictor, values, begin[:0], 6, 3)[0].shape == (0, 3)
    np.testing.assert_array_equal(windows.window_targets(values, begin, 6, 3), Y)
