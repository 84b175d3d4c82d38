"""The `forecast` command line: each command turns its options (options.py) into a config, makes one library
call and reports the result (report.py); a ForecastError becomes one line on stderr and its exit code, and
Ctrl-C, SIGTERM and broken standard streams end the process cleanly.

Heavy libraries (JAX, Flax, pandas) are imported inside the commands, so `forecast --help` starts fast.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from contextlib import ExitStack, contextmanager
from typing import Annotated


def _launched_as_forecast() -> bool:
    """True when this module is being imported by the `forecast` script or `python -m forecast_cli`."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return getattr(spec, "name", None) == "forecast_cli.__main__" or os.path.basename(sys.argv[0]) == "forecast"


def _interrupted_early(signum, frame) -> None:  # until main() installs on_interrupt: nothing has started yet
    os.write(2, b"Interrupted.\n" if signum == signal.SIGINT else b"Terminated.\n")
    os._exit(128 + signum)


if _launched_as_forecast():  # from the first line, not after the imports below (0.1 s)
    signal.signal(signal.SIGINT, _interrupted_early)
    signal.signal(signal.SIGTERM, _interrupted_early)

import typer  # noqa: E402
from rich.markup import escape  # noqa: E402
from typer.core import TyperCommand, TyperGroup  # noqa: E402

from forecast_cli.config import MODEL_KINDS, DataConfig, ESNConfig, RecurrentConfig, TrainConfig  # noqa: E402
from forecast_cli.options import (  # noqa: E402
    OUTPUT_PANEL,
    AllowRevisions,
    BacktestModels,
    BacktestPlot,
    BacktestRefit,
    BatchSize,
    CompareCovariates,
    Coordinator,
    Csv,
    DataArg,
    Device,
    Devices,
    Dropout,
    Ensemble,
    Epochs,
    Folds,
    Hidden,
    Horizon,
    Json,
    Layers,
    LearningRate,
    Levels,
    LocalData,
    Log,
    Lookback,
    Loss,
    ModelDir,
    ModelHorizon,
    Patience,
    PerSeries,
    PlotData,
    PlotHistory,
    PlotOutput,
    PredictData,
    PredictFuture,
    PredictOutput,
    PredictProcesses,
    PredictProcessId,
    Quantiles,
    Quiet,
    Scaling,
    Seed,
    Series,
    SeriesWindows,
    Step,
    TrainModel,
    TrainProcesses,
    TrainProcessId,
    TrainRefit,
    Units,
    Verbose,
    check_choice,
    check_model_dir,
    check_series,
    data_options,
    model_dir_path,
    parse_levels,
    parse_quantiles,
    prediction_shard,
)
from forecast_cli.report import (  # noqa: E402
    LOG_FILE,
    EpochReporter,
    FoldReporter,
    backtest_json,
    err,
    error,
    inspect_json,
    prediction_notes,
    print_inspect,
    print_scores,
    report_filled,
    say,
    train_summary,
    update_summary,
    warn,
    write_log,
    written_summary,
)
from forecast_cli.runtime import return_freed_memory, setup_jax, setup_platform, split_cpu_cores  # noqa: E402

try:
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - a typer that uses the click package
    from click.exceptions import ClickException


METAVARS = {"<str>": "TEXT", "<list[str]>": "TEXT", "<int>": "INTEGER", "<int range>": "INTEGER",
            "<float>": "FLOAT", "<float range>": "FLOAT", "<bool>": ""}  # typer's type label -> --help's


def plain_help(command, ctx, help_panel: str | None = None) -> None:
    """--help in the words of most command lines: TEXT, INTEGER or FLOAT after an option that takes a value,
    nothing after a flag or after an argument's name (typer 0.29 writes <str>, <int range>, <bool>); -h/--help
    itself goes to `help_panel`."""
    for param in command.get_params(ctx):
        if param.param_type_name == "argument":
            param.display_type_rich = lambda ctx: None  # DATA says it all
        elif param.metavar is None:
            label = param.display_type(ctx)
            param.metavar = METAVARS.get(label, label)
        if help_panel and param.name == "help":
            param.rich_help_panel = help_panel


