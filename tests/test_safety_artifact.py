"""The model directory and output files under hostile input and faults (issue 14): never delete what is not
ours, never follow a link or read a special file, bounded reads, consistent reads during a swap, the umask,
filesystem faults reported in one line, Ctrl-C held off during the commit."""

import dataclasses
import errno
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from conftest import seasonal_frame

import forecast_cli.persistence as persistence
from forecast_cli.artifact import Artifact
from forecast_cli.config import TrainSpec
from forecast_cli.data import read_series
from forecast_cli.errors import ArtifactError, OutputError
from forecast_cli.fit import fit_model
from forecast_cli.manifest import seal
from forecast_cli.persistence import load_artifact, model_lock, save_artifact, sha256, write_text_atomic


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two small snaive artifacts trained on different data (different fingerprints and arrays)."""
    found = []
    for seed in (0, 1):
        path = tmp_path_factory.mktemp("data") / "data.csv"
        seasonal_frame(n_series=2, length=60, seed=seed).to_csv(path, index=False)
        found.append(fit_model(read_series(str(path)), TrainSpec(kind="snaive", horizon=5, lookback=10)))
    assert found[0].manifest.fingerprint != found[1].manifest.fingerprint
    return found


@pytest.fixture
def saved(models, tmp_path):
    save_artifact(tmp_path / "m", models[0])
    return tmp_path / "m"


def entries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def one_line(error) -> str:
    message = str(error.value)
    assert "\n" not in message
    return message


def reseal(model_dir: Path, **changes) -> None:
    """Edit the manifest and seal it again, as an attacker who knows the format would."""
    manifest = json.loads((model_dir / "manifest.json").read_text())
    (model_dir / "manifest.json").write_text(json.dumps(seal({**manifest, **changes})))


def replace_arrays(model_dir: Path, data: bytes) -> None:
    """Put `data` in arrays.npz with a manifest that vouches for it (right size and checksum)."""
    (model_dir / "arrays.npz").write_bytes(data)
    reseal(model_dir, files={"arrays.npz": {"sha256": sha256(model_dir / "arrays.npz"), "bytes": len(data)}})


# ---- 1. only our own directories are replaced or deleted ------------------------------------------------------

def web_app(tmp_path):
    app = tmp_path / "D"
    (app / "src").mkdir(parents=True)
    (app / "manifest.json").write_text('{"name": "app", "version": "1.0"}')
    (app / "src" / "app.js").write_text("console.log(1)")
    return app


FOREIGN = ["web app", "our manifest plus a user file", "only arrays.npz", "manifest not ours",
           "manifest is a link", "a file"]


def make_foreign(tmp_path, saved, case) -> Path:
    target = tmp_path / "D"
    if case == "web app":
        return web_app(tmp_path)
    if case == "a file":
        target.write_text("my notes")
        return target
    shutil.copytree(saved, target)
    if case == "our manifest plus a user file":
        (target / "notes.txt").write_text("mine")
    elif case == "only arrays.npz":
        (target / "manifest.json").unlink()
    elif case == "manifest not ours":
        (target / "manifest.json").write_text('{"format_version": 2, "kind": "webpack", "files": {}}')
    elif case == "manifest is a link":
        (tmp_path / "elsewhere.json").write_text((target / "manifest.json").read_text())
        (target / "manifest.json").unlink()
        (target / "manifest.json").symlink_to(tmp_path / "elsewhere.json")
    return target


def snapshot(path: Path) -> dict:
    if path.is_file():
        return {"": path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() if p.is_file() else None for p in sorted(path.rglob("*"))}


@pytest.mark.parametrize("case", FOREIGN)
def test_a_directory_that_is_not_provably_ours_is_never_replaced(models, saved, tmp_path, case):
    target = make_foreign(tmp_path, saved, case)
    before, around = snapshot(target), entries(tmp_path)
    with pytest.raises(ArtifactError) as refused:
        save_artifact(target, models[1])
    assert "refusing to replace it" in one_line(refused)
    with pytest.raises(ArtifactError):
        with model_lock(target):
            pass
    assert snapshot(target) == before
    assert entries(tmp_path) == around  # no staging directory, no lock file


def test_an_empty_directory_and_a_model_directory_are_replaced(models, saved, tmp_path):
    (tmp_path / "empty").mkdir()
    save_artifact(tmp_path / "empty", models[1])
    save_artifact(saved, models[1])
    for target in (tmp_path / "empty", saved):
        assert load_artifact(target).manifest.fingerprint == models[1].manifest.fingerprint
        assert entries(target) == ["arrays.npz", "manifest.json"]


def test_only_our_own_leftovers_are_cleared(models, saved, tmp_path):
    ours = [tmp_path / ".m.tmp-abcd1234", tmp_path / ".m.old-wxyz_987"]
    shutil.copytree(saved, ours[0])
    shutil.copytree(saved, ours[1] / "model")
    theirs = [tmp_path / ".m.tmp-backup", tmp_path / ".m.tmp-abcd5678", tmp_path / ".m.old-qrst1234"]
    shutil.copytree(saved, theirs[0])  # not a mkdtemp name
    (theirs[1]).mkdir()
    (theirs[1] / "thesis.tex").write_text("years of work")
    shutil.copytree(saved, theirs[2] / "model")
    (theirs[2] / "model" / "notes.txt").write_text("mine")
    save_artifact(saved, models[1])
    assert not any(p.exists() for p in ours)
    assert all(p.exists() for p in theirs)
    assert (theirs[1] / "thesis.tex").read_text() == "years of work"


def test_a_model_moved_aside_by_a_killed_swap_is_put_back(models, saved, tmp_path):
    retired = tmp_path / ".m.old-abcd1234"
    retired.mkdir()
    saved.rename(retired / "model")  # killed between the two renames of the fallback swap
    assert load_artifact(saved).manifest.fingerprint == models[0].manifest.fingerprint
    save_artifact(saved, models[1])
    assert entries(tmp_path) == ["m"]


# ---- 2 and 6. bounded reads, links and special files ----------------------------------------------------------

@pytest.fixture
def alarm():
    """Fail instead of hanging: a FIFO that is opened for reading blocks forever."""
    previous = signal.signal(signal.SIGALRM, lambda *_: pytest.fail("hung"))
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def make_special(model_dir: Path, name: str, kind: str, tmp_path: Path) -> None:
    path = model_dir / name
    outside = tmp_path / f"copy-of-{name}"
    outside.write_bytes(path.read_bytes())
    path.unlink()
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        try:
            os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 5))  # /dev/zero's numbers
        except PermissionError:
            pytest.skip("mknod not permitted")
    elif kind == "directory":
        path.mkdir()
    else:
        path.symlink_to({"shadow": "/etc/shadow", "zero": "/dev/zero", "valid": str(outside)}[kind])


@pytest.mark.parametrize("name", ["arrays.npz", "manifest.json"])
@pytest.mark.parametrize("kind", ["fifo", "device", "directory", "shadow", "zero", "valid"])
def test_links_and_special_files_are_refused_unread(saved, tmp_path, alarm, name, kind, monkeypatch):
    read, real = [], persistence._read_fd
    monkeypatch.setattr(persistence, "_read_fd", lambda fd, limit: read.append(os.fstat(fd).st_mode) or real(fd, limit))
    make_special(saved, name, kind, tmp_path)
    with pytest.raises(ArtifactError) as refused:
        load_artifact(saved)
    message = one_line(refused)
    assert message == f"{saved / name}: not a regular file (a link, FIFO, device or directory); the model " \
                      "directory was tampered with, retrain it"  # the same whatever a link points at
    assert all(stat.S_ISREG(mode) for mode in read)  # nothing but regular files was read


def test_a_huge_or_deeply_nested_manifest_is_refused_in_one_line(saved, monkeypatch):
    (saved / "manifest.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(ArtifactError, match="corrupt manifest"):
        load_artifact(saved)
    monkeypatch.setattr(persistence, "MAX_MANIFEST_BYTES", 1000)
    (saved / "manifest.json").write_text(json.dumps({"pad": "x" * 5000}))
    seen = []
    real = persistence._read_fd
    monkeypatch.setattr(persistence, "_read_fd", lambda fd, limit: seen.append(limit) or real(fd, limit))
    with pytest.raises(ArtifactError, match="larger than 1000 bytes"):
        load_artifact(saved)
    assert seen == []  # refused unread
    (saved / "manifest.json").write_text(json.dumps({"pad": "x" * 500}))
    with pytest.raises(ArtifactError):
        load_artifact(saved)
    assert seen == [(saved / "manifest.json").stat().st_size + 1]  # read once, never beyond its size


def test_arrays_of_the_wrong_size_or_over_the_limit_are_refused_before_reading(saved, monkeypatch):
    limits, real = [], persistence._read_fd
    monkeypatch.setattr(persistence, "_read_fd", lambda fd, limit: limits.append(limit) or real(fd, limit))
    original = (saved / "arrays.npz").read_bytes()
    (saved / "arrays.npz").write_bytes(original + b"\0" * 10)
    with pytest.raises(ArtifactError, match=rf"checksum mismatch \({len(original) + 10} bytes where the manifest"):
        load_artifact(saved)
    (saved / "arrays.npz").write_bytes(original)
    monkeypatch.setattr(persistence, "MAX_ARRAYS_BYTES", 100)
    with pytest.raises(ArtifactError, match="over the limit of 100"):
        load_artifact(saved)
    assert limits == [(saved / "manifest.json").stat().st_size + 1] * 2  # the manifest only, never the arrays


def test_a_deflate_bomb_is_refused_before_inflating(saved):
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{"params/w": np.zeros(10_000_000, dtype=np.float32)})  # 40 MB in 40 kB
    replace_arrays(saved, buffer.getvalue())
    with pytest.raises(ArtifactError, match="unreadable .*compressed or oversized members"):
        load_artifact(saved)


def test_an_array_header_promising_more_than_its_data_is_refused(saved):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False,
                                                      "shape": (10**12,)})
        archive.writestr("params/w.npy", header.getvalue() + b"\0" * 64)
    replace_arrays(saved, buffer.getvalue())
    with pytest.raises(ArtifactError, match="promises more data"):
        load_artifact(saved)


# ---- 7. readers during a swap see one save or the other --------------------------------------------------------

@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_loads_during_repeated_saves_are_always_one_save(models, tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(persistence, "_renameat2", None)
    elif persistence._renameat2 is None:
        pytest.skip("no renameat2 here")
    target = tmp_path / "m"
    save_artifact(target, models[0])
    values = {m.manifest.fingerprint: m.arrays["history/values"] for m in models}
    stop, saves, errors = threading.Event(), [0], []

    def writer():
        try:
            while not stop.is_set():
                save_artifact(target, models[saves[0] % 2])
                saves[0] += 1
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    thread = threading.Thread(target=writer)
    thread.start()
    seen, loads = set(), 0
    try:
        while (loads < 300 or saves[0] < 20) and loads < 100_000 and not errors:  # counts, not time
            loads += 1
            artifact = load_artifact(target)
            fingerprint = artifact.manifest.fingerprint
            np.testing.assert_array_equal(artifact.arrays["history/values"], values[fingerprint])
            seen.add(fingerprint)
            if exchange:
                assert target.is_dir()  # the exchange never leaves the path empty
    finally:
        stop.set()
        thread.join()
    assert not errors and saves[0] >= 20 and len(seen) == 2


# ---- 4. locks, links and litter ---------------------------------------------------------------------------------

def test_a_linked_model_directory_shares_its_targets_lock_and_stays_a_link(models, saved, tmp_path):
    link = tmp_path / "link"
    link.symlink_to(saved)
    with model_lock(saved):
        with pytest.raises(ArtifactError, match="another `forecast train`"):
            with model_lock(link):
                pass
    save_artifact(link, models[1])
    assert link.is_symlink() and Path(os.readlink(link)) == saved
    assert load_artifact(link).manifest.fingerprint == models[1].manifest.fingerprint
    assert entries(tmp_path) == [".m.lock", "link", "m"]


@pytest.mark.parametrize("given", ["/", "..", ".", ""])
def test_a_model_dir_with_no_name_of_its_own_is_refused_without_litter(models, tmp_path, monkeypatch, given):
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    root_lock = os.path.exists("/..lock")
    with pytest.raises(ArtifactError, match="not usable as a model directory") as refused:
        with model_lock(given):
            pass
    one_line(refused)
    with pytest.raises(ArtifactError, match="not usable as a model directory"):
        save_artifact(given, models[0])
    assert entries(tmp_path) == ["work"] and entries(tmp_path / "work") == []
    assert os.path.exists("/..lock") == root_lock


def dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_temporaries_of_killed_writers_are_removed_by_the_next_write(tmp_path):
    out = tmp_path / "out.csv"
    script = ("import os, signal, sys; from forecast_cli.persistence import write_atomic\n"
              "def die(f): f.write(b'half'); f.flush(); os.kill(os.getpid(), signal.SIGKILL)\n"
              "write_atomic(sys.argv[1], die)\n")
    killed = subprocess.run([sys.executable, "-c", script, str(out)])
    assert killed.returncode == -signal.SIGKILL
    litter = [n for n in entries(tmp_path) if n.startswith(".out.csv.tmp-")]
    assert len(litter) == 1
    alive = tmp_path / f".out.csv.tmp-{os.getpid()}-0123abcd"  # a writer still at work
    other = tmp_path / f".out.csv.tmp-{dead_pid()}-notours"  # not our pattern
    alive.write_text("in progress")
    other.write_text("someone's")
    write_text_atomic(out, "a\n1\n")
    assert entries(tmp_path) == sorted([alive.name, other.name, "out.csv"])
    assert out.read_text() == "a\n1\n"


# ---- 5. permissions -----------------------------------------------------------------------------------------------

@pytest.fixture
def umask():
    def set_umask(mask):
        os.umask(mask)
        return mask

    previous = os.umask(0o022)
    os.umask(previous)
    yield set_umask
    os.umask(previous)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_the_umask_is_honoured(models, tmp_path, umask, mask):
    umask(mask)
    assert persistence._umask() == mask
    save_artifact(tmp_path / "m", models[0])
    write_text_atomic(tmp_path / "out.csv", "a\n")
    assert stat.S_IMODE((tmp_path / "m").stat().st_mode) == 0o777 & ~mask
    for path in (tmp_path / "m" / "manifest.json", tmp_path / "m" / "arrays.npz", tmp_path / "out.csv"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask


def test_a_replaced_output_keeps_its_mode_and_a_link_stays_a_link(tmp_path, umask):
    umask(0o077)
    out = tmp_path / "out.csv"
    out.write_text("old")
    out.chmod(0o644)
    write_text_atomic(out, "new")
    assert stat.S_IMODE(out.stat().st_mode) == 0o644 and out.read_text() == "new"
    (tmp_path / "served").mkdir()
    real = tmp_path / "served" / "forecast.csv"
    real.write_text("stale")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    write_text_atomic(link, "fresh")
    assert link.is_symlink() and real.read_text() == "fresh"
    assert entries(tmp_path / "served") == ["forecast.csv"]


def test_a_special_output_file_is_written_in_place_not_replaced(tmp_path, alarm):
    """-o /dev/stdout, /dev/null or a FIFO: written into, never replaced by a regular file. Device nodes made in
    tmp_path (not the real /dev, which a regression would clobber)."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    write_text_atomic(fifo, "a\n1\n")
    reader.join()
    assert received == ["a\n1\n"] and stat.S_ISFIFO(fifo.lstat().st_mode)
    try:
        os.mknod(tmp_path / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        os.mknod(tmp_path / "full", stat.S_IFCHR | 0o666, os.makedev(1, 7))
    except PermissionError:
        pytest.skip("mknod not permitted")
    write_text_atomic(tmp_path / "null", "discarded")
    with pytest.raises(OutputError, match="full: cannot write it .No space left on device"):
        write_text_atomic(tmp_path / "full", "x" * 10_000)
    assert all(stat.S_ISCHR((tmp_path / n).lstat().st_mode) for n in ("null", "full"))
    assert entries(tmp_path) == ["full", "null", "pipe"]


# ---- 6. filesystem faults: one line, the old model and output survive, no litter -------------------------------

def fail_with(code):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    return fail


SAVE_FAULTS = {
    "full while writing the arrays": (np, "savez", errno.ENOSPC),
    "full at fsync": (os, "fsync", errno.ENOSPC),
    "read-only filesystem": (persistence.tempfile, "mkdtemp", errno.EROFS),
    "unwritable parent": (persistence.tempfile, "mkdtemp", errno.EACCES),
    "rename fails (no renameat2)": (os, "rename", errno.EIO),
    "exchange fails": (persistence, "_exchange", errno.EIO),
}


@pytest.mark.parametrize("fault", list(SAVE_FAULTS))
def test_save_faults_are_one_line_and_keep_the_old_model(models, saved, tmp_path, monkeypatch, fault):
    module, name, code = SAVE_FAULTS[fault]
    before = snapshot(saved)
    monkeypatch.setattr(persistence, "_renameat2", None if "no renameat2" in fault else persistence._renameat2)
    monkeypatch.setattr(module, name, fail_with(code))
    with pytest.raises(ArtifactError) as failed:
        save_artifact(saved, models[1])
    message = one_line(failed)
    assert message.startswith(f"{saved}: cannot save the model: {os.strerror(code)}")
    assert "previous model, if any, is unchanged" in message
    monkeypatch.undo()
    assert snapshot(saved) == before and entries(tmp_path) == ["m"]


def test_a_failed_second_rename_puts_the_old_model_back(models, saved, tmp_path, monkeypatch):
    monkeypatch.setattr(persistence, "_renameat2", None)
    real_rename, calls = os.rename, []

    def rename(a, b):
        calls.append(b)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_rename(a, b)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(ArtifactError, match="No space left"):
        save_artifact(saved, models[1])
    monkeypatch.undo()
    assert load_artifact(saved).manifest.fingerprint == models[0].manifest.fingerprint
    save_artifact(saved, models[1])
    assert entries(tmp_path) == ["m"]


def test_a_model_dir_that_is_a_file_or_under_a_file_is_one_line(models, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    for target in (tmp_path / "notes.txt", tmp_path / "notes.txt" / "model"):
        with pytest.raises(ArtifactError) as refused:
            save_artifact(target, models[0])
        one_line(refused)
    assert (tmp_path / "notes.txt").read_text() == "mine" and entries(tmp_path) == ["notes.txt"]


@pytest.mark.parametrize("fault", [(os, "fsync", errno.ENOSPC), (os, "open", errno.EROFS),
                                   (os, "rename", errno.EACCES)])
def test_output_faults_are_one_line_and_keep_the_old_file(tmp_path, monkeypatch, fault):
    out = tmp_path / "out.csv"
    out.write_text("old")
    monkeypatch.setattr(fault[0], fault[1], fail_with(fault[2]))
    with pytest.raises(OutputError) as failed:
        write_text_atomic(out, "new")
    assert one_line(failed).startswith(f"{out}: cannot write it ({os.strerror(fault[2])})")
    monkeypatch.undo()
    assert out.read_text() == "old" and entries(tmp_path) == ["out.csv"]


def test_output_into_a_missing_directory_or_onto_a_directory_is_one_line(tmp_path):
    with pytest.raises(OutputError, match="does not exist; create it"):
        write_text_atomic(tmp_path / "missing" / "out.csv", "x")
    (tmp_path / "out.csv").mkdir()
    with pytest.raises(OutputError, match="is a directory"):
        write_text_atomic(tmp_path / "out.csv", "x")
    assert entries(tmp_path) == ["out.csv"]


@pytest.fixture
def small_tmpfs(tmp_path):
    mount = tmp_path / "fs"
    mount.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True,
                       capture_output=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_real_full_and_read_only_filesystem(models, small_tmpfs):
    save_artifact(small_tmpfs / "m", models[0])
    big = Artifact(models[1].manifest, {**models[1].arrays, "params/pad": np.zeros(20_000)})
    before = snapshot(small_tmpfs / "m")
    with pytest.raises(ArtifactError, match="No space left on device"):
        save_artifact(small_tmpfs / "m", big)
    (small_tmpfs / "out.csv").write_text("old")
    with pytest.raises(OutputError, match="No space left on device"):
        write_text_atomic(small_tmpfs / "out.csv", "x" * 200_000)
    assert snapshot(small_tmpfs / "m") == before and entries(small_tmpfs) == ["m", "out.csv"]
    subprocess.run(["mount", "-o", "remount,ro", str(small_tmpfs)], check=True)
    with pytest.raises(ArtifactError, match="Read-only file system"):
        save_artifact(small_tmpfs / "m", models[1])
    with pytest.raises(OutputError, match="Read-only file system"):
        write_text_atomic(small_tmpfs / "out.csv", "new")
    with pytest.raises(ArtifactError, match="cannot create the lock file"):
        with model_lock(small_tmpfs / "m"):
            pass
    assert (small_tmpfs / "out.csv").read_text() == "old"
    assert load_artifact(small_tmpfs / "m").manifest.fingerprint == models[0].manifest.fingerprint


# ---- 7. Ctrl-C during the commit ----------------------------------------------------------------------------------

def test_staging_lists_what_is_being_written(models, tmp_path, monkeypatch):
    seen = []
    real_savez = np.savez
    monkeypatch.setattr(np, "savez", lambda f, **a: seen.append(list(persistence.STAGING)) or real_savez(f, **a))
    save_artifact(tmp_path / "m", models[0])
    assert len(seen) == 1 and len(seen[0]) == 1 and seen[0][0].name.startswith(".m.tmp-")
    assert persistence.STAGING == []


@pytest.mark.parametrize("exchange", [True, False])
def test_ctrl_c_during_the_commit_is_delivered_after_it(models, saved, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(persistence, "_renameat2", None)
    real_rename, real_exchange = os.rename, persistence._exchange

    def interrupted(function):
        def call(*args):
            os.kill(os.getpid(), signal.SIGINT)  # arrives mid-commit
            return function(*args)

        return call

    monkeypatch.setattr(os, "rename", interrupted(real_rename))
    monkeypatch.setattr(persistence, "_exchange", interrupted(real_exchange))
    monkeypatch.setattr(persistence, "COMMITTED", False)
    with pytest.raises(KeyboardInterrupt):
        save_artifact(saved, models[1])
    monkeypatch.undo()
    assert persistence.COMMITTED is True and persistence.STAGING == []
    assert load_artifact(saved).manifest.fingerprint == models[1].manifest.fingerprint
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == set()  # the mask is restored
    assert [p.name for p in saved.parent.iterdir() if p.name.startswith(f".{saved.name}.")] in (
        [], [f".{saved.name}.lock"])  # the retired old model is gone too


def test_the_retired_model_is_listed_in_staging_until_removed(models, saved, monkeypatch):
    """A Ctrl-C delivered as the commit guard ends must find the retired old model in STAGING to remove it."""
    seen = []
    real = shutil.rmtree
    monkeypatch.setattr(shutil, "rmtree", lambda p, **k: seen.append((Path(p), list(persistence.STAGING)))
                        or real(p, **k))
    save_artifact(saved, models[1])
    retired = [(p, listed) for p, listed in seen if p != saved]
    assert retired and all(p in listed for p, listed in retired)
    assert persistence.STAGING == []


WRITER = """
import sys
from pathlib import Path
from forecast_cli.data import read_series
from forecast_cli.persistence import save_artifact
from forecast_cli.config import TrainSpec
from forecast_cli.fit import fit_model
target, stop, *data = sys.argv[1:]
models = [fit_model(read_series(d), TrainSpec(kind="snaive", horizon=5, lookback=10)) for d in data]
save_artifact(target, models[0])
print("ready", flush=True)
n = 0
while not Path(stop).exists() or n < 20:
    save_artifact(target, models[n % 2])
    n += 1
print(n, flush=True)
"""


def test_loads_while_another_process_saves_are_always_one_save(models, tmp_path):
    """The issue's case across processes (no GIL between them): a writer saving two models in turn as fast as
    it can, a reader loading: every load pairs a manifest with its own arrays."""
    paths = []
    for seed in (0, 1):
        paths.append(tmp_path / f"{seed}.csv")
        seasonal_frame(n_series=2, length=60, seed=seed).to_csv(paths[-1], index=False)
    target, stop = tmp_path / "m", tmp_path / "stop"
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(target), str(stop), *map(str, paths)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "ready"
        values = {m.manifest.fingerprint: m.arrays["history/values"] for m in models}
        seen = set()
        for _ in range(300):
            artifact = load_artifact(target)
            np.testing.assert_array_equal(artifact.arrays["history/values"], values[artifact.manifest.fingerprint])
            seen.add(artifact.manifest.fingerprint)
    finally:
        stop.touch()
        saves = int(writer.communicate(timeout=60)[0].strip() or 0)
    assert writer.returncode == 0 and saves >= 20 and len(seen) == 2


def test_a_planted_lock_link_is_not_followed(tmp_path):
    victim = tmp_path / "passwd"
    victim.write_text("root:x:0:0")
    (tmp_path / ".m.lock").symlink_to(victim)
    with pytest.raises(ArtifactError, match="cannot create the lock file"):
        with model_lock(tmp_path / "m"):
            pass
    assert victim.read_text() == "root:x:0:0"
    (tmp_path / ".m.lock").unlink()
    os.mkfifo(tmp_path / ".m.lock")
    with pytest.raises(ArtifactError, match="not a regular file"):
        with model_lock(tmp_path / "m"):
            pass


@pytest.mark.parametrize("spoil", [
    lambda a: setattr(a, "manifest", dataclasses.replace(
        a.manifest, window=dataclasses.replace(a.manifest.window, horizon="5"))),  # a field of the wrong type
    lambda a: setattr(a, "manifest", dataclasses.replace(a.manifest, model={**a.manifest.model, "new_field": 1})),
    # a field manifest.py does not know (a writer that drifted)
    lambda a: a.arrays.update({"scaler/loc": a.arrays["scaler/loc"][:1]}),  # arrays that disagree
])
def test_a_model_that_would_not_load_is_never_saved(models, saved, spoil):
    import copy

    artifact = copy.deepcopy(models[1])
    spoil(artifact)
    with pytest.raises(ArtifactError, match="fails the checks of loading"):
        save_artifact(saved, artifact)
    assert load_artifact(saved).manifest.fingerprint == models[0].manifest.fingerprint
    assert [p.name for p in saved.parent.iterdir() if p.name.startswith(".m.tmp-")] == []
