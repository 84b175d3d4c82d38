"""Time axes: frequency inference, regular grids, future timestamps, seasons and calendar features.

A frequency is a string: a pandas offset alias ("D", "h", "15min", "W-SUN", "MS", "QS-OCT", "YS-JAN")
for datetime stamps, or "int:STEP" for plain integer periods (years such as 1990, 1991, ...).

pandas is imported inside the functions that need it: forecasting from a model directory alone at a fixed
step (days, hours, minutes, seconds, integer periods) uses numpy only, which saves a cron job its import.
"""

from __future__ import annotations

import re
import warnings
from typing import TYPE_CHECKING

import numpy as np

from forecast_cli import limits
from forecast_cli.errors import ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd

INT_PREFIX = "int:"

# The stamps forecast can represent. Dates are datetime64[ns] (pandas' nanosecond range: 1677-09-21 00:12:43 to
# 2262-04-11 23:47:16; int64 nanoseconds, less the one value that means NaT). Integer periods lie within
# +-MAX_PERIOD, so that the difference of any two, and any step, fits in int64.
FIRST_NS = -(2**63) + 1
LAST_NS = 2**63 - 1
FIRST_DATE, LAST_DATE = "1677-09-21", "2262-04-11"
MAX_PERIOD = limits.MAX_PERIOD

# pandas offset class name: (human label, steps per season, default horizon, unit)
_KINDS = {
    "Second": ("secondly", 60, 60, "seconds"),
    "Minute": ("minutely", None, None, "minutes"),  # season and horizon depend on the step: season_length
    "Hour": ("hourly", 24, 24, "hours"),
    "Day": ("daily", 7, 7, "days"),
    "BusinessDay": ("business daily", 5, 5, "business days"),
    "Week": ("weekly", 52, 13, "weeks"),
    "MonthBegin": ("monthly", 12, 12, "months"),
    "MonthEnd": ("monthly", 12, 12, "months"),
    "QuarterBegin": ("quarterly", 4, 8, "quarters"),
    "QuarterEnd": ("quarterly", 4, 8, "quarters"),
    "YearBegin": ("yearly", 1, 6, "years"),
    "YearEnd": ("yearly", 1, 6, "years"),
}


def is_int_freq(freq: str) -> bool:
    return freq.startswith(INT_PREFIX)


def int_step(freq: str) -> int:
    return int(freq[len(INT_PREFIX):])


_FIXED = re.compile(r"(\d*)(D|h|min|s)")  # canonical pandas aliases of fixed steps: D, 3D, h, 15min, s
_FIXED_UNITS = {"D": "D", "h": "h", "min": "m", "s": "s"}


def fixed_step(freq: str) -> np.timedelta64 | None:
    """The step of a fixed-length datetime frequency in canonical form ("D", "3D", "h", "15min", "s"), else
    None (calendar frequencies such as W-SUN or MS, and integer periods)."""
    found = _FIXED.fullmatch(freq)
    if found is None or found.group(1).startswith("0"):
        return None
    return np.timedelta64(int(found.group(1) or 1), _FIXED_UNITS[found.group(2)])


def _shown(freq: str) -> str:
    """A user's frequency as it can be quoted in a one-line message: control characters escaped, cut short."""
    text = ascii(str(freq))[1:-1]
    return text if len(text) <= 40 else text[:39] + "…"


def to_offset(freq: str) -> pd.DateOffset:
    """The pandas offset for a datetime frequency; ConfigError for an unknown alias."""
    import pandas as pd

    try:
        return pd.tseries.frequencies.to_offset(freq)
    except (ValueError, TypeError) as e:
        raise ConfigError(
            f"Unknown frequency '{_shown(freq)}'. Use a pandas alias such as h, D, W-SUN, MS, QS, YS, 15min, or int:1 "
            "for integer periods."
        ) from e


