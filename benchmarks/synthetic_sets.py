"""Synthetic forecasting sets whose truth is known, in M1's file format (unique_id, ds, y; *_train.csv and
*_test.csv), for the accuracy work of issue 18 beside M1 (the held-out competition sets stay held out):

- monthly300: 300 long monthly series of 300 observations, multiplicative seasonality whose amplitude differs per
  series, a local trend that drifts and damps, multiplicative noise; horizon 24.
- yearly2000: 2,000 short yearly series of 14-41 observations, linear or damped trends with level noise;
  horizon 6.
- trend: 174 smooth trending series without season (yearly stamps, so m = 1), 63-96 observations, a damped
  local trend; horizon 8.

    python benchmarks/synthetic_sets.py OUT_DIR     writes OUT_DIR/{name}_{train,test}.csv
Every set is drawn from a fixed seed, so the files are the same on every run.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd

SETS = {"monthly300": (24, 12, "MS"), "yearly2000": (6, 1, "YS"), "trend": (8, 1, "YS")}  # horizon, season, freq


def damped_trend(rng, n: int, length: int, phi_low: float, noise: float, slope_sd: float) -> np.ndarray:
    """(n, length) positive local-trend paths: level += phi * slope + noise, slope damped towards a drift."""
    level = np.full(n, 100.0)
    slope = rng.normal(0.8, slope_sd, n)
    drift = rng.normal(0.5, slope_sd / 2, n)
    phi = rng.uniform(phi_low, 1.0, n)
    out = np.empty((n, length))
    for t in range(length):
        slope = drift + phi * (slope - drift) + rng.normal(0, noise / 4, n)
        level = np.maximum(level + slope + rng.normal(0, noise, n), 5.0)
        out[:, t] = level
    return out


def monthly300(rng) -> np.ndarray:
    n, length = 300, 300 + 24
    trend = damped_trend(rng, n, length, 0.9, 0.6, 0.5)
    amplitude = rng.uniform(0.1, 0.6, n)[:, None]
    phase = rng.uniform(0, 2 * np.pi, n)[:, None]
    t = np.arange(length)[None, :]
    shape = np.sin(2 * np.pi * t / 12 + phase) + 0.4 * np.sin(4 * np.pi * t / 12 + 2 * phase)
    return trend * (1 + amplitude * shape / 1.4) * np.exp(rng.normal(0, 0.04, (n, length)))


def yearly2000(rng) -> list[np.ndarray]:
    n = 2000
    lengths = rng.integers(14, 42, n) + 6
    paths = damped_trend(rng, n, int(lengths.max()), 0.7, 2.0, 1.5)
    return [paths[i, : lengths[i]] for i in range(n)]


def trend(rng) -> list[np.ndarray]:
    n = 174
    lengths = rng.integers(63, 97, n) + 8
    paths = damped_trend(rng, n, int(lengths.max()), 0.85, 0.3, 0.6)
    return [paths[i, : lengths[i]] for i in range(n)]


def frames(name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng({"monthly300": 300, "yearly2000": 2000, "trend": 174}[name])
    horizon, _, freq = SETS[name]
    rows = {"monthly300": monthly300, "yearly2000": yearly2000, "trend": trend}[name](rng)
    train, test = [], []
    for i, y in enumerate(rows):
        ds = pd.date_range("1950-01-01" if freq == "YS" else "1990-01-01", periods=len(y), freq=freq)
        frame = pd.DataFrame({"unique_id": f"S{i}", "ds": ds, "y": np.round(y, 3)})
        train.append(frame.iloc[:-horizon])
        test.append(frame.iloc[-horizon:])
    return pd.concat(train, ignore_index=True), pd.concat(test, ignore_index=True)


def write(out: str) -> None:
    os.makedirs(out, exist_ok=True)
    for name in SETS:
        train, test = frames(name)
        train.to_csv(os.path.join(out, f"{name}_train.csv"), index=False)
        test.to_csv(os.path.join(out, f"{name}_test.csv"), index=False)


if __name__ == "__main__":
    write(sys.argv[1])
