"""A simulated daily cron: reveal one step at a time, bring the model up to date, forecast; `forecast update`
against a full retrain at every step and against no update at all (`predict DATA` with the first model).

The panel is M1 monthly (../shared/bench-data, train and test parts joined; every `--every`th series). At
step k of `--steps`, the data ends `--steps - 1 - k + horizon` rows before each series' end; the forecast of
the next `horizon` steps is scored (MASE against the in-sample seasonal-naive error of the data so far, 80% and
95% coverage) against those rows. Step 0 trains the first model; steps 1.. are compared. Times are of the
library calls (fit_model / update_model, then predict), in one process, medians over the steps.

    python benchmarks/update.py [--kinds esn,auto] [--steps 28] [--every 4] [--cli-only]
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
from coverage import LEVELS, M1, interval_scores, panel_of, pooled  # noqa: E402


def m1_monthly(every: int):
    train = pd.read_csv(os.path.join(M1, "m1_monthly_train.csv"))
    test = pd.read_csv(os.path.join(M1, "m1_monthly_test.csv"))
    frame = pd.concat([train, test]).sort_values(["unique_id", "ds"], kind="stable")
    keep = sorted(frame["unique_id"].unique())[::every]
    return panel_of(frame[frame["unique_id"].isin(keep)])


def mase_of(frame: pd.DataFrame, actual: pd.DataFrame, history: dict, season: int) -> list[float]:
    from forecast_cli.metrics import mase

    merged = frame.merge(actual, on=["unique_id", "ds"])
    return [mase(g["y"].to_numpy(), g["y_hat"].to_numpy(), history[sid], season)
            for sid, g in merged.groupby("unique_id", sort=False)]


def simulate(panel, kind: str, steps: int, horizon: int, lookback: int | None = None) -> dict:
    from forecast_cli import TrainSpec, fit_model, predict, timeindex
    from forecast_cli.runtime import use_compilation_cache
    from forecast_cli.update import update_model

    use_compilation_cache()  # as every CLI command does: compilations of one day are reused the next

    season = timeindex.season_length(panel.freq)
    spec = TrainSpec(kind=kind, horizon=horizon, lookback=lookback)
    results = {name: {"mase": [], "scores": [], "seconds": []} for name in ("retrain", "update", "no update")}
    first = updated = None
    for k in range(steps):
        data = panel.truncate(horizon + steps - 1 - k)
        actual = panel.truncate(steps - 1 - k).tail(horizon).to_frame()[["unique_id", "ds", "y"]]
        history = {sid: data.values[a:b, 0] for sid, a, b in zip(data.ids, data.starts[:-1], data.starts[1:],
                                                                  strict=True)}
        start = time.perf_counter()
        retrained = fit_model(data, spec)
        forecasts = {"retrain": (retrained, None)}
        seconds = {"retrain": time.perf_counter() - start}
        if k == 0:
            first = updated = retrained
            print(f"  {kind}: first model trained in {seconds['retrain']:.1f}s", file=sys.stderr)
            continue
        start = time.perf_counter()
        result = update_model(updated, data)
        seconds["update"] = time.perf_counter() - start
        updated = result.artifact or updated
        forecasts.update({"update": (updated, None), "no update": (first, data)})
        seconds["no update"] = 0.0
        for name, (artifact, fresh) in forecasts.items():
            start = time.perf_counter()
            frame = predict(artifact, fresh, levels=list(LEVELS)).frame
            r = results[name]
            r["seconds"].append(seconds[name] + time.perf_counter() - start)
            r["mase"].extend(mase_of(frame, actual, history, season))
            r["scores"].append(interval_scores(frame, actual, history, season))
        print(f"  {kind} step {k}/{steps - 1}: retrain {seconds['retrain']:.1f}s, update {seconds['update']:.2f}s "
              f"({updated.manifest.updates[-1]['kept']})", file=sys.stderr)
    return results


def cli_seconds(panel, kind: str, horizon: int, repeats: int = 3) -> tuple[float, float]:
    """Wall time of the commands a cron job runs, in fresh processes (imports, reading, saving included): `forecast
    train` on the data with one more step, against `forecast update` of the model trained without it. Medians."""
    import shutil
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for name, drop in (("before.csv", 1), ("after.csv", 0)):
            panel.truncate(drop).to_frame()[["unique_id", "ds", "y"]].to_csv(os.path.join(tmp, name), index=False)
        forecast = [sys.executable, "-m", "forecast_cli"]
        base = os.path.join(tmp, "base")
        subprocess.run([*forecast, "train", os.path.join(tmp, "before.csv"), "--model", kind, "--horizon",
                        str(horizon), "--model-dir", base, "-q"], check=True)
        train, update = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run([*forecast, "train", os.path.join(tmp, "after.csv"), "--model", kind, "--horizon",
                            str(horizon), "--model-dir", os.path.join(tmp, "retrained"), "-q"], check=True)
            train.append(time.perf_counter() - start)
            shutil.rmtree(os.path.join(tmp, "updated"), ignore_errors=True)
            shutil.copytree(base, os.path.join(tmp, "updated"))
            start = time.perf_counter()
            subprocess.run([*forecast, "update", os.path.join(tmp, "after.csv"), "--model-dir",
                            os.path.join(tmp, "updated"), "-q"], check=True)
            update.append(time.perf_counter() - start)
    return float(np.median(train)), float(np.median(update))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kinds", default="esn,auto")
    parser.add_argument("--steps", type=int, default=28)
    parser.add_argument("--every", type=int, default=4)
    parser.add_argument("--lookback", type=int, default=None, help="every fit's lookback (default: the data's)")
    parser.add_argument("--cli-only", action="store_true", help="only the CLI timing of one step")
    args = parser.parse_args()
    header("forecast update against a full retrain at every step, and against no update (M1 monthly)",
           "jax", "flax", "optax")
    panel = m1_monthly(args.every)
    horizon = 18
    print(f"{len(panel.ids)} series (every {args.every}th of M1 monthly), {args.steps} steps revealed one at a time, "
          f"h={horizon}, lookback {args.lookback or 'chosen by each fit'}; scored on steps 1..{args.steps - 1}\n")
    rows = []
    for kind in [] if args.cli_only else args.kinds.split(","):
        results = simulate(panel, kind, args.steps, horizon, args.lookback)
        base = np.median(results["retrain"]["seconds"])
        for name, r in results.items():
            scores = pooled(r["scores"])
            seconds = np.median(r["seconds"])
            rows.append([kind, name, f"{np.mean(r['mase']):.4f}", f"{100 * scores['in80'].mean():.1f}%",
                         f"{100 * scores['in95'].mean():.1f}%", f"{np.nanmean(scores['msis95']):.2f}",
                         f"{seconds:.2f}", f"{base / seconds:.1f}x" if seconds else ""])
        print(table(["model", "keeping up", "mean MASE", "80% inside", "95% inside", "MSIS95",
                     "median s/step (fit + predict)", "speed-up vs retrain"], rows[-3:]), flush=True)
    print("\n" + table(["model", "keeping up", "mean MASE", "80% inside", "95% inside", "MSIS95",
                        "median s/step (fit + predict)", "speed-up vs retrain"], rows))
    cli = []
    for kind in args.kinds.split(","):
        train, update = cli_seconds(panel, kind, horizon)
        cli.append([kind, f"{train:.2f}", f"{update:.2f}", f"{train / update:.1f}x"])
    print("\nThe same through the CLI, one step, fresh processes (medians of 3):\n")
    print(table(["model", "`forecast train` s", "`forecast update` s", "ratio"], cli))


if __name__ == "__main__":
    main()
