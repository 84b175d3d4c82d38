"""What the commands show on the screen: messages on stderr (and the --log-file), tables and summaries.

Rendering only: the options are read in cli.py and the work is done by the library. One Console for stderr
(`err`) and one for stdout (`out`) serve every command. Heavy libraries are not imported here: the functions
take what the library returned (a Panel, a pandas table, a manifest) and rich's tables and progress bars are
imported when drawn.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from forecast_cli.escapes import escape_controls

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)

LOG_FILE: list[str] = []  # set by --log-file: every message also goes there, timestamped


def visible(text: str) -> str:
    """`text` safe to print on a terminal: control characters (C0 but newline and tab, DEL, C1, so ESC and CSI
    too; line separators and bidirectional overrides) become visible escapes such as \\x1b, so an id or a file
    name can't move the cursor, recolour or reorder the text."""
    return escape_controls(text, keep="\n\t")


def cell(value) -> str:
    """A user-provided string (an id, a file or column name) for a rich table: visible, and not markup."""
    return escape(visible(str(value)))


def say(message: str, markup: str | None = None) -> None:
    """A message for the person running the command: stderr (never stdout), and the log file if one is set.

    `markup` is the same text with rich markup for the terminal; the log gets the plain text. Both pass through
    `visible` here, the last stop before the terminal."""
    message = visible(message)
    err.print(visible(markup) if markup is not None else escape(message), highlight=False)
    for path in LOG_FILE:
        write_log(path, message)


def write_log(path: str, message: str) -> None:
    """Append `message` to the --log-file at `path`, each line timestamped."""
    from datetime import datetime

    try:
        with open(path, "a") as log:
            for line in message.splitlines():
                log.write(f"{datetime.now().astimezone().isoformat(timespec='seconds')} {line}\n")
    except OSError:
        pass  # a broken log file must not break the run


def error(message: str) -> None:
    """An error, as one line whatever the message holds (red `Error:` on a terminal)."""
    message = " ".join(message.split())
    say(f"Error: {message}", f"[red]Error:[/red] {escape(message)}")


def warn(message: str) -> None:
    """A note the user should read (yellow `Note:` on a terminal)."""
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
    if panel.layout == "wide" and len(panel.ids) > 1:  # river.csv without --target: every column a series
        names = ", ".join(str(i) for i in panel.ids[:5]) + (" …" if len(panel.ids) > 5 else "")
        warn(f"{panel.source}: wide layout: each of the {len(panel.ids)} value columns is a series ({names}); "
             "to forecast one column with the others as inputs, pass --target and --covariates")


