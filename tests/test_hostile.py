"""The hostile cases of issue 14, end to end through the real command (`python -m forecast_cli`, a fresh process
each, as cron runs it): every case ends in its documented exit code with one line on stderr, loses nothing,
shifts nothing and answers within seconds. `make fuzz` and `make test-all` run it (marked slow); the faster
unit tests of each class are in tests/test_safety_*.py, tests/test_manifest.py and tests/test_reliability.py.
"""

import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import zipfile
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import seasonal_frame

pytestmark = pytest.mark.slow

TIMEOUT = 60  # seconds: every bounded case answers well within it


def forecast(*args, cwd, stdin=None, timeout=TIMEOUT, env=None, **kwargs):
    return subprocess.run([sys.executable, "-m", "forecast_cli", *map(str, args)], cwd=cwd, stdin=stdin,
                          capture_output=True, timeout=timeout, env={**os.environ, **(env or {})}, **kwargs)


BOUNDED_SECONDS = 30  # an input beyond a bound is refused within seconds...
BOUNDED_KIB = 1536 * 1024  # ...and in under 1.5 GB (the peak RSS of the whole process, JAX's import included)


# A child inherits the high-water mark of the process it was forked from (pytest grows past 1.5 GB under
# `make fuzz`), so forecast runs as the grandchild of a small fresh Python that reports its peak (os.wait4).
_MEASURED = """import os, signal, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, "-m", "forecast_cli", *sys.argv[2:]])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as report:
    report.write(str(usage.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
if code < 0:
    os.kill(os.getpid(), -code)
sys.exit(code)
"""


