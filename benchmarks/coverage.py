"""How honest the prediction intervals are: empirical coverage of the 80% and 95% intervals, their mean width
and their MSIS (the M4 competition's mean scaled interval score: lower is better), for the default model and
others, on

- the sample data: trained on the data up to each of several cutoffs, one horizon forecast from each;
- the M1 sets (../shared/bench-data): trained on *_train.csv, scored on *_test.csv, against seasonal naive's
  own conformal intervals and statsforecast's AutoETS (level=[80, 95], in .venv-peers);
- synthetic single series where the truth is known (a trending annual AR(1), 60 steps, h=6; an hourly series
  with a daily cycle and AR(1) noise, 42 days, h=24): several independent series, each trained alone, as a
  CLI user with one series does.

Then the stability of `auto` on single series: the test MASE of seeds 0, 1 and 2.

    python benchmarks/coverage.py [--quick] [--only sample|m1|synthetic|seeds]
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

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
M1 = os.environ.get("M1_DIR", os.path.join(ROOT, "..", "shared", "bench-data"))
LEVELS = (80, 95)
SAMPLE = [
    ("sales.csv", {}),
    ("river.csv", {"target": "discharge", "covariates": ("rain", "temp")}),
    ("weather.csv", {}),  # wide: every column a series
]


def interval_scores(frame: pd.DataFrame, actual: pd.DataFrame, history: dict, season: int) -> dict:
    """Per point inside or not, per level; per series-forecast MSIS and width (in units of the MASE scale)."""
    from forecast_cli.metrics import interval_score, mase_scale

    merged = frame.merge(actual, on=["unique_id", "ds"])
    out = {f"in{lv}": [] for lv in LEVELS} | {f"msis{lv}": [] for lv in LEVELS} | {f"width{lv}": [] for lv in LEVELS}
    for sid, group in merged.groupby("unique_id", sort=False):
        y = group["y"].to_numpy()
        scale = mase_scale(history[sid], season)
        for lv in LEVELS:
            lo, hi = group[f"y_hat_lo_{lv}"].to_numpy(), group[f"y_hat_hi_{lv}"].to_numpy()
            out[f"in{lv}"].append((y >= lo) & (y <= hi))
            if scale and scale > 0:
                out[f"msis{lv}"].append(interval_score(y, lo, hi, lv / 100) / scale)
                out[f"width{lv}"].append(float(np.mean(hi - lo)) / scale)
    return out


def pooled(parts: list[dict]) -> dict:
    keys = parts[0].keys()
    return {k: np.concatenate([np.atleast_1d(np.concatenate(p[k]) if k.startswith("in") else np.array(p[k]))
                               for p in parts]) for k in keys}


def row(case: str, model: str, scores: dict, forecasts: int, seconds: float | None) -> list:
    inside = [f"{100 * scores[f'in{lv}'].mean():.1f}%" for lv in LEVELS]
    widths = [f"{np.nanmean(scores[f'width{lv}']):.2f}" for lv in LEVELS]
    msis = f"{np.nanmean(scores['msis95']):.2f}"
    wider = bool((scores["width95"] > scores["width80"]).all()) if len(scores["width80"]) else False
    seconds = "" if seconds is None else f"{seconds:.1f}"
    return [case, model, forecasts, len(scores["in80"])] + inside + widths + [msis, "yes" if wider else "NO", seconds]


def rolling(panel, kind: str, horizon: int, cutoffs: int, seed: int = 0) -> tuple[dict, float]:
    """Train on the data up to each of `cutoffs` cutoffs one horizon apart, forecast one horizon from each."""
    from forecast_cli import TrainConfig, TrainSpec, fit_model, predict, timeindex

    season = timeindex.season_length(panel.freq)
    parts, seconds = [], 0.0
    for k in range(cutoffs, 0, -1):
        past = panel.truncate(horizon * k)
        actual = panel.truncate(horizon * (k - 1)).tail(horizon).to_frame()[["unique_id", "ds", "y"]]
        start = time.perf_counter()
        artifact = fit_model(past, TrainSpec(kind=kind, horizon=horizon, train=TrainConfig(seed=seed)))
        seconds += time.perf_counter() - start
        frame = predict(artifact, levels=list(LEVELS)).frame
        history = {sid: past.values[a:b, 0] for sid, a, b in zip(past.ids, past.starts[:-1], past.starts[1:],
                                                                  strict=True)}
        parts.append(interval_scores(frame, actual, history, season))
    return pooled(parts), seconds


def sample(kinds: list[str], cutoffs: int) -> list[list]:
    from forecast_cli import DataConfig, read_series, timeindex

    rows = []
    for name, columns in SAMPLE:
        panel = read_series(os.path.join(ROOT, "sample_data", name), DataConfig(**columns))
        horizon = timeindex.default_horizon(panel.freq)
        folds = max(1, min(cutoffs, (int(panel.lengths.min()) - 3 * horizon) // horizon))
        for kind in kinds:
            scores, seconds = rolling(panel, kind, horizon, folds)
            rows.append(row(name, kind, scores, folds * len(panel.ids), seconds))
    return rows


def synthetic_series(kind: str, count: int, seed: int = 7) -> list[pd.DataFrame]:
    """`count` single series of one kind, each with a simulated future of one horizon and more."""
    rng = np.random.default_rng(seed)
    frames = []
    for i in range(count):
        if kind == "annual":  # a trend with AR(1) noise, 60 years
            n, noise = 60 + 18, np.zeros(60 + 18)
            for t in range(1, n):
                noise[t] = 0.6 * noise[t - 1] + rng.normal(0, 4)
            y = 100 + rng.uniform(0.5, 2) * np.arange(n) + noise
            ds = pd.date_range("1940-01-01", periods=n, freq="YS")
        else:  # hourly: a daily cycle and AR(1) noise, 42 days and the cutoffs' days
            n, noise = 24 * 45, np.zeros(24 * 45)
            for t in range(1, n):
                noise[t] = 0.9 * noise[t - 1] + rng.normal(0, 0.6)
            t = np.arange(n)
            y = 12 + rng.uniform(3, 6) * np.sin(2 * np.pi * (t - 8) / 24) + noise
            ds = pd.date_range("2024-05-01", periods=n, freq="h")
        frames.append(pd.DataFrame({"unique_id": f"{kind}_{i}", "ds": ds, "y": y}))
    return frames


def panel_of(frame: pd.DataFrame):
    import tempfile

    from forecast_cli import DataConfig, read_series

    with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as f:
        frame.to_csv(f, index=False)
    try:
        return read_series(f.name, DataConfig())
    finally:
        os.unlink(f.name)


def synthetic(kinds: list[str], count: int, cutoffs: int) -> list[list]:
    rows = []
    for series_kind, horizon in (("annual", 6), ("hourly", 24)):
        panels = [panel_of(f) for f in synthetic_series(series_kind, count)]
        for kind in kinds:
            parts, seconds = [], 0.0
            for panel in panels:
                scores, secs = rolling(panel, kind, horizon, cutoffs)
                parts.append(scores)
                seconds += secs
            merged = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            rows.append(row(f"{series_kind} x{count} (single)", kind, merged, count * cutoffs, seconds))
    return rows


def m1(kinds: list[str]) -> list[list]:
    from forecast_cli import DataConfig, TrainSpec, fit_model, predict, read_series

    rows = []
    for name, horizon, season in (("yearly", 6, 1), ("quarterly", 8, 4), ("monthly", 18, 12)):
        train_path = os.path.join(M1, f"m1_{name}_train.csv")
        panel = read_series(train_path, DataConfig())
        test = pd.read_csv(os.path.join(M1, f"m1_{name}_test.csv"), parse_dates=["ds"])
        history = {sid: panel.values[a:b, 0] for sid, a, b in zip(panel.ids, panel.starts[:-1], panel.starts[1:],
                                                                  strict=True)}
        for kind in kinds + ["snaive"]:
            start = time.perf_counter()
            frame = predict(fit_model(panel, TrainSpec(kind=kind, horizon=horizon)), levels=list(LEVELS)).frame
            seconds = time.perf_counter() - start
            rows.append(row(f"M1 {name}", kind, pooled([interval_scores(frame, test, history, season)]),
                            len(panel.ids), seconds))
        ets = autoets(train_path, panel.freq, horizon, season)
        if ets is not None:
            frame, seconds = ets
            rows.append(row(f"M1 {name}", "AutoETS", pooled([interval_scores(frame, test, history, season)]),
                            len(panel.ids), seconds))
    return rows


def autoets(train_path: str, freq: str, horizon: int, season: int) -> tuple[pd.DataFrame, float] | None:
    """statsforecast's AutoETS with its own 80% and 95% intervals, in its environment (statsforecast_peer.py)."""
    import json
    import subprocess
    import tempfile

    python = os.environ.get("PEER_PYTHON", os.path.join(ROOT, ".venv-peers", "bin", "python"))
    if not os.path.exists(python):
        print(f"(AutoETS skipped: no {python}; `make bench-accuracy` builds it)")
        return None
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "peer")
        script = os.path.join(os.path.dirname(__file__), "statsforecast_peer.py")
        out = subprocess.run([python, script, train_path, freq, str(horizon), str(season), prefix, "80,95", "AutoETS"],
                             check=True, capture_output=True, text=True).stdout
        frame = pd.read_csv(f"{prefix}.AutoETS.csv", parse_dates=["ds"])
        return frame, json.loads(out.strip().splitlines()[-1])["AutoETS"]


