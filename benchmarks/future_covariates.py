"""What a future-known covariate is worth: rolling backtests (forecast_cli.evaluate.backtest, the library behind
`forecast evaluate`) of each model with `--future-covariates`, with the same column past-only (`--covariates`)
and with no covariate, against seasonal naive. Future values are the actual ones after each cutoff (an oracle
future: `evaluate` says so too).

Data sets:
- synthetic: `--series` daily series where y = level + weekly season + 1.5 x + noise and x is an AR(1) process
  (a stand-in for rain or a promotion: known ahead, not predictable from its own past beyond a few days).
- synthetic control: the same y, but the x column is independent noise: a useless covariate must cost little.
- river: sample_data/river.csv, discharge with rain (a real deployment feeds a rainfall forecast).
- sales: sample_data/sales.csv, cigarette sales with the price per pack (planned prices).

    python benchmarks/future_covariates.py [--kinds gru,esn,auto] [--sets synthetic,control,river,sales]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from common import header, table  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..")


def synthetic(path: str, n_series: int, length: int, control: bool, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    frames = []
    for s in range(n_series):
        e = rng.standard_normal(length)
        x = np.zeros(length)
        for t in range(1, length):
            x[t] = 0.5 * x[t - 1] + e[t]
        t = np.arange(length)
        y = 10 + s % 5 + 2 * np.sin(2 * np.pi * t / 7 + s) + 1.5 * x + 0.3 * rng.standard_normal(length)
        shown = rng.standard_normal(length) if control else x
        frames.append(pd.DataFrame({"unique_id": f"s{s:03d}", "ds": pd.date_range("2020-01-01", periods=length),
                                    "y": y.round(5), "x": shown.round(5)}))
    pd.concat(frames).to_csv(path, index=False)
    return path


def sets(args, tmp: str) -> dict:
    """name -> (path, DataConfig kwargs besides the covariate, covariate column, horizon, folds)."""
    out = {
        "synthetic": (synthetic(os.path.join(tmp, "synthetic.csv"), args.series, args.length, False), {}, "x", 7, 3),
        "control": (synthetic(os.path.join(tmp, "control.csv"), args.series, args.length, True), {}, "x", 7, 3),
        "river": (os.path.join(ROOT, "sample_data", "river.csv"), {"target": "discharge"}, "rain", 7, 5),
        "sales": (os.path.join(ROOT, "sample_data", "sales.csv"), {}, "price", 3, 3),
    }
    return {k: v for k, v in out.items() if k in args.sets}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", default="gru,esn,auto")
    parser.add_argument("--sets", default="synthetic,control,river,sales")
    parser.add_argument("--series", type=int, default=30)
    parser.add_argument("--length", type=int, default=240)
    parser.add_argument("--epochs", type=int, default=100)
    args = parser.parse_args()
    import tempfile

    from forecast_cli.config import DataConfig, TrainConfig, TrainSpec
    from forecast_cli.data import read_series
    from forecast_cli.evaluate import backtest, summarize_scores

    header("Future-known covariates: rolling backtests with an oracle future", "jax", "flax")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (path, options, column, horizon, folds) in sets(args, tmp).items():
            variants = {"future": DataConfig(future_covariates=(column,), **options),
                        "past-only": DataConfig(covariates=(column,), **options),
                        "none": DataConfig(**options)}
            for kind in args.kinds.split(","):
                scores = {}
                for variant, config in variants.items():
                    panel = read_series(path, config)
                    spec = TrainSpec(kind=kind, data=config, train=TrainConfig(epochs=args.epochs))
                    start = time.perf_counter()
                    table_, _ = backtest(panel, [spec], horizon, folds, levels=(80,))
                    seconds = time.perf_counter() - start
                    summary = summarize_scores(table_).set_index("model")
                    scores[variant] = (summary.loc[kind, "mase"], summary.loc[kind, "cov_80"], seconds)
                    snaive = summary.loc["snaive", "mase"]
                f, p, n = (scores[v][0] for v in ("future", "past-only", "none"))
                rows.append([name, kind, f"{f:.3f}", f"{p:.3f}", f"{n:.3f}", f"{snaive:.3f}",
                             f"{100 * (f / n - 1):+.1f}%", f"{100 * scores['future'][1]:.1f}",
                             f"{scores['future'][2]:.0f}"])
                print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    print(table(["set", "model", "MASE future", "MASE past-only", "MASE none", "MASE snaive", "future vs none",
                 "80% coverage (future)", "seconds (future)"], rows))
    print("\nMASE: mean over series and folds of the fold's MAE over the in-sample seasonal-naive MAE. The "
          "synthetic panels have --series series of --length days; horizon 7 (sales: 3 years), 3 folds (river: 5).")


if __name__ == "__main__":
    main()
