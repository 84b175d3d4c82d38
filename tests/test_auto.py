"""Theta, the `auto` blend (GRU + Theta weighted on validation windows) and the "mase" loss weights."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from conftest import seasonal_frame

from forecast_cli.artifact import Artifact
from forecast_cli.config import RecurrentConfig, TrainConfig, TrainSpec
from forecast_cli.data import read_series
from forecast_cli.fit import fit_model
from forecast_cli.forecast import predict
from forecast_cli.models import auto, get
from forecast_cli.models.ets import ets
from forecast_cli.models.theta import theta, theta_one
from forecast_cli.persistence import load_artifact, save_artifact


def test_theta_on_windows_sees_its_own_series_up_to_the_origin_only():
    target = np.concatenate([np.arange(40.0), 100 + np.arange(30.0) ** 1.5])
    starts = np.array([0, 40, 70])
    begin = np.array([5, 45])  # lookback 8: origins at rows 13 and 53
    history = auto.histories(target, starts, begin, 8)
    assert np.isnan(history[0, :-13]).all() and np.isnan(history[1]).sum() == history.shape[1] - 13
    out = auto.theta_on_windows(history, 3, 1)
    assert set(out) == set(auto.DRIFTS)
    for drift, forecast in out.items():
        np.testing.assert_allclose(forecast[0], theta_one(target[0:13], 3, 1, drift))
        np.testing.assert_allclose(forecast[1], theta_one(target[40:53], 3, 1, drift))



def test_choose_blend_prefers_whichever_is_right():
    truth = np.random.default_rng(1).standard_normal((50, 4))
    noise = np.random.default_rng(2).standard_normal((50, 4))
    ones = np.ones(50)
    far = {d: truth + 5 for d in auto.DRIFTS}
    ets_far = truth - 5
    assert auto.choose_blend(truth, far, ets_far, truth, ones)[:3] == (0.5, 1.0, 0.0)  # the network alone
    right = {**far, 1.25: truth}
    assert auto.choose_blend(truth + noise, right, ets_far, truth, ones)[:3] == (1.25, 0.0, 0.0)
    assert auto.choose_blend(truth + noise, far, truth, truth, ones)[1:3] == (0.0, 1.0)  # ETS alone
    drift, weight, share, errors = auto.choose_blend(truth + noise, {**far, 0.75: truth - noise}, ets_far, truth, ones)
    assert (drift, weight, share) == (0.75, 0.5, 0.0) and errors["0.75/0.5/0"] < 1e-12  # the errors cancel
    assert len(errors) == len(auto.BLENDS) == len(auto.DRIFTS) * 66
    # the network's errors cancel with ETS's as well as with Theta's
    drift, weight, share, _ = auto.choose_blend(truth + noise, far, truth - noise, truth, ones)
    assert (weight, share) == (0.5, 0.5)



def _panel(tmp_path, n_series=3, length=80, short=None):
    """A panel of noisy weekly-seasonal daily series, plus a series "tiny" of `short` rows when given."""
    frame = seasonal_frame(n_series=n_series, length=length, period=7)
    if short:
        extra = frame[frame.unique_id == "s0"].head(short).assign(unique_id="tiny")
        frame = pd.concat([frame, extra], ignore_index=True)
    frame.to_csv(tmp_path / "panel.csv", index=False)
    return read_series(tmp_path / "panel.csv")


TINY = TrainSpec(kind="auto", horizon=5, lookback=14, recurrent=RecurrentConfig(hidden=8),
                 train=TrainConfig(epochs=3, batch_size=32))


def test_auto_blends_by_validation_and_round_trips(tmp_path):
    panel = _panel(tmp_path, short=10)
    artifact = fit_model(panel, TINY)
    m = artifact.manifest
    b = m.blend
    assert m.kind == "auto" and b["weight"] in auto.WEIGHTS and b["drift"] in auto.DRIFTS
    assert b["errors"][auto.blend_key(b["drift"], b["weight"], b["ets"])] == min(b["errors"].values())
    assert m.fit["refit_windows"] > 0  # refitted on training + validation windows
    first = predict(artifact, None, 5).frame
    save_artifact(tmp_path / "model", artifact)
    again = predict(load_artifact(tmp_path / "model"), None, 5).frame
    np.testing.assert_allclose(first["y_hat"], again["y_hat"])
    # the series shorter than the lookback is forecast by the statistical members alone, in the blend's proportion
    tiny = first[first.unique_id == "tiny"]["y_hat"].to_numpy()
    history = panel.values[panel.starts[-2] : panel.starts[-1], 0]
    statistical = 1 - b["weight"]
    share = b["ets"] / statistical if statistical > 0 else 0.0
    expected = (1 - share) * theta_one(history, 5, 7, b["drift"]) + share * ets(history[None], 5, 7)[0]
    np.testing.assert_allclose(tiny, expected, rtol=1e-5)


@pytest.mark.parametrize(("weight", "share", "drift"), [(0.3, 0.5, 1.0), (0.0, 1.0, 0.5), (0.6, 0.0, 1.25)])
def test_auto_forecasts_are_the_weighted_blend_of_its_three_members(tmp_path, weight, share, drift):
    panel = _panel(tmp_path)
    artifact = fit_model(panel, TINY)
    blend = {**artifact.manifest.blend, "weight": weight, "ets": share, "drift": drift}
    artifact = Artifact(dataclasses.replace(artifact.manifest, blend=blend), artifact.arrays)
    got = predict(artifact, None, 5).frame["y_hat"].to_numpy().reshape(3, 5)
    gru_only = dataclasses.replace(artifact.manifest, kind="gru")
    network = predict(Artifact(gru_only, artifact.arrays), None, 5).frame["y_hat"].to_numpy().reshape(3, 5)
    context = artifact.arrays["context/values"]
    expected = weight * network + (1 - weight - share) * theta(context, 5, 7, drift) + share * ets(context, 5, 7)
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_a_model_saved_before_ets_joined_the_blend_still_loads_and_forecasts(tmp_path):
    """Version-5 auto models have blend {weight, drift, errors} with (drift/weight) keys and no "ets"."""
    import json

    artifact = fit_model(_panel(tmp_path), TINY)
    b = artifact.manifest.blend
    old = {"weight": b["weight"], "drift": b["drift"],
           "errors": {f"{d:g}/{w:g}": 1.0 for d in auto.DRIFTS for w in auto.WEIGHTS}}
    arrays = {k: v for k, v in artifact.arrays.items() if not k.startswith("ets/")}
    save_artifact(tmp_path / "model", Artifact(dataclasses.replace(artifact.manifest, blend=old), arrays))
    loaded = load_artifact(tmp_path / "model")
    assert "ets" not in loaded.manifest.blend
    got = predict(loaded, None, 5).frame["y_hat"].to_numpy().reshape(3, 5)
    network = predict(Artifact(dataclasses.replace(loaded.manifest, kind="gru"), loaded.arrays), None, 5)
    context = loaded.arrays["context/values"]
    expected = b["weight"] * network.frame["y_hat"].to_numpy().reshape(3, 5) + \
        (1 - b["weight"]) * theta(context, 5, 7, b["drift"])
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert "ets" not in manifest["blend"]


def test_ensemble_members_are_trained_and_averaged(tmp_path):

    spec = TrainSpec(kind="auto", horizon=5, lookback=14, recurrent=RecurrentConfig(hidden=8),
                     train=TrainConfig(epochs=3, batch_size=32, ensemble=3))
    artifact = fit_model(_panel(tmp_path), spec)
    params, m = artifact.params(), artifact.manifest
    assert m.fit["members"] == 3
    members = [{k: v for k, v in params.items() if not k.startswith("member")}] + [
        {k[len(p):]: v for k, v in params.items() if k.startswith(p)} for p in ("member1/", "member2/")]
    assert all(members[0].keys() == other.keys() for other in members[1:])
    assert not np.allclose(members[0]["head/kernel"], members[1]["head/kernel"])  # other seeds
    X = np.random.default_rng(0).standard_normal((4, 14, artifact.manifest.n_features)).astype(np.float32)
    each = [get("gru").predictor(m.model, m.window.horizon, m.season, p)(X) for p in members]
    whole = get("gru").predictor(m.model, m.window.horizon, m.season, params)(X)
    np.testing.assert_allclose(whole, np.mean(each, axis=0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("loss", ["mse", "mae", "mase"])
def test_every_loss_trains(loss, tmp_path):
    spec = TrainSpec(kind="gru", horizon=5, lookback=14, recurrent=RecurrentConfig(hidden=8),
                     train=TrainConfig(epochs=2, batch_size=32, loss=loss, refit=False))
    fit = fit_model(_panel(tmp_path, n_series=2), spec).manifest.fit
    assert np.isfinite(fit["train_loss"]) and "refit_windows" not in fit


def test_recent_history_from_the_model_directory_uses_auto_s_longer_context(tmp_path):
    """`forecast plot` without DATA: auto keeps up to 256 recent rows for Theta, so the plot shows more than the
    lookback of history; the values are the training data's last rows."""
    from forecast_cli.forecast import recent_history

    panel = _panel(tmp_path, n_series=2)
    history = recent_history(fit_model(panel, TINY), None, 40)
    s0 = history[history.unique_id == "s0"]
    assert len(s0) == 40 > TINY.lookback
    np.testing.assert_allclose(s0["y"].to_numpy(), panel.values[panel.starts[1] - 40 : panel.starts[1], 0])
    assert s0["ds"].iloc[-1] == panel.ds[panel.starts[1] - 1]


