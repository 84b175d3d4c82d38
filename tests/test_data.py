import numpy as np
import pandas as pd
import pytest

from forecast_cli.config import DataConfig
from forecast_cli.data import read_series, summarize
from forecast_cli.errors import ConfigError, DataError

LONG = """unique_id,ds,y
A,2024-01-01,1
A,2024-01-02,2
A,2024-01-03,3
B,2024-01-01,10
B,2024-01-02,11
B,2024-01-03,12
"""


def test_long_layout_is_detected_and_canonical(write_csv):
    panel = read_series(write_csv(LONG))
    assert panel.layout == "long"
    assert panel.freq == "D"
    assert list(panel.to_frame().columns) == ["unique_id", "ds", "y"] and panel.values.shape == (6, 1)
    assert list(panel.ids) == ["A", "B"]
    assert list(panel.starts) == [0, 3, 6]
    assert panel.values[:, 0].tolist() == [1, 2, 3, 10, 11, 12]


def test_alternative_column_names_are_recognised(write_csv):
    panel = read_series(write_csv("series,date,value\nx,2024-01-01,1\nx,2024-01-02,2\nx,2024-01-03,4\n"))
    assert panel.layout == "long"
    assert panel.columns == {"id": "series", "time": "date", "target": "value"}
    assert panel.values[:, 0].tolist() == [1, 2, 4]


def test_flags_override_detection(write_csv):
    path = write_csv("shop,when,sold,price\na,2024-01-01,1,5\na,2024-01-02,2,6\na,2024-01-03,3,7\n")
    panel = read_series(path, DataConfig(id_col="shop", time_col="when", target="sold", covariates=("price",)))
    assert panel.columns == {"id": "shop", "time": "when", "target": "sold"}
    assert panel.covariates == ("price",)
    assert panel.values.tolist() == [[1, 5], [2, 6], [3, 7]]


def test_wide_layout_becomes_one_series_per_column(write_csv):
    panel = read_series(write_csv("date,north,south,label\n2024-01-01,1,5,x\n2024-01-02,2,6,y\n"
                                  "2024-01-03,3,7,z\n"))
    assert panel.layout == "wide"
    assert list(panel.ids) == ["north", "south"]
    assert panel.values[:, 0].tolist() == [1, 2, 3, 5, 6, 7]
    assert any("label" in note for note in panel.notes)


def test_single_series_with_covariates(write_csv):
    path = write_csv("date,level,rain\n2024-01-01,1.5,0\n2024-01-02,1.7,3\n2024-01-03,1.6,0.5\n")
    panel = read_series(path, DataConfig(target="level", covariates=("rain",)))
    assert panel.layout == "single"
    assert list(panel.ids) == ["level"]
    assert panel.values.tolist() == [[1.5, 0], [1.7, 3], [1.6, 0.5]]


def test_wide_layout_shares_covariates_across_series(write_csv):
    path = write_csv("date,a,b,rain\n2024-01-01,1,5,0\n2024-01-02,2,6,1\n2024-01-03,3,7,2\n")
    panel = read_series(path, DataConfig(covariates=("rain",)))
    assert list(panel.ids) == ["a", "b"]
    assert panel.values[:, 1].tolist() == [0, 1, 2, 0, 1, 2]


def test_unsorted_rows_are_sorted(write_csv):
    panel = read_series(write_csv("unique_id,ds,y\nA,2024-01-03,3\nB,2024-01-01,9\nA,2024-01-01,1\n"
                                  "A,2024-01-02,2\nB,2024-01-02,8\n"))
    assert panel.values[:, 0].tolist() == [1, 2, 3, 9, 8]
    assert (np.diff(panel.ds[:3]) > np.timedelta64(0)).all()


@pytest.mark.parametrize(
    "stamps, freq",
    [
        (["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 02:00"], "h"),
        (["2024-01-01", "2024-01-08", "2024-01-15"], "W-MON"),
        (["2024-01-01", "2024-02-01", "2024-03-01"], "MS"),
        (["2024-01-31", "2024-02-29", "2024-03-31"], "ME"),
        (["2024-01-01", "2024-04-01", "2024-07-01"], "QS-JAN"),
        (["2020-01-01", "2021-01-01", "2022-01-01"], "YS-JAN"),
        (["2024-01-01 00:00", "2024-01-01 00:15", "2024-01-01 00:30"], "15min"),
    ],
)
def test_frequency_is_inferred(write_csv, stamps, freq):
    text = "ds,y\n" + "".join(f"{s},{i}\n" for i, s in enumerate(stamps))
    assert read_series(write_csv(text)).freq == freq


