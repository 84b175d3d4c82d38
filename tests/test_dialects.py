"""Files as people have them: semicolons and decimal commas, Excel's "CSV (semicolon)", tabs, pipes, quoted
thousands, day-first dates (--sep, --decimal, --thousands, --date-format), and .parquet."""

import json
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from forecast_cli import csvin, manifest
from forecast_cli.cli import app
from forecast_cli.config import DataConfig
from forecast_cli.data import read_series
from forecast_cli.errors import ConfigError, DataError

runner = CliRunner()

SEMICOLON = "date;value\n2020-01-01;18,3\n2020-01-02;19,1\n2020-01-03;17,0\n2020-01-04;16,5\n"
EXCEL = ("\ufeffdate;value\r\n03/09/2015;18,3\r\n04/09/2015;19,1\r\n05/09/2015;17,0\r\n06/09/2015;16,5\r\n"
         ).encode("utf-8")
TAB = "date\tvalue\n2020-01-01\t1.5\n2020-01-02\t2.5\n2020-01-03\t3.5\n"
PIPE = "unique_id|ds|y\nA|2020-01-01|1\nA|2020-01-02|2\nB|2020-01-01|3\nB|2020-01-02|4\n"
SEMICOLON_DOTS = "date;value\n2020-01-01;18.3\n2020-01-02;19.1\n2020-01-03;17.0\n"
THOUSANDS = 'date,value\n2020-01-01,"2,830.0"\n2020-01-02,"2,900.5"\n2020-01-03,12.0\n'
EUROPEAN_THOUSANDS = "date;value\n2020-01-01;1.830,5\n2020-01-02;2.900,0\n2020-01-03;12,0\n"


def test_semicolon_with_decimal_commas(write_csv):
    panel = read_series(write_csv(SEMICOLON), DataConfig(decimal=","))
    np.testing.assert_allclose(panel.values[:, 0], [18.3, 19.1, 17.0, 16.5])
    assert (panel.freq, panel.layout, panel.columns["target"]) == ("D", "single", "value")


def test_semicolon_with_decimal_commas_says_which_option_is_missing(write_csv):
    with pytest.raises(DataError) as caught:
        read_series(write_csv(SEMICOLON))
    assert str(caught.value) == (
        "data.csv: no numeric value column besides time column 'date' (read as ';'-separated with '.' decimals; "
        "columns: value); values such as '18,3' need --decimal ,")


def test_excel_semicolon_export(write_csv):
    """BOM, CRLF, ';', dd/mm/yyyy, decimal comma: 03/09/2015 is the 3rd of September."""
    panel = read_series(write_csv(EXCEL), DataConfig(decimal=",", date_format="%d/%m/%Y"))
    assert str(panel.ds[0])[:10] == "2015-09-03" and panel.freq == "D"
    np.testing.assert_allclose(panel.values[:, 0], [18.3, 19.1, 17.0, 16.5])
    assert panel.columns["time"] == "date"  # (the BOM is not part of the name)


def test_dayfirst_and_an_explicit_format_decide_the_order(write_csv):
    path = write_csv(EXCEL)
    dayfirst = read_series(path, DataConfig(decimal=",", date_format="dayfirst"))
    assert [str(d)[:10] for d in dayfirst.ds] == ["2015-09-03", "2015-09-04", "2015-09-05", "2015-09-06"]
    monthly = write_csv("date;value\n09/01/2015;1\n09/02/2015;2\n09/03/2015;3\n", "monthfirst.csv")
    panel = read_series(monthly, DataConfig(date_format="%m/%d/%Y"))
    assert [str(d)[:10] for d in panel.ds] == ["2015-09-01", "2015-09-02", "2015-09-03"]


def test_slashed_dates_without_a_format_say_how_to_give_the_order(write_csv):
    with pytest.raises(DataError, match=r"line 2: '03/09/2015' is not a date or time .*; for day/month/year pass "
                                        r"--date-format %d/%m/%Y \(or dayfirst\), for month/day/year "
                                        r"--date-format %m/%d/%Y$"):
        read_series(write_csv(EXCEL), DataConfig(decimal=","))


