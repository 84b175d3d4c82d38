import logging

import jax
import numpy as np
import pytest

from forecast_cli import train
from forecast_cli.config import RecurrentConfig, TrainConfig
from forecast_cli.errors import TrainingError
from forecast_cli.models import recurrent


def sine_inputs(n=300):
    t = np.arange(n)
    return np.sin(2 * np.pi * t / 12)[:, None].astype(np.float32)


def run(epochs, batch_size=16, learning_rate=1e-2, inputs=None):
    inputs = sine_inputs() if inputs is None else inputs
    model = recurrent.build(1, 4, RecurrentConfig(hidden=8), jax.random.key(0))
    idx = np.arange(0, 250)
    config = TrainConfig(epochs=epochs, patience=0, batch_size=batch_size, learning_rate=learning_rate)
    return train.fit(model, inputs, idx[:200], idx[200:], 12, 4, config, jax.random.key(1))


def test_loss_goes_down():
    _, history = run(epochs=10)
    assert history.train_loss[-1] < 0.5 * history.train_loss[0]
    assert all(np.isfinite(history.val_loss))


def test_the_epoch_compiles_once_whatever_the_number_of_epochs_and_batches(caplog):
    def compiles(epochs):
        caplog.clear()
        with jax.log_compiles(), caplog.at_level(logging.WARNING):
            run(epochs=epochs, batch_size=7)  # 200 windows: 29 batches, the last one padded
        return sum(r.getMessage().startswith("Compiling jit(train_epoch)") for r in caplog.records)

    assert compiles(2) == compiles(6) == 1


def test_ensemble_members_reuse_the_compiled_epoch(caplog, seasonal_csv):
    from forecast_cli.config import TrainSpec
    from forecast_cli.data import read_series
    from forecast_cli.fit import fit_model

    panel = read_series(seasonal_csv(n_series=2, length=80))
    spec = TrainSpec(kind="gru", horizon=5, lookback=14, recurrent=RecurrentConfig(hidden=8),
                     train=TrainConfig(epochs=3, batch_size=16, ensemble=3))
    with jax.log_compiles(), caplog.at_level(logging.WARNING):
        fit = fit_model(panel, spec).manifest.fit
    assert fit["members"] == 3
    # one for early stopping (training windows), one for the first member's refit (trained on, at its own epochs
    # and rate), one for the other two members' from scratch on every window, shared by both, and one for the
    # calibration holdout fit (8 validation windows are fewer than fit.CALIBRATION_WINDOWS)
    assert fit_model.__globals__["CALIBRATION_WINDOWS"] > 8
    assert sum(r.getMessage().startswith("Compiling jit(train_epoch)") for r in caplog.records) == 4


def test_the_refit_trains_the_validated_network_on_from_its_weights_and_adam_state(monkeypatch, seasonal_csv):
    """The refit (models/rnn.py) starts where early stopping ended: the best weights and their Adam moments, for
    min(best epoch, REFIT_EPOCHS) epochs at REFIT_LEARNING_RATE of the rate, on every window; the validated
    weights stay those early stopping kept."""
    from forecast_cli.config import TrainSpec
    from forecast_cli.data import read_series
    from forecast_cli.fit import _task, resolve_window
    from forecast_cli.models import rnn
    from forecast_cli.windows import default_val_size

    calls, real = [], train.fit

    def spy(model, *args, **kwargs):
        before = recurrent.flat_params(model)
        out = real(model, *args, **kwargs)
        calls.append((before, args, kwargs, recurrent.flat_params(out[0]), out[1]))
        return out

    monkeypatch.setattr(train, "fit", spy)
    panel = read_series(seasonal_csv(n_series=2, length=80))
    spec = TrainSpec(kind="gru", horizon=5, lookback=14, recurrent=RecurrentConfig(hidden=8),
                     train=TrainConfig(epochs=12, batch_size=16, learning_rate=1e-2))
    window = resolve_window(panel, 5, 14)
    task = _task(panel, spec, window, rnn.GRU, False, default_val_size(panel.lengths, 5), None)
    fitted = rnn.GRU.fit(task)
    assert len(calls) == 2
    (_, _, _, validated, history), (start, args, kwargs, refitted, _) = calls
    for name, value in validated.items():
        np.testing.assert_array_equal(start[name], value)  # from the early-stopped weights, not fresh ones
        np.testing.assert_array_equal(fitted.validated[name], value)
    assert kwargs["moments"] is history.moments and len(args[1]) > len(task.train_idx) and not len(args[2])
    config = args[5]
    assert config.epochs == min(history.best_epoch, rnn.REFIT_EPOCHS) == fitted.info["refit_epochs"]
    assert config.learning_rate == pytest.approx(1e-2 * rnn.REFIT_LEARNING_RATE) and config.patience == 0
    assert any(not np.array_equal(fitted.params[k], validated[k]) for k in validated)  # it trained on
    for name, value in refitted.items():
        np.testing.assert_array_equal(fitted.params[name], value)