def test_integer_periods(write_csv):
    panel = read_series(write_csv("year,y\n1990,1\n1991,2\n1993,4\n"))
    assert panel.freq == "int:1"
    assert panel.ds.tolist() == [1990, 1991, 1992, 1993]
    assert panel.values[:, 0].tolist() == [1, 2, 3, 4]


def test_monthly_with_a_gap_is_inferred_and_filled(write_csv):
    panel = read_series(write_csv("ds,y\n2024-01-01,1\n2024-02-01,2\n2024-04-01,4\n2024-05-01,5\n"))
    assert panel.freq == "MS"
    assert panel.values[:, 0].tolist() == [1, 2, 3, 4, 5]
    assert panel.missing_timestamps.tolist() == [1]


@pytest.mark.parametrize(
    "fill, expected",
    [("interpolate", [1, 2, 3, 4, 4]), ("ffill", [1, 1, 1, 4, 4]), ("zero", [1, 0, 0, 4, 0])],
)
def test_fill_policies(write_csv, fill, expected):
    text = "ds,y\n2024-01-01,1\n2024-01-02,\n2024-01-04,4\n2024-01-05,NaN\n"
    panel = read_series(write_csv(text), DataConfig(fill=fill))
    assert panel.values[:, 0].tolist() == expected
    assert panel.missing_timestamps.tolist() == [1]
    assert panel.missing_values.tolist() == [2]


def test_given_freq_averages_into_periods(write_csv):
    text = "ds,y\n2024-01-01,1\n2024-01-15,3\n2024-02-01,5\n2024-02-20,7\n"
    panel = read_series(write_csv(text), DataConfig(freq="MS"))
    assert panel.values[:, 0].tolist() == [2, 6]
    assert any("averaged" in note for note in panel.notes)


def test_summary_counts(write_csv):
    table = summarize(read_series(write_csv(LONG)))
    assert table["length"].tolist() == [3, 3]
    assert table["mean"].tolist() == [2, 11]
    assert str(pd.Timestamp(table["end"].iloc[0]).date()) == "2024-01-03"


def message(excinfo) -> str:
    return str(excinfo.value)


@pytest.mark.parametrize(
    "content, expected",
    [
        ("", "data.csv: the file is empty"),
        ("unique_id,ds,y\n", "data.csv: has a header but no data rows"),
        ("unique_id,ds,y\nA,2024-01-01,1\nA,2024-01-02,abc\n",
         "data.csv: column 'y', line 3: 'abc' is not a number"),
        ("unique_id,ds,y\nA,2024-01-01,1\nA,2024-01-02,inf\n", "data.csv: column 'y', line 3: infinite value"),
        ("unique_id,ds,y\nA,2024-01-01,1\nA,2024-01-02,2\nA,2024-01-01,3\n",
         "data.csv: column 'ds', lines 2 and 4: duplicate timestamp 2024-01-01 00:00:00 in series 'A'"),
        ("unique_id,ds,y\nA,2024-01-01,1\nA,yesterday,2\n", "data.csv: column 'ds', line 3: 'yesterday' is not a date"),
        ("unique_id,ds,y\nA,2024-01-01,1\nA,,2\n", "data.csv: column 'ds', line 3: missing timestamp"),
        (b"unique_id,ds,y\nA,2024-01-01,\xff\xfe\n", "data.csv: not UTF-8 text (invalid byte at offset"),
        (b"\x00\x01\x02binary", "data.csv: not a text file"),
        ("unique_id,ds,y\nA,2024-01-01,1\nA,2024-01-02,2\nB,2024-01-01,1\nB,2024-02-01,2\nB,2024-03-01,3\n",
         "data.csv: series of mixed frequency: 'A' is daily (D) but 'B' is monthly (MS)"),
        ("unique_id,ds,y\nA,2024-01-01,\nA,2024-01-02,\n", "data.csv: column 'y': series 'A' has no values at all"),
        ("name,b\nfoo,2\nbar,4\n", "data.csv: column 'name', line 2: 'foo' is not a date"),
    ],
)
def test_bad_input_names_file_column_and_line(write_csv, content, expected):
    with pytest.raises(DataError) as excinfo:
        read_series(write_csv(content))
    assert message(excinfo).startswith(expected)


def test_missing_named_column(write_csv):
    with pytest.raises(DataError) as excinfo:
        read_series(write_csv(LONG), DataConfig(target="sales"))
    assert message(excinfo) == "data.csv: column 'sales' (from --target) not found; the columns are: unique_id, ds, y"