def test_a_date_that_does_not_match_the_format(write_csv):
    path = write_csv("date,value\n31/01/2020,1\n2020-02-01,2\n")
    with pytest.raises(DataError, match=r"^data.csv: column 'date', line 3: '2020-02-01' does not match "
                                        r"--date-format %d/%m/%Y$"):
        read_series(path, DataConfig(date_format="%d/%m/%Y"))


def test_tab_and_pipe_are_detected(write_csv):
    tab = read_series(write_csv(TAB, "tab.tsv"))
    np.testing.assert_allclose(tab.values[:, 0], [1.5, 2.5, 3.5])
    pipe = read_series(write_csv(PIPE, "pipe.csv"))
    assert (pipe.layout, list(pipe.ids)) == ("long", ["A", "B"])


def test_semicolon_with_dot_decimals_is_detected(write_csv):
    panel = read_series(write_csv(SEMICOLON_DOTS))
    np.testing.assert_allclose(panel.values[:, 0], [18.3, 19.1, 17.0])


@pytest.mark.parametrize("sep", ["\t", "\\t", "tab"])
def test_sep_forces_a_tab(write_csv, sep):
    panel = read_series(write_csv(TAB), DataConfig(sep=sep))
    assert len(panel.ds) == 3


def test_a_forced_sep_that_does_not_fit_names_it(write_csv):
    with pytest.raises(DataError, match=r"^data.csv: line 2 has more fields than the header \(1 columns, read as "
                                        r"','-separated\); pass --sep if the delimiter is another$"):
        read_series(write_csv(SEMICOLON), DataConfig(sep=","))


def test_quoted_thousands(write_csv):
    path = write_csv(THOUSANDS)
    with pytest.raises(DataError) as caught:
        read_series(path)
    assert str(caught.value) == ("data.csv: column 'value', line 2: '2,830.0' is not a number (read as "
                                 "','-separated with '.' decimals); values such as '2,830.0' need --thousands ','")
    panel = read_series(path, DataConfig(thousands=","))
    np.testing.assert_allclose(panel.values[:, 0], [2830.0, 2900.5, 12.0])


def test_quoted_decimal_commas_in_a_comma_file(write_csv):
    panel = read_series(write_csv('date,value\n2020-01-01,"18,3"\n2020-01-02,"1,5"\n'), DataConfig(decimal=","))
    np.testing.assert_allclose(panel.values[:, 0], [18.3, 1.5])


def test_european_thousands_and_decimals(write_csv):
    panel = read_series(write_csv(EUROPEAN_THOUSANDS), DataConfig(decimal=",", thousands="."))
    np.testing.assert_allclose(panel.values[:, 0], [1830.5, 2900.0, 12.0])


@pytest.mark.parametrize(("config", "message"), [
    (DataConfig(sep=":"), "Unknown --sep ':'; choose ',', ';', tab (or \\t) or '|'"),
    (DataConfig(decimal=";"), "Unknown --decimal ';'; choose . or ,"),
    (DataConfig(thousands="x"), "Unknown --thousands 'x'; choose one of ',', '.', ' ', \"'\", '_'"),
    (DataConfig(decimal=",", thousands=","), "--thousands ',' is also the --decimal mark; they must differ"),
    (DataConfig(date_format="dd/mm/yyyy"), "--date-format 'dd/mm/yyyy': expected a strftime format such as "
                                           "%d/%m/%Y, or dayfirst"),
])
def test_option_errors(write_csv, config, message):
    with pytest.raises(ConfigError) as caught:
        read_series(write_csv(SEMICOLON), config)
    assert str(caught.value) == message


def test_detection_looks_at_the_data_lines_too():
    """A header that both ',' and ';' split: the lines after it decide."""
    raw = b"a,b;c,d\n1;2,5\n3;4,5\n"
    assert csvin.detect_sep(raw, 0, raw.index(b"\n")) == ";"
    raw = b"a,b;c\n1,2;x\n"
    assert csvin.detect_sep(raw, 0, raw.index(b"\n")) == ","