class Command(TyperCommand):
    """A command whose --help reads naturally: plain metavars and `DATA` (not `{data}`) in the usage line."""

    def format_help(self, ctx, formatter):
        plain_help(self, ctx, help_panel=OUTPUT_PANEL)
        return super().format_help(ctx, formatter)

    def collect_usage_pieces(self, ctx):
        return [piece[1:-1] if piece.startswith("{") and piece.endswith("}") else piece
                for piece in super().collect_usage_pieces(ctx)]


class OneLineErrors(TyperGroup):
    """A bad option or argument is one line, `Error: <what> (see 'forecast CMD --help')`, exit 2, like every
    other input error; typer's default is a usage block and a framed panel."""

    def format_help(self, ctx, formatter):
        plain_help(self, ctx)
        return super().format_help(ctx, formatter)

    def make_context(self, *args, **kwargs):
        with _usage_errors():
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx):
        with _usage_errors():
            return super().invoke(ctx)


@contextmanager
def _usage_errors():
    from forecast_cli.errors import ForecastError

    try:
        yield
    except ForecastError as e:  # raised outside a command's user_errors: printing --help to a full disk
        error(str(e))
        raise typer.Exit(e.exit_code) from None
    except ClickException as e:
        path = (getattr(getattr(e, "ctx", None), "command_path", None) or "forecast").split()
        command = " ".join(["forecast", *path[1:]])  # the program's name, also under the tests' CliRunner
        message = " ".join(e.format_message().split())
        param = getattr(e, "param", None)
        low, high = getattr(param, "min", None), getattr(param, "max", None)
        if low is not None and high is not None:
            shown = (f"{low:,} to {high:,}" if isinstance(low, int) else f"{low:g} to {high:g}")
            message += f" (allowed: {shown})"
        say(f"Error: {message} (see '{command} --help')", f"[red]Error:[/red] {escape(message)} "
            f"(see '{escape(command)} --help')")
        raise typer.Exit(e.exit_code) from None


EPILOG = ("Models are saved to --model-dir, else $FORECAST_MODEL_DIR, else ./forecast-model. JAX's compiled code is "
          "cached in $FORECAST_CACHE_DIR, else $XDG_CACHE_HOME/forecast/jax (~/.cache/forecast/jax); the native ESN "
          "kernel is built once in $FORECAST_CACHE_DIR/native (~/.cache/forecast/native); FORECAST_NATIVE=0 turns it "
          "off.")

app = typer.Typer(
    cls=OneLineErrors,
    help="Forecast time series from CSV with JIT-compiled recurrent models (JAX).\n\n"
    "Example: forecast inspect sample_data/sales.csv",
    epilog=EPILOG,
    invoke_without_command=True,  # `forecast` alone prints the help, exit 0 (main_options)
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_show_locals=False,
    add_completion=False,
)

def _show_version(value: bool) -> None:
    if value:
        from forecast_cli import __version__

        with user_errors():
            emit(f"forecast {__version__}\n")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
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
    if ctx.invoked_subcommand is None:
        with user_errors():
            emit(ctx.get_help() + "\n")
        raise typer.Exit()
    LOG_FILE[:] = [log_file] if log_file else []


@contextmanager
def user_errors(verbose: bool = False, interrupted: str = "Interrupted.",
                saved: str = "Interrupted after the output was written."):
    """Turn a ForecastError into one line on stderr and its exit code; Ctrl-C into exit 130.

    In the console script Ctrl-C and SIGTERM never reach here: `main` handles them (see on_interrupt) and
    says `interrupted` (`saved` once persistence has committed the result); KeyboardInterrupt is for library
    callers and the tests' CliRunner."""
    from forecast_cli.errors import ForecastError

    INTERRUPTED[:] = [interrupted, saved]
    try:
        yield
    except ForecastError as e:
        if verbose:
            err.print_exception(show_locals=False)
        error(str(e))
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        say(interrupted)
        raise typer.Exit(130) from None