def test_fill_error_policy_names_the_gap(write_csv):
    with pytest.raises(DataError) as excinfo:
        read_series(write_csv("ds,y\n2024-01-01,1\n2024-01-02,2\n2024-01-04,4\n2024-01-05,5\n"),
                    DataConfig(fill="error"))
    assert "series 'y' has no row for 2024-01-03" in message(excinfo)
    with pytest.raises(DataError) as excinfo:
        read_series(write_csv("ds,y\n2024-01-01,1\n2024-01-02,\n2024-01-03,3\n"), DataConfig(fill="error"))
    assert message(excinfo).startswith("data.csv: column 'y', line 3: missing value in series 'y'")


def test_bad_options(write_csv):
    with pytest.raises(ConfigError):
        read_series(write_csv(LONG), DataConfig(fill="magic"))
    with pytest.raises(ConfigError):
        read_series(write_csv(LONG), DataConfig(freq="fortnightly"))
    with pytest.raises(ConfigError):
        read_series(write_csv(LONG), DataConfig(freq="int:1"))


def test_bom_padded_and_non_ascii_ids_and_leading_blank_lines(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"\xef\xbb\xbf\n\nunique_id,ds,y\n  Z\xc3\xbcrich ,2024-01-01,1\nZ\xc3\xbcrich,2024-01-02,2\n"
                     b"Z\xc3\xbcrich,2024-01-03,x\n")
    with pytest.raises(DataError, match="column 'y', line 6: 'x' is not a number"):
        read_series(path)
    path.write_bytes(path.read_bytes().replace(b",x\n", b",3\n"))
    panel = read_series(path)
    assert list(panel.ids) == ["Zürich"]
    assert panel.values[:, 0].tolist() == [1, 2, 3]


def test_each_distinct_timestamp_and_id_is_parsed_once(write_csv, monkeypatch):
    """A panel repeats its stamps in every series: parsing works on the distinct texts, so its cost does not
    grow with the number of series (10,000 daily series x 500 rows: 4 s -> 0.1 s)."""
    rows = "".join(f"s{i}, 2024-01-0{d} ,{i + d}\n" for i in range(50) for d in range(1, 8))
    parsed = []
    real = pd.to_datetime
    monkeypatch.setattr(pd, "to_datetime", lambda values, **kw: parsed.append(len(values)) or real(values, **kw))
    panel = read_series(write_csv("unique_id,ds,y\n" + rows))
    assert parsed == [7]
    assert len(panel.ids) == 50 and panel.ids[0] == "s0" and panel.ds[-1] == np.datetime64("2024-01-07")


def test_duplicate_named_by_its_first_line_in_the_file(write_csv):
    """Rows are sorted before the check: the message still names the file's first duplicated row (series B,
    lines 2 and 5), not the first in sorted order (series A, lines 3 and 4)."""
    text = "unique_id,ds,y\nB,2024-01-01,1\nA,2024-01-02,2\nA,2024-01-02,3\nB,2024-01-01,4\nA,2024-01-01,5\n"
    with pytest.raises(DataError, match="lines 2 and 5: duplicate timestamp 2024-01-01 00:00:00 in series 'B'"):
        read_series(write_csv(text))


def test_wide_layout_series_sorted_by_name(write_csv):
    panel = read_series(write_csv("ds,zeta,alpha\n2024-01-01,1,10\n2024-01-02,2,20\n2024-01-03,3,30\n"))
    assert list(panel.ids) == ["alpha", "zeta"]
    assert panel.values[:, 0].tolist() == [10, 20, 30, 1, 2, 3]


def test_cr_only_line_endings_are_read_and_lines_counted(write_csv):
    """Old Mac files end lines with a bare CR: the header used to fail in the csv module (a traceback)."""
    panel = read_series(write_csv(b"ds,y\r2024-01-01,1\r2024-01-02,2\r2024-01-03,3\r"))
    assert panel.values[:, 0].tolist() == [1, 2, 3] and panel.freq == "D"
    with pytest.raises(DataError, match="column 'y', line 5: 'x' is not a number"):
        read_series(write_csv(b"\r\r\nds,y\r2024-01-01,1\r2024-01-02,x\r"))


@pytest.mark.parametrize("header", ["ds,y,y", "ds,y, y", "ds, y ,y"])
def test_duplicate_column_names_are_refused(write_csv, header):
    with pytest.raises(DataError) as excinfo:
        read_series(write_csv(f"{header}\n2024-01-01,1,2\n2024-01-02,2,3\n"))
    assert message(excinfo) == ("data.csv: line 1: column 'y' appears twice (names are compared without their "
                                "surrounding spaces); rename one")


