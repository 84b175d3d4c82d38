"""Read CSV series into the canonical long panel that every later step takes.

The canonical form follows Nixtla's convention: columns `unique_id`, `ds`, `y` (plus covariates), sorted by
series then time, on a regular grid at a known frequency, with every missing value filled by a stated policy.
Errors name the file, the column and the line (line 1 is the header).
"""

from __future__ import annotations

import codecs
import csv
import io
import sys
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from forecast_cli import timeindex
from forecast_cli.config import FILL_POLICIES, LAYOUTS, DataConfig
from forecast_cli.errors import ConfigError, DataError

ID_NAMES = ("unique_id", "id", "series", "series_id", "item_id")
TIME_NAMES = ("ds", "date", "time", "timestamp", "datetime", "period", "year")
TARGET_NAMES = ("y", "value", "target")


@dataclass(frozen=True)
class Panel:
    """Series in canonical long form.

    frame: columns unique_id (str), ds (datetime64[ns] or int64), y (float64), then the covariates
        (float64); sorted by (unique_id, ds); one row per step of `freq`; no NaN.
    """

    frame: pd.DataFrame
    freq: str
    covariates: tuple[str, ...]
    columns: dict  # the user's names: {"id": ..., "time": ..., "target": ...}
    layout: str
    source: str
    missing_timestamps: np.ndarray  # (n_series,) rows added to close gaps in the timestamps
    missing_values: np.ndarray  # (n_series,) empty or NaN cells in the rows the file had
    fill: str = "interpolate"  # the policy that filled them
    notes: tuple[str, ...] = ()

    @cached_property
    def starts(self) -> np.ndarray:
        """Row offsets of each series, shape (n_series + 1,): series i is rows starts[i]:starts[i+1]."""
        return _bounds(self.frame)

    @cached_property
    def ids(self) -> np.ndarray:
        return self.frame["unique_id"].to_numpy()[self.starts[:-1]].astype(str)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.starts)

    @cached_property
    def values(self) -> np.ndarray:
        """Target then covariates, shape (n_rows, 1 + n_covariates), float64."""
        return self.frame[["y", *self.covariates]].to_numpy(np.float64)

    @cached_property
    def ds(self) -> np.ndarray:
        return self.frame["ds"].to_numpy()


def read_series(source: str | Path, config: DataConfig | None = None) -> Panel:
    """Read a CSV file (or "-" for stdin) into a validated Panel. Raises DataError or ConfigError."""
    config = config or DataConfig()
    if config.fill not in FILL_POLICIES:
        raise ConfigError(f"Unknown --fill '{config.fill}'; choose one of {', '.join(FILL_POLICIES)}.")
    if config.layout is not None and config.layout not in LAYOUTS:
        raise ConfigError(f"Unknown --layout '{config.layout}'; choose one of {', '.join(LAYOUTS)}.")
    name, raw = _read_text(source)
    table = _parse_csv(name, raw)
    del raw  # each stage lets go of the one before: the peak is about two copies of the table, not five
    layout, id_col, time_col, targets, notes = _resolve_columns(name, table, config)
    long = _to_long(name, table, layout, id_col, time_col, targets, config.covariates)
    del table
    long = _sorted(long)
    _check_duplicates(name, long, time_col)
    freq = _resolve_freq(name, long, config.freq)
    long, missing_timestamps, aggregated = _regularize(long, freq)
    if aggregated:
        notes.append(f"values were averaged into --freq {freq} periods")
    value_columns = ["y", *config.covariates]
    nan_cells = long[value_columns].isna().sum(axis=1).to_numpy()
    missing_values = np.add.reduceat(nan_cells, _bounds(long)[:-1]) - missing_timestamps * len(value_columns)
    long = _fill(name, long, value_columns, config.fill, time_col, targets, layout)
    columns = {"id": id_col, "time": time_col, "target": targets[0] if layout != "wide" else None}
    return Panel(
        frame=long.drop(columns="line").reset_index(drop=True),
        freq=freq,
        covariates=tuple(config.covariates),
        columns=columns,
        layout=layout,
        source=name,
        missing_timestamps=missing_timestamps,
        missing_values=missing_values,
        fill=config.fill,
        notes=tuple(notes),
    )


