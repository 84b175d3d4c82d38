"""Scale: synthetic daily panels of many series. Wall time and peak memory (max RSS) of `inspect`, one GRU epoch
of `train` and `predict` on the file, each in a fresh process, and the fitted exponent of time against rows
(1.0 is linear) over the sizes of the same length. Sizes are SERIESxSTEPS (STEPS default 500):
`python benchmarks/scale.py 10000x100 100000x100 1000000x100 100000x500`.

The epoch is `--model gru --no-refit --epochs 1 --series-windows 2`: each series gives 2 windows to it (the
window budget), so its cost grows with the series, not with their length. SCALE_SERIES_WINDOWS changes that."""

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
SERIES_WINDOWS = os.environ.get("SCALE_SERIES_WINDOWS", "2")


def write_panel(path: str, n_series: int, block: int = 20000, steps: int = STEPS) -> None:
    """A long-layout CSV of `n_series` daily series, written `block` series at a time (100,000 series are 50
    million rows: built as one frame they would take several GB here)."""
    rng = np.random.default_rng(0)
    t = np.arange(steps)
    dates = pd.date_range("2020-01-01", periods=steps).strftime("%Y-%m-%d")
    for first in range(0, n_series, block):
        n = min(block, n_series - first)
        y = (10 + np.sin(2 * np.pi * t / 7)[None, :] + rng.standard_normal((n, steps))).round(3)
        frame = pd.DataFrame({
            "unique_id": np.repeat([f"s{i}" for i in range(first, first + n)], steps),
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


def main(sizes: list[tuple[int, int]]):
    header("Scale: synthetic daily panels", "jax", "pandas")
    forecast = [sys.executable, "-m", "forecast_cli"]
    rows, times = [], {}  # (command, steps) -> [(rows, seconds)]
    model = ["--model", "gru", "--no-refit", "--epochs", "1", "--series-windows", SERIES_WINDOWS]
    with tempfile.TemporaryDirectory() as tmp:
        for n, steps in sizes:
            path = os.path.join(tmp, f"panel{n}x{steps}.csv")
            write_panel(path, n, steps=steps)
            size = os.path.getsize(path)
            results = {
                "inspect": measure(forecast + ["inspect", path, "--json"], tmp),
                "train": measure(forecast + ["train", path, *model, "--model-dir", "m", "-q"], tmp),
                "predict": measure(forecast + ["predict", path, "--model-dir", "m", "-o", "out.csv"], tmp),
            }
            os.remove(path)
            for name, (seconds, _) in results.items():
                times.setdefault((name, steps), []).append((n * steps, seconds))
            rows.append([f"{n:,}", f"{steps:,}", f"{n * steps:,}", f"{size / 1e9:.2f} GB",
                         *(f"{s:.1f} s / {m / 1024:,.2f} GiB" for s, m in results.values())])
    print(table(["series", "steps", "rows", "CSV", "inspect (time / peak RSS)",
                 f"train, 1 GRU epoch ({SERIES_WINDOWS} windows a series)", "predict from the file"], rows))
    for (name, steps), pairs in times.items():
        if len(pairs) >= 2:
            slope = np.polyfit(*np.log(np.array(pairs, float)).T, 1)[0]
            print(f"\n{name} ({steps} steps): time ~ rows^{slope:.2f} over {len(pairs)} sizes")


def size(text: str) -> tuple[int, int]:
    series, _, steps = text.partition("x")
    return int(series), int(steps or STEPS)


if __name__ == "__main__":
    main([size(a) for a in sys.argv[1:]] or [(10_000, 100), (100_000, 100), (1_000_000, 100), (100_000, 500)])
