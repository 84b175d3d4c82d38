"""Static covariates (`--static`): one value per series, read, checked, encoded, saved and fed to every input row."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from forecast_cli.cli import app
from forecast_cli.config import DataConfig, ESNConfig, TrainSpec
from forecast_cli.data import read_series
from forecast_cli.errors import ConfigError, DataError
from forecast_cli.fit import fit_model
from forecast_cli.forecast import predict
from forecast_cli.persistence import load_artifact, save_artifact
from forecast_cli.static import encode, fit_encoding

runner = CliRunner()


def stores(path, n_series=8, length=80):
    """Daily series whose level is set by their store type: 'big' ones sit 30 above 'small' ones."""
    rng = np.random.default_rng(0)
    frames = []
    for s in range(n_series):
        kind = "big" if s % 2 else "small"
        y = 50 + (30 if kind == "big" else 0) + rng.standard_normal(length)
        frames.append(pd.DataFrame({"unique_id": f"s{s}", "ds": pd.date_range("2024-01-01", periods=length),
                                    "y": y.round(4), "kind": kind, "area": 100 + 10 * s}))
    pd.concat(frames).to_csv(path, index=False)
    return path


def test_static_columns_are_read_once_per_series(tmp_path):
    panel = read_series(stores(tmp_path / "s.csv"), DataConfig(static=("kind", "area")))
    assert panel.static == ("kind", "area") and panel.values.shape[1] == 1  # not value columns
    assert panel.static_values[:2].tolist() == [["small", "100"], ["big", "110"]]
    assert panel.select(np.array([False, True] * 4)).static_values[:, 0].tolist() == ["big"] * 4


def test_encoding_standardises_numbers_and_one_hot_encodes_text():
    values = np.array([["a", "1"], ["b", "3"], ["a", "5"]], dtype=object)
    encoding = fit_encoding(("kind", "size"), values)
    assert encoding[0] == {"name": "kind", "categories": ["a", "b"]}
    assert encoding[1]["mean"] == 3.0
    encoded = encode(encoding, np.array([["b", "3"], ["new", "1"]], dtype=object), "f.csv", np.array(["x", "y"]))
    np.testing.assert_allclose(encoded, [[0, 1, 0], [0, 0, -2 / np.std([1, 3, 5])]], rtol=1e-6)
    with pytest.raises(DataError, match="series 'x' has 'big'"):
        encode(encoding, np.array([["a", "big"]], dtype=object), "f.csv", np.array(["x"]))


@pytest.mark.parametrize("edit, message", [
    (lambda f: f.assign(kind=np.where(f.index == 5, "big", f.kind)), "line 7: series 's0' has 'big' here but 'small'"),
    (lambda f: f.assign(kind=np.where(f.unique_id == "s2", None, f.kind)), "series 's2' has no value"),
])
def test_a_series_with_two_values_or_none_is_refused(tmp_path, edit, message):
    frame = edit(pd.read_csv(stores(tmp_path / "s.csv")))
    frame.to_csv(tmp_path / "bad.csv", index=False)
    result = runner.invoke(app, ["train", str(tmp_path / "bad.csv"), "--static", "kind", "--model-dir",
                                 str(tmp_path / "m")])
    assert result.exit_code == 2 and message in result.output and not (tmp_path / "m").exists()


def test_options_that_cannot_work_are_refused(tmp_path):
    stores(tmp_path / "s.csv")
    with pytest.raises(ConfigError, match="twice"):
        read_series(tmp_path / "s.csv", DataConfig(static=("kind", "kind")))
    with pytest.raises(ConfigError, match="both --static and --covariates"):
        read_series(tmp_path / "s.csv", DataConfig(static=("area",), covariates=("area",)))
    with pytest.raises(DataError, match="from --static"):
        read_series(tmp_path / "s.csv", DataConfig(static=("region",)))


def test_the_type_reaches_every_forecast_and_survives_a_save(tmp_path):
    config = DataConfig(static=("kind",))
    panel = read_series(stores(tmp_path / "s.csv"), config)
    artifact = fit_model(panel, TrainSpec(kind="esn", horizon=7, lookback=14, esn=ESNConfig(units=40), data=config))
    assert artifact.arrays["static/values"].tolist()[:2] == [[0.0, 1.0], [1.0, 0.0]]  # big, small
    save_artifact(tmp_path / "m", artifact)
    loaded = load_artifact(tmp_path / "m")
    pd.testing.assert_frame_equal(predict(artifact, None, 10).frame, predict(loaded, None, 10).frame)
    # the same history under the other type's code: the forecast moves, so the inputs carry it
    frame = pd.read_csv(tmp_path / "s.csv")
    frame.assign(kind=np.where(frame.kind == "big", "small", "big")).to_csv(tmp_path / "swapped.csv", index=False)
    swapped = read_series(tmp_path / "swapped.csv", config)
    a, b = predict(loaded, panel, 7).frame["y_hat"], predict(loaded, swapped, 7).frame["y_hat"]
    assert np.abs(a - b).max() > 1e-3
    # a series of a type training never saw gets no category, and still a forecast
    frame.assign(kind="medium").to_csv(tmp_path / "unseen.csv", index=False)
    assert np.isfinite(predict(loaded, read_series(tmp_path / "unseen.csv", config), 7).frame["y_hat"]).all()


def test_a_tampered_encoding_is_refused(tmp_path):
    import json

    from forecast_cli.manifest import seal

    config = DataConfig(static=("kind",))
    panel = read_series(stores(tmp_path / "s.csv"), config)
    save_artifact(tmp_path / "m", fit_model(panel, TrainSpec(kind="esn", horizon=7, lookback=14,
                                                             esn=ESNConfig(units=40), data=config)))
    path = tmp_path / "m" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["static"][0]["categories"].append("huge")  # one more one-hot column than n_features has
    path.write_text(json.dumps(seal(manifest)))
    result = runner.invoke(app, ["predict", "--model-dir", str(tmp_path / "m")])
    assert result.exit_code == 1 and "n_features" in result.output