def _read_text(source: str | Path) -> tuple[str, bytes]:
    """(name, the file's bytes), checked to be UTF-8 text. The bytes go to the parser as they are: a decoded
    copy in a StringIO would cost 4 bytes a character (CPython stores it as UCS-4), 6x the file in all."""
    if str(source) == "-":
        name, raw = "<stdin>", sys.stdin.buffer.read()
    else:
        path = Path(source)
        name = str(source)
        if not path.exists():
            raise DataError(f"{name}: no such file")
        if path.is_dir():
            raise DataError(f"{name}: is a directory, not a CSV file")
        raw = path.read_bytes()
    if b"\x00" in raw[:65536]:
        raise DataError(f"{name}: not a text file (it contains NUL bytes); expected UTF-8 CSV")
    if not raw.isascii():  # ASCII is UTF-8: only other text needs the decoding check (and its transient copy)
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise DataError(f"{name}: not UTF-8 text (invalid byte at offset {e.start}); save it as UTF-8 CSV") from e
    if not raw[:65536].strip() and not raw.strip():  # (strip copies: only when the head is all blank)
        raise DataError(f"{name}: the file is empty")
    return name, raw


def _parse_csv(name: str, raw: bytes) -> pd.DataFrame:
    """All columns as read by pandas; the index is shifted so that line = index + 2 (line 1 is the header)."""
    start = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    head = raw[start : start + 65536]
    start += len(head) - len(head.lstrip(b"\r\n"))
    skipped = raw[:start].count(b"\n")  # blank lines above the header
    first_line = raw[start : start + 65536].split(b"\n", 1)[0].decode("utf-8", errors="replace")
    header = [h.strip() for h in next(csv.reader(io.StringIO(first_line)), [])]
    id_like = [h for h in header if h.lower() in ID_NAMES]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", pd.errors.ParserWarning)  # a row longer than the header
            body = io.BytesIO(raw)  # shares the bytes, no copy
            body.seek(start)
            table = pd.read_csv(body, skip_blank_lines=False, index_col=False, encoding="utf-8",
                                dtype={h: str for h in id_like})
    except pd.errors.ParserWarning as e:
        raise DataError(f"{name}: line 2 has more fields than the header ({len(header)} columns)") from e
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as e:
        raise DataError(f"{name}: not a valid CSV table: {_clip(str(e), 120)}") from e
    table.index += skipped
    table.columns = [str(c).strip() for c in table.columns]
    table = table.dropna(how="all")  # blank lines
    if table.empty:
        raise DataError(f"{name}: has a header but no data rows")
    return table


def _clip(value, limit: int = 40) -> str:
    """A value as it can be shown inside a one-line message: control characters escaped, long ones cut."""
    text = str(value).replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t").strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _find(columns: list[str], candidates: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in columns}
    return next((lower[c] for c in candidates if c in lower), None)


def _require(name: str, columns: list[str], column: str, flag: str) -> str:
    if column not in columns:
        raise DataError(
            f"{name}: column '{column}' (from {flag}) not found; the columns are: {', '.join(columns)}"
        )
    return column


