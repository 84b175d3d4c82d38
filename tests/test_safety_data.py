"""Hostile input to the reader (issue 14): stamps outside what forecast can represent, huge values, ids that
look like numbers or missing values, and inputs without end. Each is refused in one line naming the file,
column and line, or read exactly; none is shifted, wrapped or read to exhaustion.

FUZZ_EXAMPLES sets how many cases each property draws (`make fuzz`: thousands; by default a few dozen)."""

import io
import os
import sys
import threading
import time
from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forecast_cli import csvin, timeindex
from forecast_cli.config import DataConfig
from forecast_cli.data import read_series
from forecast_cli.errors import DataError
from forecast_cli.limits import MAX_ABS_VALUE, MAX_COLUMNS, MAX_ID_CHARS

EXAMPLES = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", "30")), deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])
FIRST, LAST = pd.Timestamp.min, pd.Timestamp.max
RANGE = "1677-09-21 to 2262-04-11"


def write(tmp_path, text: str, name: str = "data.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def error(source, config=None, **kwargs) -> str:
    with pytest.raises(DataError) as excinfo:
        read_series(source, config, **kwargs)
    message = str(excinfo.value)
    assert "\n" not in message
    return message


class TestDatesOutOfRange:
    """datetime64[ns] holds 1677-09-21 to 2262-04-11: an earlier or later date used to wrap silently
    (0001-01-01 became 1754-08-30 22:43:41), and a forecast near the end ran into 1677."""

    @EXAMPLES
    @given(
        day=st.one_of(st.dates(date(1, 1, 1), date(1677, 9, 20)), st.dates(date(2262, 4, 12), date(9999, 12, 31))),
        before=st.integers(0, 4), after=st.integers(0, 4),
    )
    def test_a_date_outside_the_range_is_refused_naming_its_line(self, tmp_path, day, before, after):
        rows = [f"2000-01-{d + 1:02d},{d}" for d in range(before)] + [f"{day.isoformat()},7"]
        rows += [f"2001-01-{d + 1:02d},{d}" for d in range(after)]
        message = error(write(tmp_path, "ds,y\n" + "\n".join(rows) + "\n"))
        assert f"column 'ds', line {before + 2}: date '{day.isoformat()}' is outside" in message
        assert RANGE in message

    @EXAMPLES
    @given(period=st.one_of(st.integers(timeindex.MAX_PERIOD + 1, 2**64 - 1),
                            st.integers(-(2**63), -timeindex.MAX_PERIOD - 1)), row=st.integers(0, 3))
    def test_an_integer_period_near_int64_limits_is_refused_naming_its_line(self, tmp_path, period, row):
        periods = [1990, 1991, 1992, 1993]
        periods[row] = period
        text = "year,y\n" + "".join(f"{p},{i}\n" for i, p in enumerate(periods))
        message = error(write(tmp_path, text))
        assert f"column 'year', line {row + 2}: integer period '{period}' is outside" in message

    @EXAMPLES
    @given(last=st.integers(timeindex.MAX_PERIOD - 10**6, timeindex.MAX_PERIOD), step=st.integers(1, 10**5),
           horizon=st.integers(1, 50))
    def test_integer_periods_near_the_end_continue_exactly_or_refuse(self, tmp_path, last, step, horizon):
        first = last - step
        panel = read_series(write(tmp_path, f"t,y\n{first},1\n{last},2\n"))
        expected = [last + step * k for k in range(1, horizon + 1)]
        if expected[-1] > timeindex.MAX_PERIOD:
            with pytest.raises(DataError, match="past integer period"):
                timeindex.future_times(panel.ds[-1], panel.freq, horizon)
        else:
            assert timeindex.future_times(panel.ds[-1], panel.freq, horizon).tolist() == expected

    @EXAMPLES
    @given(back=st.integers(0, 400 * 24), freq=st.sampled_from(["h", "D", "3D", "W-SUN", "MS", "QS-JAN", "YS-JAN"]),
           horizon=st.integers(1, 400))
    def test_future_stamps_near_2262_never_wrap(self, back, freq, horizon):
        last = pd.Timestamp("2262-04-11") - pd.Timedelta(hours=back)
        last = pd.date_range(last - pd.Timedelta(days=400), last, freq=timeindex.to_offset(freq))[-1]
        try:
            future = timeindex.future_times(last.to_datetime64(), freq, horizon)
        except DataError as e:
            assert str(e) == ("the forecast would run past 2262-04-11, the last date forecast can represent; use "
                              "a shorter --horizon")
            return
        assert len(future) == horizon and future.dtype == np.dtype("datetime64[ns]")
        assert (np.diff(np.concatenate([[last.to_datetime64()], future])) > np.timedelta64(0)).all()
        assert future[-1] <= LAST.to_datetime64()

    @EXAMPLES
    @given(ahead=st.integers(0, 400), freq=st.sampled_from(["D", "W-SUN", "MS", "YS-JAN"]),
           periods=st.integers(1, 400))
    def test_past_stamps_near_1677_never_wrap(self, ahead, freq, periods):
        last = pd.date_range(pd.Timestamp("1677-09-22") + pd.Timedelta(days=ahead), periods=1,
                             freq=timeindex.to_offset(freq))[0]
        try:
            past = timeindex.past_times(last.to_datetime64(), freq, periods)
        except DataError as e:
            assert "would start before 1677-09-21" in str(e)
            return
        assert len(past) == periods and past[-1] == last.to_datetime64()
        assert (np.diff(past) > np.timedelta64(0)).all() and past[0] >= FIRST.to_datetime64()

    def test_the_issue_examples(self, tmp_path):
        daily = "ds,y\n" + "".join(f"0001-01-0{d},{d}\n" for d in range(1, 5))
        assert "line 2: date '0001-01-01' is outside" in error(write(tmp_path, daily))
        years = "year,y\n" + "".join(f"{1600 + i}-01-01,{i}\n" for i in range(60))
        assert "line 2: date '1600-01-01' is outside" in error(write(tmp_path, years), DataConfig(freq="YS"))
        panel = read_series(write(tmp_path, "ds,y\n2262-04-07,1\n2262-04-08,2\n2262-04-09,3\n"))
        assert timeindex.future_times(panel.ds[-1], panel.freq, 2)[-1] == np.datetime64("2262-04-11", "ns")
        with pytest.raises(DataError, match="past 2262-04-11"):
            timeindex.future_times(panel.ds[-1], panel.freq, 3)
        late_time_zone = "ds,y\n2262-04-10T23:00:00-05:00,1\n2262-04-11T23:00:00-05:00,2\n"  # 04:00 UTC, 12 April
        assert "line 3: date" in error(write(tmp_path, late_time_zone))


class TestHugeValues:
    """Sums of squares of values beyond MAX_ABS_VALUE overflow float64 (a model of NaNs followed)."""

    @EXAMPLES
    @given(value=st.one_of(st.floats(MAX_ABS_VALUE, 1.7976931348623157e308, exclude_min=True),
                           st.sampled_from([1e154, 1.7e308, float("inf")])),
           sign=st.sampled_from([1, -1]), row=st.integers(0, 4), column=st.sampled_from(["y", "rain"]))
    def test_a_huge_value_is_refused_naming_column_and_line(self, tmp_path, value, sign, row, column):
        table = pd.DataFrame({"ds": pd.date_range("2024-01-01", periods=5).strftime("%Y-%m-%d"),
                              "y": np.arange(5.0), "rain": np.ones(5)})
        table.loc[row, column] = sign * value
        message = error(write(tmp_path, table.to_csv(index=False)), DataConfig(target="y", covariates=("rain",)))
        assert f"column '{column}', line {row + 2}: " in message

    @EXAMPLES
    @given(value=st.floats(-MAX_ABS_VALUE, MAX_ABS_VALUE, allow_nan=False))
    def test_values_within_the_bound_are_read_exactly(self, tmp_path, value):
        panel = read_series(write(tmp_path, f"ds,y\n2024-01-01,{value!r}\n2024-01-02,0\n"))
        assert panel.values[0, 0] == value


ID_TEXT = st.one_of(
    st.from_regex(r"0[0-9]{0,6}", fullmatch=True),  # leading zeros
    st.sampled_from(["NA", "N/A", "n/a", "null", "NULL", "None", "nan", "NaN", "-nan", "#N/A", "<NA>", "1.#IND"]),
    st.from_regex(r"[0-9]{1,20}(\.[0-9]{1,3})?(e[0-9])?", fullmatch=True),  # numbers, floats, 1e5
)


class TestIdsAsText:
    """Series ids are text: '007' stays '007' whatever the id column is called, and 'NA' is a series."""

    @EXAMPLES
    @given(ids=st.lists(ID_TEXT, min_size=1, max_size=6, unique=True),
           id_col=st.sampled_from(["unique_id", "store", "series", "code"]))
    def test_ids_round_trip_as_written(self, tmp_path, ids, id_col):
        rows = "".join(f"{sid},2024-01-0{d},{d}\n" for sid in ids for d in (1, 2, 3))
        panel = read_series(write(tmp_path, f"{id_col},ds,y\n{rows}"), DataConfig(id_col=id_col))
        assert panel.ids.dtype == object and all(type(sid) is str for sid in panel.ids)
        assert panel.ids.tolist() == sorted(ids)
        assert panel.values[:, 0].tolist() == [1.0, 2.0, 3.0] * len(ids)

    def test_an_empty_id_is_missing_but_values_keep_pandas_missing_spellings(self, tmp_path):
        text = "store,ds,y\n007,2024-01-01,1\n007,2024-01-02,NA\n007,2024-01-03,3\nNA,2024-01-01,null\n" \
               "NA,2024-01-02,2\nNA,2024-01-03,3\n"
        panel = read_series(write(tmp_path, text), DataConfig(id_col="store"))
        assert panel.ids.tolist() == ["007", "NA"]
        assert panel.values[:, 0].tolist() == [1, 2, 3, 2, 2, 3]  # NA and null in y were missing, interpolated
        assert panel.missing_values.tolist() == [1, 1]
        assert "column 'store', line 3: missing series id" in error(write(tmp_path, text.replace("\n007,2024-01-02",
                                                                                                 "\n,2024-01-02")),
                                                                     DataConfig(id_col="store"))
        assert "line 2: missing series id" in error(write(tmp_path, "unique_id,ds,y\n  ,2024-01-01,1\n"))

    def test_ids_are_stored_compactly(self, tmp_path):
        text = "unique_id,ds,y\n" + "".join(f"{sid},2024-01-0{d},{d}\n" for sid in ("a", "x" * MAX_ID_CHARS)
                                            for d in (1, 2))
        panel = read_series(write(tmp_path, text))
        assert panel.ids.dtype == object  # a fixed-width U array would make "a" MAX_ID_CHARS wide as well
        assert panel.ids.tolist() == ["a", "x" * MAX_ID_CHARS]

    def test_an_id_longer_than_the_bound_is_refused_naming_its_line(self, tmp_path):
        text = f"unique_id,ds,y\na,2024-01-01,1\n{'x' * (MAX_ID_CHARS + 1)},2024-01-01,1\n"
        assert f"line 3: a series id of {MAX_ID_CHARS + 1:,} characters" in error(write(tmp_path, text))
        wide = f"ds,{'w' * (MAX_ID_CHARS + 1)},b\n2024-01-01,1,2\n2024-01-02,1,2\n"
        assert "line 1: a column name of" in error(write(tmp_path, wide))


class Endless(io.RawIOBase):
    """A stream without end (what /dev/zero or `yes` gives), counting the bytes read from it."""

    def __init__(self, pattern: bytes):
        self.pattern, self.served = pattern, 0

    def readable(self):
        return True

    def readinto(self, buffer):
        n = len(buffer)
        chunk = (self.pattern * (n // len(self.pattern) + 1))[:n]
        buffer[:n] = chunk
        self.served += n
        return n


class Counted:
    """A file that counts the reads made from it."""

    def __init__(self, file):
        self.file, self.reads = file, 0
        self.fileno, self.tell, self.seek, self.seekable = file.fileno, file.tell, file.seek, file.seekable

    def read(self, n=-1):
        self.reads += 1
        return self.file.read(n)


class TestBoundedReading:
    """DATA and stdin are read in chunks up to limits.MAX_INPUT_BYTES, the first chunk checked to be text."""

    def stdin(self, monkeypatch, raw):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(raw)))

    def test_dev_zero_is_refused_at_once(self):
        if not os.path.exists("/dev/zero"):
            pytest.skip("no /dev/zero")
        started = time.monotonic()
        assert error("/dev/zero") == "/dev/zero: not a text file (a NUL byte at offset 0); expected UTF-8 CSV"
        assert time.monotonic() - started < 5

    @pytest.mark.parametrize("pattern, expected", [(b"\x00", "not a text file"), (b"\xff\xfe", "not UTF-8 text"),
                                                   (b"\x80", "not UTF-8 text (invalid byte at offset 0)")])
    def test_endless_binary_stdin_is_refused_after_the_first_chunk(self, monkeypatch, pattern, expected):
        raw = Endless(pattern)
        self.stdin(monkeypatch, raw)
        assert expected in error("-")
        assert raw.served <= 1 << 20

    def test_endless_text_stdin_stops_at_the_bound(self, monkeypatch):
        monkeypatch.setattr(csvin, "MAX_INPUT_BYTES", 1 << 20)
        raw = Endless(b"2024-01-01,1\n")
        self.stdin(monkeypatch, raw)
        assert error("-").startswith("<stdin>: larger than 0.000976562 GiB, the most forecast reads")
        assert raw.served <= 3 << 20

    def test_a_regular_file_over_the_bound_is_refused_before_it_is_read(self, tmp_path, monkeypatch):
        path = write(tmp_path, "ds,y\n" + "2024-01-01,1\n" * 10_000)
        monkeypatch.setattr(csvin, "MAX_INPUT_BYTES", 1000)
        assert "larger than" in error(path)
        with open(path, "rb") as f:
            counted = Counted(f)
            with pytest.raises(DataError, match="larger than"):
                csvin._read_bounded(path, counted)
        assert counted.reads == 0

    def test_a_file_at_the_bound_is_read(self, tmp_path, monkeypatch):
        text = "ds,y\n" + "".join(f"2024-01-{d:02d},{d}\n" for d in range(1, 29))
        monkeypatch.setattr(csvin, "MAX_INPUT_BYTES", len(text))
        assert len(read_series(write(tmp_path, text)).ds) == 28

    def test_a_fifo_is_read_up_to_the_bound(self, tmp_path, monkeypatch):
        if not hasattr(os, "mkfifo"):
            pytest.skip("no FIFOs here")
        monkeypatch.setattr(csvin, "MAX_INPUT_BYTES", 1 << 20)
        fifo = tmp_path / "pipe.csv"
        os.mkfifo(fifo)
        stop = threading.Event()

        def feed():
            try:
                with open(fifo, "wb") as out:
                    out.write(b"ds,y\n")
                    while not stop.is_set():
                        out.write(b"2024-01-01,1\n" * 1000)
            except BrokenPipeError:
                pass

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        try:
            assert "larger than" in error(str(fifo))
        finally:
            stop.set()
            writer.join(5)

    def test_closed_stdin_is_one_line(self, monkeypatch):
        monkeypatch.setattr(sys, "stdin", None)
        assert error("-") == "<stdin>: standard input is closed; pipe the CSV in or pass a file"
        closed = io.TextIOWrapper(io.BytesIO(b"ds,y\n"))
        closed.buffer.close()
        monkeypatch.setattr(sys, "stdin", closed)
        assert error("-").startswith("<stdin>: standard input cannot be read")

    def test_too_many_columns_are_refused_before_parsing(self, tmp_path):
        header = ",".join(["ds", *(f"c{i}" for i in range(MAX_COLUMNS))])
        message = error(write(tmp_path, header + "\n" + "2024-01-01" + ",1" * MAX_COLUMNS + "\n"))
        assert f"line 1 has {MAX_COLUMNS + 1:,} columns; forecast reads at most {MAX_COLUMNS:,}" in message
        quoted = ",".join(["ds", *(f'"c,{i}"' for i in range(MAX_COLUMNS))])
        assert "columns; forecast reads at most" in error(write(tmp_path, quoted + "\n2024-01-01\n"))

    def test_a_header_without_end_is_refused(self, tmp_path, monkeypatch):
        monkeypatch.setattr(csvin, "_MAX_HEADER_BYTES", 100)
        assert "line 1 (the header) is longer than 100 bytes" in error(write(tmp_path, "ds" + ",y" * 1000))

    def test_a_directory_and_a_missing_file(self, tmp_path):
        assert error(str(tmp_path)).endswith(": is a directory, not a CSV file")
        assert error(str(tmp_path / "nope.csv")).endswith("nope.csv: no such file")

    def test_an_unreadable_file(self, tmp_path):
        if os.geteuid() == 0:
            pytest.skip("root reads anything")
        path = write(tmp_path, "ds,y\n2024-01-01,1\n")
        os.chmod(path, 0)
        assert "cannot be read (Permission denied)" in error(path)

    def test_a_blank_file_larger_than_the_head_is_empty(self, tmp_path):
        assert error(write(tmp_path, "\n" * 200_000)).endswith(": the file is empty")

    def test_a_nul_byte_far_into_a_file_names_its_offset(self, tmp_path):
        head = "unique_id,ds,y\n" + "a,2024-01-01,1\n" * 10_000
        path = tmp_path / "data.csv"
        path.write_bytes(head.encode() + b"b\x00c,2024-01-01,1\n")
        assert f"not a text file (a NUL byte at offset {len(head) + 1})" in error(str(path))

    def test_invalid_utf8_far_into_a_file_names_its_offset(self, tmp_path):
        head = "ds,y\n" + "2024-01-01,1\n" * 200_000
        path = tmp_path / "data.csv"
        path.write_bytes(head.encode() + "é".encode() + b"\xff\n")
        assert f"not UTF-8 text (invalid byte at offset {len(head) + 2})" in error(str(path))


def test_dates_more_than_292_years_apart_are_refused(tmp_path):
    """Differences of datetime64[ns] stamps are int64 nanoseconds: stamps 1700 and 2000 used to give a wrapped,
    negative step."""
    text = "ds,y\n1700-01-01,1\n2000-01-01,2\n1990-01-01,3\n"
    message = error(write(tmp_path, text))
    assert ("the dates span more than 292 years (1700-01-01 00:00:00 on line 2 to 2000-01-01 00:00:00 on line 3)"
            in message)
    panel = read_series(write(tmp_path, "ds,y\n1700-01-01,1\n1990-01-01,2\n"), DataConfig(freq="YS"))
    assert len(panel.ds) == 291 and panel.ds[0] == np.datetime64("1700-01-01") and (np.diff(panel.ds) > 0).all()


@pytest.mark.parametrize("text, config", [
    ("ds,y\n2024-01-01 00:00:00,1\n2024-01-01 00:00:01,2\n2200-01-01,3\n", None),  # inferred: secondly
    ("t,y\n0,1\n1000000000000000000,2\n", DataConfig(freq="int:1")),
    ("unique_id,ds,y\n" + "".join(f"s{i},0,1\ns{i},{10**17},2\n" for i in range(100)), DataConfig(freq="int:1")),
    ("ds,y\n1700-01-01,1\n1990-01-01,2\n", DataConfig(freq="min")),
])
def test_filling_gaps_is_bounded_before_any_grid_is_built(tmp_path, text, config):
    """A few rows far apart at a fine step used to build the whole grid (billions of rows, or a crash)."""
    started = time.monotonic()
    message = error(write(tmp_path, text), config)
    assert "filling the gaps would add" in message and "check --freq and the timestamps" in message
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("freq, start, ok", [
    ("MS", "2262-01-01", True), ("7D", "2262-01-01", True), ("W-SUN", "2262-01-01", False),
    ("ME", "2262-01-01", False), ("YE", "2262-01-01", False),
    ("W-SUN", "1677-09-22", True), ("ME", "1677-09-22", True), ("MS", "1677-09-22", False),
    ("YS", "1677-09-22", False),
])
def test_given_frequencies_at_either_end_of_the_range(tmp_path, freq, start, ok):
    """Daily data reaching an end of the range, averaged into --freq periods: pandas' bins and grids step one
    past the last stamp, which used to overflow (tracebacks); a period labelled outside the range is refused."""
    days = pd.date_range(start, periods=101, freq="D")
    days = days[days <= LAST]
    path = write(tmp_path, "ds,y\n" + "".join(f"{d.date()},{i % 7}\n" for i, d in enumerate(days)))
    if ok:
        panel = read_series(path, DataConfig(freq=freq))
        assert (np.diff(panel.ds) > np.timedelta64(0)).all() and panel.ds.dtype == np.dtype("datetime64[ns]")
    else:
        assert "a period would be labelled" in error(path, DataConfig(freq=freq))
