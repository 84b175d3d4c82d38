import json

import pytest
from typer.testing import CliRunner

from forecast_cli.cli import app

runner = CliRunner()

LONG = "unique_id,ds,y\n" + "".join(f"{s},2024-01-0{d},{v + d}\n" for s, v in (("A", 0), ("B", 4)) for d in (1, 2, 3))


def command_names():
    return [c.name or c.callback.__name__ for c in app.registered_commands]


@pytest.mark.parametrize("name", command_names())
def test_every_command_has_help_with_an_example(name):
    result = runner.invoke(app, [name, "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.output and "forecast " + name in result.output


def test_top_level_help_and_version():
    assert "Example:" in runner.invoke(app, ["--help"]).output
    assert runner.invoke(app, ["--version"]).output.startswith("forecast ")


def test_inspect_long_file(write_csv):
    result = runner.invoke(app, ["inspect", str(write_csv(LONG))])
    assert result.exit_code == 0, result.output
    assert "2 series, long layout, daily (D)" in result.stdout
    assert "total: 2" in result.stdout


def test_inspect_wide_and_single_files(write_csv):
    wide = write_csv("date,north,south\n2024-01-01,1,5\n2024-01-02,2,6\n2024-01-03,3,7\n", "wide.csv")
    result = runner.invoke(app, ["inspect", str(wide), "--json"])
    assert json.loads(result.stdout)["layout"] == "wide"
    single = write_csv("date,level,rain\n2024-01-01,1,0\n2024-01-02,2,1\n2024-01-03,3,0\n", "single.csv")
    result = runner.invoke(app, ["inspect", str(single), "--target", "level", "--covariates", "rain", "--json"])
    report = json.loads(result.stdout)
    assert (report["layout"], report["covariates"], report["n_series"]) == ("single", ["rain"], 1)


def test_inspect_reads_stdin():
    result = runner.invoke(app, ["inspect", "-", "--json"], input=LONG)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["source"] == "<stdin>"
    assert [s["unique_id"] for s in report["series"]] == ["A", "B"]
    assert report["n_rows"] == 6


def test_inspect_json_reports_filled_values_and_notes_them_on_stderr(write_csv):
    path = write_csv("unique_id,ds,y\nA,2024-01-01,1\nA,2024-01-02,\nA,2024-01-04,4\nA,2024-01-05,5\n")
    result = runner.invoke(app, ["inspect", str(path), "--json"])
    report = json.loads(result.stdout)
    assert (report["missing_timestamps"], report["missing_values"]) == (1, 1)
    assert "filled 1 missing timestamp(s) and 1 empty value(s) in 1 series by --fill interpolate" in result.stderr


def test_inspect_summarises_many_series(write_csv):
    rows = "".join(f"s{i:03d},2024-01-0{d},{i + d}\n" for i in range(100) for d in range(1, 4))
    result = runner.invoke(app, ["inspect", str(write_csv("unique_id,ds,y\n" + rows))])
    assert result.exit_code == 0
    assert "… 90 more" in result.stdout
    assert "s099" not in result.stdout
    assert len(result.stdout.splitlines()) < 30


@pytest.mark.parametrize(
    "content, args, expected",
    [
        ("", [], "Error: data.csv: the file is empty"),
        ("unique_id,ds,y\nA,2024-01-01,x\n", [], "Error: data.csv: column 'y', line 2: 'x' is not a number"),
        (LONG, ["--target", "sales"], "Error: data.csv: column 'sales' (from --target) not found"),
        (LONG, ["--fill", "magic"], "Error: Unknown --fill 'magic'"),
    ],
)
def test_bad_input_is_one_line_on_stderr_and_exit_2(write_csv, content, args, expected):
    result = runner.invoke(app, ["inspect", str(write_csv(content)), *args])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(expected)
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_missing_file_exits_2(tmp_path):
    result = runner.invoke(app, ["inspect", str(tmp_path / "nope.csv")])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"Error: {tmp_path / 'nope.csv'}: no such file"


def test_bad_option_exits_2():
    assert runner.invoke(app, ["inspect", "--no-such-flag", "x.csv"]).exit_code == 2


def test_help_imports_no_heavy_libraries():
    import subprocess
    import sys

    code = ("import sys; from forecast_cli.cli import app; "
            "print(sorted(m for m in ('jax', 'flax', 'optax', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_wide_file_without_target_says_which_columns_became_series():
    from pathlib import Path

    river = str(Path(__file__).parent.parent / "sample_data" / "river.csv")
    result = runner.invoke(app, ["inspect", river])
    assert result.exit_code == 0
    assert "wide layout: each of the 3 value columns is a series (discharge, rain, temp)" in result.stderr
    chosen = runner.invoke(app, ["inspect", river, "--target", "discharge", "--covariates", "rain,temp"])
    assert "wide layout" not in chosen.stderr


def test_inspect_off_a_terminal_never_cuts_a_cell(write_csv):
    """In a pipe or a cron log rich assumes 80 columns; the table widens instead of folding or eliding cells."""
    long_id = "series-" + "x" * 120
    rows = "".join(f"{sid},2024-01-0{d},{-16.5 - d}\n" for sid in (long_id, "b") for d in (1, 2, 3))
    result = runner.invoke(app, ["inspect", str(write_csv("unique_id,ds,y\n" + rows))])
    assert result.exit_code == 0
    assert long_id in result.stdout and "…" not in result.stdout
    assert "2024-01-03" in result.stdout and "-19.5" in result.stdout


def test_plot_history_draws_as_many_steps_as_asked(seasonal_csv, tmp_path, monkeypatch):
    import forecast_cli.plots as plots

    drawn = {}
    monkeypatch.setattr(plots, "plot_forecast", lambda history, *a, **k: drawn.update(history=history))
    path = seasonal_csv(n_series=2, length=120)
    assert runner.invoke(app, ["train", str(path), "--model", "snaive", "--model-dir", "m", "-q"]).exit_code == 0
    for args, rows in (([], 21), ([str(path)], 21), ([str(path), "--history", "50"], 50)):
        result = runner.invoke(app, ["plot", *args, "--model-dir", "m", "-o", "p.png", "-q"])
        assert result.exit_code == 0, result.output
        assert drawn["history"].groupby("unique_id").size().tolist() == [rows, rows], args
    assert runner.invoke(app, ["plot", "--model-dir", "m", "--history", "0"]).exit_code == 2


@pytest.mark.parametrize("stamp, written", [("2024-01-{d:02d}T{h:02d}:00", "2024-01-05T00:00:00"),
                                             ("2024-01-{d:02d} {h:02d}:00", "2024-01-05 00:00:00")])
def test_forecast_stamps_keep_the_input_s_style(write_csv, stamp, written):
    """ISO 8601 with a T in, T out (from the model directory and from fresh data alike); a space stays a space."""
    rows = "".join(f"{stamp.format(d=1 + i // 24, h=i % 24)},{i % 24 + 1}\n" for i in range(96))
    path = str(write_csv("time,load\n" + rows))
    assert runner.invoke(app, ["train", path, "--model", "snaive", "--model-dir", "m", "-q"]).exit_code == 0
    for args in ([], [path]):
        result = runner.invoke(app, ["predict", *args, "--model-dir", "m", "--horizon", "2"])
        assert result.exit_code == 0, result.output
        assert result.stdout.splitlines()[1].startswith(f"load,{written},")
