"""Accuracy on the M1 competition (../shared/bench-data): forecast's models against naive, seasonal naive and
statsforecast's AutoETS and AutoTheta, trained on each *_train.csv, scored on *_test.csv with sMAPE and MASE
(in-sample seasonal-naive scale) averaged over series, with the wall time of each. Choices are never made on
the test files: forecast's models pick everything by validation inside the training data."""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from common import header, table  # noqa: E402

DATA = os.environ.get("M1_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "bench-data"))
SETS = [("yearly", 6, 1), ("quarterly", 8, 4), ("monthly", 18, 12)]
OURS = [("auto", "auto"), ("gru", "gru"), ("esn", "esn"), ("naive", "naive"),
        ("seasonal naive", "snaive")]


def score(forecast: pd.DataFrame, test: pd.DataFrame, history: dict, season: int) -> tuple[float, float]:
    from forecast_cli.metrics import mase, smape

    merged = forecast.merge(test, on=["unique_id", "ds"])
    smapes, mases = [], []
    for sid, group in merged.groupby("unique_id"):
        smapes.append(smape(group["y"].to_numpy(), group["y_hat"].to_numpy()))
        mases.append(mase(group["y"].to_numpy(), group["y_hat"].to_numpy(), history[sid], season))
    return float(np.mean(smapes)), float(np.nanmean(mases))


def ours(panel, kind: str, horizon: int) -> tuple[pd.DataFrame, float, dict]:
    """(forecast frame, seconds to train and predict, the model's manifest)."""
    import forecast_cli as fc

    start = time.perf_counter()
    artifact = fc.fit_model(panel, fc.TrainSpec(kind=kind, horizon=horizon))
    frame = fc.predict(artifact, None, horizon).frame
    return frame, time.perf_counter() - start, artifact.manifest


def theta_alone(panel, horizon: int, season: int, drift: float) -> tuple[pd.DataFrame, float]:
    """forecast's own Theta, the statistical half of `auto`, on the whole history (an ablation, not a model
    kind of its own)."""
    from forecast_cli.features import stamps_around
    from forecast_cli.models.theta import theta

    start = time.perf_counter()
    context = panel.last_windows(int(panel.lengths.max()), target_only=True)
    y_hat = theta(context.values[:, :, 0], horizon, season, drift)
    _, future = stamps_around(context.last_ds, panel.freq, 1, horizon)
    frame = pd.DataFrame({"unique_id": np.repeat(context.ids, horizon), "ds": future.reshape(-1),
                          "y_hat": y_hat.reshape(-1)})
    return frame, time.perf_counter() - start


def statsforecast_models(train_path: str, freq: str, horizon: int, season: int):
    """AutoETS and AutoTheta, run in their own environment (see statsforecast_peer.py)."""
    import json
    import subprocess
    import tempfile

    default = os.path.join(os.path.dirname(__file__), "..", ".venv-peers", "bin", "python")
    python = os.environ.get("PEER_PYTHON", default)
    if not os.path.exists(python):
        print(f"(statsforecast peers skipped: no {python}; `make bench-accuracy` builds it)")
        return []
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "peer")
        script = os.path.join(os.path.dirname(__file__), "statsforecast_peer.py")
        out = subprocess.run([python, script, train_path, freq, str(horizon), str(season), prefix], check=True,
                             capture_output=True, text=True).stdout
        seconds = json.loads(out.strip().splitlines()[-1])
        return [(f"statsforecast {name}", pd.read_csv(f"{prefix}.{name}.csv", parse_dates=["ds"]), secs)
                for name, secs in seconds.items()]


def main(only: str | None = None):
    from forecast_cli import read_series

    header("M1 accuracy", "jax", "flax", "statsforecast")
    for name, horizon, season in SETS:
        if only and name != only:
            continue
        train_path, test_path = (os.path.join(DATA, f"m1_{name}_{part}.csv") for part in ("train", "test"))
        panel = read_series(train_path)
        test = pd.read_csv(test_path, parse_dates=["ds"])
        test["unique_id"] = test["unique_id"].astype(str)
        history = {sid: panel.values[a:b, 0] for sid, a, b in zip(panel.ids, panel.starts[:-1], panel.starts[1:],
                                                                   strict=True)}
        rows, results = [], []
        for label, kind in OURS:
            frame, seconds, manifest = ours(panel, kind, horizon)
            if kind == "auto":
                b = manifest.blend
                drift = b["drift"]
                label = f"auto (default): {100 * b['weight']:.0f}% GRU + Theta, drift {drift:g}"
            results.append((label, frame, seconds))
        results.append((f"ablation: auto's Theta alone (drift {drift:g})", *theta_alone(panel, horizon, season, drift)))
        results.append(("ablation: classic Theta alone (drift 0.5)", *theta_alone(panel, horizon, season, 0.5)))
        results += statsforecast_models(train_path, panel.freq, horizon, season)
        snaive_mase = None
        for label, frame, seconds in results:
            frame = frame[["unique_id", "ds", "y_hat"]].assign(unique_id=lambda f: f["unique_id"].astype(str))
            s, m = score(frame, test, history, season)
            snaive_mase = m if label == "seasonal naive" else snaive_mase
            rows.append([label, f"{s:.2f}", f"{m:.3f}", m, f"{seconds:.1f} s"])
        for row in rows:
            row[3] = f"{100 * (row[3] / snaive_mase - 1):+.1f}%"
        print(f"\n### M1 {name}: {len(panel.ids)} series, horizon {horizon}, season {season}\n")
        print(table(["model", "sMAPE", "MASE", "MASE vs seasonal naive", "train + predict"], rows))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
