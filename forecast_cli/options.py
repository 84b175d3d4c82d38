"""The command line's options, declared once, and the checks on them that typer can't make.

Each option is an Annotated type that every command taking it reuses; the data options (--id-col ... --layout)
are one group, added by @data_options as sqlite-utils' @output_options adds its output flags. Nothing heavy is
imported here: `forecast --help` reads this module.
"""

from __future__ import annotations

import copy
import functools
import inspect
import os
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from forecast_cli import limits
from forecast_cli.errors import ConfigError, OutputError


def default_is(text: str) -> str:
    """A default that depends on the data or the environment, written after an option's help as typer writes a
    fixed one: `[default: ...]`, its bracket escaped (rich would take `[default: one season]` for markup and
    drop it, leaving "Steps to forecast .")."""
    return f"\\[default: {text}]"


# The --help panels, in the order they are listed.
DATA_PANEL, MODEL_PANEL, TRAINING_PANEL, BACKTEST_PANEL, OUTPUT_PANEL, SCALE_PANEL = (
    "Data", "Model", "Training", "Backtest", "Output", "Scale-out")

# What the commands read.
DataArg = Annotated[str, typer.Argument(help="CSV file, or - for standard input.", show_default=False,
                                        metavar="DATA")]
PredictData = Annotated[str | None, typer.Argument(help="CSV to forecast from (- for stdin). "
                                                   + default_is("the end of the training data"),
                                                   show_default=False, metavar="DATA")]
PlotData = Annotated[str | None, typer.Argument(help="CSV to forecast from. " + default_is("the end of the "
                                                "training data"), show_default=False, metavar="DATA")]
ModelDir = Annotated[
    str | None,
    typer.Option("--model-dir", help="Model directory. " + default_is("$FORECAST_MODEL_DIR or ./forecast-model"),
                 rich_help_panel=OUTPUT_PANEL),
]

# The data options: how a CSV becomes series (config.DataConfig). @data_options adds them to a command.
IdCol = Annotated[str | None, typer.Option("--id-col", help="Series id column (long layout).")]
TimeCol = Annotated[str | None, typer.Option("--time-col", help="Timestamp column.")]
Target = Annotated[str | None, typer.Option("--target", help="Value column to forecast.")]
Covariates = Annotated[
    str | None, typer.Option("--covariates", help="Comma-separated extra numeric columns, e.g. rain,tide.")
]
FutureCovariates = Annotated[
    str | None, typer.Option("--future-covariates", help="Comma-separated numeric columns known over the horizon "
                             "when forecasting, e.g. tide,rain_forecast,price (predict then needs their values).")
]
Holidays = Annotated[str | None, typer.Option("--holidays", help="Add a public-holiday indicator of this country "
                                             "(US, GB, DE-HE, ...) as a future-known input (daily or finer data).",
                                             metavar="CC")]
Static = Annotated[str | None, typer.Option("--static", help="Comma-separated columns with one value per series "
                                           "(region, store_type): numbers standardised, text one-hot encoded.")]
Freq = Annotated[
    str | None, typer.Option("--freq", help="Frequency: h, D, W-SUN, MS, QS, YS, 15min or int:1 (inferred).")
]
Fill = Annotated[str, typer.Option("--fill", help="Missing values: interpolate, ffill, zero or error.")]
Layout = Annotated[str | None, typer.Option("--layout", help="long, wide or single (detected).")]
Sep = Annotated[str | None, typer.Option("--sep", help="Field delimiter: , ; tab (or \\t) or | (detected).")]
Decimal = Annotated[str, typer.Option("--decimal", help="Decimal mark of the numbers: '.' or ','.")]
Thousands = Annotated[str | None, typer.Option("--thousands", help="Thousands separator of the numbers: ',', "
                                               "'.', \"'\", '_' or a space. " + default_is("none"))]
DateFormat = Annotated[str | None, typer.Option("--date-format", help="Time column format, e.g. %d/%m/%Y, or "
                                                "dayfirst. " + default_is("ISO 8601, or as detected"))]

# What the commands print, and where.
AllowRevisions = Annotated[bool, typer.Option("--allow-revisions", help="Accept DATA whose rows up to the model's "
                                              "last step differ from the trained ones (the new rows are those after "
                                              "that step).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.", rich_help_panel=OUTPUT_PANEL)]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks for errors.",
                                       rich_help_panel=OUTPUT_PANEL)]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.", rich_help_panel=OUTPUT_PANEL)]
Csv = Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.", rich_help_panel=OUTPUT_PANEL)]
PerSeries = Annotated[bool, typer.Option("--per-series", help="One row per model and series.",
                                         rich_help_panel=OUTPUT_PANEL)]
Levels = Annotated[str | None, typer.Option("--levels", help="Prediction interval levels in percent, e.g. 80,95.",
                                            rich_help_panel=OUTPUT_PANEL)]
