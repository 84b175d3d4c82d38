"""Scale: synthetic panels of many series x 500 daily steps. Wall time and peak memory (max RSS) of `inspect`,
one epoch of `train` and `predict` on the file, each in a fresh process, and the fitted exponent of time
against rows (1.0 is linear). Sizes are arguments: `python benchmarks/scale.py 1000 3000 10000`."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from common import header, table  # noqa: E402

STEPS = 500
# One GRU epoch over every window (about 420 per series) is 5 minutes at 10,000 series on this machine, so 50
# at 100,000: beyond the limit, "train" is the seasonal-naive model (reading, windowing, validating, saving).
TRAIN_LIMIT = int(os.environ.get("SCALE_TRAIN_LIMIT", "10000"))


def write_panel(path: str, n_series: int, block: int = 2000) -> None:
    """A long-layout CSV of `n_series` daily series, written `block` series at a time (100,000 series are 50
    million rows: built as one frame they would take several GB here)."""
    rng = np.random.default_rng(0)
    t = np.arange(STEPS)
    dates = pd.date_range("2020-01-01", periods=STEPS).strftime("%Y-%m-%d")
    for first in range(0, n_series, block):
        n = min(block, n_series - first)
        y = (10 + np.sin(2 * np.pi * t / 7)[None, :] + rng.standard_normal((n, STEPS))).round(3)
        frame = pd.DataFrame({
            "unique_id": np.repeat([f"s{i}" for i in range(first, first + n)], STEPS),
            "ds": np.tile(dates, n),
            "y": y.reshape(-1),
        })
        frame.to_csv(path, index=False, mode="w" if first == 0 else "a", header=first == 0)


def measure(command: list[str], cwd: str) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of a command, from GNU time."""
    start = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-f", "%M", *command], cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return seconds, int(out.stderr.strip().splitlines()[-1]) / 1024


def main(sizes: list[int]):
    header("Scale: synthetic panels x 500 daily steps", "jax", "pandas")
    forecast = [sys.executable, "-m", "forecast_cli"]
    rows, times = [], {}  # command -> [(series, seconds)]
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            path = os.path.join(tmp, f"panel{n}.csv")
            write_panel(path, n)
            gru = n <= TRAIN_LIMIT
            model = ["--model", "gru", "--no-refit", "--epochs", "1"] if gru else ["--model", "snaive"]
            results = {
                "inspect": measure(forecast + ["inspect", path, "--json"], tmp),
                "train, 1 GRU epoch" if gru else "train, snaive": measure(
                    forecast + ["train", path, *model, "--model-dir", f"m{n}", "-q"], tmp),
                "predict": measure(forecast + ["predict", path, "--model-dir", f"m{n}", "-o", "out.csv"], tmp),
            }
            for name, (seconds, _) in results.items():
                times.setdefault(name, []).append((n, seconds))
            rows.append([f"{n:,}", f"{n * STEPS:,}",
                         *(f"{s:.1f} s / {m:,.0f} MiB" + ("" if gru or name != "train, snaive" else " (snaive)")
                           for name, (s, m) in results.items())])
    print(table(["series", "rows", "inspect (time / peak RSS)", f"train (1 GRU epoch up to {TRAIN_LIMIT:,} series)",
                 "predict from the file"], rows))
    for name, pairs in times.items():
        if len(pairs) >= 2:
            slope = np.polyfit(*np.log(np.array(pairs, float)).T, 1)[0]
            print(f"\n{name}: time ~ rows^{slope:.2f} over {len(pairs)} sizes")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [1000, 10000, 100000])