def bounded(*args, cwd, stdin=None):
    """Run forecast like forecast(), measuring its peak memory and killing it after BOUNDED_SECONDS; asserts
    both bounds and returns the CompletedProcess."""
    with tempfile.NamedTemporaryFile("r") as report:
        process = subprocess.Popen([sys.executable, "-c", _MEASURED, report.name, *map(str, args)], cwd=cwd,
                                   stdin=stdin or subprocess.DEVNULL, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, start_new_session=True)
        timer = threading.Timer(BOUNDED_SECONDS, os.killpg, (process.pid, signal.SIGKILL))
        timer.start()
        out, err = process.communicate()
        timer.cancel()
        peak_kib = int(report.read() or 0)
    assert process.returncode != -signal.SIGKILL, f"no answer within {BOUNDED_SECONDS} s"
    assert peak_kib < BOUNDED_KIB, f"peak memory {peak_kib / 1024:.0f} MB"
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def refused(result, code):
    """Exit `code` with one error line on stderr (its last; notes and progress may come before), no traceback."""
    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == code, (result.returncode, stderr[-2000:])
    lines = stderr.strip().splitlines()
    assert lines and lines[-1].startswith("Error: "), stderr[-2000:]
    assert sum(line.startswith("Error: ") for line in lines) == 1 and "Traceback" not in stderr, stderr[-2000:]
    return lines[-1]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A directory with daily data and a small snaive model trained on it."""
    root = tmp_path_factory.mktemp("trained")
    seasonal_frame(n_series=3, length=60).to_csv(root / "daily.csv", index=False)
    assert forecast("train", "daily.csv", "--model", "snaive", "--model-dir", "model", "-q", cwd=root).returncode == 0
    return root


@pytest.fixture
def work(trained, tmp_path):
    """A copy of the trained directory to spoil."""
    shutil.copytree(trained, tmp_path / "w")
    return tmp_path / "w"


def write_manifest(model: Path, manifest: dict) -> None:
    from forecast_cli.manifest import seal

    manifest = {k: v for k, v in manifest.items() if k != "checksum"}
    (model / "manifest.json").write_text(json.dumps(seal(manifest)))


def manifest_of(model: Path) -> dict:
    return json.loads((model / "manifest.json").read_text())


# 1. data loss

def test_someone_elses_directory_with_a_manifest_is_never_replaced(work):
    app = work / "webapp"
    (app / "src").mkdir(parents=True)
    (app / "manifest.json").write_text('{"name": "my web app", "version": "1.0"}')
    (app / "src" / "app.js").write_text("console.log('hi')")
    refused(forecast("train", "daily.csv", "--model", "naive", "--model-dir", app, cwd=work), 1)
    assert (app / "src" / "app.js").read_text() == "console.log('hi')"
    assert sorted(p.name for p in work.iterdir() if p.name.startswith(".webapp")) in ([], [".webapp.lock"])


def test_a_model_directory_with_extra_files_is_not_replaced(work):
    (work / "model" / "notes.txt").write_text("mine")
    refused(forecast("train", "daily.csv", "--model", "naive", "--model-dir", "model", cwd=work), 1)
    assert (work / "model" / "notes.txt").read_text() == "mine"


# 2. dates and periods outside what can be represented

def stamps(first: date, step: str, n: int = 60) -> list[str]:
    if step == "D":
        return [(first + timedelta(days=k)).isoformat() for k in range(n)]
    if step == "YS":
        return [date(first.year + k, 1, 1).isoformat() for k in range(n)]
    return [date(first.year + (first.month - 1 + k) // 12, (first.month - 1 + k) % 12 + 1, 1).isoformat()
            for k in range(n)]


@pytest.mark.parametrize("first,step", [(date(1, 1, 1), "D"), (date(1600, 1, 1), "YS"), (date(1677, 1, 1), "MS"),
                                        (date(2262, 6, 1), "D")])
def test_dates_outside_the_nanosecond_range_are_refused_not_shifted(tmp_path, first, step):
    pd.DataFrame({"ds": stamps(first, step), "y": np.arange(60.0)}).to_csv(tmp_path / "old.csv", index=False)
    extra = ["--freq", step] if step == "YS" else []
    line = refused(forecast("train", "old.csv", "--model", "naive", *extra, cwd=tmp_path), 2)
    assert "line" in line


def test_a_forecast_past_2262_is_refused_not_wrapped(tmp_path):
    pd.DataFrame({"ds": pd.date_range(end="2262-04-09", periods=60), "y": np.arange(60.0)}).to_csv(
        tmp_path / "late.csv", index=False)
    trained = forecast("train", "late.csv", "--model", "naive", "--horizon", "7", "-q", cwd=tmp_path)
    if trained.returncode == 0:
        refused(forecast("predict", cwd=tmp_path), 2)
    else:
        refused(trained, 2)


def test_integer_periods_near_the_int64_limit_never_wrap(tmp_path):
    top = 2**63 - 1
    pd.DataFrame({"period": np.arange(top - 40, top - 10), "y": np.arange(30.0)}).to_csv(
        tmp_path / "p.csv", index=False)
    trained = forecast("train", "p.csv", "--model", "naive", "--horizon", "6", "-q", cwd=tmp_path)
    if trained.returncode == 2:  # refusing such periods, naming the line, is as good as handling them
        assert "line 2" in refused(trained, 2)
        return
    assert trained.returncode == 0, trained.stderr
    out = forecast("predict", "--horizon", "6", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert pd.read_csv(io.BytesIO(out.stdout), dtype={"ds": str})["ds"].tolist() == [
        str(top - 10 + k) for k in range(6)]
    refused(forecast("predict", "--horizon", "11", cwd=tmp_path), 2)


# 3. unbounded memory or time from small inputs

@pytest.mark.parametrize("args", [
    ["predict", "--model-dir", "model", "--horizon", "1000000000"],
    ["predict", "--model-dir", "model", "--horizon", "100000000000000000000"],
    ["evaluate", "daily.csv", "--model", "naive", "--folds", "1000000000"],
    ["train", "daily.csv", "--model", "naive", "--horizon", "1e20"],
])
def test_huge_counts_are_refused_at_once(work, args):
    refused(bounded(*args, cwd=work), 2)


def test_zero_streams_are_refused_at_once(work):
    with open("/dev/zero", "rb") as zero:
        refused(bounded("inspect", "-", cwd=work, stdin=zero), 2)
    refused(bounded("inspect", "/dev/zero", cwd=work), 2)
    manifest = work / "model" / "manifest.json"
    manifest.unlink()
    manifest.symlink_to("/dev/zero")
    refused(bounded("predict", "--model-dir", "model", cwd=work), 1)


def test_a_megabyte_id_is_refused_not_stored_300_times(tmp_path):
    frame = seasonal_frame(n_series=300, length=30)
    frame.loc[frame["unique_id"] == "s7", "unique_id"] = "x" * 2**20
    frame.to_csv(tmp_path / "long_id.csv", index=False)
    assert "line" in refused(bounded("train", "long_id.csv", "--model", "naive", cwd=tmp_path), 2)


def test_a_deflate_bomb_in_the_arrays_is_refused(work):
    model = work / "model"
    arrays = model / "arrays.npz"
    with np.load(arrays) as data:
        contents = {k: data[k] for k in data.files}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, value in contents.items():
            member = io.BytesIO()
            np.save(member, value)
            z.writestr(name + ".npy", member.getvalue())
        big = io.BytesIO()
        np.lib.format.write_array_header_1_0(big, {"descr": "<f8", "fortran_order": False, "shape": (2**27,)})
        z.writestr("params/bomb.npy", big.getvalue() + bytes(2**30))  # 1 GiB of zeros, about 1 MB deflated
    arrays.write_bytes(buffer.getvalue())
    from forecast_cli.persistence import sha256

    manifest = manifest_of(model)
    manifest["files"]["arrays.npz"] = {"sha256": sha256(arrays), "bytes": arrays.stat().st_size}
    write_manifest(model, manifest)
    refused(bounded("predict", "--model-dir", "model", cwd=work), 1)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "shadow", "outside"])
def test_special_files_and_links_in_the_model_directory_are_refused(work, kind):
    arrays = work / "model" / "arrays.npz"
    if kind == "outside":
        shutil.copy(arrays, work / "elsewhere.npz")
    arrays.unlink()
    if kind == "fifo":
        os.mkfifo(arrays)
    else:
        arrays.symlink_to({"dev-zero": "/dev/zero", "shadow": "/etc/shadow", "outside": work / "elsewhere.npz"}[kind])
    refused(bounded("predict", "--model-dir", "model", cwd=work), 1)


def test_a_linked_file_gives_the_same_error_whatever_it_holds(work):
    """No oracle: the message must not depend on whether a guessed checksum of the link's target is right."""
    arrays = work / "model" / "arrays.npz"
    target = work / "secret"
    target.write_text("secret")
    arrays.unlink()
    arrays.symlink_to(target)
    from forecast_cli.persistence import sha256

    first = refused(forecast("predict", "--model-dir", "model", cwd=work), 1)
    manifest = manifest_of(work / "model")
    manifest["files"]["arrays.npz"] = {"sha256": sha256(target), "bytes": target.stat().st_size}
    write_manifest(work / "model", manifest)
    assert refused(forecast("predict", "--model-dir", "model", cwd=work), 1) == first


