"""The `forecast` command line: parses options, calls the library, prints with rich, maps errors to exit codes.

Heavy libraries (JAX, Flax, pandas) are imported inside the commands, so `forecast --help` starts fast.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager, nullcontext
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(
    help="Forecast time series from CSV with JIT-compiled recurrent models (JAX).\n\n"
    "Example: forecast inspect sample_data/sales.csv",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)
err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

DataArg = Annotated[str, typer.Argument(help="CSV file, or - for standard input.", show_default=False)]
IdCol = Annotated[str | None, typer.Option("--id-col", help="Series id column (long layout).")]
TimeCol = Annotated[str | None, typer.Option("--time-col", help="Timestamp column.")]
Target = Annotated[str | None, typer.Option("--target", help="Value column to forecast.")]
Covariates = Annotated[
    str | None, typer.Option("--covariates", help="Comma-separated extra numeric columns, e.g. rain,tide.")
]
Freq = Annotated[
    str | None, typer.Option("--freq", help="Frequency: h, D, W-SUN, MS, QS, YS, 15min or int:1 (inferred).")
]
Fill = Annotated[str, typer.Option("--fill", help="Missing values: interpolate, ffill, zero or error.")]
Layout = Annotated[str | None, typer.Option("--layout", help="long, wide or single (detected).")]
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="Show tracebacks for errors.")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


LOG_FILE: list[str] = []  # set by --log-file: every message also goes there, timestamped


def say(message: str, markup: str | None = None) -> None:
    """A message for the person running the command: stderr (never stdout), and the log file if one is set.

    `markup` is the same text with rich markup for the terminal; the log gets the plain text."""
    err.print(markup if markup is not None else escape(message), highlight=False)
    for path in LOG_FILE:
        from datetime import datetime

        try:
            with open(path, "a") as log:
                for line in message.splitlines():
                    log.write(f"{datetime.now().astimezone().isoformat(timespec='seconds')} {line}\n")
        except OSError:
            pass  # a broken log file must not break the run


def _show_version(value: bool) -> None:
    if value:
        from forecast_cli import __version__

        print(f"forecast {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_show_version, is_eager=True, help="Print the version.")
    ] = False,
    log_file: Annotated[
        str | None, typer.Option("--log-file", help="Also append every message, timestamped, to this file.")
    ] = None,
):
    """Forecast time series from CSV with JIT-compiled recurrent models (JAX).

    Example: forecast inspect sample_data/sales.csv
    """
    LOG_FILE[:] = [log_file] if log_file else []


@contextmanager
def user_errors(verbose: bool = False, interrupted: str = "Interrupted."):
    """Turn a ForecastError into one line on stderr and its exit code; Ctrl-C into exit 130."""
    from forecast_cli.errors import ForecastError

    try:
        yield
    except ForecastError as e:
        if verbose:
            err.print_exception(show_locals=False)
        message = " ".join(str(e).split())  # one line, whatever the message holds
        say(f"Error: {message}", f"[red]Error:[/red] {escape(message)}")
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        say(interrupted)
        raise typer.Exit(130) from None


def data_config(id_col, time_col, target, covariates, freq, fill, layout):
    from forecast_cli.config import DataConfig

    covs = tuple(c.strip() for c in covariates.split(",") if c.strip()) if covariates else ()
    return DataConfig(id_col=id_col, time_col=time_col, target=target, covariates=covs, freq=freq,
                      fill=fill, layout=layout)


def warn(message: str) -> None:
    say(f"Note: {message}", f"[yellow]Note:[/yellow] {escape(message)}")


def report_filled(panel) -> None:
    """Say how many values were filled and how: filling is never silent."""
    gaps, cells = int(panel.missing_timestamps.sum()), int(panel.missing_values.sum())
    if gaps or cells:
        n = int(((panel.missing_timestamps + panel.missing_values) > 0).sum())
        warn(f"{panel.source}: filled {gaps} missing timestamp(s) and {cells} empty value(s) in {n} series "
             f"by --fill {panel.fill}")
    for note in panel.notes:
        warn(f"{panel.source}: {note}")


@app.command()
def inspect(
    data: DataArg,
    id_col: IdCol = None,
    time_col: TimeCol = None,
    target: Target = None,
    covariates: Covariates = None,
    freq: Freq = None,
    fill: Fill = "interpolate",
    layout: Layout = None,
    as_json: Json = False,
    verbose: Verbose = False,
):
    """Summarise the series in a CSV file: one row per series, with totals.

    Example: forecast inspect sample_data/sales.csv --json
    """
    with user_errors(verbose):
        from forecast_cli.data import read_series, summarize

        panel = read_series(data, data_config(id_col, time_col, target, covariates, freq, fill, layout))
        report_filled(panel)
        table = summarize(panel)
        if as_json:
            print(json.dumps(inspect_json(panel, table), indent=2))
        else:
            print_inspect(panel, table)


def inspect_json(panel, table) -> dict:
    from forecast_cli import timeindex

    rows = table.assign(start=table["start"].astype(str), end=table["end"].astype(str))
    return {
        "source": panel.source,
        "layout": panel.layout,
        "freq": panel.freq,
        "frequency": timeindex.describe(panel.freq),
        "columns": panel.columns,
        "covariates": list(panel.covariates),
        "n_series": len(table),
        "n_rows": int(table["length"].sum()),
        "missing_timestamps": int(table["missing_timestamps"].sum()),
        "missing_values": int(table["missing_values"].sum()),
        "series": rows.to_dict(orient="records"),
    }


MAX_ROWS = 20


def print_inspect(panel, table) -> None:
    from rich.table import Table

    from forecast_cli import timeindex

    freq = f"{timeindex.describe(panel.freq)} ({panel.freq})"
    title = f"{panel.source}: {len(table)} series, {panel.layout} layout, {freq}"
    if panel.covariates:
        title += f", covariates: {', '.join(panel.covariates)}"
    view = Table(title=escape(title), title_justify="left")
    for name in ("series", "length", "start", "end", "filled", "min", "mean", "max"):
        view.add_column(name, justify="left" if name in ("series", "start", "end") else "right")
    shown = table if len(table) <= MAX_ROWS else table.head(MAX_ROWS // 2)
    for row in shown.itertuples():
        view.add_row(escape(str(row.unique_id)), str(row.length), _stamp(row.start), _stamp(row.end),
                     str(row.missing_timestamps + row.missing_values), _num(row.min), _num(row.mean),
                     _num(row.max))
    if len(table) > MAX_ROWS:
        view.add_row(f"… {len(table) - len(shown)} more", "", "", "", "", "", "", "")
    lengths = table["length"]
    view.add_section()
    view.add_row(
        f"total: {len(table)}", f"{int(lengths.sum())}", _stamp(table['start'].min()), _stamp(table['end'].max()),
        str(int(table["missing_timestamps"].sum() + table["missing_values"].sum())),
        _num(table["min"].min()), _num(float((table["mean"] * lengths).sum() / lengths.sum())),
        _num(table["max"].max()),
    )
    out.print(view)
    if len(table) > MAX_ROWS:
        out.print(f"lengths: min {lengths.min()}, median {int(lengths.median())}, max {lengths.max()}; "
                  "use --json for every series")


def _stamp(value) -> str:
    text = str(value)
    return text[:10] if text.endswith("00:00:00") else text


def _num(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"


ModelDir = Annotated[
    str | None,
    typer.Option("--model-dir", help="Model directory [default: $FORECAST_MODEL_DIR or ./forecast-model]."),
]
Horizon = Annotated[int | None, typer.Option("--horizon", "-h", help="Steps to forecast [default: one season].")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing but errors.")]
Levels = Annotated[str | None, typer.Option("--levels", help="Prediction interval levels in percent, e.g. 80,95.")]


def model_dir_path(model_dir: str | None) -> str:
    import os

    return model_dir or os.environ.get("FORECAST_MODEL_DIR") or "forecast-model"


def setup_platform(device: str | None) -> None:
    """Point JAX at the requested platform (before anything touches a device)."""
    import os

    from forecast_cli.errors import ConfigError

    platforms = {"cpu": "cpu", "gpu": "cuda", "tpu": "tpu"}
    if device is not None and device not in platforms:
        raise ConfigError(f"Unknown --device '{device}'; choose cpu, gpu or tpu")
    if device:
        os.environ["JAX_PLATFORMS"] = platforms[device]
        import jax

        jax.config.update("jax_platforms", platforms[device])


MAX_CPU_DEVICES = 4


def split_cpu_cores() -> None:
    """For training: one JAX CPU device per usable core (at most MAX_CPU_DEVICES), so that each batch is
    split over them like over GPUs. One device's recurrent step is a chain of small kernels that keeps about
    1.3 cores busy whatever its thread pool; two devices on two cores trained 1.6x the windows per second
    (docs/benchmarks.md). Left alone when the user chose a count (XLA_FLAGS or JAX_NUM_CPU_DEVICES), and when
    JAX has already started in this process (a library caller keeps its devices). Must run before JAX
    starts; GPUs and TPUs are not affected."""
    import os

    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    count = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1,
                MAX_CPU_DEVICES)
    import jax

    if count > 1 and jax.config.jax_num_cpu_devices == -1:
        try:
            jax.config.update("jax_num_cpu_devices", count)
        except RuntimeError:
            pass


def setup_jax(device: str | None) -> str:
    """Choose the device and turn on JAX's persistent compilation cache; returns the device description."""
    import os

    from forecast_cli.errors import ConfigError

    setup_platform(device)
    import jax

    cache = os.environ.get("FORECAST_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "forecast", "jax")
    try:
        os.makedirs(cache, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    except OSError:
        pass  # no writable cache: compile every time
    try:
        found = jax.devices()
    except RuntimeError as e:
        raise ConfigError(f"--device {device}: no such device is available ({str(e).splitlines()[0]})") from e
    return f"{found[0].platform} ({len(found)} device{'s' if len(found) > 1 else ''}: {found[0].device_kind})"


class EpochReporter:
    """Progress of training: a rich bar on a terminal, one plain line per epoch otherwise, nothing if quiet."""

    def __init__(self, epochs: int, quiet: bool):
        self.epochs, self.quiet, self.progress, self.task = epochs, quiet, None, None
        if not quiet and err.is_terminal:
            from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

            self.progress = Progress(
                TextColumn("epoch {task.completed}/{task.total}"), BarColumn(),
                TextColumn("train {task.fields[train]:.4f}  val {task.fields[val]:.4f}  best {task.fields[best]:.4f}"),
                TimeRemainingColumn(), console=err, transient=True,
            )
            self.task = self.progress.add_task("train", total=epochs, train=float("nan"), val=float("nan"),
                                               best=float("nan"))

    def __enter__(self):
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.progress:
            self.progress.stop()

    def __call__(self, epoch: int, metrics: dict) -> None:
        if self.progress:
            self.progress.update(self.task, completed=epoch, train=metrics["train_loss"], val=metrics["val_loss"],
                                 best=metrics["best_val_loss"])
        elif not self.quiet:
            say(f"epoch {epoch}/{self.epochs}: train loss {metrics['train_loss']:.4f}, "
                f"val loss {metrics['val_loss']:.4f} (best {metrics['best_val_loss']:.4f})")


@app.command()
def train(
    data: DataArg,
    model: Annotated[str, typer.Option("--model", "-m", help="auto (the GRU blended with Theta, weighted by "
                                       "validation), gru, lstm, elman, esn, naive or snaive.")] = "auto",
    horizon: Horizon = None,
    lookback: Annotated[int | None, typer.Option("--lookback", help="Input steps per window [default: a few "
                                                  "seasons, capped by the data].")] = None,
    model_dir: ModelDir = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: same seed and data, same model.")] = 0,
    epochs: Annotated[int, typer.Option("--epochs", help="Most passes over the training windows.")] = 100,
    patience: Annotated[int, typer.Option("--patience", help="Early stopping patience in epochs; 0 is off.")] = 10,
    batch_size: Annotated[int | None, typer.Option("--batch-size", help="Windows per training step [default: a "
                                                   "tenth of the windows, 16 to 256].")] = None,
    hidden: Annotated[int, typer.Option("--hidden", help="Recurrent units per layer.")] = 64,
    layers: Annotated[int, typer.Option("--layers", help="Stacked recurrent layers.")] = 1,
    dropout: Annotated[float, typer.Option("--dropout", help="Dropout on the last hidden state.")] = 0.0,
    learning_rate: Annotated[float, typer.Option("--learning-rate", help="Peak AdamW learning rate.")] = 3e-3,
    loss: Annotated[str, typer.Option("--loss", help="mase (absolute error in units of each series' seasonal-"
                                      "naive error), mae or mse.")] = "mase",
    refit: Annotated[bool, typer.Option("--refit/--no-refit", help="After early stopping, train again on every "
                                        "window, validation ones too.")] = True,
    ensemble: Annotated[int, typer.Option("--ensemble", help="With --refit: average this many networks trained "
                                          "from different seeds.")] = 1,
    units: Annotated[int, typer.Option("--units", help="ESN reservoir size.")] = 500,
    scaling: Annotated[str, typer.Option("--scaling", help="Per-series scaling: standard (mean/std) or robust "
                                         "(median/IQR).")] = "standard",
    log: Annotated[bool | None, typer.Option("--log/--no-log", help="Model the log of the target [default: when "
                                             "every value is above 0].", show_default=False)] = None,
    device: Annotated[str | None, typer.Option("--device", help="cpu, gpu or tpu [default: what JAX finds].")
                      ] = None,
    devices: Annotated[int | None, typer.Option("--devices", help="Split each batch over this many local devices "
                                                "[default: all].")] = None,
    coordinator: Annotated[str | None, typer.Option("--coordinator", help="HOST:PORT of process 0, to train "
                                                    "across several processes (jax.distributed).")] = None,
    num_processes: Annotated[int | None, typer.Option("--num-processes", help="Processes in the run.")] = None,
    process_id: Annotated[int | None, typer.Option("--process-id", help="This process's rank, 0 writes the "
                                                   "model.")] = None,
    local_data: Annotated[bool, typer.Option("--local-data", help="With --num-processes: DATA holds only this "
                                             "process's series (else each keeps its hash share of DATA).")
                          ] = False,
    id_col: IdCol = None,
    time_col: TimeCol = None,
    target: Target = None,
    covariates: Covariates = None,
    freq: Freq = None,
    fill: Fill = "interpolate",
    layout: Layout = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
):
    """Train a model on every series of a CSV file and save it to the model directory.

    Example: forecast train sample_data/sales.csv --model gru --horizon 6
    """
    with user_errors(verbose, interrupted="Interrupted: nothing was saved; the previous model is intact."):
        from forecast_cli.config import MODEL_KINDS, ESNConfig, RecurrentConfig, TrainConfig
        from forecast_cli.errors import ConfigError

        if model not in MODEL_KINDS:
            raise ConfigError(f"Unknown --model '{model}'; choose one of {', '.join(MODEL_KINDS)}")
        if loss not in ("mase", "mae", "mse"):
            raise ConfigError(f"Unknown --loss '{loss}'; choose mase, mae or mse")
        if scaling not in ("standard", "robust"):
            raise ConfigError(f"Unknown --scaling '{scaling}'; choose standard or robust")
        if min(epochs, batch_size or 1, hidden, layers, units, ensemble) < 1 or patience < 0:
            raise ConfigError("--epochs, --batch-size, --hidden, --layers, --units and --ensemble must be at least 1, "
                              "--patience at least 0")
        config = data_config(id_col, time_col, target, covariates, freq, fill, layout)
        from forecast_cli.data import read_series

        panel = read_series(data, config)
        if not quiet:
            report_filled(panel)
        from forecast_cli import distributed

        if coordinator or (num_processes or 1) > 1:
            setup_platform(device)
            distributed.initialize(coordinator, num_processes, process_id)
            if not local_data:
                panel = distributed.shard_panel(panel)
        else:
            split_cpu_cores()
        where = setup_jax(device)
        writer = distributed.process_index() == 0
        from forecast_cli.persistence import model_lock, save_artifact
        from forecast_cli.pipeline import TrainSpec, train_artifact

        spec = TrainSpec(
            kind=model, horizon=horizon, lookback=lookback, data=config, scaling=scaling, log=log,
            recurrent=RecurrentConfig(cell=model if model in ("gru", "lstm", "elman") else "gru", hidden=hidden,
                                      layers=layers, dropout=dropout),
            esn=ESNConfig(units=units),
            train=TrainConfig(epochs=epochs, patience=patience, batch_size=batch_size, loss=loss, refit=refit,
                              ensemble=ensemble, learning_rate=learning_rate, seed=seed, devices=devices),
        )
        if not quiet:
            say(f"training {model} on {len(panel.ids)} series from {panel.source} on {where}")
        neural = model in ("auto", "gru", "lstm", "elman")
        lock = model_lock(model_dir_path(model_dir)) if writer else nullcontext()
        with lock, EpochReporter(epochs, quiet or not neural or not writer) as reporter:
            artifact = train_artifact(panel, spec, on_epoch=reporter)
            if not writer:
                return  # process 0 writes the model of a distributed run
            target_dir = save_artifact(model_dir_path(model_dir), artifact)
        if not quiet:
            say(train_summary(artifact.manifest, target_dir))


def prediction_shard(num_processes: int | None, process_id: int | None) -> tuple[int, int] | None:
    from forecast_cli.errors import ConfigError

    if num_processes is None and process_id is None:
        return None
    if num_processes is None or process_id is None or not 0 <= process_id < num_processes:
        raise ConfigError("--num-processes N and --process-id I go together, with 0 <= I < N")
    return num_processes, process_id


def train_summary(m: dict, target_dir) -> str:
    w, v = m["window"], m["validation"]
    line = (f"trained {m['kind']} (horizon {w['horizon']}, lookback {w['lookback']}) in "
            f"{m['training_seconds']:.1f}s; saved to {target_dir}")
    if "blend" in m:
        b = m["blend"]
        line += (f"\nblend: {100 * b['weight']:.0f}% GRU, {100 * (1 - b['weight']):.0f}% Theta "
                 f"(drift {b.get('drift', 0.5):g} of the trend)")
    if v.get("windows"):
        gain = 100 * (1 - v["model_mae"] / v["snaive_mae"]) if v["snaive_mae"] > 0 else 0.0
        line += (f"\nvalidation MAE over {v['windows']} windows: {v['model_mae']:.4g} "
                 f"(seasonal naive {v['snaive_mae']:.4g}, naive {v['naive_mae']:.4g}; "
                 f"{abs(gain):.1f}% {'below' if gain >= 0 else 'above'} seasonal naive)")
    return line


@app.command()
def predict(
    data: Annotated[str | None, typer.Argument(help="CSV to forecast from (- for stdin) [default: the end of "
                                               "the training data].", show_default=False)] = None,
    horizon: Horizon = None,
    model_dir: ModelDir = None,
    output: Annotated[str | None, typer.Option("--output", "-o", help="Write the CSV here (atomically) "
                                               "instead of stdout.")] = None,
    levels: Levels = None,
    num_processes: Annotated[int | None, typer.Option("--num-processes", help="Split the series into this many "
                                                      "parts (by a stable hash of their id)...")] = None,
    process_id: Annotated[int | None, typer.Option("--process-id", help="...and forecast only part number "
                                                   "this (0-based).")] = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
):
    """Forecast every series with a trained model: CSV with columns unique_id, ds, y_hat (and interval bounds
    y_hat_lo_80, y_hat_hi_80, ... with --levels). With --num-processes N --process-id I, only the series of
    part I (the same split as distributed training); concatenating the N parts gives the whole forecast.

    Example: forecast predict --horizon 7 --levels 80,95 -o forecast.csv
    """
    with user_errors(verbose):
        from forecast_cli.evaluate import parse_levels
        from forecast_cli.persistence import load_artifact

        interval_levels = parse_levels(levels)
        shard = prediction_shard(num_processes, process_id)
        artifact = load_artifact(model_dir_path(model_dir))
        m = artifact.manifest
        panel = None
        if data is not None:
            from forecast_cli.config import DataConfig
            from forecast_cli.data import read_series

            config = DataConfig.from_dict({**m["data"], "freq": m["freq"]})
            panel = read_series(data, config)
            if not quiet:
                report_filled(panel)
        setup_jax(None)
        from forecast_cli.pipeline import predict_frame

        result = predict_frame(artifact, panel, horizon, interval_levels, shard)
        if not quiet:
            if result.rolled:
                warn(f"horizon {horizon} is longer than the trained {m['window']['horizon']}: forecasts are fed "
                     "back as inputs (recursive roll-forward); covariates are held at their last value")
            if result.fallback:
                names = ", ".join(result.fallback[:5]) + (" …" if len(result.fallback) > 5 else "")
                warn(f"{len(result.fallback)} series shorter than the lookback ({m['window']['lookback']}) "
                     f"forecast by {'Theta' if m['kind'] == 'auto' else 'seasonal naive'}: {names}")
        text = result.to_csv()
        if output:
            from forecast_cli.persistence import write_text_atomic

            write_text_atomic(output, text)
        else:
            sys.stdout.write(text)
            sys.stdout.flush()


@app.command()
def evaluate(
    data: DataArg,
    model: Annotated[list[str] | None, typer.Option("--model", "-m", help="Model(s) to backtest; repeat the "
                                                    "option for several [default: gru].")] = None,
    horizon: Horizon = None,
    folds: Annotated[int, typer.Option("--folds", help="Number of forecast origins (cutoffs).")] = 3,
    step: Annotated[int | None, typer.Option("--step", help="Steps between cutoffs [default: the horizon].")
                    ] = None,
    refit: Annotated[bool, typer.Option("--refit/--no-refit", help="Retrain at every cutoff, or train once at "
                                        "the first and only feed newer data.")] = True,
    lookback: Annotated[int | None, typer.Option("--lookback", help="Input steps per window.")] = None,
    epochs: Annotated[int, typer.Option("--epochs", help="Most epochs per training run.")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    per_series: Annotated[bool, typer.Option("--per-series", help="One row per model and series.")] = False,
    as_json: Json = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")] = False,
    plot: Annotated[str | None, typer.Option("--plot", help="Draw the backtest forecasts to this PNG.")] = None,
    id_col: IdCol = None,
    time_col: TimeCol = None,
    target: Target = None,
    covariates: Covariates = None,
    freq: Freq = None,
    fill: Fill = "interpolate",
    layout: Layout = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
):
    """Backtest models on rolling origins against naive and seasonal naive: MAE, RMSE, sMAPE and MASE.

    Example: forecast evaluate sample_data/sales.csv --model gru --model esn --folds 3
    """
    with user_errors(verbose):
        from forecast_cli.config import MODEL_KINDS, TrainConfig
        from forecast_cli.data import read_series
        from forecast_cli.errors import ConfigError

        kinds = model or ["auto"]
        for kind in kinds:
            if kind not in MODEL_KINDS:
                raise ConfigError(f"Unknown --model '{kind}'; choose one of {', '.join(MODEL_KINDS)}")
        config = data_config(id_col, time_col, target, covariates, freq, fill, layout)
        panel = read_series(data, config)
        if not quiet:
            report_filled(panel)
        split_cpu_cores()
        setup_jax(None)
        from forecast_cli.evaluate import backtest, summarize_scores
        from forecast_cli.pipeline import TrainSpec

        specs = [TrainSpec(kind=k, lookback=lookback, data=config, train=TrainConfig(epochs=epochs, seed=seed))
                 for k in dict.fromkeys(kinds)]
        if not quiet:
            say(f"backtesting {', '.join(dict.fromkeys(kinds))} on {len(panel.ids)} series, {folds} folds")
        scores, forecasts = backtest(panel, specs, horizon, folds, step, refit)
        table = summarize_scores(scores, per_series)
        if as_json:
            print(json.dumps({"source": panel.source, "horizon": int(forecasts.groupby(
                ["model", "fold", "unique_id"]).size().max()), "folds": folds, "refit": refit,
                "series": len(panel.ids), "rows": table.to_dict(orient="records")}, indent=2))
        elif as_csv:
            sys.stdout.write(table.to_csv(index=False, float_format="%.6g"))
        else:
            print_scores(table, panel, folds, per_series)
        if plot:
            from forecast_cli.plots import plot_backtest

            plot_backtest(panel, forecasts, plot)
            if not quiet:
                say(f"backtest plot written to {plot}")


def print_scores(table, panel, folds: int, per_series: bool) -> None:
    from rich.table import Table

    view = Table(title=escape(f"{panel.source}: backtest over {len(panel.ids)} series × {folds} folds"),
                 title_justify="left", caption="sMAPE in %; MASE against in-sample seasonal naive",
                 caption_justify="left")
    columns = ["model", "series"] if per_series else ["model"]
    for name in columns + ["MAE", "RMSE", "sMAPE", "MASE"]:
        view.add_column(name, justify="left" if name in ("model", "series") else "right")
    for row in table.itertuples():
        keys = [row.model, escape(str(row.unique_id))] if per_series else [row.model]
        view.add_row(*keys, _num(row.mae), _num(row.rmse), f"{row.smape:.2f}", f"{row.mase:.3f}")
    out.print(view)


@app.command()
def plot(
    data: Annotated[str | None, typer.Argument(help="CSV to forecast from [default: the end of the training "
                                               "data].", show_default=False)] = None,
    model_dir: ModelDir = None,
    series: Annotated[list[str] | None, typer.Option("--series", "-s", help="Series to draw (repeatable) "
                                                     "[default: the first 12].")] = None,
    levels: Levels = "80,95",
    horizon: Horizon = None,
    output: Annotated[str, typer.Option("--output", "-o", help="PNG file to write.")] = "forecast.png",
    quiet: Quiet = False,
    verbose: Verbose = False,
):
    """Draw recent history, the forecast and its intervals, one panel per series, to a PNG.

    Example: forecast plot --levels 80,95 -o forecast.png
    """
    with user_errors(verbose):
        from forecast_cli.errors import ConfigError
        from forecast_cli.evaluate import parse_levels
        from forecast_cli.persistence import load_artifact

        interval_levels = parse_levels(levels)
        artifact = load_artifact(model_dir_path(model_dir))
        m = artifact.manifest
        panel = None
        if data is not None:
            from forecast_cli.config import DataConfig
            from forecast_cli.data import read_series

            panel = read_series(data, DataConfig.from_dict({**m["data"], "freq": m["freq"]}))
        setup_jax(None)
        from forecast_cli.pipeline import predict_frame, recent_history
        from forecast_cli.plots import pick_series, plot_forecast

        result = predict_frame(artifact, panel, horizon, interval_levels)
        ids = list(dict.fromkeys(result.frame["unique_id"]))
        unknown = [s for s in series or [] if s not in ids]
        if unknown:
            raise ConfigError(f"--series {unknown[0]}: no such series; the model knows {', '.join(ids[:5])}"
                              + (" …" if len(ids) > 5 else ""))
        chosen, note = pick_series(ids, series)
        if note and not quiet:
            warn(note)
        steps = int(result.frame.groupby("unique_id").size().iloc[0])
        history = recent_history(artifact, panel, max(3 * steps, m["window"]["lookback"]))
        frame = result.frame[result.frame["unique_id"].isin(chosen)]
        plot_forecast(history[history["unique_id"].isin(chosen)], frame, interval_levels, output,
                      m["columns"].get("target") or "y")
        if not quiet:
            say(f"forecast plot written to {output}")


def main() -> None:  # pragma: no cover - the console script; tests drive `app` through CliRunner
    """Run the app, then end the process at once: a JAX process spends about 0.4 s tearing the interpreter
    down, which a cron job would pay on every run. Everything is written and flushed before."""
    import os

    try:
        app()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # the reader went away (`| head`): nothing left to say
            pass
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