def _resolve_columns(name: str, table: pd.DataFrame, config: DataConfig):
    """Decide the layout and which columns are id, time, target(s) and covariates."""
    columns = list(table.columns)
    for cov in config.covariates:
        _require(name, columns, cov, "--covariates")
    if config.time_col:
        time_col = _require(name, columns, config.time_col, "--time-col")
    else:
        time_col = _find(columns, TIME_NAMES) or columns[0]
    id_col = None
    if config.id_col:
        id_col = _require(name, columns, config.id_col, "--id-col")
    elif config.layout in (None, "long"):
        id_col = _find(columns, ID_NAMES)
    layout = config.layout or ("long" if id_col else None)
    if layout == "long" and id_col is None:
        raise DataError(f"{name}: long layout needs a series id column; name it with --id-col")
    taken = {time_col, id_col, *config.covariates}
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
                            f"{', '.join(rest) or 'none left'})")
        return layout, id_col, time_col, [target], notes
    numeric = [c for c in rest if _mostly_numeric(table[c])]
    for c in rest:
        if c not in numeric:
            notes.append(f"ignored column '{c}': it holds no numbers")
    if not numeric:
        raise DataError(f"{name}: no numeric value column besides time column '{time_col}'")
    if layout is None:
        layout = "single" if len(numeric) == 1 else "wide"
    if layout == "single" and len(numeric) > 1:
        target = _find(numeric, TARGET_NAMES) or numeric[0]
        notes.append(f"single-series layout: forecasting '{target}', ignoring {len(numeric) - 1} other column(s)")
        return layout, None, time_col, [target], notes
    return layout, None, time_col, numeric, notes


def _mostly_numeric(column: pd.Series) -> bool:
    """A column with at least one number; fully textual columns (labels) are not series."""
    if pd.api.types.is_numeric_dtype(column):
        return True
    return bool(pd.to_numeric(column, errors="coerce").notna().any())


def _numbers(name: str, table: pd.DataFrame, column: str) -> np.ndarray:
    raw = table[column]
    values = raw if pd.api.types.is_numeric_dtype(raw) else pd.to_numeric(raw, errors="coerce")
    suspect = values.isna() & raw.notna()  # text that is not a number, or only blanks (a missing value)
    bad = suspect[suspect] & (raw[suspect].astype(str).str.strip() != "")
    if bad.any():
        row = bad.idxmax()
        raise DataError(f"{name}: column '{column}', line {row + 2}: '{_clip(raw[row])}' is not a number")
    values = values.to_numpy(np.float64)
    infinite = np.isinf(values)
    if infinite.any():
        row = table.index[int(np.argmax(infinite))]
        raise DataError(f"{name}: column '{column}', line {row + 2}: infinite value '{_clip(raw[row])}'")
    return values


def _times(name: str, table: pd.DataFrame, column: str) -> np.ndarray:
    raw = table[column]
    if raw.isna().any():
        row = raw.isna().idxmax()
        raise DataError(f"{name}: column '{column}', line {row + 2}: missing timestamp")
    if pd.api.types.is_integer_dtype(raw):
        return raw.to_numpy(np.int64)
    # Parse each distinct text once: a panel repeats the same few thousand stamps in every series (5 million
    # rows of 10,000 daily series hold 500 dates), and parsing is the slow part.
    codes, distinct = pd.factorize(raw)
    stamps = pd.to_datetime(pd.Index(distinct.astype(str)).str.strip(), format="ISO8601", errors="coerce", utc=True)
    if stamps.isna().any():
        row = raw.index[int(np.argmax(stamps.isna()[codes]))]
        raise DataError(
            f"{name}: column '{column}', line {row + 2}: '{_clip(raw[row])}' is not a date or time "
            "(expected ISO 8601 such as 2024-01-31 or 2024-01-31T13:00, or an integer period such as 1990)"
        )
    return stamps.tz_convert(None).to_numpy().astype("datetime64[ns]")[codes]


