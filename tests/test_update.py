"""`forecast update`: new rows folded into a trained model without a full retrain (forecast_cli/update.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import seasonal_frame
from typer.testing import CliRunner

from forecast_cli.cli import app
from forecast_cli.config import ESNConfig, TrainConfig, TrainSpec
from forecast_cli.data import read_series
from forecast_cli.features import model_inputs
from forecast_cli.fit import fit_model
from forecast_cli.forecast import predict
from forecast_cli.models import esn
from forecast_cli.persistence import load_artifact, save_artifact
from forecast_cli.update import RevisionError, update_model
from forecast_cli.windows import Scaler, every_window

runner = CliRunner()
H = 4


def frame(length, n_series=3):
    """The first `length` rows of each of `n_series` noisy sine waves (the same values whatever the length)."""
    whole = seasonal_frame(n_series=n_series, length=200)
    return whole[whole.groupby("unique_id").cumcount() < length].reset_index(drop=True)


def panels(tmp_path, grow=12, length=120, n_series=3):
    """(old panel, grown panel): the same series, the grown one `grow` rows longer."""
    frame(length, n_series).to_csv(tmp_path / "old.csv", index=False)
    frame(length + grow, n_series).to_csv(tmp_path / "new.csv", index=False)
    return read_series(tmp_path / "old.csv"), read_series(tmp_path / "new.csv")


def esn_spec(**kwargs):
    return TrainSpec(kind="esn", horizon=H, lookback=14, esn=ESNConfig(units=40), **kwargs)


def test_esn_update_equals_a_fit_on_every_window_with_the_same_reservoir_scaler_and_ridge(tmp_path):
    old, new = panels(tmp_path)
    artifact = fit_model(old, esn_spec())
    updated = update_model(artifact, new).artifact
    m = artifact.manifest
    a = artifact.arrays
    scaler = Scaler(a["scaler/loc"], a["scaler/scale"], m.window.log)
    inputs = model_inputs(scaler.transform(new.values, new.starts), new.ds, new.freq)
    reservoir = {k: a[f"params/{k}"] for k in ("W", "W_in", "b")}
    config = ESNConfig(units=40, ridges=(m.fit["ridge"],))
    every = every_window(new.starts, 14, H)
    readout, _, _, normal = esn.fit(reservoir, inputs, every, np.zeros(0, np.int64), 14, H, config)
    b = updated.arrays
    # the same normal equations (float64 sums of float32 products taken in other chunks: equal to float32 rounding)
    for name in ("gram", "cross"):
        np.testing.assert_allclose(b[f"state/{name}"], normal[name], rtol=1e-5, atol=1e-6 * np.abs(normal[name]).max())
    # so the same forecasts (the readout itself is ill-conditioned: its digits past float32's amplify rounding)
    X, _ = esn.gather_windows(inputs, every, 14, H)
    ours, theirs = (np.asarray(esn.predict(reservoir, r, X, config.leak_rate)) for r in (b["params/readout"], readout))
    np.testing.assert_allclose(ours, theirs, atol=1e-3 * np.abs(theirs).max())
    assert not np.allclose(b["params/readout"], a["params/readout"], rtol=1e-3)  # it did change
    assert updated.manifest.fit["train_windows"] == m.fit["train_windows"] + 3 * 12
    record = updated.manifest.updates[-1]
    assert (record["rows"], record["series"], record["new_series"]) == (36, 3, 0)


def test_the_same_data_twice_changes_nothing(tmp_path):
    old, new = panels(tmp_path)
    once = update_model(fit_model(old, esn_spec()), new)
    assert once.rows == 36
    again = update_model(once.artifact, new)
    assert again.artifact is None and again.rows == 0


def test_the_updated_directory_forecasts_what_the_grown_data_gives(tmp_path):
    """After an update, `predict` from the directory alone (its refreshed history, error scales, context) is
    `predict DATA` on the grown data with the same model."""
    old, new = panels(tmp_path)
    updated = update_model(fit_model(old, TrainSpec(kind="auto", horizon=H, lookback=14,
                                                    train=TrainConfig(epochs=2))), new).artifact
    alone, with_data = (predict(updated, panel, levels=[80]).frame for panel in (None, new))
    assert alone["ds"].min() == new.ds[new.starts[1] - 1] + np.timedelta64(1, "D")
    for column in alone.columns:
        if column in ("unique_id", "ds"):
            assert (alone[column] == with_data[column]).all()
        else:
            np.testing.assert_allclose(alone[column], with_data[column], rtol=1e-6)


def test_after_an_update_auto_s_saved_ets_state_is_that_of_the_grown_context(tmp_path):
    """With an ETS share the directory keeps ETS's state; an update must fit it again on the grown context, or
    `predict` alone would forecast from the old one."""
    import dataclasses

    from forecast_cli.artifact import Artifact
    from forecast_cli.models import get

    old, new = panels(tmp_path)
    artifact = fit_model(old, TrainSpec(kind="auto", horizon=H, lookback=14, train=TrainConfig(epochs=2)))
    blend = {**artifact.manifest.blend, "weight": 0.3, "ets": 0.5}
    m = dataclasses.replace(artifact.manifest, blend=blend)
    arrays = {**artifact.arrays, **get("auto").context_state(artifact.arrays["context/values"], m.season,
                                                             {"blend": blend})}
    updated = update_model(Artifact(m, arrays), new).artifact
    assert not np.allclose(updated.arrays["ets/state"], arrays["ets/state"])
    alone, with_data = (predict(updated, panel).frame["y_hat"] for panel in (None, new))
    np.testing.assert_allclose(alone, with_data, rtol=1e-5)


def test_pending_forecast_is_the_forecast_predict_gave_before_the_update(tmp_path):
    """After one new row, each series' open forecast (origin: the row after the last the model saw) is exactly
    what `predict` printed from the old model: the alignment of the online calibration. H rows later it is scored
    against the truth at exactly those H steps."""
    old, new = panels(tmp_path, grow=1)
    artifact = fit_model(old, esn_spec())
    before = predict(artifact).frame["y_hat"].to_numpy().reshape(3, H)
    updated = update_model(artifact, new).artifact
    a = updated.arrays
    np.testing.assert_array_equal(a["calibration/pending_series"], [0, 1, 2])
    np.testing.assert_array_equal(a["calibration/pending_row"], [120, 120, 120])
    np.testing.assert_allclose(a["calibration/pending"], before, rtol=1e-5)
    # H - 1 more rows: the horizon of those forecasts is now in the data, and they are scored
    _, longer = panels(tmp_path, grow=H)
    scores_before = updated.arrays["calibration/scores"]
    result = update_model(updated, longer)
    assert result.scored == 3  # the three pending forecasts; the newer origins are still open
    scores = result.artifact.arrays["calibration/scores"]
    truth = longer.values[:, 0][longer.starts[:-1, None] + 120 + np.arange(H)]
    errors = np.abs(before - truth)
    assert len(scores) == len(scores_before)  # the newest replace the oldest
    ratio = scores[-3:] / errors[np.argsort(longer.ds[longer.starts[:-1] + 120], kind="stable")]
    assert np.allclose(ratio, ratio[:, :1])  # each window's errors divided by one scale: the same steps
    assert len(result.artifact.arrays["calibration/pending"]) == 3 * (H - 1)


def test_a_long_gap_between_updates_forecasts_a_bounded_number_of_origins(tmp_path, monkeypatch):
    from forecast_cli import limits

    monkeypatch.setattr(limits, "MAX_CALIBRATION_WINDOWS", 10)
    old, new = panels(tmp_path, grow=40)  # 3 x 37 scorable origins: 10 of them are forecast; 3 x 3 still open
    result = update_model(fit_model(old, esn_spec()), new)
    a = result.artifact.arrays
    assert result.scored == 10 and len(a["calibration/pending"]) == 3 * (H - 1) and len(a["calibration/scores"]) == 10


def test_a_revised_row_is_refused_naming_series_column_and_date(tmp_path):
    old, _ = panels(tmp_path)
    artifact = fit_model(old, esn_spec())
    data = frame(132)
    revised = data.copy()
    revised.loc[(revised.unique_id == "s1") & (revised.ds == "2024-04-25"), "y"] += 1.0  # row 115 of 120: kept
    revised.to_csv(tmp_path / "revised.csv", index=False)
    with pytest.raises(RevisionError, match=r"series 's1': column 'y' on 2024-04-25 is [\d.]+ in DATA but "
                                            r"was [\d.]+.*--allow-revisions"):
        update_model(artifact, read_series(tmp_path / "revised.csv"))
    early = data.copy()
    early.loc[(early.unique_id == "s2") & (early.ds == "2024-01-10"), "y"] += 1.0  # before the kept rows
    early.to_csv(tmp_path / "early.csv", index=False)
    with pytest.raises(RevisionError, match=r"series 's2': a row before 2024-04-16 differs"):
        update_model(artifact, read_series(tmp_path / "early.csv"))
    shorter = data[(data.unique_id != "s0") | (data.ds >= "2024-01-05")]  # s0 lost its first rows
    shorter.to_csv(tmp_path / "shorter.csv", index=False)
    with pytest.raises(RevisionError, match=r"series 's0': DATA has 116 rows up to 2024-04-29"):
        update_model(artifact, read_series(tmp_path / "shorter.csv"))
    accepted = update_model(artifact, read_series(tmp_path / "early.csv"), allow_revisions=True)
    assert accepted.rows == 36


def test_new_series_are_left_to_predict_and_missing_ones_keep_their_model(tmp_path):
    old, _ = panels(tmp_path)
    artifact = fit_model(old, esn_spec())
    data = frame(132, n_series=4)
    data[data.unique_id != "s0"].to_csv(tmp_path / "mixed.csv", index=False)  # s0 absent; s3 new
    result = update_model(artifact, read_series(tmp_path / "mixed.csv"))
    assert (result.series, result.new_series, result.rows) == (2, 1, 24)
    a, b = artifact.arrays, result.artifact.arrays
    assert b["history/rows"].tolist() == [120, 132, 132]
    np.testing.assert_array_equal(a["history/values"][0], b["history/values"][0])
    assert result.artifact.manifest.series == artifact.manifest.series


@pytest.mark.parametrize("kind", ["gru", "auto"])
def test_a_network_trains_on_from_its_saved_weights_and_adam_state(tmp_path, kind):
    old, new = panels(tmp_path, grow=H + 2)
    spec = TrainSpec(kind=kind, horizon=H, lookback=14, train=TrainConfig(epochs=3, patience=0))
    artifact = fit_model(old, spec)
    a = artifact.arrays
    assert a["state/adam_count"][0] > 0 and np.abs(a["state/nu/head/kernel"]).max() > 0
    result = update_model(artifact, new)
    b = result.artifact.arrays
    record = result.artifact.manifest.updates[-1]
    moved = not np.array_equal(a["params/head/kernel"], b["params/head/kernel"])
    assert moved == record["kept"].startswith("trained on")
    if moved:  # Adam's step count went on from where training left it
        assert b["state/adam_count"][0] > a["state/adam_count"][0]
    assert b["history/rows"].tolist() == [126] * 3
    if kind == "auto":
        np.testing.assert_array_equal(b["context/values"][:, -1], new.values[new.starts[1:] - 1, 0])


@pytest.mark.parametrize("kind", ["gru", "snaive"])
def test_series_too_short_for_a_window_still_update_their_history(tmp_path, kind):
    data = frame(30)
    data[data.groupby("unique_id").cumcount() < 20].to_csv(tmp_path / "short.csv", index=False)
    data.to_csv(tmp_path / "longer.csv", index=False)
    spec = TrainSpec(kind=kind, horizon=H, lookback=14, train=TrainConfig(epochs=2))
    artifact = fit_model(read_series(tmp_path / "short.csv"), spec)
    result = update_model(artifact, read_series(tmp_path / "longer.csv"))
    assert result.rows == 30 and result.artifact.arrays["history/rows"].tolist() == [30] * 3
    forecast = predict(result.artifact).frame
    assert forecast["ds"].min() == np.datetime64("2024-01-31") and np.isfinite(forecast["y_hat"]).all()


def test_adam_moments_round_trip():
    import jax.numpy as jnp
    import optax

    from forecast_cli import train

    tx = train.make_optimizer(TrainConfig(), 10)
    params = {"w": jnp.ones(3)}
    state = tx.init(params)
    _, state = tx.update({"w": jnp.full(3, 0.5)}, state, params)
    moments = train.adam_moments(state)
    assert moments["count"] == 1
    fresh = train.with_adam_moments(tx.init(params), moments)
    np.testing.assert_array_equal(optax.tree_utils.tree_get(fresh, "nu")["w"], moments["nu"]["w"])
    assert train.adam_moments(fresh)["count"] == 1


def cli(*args):
    return runner.invoke(app, list(map(str, args)))


def test_cli_update_nothing_new_revision_and_old_format(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    old, new = panels(tmp_path)
    directory = tmp_path / "model"
    assert cli("train", "old.csv", "--model", "esn", "--units", 40, "--horizon", H, "--model-dir", directory,
               "-q").exit_code == 0
    result = cli("update", "new.csv", "--model-dir", directory)
    assert result.exit_code == 0, result.output
    assert "updated esn with 36 new rows of 3 series" in result.output
    files = {p.name: p.read_bytes() for p in directory.iterdir()}
    result = cli("update", "new.csv", "--model-dir", directory)
    assert result.exit_code == 0 and "nothing new" in result.output
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == files  # untouched
    revised = frame(132)
    revised.loc[5, "y"] += 1
    revised.to_csv(tmp_path / "revised.csv", index=False)
    result = cli("update", "revised.csv", "--model-dir", directory)
    assert result.exit_code == 2 and "series 's0'" in result.output and "--allow-revisions" in result.output
    assert {p.name: p.read_bytes() for p in directory.iterdir()} == files
    manifest_path = directory / "manifest.json"  # a model directory of format version 4 (before `update`)
    from forecast_cli.manifest import seal

    manifest = json.loads(manifest_path.read_text())
    manifest_path.write_text(json.dumps(seal({**manifest, "format_version": 4})))
    result = cli("update", "new.csv", "--model-dir", directory)
    assert result.exit_code == 1 and "format version 4" in result.output and "retrain" in result.output  # as predict


def test_a_killed_update_leaves_the_old_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    panels(tmp_path)
    directory = tmp_path / "model"
    assert cli("train", "old.csv", "--model", "esn", "--units", 40, "--horizon", H, "--model-dir", directory,
               "-q").exit_code == 0
    files = {p.name: p.read_bytes() for p in directory.iterdir()}
    for stage in ("arrays", "committed"):
        killed = subprocess.run([sys.executable, "-m", "forecast_cli", "update", "new.csv", "--model-dir",
                                 str(directory), "-q"], env={**os.environ, "FORECAST_TEST_KILL_AT": stage},
                                capture_output=True)
        assert killed.returncode == -signal.SIGKILL
        if stage == "arrays":  # killed before the commit: the old model, byte for byte
            assert {p.name: p.read_bytes() for p in directory.iterdir()} == files
    assert load_artifact(directory).manifest.updates[-1]["rows"] == 36  # after the commit: the new one


def test_tampered_update_state_is_refused(tmp_path):
    import shutil

    from test_manifest import resave

    from forecast_cli.errors import ArtifactError

    old, new = panels(tmp_path, grow=1)
    save_artifact(tmp_path / "model", update_model(fit_model(old, esn_spec()), new).artifact)
    cases = {"state/gram": np.zeros((3, 3)), "calibration/pending_series": np.array([0, 1, 9]),
             "calibration/pending": np.full((3, H), np.nan), "history/rows": np.array([1, 121, 121]),
             "history/digest": np.zeros(3, np.int64)}
    for name, value in cases.items():
        copy = tmp_path / name.replace("/", "_")
        shutil.copytree(tmp_path / "model", copy)
        resave(copy, lambda arrays, name=name, value=value: arrays.__setitem__(name, value))
        with pytest.raises(ArtifactError, match=f"array '{name.removesuffix('_series')}'"):
            load_artifact(copy)


@pytest.mark.parametrize("chunk", [1, 3, 1 << 20])
def test_digests_made_a_chunk_of_rows_at_a_time_are_those_of_every_row_at_once(tmp_path, monkeypatch, chunk):
    """The digest is splitmix64 over each row's stamp, position and values, added up per series: taken a chunk
    of rows at a time it must be the same number (models store it; `update` compares fresh data with it)."""
    from forecast_cli import data
    from forecast_cli.data import _mix

    rng = np.random.default_rng(0)
    lengths = [5, 1, 9, 4]
    frame = pd.DataFrame({"unique_id": np.repeat([f"s{i}" for i in range(4)], lengths),
                          "ds": np.concatenate([pd.date_range("2021-01-01", periods=n) for n in lengths]),
                          "y": rng.normal(size=sum(lengths)), "x": rng.normal(size=sum(lengths))})
    frame.to_csv(tmp_path / "d.csv", index=False)
    panel = read_series(tmp_path / "d.csv")
    rows = np.array([5, 0, 4, 4])
    position = np.arange(len(panel.ds)) - np.repeat(panel.starts[:-1], panel.lengths)
    want = _mix(panel.ds.view(np.uint64) ^ _mix(position.astype(np.uint64)))
    for column in range(panel.values.shape[1]):
        want = _mix(want ^ np.ascontiguousarray(panel.values[:, column]).view(np.uint64))
    monkeypatch.setattr(data, "_DIGEST_ROWS", chunk)
    for asked, limit in ((None, panel.lengths), (rows, rows)):
        masked = np.where(position < np.repeat(limit, panel.lengths), want, np.uint64(0))
        np.testing.assert_array_equal(panel.digests(asked), np.add.reduceat(masked, panel.starts[:-1]))