def test_the_ets_state_is_saved_so_a_forecast_of_the_saved_context_fits_nothing(tmp_path, monkeypatch):
    """With an ETS share, training keeps ETS's state ("ets/state"); predict projects it (the same forecast as a
    fit on the context), fresh DATA is fitted anew, update refits on the grown context, tampering is refused."""
    import json

    from forecast_cli.errors import ArtifactError
    from forecast_cli.models import ets as exponential

    panel = _panel(tmp_path)
    artifact = fit_model(panel, TINY)
    arrays = {**artifact.arrays, **exponential.fit_rows(artifact.arrays["context/values"], 7).arrays()}
    blend = {**artifact.manifest.blend, "weight": 0.0, "ets": 1.0}
    artifact = Artifact(dataclasses.replace(artifact.manifest, blend=blend), arrays)
    save_artifact(tmp_path / "model", artifact)
    loaded = load_artifact(tmp_path / "model")
    assert loaded.arrays["ets/state"].shape == (3, 4 + 7)
    calls = []
    real = exponential.fit_rows
    monkeypatch.setattr(exponential, "fit_rows", lambda *a: calls.append(1) or real(*a))
    got = predict(loaded, None, 9).frame["y_hat"].to_numpy().reshape(3, 9)
    assert not calls  # projected from the saved state
    np.testing.assert_allclose(got, real(loaded.arrays["context/values"], 7).forecast(9), rtol=1e-6)
    predict(loaded, panel, 9)
    assert calls  # fresh data: fitted on its own context
    manifest = json.loads((tmp_path / "model" / "manifest.json").read_text())
    assert manifest["blend"]["ets"] == 1.0
    broken = {**loaded.arrays, "ets/state": np.full_like(loaded.arrays["ets/state"], np.nan)}
    with pytest.raises(ArtifactError, match="ets/state"):
        save_artifact(tmp_path / "other", Artifact(loaded.manifest, broken))
    missing = {k: v for k, v in loaded.arrays.items() if k != "ets/multiplicative"}
    with pytest.raises(ArtifactError, match="ets/multiplicative"):
        save_artifact(tmp_path / "other", Artifact(loaded.manifest, missing))
