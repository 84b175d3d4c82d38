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
- holidays: 10 synthetic daily shops with US-holiday closures and busier eves, `--holidays US` against none.
- static: 60 synthetic stores of two types whose weekly peak differs, `--static kind` against none.

    python benchmarks/future_covariates.py [--kinds gru,esn,auto] [--sets synthetic,control,river,sales,holidays,static]
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


def shop(path: str, n_series: int, seed: int = 0) -> str:
    """Daily sales of `n_series` shops, 2021-2023: a weekly cycle, closed-ish on US public holidays (-50) and
    busier the day before one (+15)."""
    import holidays

    rng = np.random.default_rng(seed)
    days = pd.date_range("2021-01-01", "2023-12-31", freq="D")
    calendar = holidays.country_holidays("US", years=range(2021, 2025))
    flag = np.array([d.date() in calendar for d in days], float)
    eve = np.append(flag[1:], 0.0)
    frames = []
    for s in range(n_series):
        y = 100 + 10 * s + 8 * np.sin(2 * np.pi * np.arange(len(days)) / 7 + s) - 50 * flag + 15 * eve
        frames.append(pd.DataFrame({"unique_id": f"shop{s:02d}", "ds": days,
                                    "y": (y + 3 * rng.standard_normal(len(days))).round(3)}))
    pd.concat(frames).to_csv(path, index=False)
    return path


def stores(path: str, n_series: int, seed: int = 0) -> str:
    """120 days of `n_series` stores of two types whose weekly peak differs (Saturday or Tuesday), with noise
    as large as the weekly swing: the type says what a noisy window shows only roughly."""
    rng = np.random.default_rng(seed)
    days = pd.date_range("2023-01-01", periods=120)
    weekday = days.day_of_week.to_numpy()
    frames = []
    for s in range(n_series):
        kind = ("weekend", "midweek")[s % 2]
        season = 4 * np.cos(2 * np.pi * (weekday - (5 if kind == "weekend" else 1)) / 7)
        frames.append(pd.DataFrame({"unique_id": f"store{s:02d}", "ds": days, "kind": kind,
                                    "y": (50 + s % 7 + season + 3 * rng.standard_normal(len(days))).round(3)}))
    pd.concat(frames).to_csv(path, index=False)
    return path


def covariate_variants(column: str, **options) -> dict:
    from forecast_cli.config import DataConfig

    return {"future": DataConfig(future_covariates=(column,), **options),
            "past-only": DataConfig(covariates=(column,), **options), "none": DataConfig(**options)}


def sets(args, tmp: str) -> dict:
    """name -> (path, {variant: DataConfig}, horizon, folds); the variant "none" is the one compared with."""
    from forecast_cli.config import DataConfig

    out = {
        "synthetic": lambda: (synthetic(os.path.join(tmp, "synthetic.csv"), args.series, args.length, False),
                              covariate_variants("x"), 7, 3),
        "control": lambda: (synthetic(os.path.join(tmp, "control.csv"), args.series, args.length, True),
                            covariate_variants("x"), 7, 3),
        "river": lambda: (os.path.join(ROOT, "sample_data", "river.csv"),
                          covariate_variants("rain", target="discharge"), 7, 5),
        "sales": lambda: (os.path.join(ROOT, "sample_data", "sales.csv"), covariate_variants("price"), 3, 3),
        "holidays": lambda: (shop(os.path.join(tmp, "shop.csv"), 10),
                             {"--holidays US": DataConfig(holidays="US"), "none": DataConfig()}, 7, 3),
        "static": lambda: (stores(os.path.join(tmp, "stores.csv"), 60),
                           {"--static kind": DataConfig(static=("kind",)), "none": DataConfig()}, 7, 3),
    }
    return {k: v() for k, v in out.items() if k in args.sets.split(",")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", default="gru,esn,auto")
    parser.add_argument("--sets", default="synthetic,control,river,sales,holidays,static")
    parser.add_argument("--series", type=int, default=30)
    parser.add_argument("--length", type=int, default=240)
    parser.add_argument("--epochs", type=int, default=100)
    args = parser.parse_args()
    import tempfile

    from forecast_cli.config import TrainConfig, TrainSpec
    from forecast_cli.data import read_series
    from forecast_cli.evaluate import backtest, summarize_scores

    header("Future-known covariates: rolling backtests with an oracle future", "jax", "flax")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (path, variants, horizon, folds) in sets(args, tmp).items():
            for kind in args.kinds.split(","):
                scores = {}
                for variant, config in variants.items():
                    panel = read_series(path, config)
                    spec = TrainSpec(kind=kind, data=config, train=TrainConfig(epochs=args.epochs))
                    start = time.perf_counter()
                    table_, _ = backtest(panel, [spec], horizon, folds, levels=(80,))
                    seconds = time.perf_counter() - start
                    summary = summarize_scores(table_).set_index("model")
                    scores[variant] = (summary.loc[kind, "mase"], summary.loc[kind, "cov_80"], seconds,
                                       summary.loc["snaive", "mase"])
                for variant, (mase, cov, seconds, snaive) in scores.items():
                    rows.append([name, kind, variant, f"{mase:.3f}", f"{100 * (mase / scores['none'][0] - 1):+.1f}%",
                                 f"{snaive:.3f}", f"{100 * cov:.1f}", f"{seconds:.0f}"])
                    print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    print(table(["set", "model", "covariate", "MASE", "vs none", "MASE snaive", "80% coverage", "seconds"], rows))
    print("\nMASE: mean over series and folds of the fold's MAE over the in-sample seasonal-naive MAE; a future "
          "covariate gets its actual values after each cutoff (oracle). The synthetic panels have --series series "
          "of --length days; horizon 7 (sales: 3 years); 3 folds (river: 5).")


if __name__ == "__main__":
    main()
