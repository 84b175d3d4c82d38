"""The command line under hostile input and faults (issue 14): every numeric option has a range, Ctrl-C and
SIGTERM end a run with exit 130/143 and nothing saved, filesystem and stream faults are one line, and nothing a
user supplied reaches the terminal as a control sequence."""

import errno
import os
import signal
import subprocess
import sys
import threading
import time
import typing
from pathlib import Path

import pytest
from typer.models import OptionInfo
from typer.testing import CliRunner

from forecast_cli import limits
from forecast_cli.cli import app
from forecast_cli.report import visible

runner = CliRunner()
HUGE = "1" + "0" * 30


def numeric_options():
    """(command, flag, kind, low, high) for every int or float option of every command."""
    found = []
    for command in app.registered_commands:
        hints = typing.get_type_hints(command.callback, include_extras=True)
        for name, hint in hints.items():
            info = next((m for m in getattr(hint, "__metadata__", ()) if isinstance(m, OptionInfo)), None)
            kinds = {a for a in typing.get_args(typing.get_args(hint)[0]) or (typing.get_args(hint)[0],)}
            kind = next((k for k in (int, float) if k in kinds), None)
            if info is None or kind is None or bool in kinds:
                continue
            flag = next((d for d in info.param_decls if d.startswith("--")), f"--{name.replace('_', '-')}")
            found.append((command.callback.__name__, flag, kind, info.min, info.max))
    return found


OPTIONS = numeric_options()


def test_the_walk_finds_the_numeric_options():
    flags = {(c, f) for c, f, *_ in OPTIONS}
    assert {("train", "--learning-rate"), ("train", "--dropout"), ("predict", "--horizon"), ("evaluate", "--step"),
            ("evaluate", "--folds"), ("plot", "--horizon"), ("train", "--seed")} <= flags
    assert len(OPTIONS) >= 24


@pytest.mark.parametrize("command, flag, kind, low, high", OPTIONS, ids=[f"{c} {f}" for c, f, *_ in OPTIONS])
def test_every_numeric_option_has_a_range_and_refuses_what_is_outside(command, flag, kind, low, high):
    assert low is not None and high is not None, f"{command} {flag} has no range: give it one from limits.py"
    assert high < float(HUGE)
    bad = {"-1" if low > -1 else None, "0" if low > 0 else None, HUGE, f"-{HUGE}", "1e400", "abc",
           str(high + 1) if kind is int else repr(high * 1.5 + 1), "1e20" if kind is int else "nan"} - {None}
    data = [] if command in ("predict", "plot") else ["data.csv"]
    for value in sorted(bad):
        result = runner.invoke(app, [command, *data, flag, value])
        assert result.exit_code == 2, (value, result.output)
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"Error: Invalid value for '{flag}'"), (value, lines)
        assert f"see 'forecast {command} --help'" in lines[0]