Quantiles = Annotated[str | None, typer.Option(
    "--quantiles", rich_help_panel=OUTPUT_PANEL,
    help="Forecast quantiles, e.g. 0.1,0.5,0.9: columns y_hat_q10, y_hat_q50, y_hat_q90 (q10 and q90 are the "
         "bounds of the 80% interval, q50 the forecast).")]
Series = Annotated[list[str] | None, typer.Option("--series", "-s", help="Series to draw (repeatable). "
                                                  + default_is("the first 12"), rich_help_panel=OUTPUT_PANEL)]
PredictFuture = Annotated[str | None, typer.Option(
    "--future", help="CSV of the future covariates over the horizon: the model's id and time columns and each "
    "future covariate, a row per series and step. " + default_is("DATA's rows after each series' last target "
    "value"), metavar="FILE")]
PredictOutput = Annotated[str | None, typer.Option("--output", "-o", help="Write the CSV here (atomically) "
                                                   "instead of stdout.", rich_help_panel=OUTPUT_PANEL)]
PlotHistory = Annotated[int | None, typer.Option(
    "--history", min=1, max=limits.MAX_HISTORY, rich_help_panel=OUTPUT_PANEL,
    help="Steps of history to draw before the forecast. " + default_is("three horizons; without DATA, what the "
                                                                       "model keeps (the lookback, auto: 256)"))]
PlotOutput = Annotated[str, typer.Option("--output", "-o", help="PNG file to write.", rich_help_panel=OUTPUT_PANEL)]
BacktestPlot = Annotated[str | None, typer.Option("--plot", help="Draw the backtest forecasts to this PNG.",
                                                  rich_help_panel=OUTPUT_PANEL)]

# The model and its training.
TrainModel = Annotated[str, typer.Option("--model", "-m", help="auto (the GRU blended with Theta and ETS, weighted "
                                         "by validation), gru, lstm, elman, esn, naive or snaive.",
                                         rich_help_panel=MODEL_PANEL)]
BacktestModels = Annotated[list[str] | None, typer.Option("--model", "-m", help="Model(s) to backtest; repeat "
                                                          "the option for several. " + default_is("auto"),
                                                          rich_help_panel=MODEL_PANEL)]
Loss = Annotated[str, typer.Option("--loss", help="mase (absolute error in units of each series' seasonal-naive "
                                   "error), mae or mse.", rich_help_panel=TRAINING_PANEL)]
TrainRefit = Annotated[bool, typer.Option("--refit/--no-refit", help="After early stopping, train the best "
                                          "network on over every window, validation ones too.",
                                          rich_help_panel=TRAINING_PANEL)]
CompareCovariates = Annotated[bool, typer.Option(
    "--compare-covariates", help="Also backtest each model without the covariates, static ones and holidays "
    "(as '<model> without covariates'): what they are worth.", rich_help_panel=BACKTEST_PANEL)]
BacktestRefit = Annotated[bool, typer.Option("--refit/--no-refit", help="Retrain at every cutoff, or train once "
                                             "at the first and only feed newer data.", rich_help_panel=BACKTEST_PANEL)]
Scaling = Annotated[str, typer.Option("--scaling", help="Per-series scaling: standard (mean/std) or robust "
                                      "(median/IQR).", rich_help_panel=MODEL_PANEL)]
Log = Annotated[bool | None, typer.Option("--log/--no-log", help="Model the log of the target. "
                                          + default_is("when every value is above 0"), show_default=False,
                                          rich_help_panel=MODEL_PANEL)]

# Where training runs.
Device = Annotated[str | None, typer.Option("--device", help="cpu, gpu or tpu. " + default_is("what JAX finds"),
                                            rich_help_panel=SCALE_PANEL)]
Coordinator = Annotated[str | None, typer.Option("--coordinator", help="HOST:PORT of process 0, to train across "
                                                 "several processes (jax.distributed).", rich_help_panel=SCALE_PANEL)]
LocalData = Annotated[bool, typer.Option("--local-data", help="With --num-processes: DATA holds only this "
                                         "process's series (else each keeps its hash share of DATA).",
                                         rich_help_panel=SCALE_PANEL)]


# Every numeric option, with its range from limits.py: typer refuses a value outside it (or not a number) with
# one line and exit 2 before the command runs, and --help shows the range. An option's default of None means
# "not given"; 0 is refused where it would mean nothing.
def _ranged(kind: type, flags: tuple[str, ...], help: str, low, high, panel: str = TRAINING_PANEL):
    return Annotated[kind | None, typer.Option(*flags, help=help, min=low, max=high, rich_help_panel=panel)]


Horizon = _ranged(int, ("--horizon",), "Steps to forecast. " + default_is("about one season: 7 for daily data, "
                  "24 hourly, 13 weekly, 12 monthly"), 1, limits.MAX_HORIZON, MODEL_PANEL)
