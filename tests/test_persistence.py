import json

import numpy as np
import pytest

from forecast_cli.artifact import Artifact
from forecast_cli.config import ESNConfig, RecurrentConfig, TrainConfig, TrainSpec
from forecast_cli.data import read_series
from forecast_cli.errors import ArtifactError
from forecast_cli.fit import fit_model
from forecast_cli.forecast import predict
from forecast_cli.persistence import FORMAT_VERSION, load_artifact, save_artifact, write_text_atomic

TINY = TrainConfig(epochs=3, patience=0, batch_size=32)


@pytest.fixture
def panel(seasonal_csv):
    return read_series(seasonal_csv(n_series=2, length=80))


@pytest.mark.parametrize("kind", ["gru", "lstm", "esn", "snaive"])
def test_save_load_predict_gives_the_same_numbers(panel, tmp_path, kind):
    spec = TrainSpec(kind=kind, horizon=5, lookback=10, recurrent=RecurrentConfig(hidden=8),
                     esn=ESNConfig(units=40), train=TINY)
    artifact = fit_model(panel, spec)
    before = predict(artifact).frame
    save_artifact(tmp_path / "model", artifact)
    after = predict(load_artifact(tmp_path / "model")).frame
    np.testing.assert_array_equal(before["y_hat"].to_numpy(), after["y_hat"].to_numpy())
    assert before["ds"].equals(after["ds"])
    assert len(after) == 2 * 5


def test_same_seed_same_forecast(panel):
    spec = TrainSpec(kind="gru", horizon=5, lookback=10, recurrent=RecurrentConfig(hidden=8), train=TINY)
    a = predict(fit_model(panel, spec)).frame
    b = predict(fit_model(panel, spec)).frame
    np.testing.assert_array_equal(a["y_hat"], b["y_hat"])
    other = TrainSpec(kind="gru", horizon=5, lookback=10, recurrent=RecurrentConfig(hidden=8),
                      train=TrainConfig(epochs=3, patience=0, batch_size=32, seed=1))
    assert not np.array_equal(a["y_hat"], predict(fit_model(panel, other)).frame["y_hat"])


@pytest.fixture
def small_artifact(panel):
    artifact = fit_model(panel, TrainSpec(kind="snaive", horizon=5, lookback=10))
    return lambda: artifact


def test_manifest_has_checksums_and_versions(tmp_path, small_artifact):
    save_artifact(tmp_path / "m", small_artifact())
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION
    assert len(manifest["files"]["arrays.npz"]["sha256"]) == 64
    assert manifest["files"]["arrays.npz"]["bytes"] == (tmp_path / "m" / "arrays.npz").stat().st_size
    loaded = load_artifact(tmp_path / "m")
    assert loaded.arrays.keys() == small_artifact().arrays.keys()


def test_corrupt_or_incompatible_directories_are_reported(tmp_path, small_artifact):
    target = tmp_path / "m"
    with pytest.raises(ArtifactError, match="no model directory"):
        load_artifact(target)
    save_artifact(target, small_artifact())
    arrays = target / "arrays.npz"
    data = bytearray(arrays.read_bytes())
    data[-10] ^= 0xFF
    arrays.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="checksum mismatch"):
        load_artifact(target)
    save_artifact(target, small_artifact())
    manifest = json.loads((target / "manifest.json").read_text())
    (target / "manifest.json").write_text(json.dumps({**manifest, "format_version": 99}))
    with pytest.raises(ArtifactError, match="format version 99 is newer"):
        load_artifact(target)
    (target / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="corrupt manifest"):
        load_artifact(target)


def test_failed_save_keeps_the_previous_model(tmp_path, monkeypatch, small_artifact):
    target = tmp_path / "m"
    save_artifact(target, small_artifact())
    before = (target / "manifest.json").read_text()

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", boom)
    with pytest.raises(ArtifactError, match="cannot save the model: disk full"):
        save_artifact(target, Artifact({"kind": "snaive"}, {}))
    assert (target / "manifest.json").read_text() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".m.")] == []  # no temporary left behind


def test_write_text_atomic_replaces_whole_files(tmp_path):
    path = tmp_path / "out.csv"
    write_text_atomic(path, "a\n1\n")
    write_text_atomic(path, "a\n2\n")
    assert path.read_text() == "a\n2\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