def check_freq(freq: str) -> str:
    """Validate a user-given frequency and return it in canonical form: a step is positive, a second or more,
    and shorter than the span of representable stamps."""
    if is_int_freq(freq) or freq == "int":
        step = freq[len(INT_PREFIX):] if is_int_freq(freq) else "1"
        if not step.isdigit() or int(step) < 1:
            raise ConfigError(f"Unknown frequency '{_shown(freq)}': integer periods are written int:STEP, e.g. int:1.")
        if int(step) > MAX_PERIOD:
            raise ConfigError(f"Frequency '{_shown(freq)}': an integer step is at most {MAX_PERIOD:,}.")
        return f"{INT_PREFIX}{int(step)}"
    import pandas as pd

    offset = to_offset(freq)
    if offset.n < 1:
        raise ConfigError(f"Frequency '{_shown(freq)}': a step must be positive, for example D, 3D, h or 15min.")
    if is_subsecond(offset.freqstr):
        raise ConfigError(f"Frequency '{_shown(freq)}': steps shorter than a second are not supported; the finest "
                          "is s.")
    try:
        if pd.Timestamp.min + offset > pd.Timestamp.max:
            raise OverflowError
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime) as e:
        raise ConfigError(f"Frequency '{_shown(freq)}': one step is longer than the dates forecast can represent "
                          f"({FIRST_DATE} to {LAST_DATE}).") from e
    return offset.freqstr


_SUBSECOND = re.compile(r"\d*(ms|us|ns)")


def is_subsecond(freq: str) -> bool:
    """Whether a canonical datetime frequency steps by less than a second (ms, us, ns: not supported)."""
    return _SUBSECOND.fullmatch(freq) is not None


def describe(freq: str) -> str:
    """A human label: 'daily', 'monthly', '15 minutes', 'integer periods'."""
    if is_int_freq(freq):
        step = int_step(freq)
        return "yearly (integer)" if step == 1 else f"every {step} periods"
    offset = to_offset(freq)
    kind = _KINDS.get(type(offset).__name__)
    if kind is None:
        return freq
    return kind[0] if offset.n == 1 else f"every {offset.n} {kind[3]}"