ModelHorizon = _ranged(int, ("--horizon",), "Steps to forecast; past the trained horizon, forecasts are fed back "
                       "as inputs. " + default_is("the trained horizon"), 1, limits.MAX_HORIZON, MODEL_PANEL)
Lookback = _ranged(int, ("--lookback",), "Input steps per window. " + default_is("a few seasons, capped by the "
                   "data"), 1, limits.MAX_LOOKBACK, MODEL_PANEL)
Seed = _ranged(int, ("--seed",), "Random seed: same seed and data, same model.", 0, limits.MAX_SEED)
Epochs = _ranged(int, ("--epochs",), "Most passes over the training windows.", 1, limits.MAX_EPOCHS)
Patience = _ranged(int, ("--patience",), "Early stopping patience in epochs; 0 is off.", 0, limits.MAX_PATIENCE)
BatchSize = _ranged(int, ("--batch-size",), "Windows per training step. " + default_is("a tenth of the windows, "
                    "16 to 256"), 1, limits.MAX_BATCH_SIZE)
Hidden = _ranged(int, ("--hidden",), "Recurrent units per layer.", 1, limits.MAX_HIDDEN, MODEL_PANEL)
Layers = _ranged(int, ("--layers",), "Stacked recurrent layers.", 1, limits.MAX_LAYERS, MODEL_PANEL)
Dropout = _ranged(float, ("--dropout",), "Dropout on the last hidden state.", 0.0, limits.MAX_DROPOUT)
LearningRate = _ranged(float, ("--learning-rate",), "Peak AdamW learning rate.", limits.MIN_LEARNING_RATE,
                       limits.MAX_LEARNING_RATE)
Ensemble = _ranged(int, ("--ensemble",), "With --refit: average this many networks trained from different seeds.",
                   1, limits.MAX_ENSEMBLE)
SeriesWindows = _ranged(int, ("--series-windows",), "Training windows of each series per epoch at most, drawn afresh "
                       "every epoch (more when an epoch would have fewer than 4,096); 0: every window.", 0,
                        limits.MAX_SERIES_WINDOWS)
Units = _ranged(int, ("--units",), "ESN reservoir size.", 1, limits.MAX_UNITS, MODEL_PANEL)
Devices = _ranged(int, ("--devices",), "Split each batch over this many local devices. " + default_is("all"), 1,
                  limits.MAX_DEVICES, SCALE_PANEL)
Folds = _ranged(int, ("--folds",), "Number of forecast origins (cutoffs).", 1, limits.MAX_FOLDS, BACKTEST_PANEL)
Step = _ranged(int, ("--step",), "Steps between cutoffs. " + default_is("the horizon"), 1, limits.MAX_STEP,
               BACKTEST_PANEL)

TrainProcesses = _ranged(int, ("--num-processes",), "Processes in the run.", 1, limits.MAX_PROCESSES, SCALE_PANEL)
TrainProcessId = _ranged(int, ("--process-id",), "This process's rank, 0 writes the model.", 0,
                         limits.MAX_PROCESSES - 1, SCALE_PANEL)
PredictProcesses = _ranged(int, ("--num-processes",), "Split the series into this many parts (by a stable hash of "
                           "their id)...", 1, limits.MAX_PROCESSES, SCALE_PANEL)
PredictProcessId = _ranged(int, ("--process-id",), "...and forecast only part number this (0-based).", 0,
                           limits.MAX_PROCESSES - 1, SCALE_PANEL)


DATA_OPTIONS = {  # parameter: (option, default), in the order --help lists them
    "id_col": (IdCol, None),
    "time_col": (TimeCol, None),
    "target": (Target, None),
    "covariates": (Covariates, None),
    "future_covariates": (FutureCovariates, None),
    "holidays": (Holidays, None),
    "static": (Static, None),
    "freq": (Freq, None),
    "fill": (Fill, "interpolate"),
    "layout": (Layout, None),
    "sep": (Sep, None),
    "decimal": (Decimal, "."),
    "thousands": (Thousands, None),
    "date_format": (DateFormat, None),
}


def _in_panel(option, panel: str):
    """The Annotated `option` listed in --help's `panel` (unless its declaration chose one)."""
    kind, *infos = typing.get_args(option)
    placed = []
    for info in infos:
        if isinstance(info, typer.models.OptionInfo) and info.rich_help_panel is None:
            info = copy.copy(info)
            info.rich_help_panel = panel
        placed.append(info)
    return Annotated[kind, *placed]