@contextmanager
def writing(what: str):
    """An OSError while writing a result (`what`: the model directory, the output file) becomes one line naming
    it and the reason, exit 1. Wrap only the writing itself: an OSError elsewhere is a bug and keeps its
    traceback."""
    from forecast_cli.errors import OutputError

    try:
        yield
    except OSError as e:
        where = e.filename if isinstance(e.filename, str) and e.filename != what else None
        reason = e.strerror or str(e) or type(e).__name__
        raise OutputError(f"cannot write {what}: {reason}" + (f" ({where})" if where else "")
                          + "; what was there before is unchanged") from e


@contextmanager
def stdout_errors():
    """Results written to standard output: a reader that went away (`| head`) ends the command quietly with
    exit 0; any other failure (a full disk, /dev/full, a closed stdout) is one line, exit 1."""
    from forecast_cli.errors import OutputError

    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout(sys.stdout)
    except OSError as e:
        _discard_stdout(sys.stdout)
        raise OutputError(f"cannot write to standard output: {e.strerror or e}") from None


def emit(text: str) -> None:
    """Write a result (CSV, JSON) to standard output."""
    with stdout_errors():
        sys.stdout.write(text)


def _discard_stdout(stream) -> None:
    """Point stdout at /dev/null, so that what is still buffered can't fail again at exit."""
    try:
        fd = stream.fileno()
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)
    except (OSError, ValueError, AttributeError):  # not a real file (tests), or closed
        pass


class ClosedStream:
    """Stands in for a standard stream that was closed when the program started (`>&-`)."""

    def __init__(self, reason: str):
        self.reason = reason

    def _closed(self, *args):
        import errno

        raise OSError(errno.EBADF, self.reason)

    write = read = readline = _closed

    def flush(self) -> None:
        pass  # nothing is ever buffered

    def isatty(self) -> bool:
        return False


class CheckedStdout:
    """The console script's stdout: a write or flush that fails (a full disk, /dev/full, a closed stdout) is an
    OutputError, whoever writes (a command, --help, --version); the stream is then pointed at /dev/null so that
    what is still buffered can't fail again at exit. A reader that went away stays a BrokenPipeError."""

    def __init__(self, stream):
        self._stream = stream

    def _checked(self, method, *args):
        from forecast_cli.errors import OutputError

        try:
            return method(*args)
        except BrokenPipeError:
            raise
        except OSError as e:
            _discard_stdout(self._stream)
            raise OutputError(f"cannot write to standard output: {e.strerror or e}") from None

    def write(self, text: str):
        return self._checked(self._stream.write, text)

    def flush(self) -> None:
        return self._checked(self._stream.flush)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


