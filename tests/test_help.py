"""--help and the messages around it (issue 16): -h, plain metavars, panels, defaults that depend on the data."""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from forecast_cli.cli import app

runner = CliRunner()
COMMANDS = ["inspect", "train", "update", "predict", "evaluate", "plot"]


def help_of(*args: str) -> str:
    result = runner.invoke(app, [*args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("name", COMMANDS)
def test_dash_h_is_help_everywhere(name):
    assert help_of(name, "-h") == help_of(name, "--help")
    assert "Usage:" in help_of(name, "-h")


def test_dash_h_is_help_at_the_top_and_horizon_has_only_its_long_name():
    assert help_of("-h") == help_of("--help")
    assert not any("-h " in line and "--horizon" in line for line in help_of("train", "-h").splitlines())


def test_forecast_alone_prints_help_with_exit_0():
    result = runner.invoke(app, [])
    assert result.exit_code == 0
    assert "Usage:" in result.output and "train" in result.output


@pytest.mark.parametrize("name", COMMANDS)
def test_help_has_no_stray_space_before_a_full_stop_nor_typer_type_labels(name):
    text = help_of(name, "--help")
    assert not re.search(r" \.(\s|$)", text)  # "Steps to forecast ." (a default text lost as markup)
    for label in ("<str>", "<bool>", "<int", "<float", "{data}"):
        assert label not in text


def test_defaults_that_depend_on_the_data_are_shown():
    text = help_of("train", "--help")
    assert "[default: about one season" in text
    assert "[default: a few seasons, capped by the data]" in text
    assert "DATA" in text.splitlines()[1] and "INTEGER" in text
    assert "[default: the trained horizon]" in help_of("predict", "--help")


def test_train_options_are_in_panels_in_order():
    text = help_of("train", "--help")
    titles = [line.split("─ ")[1].split(" ")[0] for line in text.splitlines() if line.startswith("╭─ ")]
    assert titles == ["Arguments", "Data", "Model", "Training", "Output", "Scale-out"]


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_at_least_two_examples(name):
    examples = help_of(name, "--help").split("Examples:")[1].split("╭")[0]
    assert examples.count("forecast " + name) >= 2


def test_top_level_help_says_where_models_and_the_compile_cache_live():
    text = " ".join(help_of("--help").split())
    assert "FORECAST_MODEL_DIR" in text and "FORECAST_CACHE_DIR" in text and "~/.cache/forecast/jax" in text


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("forecast ")