# 4. silent wrong forecasts

@pytest.mark.parametrize("value", ["1.7e308", "-1.7e308", "1e200"])
def test_values_that_would_overflow_are_refused(tmp_path, value):
    frame = pd.DataFrame({"ds": pd.date_range("2024-01-01", periods=40), "y": np.arange(40.0)}).astype(object)
    frame.loc[20, "y"] = value
    frame.to_csv(tmp_path / "big.csv", index=False)
    assert "line 22" in refused(forecast("train", "big.csv", "--model", "esn", cwd=tmp_path), 2)


def test_ids_are_text_whatever_the_column_is_called(tmp_path):
    frame = seasonal_frame(n_series=2, length=40).rename(columns={"unique_id": "store"})
    frame["store"] = frame["store"].map({"s0": "007", "s1": "010"})
    frame.to_csv(tmp_path / "stores.csv", index=False)
    assert forecast("train", "stores.csv", "--id-col", "store", "--model", "naive", "-q", cwd=tmp_path).returncode == 0
    out = forecast("predict", cwd=tmp_path)
    assert sorted(set(pd.read_csv(io.BytesIO(out.stdout), dtype=str)["unique_id"])) == ["007", "010"]


def test_an_id_with_a_bare_carriage_return_stays_one_row(tmp_path):
    rows = ["unique_id,ds,y"] + [f'"a\rb",2024-01-{d:02d},{d}' for d in range(1, 29)] + [
        f"c,2024-01-{d:02d},{d}" for d in range(1, 29)]
    (tmp_path / "cr.csv").write_text("\n".join(rows) + "\n")
    assert forecast("train", "cr.csv", "--model", "naive", "--horizon", "7", "-q", cwd=tmp_path).returncode == 0
    out = forecast("predict", cwd=tmp_path)
    back = pd.read_csv(io.BytesIO(out.stdout), dtype={"unique_id": str})
    assert len(back) == 14 and sorted(set(back["unique_id"])) == ["a\rb", "c"]


def test_writing_through_a_symlink_updates_its_target(work):
    (work / "real.csv").write_text("old\n")
    os.chmod(work / "real.csv", 0o644)
    (work / "link.csv").symlink_to("real.csv")
    assert forecast("predict", "--model-dir", "model", "-o", "link.csv", cwd=work).returncode == 0
    assert (work / "link.csv").is_symlink()
    assert (work / "real.csv").read_text().startswith("unique_id,ds,y_hat")
    assert stat.S_IMODE((work / "real.csv").stat().st_mode) == 0o644