def seeds(count: int) -> list[list]:
    """auto's test MASE on single series for seeds 0, 1, 2: the spread is what the seed changes."""
    from forecast_cli import TrainConfig, TrainSpec, fit_model, predict, read_series, timeindex
    from forecast_cli.metrics import mase

    cases = [("river.csv", read_series(os.path.join(ROOT, "sample_data", "river.csv"),
                                       __import__("forecast_cli").DataConfig(target="discharge")))]
    cases += [(f"annual_{i}", panel_of(f)) for i, f in enumerate(synthetic_series("annual", count))]
    rows = []
    for name, panel in cases:
        horizon = timeindex.default_horizon(panel.freq) if name.endswith(".csv") else 6
        season = timeindex.season_length(panel.freq)
        past = panel.truncate(horizon)
        actual = panel.tail(horizon).values[:, 0]
        scores, weights = [], []
        for seed in (0, 1, 2):
            artifact = fit_model(past, TrainSpec(horizon=horizon, train=TrainConfig(seed=seed)))
            y_hat = predict(artifact).frame["y_hat"].to_numpy()
            scores.append(mase(actual, y_hat, past.values[:, 0], season))
            weights.append(artifact.manifest.blend["weight"])
        spread = (max(scores) - min(scores)) / np.mean(scores)
        rows.append([name, " / ".join(f"{s:.3f}" for s in scores), " / ".join(f"{w:g}" for w in weights),
                     f"{100 * spread:.1f}%"])
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="fewer cutoffs and series, the default model only")
    parser.add_argument("--only", choices=("sample", "m1", "synthetic", "seeds"), action="append")
    args = parser.parse_args()
    only = set(args.only or ("sample", "m1", "synthetic", "seeds"))
    kinds = ["auto"] if args.quick else ["auto", "gru", "esn"]
    header("Prediction interval coverage, width and MSIS", "jax")
    columns = ["case", "model", "forecasts", "points", "inside 80%", "inside 95%", "width 80%", "width 95%",
               "MSIS 95%", "95% wider", "train s"]
    rows = []
    if "sample" in only:
        rows += sample(kinds, 3 if args.quick else 5)
        print(table(columns, rows), file=sys.stderr, flush=True)  # progress: the table so far
    if "synthetic" in only:
        rows += synthetic(kinds[:1] + (["esn"] if not args.quick else []), 4 if args.quick else 8, 3)
        print(table(columns, rows), file=sys.stderr, flush=True)
    if "m1" in only:
        rows += m1(kinds[:1] + ([] if args.quick else ["esn"]))
    if rows:
        print(table(columns, rows))
        print("\nWidths and MSIS are in units of each series' in-sample seasonal-naive MAE, averaged over forecasts.")
    if "seeds" in only:
        print("\n### auto on single series: test MASE and network weight for seeds 0 / 1 / 2\n")
        print(table(["series", "MASE", "network weight", "spread"], seeds(2 if args.quick else 4)))


if __name__ == "__main__":
    main()