def test_early_stopping_restores_the_best_epoch():
    model = recurrent.build(1, 4, RecurrentConfig(hidden=8), jax.random.key(0))
    idx = np.arange(250)
    config = TrainConfig(epochs=200, patience=3, batch_size=16, learning_rate=5e-2)
    _, history = train.fit(model, sine_inputs(), idx[:200], idx[200:], 12, 4, config, jax.random.key(1))
    assert history.stopped_early
    assert len(history.val_loss) == history.best_epoch + 3
    assert history.val_loss[history.best_epoch - 1] == min(history.val_loss)


def test_divergence_is_a_training_error():
    with pytest.raises(TrainingError, match="diverged"):
        run(epochs=3, learning_rate=1e35, inputs=sine_inputs() * 1e4)


def test_window_budget_keeps_at_most_the_budget_of_each_series(monkeypatch):
    """Each series' windows cut into `budget` stretches of rows that cover them, one drawn from each: every
    window of a series with no more, at most the budget of the others, never a window of another series or a
    row that is not a training window, each draw inside its stretch."""
    from forecast_cli.train import drawn, window_budget

    starts = np.array([0, 20, 50, 90, 100])  # the last series has no training window
    train_idx = np.concatenate([np.arange(0, 3), np.arange(20, 30), np.arange(50, 56)])

    def series(rows):
        return np.searchsorted(starts, rows, side="right") - 1

    monkeypatch.setattr(train, "MIN_EPOCH_WINDOWS", 1)
    lo, width = window_budget(train_idx, starts, 4)
    assert window_budget(train_idx, starts, 10) is None and window_budget(train_idx, starts, 0) is None
    assert np.bincount(series(lo), minlength=4).tolist() == [3, 4, 4, 0]
    tiled = np.concatenate([np.arange(a, a + w) for a, w in zip(lo, width, strict=True)])
    np.testing.assert_array_equal(tiled, train_idx)  # the stretches tile the training windows
    rng = np.random.default_rng(0)
    for _ in range(20):
        rows = drawn(lo, width, rng.random(len(lo)))
        assert np.all((rows >= lo) & (rows < lo + width))
        assert np.bincount(series(rows), minlength=4).tolist() == [3, 4, 4, 0]
    assert set(drawn(lo, width, np.full(len(lo), 0.999999))) | set(drawn(lo, width, np.zeros(len(lo)))) <= set(
        train_idx)
    monkeypatch.setattr(train, "MIN_EPOCH_WINDOWS", 15)  # 3 series with windows: at least 5 each
    assert np.bincount(series(window_budget(train_idx, starts, 4)[0])).tolist() == [3, 5, 5]
    with pytest.raises(ValueError, match="consecutive"):
        window_budget(np.array([0, 2, 3, 20, 21]), starts, 1)