def test_fresh_data_of_another_frequency_is_refused_not_resampled(work):
    weekly = seasonal_frame(n_series=3, length=30, freq="W-SUN")
    weekly.to_csv(work / "weekly.csv", index=False)
    line = refused(forecast("predict", "weekly.csv", "--model-dir", "model", cwd=work), 2)
    assert "weekly" in line and "daily" in line


# 5. the model directory cannot lie

def test_a_one_bit_flip_in_the_manifest_is_caught(work):
    manifest = work / "model" / "manifest.json"
    text = manifest.read_text()
    flipped = text.replace('"horizon": 7', '"horizon": 6', 1)
    assert flipped != text
    manifest.write_text(flipped)
    refused(forecast("predict", "--model-dir", "model", cwd=work), 1)


@pytest.mark.parametrize("edit", [
    lambda m: m.pop("window"),
    lambda m: m.update(kind="bogus"),
    lambda m: m["window"].update(horizon="7"),
    lambda m: m["window"].update(horizon=10**9),
    lambda m: m["window"].update(lookback=-3),
    lambda m: m.update(freq="int:0"),
    lambda m: m.update(series=m["series"][:-1]),
    lambda m: m["window"].update(log=1),
], ids=["no-window", "bogus-kind", "string-horizon", "huge-horizon", "negative-lookback", "int0", "series-count",
        "int-for-bool"])
def test_a_resealed_manifest_with_a_bad_field_is_refused(work, edit):
    model = work / "model"
    manifest = manifest_of(model)
    edit(manifest)
    write_manifest(model, manifest)
    refused(bounded("predict", "--model-dir", "model", cwd=work), 1)


def test_a_deeply_nested_manifest_is_refused(work):
    (work / "model" / "manifest.json").write_text("[" * 200_000 + "]" * 200_000)
    refused(bounded("predict", "--model-dir", "model", cwd=work), 1)


# Unclean: filesystem faults

@pytest.fixture
def tiny_fs(work):
    """A 64 KB tmpfs inside the working copy (skipped where mounting is not permitted)."""
    mount = work / "full"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_filesystem_keeps_the_old_output_and_says_so(work, tiny_fs):
    old = tiny_fs / "out.csv"
    old.write_text("previous forecast\n")
    seasonal_frame(n_series=400, length=60).to_csv(work / "many.csv", index=False)
    assert forecast("train", "many.csv", "--model", "naive", "--model-dir", "many", "-q", cwd=work).returncode == 0
    refused(forecast("predict", "--model-dir", "many", "-o", old, cwd=work), 1)
    assert old.read_text() == "previous forecast\n"
    assert sorted(p.name for p in tiny_fs.iterdir()) == ["out.csv"]  # no temporary file left


def test_a_full_filesystem_keeps_the_old_model(work, tiny_fs):
    seasonal_frame(n_series=400, length=60).to_csv(work / "many.csv", index=False)
    shutil.copytree(work / "model", tiny_fs / "model")
    before = (tiny_fs / "model" / "manifest.json").read_bytes()
    refused(forecast("train", "many.csv", "--model", "naive", "--model-dir", tiny_fs / "model", cwd=work), 1)
    assert (tiny_fs / "model" / "manifest.json").read_bytes() == before
    assert forecast("predict", "--model-dir", tiny_fs / "model", cwd=work).returncode == 0


@pytest.mark.parametrize("where", ["file", "under-file"])
def test_a_model_dir_that_is_a_file_is_refused(work, where):
    (work / "plain").write_text("x")
    target = work / "plain" if where == "file" else work / "plain" / "model"
    refused(forecast("train", "daily.csv", "--model", "naive", "--model-dir", target, cwd=work), 1)
    assert (work / "plain").read_text() == "x"


@pytest.mark.parametrize("output", ["missing/out.csv", "adir"])
def test_output_into_a_missing_directory_or_onto_a_directory(work, output):
    (work / "adir").mkdir()
    refused(forecast("predict", "--model-dir", "model", "-o", output, cwd=work), 1)


def test_stdout_full_or_closed_and_stdin_closed(work):
    full = subprocess.run(f"{sys.executable} -m forecast_cli predict --model-dir model > /dev/full", shell=True,
                          cwd=work, stderr=subprocess.PIPE, timeout=TIMEOUT)
    refused(full, 1)
    closed = subprocess.run(f"{sys.executable} -m forecast_cli predict --model-dir model >&-", shell=True,
                            cwd=work, stderr=subprocess.PIPE, timeout=TIMEOUT)
    refused(closed, 1)
    no_stdin = subprocess.run(f"{sys.executable} -m forecast_cli inspect - <&-", shell=True, cwd=work,
                              capture_output=True, timeout=TIMEOUT)
    refused(no_stdin, 2)


