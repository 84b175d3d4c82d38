"""Read CSV series into the canonical long panel that every later step takes.

The canonical form follows Nixtla's convention: columns `unique_id`, `ds`, `y` (plus covariates), sorted by
series then time, on a regular grid at a known frequency, with every missing value filled by a stated policy.
The reader works on a pandas frame and turns it into arrays once, at the end (Panel); nothing after it goes
back to pandas but the edges (Panel.to_frame). Errors name the file, the column and the line (line 1 is the
header).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from forecast_cli import features, timeindex
from forecast_cli.config import DECIMALS, FILL_POLICIES, LAYOUTS, SEPARATORS, THOUSANDS, DataConfig
from forecast_cli.csvin import clip as _clip
from forecast_cli.csvin import describe_sep, parse_csv, read_parquet, read_text
from forecast_cli.errors import ConfigError, DataError
from forecast_cli.future import Future
from forecast_cli.limits import MAX_ABS_VALUE, MAX_ADDED_ROWS, MAX_ID_CHARS

ID_NAMES = ("unique_id", "id", "series", "series_id", "item_id")
TIME_NAMES = ("ds", "date", "time", "timestamp", "datetime", "period", "year")
TARGET_NAMES = ("y", "value", "target")

_MAX_ADDED_ROWS = MAX_ADDED_ROWS  # (a module name, so that a test can lower it)
_LINE = -1  # label of the working frame's line-number column: header names are text, so none can collide


@dataclass(frozen=True, eq=False)
class Panel:
    """Series in canonical long form, as arrays: series i is rows starts[i]:starts[i+1], sorted by (id, ds), one
    row per step of `freq`, no NaN. pandas only at the edges: read_series builds a Panel from the reader's frame
    and to_frame() gives one back.

    ids: (n_series,) object array of str, sorted. Not a fixed-width unicode array: that would make every id as
        wide as the longest (one 1 MB id among 300 series: 1.2 GB).
    ds: (n_rows,) datetime64[ns] or int64 (integer periods).
    values: (n_rows, 1 + n_covariates) float64, the target then covariate i (named covariates[i]); column-major
        (each column contiguous, as the reader's frame held them: reductions give the same bits).
    starts: (n_series + 1,) int64 row offsets.
    """

    ids: np.ndarray
    ds: np.ndarray
    values: np.ndarray
    starts: np.ndarray
    freq: str
    covariates: tuple[str, ...]
    columns: dict  # the user's names: {"id": ..., "time": ..., "target": ...}
    layout: str
    source: str
    missing_timestamps: np.ndarray  # (n_series,) rows added to close gaps in the timestamps
    missing_values: np.ndarray  # (n_series,) empty or NaN cells in the rows the file had
    fill: str = "interpolate"  # the policy that filled them
    notes: tuple[str, ...] = ()
    future_covariates: tuple[str, ...] = ()  # the last of `covariates`, known over the horizon at forecast time
    future: Future | None = None  # their values in the rows after each series' last target value (trailing rows)
    holidays: str | None = None  # --holidays: a holiday indicator joins the model inputs (timeindex.holiday_features)
    static: tuple[str, ...] = ()  # --static: columns with one value per series (static.py encodes them)
    static_values: np.ndarray | None = None  # (n_series, len(static)) object array of str, their values

    def __post_init__(self):
        object.__setattr__(self, "values", np.asfortranarray(self.values))  # (no copy when it is already)

    @property
    def lengths(self) -> np.ndarray:
        """(n_series,) rows of each series."""
        return np.diff(self.starts)

    def select(self, mask: np.ndarray) -> Panel:
        """The series where `mask` (n_series,) bool is True, with their rows and per-series counts."""
        return self._keep_rows(np.repeat(np.asarray(mask, bool), self.lengths))

    def truncate(self, drop: int) -> Panel:
        """Without the last `drop` rows of each series; series left with no rows are removed."""
        return self._keep_rows(self._from_end() > drop)

    def tail(self, rows: int) -> Panel:
        """The last `rows` rows of each series (all of a shorter one)."""
        return self._keep_rows(self._from_end() <= rows)

    def last_windows(self, lookback: int, target_only: bool = False) -> features.History:
        """The last `lookback` rows of each series (features.last_windows), of the target alone if asked."""
        values = self.values[:, :1] if target_only else self.values
        return features.last_windows(self.ids, values, self.ds, self.starts, lookback)

    def first_not_positive(self) -> str | None:
        """Where the target first is 0 or below, in words for a message ("series 'A' has -1 on 2024-01-05
        00:00:00 in column 'y'"), or None when every value is above 0."""
        bad = self.values[:, 0] <= 0
        if not bad.any():
            return None
        row = int(np.argmax(bad))
        sid = self.ids[np.searchsorted(self.starts, row, side="right") - 1]
        column = self.columns.get("target") or sid
        return f"series '{sid}' has {self.values[row, 0]:g} on {_fmt(self.ds[row])} in column '{column}'"

    def digests(self, rows: np.ndarray | None = None) -> np.ndarray:
        """(n_series,) uint64 digests of each series' first `rows[i]` rows (all by default): of every stamp and
        every column's value, bit for bit, at its position in the series. `forecast update` compares the digest
        of what a model was trained on with that of the same rows of fresh data to tell growth from revision."""
        if not len(self.ids):
            return np.zeros(0, np.uint64)
        limit = self.lengths if rows is None else np.asarray(rows)
        digest = np.empty(len(self.ds), np.uint64)
        for a in range(0, len(self.ds), _DIGEST_ROWS):  # a chunk at a time: 8 bytes a row in all
            b = min(a + _DIGEST_ROWS, len(self.ds))
            series = np.searchsorted(self.starts, np.arange(a, b), side="right") - 1
            position = np.arange(a, b) - self.starts[series]
            part = _mix(np.ascontiguousarray(self.ds[a:b]).view(np.uint64) ^ _mix(position.astype(np.uint64)))
            for column in range(self.values.shape[1]):
                part = _mix(part ^ np.ascontiguousarray(self.values[a:b, column]).view(np.uint64))
            digest[a:b] = np.where(position < limit[series], part, np.uint64(0))
        return np.add.reduceat(digest, self.starts[:-1])

    def to_frame(self) -> pd.DataFrame:
        """Long frame for the edges (plots, merges with forecasts): unique_id, ds, y, then covariate i under the
        integer label i (a user's column may be called anything, "y" included; its name is covariates[i])."""
        covariates = {i: self.values[:, 1 + i] for i in range(len(self.covariates))}
        return pd.DataFrame({"unique_id": np.repeat(self.ids, self.lengths), "ds": self.ds, "y": self.values[:, 0],
                             **covariates})

    def without_covariates(self) -> Panel:
        """The target alone (`evaluate --compare-covariates`)."""
        return replace(self, values=self.values[:, :1], covariates=(), future_covariates=(), future=None,
                       holidays=None, static=(), static_values=None)

    def _from_end(self) -> np.ndarray:
        """(n_rows,) each row's position counted from the end of its series: 1 for the last row."""
        return np.repeat(self.starts[1:], self.lengths) - np.arange(len(self.ds))

    def _keep_rows(self, keep: np.ndarray) -> Panel:
        """The rows where `keep` (n_rows,) bool is True; series left with none are removed."""
        ends = np.concatenate([[0], np.cumsum(keep)])[self.starts]  # new row offsets, empty series included
        kept = np.diff(ends) > 0
        values = self.values.T[:, keep].T  # (column-major still: indexing the rows of the transpose)
        static = self.static_values[kept] if self.static_values is not None else None
        return replace(self, ids=self.ids[kept], ds=self.ds[keep], values=values, static_values=static,
                       starts=np.concatenate([[0], ends[1:][kept]]).astype(np.int64),
                       missing_timestamps=self.missing_timestamps[kept], missing_values=self.missing_values[kept])


_DIGEST_ROWS = 1 << 20  # rows digested at a time


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser over uint64 arrays (their products wrap, as it wants)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def read_series(source: str | Path, config: DataConfig | None = None, expect_freq: str | None = None) -> Panel:
    """Read a CSV file (or "-" for stdin) into a validated Panel. Raises DataError or ConfigError.

    expect_freq: the frequency the data must have (fresh data for a trained model): the data's own frequency
    is inferred, config.freq notwithstanding, and a different one is refused rather than resampled; series of a
    single row take it.
    """
    config = config or DataConfig()
    given = config
    for cov in config.future_covariates:
        if cov in config.covariates:
            raise ConfigError(f"'{_clip(cov)}' is in both --covariates and --future-covariates; a column is one or "
                              "the other")
    config = replace(config, covariates=config.covariates + config.future_covariates, future_covariates=())
    if config.fill not in FILL_POLICIES:
        raise ConfigError(f"Unknown --fill '{_clip(config.fill)}'; choose one of {', '.join(FILL_POLICIES)}.")
    if config.layout is not None and config.layout not in LAYOUTS:
        raise ConfigError(f"Unknown --layout '{_clip(config.layout)}'; choose one of {', '.join(LAYOUTS)}.")
    twice = [c for i, c in enumerate(config.static) if c in config.static[:i]]
    if twice:
        raise ConfigError(f"--static names '{_clip(twice[0])}' twice")
    twice = [c for i, c in enumerate(config.covariates) if c in config.covariates[:i]]
    if twice:
        raise ConfigError(f"--covariates names '{_clip(twice[0])}' twice")
    sep = _check_dialect(config)
    if str(source).lower().endswith(".parquet"):
        name, table = read_parquet(source, lambda header: _id_column(header, config))
    else:
        name, raw = read_text(source)
        table = parse_csv(name, raw, lambda header: _id_column(header, config), sep, config.decimal,
                          config.thousands)
        del raw  # each stage lets go of the one before: the peak is about two copies of the table, not five
    layout, id_col, time_col, targets, notes = _resolve_columns(name, table, config, given.future_covariates)
    if config.static and layout == "wide":
        raise ConfigError("--static takes one value per series from a column, which needs the long (or single) "
                          "layout; the wide layout has a column per series")
    time_sep = _time_separator(table[time_col])
    long, rank = _to_long(name, table, layout, id_col, time_col, targets, config)
    del table
    long = _sorted(long, rank)
    _check_duplicates(name, long, time_col)
    long, static_values = _static_values(name, long, config.static)
    freq = _resolve_freq(name, long, config.freq, expect_freq)
    if config.holidays:
        timeindex.check_holidays(config.holidays, freq)
    long, missing_timestamps, aggregated = _regularize(name, long, freq)
    if aggregated:
        notes.append(f"values were averaged into --freq {freq} periods")
    value_columns = ["y", *range(len(config.covariates))]
    future = None
    if given.future_covariates:
        long, future, added = _split_future(name, long, given)
        missing_timestamps = missing_timestamps - added
        if future is not None:
            notes.append(f"{len(future.ds):,} row(s) after the last target value of {len(future.ids):,} series "
                         "hold the future covariates over the horizon (they are not trained on)")
    starts = _bounds(long)
    nan_cells = long[value_columns].isna().sum(axis=1).to_numpy()
    missing_values = np.add.reduceat(nan_cells, starts[:-1]) - missing_timestamps * len(value_columns)
    target = targets[0] if layout != "wide" else None
    long = _fill(name, long, config.fill, time_col, target, config.covariates)
    columns = {"id": id_col, "time": time_col, "target": target, **({"time_sep": "T"} if time_sep == "T" else {})}
    values = np.empty((len(long), len(value_columns)), np.float64, order="F")  # column by column: the one copy
    for i, column in enumerate(value_columns):
        values[:, i] = long[column].to_numpy(np.float64)
    return Panel(
        ids=np.array(long["unique_id"].take(starts[:-1]).tolist(), dtype=object),
        ds=long["ds"].to_numpy(),
        values=values,
        starts=starts,
        freq=freq,
        covariates=tuple(config.covariates),
        columns=columns,
        layout=layout,
        source=name,
        missing_timestamps=missing_timestamps,
        missing_values=missing_values,
        fill=config.fill,
        notes=tuple(notes),
        future_covariates=tuple(given.future_covariates),
        future=future,
        holidays=config.holidays,
        static=tuple(config.static),
        static_values=static_values,
    )


def _split_future(name: str, long: pd.DataFrame, config: DataConfig) -> tuple[pd.DataFrame, Future | None,
                                                                              np.ndarray]:
    """(the rows up to each series' last target value, a Future of the rows after it, (n_series,) how many of
    those were added to close gaps). Those trailing rows are the horizon's future covariates: a target left
    empty there is not a missing value (one between two values is, and is filled)."""
    bounds = _bounds(long)
    y = long["y"].to_numpy(np.float64)
    position = np.where(np.isnan(y), -1, np.arange(len(y)))
    last = np.maximum.reduceat(position, bounds[:-1]) if len(y) else np.zeros(0, np.int64)
    last = np.where(last >= bounds[:-1], last, bounds[1:] - 1)  # no target at all: _fill names the series
    trailing = np.arange(len(y)) > np.repeat(last, np.diff(bounds))
    added = np.add.reduceat(trailing & long[_LINE].isna().to_numpy(), bounds[:-1]) if len(y) else \
        np.zeros(0, np.int64)
    if not trailing.any():
        return long, None, added
    n_past = len(config.covariates)
    rows = long[trailing]
    ids = rows["unique_id"].to_numpy()
    cuts = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    starts = np.concatenate([[0], cuts, [len(ids)]]).astype(np.int64)
    values = rows[list(range(n_past, n_past + len(config.future_covariates)))].to_numpy(np.float64)
    future = Future(np.array(ids[starts[:-1]].tolist(), dtype=object), rows["ds"].to_numpy(), values, starts,
                    tuple(config.future_covariates), f"{name} (its rows after the last target value)")
    return long[~trailing].reset_index(drop=True), future, added


def read_future(source: str | Path, config: DataConfig, columns: dict, freq: str) -> Future:
    """`--future FILE`: the future covariates `config.future_covariates` by series (the id column
    columns["id"], none for a single-series or wide model: the same values for every series) and time
    (columns["time"]), at frequency `freq`, as the training data was read. Other columns are ignored; a
    target column may be there, empty or not."""
    name, raw = read_text(source)
    id_col, time_col = columns.get("id"), columns["time"]
    table = parse_csv(name, raw, lambda header: id_col, _check_dialect(config), config.decimal, config.thousands)
    del raw
    header = list(table.columns)
    _require(name, header, time_col, "the model's time column")
    if id_col is not None:
        _require(name, header, id_col, "the model's series id column")
    for cov in config.future_covariates:
        _require(name, header, cov, "--future-covariates")
    ds = _times(name, table, time_col, config.date_format)
    values = {i: _numbers(name, table, c, config) for i, c in enumerate(config.future_covariates)}
    if id_col is not None:
        ids, rank = _ids(name, table, id_col)
    else:
        ids, rank = np.full(len(table), "", dtype=object), np.zeros(len(table), np.int64)
    long = _sorted(pd.DataFrame({"unique_id": ids, "ds": ds, **values, _LINE: table.index.to_numpy() + 2}), rank)
    del table
    _check_duplicates(name, long, time_col)
    if len(long):
        _resolve_freq(name, long, None, freq)  # another frequency than the model's: refused, not matched by stamp
    starts = _bounds(long) if len(long) else np.zeros(1, np.int64)
    matrix = long[list(range(len(config.future_covariates)))].to_numpy(np.float64)
    series = np.array(long["unique_id"].to_numpy()[starts[:-1]].tolist(), dtype=object)
    return Future(series if id_col is not None else None, long["ds"].to_numpy(), matrix, starts,
                  tuple(config.future_covariates), name)


def _check_dialect(config: DataConfig) -> str | None:
    """ConfigError for a --sep, --decimal, --thousands or --date-format that cannot work; the delimiter itself
    (--sep tab is a tab)."""
    if config.sep is not None and config.sep not in SEPARATORS:
        raise ConfigError(f"Unknown --sep '{_clip(config.sep)}'; choose ',', ';', tab (or \\t) or '|'")
    sep = SEPARATORS.get(config.sep) if config.sep is not None else None
    if config.decimal not in DECIMALS:
        raise ConfigError(f"Unknown --decimal '{_clip(config.decimal)}'; choose . or ,")
    if config.thousands is not None and config.thousands not in THOUSANDS:
        raise ConfigError(f"Unknown --thousands '{_clip(config.thousands)}'; choose one of "
                          f"{', '.join(repr(t) for t in THOUSANDS)}")
    if config.thousands == config.decimal:
        raise ConfigError(f"--thousands '{config.thousands}' is also the --decimal mark; they must differ")
    if config.date_format is not None and config.date_format != "dayfirst" and "%" not in config.date_format:
        raise ConfigError(f"--date-format '{_clip(config.date_format)}': expected a strftime format such as "
                          "%d/%m/%Y, or dayfirst")
    return sep


def _find(columns: list[str], candidates: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in columns}
    return next((lower[c] for c in candidates if c in lower), None)


def _id_column(header: list[str], config: DataConfig) -> str | None:
    """The series id column among the header's names, as _resolve_columns will choose it, if there is one."""
    if config.id_col:
        return config.id_col
    if config.layout not in (None, "long"):
        return None
    return _find([h for h in header if h not in config.covariates and h not in config.static], ID_NAMES)


def _require(name: str, columns: list[str], column: str, flag: str) -> str:
    if column not in columns:
        shown = ", ".join(_clip(c) for c in columns[:20]) + (f" and {len(columns) - 20} more" if len(columns) > 20
                                                            else "")
        raise DataError(f"{name}: column '{_clip(column)}' (from {flag}) not found; the columns are: {shown}")
    return column


def _resolve_columns(name: str, table: pd.DataFrame, config: DataConfig, future: tuple[str, ...] = ()):
    """Decide the layout and which columns are id, time, target(s) and covariates (the `future` ones among them
    given by --future-covariates)."""
    columns = list(table.columns)
    for cov in config.covariates:
        _require(name, columns, cov, "--future-covariates" if cov in future else "--covariates")
    for column in config.static:
        _require(name, columns, column, "--static")
        if column in config.covariates:
            raise ConfigError(f"'{_clip(column)}' is in both --static and --covariates or --future-covariates; a "
                              "column is one of them")
    free = [c for c in columns if c not in config.covariates and c not in config.static]  # auto-detection's
    if config.time_col:
        time_col = _require(name, columns, config.time_col, "--time-col")
    else:
        time_col = _find(free, TIME_NAMES) or free[0] if free else columns[0]
    id_col = None
    if config.id_col:
        id_col = _require(name, columns, config.id_col, "--id-col")
    elif config.layout in (None, "long"):
        id_col = _find(free, ID_NAMES)
    layout = config.layout or ("long" if id_col else None)
    if layout == "long" and id_col is None:
        raise DataError(f"{name}: long layout needs a series id column; name it with --id-col")
    for role, column in (("time", time_col), ("series id", id_col), ("target", config.target)):
        if column in config.covariates:
            raise ConfigError(f"--covariates: '{_clip(column)}' is the {role} column; a covariate is another column")
        if column in config.static:
            raise ConfigError(f"--static: '{_clip(column)}' is the {role} column; a static covariate is another "
                              "column")
    taken = {time_col, id_col, *config.covariates, *config.static}
    rest = [c for c in columns if c not in taken]
    notes: list[str] = []
    if config.target:
        target = _require(name, columns, config.target, "--target")
        if layout == "wide":
            raise ConfigError("--target picks one series; it cannot be combined with --layout wide")
        return layout or "single", id_col, time_col, [target], notes
    if layout == "long":
        target = _find(rest, TARGET_NAMES) or (rest[0] if len(rest) == 1 else None)
        if target is None:
            raise DataError(f"{name}: cannot tell which column is the target; pass --target (columns: "
                            f"{', '.join(_clip(c) for c in rest[:20]) or 'none left'})")
        return layout, id_col, time_col, [target], notes
    numeric = [c for c in rest if _mostly_numeric(table[c])]
    for c in rest:
        if c not in numeric:
            notes.append(f"ignored column '{_clip(c)}': it holds no numbers")
    if not numeric:
        raise DataError(f"{name}: no numeric value column besides time column '{_clip(time_col)}' "
                        f"({_read_as(table, config)}; columns: {', '.join(_clip(c) for c in rest[:20]) or 'none'})"
                        f"{_number_hint(table[rest[0]], config) if rest else ''}")
    if layout is None:
        layout = "single" if len(numeric) == 1 else "wide"
    if layout == "single" and len(numeric) > 1:
        target = _find(numeric, TARGET_NAMES) or numeric[0]
        notes.append(f"single-series layout: forecasting '{_clip(target)}', ignoring {len(numeric) - 1} other "
                     "column(s)")
        return layout, None, time_col, [target], notes
    return layout, None, time_col, numeric, notes


def _read_as(table: pd.DataFrame, config: DataConfig) -> str:
    """How the table was read, for messages: "read as ';'-separated with '.' decimals"."""
    sep = table.attrs.get("sep")
    how = f"read as {describe_sep(sep)}-separated with" if sep else "read with"
    return how + f" '{config.decimal}' decimals" + (f" and '{config.thousands}' thousands" if config.thousands else "")


_DECIMAL_COMMA = re.compile(r"\s*[+-]?\d+,\d+\s*")
_GROUPED = re.compile(r"\s*[+-]?\d{1,3}([,. ']\d{3})+([.,]\d+)?\s*")


def _number_hint(column: pd.Series, config: DataConfig) -> str:
    """'; values such as '18,3' need --decimal ,' where the column's first text looks like a number written
    another way; else ''."""
    texts = column.dropna()
    if texts.empty:
        return ""
    sample = str(texts.iloc[0])
    if config.decimal == "." and _DECIMAL_COMMA.fullmatch(sample) and not _GROUPED.fullmatch(sample):
        return f"; values such as '{_clip(sample)}' need --decimal ,"
    if config.thousands is None and _GROUPED.fullmatch(sample):
        mark = next(c for c in sample.strip().lstrip("+-") if not c.isdigit())
        return f"; values such as '{_clip(sample)}' need --thousands '{mark}'"
    return ""


def _mostly_numeric(column: pd.Series) -> bool:
    """A column with at least one number; fully textual columns (labels) are not series."""
    if pd.api.types.is_numeric_dtype(column):
        return True
    return bool(pd.to_numeric(column, errors="coerce").notna().any())


def _numbers(name: str, table: pd.DataFrame, column: str, config: DataConfig) -> np.ndarray:
    """A value column as float64: every cell a number within +-MAX_ABS_VALUE, or missing (NaN)."""
    raw = table[column]
    values = raw if pd.api.types.is_numeric_dtype(raw) else pd.to_numeric(raw, errors="coerce")
    suspect = values.isna() & raw.notna()  # text that is not a number, or only blanks (a missing value)
    bad = suspect[suspect] & (raw[suspect].astype(str).str.strip() != "")
    if bad.any():
        row = bad.idxmax()
        hint = _number_hint(raw[[row]], config)
        raise DataError(f"{name}: column '{_clip(column)}', line {row + 2}: '{_clip(raw[row])}' is not a number"
                        + (f" ({_read_as(table, config)}){hint}" if hint else ""))
    values = values.to_numpy(np.float64)
    huge = np.abs(values) > MAX_ABS_VALUE  # infinities too (NaN compares False)
    if huge.any():
        at = int(np.argmax(huge))
        row = table.index[at]
        what = "infinite value" if np.isinf(values[at]) else "value"
        raise DataError(f"{name}: column '{_clip(column)}', line {row + 2}: {what} '{_clip(raw[row])}' is beyond "
                        f"+-{MAX_ABS_VALUE:g}, the largest magnitude forecast handles; rescale the column")
    return values


_INTEGER = re.compile(r"\s*[+-]?\d+\s*")
_SLASHED = re.compile(r"\s*\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}\b.*")  # 03/09/2015: which is the day is unknown


def _time_separator(raw: pd.Series) -> str:
    """"T" when the file writes its stamps ISO 8601 with a T between date and time (2024-01-31T13:00), else " ":
    forecasts are written the same way (columns["time_sep"])."""
    sample = raw.head(1000).astype(str)
    return "T" if sample.str.match(r"\s*\d{4}-\d\d-\d\dT\d").any() else " "


def _times(name: str, table: pd.DataFrame, column: str, date_format: str | None = None) -> np.ndarray:
    """The time column as datetime64[ns] or int64 (integer periods), every stamp within the representable
    range (datetime64[ns] would wrap an earlier or later one silently: 0001-01-01 became 1754-08-30)."""
    raw = table[column]
    where = f"{name}: column '{_clip(column)}'"
    if raw.isna().any():
        row = raw.isna().idxmax()
        raise DataError(f"{where}, line {row + 2}: missing timestamp")
    if pd.api.types.is_integer_dtype(raw) and date_format is None:
        values = raw.to_numpy()
        out = values > timeindex.MAX_PERIOD
        if values.dtype.kind == "i":
            out |= values < -timeindex.MAX_PERIOD
        if out.any():
            raise DataError(_period_out_of_range(where, table.index[int(np.argmax(out))], raw))
        return values.astype(np.int64)
    # Parse each distinct text once: a panel repeats the same few thousand stamps in every series (5 million
    # rows of 10,000 daily series hold 500 dates), and parsing is the slow part.
    codes, distinct = pd.factorize(raw)
    texts = pd.Index(distinct.astype(str)).str.strip()
    if date_format == "dayfirst":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "could not infer format": each is parsed alone
            stamps = pd.to_datetime(texts, dayfirst=True, errors="coerce", utc=True)
    else:
        stamps = pd.to_datetime(texts, format=date_format or "ISO8601", errors="coerce", utc=True)
    if stamps.isna().any():
        row = raw.index[int(np.argmax(stamps.isna()[codes]))]
        if date_format is not None:
            raise DataError(f"{where}, line {row + 2}: '{_clip(raw[row])}' does not match --date-format "
                            f"{_clip(date_format)}")
        if _INTEGER.fullmatch(str(raw[row])):
            raise DataError(_period_out_of_range(where, row, raw))
        hint = ("; for day/month/year pass --date-format %d/%m/%Y (or dayfirst), for month/day/year "
                "--date-format %m/%d/%Y" if _SLASHED.fullmatch(str(raw[row])) else "")
        raise DataError(
            f"{where}, line {row + 2}: '{_clip(raw[row])}' is not a date or time "
            f"(expected ISO 8601 such as 2024-01-31 or 2024-01-31T13:00, or an integer period such as 1990){hint}"
        )
    stamps = stamps.tz_convert(None)
    out = (stamps < pd.Timestamp.min) | (stamps > pd.Timestamp.max)
    if out.any():
        row = raw.index[int(np.argmax(out[codes]))]
        raise DataError(f"{where}, line {row + 2}: date '{_clip(raw[row])}' is outside the dates forecast can "
                        f"represent, {timeindex.FIRST_DATE} to {timeindex.LAST_DATE}")
    stamps = stamps.as_unit("ns")
    first, last = stamps.argmin(), stamps.argmax()  # differences of stamps are int64 nanoseconds: 292 years
    if int(stamps[last].value) - int(stamps[first].value) > timeindex.LAST_NS:
        lines = [raw.index[int(np.argmax(codes == i))] + 2 for i in (first, last)]
        raise DataError(f"{where}: the dates span more than 292 years ({_fmt(stamps[first])} on line {lines[0]} "
                        f"to {_fmt(stamps[last])} on line {lines[1]}), more than forecast can represent")
    return stamps.to_numpy()[codes]


def _period_out_of_range(where: str, row, raw: pd.Series) -> str:
    return (f"{where}, line {row + 2}: integer period '{_clip(raw[row])}' is outside the periods forecast can "
            f"represent, -{timeindex.MAX_PERIOD:,} to {timeindex.MAX_PERIOD:,}")


def _ids(name: str, table: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """(the id column as stripped text, each row's rank among the distinct ids). Each distinct value is
    checked and stripped once (a panel's ids repeat on every row), and the ranks let rows be sorted as
    integers. An empty (or blank) cell is a missing id; an id has at most MAX_ID_CHARS characters."""
    raw = table[column]
    codes, distinct = pd.factorize(raw)  # (a missing cell has code -1)
    stripped = pd.Index(distinct.astype(str)).str.strip()
    blank = np.append(stripped.str.len().to_numpy() == 0, True)  # [-1]: the missing cells
    long = stripped.str.len().to_numpy() > MAX_ID_CHARS
    where = f"{name}: column '{_clip(column)}'"
    if blank[codes].any():
        raise DataError(f"{where}, line {raw.index[int(np.argmax(blank[codes]))] + 2}: missing series id")
    if long.any():  # (no code is -1 now)
        at = int(np.argmax(long[codes]))
        raise DataError(f"{where}, line {raw.index[at] + 2}: a series id of {len(stripped[codes[at]]):,} characters; "
                        f"forecast takes at most {MAX_ID_CHARS:,}")
    rank, names = pd.factorize(stripped, sort=True)
    return names.to_numpy(object)[rank[codes]], rank[codes]


def _to_long(name, table, layout, id_col, time_col, targets, config) -> tuple[pd.DataFrame, np.ndarray]:
    """(the long working frame: unique_id, ds, y, covariate i under label i, the file's line under _LINE;
    each row's series rank, for sorting). Takes the time and id columns out of `table` once converted."""
    ds = _times(name, table, time_col, config.date_format)
    table.pop(time_col)  # (each column let go once converted: the caller has no more use for the table)
    covs = {i: _numbers(name, table, c, config) for i, c in enumerate(config.covariates)}
    lines = table.index.to_numpy() + 2
    static = {_static_label(i): _texts(table[c]) for i, c in enumerate(config.static)}
    if layout == "long":
        ids, rank = _ids(name, table, id_col)
        table.pop(id_col)
        frame = pd.DataFrame({"unique_id": ids, "ds": ds, "y": _numbers(name, table, targets[0], config), **covs,
                              **static, _LINE: lines}, copy=False)  # (a copy would double the rows' bytes)
        return frame, rank
    too_long = [t for t in targets if len(t) > MAX_ID_CHARS]  # wide: each value column's name is a series id
    if too_long:
        raise DataError(f"{name}: line 1: a column name of {len(too_long[0]):,} characters, too long for a series "
                        f"id; forecast takes at most {MAX_ID_CHARS:,}")
    k = len(targets)
    frame = pd.DataFrame(
        {
            "unique_id": np.repeat(np.asarray(targets, dtype=object), len(table)),
            "ds": np.tile(ds, k),
            "y": np.concatenate([_numbers(name, table, t, config) for t in targets]),
            **{i: np.tile(v, k) for i, v in covs.items()},
            **{label: np.tile(v, k) for label, v in static.items()},
            _LINE: np.tile(lines, k),
        }
    )
    order = sorted(range(k), key=targets.__getitem__)
    return frame, np.repeat(np.argsort(order), len(table))


def _static_label(i: int) -> int:
    """The working frame's label of --static column i: below _LINE, so no other label can collide."""
    return _LINE - 1 - i


def _texts(column: pd.Series) -> np.ndarray:
    """A column as stripped text (object array), None where a cell is empty."""
    text = column.astype("string").str.strip()
    return text.where(text.str.len() > 0).to_numpy(object, na_value=None)


def _static_values(name: str, long: pd.DataFrame, static: tuple[str, ...]) -> tuple[pd.DataFrame, np.ndarray | None]:
    """(the frame without its --static columns, (n_series, len(static)) their one value per series). DataError
    naming the column and the lines where a series has two values, or the series that has none."""
    if not static:
        return long, None
    bounds = _bounds(long)
    ids, lines = long["unique_id"].to_numpy(), long[_LINE].to_numpy()
    out = np.empty((len(bounds) - 1, len(static)), dtype=object)
    for i, column in enumerate(static):
        codes, uniques = pd.factorize(long[_static_label(i)].to_numpy(object))  # (an empty cell: -1)
        lo = np.minimum.reduceat(np.where(codes >= 0, codes, np.iinfo(np.int64).max), bounds[:-1])
        hi = np.maximum.reduceat(codes, bounds[:-1])
        if (hi < 0).any():
            at = bounds[int(np.argmax(hi < 0))]
            raise DataError(f"{name}: column '{_clip(column)}': series '{_clip(ids[at])}' has no value in this "
                            "--static column")
        if (lo != hi).any():
            k = int(np.argmax(lo != hi))
            part = codes[bounds[k]:bounds[k + 1]]
            first = bounds[k] + int(np.argmax(part >= 0))
            other = bounds[k] + int(np.argmax((part >= 0) & (part != codes[first])))
            raise DataError(f"{name}: column '{_clip(column)}', line {int(lines[other])}: series '{_clip(ids[first])}' "
                            f"has '{_clip(uniques[codes[other]])}' here but '{_clip(uniques[codes[first]])}' on line "
                            f"{int(lines[first])}; a --static column holds one value per series")
        out[:, i] = np.asarray(uniques, dtype=object)[lo]
    return long.drop(columns=[_static_label(i) for i in range(len(static))]), out


def _sorted(long: pd.DataFrame, rank: np.ndarray) -> pd.DataFrame:
    """Rows by series id (as ranked), then time (rows that tie keep their order in the file). Sorts integers,
    and not at all when the file was in order already (a string sort of 50 million rows took 11 s). Takes the
    columns out of `long` as it goes: the caller keeps only the frame returned."""
    ds = long["ds"].to_numpy()
    if np.all((rank[1:] > rank[:-1]) | ((rank[1:] == rank[:-1]) & (ds[1:] >= ds[:-1]))):
        return long
    order = np.lexsort((ds, rank))
    del ds
    # column by column into a new frame, each old column let go as soon as it is taken: the peak is the frame
    # and one column, where long.take held two frames (100 million rows: 3 GB more)
    columns = {}
    for label in list(long.columns):
        columns[label] = long.pop(label).to_numpy()[order]
    return pd.DataFrame(columns, index=long.index.take(order), copy=False)


def _check_duplicates(name: str, long: pd.DataFrame, time_col: str) -> None:
    """Two rows with the same series and time: after sorting they are neighbours. Names the first such row of
    the file and the next one like it."""
    ids, ds = long["unique_id"].to_numpy(), long["ds"].to_numpy()
    same = (ids[1:] == ids[:-1]) & (ds[1:] == ds[:-1])
    if same.any():
        lines = long[_LINE].to_numpy()
        pairs = np.flatnonzero(same)
        first = pairs[np.argmin(lines[pairs])]  # ties keep the file's order, so a group's first row is its earliest
        raise DataError(
            f"{name}: column '{_clip(time_col)}', lines {lines[first]} and {lines[first + 1]}: duplicate timestamp "
            f"{_fmt(ds[first])} in series '{_clip(ids[first])}'; each series needs one row per time"
        )


def _fmt(stamp) -> str:
    return str(pd.Timestamp(stamp)) if isinstance(stamp, (np.datetime64, pd.Timestamp)) else str(stamp)


def _bounds(long: pd.DataFrame) -> np.ndarray:
    """Row offsets of the series of a frame sorted by unique_id, shape (n_series + 1,)."""
    ids = long["unique_id"].to_numpy()
    cuts = np.flatnonzero(ids[1:] != ids[:-1]) + 1
    return np.concatenate([[0], cuts, [len(ids)]]).astype(np.int64)


def _segments(long: pd.DataFrame):
    bounds = _bounds(long)
    return long["unique_id"].to_numpy(), list(zip(bounds[:-1], bounds[1:], strict=True))


def _resolve_freq(name: str, long: pd.DataFrame, given: str | None, expect: str | None) -> str:
    """The panel's frequency: `expect` where the data's own (inferred) frequency is that, else `given`
    (--freq), else the inferred one."""
    is_int = np.issubdtype(long["ds"].dtype, np.integer)
    kind = "integer periods" if is_int else "dates"
    if expect is not None:
        expected = timeindex.check_freq(expect)
        if timeindex.is_int_freq(expected) != is_int:
            raise DataError(f"{name}: the time column holds {kind} but the model was trained on "
                            f"{timeindex.describe(expected)} ({expected}) data")
        found = _inferred_freq(name, long, single=expected)
        if found != expected:
            raise DataError(
                f"{name}: the data is {timeindex.describe(found)} ({found}) but the model is "
                f"{timeindex.describe(expected)} ({expected}); pass data at the model's frequency, or train a "
                "model on this data"
            )
        _check_single_rows(name, long, expected)
        return expected
    if given is not None:
        freq = timeindex.check_freq(given)
        if timeindex.is_int_freq(freq) != is_int:
            raise ConfigError(f"--freq {_clip(given)} does not suit the time column, which holds {kind}")
        return freq
    return _inferred_freq(name, long)


def _check_single_rows(name: str, long: pd.DataFrame, freq: str) -> None:
    """A series of one row takes the model's frequency: its stamp must lie on that grid (a Sunday for W-SUN),
    since its value is not to be averaged into a period."""
    bounds = _bounds(long)
    singles = bounds[:-1][np.diff(bounds) == 1]
    ds = long["ds"].to_numpy()
    for stamp in np.unique(ds[singles]):
        if not timeindex.on_grid(np.array([stamp]), freq):
            at = singles[np.flatnonzero(ds[singles] == stamp)[0]]
            raise DataError(
                f"{name}: series '{_clip(long['unique_id'].iat[at])}' has one row, at {_fmt(stamp)}, which is "
                f"not a {timeindex.describe(freq)} ({freq}) stamp of the model; pass data at the model's frequency"
            )


def _inferred_freq(name: str, long: pd.DataFrame, single: str | None = None) -> str:
    """The one frequency of every series of more than one row; `single` where every series has one row."""
    ds = long["ds"].to_numpy()
    ids, segments = _segments(long)
    found: dict[str, str] = {}
    last = None
    seen: dict[bytes, str | None] = {}  # the series of a panel often share their stamps: decide each set once
    for start, end in segments:
        seg = ds[start:end]
        if len(seg) < 2:
            continue
        key = seg.tobytes()
        if key not in seen:
            seen[key] = last if last and timeindex.fits(seg, last) else timeindex.infer_freq(seg)
        freq = seen[key]
        if freq is None:
            raise DataError(
                f"{name}: cannot infer the frequency of series '{_clip(ids[start])}' from its timestamps "
                f"({_fmt(seg[0])}, {_fmt(seg[1])}, ...); pass --freq (for example D, h, W-SUN, MS)"
            )
        if timeindex.is_subsecond(freq):
            raise DataError(
                f"{name}: series '{_clip(ids[start])}' steps by less than a second ({_fmt(seg[0])}, "
                f"{_fmt(seg[1])}, ...); forecast handles steps of a second or more: pass --freq s or coarser"
            )
        found.setdefault(freq, ids[start])
        last = freq
    if not found:
        if single is not None:
            return single
        raise DataError(f"{name}: every series has a single row, so no frequency can be inferred; pass --freq")
    if len(found) > 1:
        (f1, s1), (f2, s2) = list(found.items())[:2]
        raise DataError(
            f"{name}: series of mixed frequency: '{_clip(s1)}' is {timeindex.describe(f1)} ({f1}) but "
            f"'{_clip(s2)}' is {timeindex.describe(f2)} ({f2}); pass --freq to put them all on one"
        )
    return next(iter(found))


def _regularize(name: str, long: pd.DataFrame, freq: str) -> tuple[pd.DataFrame, np.ndarray, bool]:
    """Put every series on a full grid at `freq` (averaging into periods where it is off the grid)."""
    bounds = _bounds(long)
    lengths = np.diff(bounds)
    step = _step(long["ds"].to_numpy(), freq)
    if step is not None:  # fixed steps: the grid's size is known without building it
        ns = long["ds"].to_numpy().view(np.int64)
        off = np.diff(ns)  # each row's step from the one before, in place: one int64 a row, not three
        np.remainder(off, step, out=off)
        off[bounds[1:-1] - 1] = 0  # (from another series' last row)
        if not off.any():  # every stamp on its series' grid
            sizes = (ns[bounds[1:] - 1] - ns[bounds[:-1]]) // step + 1
            if np.array_equal(sizes, lengths):  # sorted, on the grid, no duplicates: the rows are the grid
                return long.reset_index(drop=True), np.zeros(len(lengths), np.int64), False
    _check_grid_size(name, long, bounds, freq)
    ids, segments = _segments(long)
    ds = long["ds"].to_numpy()
    aggregated = not all(timeindex.on_grid(ds[s:e], freq) for s, e in segments)
    if aggregated:
        long = _aggregate(name, long, freq)
        ids, segments = _segments(long)
        ds = long["ds"].to_numpy()
        lengths = np.array([e - s for s, e in segments])
    grids = [timeindex.grid_between(ds[s], ds[e - 1], freq) for s, e in segments]
    sizes = np.array([len(g) for g in grids])
    grid = pd.DataFrame({"unique_id": np.repeat(ids[[s for s, _ in segments]], sizes),
                         "ds": np.concatenate(grids)})
    full = grid.merge(long, on=["unique_id", "ds"], how="left", sort=False)
    return full, sizes - lengths, aggregated


def _check_grid_size(name: str, long: pd.DataFrame, bounds: np.ndarray, freq: str) -> None:
    """Before any grid is built: filling the gaps may add at most as many rows as were read, or
    _MAX_ADDED_ROWS (three rows a few years apart at --freq s would otherwise ask for 100 million). Sizes are
    upper bounds for calendar frequencies (a month counted as its shortest)."""
    ds = long["ds"].to_numpy()
    span = ds[bounds[1:] - 1].view(np.int64) - ds[bounds[:-1]].view(np.int64)  # (fits: checked when read)
    step = _step(ds, freq) or int(timeindex.shortest_step(freq) / np.timedelta64(1, "s")) * 10**9
    sizes = span // step + 1
    added = int(sizes.sum(dtype=np.float64)) - len(long)  # (float: an int64 sum of 1e18-row grids would wrap)
    if added > max(len(long), _MAX_ADDED_ROWS):
        worst = int(np.argmax(sizes))
        raise DataError(
            f"{name}: at frequency {freq}, series '{_clip(long['unique_id'].iat[bounds[worst]])}' from "
            f"{_fmt(ds[bounds[worst]])} to {_fmt(ds[bounds[worst + 1] - 1])} needs about {int(sizes[worst]):,} rows "
            f"and has {int(bounds[worst + 1] - bounds[worst]):,}; filling the gaps would add {added:,} rows to the "
            f"{len(long):,} read, more than the {max(len(long), _MAX_ADDED_ROWS):,} allowed: check --freq and the "
            "timestamps"
        )


def _step(ds: np.ndarray, freq: str) -> int | None:
    """The step of a fixed frequency in the units of `ds` as int64 (periods, or nanoseconds), else None."""
    if timeindex.is_int_freq(freq):
        return timeindex.int_step(freq)
    step = timeindex.fixed_step(freq)
    return None if step is None else int(step / np.timedelta64(1, "s")) * 10**9  # (exact: whole seconds)


def _aggregate(name: str, long: pd.DataFrame, freq: str) -> pd.DataFrame:
    """The mean of each series' values in each period of `freq`, labelled by the period's stamp. Dates are
    grouped in microseconds (pandas' bins step past the last stamp, which overflows nanoseconds near 2262)."""
    values = long.drop(columns=_LINE)
    if timeindex.is_int_freq(freq):
        step = timeindex.int_step(freq)
        grouped = values.assign(ds=values["ds"] // step * step).groupby(["unique_id", "ds"], sort=True)
    else:
        values = values.assign(ds=values["ds"].dt.as_unit("us"))
        grouped = values.groupby(["unique_id", pd.Grouper(key="ds", freq=timeindex.to_offset(freq))], sort=True)
    out = grouped.mean().reset_index()
    if not timeindex.is_int_freq(freq):
        outside = (out["ds"] < pd.Timestamp.min) | (out["ds"] > pd.Timestamp.max)
        if outside.any():
            raise DataError(f"{name}: at --freq {freq}, a period would be labelled "
                            f"{_fmt(out['ds'][outside].iloc[0])}, outside the dates forecast can represent "
                            f"({timeindex.FIRST_DATE} to {timeindex.LAST_DATE}); use another --freq")
        out["ds"] = out["ds"].dt.as_unit("ns")
    out[_LINE] = np.nan
    return out


def _fill(name, long, policy, time_col, target, covariates) -> pd.DataFrame:
    """Fill the NaN cells by `policy`. target: the target column's name, None in the wide layout (where each
    series is a column, named by its id); covariates: the names of value columns 1, 2, ..."""
    value_columns = ["y", *range(len(covariates))]

    def label(column, series) -> str:
        return _clip((target or series) if column == "y" else covariates[column])

    mask = long[value_columns].isna()
    if not mask.to_numpy().any():
        return long
    ids, segments = _segments(long)
    present = np.add.reduceat((~mask).to_numpy(), _bounds(long)[:-1], axis=0)
    if (present == 0).any():
        series, col = np.argwhere(present == 0)[0]
        start, column = segments[series][0], value_columns[col]
        raise DataError(f"{name}: column '{label(column, ids[start])}': series '{_clip(ids[start])}' has no values "
                        "at all")
    if policy == "error":
        row = long[mask.any(axis=1)].iloc[0]
        if pd.isna(row[_LINE]):
            raise DataError(
                f"{name}: column '{_clip(time_col)}': series '{_clip(row['unique_id'])}' has no row for "
                f"{_fmt(row['ds'])} "
                "(a gap in the timestamps); use --fill interpolate, ffill or zero to fill it"
            )
        column = next(c for c in value_columns if pd.isna(row[c]))
        raise DataError(
            f"{name}: column '{label(column, row['unique_id'])}', line {int(row[_LINE])}: missing value in series "
            f"'{_clip(row['unique_id'])}'; "
            "use --fill interpolate, ffill or zero to fill it"
        )
    if policy == "zero":
        long[value_columns] = long[value_columns].fillna(0.0)
    elif policy == "ffill":
        filled = long.groupby("unique_id", sort=False)[value_columns].ffill()
        long[value_columns] = filled.groupby(long["unique_id"], sort=False).bfill()
    else:
        for column in value_columns:
            values = long[column].to_numpy(np.float64, copy=True)
            for start, end in segments:
                seg = values[start:end]
                holes = np.isnan(seg)
                if holes.any():
                    positions = np.arange(len(seg))
                    seg[holes] = np.interp(positions[holes], positions[~holes], seg[~holes])
            long[column] = values
    return long


def summarize(panel: Panel) -> pd.DataFrame:
    """One row per series: id, length, start, end, missing (filled) cells, min/mean/max of the target."""
    y = panel.values[:, 0]
    starts = panel.starts
    ds = panel.ds
    return pd.DataFrame(
        {
            "unique_id": panel.ids,
            "length": panel.lengths,
            "start": ds[starts[:-1]],
            "end": ds[starts[1:] - 1],
            "missing_timestamps": panel.missing_timestamps,
            "missing_values": panel.missing_values,
            "min": np.minimum.reduceat(y, starts[:-1]),
            "mean": np.add.reduceat(y, starts[:-1]) / panel.lengths,
            "max": np.maximum.reduceat(y, starts[:-1]),
        }
    )
