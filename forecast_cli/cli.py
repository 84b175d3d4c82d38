"""The `forecast` command line: parses options, calls the library, prints with rich, maps errors to exit codes.

Heavy libraries (JAX, Flax, pandas) are imported inside the commands, so `forecast --help` starts fast.
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
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
):
    """Forecast time series from CSV with JIT-compiled recurrent models (JAX).

    Example: forecast inspect sample_data/sales.csv
    """


@contextmanager
def user_errors(verbose: bool = False):
    """Turn a ForecastError into one line on stderr and its exit code; Ctrl-C into exit 130."""
    from forecast_cli.errors import ForecastError

    try:
        yield
    except ForecastError as e:
        if verbose:
            err.print_exception(show_locals=False)
        err.print(f"[red]Error:[/red] {escape(str(e))}", highlight=False)
        raise typer.Exit(e.exit_code) from None
    except KeyboardInterrupt:
        err.print("Interrupted.")
        raise typer.Exit(130) from None


def data_config(id_col, time_col, target, covariates, freq, fill, layout):
    from forecast_cli.config import DataConfig

    covs = tuple(c.strip() for c in covariates.split(",") if c.strip()) if covariates else ()
    return DataConfig(id_col=id_col, time_col=time_col, target=target, covariates=covs, freq=freq,
                      fill=fill, layout=layout)


def warn(message: str) -> None:
    err.print(f"[yellow]Note:[/yellow] {escape(message)}", highlight=False)


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


def main() -> None:  # pragma: no cover - entry point for `python -m forecast_cli`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
