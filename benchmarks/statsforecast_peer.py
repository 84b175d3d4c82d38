"""Runs statsforecast's AutoETS and AutoTheta on one M1 training file and writes their forecasts.

Lives in its own virtual environment (.venv-peers, `make bench-accuracy` builds it) because statsforecast
2.1 requires pandas < 3 while forecast is tested with pandas 3.1. Usage:
    python statsforecast_peer.py TRAIN.csv FREQ HORIZON SEASON OUT_PREFIX
writes OUT_PREFIX.AutoETS.csv and OUT_PREFIX.AutoTheta.csv (unique_id, ds, y_hat) and prints the seconds each
took as JSON.
"""

import json
import sys
import time

import pandas as pd
from statsforecast import StatsForecast
from statsforecast.models import AutoETS, AutoTheta

train_path, freq, horizon, season, prefix = sys.argv[1:6]
train = pd.read_csv(train_path, parse_dates=["ds"])
seconds = {}
models = (("AutoETS", AutoETS(season_length=int(season))), ("AutoTheta", AutoTheta(season_length=int(season))))
for name, model in models:
    start = time.perf_counter()
    forecast = StatsForecast(models=[model], freq=freq, n_jobs=1).forecast(df=train, h=int(horizon))
    seconds[name] = time.perf_counter() - start
    forecast = forecast.reset_index() if "unique_id" not in forecast.columns else forecast
    forecast.rename(columns={name: "y_hat"})[["unique_id", "ds", "y_hat"]].to_csv(f"{prefix}.{name}.csv", index=False)
print(json.dumps(seconds))