def guard_standard_streams() -> None:
    """Standard streams closed at start: put /dev/null on their descriptors, so that no file this run opens
    takes descriptor 0, 1 or 2 (a lock file receiving the CSV). Closed stdin is an error when read, closed stderr
    loses the messages (the exit code still tells), and writing a result to a closed stdout is an error."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
            continue
        except OSError:
            pass
        null = os.open(os.devnull, os.O_RDWR)
        if null != fd:
            os.dup2(null, fd)
            os.close(null)
        if fd == 0:
            sys.stdin = None  # data.read_series says "standard input is closed"
        elif fd == 1:
            sys.stdout = ClosedStream("it was closed when forecast started")
        else:
            sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115


# Ctrl-C (SIGINT) and SIGTERM in the console script. Python's default raises KeyboardInterrupt wherever the
# main thread is: inside `import jax` that left C state half-built (the process then crashed), inside JAX's
# own code it was caught and the run carried on and saved. Instead, the handler below never raises: it
# removes whatever save is in flight, says one line and ends the process at once.
INTERRUPTED = ["Interrupted.", "Interrupted after the output was written."]  # the running command's lines
# before and after its result was committed (set by user_errors)
EXIT_ON_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}  # SIGINT, SIGTERM: 128 + the signal, as a shell reports it


def on_interrupt(signum, frame) -> None:
    """The SIGINT/SIGTERM handler: nothing saved (remove persistence.STAGING) and exit 130 (143 for SIGTERM).

    persistence holds both signals off while it renames a finished save into place (it blocks them in the main
    thread and defers their handlers), then delivers them: they arrive here with persistence.COMMITTED set.
    Should this handler still run inside such a window (a signal the kernel gave another thread while the
    main thread blocks it), it sends the signal again to the main thread, where it waits for the unblocking."""
    import threading

    if signum in signal.pthread_sigmask(signal.SIG_BLOCK, []):
        signal.pthread_kill(threading.main_thread().ident, signum)
        return
    for other in EXIT_ON_SIGNAL:
        signal.signal(other, signal.SIG_IGN)  # a second Ctrl-C can't cut the cleanup short
    persistence = sys.modules.get("forecast_cli.persistence")
    for path in list(getattr(persistence, "STAGING", ())):
        _remove(path)
    what = "Interrupted" if signum == signal.SIGINT else "Terminated"
    message = INTERRUPTED[1 if getattr(persistence, "COMMITTED", False) else 0].replace("Interrupted", what, 1)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - reentrant, closed or full: the message below is written raw
            pass
    try:
        os.write(2, (message + "\n").encode())
    except OSError:
        pass
    for path in LOG_FILE:
        write_log(path, message)
    os._exit(EXIT_ON_SIGNAL[signum])


def _remove(path) -> None:
    import shutil

    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except OSError:
        pass


def install_interrupt_handlers() -> None:
    for signum in EXIT_ON_SIGNAL:
        signal.signal(signum, on_interrupt)


@app.command(cls=Command)
@data_options
def inspect(
    data: DataArg,
    config: DataConfig = None,  # the data options, --id-col ... --layout (@data_options)
    as_json: Json = False,
    verbose: Verbose = False,
):
    """Summarise the series in a CSV file: one row per series, with totals.

    Examples:
      forecast inspect sample_data/sales.csv --json
      forecast inspect sample_data/river.csv --target discharge --covariates rain,temp
      zcat sales.csv.gz | forecast inspect -
    """
    with user_errors(verbose):
        from forecast_cli.data import read_series, summarize

        panel = read_series(data, config)
        report_filled(panel)
        table = summarize(panel)
        if as_json:
            emit(json.dumps(inspect_json(panel, table), indent=2) + "\n")
        else:
            with stdout_errors():
                print_inspect(panel, table)


@app.command(cls=Command)
@data_options
def train(
    data: DataArg,
    config: DataConfig = None,  # the data options, --id-col ... --layout (@data_options)
    model: TrainModel = "auto",
    horizon: Horizon = None,
    lookback: Lookback = None,
    hidden: Hidden = 64,
    layers: Layers = 1,
    units: Units = 500,
    scaling: Scaling = "standard",
    log: Log = None,
    seed: Seed = 0,
    epochs: Epochs = 100,
    patience: Patience = 10,
    batch_size: BatchSize = None,
    dropout: Dropout = 0.0,
    learning_rate: LearningRate = 3e-3,
    loss: Loss = "mase",
    refit: TrainRefit = True,
    ensemble: Ensemble = 1,
    series_windows: SeriesWindows = 16,
    model_dir: ModelDir = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
    device: Device = None,
    devices: Devices = None,
    coordinator: Coordinator = None,
    num_processes: TrainProcesses = None,
    process_id: TrainProcessId = None,
    local_data: LocalData = False,
):
    """Train a model on every series of a CSV file and save it to the model directory.

    Examples:
      forecast train sample_data/sales.csv --model gru --horizon 6
      forecast train sample_data/river.csv --target discharge --covariates rain,temp --model-dir river-model
      weekly, from cron (replaces the model in one step; a failed run keeps the old one):
      0 3 * * 1  forecast --log-file /var/log/forecast.log train /data/sales.csv --model-dir /srv/sales-model
    """
    with user_errors(verbose, interrupted="Interrupted: nothing was saved; the previous model is intact.",
                     saved="Interrupted after the new model was saved."):
        check_choice("--model", model, MODEL_KINDS)
        check_choice("--loss", loss, ("mase", "mae", "mse"))
        check_choice("--scaling", scaling, ("standard", "robust"))
        check_model_dir(model_dir_path(model_dir))
        from forecast_cli.data import read_series

        panel = read_series(data, config)
        if not quiet:
            report_filled(panel)
        from forecast_cli import parallel

        if coordinator or (num_processes or 1) > 1:
            setup_platform(device)
            parallel.initialize(coordinator, num_processes, process_id)
            if not local_data:
                panel = parallel.shard_panel(panel)
        else:
            split_cpu_cores()
        where = setup_jax(device)
        writer = parallel.process_index() == 0
        from forecast_cli.config import TrainSpec
        from forecast_cli.fit import fit_model
        from forecast_cli.persistence import model_lock, save_artifact

        spec = TrainSpec(
            kind=model, horizon=horizon, lookback=lookback, data=config, scaling=scaling, log=log,
            recurrent=RecurrentConfig(cell=model if model in ("gru", "lstm", "elman") else "gru", hidden=hidden,
                                      layers=layers, dropout=dropout),
            esn=ESNConfig(units=units),
            train=TrainConfig(epochs=epochs, patience=patience, batch_size=batch_size, loss=loss, refit=refit,
                              ensemble=ensemble, learning_rate=learning_rate, seed=seed, devices=devices,
                              series_windows=series_windows),
        )
        if not quiet:
            say(f"training {model} on {len(panel.ids)} series from {panel.source} on {where}")
        neural = model in ("auto", "gru", "lstm", "elman")
        directory = model_dir_path(model_dir)
        with ExitStack() as stack:
            if writer:  # before training: a model directory that can't be written fails at once
                with writing(directory):
                    stack.enter_context(model_lock(directory))
            reporter = stack.enter_context(EpochReporter(epochs, quiet or not neural or not writer))
            artifact = fit_model(panel, spec, on_epoch=reporter)
            if not writer:
                return  # process 0 writes the model of a distributed run
            with writing(directory):
                target_dir = save_artifact(directory, artifact)
        if not quiet:
            say(train_summary(artifact.manifest, target_dir))


def read_fresh_data(data: str, m):
    """DATA given to predict or plot, read with the model's data contract. A model trained with an explicit
    --freq resamples fresh data to it, as training did; one whose frequency was inferred refuses data of
    another frequency (weekly data to a daily model) rather than resampling it."""
    import dataclasses

    from forecast_cli.data import read_series

    if m.data.freq is None:
        return read_series(data, m.data, expect_freq=m.freq)
    return read_series(data, dataclasses.replace(m.data, freq=m.freq))


def read_future_file(path: str | None, m):
    """--future FILE read with the model's data contract; None without one. ConfigError for a model that takes no
    future covariates."""
    if path is None:
        return None
    from forecast_cli.errors import ConfigError

    if not m.data.future_covariates:
        raise ConfigError("--future: this model was trained without --future-covariates; it takes no future values")
    from forecast_cli.data import read_future

    return read_future(path, m.data, m.columns, m.freq)


@app.command(cls=Command)
def update(
    data: DataArg,
    model_dir: ModelDir = None,
    allow_revisions: AllowRevisions = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
):
    """Fold the rows of DATA after those the model was trained on into it, in place, without a full retrain.

    DATA is the training data grown (new series in it are left to predict, which forecasts them as before). The
    ESN's readout is solved again exactly; a network trains on a few epochs from where it stopped; the intervals'
    conformal scores take the errors of the forecasts made before. Nothing new: exit 0, nothing changed.

    Examples:
      forecast update sales.csv --model-dir sales-model
      daily, from cron, after the day's rows are appended:
      5 6 * * *  forecast update /data/river.csv --model-dir /srv/m && forecast predict --model-dir /srv/m > fc.csv
    """
    with user_errors(verbose, interrupted="Interrupted: nothing was saved; the previous model is intact.",
                     saved="Interrupted after the updated model was saved."):
        from forecast_cli.persistence import load_artifact, model_lock, save_artifact

        directory = model_dir_path(model_dir)
        load_artifact(directory)  # a missing or broken model is refused before any lock file is made
        with writing(directory), model_lock(directory):
            artifact = load_artifact(directory)  # under the lock: no other writer can swap it meanwhile
            panel = read_fresh_data(data, artifact.manifest)
            if not quiet:
                report_filled(panel)
            setup_jax(None)
            from forecast_cli.update import update_model

            result = update_model(artifact, panel, allow_revisions)
            if result.artifact is not None:
                save_artifact(directory, result.artifact)
        if not quiet:
            say(update_summary(result, artifact.manifest, directory))


@app.command(cls=Command)
def predict(
    data: PredictData = None,
    horizon: ModelHorizon = None,
    model_dir: ModelDir = None,
    future: PredictFuture = None,
    output: PredictOutput = None,
    levels: Levels = None,
    quantiles: Quantiles = None,
    num_processes: PredictProcesses = None,
    process_id: PredictProcessId = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
):
    """Forecast every series with a trained model: CSV with columns unique_id, ds, y_hat.

    With --levels 80, interval bounds y_hat_lo_80 and y_hat_hi_80 too; with --quantiles 0.1,0.9 the same bounds
    as y_hat_q10 and y_hat_q90. With --num-processes N --process-id I,
    only the series of part I (the same split as distributed training); the N parts together are the forecast.

    Examples:
      forecast predict --horizon 7 --levels 80,95 -o forecast.csv
      forecast predict --quantiles 0.05,0.5,0.95
      forecast predict latest.csv --model-dir river-model > forecast.csv   (DATA brings the covariates too)
      forecast predict --model-dir flood-model --future rain_forecast.csv   (a model with --future-covariates)
      forecast predict -q | grep state_01
    """
    with user_errors(verbose):
        from forecast_cli.persistence import load_artifact

        interval_levels, forecast_quantiles = parse_levels(levels), parse_quantiles(quantiles)
        shard = prediction_shard(num_processes, process_id)
        artifact = load_artifact(model_dir_path(model_dir))
        m = artifact.manifest
        panel = None
        if data is not None:
            panel = read_fresh_data(data, m)
            if not quiet:
                report_filled(panel)
        ahead = read_future_file(future, m)
        setup_jax(None)
        from forecast_cli.forecast import predict

        result = predict(artifact, panel, horizon, interval_levels, shard, forecast_quantiles, ahead)
        if not quiet:
            prediction_notes(result, m, horizon)
        text = result.to_csv()
        if output:
            from forecast_cli.persistence import write_text_atomic

            with writing(output):
                write_text_atomic(output, text)
            if not quiet:
                say(written_summary(result.frame, output))
        else:
            emit(text)


@app.command(cls=Command)
@data_options
def evaluate(
    data: DataArg,
    config: DataConfig = None,  # the data options, --id-col ... --layout (@data_options)
    model: BacktestModels = None,
    horizon: Horizon = None,
    lookback: Lookback = None,
    epochs: Epochs = 100,
    seed: Seed = 0,
    folds: Folds = 3,
    step: Step = None,
    refit: BacktestRefit = True,
    compare_covariates: CompareCovariates = False,
    levels: Levels = "80,95",
    per_series: PerSeries = False,
    as_json: Json = False,
    as_csv: Csv = False,
    plot: BacktestPlot = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
):
    """Backtest models on rolling origins against naive and seasonal naive: MAE, RMSE, sMAPE and MASE, and how
    well the --levels intervals covered what happened (coverage, width, MSIS, quantile loss).

    Examples:
      forecast evaluate sample_data/sales.csv --model gru --model esn --folds 3
      forecast evaluate sample_data/river.csv --target discharge --covariates rain,temp --json > scores.json
      forecast evaluate sample_data/river.csv --target discharge --future-covariates rain --compare-covariates
      forecast evaluate sample_data/sales.csv --per-series --csv | sort -t, -k6 -g
    """
    with user_errors(verbose):
        from forecast_cli.data import read_series

        kinds = model or ["auto"]
        interval_levels = parse_levels(levels)
        for kind in kinds:
            check_choice("--model", kind, MODEL_KINDS)
        panel = read_series(data, config)
        if not quiet:
            report_filled(panel)
        split_cpu_cores()
        setup_jax(None)
        from forecast_cli.config import TrainSpec
        from forecast_cli.evaluate import BASELINES, backtest, resolve_folds, summarize_scores

        resolve_folds(panel, horizon, folds, step)  # folds that can't fit: refused before saying anything

        specs = [TrainSpec(kind=k, lookback=lookback, data=config, train=TrainConfig(epochs=epochs, seed=seed))
                 for k in dict.fromkeys(kinds)]
        if not quiet:
            say(f"backtesting {', '.join(dict.fromkeys(kinds))} on {len(panel.ids)} series, {folds} folds")
            if panel.future_covariates:
                say(f"future covariates {', '.join(panel.future_covariates)}: each fold forecasts with their actual "
                    "values after its cutoff (an oracle future); a deployed forecast is only as good as the "
                    "forecast of them")
        compare = compare_covariates and bool(panel.covariates or panel.static or panel.holidays)
        models = len(specs) * (2 if compare else 1) + len([k for k in BASELINES if k not in kinds])
        with FoldReporter(models * folds, quiet) as reporter:
            scores, forecasts = backtest(panel, specs, horizon, folds, step, refit, on_fold=reporter,
                                         levels=interval_levels, compare_covariates=compare)
        table = summarize_scores(scores, per_series)
        if as_json:
            emit(json.dumps(backtest_json(panel, forecasts, table, folds, refit), indent=2) + "\n")
        elif as_csv:
            from forecast_cli.csvout import to_csv

            emit(to_csv({name: table[name].to_numpy() for name in table.columns}, float_format="%.6g"))
        else:
            with stdout_errors():
                print_scores(table, panel, folds, per_series)
        if plot:
            from forecast_cli.plots import plot_backtest

            plot_backtest(panel, forecasts, plot)
            if not quiet:
                say(f"backtest plot written to {plot}")


@app.command(cls=Command)
def plot(
    data: PlotData = None,
    horizon: ModelHorizon = None,
    model_dir: ModelDir = None,
    future: PredictFuture = None,
    series: Series = None,
    levels: Levels = "80,95",
    history: PlotHistory = None,
    output: PlotOutput = "forecast.png",
    quiet: Quiet = False,
    verbose: Verbose = False,
):
    """Draw recent history, the forecast and its intervals, one panel per series, to a PNG.

    Examples:
      forecast plot --levels 80,95 -o forecast.png
      forecast plot --series state_01 --series state_02 --horizon 12 -o states.png
    """
    with user_errors(verbose):
        from forecast_cli.persistence import load_artifact

        interval_levels = parse_levels(levels)
        artifact = load_artifact(model_dir_path(model_dir))
        m = artifact.manifest
        panel = read_fresh_data(data, m) if data is not None else None
        ahead = read_future_file(future, m)
        setup_jax(None)
        from forecast_cli.forecast import predict, recent_history
        from forecast_cli.plots import pick_series, plot_forecast

        result = predict(artifact, panel, horizon, interval_levels, future=ahead)
        ids = list(dict.fromkeys(result.frame["unique_id"]))
        check_series(series, ids)
        chosen, note = pick_series(ids, series)
        if not quiet:
            prediction_notes(result, m, horizon)
            if note:
                warn(note)
        steps = int(result.frame.groupby("unique_id").size().iloc[0])
        past = recent_history(artifact, panel, history or max(3 * steps, m.window.lookback))
        frame = result.frame[result.frame["unique_id"].isin(chosen)]
        plot_forecast(past[past["unique_id"].isin(chosen)], frame, interval_levels, output,
                      m.columns.get("target"), m.columns.get("time"))
        if not quiet:
            say(f"forecast plot written to {output}")


def main() -> None:  # pragma: no cover - the console script; tests drive `app` through CliRunner
    """Run the app, then end the process at once: a JAX process spends about 0.4 s tearing the interpreter
    down, which a cron job would pay on every run. Everything is written and flushed before."""
    install_interrupt_handlers()
    guard_standard_streams()
    return_freed_memory()
    sys.stdout = CheckedStdout(sys.stdout)
    try:
        app()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:  # the reader went away (`| head`): nothing left to say
            pass
        except Exception as e:  # noqa: BLE001 - what a command printed last could not be written
            if stream is sys.stdout and code == 0:
                say(f"Error: {e}" if type(e).__name__ == "OutputError" else
                    f"Error: cannot write to standard output: {getattr(e, 'strerror', None) or e}")
                code = 1
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    main()