def season_length(freq: str) -> int:
    """Steps in one seasonal cycle: 24 for hourly, 7 for daily, 12 for monthly, 1 for yearly."""
    if is_int_freq(freq):
        return 1
    offset = to_offset(freq)
    kind = type(offset).__name__
    if kind == "Minute":
        return max(1, 1440 // offset.n) if 1440 // offset.n <= 288 else max(1, 60 // offset.n)
    if kind == "Hour" and offset.n > 1:
        return max(1, 24 // offset.n)
    season = _KINDS.get(kind, (None, 1))[1]
    return season if offset.n == 1 else max(1, season // offset.n)


def default_horizon(freq: str) -> int:
    """The horizon used when --horizon is not given: about one season (6 for yearly, 13 for weekly)."""
    if is_int_freq(freq):
        return 6
    offset = to_offset(freq)
    kind = type(offset).__name__
    if kind == "Minute" or (kind == "Hour" and offset.n > 1):
        return min(season_length(freq), 96)
    horizon = _KINDS.get(kind, (None, None, 7))[2]
    return horizon if offset.n == 1 else max(1, horizon // offset.n)


def shortest_step(freq: str) -> np.timedelta64:
    """The shortest step of a datetime frequency: the step itself when fixed, else the least of a year of
    steps (28 days for MS, 1 day for B, 1 hour for bh)."""
    import pandas as pd

    step = fixed_step(freq)
    if step is not None:
        return step
    offset = to_offset(freq)
    for start, periods in (("1970-01-01", 13), ("1677-10-01", 2)):  # (a step of decades leaves the range)
        try:
            return np.diff(pd.date_range(start, periods=periods, freq=offset).to_numpy()).min()
        except (OverflowError, pd.errors.OutOfBoundsDatetime):
            continue
    return np.timedelta64(LAST_NS, "ns")


def on_grid(ds: np.ndarray, freq: str) -> bool:
    """Whether every stamp of one sorted series lies on the grid of `freq` that starts at its first stamp."""
    import pandas as pd

    if len(ds) < 2 and (len(ds) == 0 or is_int_freq(freq) or fixed_step(freq) is not None):
        return True
    if is_int_freq(freq):
        return bool(np.all((ds - ds[0]) % int_step(freq) == 0))
    offset = to_offset(freq)
    if len(ds) == 1:  # a calendar grid has anchors: W-SUN stamps are Sundays, MS stamps the 1st
        return isinstance(offset, (pd.offsets.Tick, pd.offsets.Day)) or bool(offset.is_on_offset(pd.Timestamp(ds[0])))
    if isinstance(offset, (pd.offsets.Tick, pd.offsets.Day)):
        ns = ds.astype("datetime64[ns]").astype(np.int64)
        step = pd.Timedelta(days=offset.n).value if isinstance(offset, pd.offsets.Day) else pd.Timedelta(offset).value
        return bool(np.all((ns - ns[0]) % step == 0))
    grid = grid_between(ds[0], ds[-1], freq)
    return bool(np.isin(ds, grid).all())


def fits(ds: np.ndarray, freq: str) -> bool:
    """Whether `freq` is this series' frequency: every stamp on its grid, some neighbours one step apart."""
    import pandas as pd

    if not on_grid(ds, freq):
        return False
    if is_int_freq(freq):
        return bool(np.any(np.diff(ds) == int_step(freq)))
    following = (pd.DatetimeIndex(ds[:-1]) + to_offset(freq)).to_numpy()
    return bool(np.any(following == ds[1:]))


def grid_between(first, last, freq: str) -> np.ndarray:
    """All stamps from `first` to `last` inclusive at `freq` (first is assumed to lie on the grid)."""
    import pandas as pd

    if is_int_freq(freq):  # (no `last + 1`: it would overflow at the top of int64)
        count = max(0, (int(last) - int(first)) // int_step(freq) + 1)
        return np.int64(first) + np.int64(int_step(freq)) * np.arange(count, dtype=np.int64)
    # Built in microseconds: pandas steps one past the end, which overflows nanoseconds near 2262; every stamp
    # kept lies between first and last, so back in nanoseconds it is exact.
    grid = pd.date_range(pd.Timestamp(first).as_unit("us"), pd.Timestamp(last).as_unit("us"), freq=to_offset(freq),
                         unit="us")
    return grid.as_unit("ns").to_numpy()


_PAST_END = (f"the forecast would run past {LAST_DATE}, the last date forecast can represent; use a shorter "
             "--horizon")
_PAST_END_INT = (f"the forecast would run past integer period {MAX_PERIOD:,}, the last forecast can "
                 "represent; use a shorter --horizon")
_BEFORE_START = (f"the lookback window would start before {FIRST_DATE}, the first date forecast can represent; "
                 "use a shorter --lookback")
_BEFORE_START_INT = (f"the lookback window would start before integer period -{MAX_PERIOD:,}, the first "
                     "forecast can represent; use a shorter --lookback")


def future_times(last, freq: str, horizon: int) -> np.ndarray:
    """The `horizon` stamps after `last`: one step of `freq`, two steps, ... DataError where the last of them
    would leave the representable stamps (datetime64[ns] wraps silently, pandas raises)."""
    return _steps_from(last, freq, horizon, 1)


def past_times(last, freq: str, periods: int) -> np.ndarray:
    """The `periods` stamps ending at `last` (inclusive), oldest first; DataError where the first of them would
    come before the representable stamps."""
    return _steps_from(last, freq, periods, -1)


def _steps_from(last, freq: str, count: int, direction: int) -> np.ndarray:
    """Future (direction 1: last + 1..count steps) or past (-1: last - (count-1)..0 steps) stamps, checked
    against the ends of the representable range in exact integer arithmetic before any int64 is formed."""
    ks = np.arange(1, count + 1, dtype=np.int64) if direction > 0 else np.arange(1 - count, 1, dtype=np.int64)
    reach = count if direction > 0 else max(count - 1, 0)  # steps from `last` to the farthest stamp
    if is_int_freq(freq):
        step = int_step(freq)
        if not -MAX_PERIOD <= int(last) + direction * step * reach <= MAX_PERIOD:
            raise DataError(_PAST_END_INT if direction > 0 else _BEFORE_START_INT)
        return _affine(int(last), step, ks)
    step = fixed_step(freq)
    if step is not None:
        ns, step_ns = _to_ns(last), int(step / np.timedelta64(1, "s")) * 10**9
        if not FIRST_NS <= ns + direction * step_ns * reach <= LAST_NS:
            raise DataError(_PAST_END if direction > 0 else _BEFORE_START)
        return _affine(ns, step_ns, ks).view("datetime64[ns]")
    import pandas as pd

    stamp = pd.Timestamp(np.datetime64(_to_ns(last), "ns")).as_unit("us")  # (microseconds: room past 2262)
    try:
        if direction > 0:
            stamps = pd.date_range(stamp, periods=count + 1, freq=to_offset(freq), unit="us")[1:]
        else:
            stamps = pd.date_range(end=stamp, periods=count, freq=to_offset(freq), unit="us")
        if len(stamps) and (stamps[0] < pd.Timestamp.min or stamps[-1] > pd.Timestamp.max):
            raise OverflowError
        return stamps.as_unit("ns").to_numpy()
    except (OverflowError, pd.errors.OutOfBoundsDatetime) as e:
        raise DataError(_PAST_END if direction > 0 else _BEFORE_START) from e


def _affine(base: int, step: int, ks: np.ndarray) -> np.ndarray:
    """base + step * ks as int64, for results known to fit in int64. Vectorised where step * ks fits too; else
    (a step of centuries, a few stamps) in Python integers, so that no intermediate wraps."""
    if max(abs(int(ks[0])), abs(int(ks[-1]))) * step <= 2**63 - 1 if len(ks) else True:
        return np.int64(base) + np.int64(step) * ks
    return np.array([base + step * int(k) for k in ks], dtype=np.int64)


def _to_ns(stamp) -> int:
    """A datetime stamp as int nanoseconds since 1970, DataError where it is outside datetime64[ns]."""
    value = np.datetime64(stamp)
    unit, _ = np.datetime_data(value.dtype)
    if unit == "ns":
        return int(value.astype(np.int64))
    import pandas as pd

    try:
        return int(pd.Timestamp(value).as_unit("ns").value)
    except (OverflowError, ValueError, pd.errors.OutOfBoundsDatetime) as e:
        raise DataError(f"date {value} is outside the range forecast can represent ({FIRST_DATE} to {LAST_DATE})"
                        ) from e


def infer_freq(ds: np.ndarray) -> str | None:
    """The frequency of one sorted, duplicate-free series, tolerating gaps; None when it cannot be told."""
    import pandas as pd

    if len(ds) < 2:
        return None
    if np.issubdtype(ds.dtype, np.integer):
        step = int(np.gcd.reduce(np.diff(ds)))
        return f"{INT_PREFIX}{step}"
    index = pd.DatetimeIndex(ds)
    if len(ds) >= 3:
        found = _pandas_infer(index)
        if found:
            return to_offset(found).freqstr
    # Gaps defeat pd.infer_freq: infer from short runs of three stamps, then check the whole series.
    for i in range(min(len(ds) - 2, 50)):
        found = _pandas_infer(index[i : i + 3])
        if found and on_grid(ds, found):
            return to_offset(found).freqstr
    for candidate in _calendar_candidates(index):
        if fits(ds, candidate):
            return candidate
    smallest = pd.Timedelta(np.diff(ds).min())
    if smallest < pd.Timedelta(days=28):
        candidate = _fixed_freq(smallest, pd.Timestamp(ds[0]))
        if on_grid(ds, candidate):
            return candidate
    return None


_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


def _calendar_candidates(index: pd.DatetimeIndex) -> list[str]:
    """Monthly, quarterly and yearly aliases that stamps aligned to month starts or ends could follow."""
    phase = (index[0].month - 1) % 3  # quarters anchor on JAN/FEB/MAR (starts) or OCT/NOV/DEC (ends)
    year = _MONTHS[index[0].month - 1]
    if not (index.normalize() == index).all():
        return []
    if index.is_month_start.all():
        return ["MS", f"QS-{_MONTHS[phase]}", f"YS-{year}"]
    if index.is_month_end.all():
        return ["ME", f"QE-{_MONTHS[phase + 9]}", f"YE-{year}"]
    return []


def _pandas_infer(index: pd.DatetimeIndex) -> str | None:
    import pandas as pd

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pandas 3 warns that infer_freq will return an offset
        found = pd.infer_freq(index)
    return None if found is None else to_offset(found).freqstr if isinstance(found, str) else found.freqstr


def _fixed_freq(step: pd.Timedelta, first: pd.Timestamp) -> str:
    """The alias for a fixed step: 'D' or '3D' for whole days, 'W-MON' for weeks, else '15min', 'h'..."""
    import pandas as pd

    if step == pd.Timedelta(days=7):
        return f"W-{first.day_name()[:3].upper()}"
    if step % pd.Timedelta(days=1) == pd.Timedelta(0):
        days = step.days
        return "D" if days == 1 else f"{days}D"
    return pd.tseries.frequencies.to_offset(step).freqstr


def calendar_features(ds: np.ndarray, freq: str) -> np.ndarray:
    """Seasonal position features from timestamps: sin/cos of hour of day, day of week and month of year,
    whichever are finer than one step of `freq`. Shape (len(ds), n_features); n_features may be 0."""
    names = calendar_feature_names(freq)
    if not names:
        return np.zeros((len(ds), 0), dtype=np.float32)
    ds = np.asarray(ds)
    days = ds.astype("datetime64[D]")  # numpy floors, as pandas' fields do (the same numbers, test_timeindex)
    columns = []
    for name in names:
        if name == "hour":
            minutes = (ds - days) // np.timedelta64(1, "m")
            phase = (minutes // 60 + (minutes % 60) / 60.0) / 24.0
        elif name == "weekday":
            phase = ((days.astype(np.int64) + 3) % 7) / 7.0  # 1970-01-01 was a Thursday; Monday is 0
        else:
            phase = (ds.astype("datetime64[M]").astype(np.int64) % 12) / 12.0
        angle = 2 * np.pi * np.asarray(phase, dtype=np.float64)
        columns += [np.sin(angle), np.cos(angle)]
    return np.stack(columns, axis=1).astype(np.float32)


def calendar_feature_names(freq: str) -> tuple[str, ...]:
    """Which calendar cycles are visible at this frequency."""
    if is_int_freq(freq):
        return ()
    step = fixed_step(freq)
    if step is not None:
        return ("weekday", "month") if step.dtype == np.dtype("m8[D]") else ("hour", "weekday")
    offset = to_offset(freq)
    kind = type(offset).__name__
    if kind in ("Second", "Minute", "Hour"):
        return ("hour", "weekday")
    if kind in ("Day", "BusinessDay"):
        return ("weekday", "month")
    if kind in ("Week", "MonthBegin", "MonthEnd"):
        return ("month",)
    if kind in ("QuarterBegin", "QuarterEnd"):
        return ("month",)
    return ()


def check_holidays(spec: str, freq: str) -> tuple[str, str | None]:
    """--holidays "US" or "DE-HE" (a country and optionally one of its subdivisions, as the `holidays` package
    names them) -> (country, subdivision). ConfigError for a code it does not know, or data coarser than a day
    (a holiday is a day) or of integer periods."""
    from forecast_cli.errors import ConfigError

    country, _, subdiv = spec.strip().upper().partition("-")
    if is_int_freq(freq) or "hour" not in calendar_feature_names(freq) and "weekday" not in \
            calendar_feature_names(freq):
        raise ConfigError(f"--holidays {spec}: needs daily or finer data with dates; the data is {describe(freq)}")
    try:
        import holidays
    except ImportError as e:  # pragma: no cover - a dependency of the package
        raise ConfigError("--holidays needs the `holidays` package (pip install holidays)") from e
    try:
        holidays.country_holidays(country, subdiv=subdiv or None, years=[2000])
    except NotImplementedError as e:
        raise ConfigError(f"Unknown --holidays '{spec}': {e}; use a country code such as US, GB or DE, or a "
                          "country and subdivision such as DE-HE") from None
    return country, subdiv or None


def holiday_features(ds: np.ndarray, spec: str | None) -> np.ndarray:
    """(len(ds), 1) float32: 1 where the stamp's day is a public holiday of `spec` (check_holidays' form), else
    0; (len(ds), 0) without `spec`. Each distinct day is looked up once."""
    if not spec:
        return np.zeros((len(ds), 0), np.float32)
    import holidays

    country, _, subdiv = spec.partition("-")
    days = np.asarray(ds).astype("datetime64[D]")
    if not len(days):
        return np.zeros((0, 1), np.float32)
    unique, inverse = np.unique(days, return_inverse=True)
    first, last = (int(str(d)[:4]) for d in (unique[0], unique[-1]))
    calendar = holidays.country_holidays(country, subdiv=subdiv or None, years=range(first, last + 1))
    dates = np.array(sorted(calendar.keys()), dtype="datetime64[D]")
    return np.isin(unique, dates)[inverse].astype(np.float32)[:, None]