def test_an_epoch_under_a_window_budget_trains_on_that_many_windows(monkeypatch):
    """Long series train on at most --series-windows windows each per epoch: the epoch's batches shrink."""
    from forecast_cli import train

    seen = []
    real = train.batches
    monkeypatch.setattr(train, "batches", lambda n, *a, **k: seen.append(n) or real(n, *a, **k))
    monkeypatch.setattr(train, "MIN_EPOCH_WINDOWS", 1)
    inputs = np.sin(np.arange(600) / 5.0)[:, None].astype(np.float32)
    train_idx = np.concatenate([np.arange(0, 250), np.arange(300, 550)])  # two series of 250 windows
    starts = np.array([0, 300, 600])
    config = TrainConfig(epochs=2, patience=0, refit=False, series_windows=16, batch_size=8)
    model = recurrent.build(1, 3, RecurrentConfig(hidden=4), jax.random.key(0))
    fitted, history = train.fit(model, inputs, train_idx, np.zeros(0, np.int64), 12, 3, config, jax.random.key(1),
                                starts=starts)
    assert seen[0] == 32 and len(history.train_loss) == 2 and np.isfinite(history.train_loss).all()
    seen.clear()
    train.fit(model, inputs, train_idx, np.zeros(0, np.int64), 12, 3, config, jax.random.key(1))
    assert seen[0] == 500  # without the series' rows, every window


def test_early_stopping_watches_at_most_the_budget_of_each_series_validation_windows(monkeypatch):
    """Evenly spaced, each series' last window among them, every window of a series with no more; and the
    epoch's evaluation is over exactly those."""
    from forecast_cli import train

    monkeypatch.setattr(train, "MIN_EPOCH_WINDOWS", 1)
    starts = np.array([0, 300, 600, 700])
    val_idx = np.concatenate([np.arange(200, 244), np.arange(500, 505), np.arange(660, 686)])
    watched = train.monitored(val_idx, starts, 8)
    series = np.searchsorted(starts, watched, side="right") - 1
    assert np.bincount(series).tolist() == [8, 5, 8]
    assert {243, 504, 685} <= set(watched) and set(watched) <= set(val_idx)
    assert np.all(np.diff(watched[series == 0]) >= 44 // 8 - 1)  # spread over the series' windows
    np.testing.assert_array_equal(train.monitored(val_idx, starts, 0), val_idx)  # 0: every window
    np.testing.assert_array_equal(train.monitored(val_idx, None, 8), val_idx)

    evaluated = []
    real = train.pad_to_batches
    monkeypatch.setattr(train, "pad_to_batches", lambda idx, *a, **k: evaluated.append(len(idx)) or real(idx, *a, **k))
    inputs = np.sin(np.arange(700) / 5.0)[:, None].astype(np.float32)
    train_idx = np.concatenate([np.arange(0, 180), np.arange(300, 480), np.arange(600, 660)])
    config = TrainConfig(epochs=1, patience=0, refit=False, series_windows=8, batch_size=8)
    model = recurrent.build(1, 3, RecurrentConfig(hidden=4), jax.random.key(0))
    train.fit(model, inputs, train_idx, val_idx, 12, 3, config, jax.random.key(1), starts=starts)
    assert evaluated == [21]


def test_no_row_weights_train_as_weights_of_one():
    """Without row weights the epoch gets a (1,) array that weighs every window alike: the same losses as
    explicit weights of one on every row, and weights of two on every row double them."""
    inputs = sine_inputs()
    config = TrainConfig(epochs=3, patience=0, batch_size=16)
    idx = np.arange(0, 250)

    def losses(weight):
        model = recurrent.build(1, 4, RecurrentConfig(hidden=8), jax.random.key(0))
        _, history = train.fit(model, inputs, idx[:200], idx[200:], 12, 4, config, jax.random.key(1),
                               row_weight=weight)
        return np.array(history.train_loss[:1] + history.val_loss)

    none = losses(None)
    np.testing.assert_allclose(none, losses(np.ones(len(inputs))), rtol=1e-6)
    np.testing.assert_allclose(2 * none[:2], losses(np.full(len(inputs), 2.0))[:2], rtol=1e-5)