def inspect_json(panel, table) -> dict:
    """`forecast inspect --json`: the panel's description and one record per row of data.summarize's table."""
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
    """`forecast inspect`: a table of the series (the first MAX_ROWS // 2 of a longer panel) and a total row."""
    from rich.table import Table

    from forecast_cli import timeindex

    freq = f"{timeindex.describe(panel.freq)} ({panel.freq})"
    title = f"{panel.source}: {len(table)} series, {panel.layout} layout, {freq}"
    if panel.covariates:
        title += f", covariates: {', '.join(panel.covariates)}"
    view = Table(title=cell(title), title_justify="left")
    for name in ("series", "length", "start", "end", "filled", "min", "mean", "max"):  # fold, never "…"
        view.add_column(name, justify="left" if name in ("series", "start", "end") else "right", overflow="fold")
    shown = table if len(table) <= MAX_ROWS else table.head(MAX_ROWS // 2)
    for row in shown.itertuples():
        view.add_row(cell(row.unique_id), str(row.length), stamp_text(row.start), stamp_text(row.end),
                     str(row.missing_timestamps + row.missing_values), number_text(row.min), number_text(row.mean),
                     number_text(row.max))
    if len(table) > MAX_ROWS:
        view.add_row(f"… {len(table) - len(shown)} more", "", "", "", "", "", "", "")
    lengths = table["length"]
    view.add_section()
    view.add_row(
        f"total: {len(table)}", f"{int(lengths.sum())}", stamp_text(table["start"].min()),
        stamp_text(table["end"].max()),
        str(int(table["missing_timestamps"].sum() + table["missing_values"].sum())),
        number_text(table["min"].min()), number_text(float((table["mean"] * lengths).sum() / lengths.sum())),
        number_text(table["max"].max()),
    )
    print_whole(view)
    if len(table) > MAX_ROWS:
        out.print(f"lengths: min {lengths.min()}, median {int(lengths.median())}, max {lengths.max()}; "
                  "use --json for every series")


def print_whole(view) -> None:
    """Print a table without cutting a cell: on a terminal wide cells fold at its width; off one (a pipe, a cron
    log, where rich assumes 80 columns) the table is as wide as its widest row needs."""
    if out.is_terminal:
        out.print(view)
        return
    from rich.measure import Measurement

    unbounded = out.options.update(width=1 << 16, max_width=1 << 16)
    width = out.width
    out.width = max(width, Measurement.get(out, unbounded, view).maximum)  # print(width=) is capped by it
    try:
        out.print(view)
    finally:
        out.width = width


def stamp_text(value) -> str:
    """A timestamp as text: the date alone when it falls at midnight."""
    text = str(value)
    return text[:10] if text.endswith("00:00:00") else text


def number_text(value: float) -> str:
    """Four significant digits, or the whole number with thousands separators from 100,000."""
    return f"{value:.4g}" if abs(value) < 1e5 else f"{value:,.0f}"


class EpochReporter:
    """Progress of training: a rich bar on a terminal, nothing if quiet, and otherwise (a cron log) a handful of
    plain lines: the first epoch, about PLAIN_LINES more evenly spaced, and the last of each training pass (early
    stopping can end one before `epochs`; a refit or an ensemble starts another at epoch 1)."""

    PLAIN_LINES = 5

    def __init__(self, epochs: int, quiet: bool):
        self.epochs, self.quiet, self.progress, self.task = epochs, quiet, None, None
        self.every = max(1, -(-epochs // self.PLAIN_LINES))
        self.last: tuple[int, dict] | None = None  # the last epoch seen and not printed
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

    def __exit__(self, kind, *exc):
        if self.progress:
            self.progress.stop()
        elif self.last and kind is None:
            self._say(*self.last)

    def __call__(self, epoch: int, metrics: dict) -> None:
        if self.progress:
            self.progress.update(self.task, completed=epoch, train=metrics["train_loss"], val=metrics["val_loss"],
                                 best=metrics["best_val_loss"])
        elif not self.quiet:
            if self.last and epoch <= self.last[0]:  # a new pass: the previous one's last epoch first
                self._say(*self.last)
            self.last = (epoch, metrics)
            if epoch == 1 or epoch % self.every == 0:
                self._say(epoch, metrics)

    def _say(self, epoch: int, metrics: dict) -> None:
        say(f"epoch {epoch}/{self.epochs}: train loss {metrics['train_loss']:.4f}, "
            f"val loss {metrics['val_loss']:.4f} (best {metrics['best_val_loss']:.4f})")
        self.last = None


class FoldReporter:
    """Progress of a backtest: a rich bar over folds × models on a terminal, one line per model and fold
    otherwise, nothing if quiet. Called as evaluate.backtest's on_fold(model, fold, folds)."""

    def __init__(self, total: int, quiet: bool):
        self.quiet, self.progress, self.task = quiet, None, None
        if not quiet and err.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeElapsedColumn(), console=err, transient=True)
            self.task = self.progress.add_task("backtest", total=total)

    def __enter__(self):
        if self.progress:
            self.progress.start()
        return self

    def __exit__(self, *exc):
        if self.progress:
            self.progress.stop()

    def __call__(self, model: str, fold: int, folds: int) -> None:
        if self.progress:
            self.progress.update(self.task, advance=1, description=cell(f"{model} fold {fold}/{folds}"))
        elif not self.quiet:
            say(f"{model}: fold {fold}/{folds} done")


def train_summary(m, target_dir) -> str:
    """What `forecast train` says at the end, from the saved model's manifest `m` (an artifact.Manifest)."""
    w, v = m.window, m.validation
    line = (f"trained {m.kind} (horizon {w.horizon}, lookback {w.lookback}) in "
            f"{m.training_seconds:.1f}s; saved to {target_dir}")
    if m.blend is not None:
        b = m.blend
        share = b.get("ets", 0.0)
        line += (f"\nblend: {100 * b['weight']:.0f}% GRU, {100 * (1 - b['weight'] - share):.0f}% Theta "
                 f"(drift {b.get('drift', 0.5):g} of the trend), {100 * share:.0f}% ETS")
    if v.get("windows"):
        gain = 100 * (1 - v["model_mae"] / v["snaive_mae"]) if v["snaive_mae"] > 0 else 0.0
        line += (f"\nvalidation MAE over {v['windows']} window{'s' if v['windows'] != 1 else ''}: "
                 f"{v['model_mae']:.4g} "
                 f"(seasonal naive {v['snaive_mae']:.4g}, naive {v['naive_mae']:.4g}; "
                 f"{abs(gain):.1f}% {'below' if gain >= 0 else 'above'} seasonal naive)")
    return line


def update_summary(result, m, directory) -> str:
    """What `forecast update` says at the end: `result` an update.Update, `m` the model's manifest before it."""
    new = (f"; {result.new_series} series of DATA are not in the model (predict forecasts them from their own "
           "history; retrain to learn them)") if result.new_series else ""
    if result.artifact is None:
        return f"nothing new: the model has seen every row of DATA's {len(m.series)} known series; unchanged{new}"
    record = result.artifact.manifest.updates[-1]
    return (f"updated {m.kind} with {result.rows} new row{'s' if result.rows != 1 else ''} of {result.series} "
            f"series in {record['seconds']:.1f}s ({record['kept']}; {result.scored} forecasts scored into the "
            f"intervals); saved to {directory}{new}")


def written_summary(frame, path: str) -> str:
    """What `forecast predict -o FILE` says once the forecast CSV (`frame`, long) is written."""
    rows, series = len(frame), frame["unique_id"].nunique()
    return (f"wrote {rows} row{'s' if rows != 1 else ''} for {series} series to {path}")


def prediction_notes(result, m, horizon: int | None) -> None:
    """Warn about what `forecast predict` did beyond the trained model (manifest `m`): roll forward past its
    horizon, forecast series shorter than its lookback by a simpler method, or extrapolate an interval."""
    if result.rolled:
        warn(f"horizon {horizon} is longer than the trained {m.window.horizon}: forecasts are fed "
             "back as inputs (recursive roll-forward)"
             + ("; past-only covariates are held at their last value" if m.data.covariates else "")
             + ("; future covariates take their supplied values" if m.data.future_covariates else ""))
    if result.fallback:
        names = ", ".join(result.fallback[:5]) + (" …" if len(result.fallback) > 5 else "")
        warn(f"{len(result.fallback)} series shorter than the lookback ({m.window.lookback}) "
             f"forecast by {result.fallback_by}: {names}")
    for note in result.notes:
        warn(note)


def backtest_json(panel, forecasts, table, folds: int, refit: bool) -> dict:
    """`forecast evaluate --json`: the run and one record per row of the scores table."""
    horizon = int(forecasts.groupby(["model", "fold", "unique_id"]).size().max())
    return {"source": panel.source, "horizon": horizon, "folds": folds, "refit": refit, "series": len(panel.ids),
            "rows": table.to_dict(orient="records")}


def print_scores(table, panel, folds: int, per_series: bool) -> None:
    """`forecast evaluate`: the scores table (evaluate.summarize_scores) on stdout: the point metrics, then for
    each interval level the share of actual values inside it and its mean width, the MSIS of the widest level
    and the scaled quantile loss."""
    from rich.table import Table

    levels = [int(c.split("_")[1]) for c in table.columns if c.startswith("cov_")]
    caption = "sMAPE in %; MASE against in-sample seasonal naive"
    if levels:
        caption += ("; intervals: share of actual values inside, mean width in the data's units, MSIS and "
                    "quantile loss (sQL) in units of the in-sample seasonal-naive MAE, lower is better")
    view = Table(title=cell(f"{panel.source}: backtest over {len(panel.ids)} series × {folds} folds"),
                 title_justify="left", caption=caption, caption_justify="left")
    columns = ["model", "series"] if per_series else ["model"]
    interval_columns = [f"in {lv}%" for lv in levels] + [f"width {lv}%" for lv in levels]
    interval_columns += [f"MSIS {levels[-1]}%", "sQL"] if levels else []
    for name in columns + ["MAE", "RMSE", "sMAPE", "MASE"] + interval_columns:
        view.add_column(name, justify="left" if name in ("model", "series") else "right", overflow="fold")
    for row in table.to_dict(orient="records"):
        keys = [cell(row["model"]), cell(row["unique_id"])] if per_series else [cell(row["model"])]
        values = [number_text(row["mae"]), number_text(row["rmse"]), f"{row['smape']:.2f}", f"{row['mase']:.3f}"]
        values += [f"{100 * row[f'cov_{lv}']:.0f}%" if row[f"cov_{lv}"] == row[f"cov_{lv}"] else "-" for lv in levels]
        values += [number_text(row[f"width_{lv}"]) for lv in levels]
        if levels:
            values += [f"{row[f'msis_{levels[-1]}']:.2f}", f"{row['sql']:.3f}"]
        view.add_row(*keys, *values)
    print_whole(view)
