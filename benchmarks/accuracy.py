"""Accuracy on the M1 competition (../shared/bench-data) and on synthetic sets whose truth is known
(synthetic_sets.py): forecast's models against naive, seasonal naive and statsforecast's AutoETS, AutoTheta and
AutoARIMA, trained on each *_train.csv, scored on *_test.csv with sMAPE and MASE (in-sample seasonal-naive
scale) averaged over series, with the wall time of each. Choices are never made on the test files: forecast's
models pick everything by validation inside the training data.

    python benchmarks/accuracy.py [SET ...] [--quick]
SET: yearly, quarterly, monthly (M1), monthly300, yearly2000, trend (synthetic); default all. --quick runs only
auto, seasonal naive and the ablations beside the peers. PEER_MODELS=AutoETS,AutoTheta leaves AutoARIMA out."""

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
SETS = [("yearly", 6, 1), ("quarterly", 8, 4), ("monthly", 18, 12)]  # M1: (name, horizon, season)
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


def member_alone(panel, horizon: int, season: int, drift: float | None) -> tuple[pd.DataFrame, float]:
    """One of `auto`'s statistical members alone on the context `auto` gives it (an ablation, not a model kind of
    its own): forecast's Theta with `drift`, or with None its ETS."""
    from forecast_cli.features import stamps_around
    from forecast_cli.models.auto import context_rows
    from forecast_cli.models.ets import ets
    from forecast_cli.models.theta import theta

    start = time.perf_counter()
    context = panel.last_windows(context_rows(panel.lengths, 1), target_only=True)
    values = context.values[:, :, 0]
    y_hat = ets(values, horizon, season) if drift is None else theta(values, horizon, season, drift)
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
        models = os.environ.get("PEER_MODELS", "AutoETS,AutoTheta,AutoARIMA")  # AutoARIMA takes 10+ minutes on
        out = subprocess.run([python, script, train_path, freq, str(horizon), str(season), prefix, "", models],  # long
                             check=True, capture_output=True, text=True).stdout  # monthly sets
        seconds = json.loads(out.strip().splitlines()[-1])
        return [(f"statsforecast {name}", pd.read_csv(f"{prefix}.{name}.csv", parse_dates=["ds"]), secs)
                for name, secs in seconds.items()]


def paths(name: str, tmp: str) -> tuple[str, str]:
    """The train and test files of a set: M1's, or a synthetic one written into `tmp`."""
    import synthetic_sets

    if name in synthetic_sets.SETS:
        if not os.path.exists(os.path.join(tmp, f"{name}_train.csv")):
            synthetic_sets.write(tmp)
        return tuple(os.path.join(tmp, f"{name}_{part}.csv") for part in ("train", "test"))
    return tuple(os.path.join(DATA, f"m1_{name}_{part}.csv") for part in ("train", "test"))


def main(wanted: list[str], quick: bool):
    import tempfile

    import synthetic_sets

    header("Accuracy", "jax", "flax", "statsforecast")
    every = SETS + [(name, h, m) for name, (h, m, _) in synthetic_sets.SETS.items()]
    with tempfile.TemporaryDirectory() as tmp:
        for name, horizon, season in every:
            if not wanted or name in wanted:
                one_set(name, horizon, season, *paths(name, tmp), quick)


def one_set(name: str, horizon: int, season: int, train_path: str, test_path: str, quick: bool) -> None:
    import synthetic_sets

    from forecast_cli import read_series

    panel = read_series(train_path)
    test = pd.read_csv(test_path, parse_dates=["ds"])
    test["unique_id"] = test["unique_id"].astype(str)
    history = {sid: panel.values[a:b, 0] for sid, a, b in zip(panel.ids, panel.starts[:-1], panel.starts[1:],
                                                               strict=True)}
    rows, results = [], []
    for label, kind in OURS:
        if quick and kind not in ("auto", "snaive"):
            continue
        frame, seconds, manifest = ours(panel, kind, horizon)
        if kind == "auto":
            b = manifest.blend
            drift = b["drift"]
            label = (f"auto (default): {100 * b['weight']:.0f}% GRU, "
                     f"{100 * (1 - b['weight'] - b['ets']):.0f}% Theta (drift {drift:g}), {100 * b['ets']:.0f}% ETS")
        results.append((label, frame, seconds))
    results.append((f"ablation: auto's Theta alone (drift {drift:g})", *member_alone(panel, horizon, season, drift)))
    results.append(("ablation: classic Theta alone (drift 0.5)", *member_alone(panel, horizon, season, 0.5)))
    results.append(("ablation: auto's ETS alone", *member_alone(panel, horizon, season, None)))
    results += statsforecast_models(train_path, panel.freq, horizon, season)
    snaive_mase = None
    for label, frame, seconds in results:
        frame = frame[["unique_id", "ds", "y_hat"]].assign(unique_id=lambda f: f["unique_id"].astype(str))
        s, m = score(frame, test, history, season)
        snaive_mase = m if label == "seasonal naive" else snaive_mase
        rows.append([label, f"{s:.2f}", f"{m:.3f}", m, f"{seconds:.1f} s"])
    for row in rows:
        row[3] = f"{100 * (row[3] / snaive_mase - 1):+.1f}%"
    where = "synthetic" if name in synthetic_sets.SETS else "M1"
    print(f"\n### {where} {name}: {len(panel.ids)} series, horizon {horizon}, season {season}\n", flush=True)
    print(table(["model", "sMAPE", "MASE", "MASE vs seasonal naive", "train + predict"], rows))


if __name__ == "__main__":
    main([a for a in sys.argv[1:] if not a.startswith("--")], "--quick" in sys.argv)