@pytest.mark.parametrize("command", sorted({c for c, *_ in OPTIONS}))
def test_help_states_each_range_as_limits_py_has_it(command, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    text = runner.invoke(app, [command, "--help"]).output
    for name, flag, _, low, high in OPTIONS:
        if name == command:
            assert f"{low}<=x<={high}" in text, (flag, low, high)


def test_the_ranges_are_the_limits():
    ranges = {(c, f): (low, high) for c, f, _, low, high in OPTIONS}
    assert ranges["predict", "--horizon"] == (1, limits.MAX_HORIZON)
    assert ranges["evaluate", "--folds"] == (1, limits.MAX_FOLDS)
    assert ranges["evaluate", "--step"] == (1, limits.MAX_STEP)
    assert ranges["train", "--batch-size"] == (1, limits.MAX_BATCH_SIZE)
    assert ranges["train", "--learning-rate"] == (limits.MIN_LEARNING_RATE, limits.MAX_LEARNING_RATE)
    assert ranges["train", "--dropout"] == (0.0, limits.MAX_DROPOUT)
    assert ranges["train", "--seed"] == (0, limits.MAX_SEED)


def test_a_bad_option_or_command_is_one_line():
    for args in (["train", "x.csv", "--no-such"], ["no-such-command"], ["train"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("Error: "), result.stderr


# ---- evaluate: folds x step that can't fit, refused before any training --------------------------------------

def test_folds_that_cannot_fit_are_refused_before_training(seasonal_csv, monkeypatch):
    import forecast_cli.evaluate as evaluate

    def no_training(*args, **kwargs):
        raise AssertionError("trained before checking the folds")

    monkeypatch.setattr(evaluate, "fit_model", no_training)
    path = seasonal_csv(n_series=1, length=60)
    result = runner.invoke(app, ["evaluate", str(path), "--model", "naive", "--folds", "1000", "--step", "7"])
    assert result.exit_code == 2, result.output
    assert "1000 fold(s) of horizon 7, 7 step(s) apart, hold out the last 7000 rows" in result.stderr
    assert "the longest has 60" in result.stderr


def test_backtest_bounds_its_options_for_library_callers_too(seasonal_csv):
    from forecast_cli.data import read_series
    from forecast_cli.errors import ConfigError
    from forecast_cli.evaluate import backtest

    panel = read_series(seasonal_csv(n_series=1, length=60))
    for kwargs in ({"folds": 10**9}, {"folds": 0}, {"step": 0}, {"horizon": 0}, {"horizon": 10**9}):
        with pytest.raises(ConfigError):
            backtest(panel, [], **{"horizon": 7, **kwargs})


# ---- filesystem and stream faults: one line, exit 1 ------------------------------------------------------------

@pytest.fixture
def model(seasonal_csv, tmp_path):
    path = seasonal_csv(n_series=2, length=60)
    result = runner.invoke(app, ["train", str(path), "--model", "snaive", "--model-dir", "m", "--quiet"])
    assert result.exit_code == 0, result.output
    return tmp_path / "m"


def one_line(result, code, *parts):
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert "Traceback" not in result.output
    for part in parts:
        assert part in lines[0], (part, lines[0])


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_train_save_failing_on_the_filesystem_is_one_line(model, seasonal_csv, monkeypatch, code):
    import forecast_cli.persistence as persistence

    before = (model / "manifest.json").read_bytes()

    def fail(directory, artifact):
        raise OSError(code, os.strerror(code), str(directory))

    monkeypatch.setattr(persistence, "save_artifact", fail)
    path = seasonal_csv(n_series=2, length=60)
    result = runner.invoke(app, ["train", str(path), "--model", "snaive", "--model-dir", "m", "--quiet"])
    one_line(result, 1, "Error: cannot write m: ", os.strerror(code), "unchanged")
    assert (model / "manifest.json").read_bytes() == before


def test_model_dir_that_is_a_file_or_under_one_is_refused_before_training(seasonal_csv, tmp_path, monkeypatch):
    import forecast_cli.fit as fit

    monkeypatch.setattr(fit, "fit_model", lambda *a, **k: pytest.fail("trained"))
    (tmp_path / "file").write_text("mine")
    path = seasonal_csv(n_series=2, length=60)
    for model_dir in ("file", "file/m"):
        result = runner.invoke(app, ["train", str(path), "--model", "snaive", "--model-dir", model_dir])
        one_line(result, 1, f"--model-dir {model_dir} ", "a file, not a directory")
    assert (tmp_path / "file").read_text() == "mine"


@pytest.mark.parametrize("target", ["missing/out.csv", "adir"])
def test_predict_output_into_a_missing_directory_or_onto_one(model, tmp_path, target):
    (tmp_path / "adir").mkdir()
    result = runner.invoke(app, ["predict", "--model-dir", "m", "-o", target])
    one_line(result, 1, target)
    assert list((tmp_path / "adir").iterdir()) == []


def test_predict_output_oserror_is_one_line(model, tmp_path, monkeypatch):
    import forecast_cli.persistence as persistence

    def fail(path, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(persistence, "write_text_atomic", fail)
    one_line(runner.invoke(app, ["predict", "--model-dir", "m", "-o", "out.csv"]), 1,
             "cannot write out.csv: No space left on device")


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device"),
                                   OSError(errno.EBADF, "Bad file descriptor"), OSError(errno.EIO, "I/O error")])
def test_stdout_that_fails_is_an_output_error(monkeypatch, error):
    import forecast_cli.cli as cli
    from forecast_cli.errors import OutputError

    class Failing:
        def write(self, text):
            raise error

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stdout", Failing())
    with pytest.raises(OutputError, match=f"^cannot write to standard output: {error.strerror}$"):
        cli.emit("unique_id,ds,y_hat\n")


def test_stdout_whose_reader_left_is_silent(monkeypatch):
    import forecast_cli.cli as cli

    class Gone:
        def write(self, text):
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stdout", Gone())
    cli.emit("unique_id,ds,y_hat\n")  # no error: `| head` left early, as it may


def forecast(*args, cwd, **kwargs):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    return subprocess.run([sys.executable, "-m", "forecast_cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120, **kwargs)


def shell(command: str, cwd):
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PY": sys.executable}
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_predict_to_dev_full_closed_stdout_and_closed_stdin(model, tmp_path):
    full = shell('"$PY" -m forecast_cli predict --model-dir m > /dev/full', tmp_path)
    assert full.returncode == 1, full.stderr
    assert full.stderr.strip() == "Error: cannot write to standard output: No space left on device"
    for args in ("--version", "train --help", "inspect seasonal.csv", "inspect seasonal.csv --json"):
        other = shell(f'"$PY" -m forecast_cli {args} > /dev/full', tmp_path)
        assert (other.returncode, other.stderr) == (1, full.stderr), (args, other.stderr)
    closed = shell('"$PY" -m forecast_cli predict --model-dir m >&-', tmp_path)
    assert closed.returncode == 1, closed.stderr
    assert closed.stderr.strip().startswith("Error: cannot write to standard output: it was closed")
    no_stdin = shell('"$PY" -m forecast_cli inspect - <&-', tmp_path)
    assert no_stdin.returncode == 2, no_stdin.stderr
    assert no_stdin.stderr.strip().splitlines() == [
        "Error: <stdin>: standard input is closed; pipe the CSV in or pass a file"]
    head = shell('"$PY" -m forecast_cli predict --model-dir m --horizon 5000 -q | head -1; '
                 'echo "rc=${PIPESTATUS[0]}"', tmp_path)
    assert head.stdout.splitlines() == ["unique_id,ds,y_hat", "rc=0"], head.stdout
    assert head.stderr == ""


# ---- devices -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("device, present", [("gpu", "/dev/nvidia0"), ("tpu", "/dev/accel0")])
def test_a_device_that_is_not_there_is_one_line_exit_2(seasonal_csv, tmp_path, device, present):
    if os.path.exists(present):
        pytest.skip(f"this machine has a {device}")
    path = seasonal_csv(n_series=2, length=60)
    result = forecast("train", str(path), "--model", "snaive", "--device", device, "--model-dir", "m", cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"Error: --device {device}: no {device.upper()} is available to JAX here")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "m").exists()


# ---- control characters never reach the terminal raw --------------------------------------------------------------

def test_visible_escapes_control_characters_once():
    assert visible("a\x1b[2Jb\x9b31m\r\x07\x7f") == "a\\x1b[2Jb\\x9b31m\\x0d\\x07\\x7f"
    assert visible("line 1\nline\t2 é 東") == "line 1\nline\t2 é 東"


def test_the_terminal_and_messages_escape_the_same_characters():
    """One list (forecast_cli.escapes) for both: bidirectional overrides and line separators, which reorder or
    break what a terminal shows, are escaped at the terminal too, not only in error messages."""
    from forecast_cli.csvin import clip

    assert visible("id\u202eevil\u2028") == "id\\u202eevil\\u2028"
    assert clip("id\u202eevil\u2028") == "id\\u202eevil\\u2028"


def test_ids_and_messages_with_escapes_are_shown_escaped(write_csv, tmp_path):
    path = write_csv("unique_id,ds,y\n" + "".join(f"A\x1b[31mred\x07,2024-01-0{d},{d}\n" for d in (1, 2, 3)))
    result = runner.invoke(app, ["inspect", str(path)])
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "A\\x1b[31mred" in result.stdout, result.stdout  # the table may cut the rest off
    result = runner.invoke(app, ["--log-file", "log.txt", "inspect", str(path), "--target", "\x1b]0;owned\x07"])
    assert result.exit_code == 2
    assert "\x1b" not in result.stderr and "\\x1b]0;owned" in result.stderr
    assert "\x1b" not in (tmp_path / "log.txt").read_text()


# ---- Ctrl-C and SIGTERM: exit 130/143, nothing saved, no leftovers ----------------------------------------------

INTERRUPTED = "Interrupted: nothing was saved; the previous model is intact."
linux_only = pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="polls /proc")


class Run:
    """`forecast train ...` in a subprocess, its stderr collected line by line as it comes."""

    def __init__(self, args, cwd):
        env = {**os.environ, "JAX_PLATFORMS": "cpu"}
        self.process = subprocess.Popen([sys.executable, "-m", "forecast_cli", "train", *args], cwd=cwd, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.process.stderr), daemon=True)
        self.reader.start()

    def wait_until(self, condition, what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.process.poll() is None, f"ended before {what}: {self.lines}"
            assert time.monotonic() < deadline, f"no {what} within {timeout} s"
            time.sleep(0.001)

    def proc(self, name: str) -> str:
        try:
            return Path(f"/proc/{self.process.pid}/{name}").read_text()
        except OSError:
            return ""

    def handles_sigterm(self) -> bool:  # our handler is installed: Python alone leaves SIGTERM uncaught
        caught = next((line.split()[1] for line in self.proc("status").splitlines() if line.startswith("SigCgt")),
                      "0")
        return bool(int(caught, 16) & (1 << (signal.SIGTERM - 1)))

    def finish(self, signum) -> tuple[int, list[str]]:
        self.process.send_signal(signum)
        code = self.process.wait(timeout=120)
        self.reader.join(timeout=10)
        return code, [line.rstrip("\n") for line in self.lines]


@pytest.fixture
def previous(seasonal_csv, tmp_path):
    """A trained model in ./m and a snapshot of everything beside it."""
    path = seasonal_csv(n_series=2, length=150)
    result = runner.invoke(app, ["train", str(path), "--model", "snaive", "--model-dir", "m", "--quiet"])
    assert result.exit_code == 0, result.output

    def unchanged():
        return sorted(p.name for p in tmp_path.iterdir()), (tmp_path / "m" / "manifest.json").read_bytes(), \
            sorted(p.name for p in (tmp_path / "m").iterdir())

    return path, unchanged(), unchanged


@linux_only
@pytest.mark.parametrize("point", ["handler installed", "inside import jax", "0.5 s"])
def test_sigint_early_in_a_run_exits_130_and_saves_nothing(previous, tmp_path, point):
    path, before, now = previous
    run = Run([str(path), "--model", "snaive", "--model-dir", "m", "--horizon", "3"], tmp_path)
    if point == "handler installed":
        run.wait_until(run.handles_sigterm, point)
    elif point == "inside import jax":
        run.wait_until(lambda: "jaxlib" in run.proc("maps"), point)
    else:
        time.sleep(0.5)
    code, lines = run.finish(signal.SIGINT)
    assert code == 130, lines
    assert lines and lines[-1].startswith("Interrupted"), lines
    assert not any("Traceback" in line for line in lines)
    assert now() == before


@linux_only
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_mid_training_exits_130_or_143_and_saves_nothing(previous, tmp_path, signum, code):
    path, before, now = previous
    run = Run([str(path), "--model", "gru", "--epochs", "50", "--hidden", "8", "--model-dir", "m"], tmp_path)
    run.wait_until(lambda: any(line.startswith("epoch 1/50") for line in run.lines), "first epoch")
    got, lines = run.finish(signum)
    assert got == code, lines
    expected = INTERRUPTED if signum == signal.SIGINT else INTERRUPTED.replace("Interrupted", "Terminated")
    assert lines[-1] == expected, lines
    assert now() == before


def test_the_handler_removes_a_save_in_flight_and_exits_130(tmp_path):
    """on_interrupt itself, in a child process: what persistence is staging is removed, the line is said."""
    staged = tmp_path / ".m.tmp-123"
    staged.mkdir()
    (staged / "arrays.npz").write_bytes(b"half")
    code = ("import os, signal, sys; from pathlib import Path; import forecast_cli.cli as cli; "
            "import forecast_cli.persistence as p; p.STAGING.append(Path(sys.argv[1])); "
            "cli.install_interrupt_handlers(); cli.INTERRUPTED[:] = [sys.argv[2], 'saved']; "
            "os.kill(os.getpid(), signal.SIGINT); print('not reached')")
    result = subprocess.run([sys.executable, "-c", code, str(staged), INTERRUPTED], capture_output=True, text=True,
                            timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (130, "", INTERRUPTED + "\n")
    assert not staged.exists()


def test_a_signal_during_the_commit_waits_for_it_then_says_the_model_was_saved(tmp_path):
    import forecast_cli.persistence as persistence

    if not hasattr(persistence, "_commit_guard"):
        pytest.skip("persistence has no commit guard")
    code = ("import os, signal; import forecast_cli.cli as cli; import forecast_cli.persistence as p; "
            "cli.install_interrupt_handlers(); cli.INTERRUPTED[:] = ['nothing saved', 'the new model was saved']\n"
            "with p._commit_guard():\n"
            "    os.kill(os.getpid(), signal.SIGTERM); print('renamed', flush=True)\n"
            "print('not reached')")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (143, "renamed\n", "the new model was saved\n")


# ---- fresh data of another frequency is refused, not resampled ----------------------------------------------------

@pytest.mark.parametrize("command", ["predict", "plot"])
def test_fresh_data_of_another_frequency_is_refused(model, write_csv, tmp_path, command):
    from conftest import seasonal_frame

    weekly = write_csv(seasonal_frame(n_series=2, length=60, freq="W-SUN").to_csv(index=False), "weekly.csv")
    result = runner.invoke(app, [command, str(weekly), "--model-dir", "m", "-o", f"out.{command}"])
    one_line(result, 2, "weekly.csv")
    assert not (tmp_path / f"out.{command}").exists()
    daily = write_csv(seasonal_frame(n_series=2, length=60).to_csv(index=False), "daily.csv")
    assert runner.invoke(app, ["predict", str(daily), "--model-dir", "m", "-q"]).exit_code == 0
