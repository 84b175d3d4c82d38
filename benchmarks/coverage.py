"""Empirical coverage of the conformal prediction intervals on the sample data: train on the data up to each
of several cutoffs, forecast one horizon with --levels 80,95, and count how often what happened fell inside."""

from __future__ import annotations

import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(__file__))

from common import header, table  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = [
    ("sales.csv", {}),
    ("river.csv", {"target": "discharge", "covariates": ("rain", "temp")}),
    ("weather.csv", {"target": "temp_max", "covariates": ("temp_min", "precipitation", "wind")}),
]


def coverage(name: str, columns: dict, kind: str, folds: int) -> list:
    import numpy as np

    from forecast_cli import DataConfig, TrainSpec, fit_model, predict, read_series, timeindex

    panel = read_series(os.path.join(ROOT, "sample_data", name), DataConfig(**columns))
    horizon = timeindex.default_horizon(panel.freq)
    folds = min(folds, (int(panel.lengths.min()) - 2 * horizon - 1) // horizon)  # room for a validation part
    inside = {80: [], 95: []}
    for fold in range(folds):
        drop = horizon * (folds - fold)
        frame = predict(fit_model(panel.truncate(drop), TrainSpec(kind=kind, horizon=horizon)),
                              levels=[80, 95]).frame
        merged = frame.merge(panel.to_frame(), on=["unique_id", "ds"])
        for level in inside:
            inside[level].append(((merged["y"] >= merged[f"y_hat_lo_{level}"])
                                  & (merged["y"] <= merged[f"y_hat_hi_{level}"])).to_numpy())
    points = len(np.concatenate(inside[80]))
    return [name, kind, folds, points] + [f"{100 * np.concatenate(inside[lv]).mean():.0f}%" for lv in (80, 95)]


def main(folds: int = 5):
    header("Prediction interval coverage on the sample data", "jax")
    rows = [coverage(name, columns, kind, folds) for name, columns in FILES for kind in ("auto", "gru", "esn")]
    print(table(["file", "model", "cutoffs", "points", "80% interval", "95% interval"], rows))


if __name__ == "__main__":
    main()
