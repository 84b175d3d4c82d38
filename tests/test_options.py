"""forecast_cli.options: the option group added by @data_options, and the checks typer can't make."""

from __future__ import annotations

import re

import pytest
import typer
from typer.testing import CliRunner

from forecast_cli.cli import app
from forecast_cli.config import FILL_POLICIES, DataConfig
from forecast_cli.errors import ConfigError, OutputError
from forecast_cli.options import (
    DATA_OPTIONS,
    Quiet,
    check_choice,
    check_model_dir,
    check_series,
    data_config,
    data_options,
    parse_levels,
    prediction_shard,
)

runner = CliRunner()


def test_data_options_reach_the_command_as_one_data_config():
    seen = []
    probe = typer.Typer()

    @probe.command()
    @data_options
    def command(data: str, config: DataConfig = None, quiet: Quiet = False):
        """Probe."""
        seen.append((data, config, quiet))

    @probe.command()
    def other():
        """Keeps `command` a subcommand."""

    result = runner.invoke(probe, ["command", "x.csv", "--target", "level", "--covariates", " rain, tide,",
                                   "--fill", "zero", "-q"])
    assert result.exit_code == 0, result.output
    assert seen == [("x.csv", DataConfig(target="level", covariates=("rain", "tide"), fill="zero"), True)]
    runner.invoke(probe, ["command", "y.csv"])
    assert seen[1] == ("y.csv", DataConfig(), False)  # the defaults are DataConfig's


def test_the_data_options_default_as_data_config_does():
    assert data_config(**{name: default for name, (_, default) in DATA_OPTIONS.items()}) == DataConfig()
    assert DataConfig().fill in FILL_POLICIES


@pytest.mark.parametrize("command", ["inspect", "train", "evaluate"])
def test_commands_with_data_list_the_data_options_in_one_place(command, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    text = runner.invoke(app, [command, "--help"]).output
    flags = re.findall(r"│ (--[a-z-]+)", text)
    at = flags.index("--id-col")
    assert flags[at:at + 10] == ["--id-col", "--time-col", "--target", "--covariates", "--future-covariates",
                                 "--holidays", "--static", "--freq", "--fill", "--layout"]
    assert "[default: interpolate]" in text


def test_check_choice_lists_the_choices():
    check_choice("--loss", "mae", ("mase", "mae", "mse"))
    with pytest.raises(ConfigError, match=r"^Unknown --loss 'x'; choose mase, mae or mse$"):
        check_choice("--loss", "x", ("mase", "mae", "mse"))
    with pytest.raises(ConfigError, match=r"^Unknown --scaling 'x'; choose standard or robust$"):
        check_choice("--scaling", "x", ("standard", "robust"))
    with pytest.raises(ConfigError, match=r"^Unknown --model 'x'; choose one of a, b, c, d$"):
        check_choice("--model", "x", ("a", "b", "c", "d"))


def test_parse_levels():
    assert parse_levels(None) == [] and parse_levels("") == []
    assert parse_levels("95, 80,80,") == [80, 95]
    with pytest.raises(ConfigError, match=r"^--levels '80,x': expected whole percentages such as 80,95$"):
        parse_levels("80,x")
    with pytest.raises(ConfigError, match=r"^--levels '100': each level must be between 1 and 99$"):
        parse_levels("100")


@pytest.mark.parametrize("count, index", [(2, None), (None, 0), (2, 2), (3, -1)])
def test_prediction_shard_needs_both_in_range(count, index):
    with pytest.raises(ConfigError, match=r"^--num-processes N and --process-id I go together, with 0 <= I < N$"):
        prediction_shard(count, index)


def test_prediction_shard():
    assert prediction_shard(None, None) is None
    assert prediction_shard(3, 2) == (3, 2)


def test_check_model_dir_refuses_a_file_or_a_path_under_one(tmp_path):
    check_model_dir(str(tmp_path / "new" / "model"))
    (tmp_path / "f").write_text("")
    with pytest.raises(OutputError, match=r"f is a file, not a directory; choose another --model-dir$"):
        check_model_dir(str(tmp_path / "f"))
    with pytest.raises(OutputError, match=rf"m is under {re.escape(str(tmp_path / 'f'))}, which is a file"):
        check_model_dir(str(tmp_path / "f" / "m"))


def test_check_series_names_the_first_unknown_one():
    check_series(None, ["a"])
    check_series(["a"], ["a", "b"])
    ids = [f"s{i}" for i in range(7)]
    with pytest.raises(ConfigError, match=r"^--series zz: no such series; the model knows s0, s1, s2, s3, s4 …$"):
        check_series(["s1", "zz", "yy"], ids)
    with pytest.raises(ConfigError, match=r"^--series zz: no such series; the model knows a$"):
        check_series(["zz"], ["a"])