# Unclean: input and flags

@pytest.mark.parametrize("args", [
    ["--freq", "0D"], ["--freq", "-1D"], ["--freq", "1ns"], ["--seed", "1e20"], ["--seed", str(2**70)],
    ["--horizon", "0"], ["--batch-size", "0"], ["--learning-rate", "-1"], ["--dropout", "1.5"],
    ["--epochs", "0"], ["--lookback", "0"], ["--device", "gpu"],
])
def test_bad_flags_are_refused_in_one_line(work, args):
    result = forecast("train", "daily.csv", "--model", "gru", "--model-dir", "flagged", *args, cwd=work, timeout=30)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr.decode()
    assert not (work / "flagged").exists()


def test_evaluate_step_zero_is_refused(work):
    result = forecast("evaluate", "daily.csv", "--model", "naive", "--step", "0", cwd=work)
    assert result.returncode == 2 and b"Traceback" not in result.stderr


def test_cr_only_line_endings_read_like_any_other(tmp_path):
    frame = seasonal_frame(n_series=1, length=30).drop(columns="unique_id")
    (tmp_path / "mac.csv").write_bytes(frame.to_csv(index=False).replace("\n", "\r").encode())
    result = forecast("inspect", "mac.csv", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["n_rows"] == 30


def test_columns_named_like_internal_ones_are_just_columns(tmp_path):
    frame = seasonal_frame(n_series=2, length=40)
    frame["line"] = np.arange(len(frame), dtype=float)
    frame["rank"] = 1.0
    frame.to_csv(tmp_path / "cols.csv", index=False)
    result = forecast("train", "cols.csv", "--covariates", "line,rank", "--model", "naive", "-q", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_duplicate_columns_after_stripping_are_refused(tmp_path):
    (tmp_path / "dup.csv").write_text("ds,y, y\n2024-01-01,1,2\n2024-01-02,2,3\n")
    refused(forecast("inspect", "dup.csv", cwd=tmp_path), 2)


def test_an_id_spelled_na_is_an_id(tmp_path):
    frame = seasonal_frame(n_series=2, length=40)
    frame["unique_id"] = frame["unique_id"].map({"s0": "NA", "s1": "null"})
    frame.to_csv(tmp_path / "na.csv", index=False)
    result = forecast("inspect", "na.csv", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sorted(s["unique_id"] for s in json.loads(result.stdout)["series"]) == ["NA", "null"]


def test_terminal_escapes_in_ids_are_never_printed_raw(tmp_path):
    frame = seasonal_frame(n_series=2, length=40)
    frame["unique_id"] = frame["unique_id"].map({"s0": "\x1b]0;pwned\x07evil", "s1": "\x1b[2Jclear"})
    frame.to_csv(tmp_path / "esc.csv", index=False)
    table = forecast("inspect", "esc.csv", cwd=tmp_path)
    assert table.returncode == 0
    assert b"\x1b" not in table.stdout and b"\x1b" not in table.stderr
    bad = forecast("train", "esc.csv", "--model", "naive", "--lookback", "100", cwd=tmp_path)
    assert b"\x1b" not in bad.stderr


# Unclean: permissions and litter

def test_files_and_directories_honour_the_umask(work):
    result = subprocess.run(f"umask 022; {sys.executable} -m forecast_cli train daily.csv --model naive "
                            "--model-dir fresh -q && "
                            f"{sys.executable} -m forecast_cli predict --model-dir fresh -o out.csv", shell=True,
                            cwd=work, capture_output=True, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((work / "fresh").stat().st_mode) == 0o755
    assert stat.S_IMODE((work / "fresh" / "manifest.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((work / "out.csv").stat().st_mode) == 0o644


def test_the_root_directory_is_never_a_model_directory(work):
    result = forecast("train", "daily.csv", "--model", "naive", "--model-dir", "/", cwd=work)
    assert result.returncode in (1, 2) and b"Traceback" not in result.stderr
    assert not Path("/..lock").exists() and not Path("/.lock").exists()


def test_a_linked_model_directory_stays_a_link(work):
    (work / "link").symlink_to("model")
    assert forecast("train", "daily.csv", "--model", "naive", "--model-dir", "link", "-q", cwd=work).returncode == 0
    assert (work / "link").is_symlink() and manifest_of(work / "model")["kind"] == "naive"