def test_inspect_json_of_each_dialect(write_csv):
    cases = [(SEMICOLON, ["--decimal", ","]), (EXCEL, ["--decimal", ",", "--date-format", "%d/%m/%Y"]),
             (TAB, []), (THOUSANDS, ["--thousands", ","]), (PIPE, ["--sep", "|"])]
    for i, (content, options) in enumerate(cases):
        result = runner.invoke(app, ["inspect", str(write_csv(content, f"f{i}.csv")), "--json", *options])
        assert result.exit_code == 0, (i, result.output)
        report = json.loads(result.stdout)
        assert report["freq"] == "D" and report["n_rows"] in (3, 4)


def test_inspect_error_names_the_delimiter(write_csv):
    result = runner.invoke(app, ["inspect", str(write_csv(SEMICOLON)), "--json"])
    assert result.exit_code == 2
    assert "read as ';'-separated" in result.stderr and "need --decimal ," in result.stderr


def test_train_then_predict_rereads_fresh_data_with_the_saved_settings(write_csv, tmp_path):
    path = write_csv(EXCEL)
    options = ["--decimal", ",", "--date-format", "dayfirst", "--sep", ";"]
    result = runner.invoke(app, ["train", str(path), "--model", "naive", "--horizon", "2", "--quiet", *options])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "forecast-model" / "manifest.json").read_text())["data"]
    assert (saved["sep"], saved["decimal"], saved["thousands"], saved["date_format"]) == (";", ",", None, "dayfirst")
    fresh = write_csv(EXCEL.replace(b"16,5", b"42,5").replace(b"06/09/2015", b"07/09/2015")
                      .replace(b"05/09/2015", b"06/09/2015").replace(b"04/09/2015", b"05/09/2015")
                      .replace(b"03/09/2015", b"04/09/2015"), "fresh.csv")
    result = runner.invoke(app, ["predict", str(fresh)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0].startswith("unique_id,ds,y_hat")
    assert [line.split(",")[1:3] for line in lines[1:]] == [["2015-09-08", "42.5"], ["2015-09-09", "42.5"]]


def test_manifests_without_the_dialect_keys_still_load():
    old = {"id_col": None, "time_col": None, "target": None, "covariates": [], "freq": None,
           "fill": "interpolate", "layout": None}
    manifest.DATA(old, "data")  # no Invalid
    assert DataConfig.from_dict(old) == DataConfig()
    with pytest.raises(manifest.Invalid):
        manifest.DATA({**old, "decimal": ";"}, "data")


def test_parquet_without_pyarrow_says_what_to_install(write_csv, monkeypatch):
    path = write_csv(b"PAR1 not really", "data.parquet")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow.parquet raises ImportError
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(DataError) as caught:
        read_series(path)
    assert str(caught.value) == "reading .parquet needs pyarrow: pip install 'forecast-cli[parquet]'"
    result = runner.invoke(app, ["inspect", str(path)])
    assert result.exit_code == 2
    assert result.stderr.strip() == "Error: reading .parquet needs pyarrow: pip install 'forecast-cli[parquet]'"


def test_parquet_over_the_bound_is_refused_before_reading(write_csv, monkeypatch):
    path = write_csv(b"PAR1" + b"x" * 100, "big.parquet")
    monkeypatch.setattr(csvin, "MAX_INPUT_BYTES", 50)
    with pytest.raises(DataError, match=r"^big.parquet: larger than"):
        read_series(path)


def test_parquet_round_trip(write_csv, tmp_path):
    pytest.importorskip("pyarrow")
    import pandas as pd

    pd.DataFrame({"unique_id": ["007", "007", "B", "B"], "ds": pd.to_datetime(["2020-01-01", "2020-01-02"] * 2),
                  "y": [1.0, 2.0, 3.0, 4.0]}).to_parquet(tmp_path / "data.parquet")
    panel = read_series("data.parquet")
    assert (list(panel.ids), panel.layout, panel.freq) == (["007", "B"], "long", "D")
