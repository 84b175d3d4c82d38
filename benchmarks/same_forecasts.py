"""Do a change's forecasts match the forecasts before it? Trains and predicts with a fixed seed on every
sample_data/ file and the M1 sets through the CLI (one process), and writes each forecast CSV into a folder;
with --compare OLD, prints the largest relative difference per case against OLD's CSVs.

    python benchmarks/same_forecasts.py /tmp/before            # on the old commit
    python benchmarks/same_forecasts.py /tmp/after --compare /tmp/before
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd

ROOT = os.path.join(os.path.dirname(__file__), "..")
M1 = os.environ.get("M1_DIR", os.path.join(ROOT, "..", "shared", "bench-data"))
RIVER = ["sample_data/river.csv", "--target", "discharge", "--covariates", "rain,temp"]
SALES = ["sample_data/sales.csv", "--covariates", "price"]
WEATHER = ["sample_data/weather.csv", "--target", "temp_max"]
# (name, train arguments, predict arguments)
CASES = [(f"river-{k}", [*RIVER, "--model", k, "--epochs", "15"], ["--horizon", "10", "--levels", "80"])
         for k in ("auto", "gru", "lstm", "elman", "esn", "snaive")]
CASES += [(f"sales-{k}", [*SALES, "--model", k, "--horizon", "4", "--epochs", "30"], ["--levels", "90"])
          for k in ("auto", "gru", "esn", "naive")]
CASES += [(f"weather-{k}", [*WEATHER, "--model", k, "--epochs", "15"], []) for k in ("auto", "esn")]
CASES += [(f"m1-{s}-{k}", [os.path.join(M1, f"m1_{s}_train.csv"), "--model", k, "--horizon", str(h)], [])
          for s, h in (("yearly", 6), ("quarterly", 8), ("monthly", 18)) for k in ("auto", "gru", "esn")]


def run(out: str, only: str | None) -> None:
    os.makedirs(out, exist_ok=True)
    forecast = [sys.executable, "-m", "forecast_cli"]
    for name, train, predict in CASES:
        if only and only not in name:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            model = os.path.join(tmp, "model")
            subprocess.run([*forecast, "train", *train, "--seed", "0", "--model-dir", model, "-q"], check=True,
                           cwd=ROOT)
            subprocess.run([*forecast, "predict", "--model-dir", model, *predict, "-o",
                            os.path.join(os.path.abspath(out), f"{name}.csv")], check=True, cwd=ROOT)
        print(name, flush=True)


def compare(new: str, old: str) -> float:
    worst = 0.0
    for name, _, _ in CASES:
        a_path, b_path = os.path.join(old, f"{name}.csv"), os.path.join(new, f"{name}.csv")
        if not (os.path.exists(a_path) and os.path.exists(b_path)):
            continue
        a, b = pd.read_csv(a_path), pd.read_csv(b_path)
        assert list(a.columns) == list(b.columns) and a[["unique_id", "ds"]].equals(b[["unique_id", "ds"]]), name
        values = [c for c in a.columns if c.startswith("y_hat")]
        x, y = a[values].to_numpy(float), b[values].to_numpy(float)
        rel = float(np.max(np.abs(x - y) / np.maximum(np.abs(x), 1e-6)))
        worst = max(worst, rel)
        print(f"{name:24s} rows {len(a):6d}  largest relative difference {rel:.2e}")
    print(f"largest over every case: {worst:.2e}")
    return worst


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--compare")
    parser.add_argument("--only")
    args = parser.parse_args()
    run(args.out, args.only)
    if args.compare:
        compare(args.out, args.compare)