def data_options(command):
    """Give `command` the data options: they take the place of its `config` parameter in the signature typer
    reads (so also in --help, in the Data panel), and the command receives the config.DataConfig they make as
    `config`."""
    signature = inspect.signature(command, eval_str=True)  # typer reads the annotations as they are here
    params = list(signature.parameters.values())
    at = [p.name for p in params].index("config")
    params[at:at + 1] = [inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default,
                                           annotation=_in_panel(option, DATA_PANEL))
                         for name, (option, default) in DATA_OPTIONS.items()]

    @functools.wraps(command)
    def with_data_options(**options):
        config = data_config(**{name: options.pop(name) for name in DATA_OPTIONS})
        return command(config=config, **options)

    with_data_options.__signature__ = signature.replace(parameters=params)
    with_data_options.__annotations__ = {p.name: p.annotation for p in params}
    return with_data_options


def data_config(id_col=None, time_col=None, target=None, covariates=None, freq=None, fill="interpolate",
                layout=None, sep=None, decimal=".", thousands=None, date_format=None, future_covariates=None,
                holidays=None, static=None):
    """The data options as a config.DataConfig; --covariates "rain, tide" -> ("rain", "tide")."""
    from forecast_cli.config import DataConfig

    covs = tuple(c.strip() for c in covariates.split(",") if c.strip()) if covariates else ()
    future = tuple(c.strip() for c in future_covariates.split(",") if c.strip()) if future_covariates else ()
    return DataConfig(id_col=id_col, time_col=time_col, target=target, covariates=covs, future_covariates=future,
                      freq=freq,
                      fill=fill, layout=layout, sep=sep, decimal=decimal, thousands=thousands,
                      date_format=date_format, holidays=holidays.strip().upper() if holidays else None,
                      static=tuple(c.strip() for c in static.split(",") if c.strip()) if static else ())


def check_choice(flag: str, value: str, choices: Sequence[str]) -> None:
    """ConfigError unless `value` is one of `choices`: "Unknown --loss 'x'; choose mase, mae or mse" (a list
    longer than three: "choose one of a, b, c, d")."""
    if value not in choices:
        listed = (f"one of {', '.join(choices)}" if len(choices) > 3
                  else f"{', '.join(choices[:-1])} or {choices[-1]}")
        raise ConfigError(f"Unknown {flag} '{value}'; choose {listed}")


def parse_levels(text: str | None) -> list[int]:
    """--levels "80,95" -> [80, 95]; ConfigError unless each is a whole percentage from 1 to 99."""
    if not text:
        return []
    try:
        levels = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError as e:
        raise ConfigError(f"--levels '{text}': expected whole percentages such as 80,95") from e
    if any(not 0 < level < 100 for level in levels):
        raise ConfigError(f"--levels '{text}': each level must be between 1 and 99")
    return levels


def parse_quantiles(text: str | None) -> list[float]:
    """--quantiles "0.1,0.5,0.9" -> [0.1, 0.5, 0.9]; ConfigError unless each is a number strictly between 0 and 1
    with at most 6 decimals."""
    if not text:
        return []
    try:
        quantiles = sorted({float(part) for part in text.split(",") if part.strip()})
    except ValueError as e:
        raise ConfigError(f"--quantiles '{text}': expected numbers between 0 and 1 such as 0.1,0.5,0.9") from e
    if any(not 0 < q < 1 or round(q, 6) != q for q in quantiles):
        raise ConfigError(f"--quantiles '{text}': each must be between 0 and 1 (exclusive), at most 6 decimals")
    return quantiles


def prediction_shard(num_processes: int | None, process_id: int | None) -> tuple[int, int] | None:
    """predict's --num-processes N --process-id I as (N, I), or None for every series; ConfigError unless both
    are given, with 0 <= I < N."""
    if num_processes is None and process_id is None:
        return None
    if num_processes is None or process_id is None or not 0 <= process_id < num_processes:
        raise ConfigError("--num-processes N and --process-id I go together, with 0 <= I < N")
    return num_processes, process_id


def check_series(series: list[str] | None, ids: list[str]) -> None:
    """plot's --series: ConfigError naming the first that is not among the model's series `ids`."""
    unknown = [s for s in series or [] if s not in ids]
    if unknown:
        raise ConfigError(f"--series {unknown[0]}: no such series; the model knows {', '.join(ids[:5])}"
                          + (" …" if len(ids) > 5 else ""))


def model_dir_path(model_dir: str | None) -> str:
    """--model-dir, else $FORECAST_MODEL_DIR, else ./forecast-model."""
    return model_dir or os.environ.get("FORECAST_MODEL_DIR") or "forecast-model"


def check_model_dir(directory: str) -> None:
    """A --model-dir that is a file (or under one) is refused before training."""
    path = Path(directory).absolute()
    for place in (path, *path.parents):
        if os.path.lexists(place) and not place.is_dir():
            what = "is" if place == path else f"is under {place}, which is"
            raise OutputError(f"--model-dir {directory} {what} a file, not a directory; choose another --model-dir")