def _stripped(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(the column as stripped text, its rank among the distinct stripped values): each distinct value is
    stripped once (a panel's ids repeat on every row), and the ranks let rows be sorted as integers."""
    codes, distinct = pd.factorize(column)
    rank, names = pd.factorize(pd.Index(distinct.astype(str)).str.strip(), sort=True)
    return names.to_numpy(object)[rank[codes]], rank[codes]


def _to_long(name, table, layout, id_col, time_col, targets, covariates) -> pd.DataFrame:
    ds = _times(name, table, time_col)
    covs = {c: _numbers(name, table, c) for c in covariates}
    lines = table.index.to_numpy() + 2
    if layout == "long":
        ids = table[id_col]
        if ids.isna().any():
            row = ids.isna().idxmax()
            raise DataError(f"{name}: column '{id_col}', line {row + 2}: missing series id")
        ids, rank = _stripped(ids)
        return pd.DataFrame(
            {"unique_id": ids, "ds": ds, "y": _numbers(name, table, targets[0]), **covs, "line": lines,
             "rank": rank}
        )
    k = len(targets)
    return pd.DataFrame(
        {
            "unique_id": np.repeat(np.asarray(targets, dtype=object), len(table)),
            "ds": np.tile(ds, k),
            "y": np.concatenate([_numbers(name, table, t) for t in targets]),
            **{c: np.tile(v, k) for c, v in covs.items()},
            "line": np.tile(lines, k),
            "rank": np.repeat(np.argsort(np.argsort(np.asarray(targets, dtype=str), kind="stable")), len(table)),
        }
    )


def _sorted(long: pd.DataFrame) -> pd.DataFrame:
    """Rows by series id, then time (rows that tie keep their order in the file), without the "rank" column
    of the ids. Sorts integers, and not at all when the file was in order already (a string sort of 50 million
    rows took 11 s)."""
    rank, ds = long["rank"].to_numpy(), long["ds"].to_numpy()
    long = long.drop(columns="rank")
    if np.all((rank[1:] > rank[:-1]) | ((rank[1:] == rank[:-1]) & (ds[1:] >= ds[:-1]))):
        return long
    return long.take(np.lexsort((ds, rank)))


def _check_duplicates(name: str, long: pd.DataFrame, time_col: str) -> None:
    """Two rows with the same series and time: after sorting they are neighbours. Names the first such row of
    the file and the next one like it."""
    ids, ds = long["unique_id"].to_numpy(), long["ds"].to_numpy()
    same = (ids[1:] == ids[:-1]) & (ds[1:] == ds[:-1])
    if same.any():
        lines = long["line"].to_numpy()
        pairs = np.flatnonzero(same)
        first = pairs[np.argmin(lines[pairs])]  # ties keep the file's order, so a group's first row is its earliest
        raise DataError(
            f"{name}: column '{time_col}', lines {lines[first]} and {lines[first + 1]}: duplicate timestamp "
            f"{_fmt(ds[first])} in series '{ids[first]}'; each series needs one row per time"
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


def _resolve_freq(name: str, long: pd.DataFrame, given: str | None) -> str:
    ds = long["ds"].to_numpy()
    is_int = np.issubdtype(ds.dtype, np.integer)
    if given is not None:
        freq = timeindex.check_freq(given)
        if timeindex.is_int_freq(freq) != is_int:
            kind = "integer periods" if is_int else "dates"
            raise ConfigError(f"--freq {given} does not suit the time column, which holds {kind}")
        return freq
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
                f"{name}: cannot infer the frequency of series '{ids[start]}' from its timestamps "
                f"({_fmt(seg[0])}, {_fmt(seg[1])}, ...); pass --freq (for example D, h, W-SUN, MS)"
            )
        found.setdefault(freq, ids[start])
        last = freq
    if not found:
        raise DataError(f"{name}: every series has a single row, so no frequency can be inferred; pass --freq")
    if len(found) > 1:
        (f1, s1), (f2, s2) = list(found.items())[:2]
        raise DataError(
            f"{name}: series of mixed frequency: '{s1}' is {timeindex.describe(f1)} ({f1}) but '{s2}' is "
            f"{timeindex.describe(f2)} ({f2}); pass --freq to put them all on one"
        )
    return next(iter(found))


def _regularize(long: pd.DataFrame, freq: str) -> tuple[pd.DataFrame, np.ndarray, bool]:
    """Put every series on a full grid at `freq` (averaging into periods where it is off the grid)."""
    bounds = _bounds(long)
    lengths = np.diff(bounds)
    step = _step(long["ds"].to_numpy(), freq)
    if step is not None:  # fixed steps: the grid's size is known without building it
        ns = long["ds"].to_numpy().view(np.int64)
        first = np.repeat(ns[bounds[:-1]], lengths)
        if np.all((ns - first) % step == 0):
            sizes = (ns[bounds[1:] - 1] - ns[bounds[:-1]]) // step + 1
            if np.array_equal(sizes, lengths):  # sorted, on the grid, no duplicates: the rows are the grid
                return long.reset_index(drop=True), np.zeros(len(lengths), np.int64), False
    ids, segments = _segments(long)
    ds = long["ds"].to_numpy()
    aggregated = not all(timeindex.on_grid(ds[s:e], freq) for s, e in segments)
    if aggregated:
        long = _aggregate(long, freq)
        ids, segments = _segments(long)
        ds = long["ds"].to_numpy()
        lengths = np.array([e - s for s, e in segments])
    grids = [timeindex.grid_between(ds[s], ds[e - 1], freq) for s, e in segments]
    sizes = np.array([len(g) for g in grids])
    grid = pd.DataFrame({"unique_id": np.repeat(ids[[s for s, _ in segments]], sizes),
                         "ds": np.concatenate(grids)})
    full = grid.merge(long, on=["unique_id", "ds"], how="left", sort=False)
    return full, sizes - lengths, aggregated


def _step(ds: np.ndarray, freq: str) -> int | None:
    """The step of a fixed frequency in the units of `ds` as int64 (periods, or nanoseconds), else None."""
    if timeindex.is_int_freq(freq):
        return timeindex.int_step(freq)
    step = timeindex.fixed_step(freq)
    return None if step is None else int(step / np.timedelta64(1, "ns"))


def _aggregate(long: pd.DataFrame, freq: str) -> pd.DataFrame:
    values = long.drop(columns="line")
    if timeindex.is_int_freq(freq):
        step = timeindex.int_step(freq)
        grouped = values.assign(ds=values["ds"] // step * step).groupby(["unique_id", "ds"], sort=True)
    else:
        grouped = values.groupby(["unique_id", pd.Grouper(key="ds", freq=timeindex.to_offset(freq))], sort=True)
    out = grouped.mean().reset_index()
    out["line"] = np.nan
    return out


def _fill(name, long, value_columns, policy, time_col, targets, layout) -> pd.DataFrame:
    mask = long[value_columns].isna()
    if not mask.to_numpy().any():
        return long
    ids, segments = _segments(long)
    present = np.add.reduceat((~mask).to_numpy(), _bounds(long)[:-1], axis=0)
    if (present == 0).any():
        series, col = np.argwhere(present == 0)[0]
        start, column = segments[series][0], value_columns[col]
        label = (targets[0] if layout != "wide" else ids[start]) if column == "y" else column
        raise DataError(f"{name}: column '{label}': series '{ids[start]}' has no values at all")
    if policy == "error":
        row = long[mask.any(axis=1)].iloc[0]
        if pd.isna(row["line"]):
            raise DataError(
                f"{name}: column '{time_col}': series '{row['unique_id']}' has no row for {_fmt(row['ds'])} "
                "(a gap in the timestamps); use --fill interpolate, ffill or zero to fill it"
            )
        column = next(c for c in value_columns if pd.isna(row[c]))
        label = (targets[0] if layout != "wide" else row["unique_id"]) if column == "y" else column
        raise DataError(
            f"{name}: column '{label}', line {int(row['line'])}: missing value in series '{row['unique_id']}'; "
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
    y = panel.frame["y"].to_numpy()
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
