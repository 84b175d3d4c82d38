"""Panel: the arrays every step after the reader takes, and the few operations on them."""

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from forecast_cli.config import DataConfig
from forecast_cli.data import Panel, read_series
from forecast_cli.features import last_windows


def make_panel(lengths=(3, 1, 4), covariates=1, integer=False) -> Panel:
    """Series "a", "b", ... of the given lengths; the target of series i is 100 * i + its row number + 1, each
    covariate the target's negative times its number; daily stamps from 2024-01-01 (or periods from 1990)."""
    lengths = np.asarray(lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    step = np.concatenate([np.arange(n) for n in lengths]).astype(np.int64)
    y = np.repeat(100.0 * np.arange(len(lengths)), lengths) + step + 1
    ds = step + 1990 if integer else np.datetime64("2024-01-01", "ns") + step * np.timedelta64(1, "D")
    return Panel(
        ids=np.array([chr(ord("a") + i) for i in range(len(lengths))], dtype=object),
        ds=ds,
        values=np.column_stack([y] + [-(k + 1) * y for k in range(covariates)]),
        starts=starts,
        freq="Y" if integer else "D",
        covariates=tuple(f"c{k}" for k in range(covariates)),
        columns={"id": "unique_id", "time": "ds", "target": "y"},
        layout="long",
        source="made.csv",
        missing_timestamps=np.arange(len(lengths)),
        missing_values=10 * np.arange(len(lengths)),
    )


def rows_of(panel: Panel) -> dict:
    """{id: (ds, values)} of every series, to compare panels series by series."""
    return {sid: (panel.ds[s:e].tolist(), panel.values[s:e].tolist())
            for sid, s, e in zip(panel.ids, panel.starts[:-1], panel.starts[1:], strict=True)}


def test_select_keeps_the_chosen_series_with_their_rows_and_counts():
    panel = make_panel()
    chosen = panel.select(np.array([True, False, True]))
    assert chosen.ids.tolist() == ["a", "c"]
    assert chosen.starts.tolist() == [0, 3, 7] and chosen.starts.dtype == np.int64
    assert chosen.lengths.tolist() == [3, 4]
    assert chosen.values[:, 0].tolist() == [1, 2, 3, 201, 202, 203, 204]
    assert chosen.values[:, 1].tolist() == [-1, -2, -3, -201, -202, -203, -204]
    assert rows_of(chosen) == {k: v for k, v in rows_of(panel).items() if k != "b"}
    assert chosen.missing_timestamps.tolist() == [0, 2] and chosen.missing_values.tolist() == [0, 20]
    assert (chosen.freq, chosen.covariates, chosen.source) == (panel.freq, panel.covariates, panel.source)
    assert panel.ids.tolist() == ["a", "b", "c"] and len(panel.ds) == 8  # the original is unchanged


def test_an_empty_selection_is_a_panel_of_no_series():
    empty = make_panel().select(np.zeros(3, bool))
    assert empty.ids.tolist() == [] and empty.ids.dtype == object
    assert empty.starts.tolist() == [0] and empty.lengths.tolist() == []
    assert empty.values.shape == (0, 2) and empty.ds.shape == (0,)
    assert empty.missing_timestamps.tolist() == [] and empty.first_not_positive() is None
    assert empty.truncate(1).starts.tolist() == [0] and empty.tail(2).starts.tolist() == [0]
    frame = empty.to_frame()
    assert list(frame.columns) == ["unique_id", "ds", "y", 0] and len(frame) == 0


@pytest.mark.parametrize("drop", range(6))
def test_truncate_drops_the_last_rows_of_each_series_and_series_left_empty(drop):
    panel = make_panel()
    short = panel.truncate(drop)
    expected = {sid: (ds[: len(ds) - drop], values[: len(ds) - drop])
                for sid, (ds, values) in rows_of(panel).items() if len(ds) > drop}
    assert rows_of(short) == expected
    kept = [sid in expected for sid in panel.ids]
    assert short.missing_timestamps.tolist() == panel.missing_timestamps[kept].tolist()
    assert short.missing_values.tolist() == panel.missing_values[kept].tolist()


def test_truncate_read_from_a_file(write_csv):
    panel = read_series(write_csv("unique_id,ds,y\n" + "".join(
        f"{s},2024-01-{d:02d},{d}\n" for s in "ab" for d in range(1, 6 if s == "a" else 3))))
    short = panel.truncate(2)
    assert short.ids.tolist() == ["a"]  # b had only 2 rows
    assert short.values[:, 0].tolist() == [1, 2, 3]
    assert short.ds[-1] == np.datetime64("2024-01-03")


@pytest.mark.parametrize("rows", range(6))
def test_tail_keeps_the_last_rows_of_each_series(rows):
    panel = make_panel()
    last = panel.tail(rows)
    expected = {sid: (ds[max(len(ds) - rows, 0):], values[max(len(ds) - rows, 0):])
                for sid, (ds, values) in rows_of(panel).items() if rows}
    assert rows_of(last) == expected
    assert last.lengths.tolist() == ([min(n, rows) for n in panel.lengths] if rows else [])


def test_tail_of_what_truncate_leaves_is_a_window_before_the_end():
    """evaluate's actuals: the horizon rows just before the last drop - horizon of each series."""
    window = make_panel().truncate(1).tail(2)
    assert window.values[:, 0].tolist() == [1, 2, 202, 203]  # b, of one row, has none left


@pytest.mark.parametrize(("text", "config", "expected"), [
    ("unique_id,ds,y\nA,2024-01-01,1\nA,2024-01-02,2\nA,2024-01-03,-1\nB,2024-01-01,0\nB,2024-01-02,3\n", None,
     "series 'A' has -1 on 2024-01-03 00:00:00 in column 'y'"),
    ("unique_id,ds,y\nA,1990,1\nA,1991,-2.5\nB,1990,3\nB,1991,4\n", None,
     "series 'A' has -2.5 on 1991 in column 'y'"),
    ("date,north,south\n2024-01-01,1,5\n2024-01-02,2,-6\n2024-01-03,3,7\n", None,
     "series 'south' has -6 on 2024-01-02 00:00:00 in column 'south'"),  # wide: the series is the column
    ("unique_id,ds,v,c\nA,2024-01-01T01:00,1,-3\nA,2024-01-01T02:00,1e-9,4\nA,2024-01-01T03:00,-0.000001,4\n",
     DataConfig(covariates=("c",)), "series 'A' has -1e-06 on 2024-01-01 03:00:00 in column 'v'"),
    ("unique_id,ds,y\nA,2024-01-01,1\nA,2024-01-02,2\n", None, None),
])
def test_first_not_positive_names_series_value_stamp_and_column(write_csv, text, config, expected):
    """The wording pandas gave when Panel held a frame: a stamp as str(pd.Timestamp), a period as an int; a
    negative covariate does not count."""
    assert read_series(write_csv(text), config).first_not_positive() == expected


def test_first_not_positive_is_the_first_row_of_the_first_series():
    panel = make_panel(integer=True)
    values = panel.values.copy()
    values[[6, 2], 0] = [0.0, -4.0]
    panel = replace(panel, values=values)
    assert panel.first_not_positive() == "series 'a' has -4 on 1992 in column 'y'"


def test_to_frame_round_trips_through_a_csv(write_csv):
    text = ("shop,when,sold,price,y\nb,2024-01-01,1,5,0\nb,2024-01-02,2,6,1\na,2024-01-01,3,7,2\n"
            "a,2024-01-02,4,8,3\na,2024-01-03,5,9,4\n")
    config = DataConfig(id_col="shop", time_col="when", target="sold", covariates=("price", "y"))
    panel = read_series(write_csv(text), config)
    frame = panel.to_frame()
    assert list(frame.columns) == ["unique_id", "ds", "y", 0, 1]  # covariates by position: one is called "y"
    assert frame["unique_id"].tolist() == ["a", "a", "a", "b", "b"]
    assert frame[0].tolist() == [7, 8, 9, 5, 6] and frame[1].tolist() == [2, 3, 4, 0, 1]
    back = read_series(write_csv(frame.rename(columns={0: "price", 1: "y", "y": "sold"}).to_csv(index=False),
                                 "back.csv"), DataConfig(target="sold", covariates=("price", "y")))
    assert back.ids.tolist() == panel.ids.tolist() and back.starts.tolist() == panel.starts.tolist()
    np.testing.assert_array_equal(back.ds, panel.ds)
    np.testing.assert_array_equal(back.values, panel.values)


def test_to_frame_keeps_integer_periods():
    frame = make_panel(integer=True, covariates=0).to_frame()
    assert frame["ds"].dtype == np.int64 and frame["ds"].tolist()[:4] == [1990, 1991, 1992, 1990]
    pd.testing.assert_series_equal(frame["y"], pd.Series(make_panel(covariates=0).values[:, 0], name="y"))


def test_ids_stay_object_arrays_of_str(write_csv):
    panel = read_series(write_csv("unique_id,ds,y\n007,2024-01-01,1\n007,2024-01-02,2\n" + "x" * 1000
                                  + ",2024-01-01,3\n" + "x" * 1000 + ",2024-01-02,4\n"))
    for part in (panel, panel.select(np.array([False, True])), panel.truncate(1), panel.tail(1)):
        assert part.ids.dtype == object and all(type(sid) is str for sid in part.ids)
    assert panel.ids.tolist() == ["007", "x" * 1000]


def test_values_stay_column_major():
    """Each column contiguous, as the reader's frame held them (the bits of a reduction depend on the layout)."""
    panel = make_panel(covariates=2)
    for part in (panel, panel.select(np.array([True, False, True])), panel.truncate(1), panel.tail(2)):
        assert part.values.flags["F_CONTIGUOUS"] and part.values.shape[1] == 3


def test_last_windows_is_features_last_windows():
    panel = make_panel()
    got = panel.last_windows(2, target_only=True)
    want = last_windows(panel.ids, panel.values[:, :1], panel.ds, panel.starts, 2)
    np.testing.assert_array_equal(got.values, want.values)
    assert got.values.shape == (3, 2, 1) and got.length.tolist() == [2, 1, 2]
    assert panel.last_windows(3).values.shape == (3, 3, 2)
