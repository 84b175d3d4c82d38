"""forecast: a command-line time-series forecaster built on JAX.

The library behind the CLI, in four calls:

    import forecast_cli as fc

    panel = fc.read_series("sample_data/sales.csv")              # CSV -> Panel (arrays)
    model = fc.fit_model(panel, fc.TrainSpec(kind="auto", horizon=4))   # Panel -> Artifact
    fc.save_artifact("model", model); model = fc.load_artifact("model")
    forecast = fc.predict(model, horizon=4, levels=[80])         # Artifact -> Forecast (.frame, .to_csv())
    # with --future-covariates: fc.predict(model, future=fc.read_future(path, m.data, m.columns, m.freq))
    model = fc.update_model(model, longer_panel).artifact        # new rows folded in (None: nothing new)
    scores, forecasts = fc.backtest(panel, [fc.TrainSpec()], horizon=4, folds=3)

Importing this package is cheap: each name is imported on first use, and JAX, Flax and pandas load only when a
call needs them.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_PUBLIC = {  # name -> the module that defines it
    "Panel": "forecast_cli.data",
    "read_series": "forecast_cli.data",
    "read_future": "forecast_cli.data",
    "Future": "forecast_cli.future",
    "DataConfig": "forecast_cli.config",
    "TrainSpec": "forecast_cli.config",
    "TrainConfig": "forecast_cli.config",
    "RecurrentConfig": "forecast_cli.config",
    "ESNConfig": "forecast_cli.config",
    "fit_model": "forecast_cli.fit",
    "update_model": "forecast_cli.update",
    "predict": "forecast_cli.forecast",
    "Forecast": "forecast_cli.forecast",
    "backtest": "forecast_cli.evaluate",
    "summarize_scores": "forecast_cli.evaluate",
    "Artifact": "forecast_cli.artifact",
    "Manifest": "forecast_cli.artifact",
    "load_artifact": "forecast_cli.persistence",
    "save_artifact": "forecast_cli.persistence",
    "MODELS": "forecast_cli.models",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(_PUBLIC[name]), name)
        globals()[name] = value  # later lookups skip this function
        return value
    raise AttributeError(f"module 'forecast_cli' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