def test_columns_named_like_internal_ones_are_ordinary_covariates(write_csv):
    """The reader's working columns (the line number, the sort rank) and the canonical unique_id/ds/y cannot
    collide with a user's column: `--covariates line,rank` used to raise KeyError, a covariate `ds` replaced
    the time column."""
    panel = read_series(write_csv("unique_id,ds,y,line,rank\nA,2024-01-01,1,5,6\nA,2024-01-02,2,7,8\n"
                                  "A,2024-01-04,4,9,10\n"), DataConfig(covariates=("line", "rank")))
    assert panel.values.tolist() == [[1, 5, 6], [2, 7, 8], [3, 8, 9], [4, 9, 10]]
    assert panel.covariates == ("line", "rank")
    path = write_csv("date,sales,y,ds,unique_id\n2024-01-01,1,10,100,7\n2024-01-02,2,20,200,8\n"
                     "2024-01-03,3,30,300,9\n")
    panel = read_series(path, DataConfig(target="sales", covariates=("y", "ds", "unique_id")))
    assert panel.values.tolist() == [[1, 10, 100, 7], [2, 20, 200, 8], [3, 30, 300, 9]]
    assert panel.ds[0] == np.datetime64("2024-01-01") and list(panel.ids) == ["sales"]


def test_a_covariate_that_is_the_target_or_named_twice_is_a_config_error(write_csv):
    with pytest.raises(ConfigError, match="'y' is the target column"):
        read_series(write_csv(LONG), DataConfig(target="y", covariates=("y",)))
    with pytest.raises(ConfigError, match="names 'x' twice"):
        read_series(write_csv(LONG), DataConfig(covariates=("x", "x")))


def test_control_characters_in_ids_and_names_are_escaped_in_messages(write_csv):
    text = 'unique_id,ds,"v\x1b[2Jal"\n\x1b[31mred\x9b,2024-01-01,1\n\x1b[31mred\x9b,2024-01-01,2\n'
    with pytest.raises(DataError) as excinfo:
        read_series(write_csv(text))
    assert "series '\\x1b[31mred\\x9b'" in message(excinfo)
    with pytest.raises(DataError) as excinfo:
        read_series(write_csv('ds,"a\nb\u202e"\n2024-01-01,1\n2024-01-02,zz\n'))
    assert "column 'a\\nb\\u202e'" in message(excinfo)
    assert not any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in message(excinfo))


WEEKLY = "ds,y\n2024-01-01,1\n2024-01-08,2\n2024-01-15,3\n2024-01-22,4\n"


def test_expect_freq_refuses_data_of_another_frequency(write_csv):
    """Weekly data to a daily model used to be resampled to daily (86% interpolated) without a word."""
    with pytest.raises(DataError) as excinfo:
        read_series(write_csv(WEEKLY), expect_freq="D")
    assert message(excinfo).startswith("data.csv: the data is weekly (W-MON) but the model is daily (D)")
    with pytest.raises(DataError, match="holds dates but the model was trained on"):
        read_series(write_csv(WEEKLY), expect_freq="int:1")
    panel = read_series(write_csv(WEEKLY), DataConfig(freq="D"), expect_freq="W-MON")  # config.freq ignored
    assert panel.freq == "W-MON" and panel.values[:, 0].tolist() == [1, 2, 3, 4] and not panel.notes


def test_expect_freq_gives_single_rows_the_model_frequency(write_csv):
    panel = read_series(write_csv("unique_id,ds,y\na,2024-01-07,1\nb,2024-01-14,2\n"), expect_freq="W-SUN")
    assert panel.freq == "W-SUN" and panel.lengths.tolist() == [1, 1]
    with pytest.raises(DataError, match="series 'a' has one row, at 2024-01-01 00:00:00, which is not a weekly"):
        read_series(write_csv("unique_id,ds,y\na,2024-01-01,1\nb,2024-01-14,2\n"), expect_freq="W-SUN")


def test_a_single_row_off_a_given_calendar_grid_is_averaged_into_its_period(write_csv):
    """(It used to give an empty grid and an IndexError.)"""
    panel = read_series(write_csv("ds,y\n2024-01-03,5\n"), DataConfig(freq="W-SUN"))
    assert list(panel.ds) == [np.datetime64("2024-01-07", "ns")] and panel.values[:, 0].tolist() == [5]


def test_sub_second_steps_are_refused(write_csv):
    text = "ds,y\n2024-01-01T00:00:00.0,1\n2024-01-01T00:00:00.1,2\n2024-01-01T00:00:00.2,3\n"
    with pytest.raises(DataError, match="steps by less than a second"):
        read_series(write_csv(text))
    with pytest.raises(ConfigError, match="shorter than a second"):
        read_series(write_csv(text), DataConfig(freq="100ms"))
