"""Runs statsforecast's AutoETS, AutoTheta and AutoARIMA on one M1 training file and writes their forecasts.

Lives in its own virtual environment (.venv-peers, `make bench-accuracy` builds it) because statsforecast
2.1 requires pandas < 3 while forecast is tested with pandas 3.1. Usage:
    python statsforecast_peer.py TRAIN.csv FREQ HORIZON SEASON OUT_PREFIX [LEVELS [MODELS]]
writes OUT_PREFIX.AutoETS.csv, OUT_PREFIX.AutoTheta.csv and OUT_PREFIX.AutoARIMA.csv (unique_id, ds, y_hat,
and with LEVELS "80,95" their own intervals y_hat_lo_80, y_hat_hi_80, ...) and prints the seconds each took as
JSON. MODELS: a comma-separated subset of AutoETS,AutoTheta,AutoARIMA (default: all three).
"""

import json
import sys
import time

import pandas as pd
from statsforecast import StatsForecast
from statsforecast.models import AutoARIMA, AutoETS, AutoTheta

train_path, freq, horizon, season, prefix = sys.argv[1:6]
levels = [int(v) for v in sys.argv[6].split(",")] if len(sys.argv) > 6 and sys.argv[6] else []
wanted = sys.argv[7].split(",") if len(sys.argv) > 7 else ["AutoETS", "AutoTheta", "AutoARIMA"]
train = pd.read_csv(train_path, parse_dates=["ds"])
seconds = {}
models = (("AutoETS", AutoETS(season_length=int(season))), ("AutoTheta", AutoTheta(season_length=int(season))),
          ("AutoARIMA", AutoARIMA(season_length=int(season))))
for name, model in models:
    if name not in wanted:
        continue
    start = time.perf_counter()
    forecast = StatsForecast(models=[model], freq=freq, n_jobs=1).forecast(df=train, h=int(horizon),
                                                                         **({"level": levels} if levels else {}))
    seconds[name] = time.perf_counter() - start
    forecast = forecast.reset_index() if "unique_id" not in forecast.columns else forecast
    names = {name: "y_hat"} | {f"{name}-{side}-{lv}": f"y_hat_{side}_{lv}" for lv in levels for side in ("lo", "hi")}
    forecast.rename(columns=names)[["unique_id", "ds", *names.values()]].to_csv(f"{prefix}.{name}.csv", index=False)
print(json.dumps(seconds))
