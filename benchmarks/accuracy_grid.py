"""Defaults by evidence: one training configuration on one M1 set, scored on a holdout inside the training file
(the last horizon of each series held back: this is what chooses) and on the test file (this only confirms).

Usage: python benchmarks/accuracy_grid.py yearly|quarterly|monthly TAG JSON
JSON holds TrainConfig fields plus "seeds", "lookback" (in horizons), "hidden", "layers", "dropout", "log"
(train on the log of the series, forecast its exp), "weights" (the blend weights auto may choose) and "kind"
(default gru); prints one JSON line
with sMAPE and MASE of the network (averaged over seeds), of Theta alone and of their even blend. Results are in
docs/accuracy.md.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

DATA = os.environ.get("M1_DIR", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "bench-data"))
SETS = {"yearly": (6, 1), "quarterly": (8, 4), "monthly": (18, 12)}


def series_of(panel) -> list[np.ndarray]:
    return [panel.values[a:b, 0] for a, b in zip(panel.starts[:-1], panel.starts[1:], strict=True)]


def scores(forecast: np.ndarray, truth: np.ndarray, history: list[np.ndarray], season: int) -> list[float]:
    from forecast_cli.metrics import mase, smape

    rows = range(len(truth))
    return [round(float(np.mean([smape(truth[i], forecast[i]) for i in rows])), 2),
            round(float(np.nanmean([mase(truth[i], forecast[i], history[i], season) for i in rows])), 3)]


def network(panel, horizon: int, config: dict) -> tuple[np.ndarray, dict]:
    """(n_series, horizon) forecasts of the configured model, averaged over seeds, and its last manifest."""
    from forecast_cli.config import RecurrentConfig, TrainConfig, TrainSpec
    from forecast_cli.fit import fit_model
    from forecast_cli.forecast import predict

    config = dict(config)
    seeds, lookback = config.pop("seeds", 1), config.pop("lookback", None)
    recurrent = RecurrentConfig(hidden=config.pop("hidden", 64), layers=config.pop("layers", 1),
                                dropout=config.pop("dropout", 0.0))
    kind, log = config.pop("kind", "gru"), config.pop("log", False)
    if "weights" in config:  # the blend weights `auto` may choose from
        from forecast_cli.models import auto

        auto.WEIGHTS = tuple(config.pop("weights"))
    if log:
        values = panel.values.copy(order="F")
        values[:, 0] = np.log(values[:, 0])
        panel = dataclasses.replace(panel, values=values)
    runs = []
    for seed in range(seeds):
        spec = TrainSpec(kind=kind, horizon=horizon, lookback=lookback and int(lookback * horizon),
                         recurrent=recurrent, train=TrainConfig(**config, seed=seed))
        artifact = fit_model(panel, spec)
        frame = predict(artifact, None, horizon).frame
        runs.append(frame["y_hat"].to_numpy().reshape(len(panel.ids), horizon))  # series in panel order
    forecast = np.mean(runs, axis=0)
    return np.exp(forecast) if log else forecast, artifact.manifest


def main(name: str, tag: str, config: dict) -> None:
    from forecast_cli.data import read_series
    from forecast_cli.models.theta import theta

    horizon, season = SETS[name]
    full = read_series(os.path.join(DATA, f"m1_{name}_train.csv"))
    test = pd.read_csv(os.path.join(DATA, f"m1_{name}_test.csv"))
    test["unique_id"] = test["unique_id"].astype(str)
    future = test.sort_values(["unique_id", "ds"]).groupby("unique_id")["y"].apply(np.array)
    result = {"set": name, "tag": tag}
    for part in ("holdout", "test"):
        panel = full.truncate(horizon) if part == "holdout" else full
        if part == "holdout":
            truth = np.stack([y[-horizon:] for y in series_of(full)])
        else:
            truth = np.stack([future[sid][:horizon] for sid in panel.ids])
        start = time.perf_counter()
        nn, manifest = network(panel, horizon, config)
        seconds = time.perf_counter() - start
        context = panel.last_windows(int(panel.lengths.max()), target_only=True)
        by_theta = theta(context.values[:, :, 0], horizon, season)
        history = series_of(panel)
        result[part] = {"network": scores(nn, truth, history, season),
                        "theta": scores(by_theta, truth, history, season),
                        "even blend": scores((nn + by_theta) / 2, truth, history, season),
                        "seconds": round(seconds, 1), "lookback": manifest.window.lookback}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))
