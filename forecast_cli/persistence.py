"""The model directory: `manifest.json` (everything but arrays, with checksums) and `arrays.npz` (weights, scaler
statistics, the last window of every series). npz is read with allow_pickle=False, so loading runs no code.

On-disk schema (format version manifest.FORMAT_VERSION; an older or newer one is refused, naming its version
and asking to retrain):

    <model-dir>/manifest.json   a JSON object, artifact.Manifest.to_dict() plus
        format_version, package_version,
        files: {"arrays.npz": {"sha256", "bytes"}},
        checksum: sha256 of the rest of the manifest, canonical JSON (manifest.seal)
      kind, window {lookback, horizon, val_size, scaling, log}, train (config.TrainConfig), data
      (config.DataConfig; its future_covariates and holidays name the future-known inputs), freq, season,
      covariates (past-only then future ones), columns {id, time, target}, n_features, calendar, series
      (every id), fingerprint, device, model (the kind's hyperparameters; "future": the input columns known
      over the horizon), fit, validation
      {windows, model_mae, naive_mae, snaive_mae}, calibration {windows, origins, holdout, ratio}, blend (auto
      only: weight, drift, ets, errors; "ets", ETS's share, absent in models saved before it), processes
      (distributed only), updates (`forecast update`s: {at, rows, series, ids, new_series, windows,
      calibration_windows, kept, seconds}, the last 1,000),
      training_seconds. manifest.fields_of(kind) is the checked schema of each field.
    <model-dir>/arrays.npz      stored (uncompressed) .npy members, shapes checked against the manifest
      (manifest.check_arrays):
        params/<name>              the model's weights (models/<kind>.py); member<k>/... for ensembles
        scaler/loc, scaler/scale   (n_series,) per-series scaling, in the order of `series`
        history/values             (n_series, lookback, 1 + n_covariates) the last rows, NaN-padded on the left
        history/last_ds            (n_series,) the last timestamp (datetime64[ns] or int64)
        history/length             (n_series,) rows of history/values that are real
        history/nonnegative        (n_series,) bool: the target was never below 0 (forecasts are clipped at 0)
        history/rows, /digest      (n_series,) rows trained on and their uint64 digest (data.Panel.digests)
        calibration/scores         (n_windows, horizon) conformal scores: |error| / its window's error scale,
                                   oldest origin first
        calibration/ratio          (n_series,) each series' error ratio (its errors over its local scale)
        calibration/scale          (n_series,) each series' error scale at its end, in original units
        calibration/pending        (n_open, horizon) forecasts awaiting their horizon (update.py), with
          /pending_series, /pending_row  (n_open,) their series and origin row
        context/values             (n_series, context) auto only: the recent target for Theta and ETS
        state/<name>               what `update` continues from: esn gram, cross (normal equations, float64);
                                   networks mu/<param>, nu/<param> (Adam moments), adam_count (members,)

Saving writes a staging directory beside the target and swaps it into place in one step (Linux
renameat2(RENAME_EXCHANGE); elsewhere two renames, which an interrupted save's successor undoes), so an
interrupted save leaves the previous model whole. Only a directory that is provably a forecast model directory
(nothing but manifest.json and arrays.npz, a manifest that says so) or an empty one is ever replaced, and only
our own temporaries are ever deleted. Directories are created 0o777 and files 0o666 less the umask.

Reading opens the directory once and both files relative to it, never following a link inside it and refusing
anything that is not a regular file (a FIFO, a device) before reading a byte; sizes are checked against the
manifest and forecast_cli.limits before reading, the bytes are read once, and the bytes that were hashed are the
bytes that are loaded. A reader sees the old model or the new one, never a mix.

For the CLI's Ctrl-C handling: `STAGING` lists the temporaries being written right now (remove them on
interrupt), the commit itself (the renames) runs with SIGINT and SIGTERM held off until it is done, and
`COMMITTED` becomes True right after a successful commit (of a model or of an output file).

Test-only hook: with FORECAST_TEST_KILL_AT=<stage> in the environment a save SIGKILLs its own process at that
stage: "arrays" (arrays written), "manifest" (manifest written), "retired" (two-rename fallback only: the old
model moved aside, the new one not yet in place), "committed" (new model in place, old not yet removed).
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import hashlib
import io
import json
import math
import os
import re
import secrets
import shutil
import signal
import stat
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import numpy as np

from forecast_cli import __version__
from forecast_cli.artifact import Artifact, Manifest
from forecast_cli.config import MODEL_KINDS
from forecast_cli.errors import ArtifactError, OutputError
from forecast_cli.limits import MAX_ARRAYS_BYTES, MAX_MANIFEST_BYTES
from forecast_cli.manifest import FORMAT_VERSION, check_arrays, check_manifest, seal

MANIFEST = "manifest.json"
ARRAYS = "arrays.npz"
OURS = frozenset({MANIFEST, ARRAYS})

STAGING: list[Path] = []  # temporaries being written right now; remove them if the process is interrupted
COMMITTED = False  # True once this process has committed a model directory or an output file

_READ_TRIES = 10  # reads of a directory that a save keeps swapping away
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_MKDTEMP_SUFFIX = re.compile(r"[a-z0-9_]{8}")  # the random part of tempfile.mkdtemp's names
_HELD_OFF = (signal.SIGINT, signal.SIGTERM)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---- small filesystem primitives -------------------------------------------------------------------------------

def _umask() -> int:
    """The process umask, read without changing it (Linux), else by setting and restoring it."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _load_renameat2():
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    return function


_renameat2 = _load_renameat2()


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically; False where the system or filesystem cannot (then nothing moved)."""
    if _renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if _renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


@contextmanager
def _commit_guard():
    """Hold SIGINT and SIGTERM off while a commit's renames run, then deliver them; sets COMMITTED on success.

    Blocking them in the main thread is not enough while other threads run (the kernel hands the signal to one
    of them and Python then raises in the main thread), so their Python handlers are deferred as well."""
    global COMMITTED
    if threading.current_thread() is not threading.main_thread():
        yield
        COMMITTED = True
        return
    deferred: list[int] = []
    handlers = {s: signal.getsignal(s) for s in _HELD_OFF}
    for s, handler in handlers.items():
        if callable(handler):
            signal.signal(s, lambda number, _frame: deferred.append(number))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD_OFF)
    try:
        yield
        COMMITTED = True
    finally:  # the mask first, while the deferring handlers are still in place: a signal held off is delivered
        # to them, so nothing raises before the mask and the handlers are both restored
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for s, handler in handlers.items():
            if callable(handler):
                signal.signal(s, handler)
        for number in deferred:
            signal.raise_signal(number)


def _kill_point(stage: str) -> None:
    """Test-only (see the module docstring): SIGKILL this process at `stage` of a save when asked to."""
    if os.environ.get("FORECAST_TEST_KILL_AT") == stage:
        os.kill(os.getpid(), signal.SIGKILL)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _is_regular(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _entries(path: Path) -> list[str] | None:
    """The names in `path` when it is a real directory (not a link), else None."""
    try:
        return os.listdir(path) if stat.S_ISDIR(os.lstat(path).st_mode) else None
    except OSError:
        return None


def _holds_only_ours(path: Path) -> bool:
    """`path` is a real directory holding nothing but regular files named manifest.json and arrays.npz."""
    names = _entries(path)
    return names is not None and set(names) <= OURS and all(_is_regular(path / n) for n in names)


# ---- reading, bounded and without following links -------------------------------------------------------------

class _Vanished(Exception):
    """A file of the model directory disappeared while it was read (a save swapped it away): read again."""

    def __init__(self, error: ArtifactError):
        super().__init__(str(error))
        self.error = error


def _not_regular(where: Path) -> ArtifactError:
    return ArtifactError(f"{where}: not a regular file (a link, FIFO, device or directory); the model directory "
                         "was tampered with, retrain it")


def _open_regular(dir_fd: int, name: str, where: Path) -> int:
    """An fd of the regular file `name` inside the directory `dir_fd`; a link, FIFO or device is refused (with
    the same message whatever a link points at) before a byte is read. FileNotFoundError passes through."""
    try:
        if not stat.S_ISREG(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            raise _not_regular(where)  # refused unopened: opening some devices has side effects
        fd = os.open(name, _OPEN_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        raise
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENXIO):
            raise _not_regular(where) from None
        raise ArtifactError(f"{where}: cannot open ({e.strerror}); check its permissions") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _not_regular(where)
    return fd


def _read_fd(fd: int, limit: int) -> bytes:
    """At most `limit` bytes from `fd` (and closes it)."""
    with open(fd, "rb") as f:
        return f.read(limit)


def _manifest_too_large(where: Path) -> ArtifactError:
    return ArtifactError(f"{where}: larger than {MAX_MANIFEST_BYTES} bytes, not a manifest forecast writes; "
                         "retrain the model")


def _parse_manifest(raw: bytes, where: Path) -> dict:
    if len(raw) > MAX_MANIFEST_BYTES:
        raise _manifest_too_large(where)
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ArtifactError(f"{where}: corrupt manifest ({str(e)[:200]}); retrain the model") from None
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{where}: corrupt manifest (not a JSON object); retrain the model")
    return manifest


def _read_manifest(dir_fd: int, where: Path) -> dict:
    """manifest.json, refused unread when it is larger than the bound, and never read beyond it."""
    fd = _open_regular(dir_fd, MANIFEST, where)
    size = os.fstat(fd).st_size
    if size > MAX_MANIFEST_BYTES:
        os.close(fd)
        raise _manifest_too_large(where)
    return _parse_manifest(_read_fd(fd, size + 1), where)  # + 1: a file growing meanwhile is caught too


def _read_arrays_bytes(dir_fd: int, where: Path, entry: dict) -> bytes:
    """The bytes of arrays.npz, read once, after its size was checked against the manifest and the limit."""
    fd = _open_regular(dir_fd, ARRAYS, where)
    size = os.fstat(fd).st_size
    if size > MAX_ARRAYS_BYTES:
        os.close(fd)
        raise ArtifactError(f"{where}: {size} bytes, over the limit of {MAX_ARRAYS_BYTES}; retrain the model")
    if size != entry.get("bytes"):
        os.close(fd)
        raise ArtifactError(f"{where}: checksum mismatch ({size} bytes where the manifest says "
                            f"{entry.get('bytes')!r}), the file is corrupt or was changed; retrain")
    data = _read_fd(fd, size + 1)
    if len(data) != size or hashlib.sha256(data).hexdigest() != entry.get("sha256"):
        raise ArtifactError(f"{where}: checksum mismatch, the file is corrupt or was changed; retrain")
    return data


def _check_npz(data: bytes, where: Path) -> None:
    """Refuse before loading what np.savez never writes: compressed members (a deflate bomb), members larger
    than the file, object arrays, and array headers that promise more data than their member holds."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            if any(m.compress_type != zipfile.ZIP_STORED for m in members) or \
                    sum(m.file_size for m in members) > len(data):
                raise ValueError("compressed or oversized members, which forecast never writes")
            for member in members:
                _check_member(archive, member)
    except (ValueError, zipfile.BadZipFile, EOFError, OSError, NotImplementedError) as e:
        raise ArtifactError(f"{where}: unreadable ({str(e)[:200]}); retrain the model") from None


def _check_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> None:
    with archive.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"{member.filename}: npy format {version}, which forecast never writes")
    if dtype.hasobject:
        raise ValueError(f"{member.filename}: object arrays cannot be loaded when allow_pickle=False")
    if math.prod(shape) * dtype.itemsize > member.file_size:
        raise ValueError(f"{member.filename}: the header promises more data than the member holds")


def _load_npz(data: bytes, where: Path) -> dict[str, np.ndarray]:
    _check_npz(data, where)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as e:
        raise ArtifactError(f"{where}: unreadable ({str(e)[:200]}); retrain the model") from None


# ---- which directories are ours -------------------------------------------------------------------------------

def _resolve(directory: str | Path) -> Path:
    """The model directory with links resolved once (a linked model directory is written through its link).
    Refuses a path with no name of its own to put beside its parent (`/`, `.`, `..`)."""
    real = Path(os.path.realpath(directory))
    if Path(directory).name in ("", ".", "..") or real.parent == real:
        raise ArtifactError(f"--model-dir {directory}: not usable as a model directory (it has no name of its "
                            "own inside a parent directory); give a path such as ./forecast-model")
    return real


def _looks_like_our_manifest(manifest: dict) -> bool:
    version, files = manifest.get("format_version"), manifest.get("files")
    return (isinstance(version, int) and not isinstance(version, bool) and manifest.get("kind") in MODEL_KINDS
            and isinstance(files, dict) and set(files) == {ARRAYS})


def _foreign(target: Path) -> str | None:
    """Why save_artifact must not replace `target`; None when it may (missing, empty, or a model directory)."""
    try:
        if not stat.S_ISDIR(os.lstat(target).st_mode):
            return "it is not a directory"
        names = set(os.listdir(target))
    except FileNotFoundError:
        return None
    if not names:
        return None
    if not names <= OURS:
        return f"it holds {', '.join(sorted(names - OURS)[:3])}"
    if MANIFEST not in names or not _holds_only_ours(target):
        return "it has no manifest.json" if MANIFEST not in names else "it holds links or special files"
    fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        ours = _looks_like_our_manifest(_read_manifest(fd, target / MANIFEST))
    except (ArtifactError, OSError):
        ours = False
    finally:
        os.close(fd)
    return None if ours else "its manifest.json is not one forecast wrote"


def _check_replaceable(target: Path) -> None:
    try:
        reason = _foreign(target)
    except OSError as e:
        raise ArtifactError(f"{target}: cannot use it as a model directory ({e.strerror}); use another "
                            "--model-dir") from None
    if reason:
        raise ArtifactError(f"{target}: not a forecast model directory ({reason}); refusing to replace it. Use "
                            "another --model-dir, or empty this one first")


def _our_leftover(path: Path, kind: str) -> bool:
    """`path` is a staging (`tmp`) or retired (`old`) directory of an interrupted save, provably: a mkdtemp name
    and nothing but our own files inside."""
    if not _MKDTEMP_SUFFIX.fullmatch(path.name.rsplit("-", 1)[-1]):
        return False
    if kind == "tmp":
        return _holds_only_ours(path)
    names = _entries(path)
    return names == [] or (names == ["model"] and _holds_only_ours(path / "model"))


def _leftovers(target: Path, kind: str | None = None) -> list[Path]:
    """Our own staging and retired directories that an interrupted save left beside `target`."""
    try:
        names = sorted(os.listdir(target.parent))
    except OSError:
        return []
    found = []
    for k in (kind,) if kind else ("tmp", "old"):
        prefix = f".{target.name}.{k}-"
        found += [target.parent / n for n in names if n.startswith(prefix) and _our_leftover(target.parent / n, k)]
    return found


def _retired_model(target: Path) -> Path | None:
    """The newest complete model that an interrupted two-rename swap moved aside, if any."""
    found = [p / "model" for p in _leftovers(target, "old") if (p / "model" / MANIFEST).exists()]
    return max(found, key=_mtime) if found else None


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # removed meanwhile (a save finishing its swap)
        return -1.0


def _recover(target: Path) -> None:
    """Put back a model that an interrupted swap moved aside, then delete our leftovers (and only ours)."""
    retired = _retired_model(target)
    if retired is not None and not os.path.lexists(target):
        os.rename(retired, target)
    for leftover in _leftovers(target):
        shutil.rmtree(leftover, ignore_errors=True)


# ---- writing a model directory ---------------------------------------------------------------------------------

@contextmanager
def model_lock(directory: str | Path):
    """Hold an exclusive lock on a model directory (a `.NAME.lock` file beside its resolved path, so a link and
    its target share one) for one training run, after checking that the directory may be replaced.

    A second writer fails at once with ArtifactError rather than waiting (cron runs should not pile up). The
    lock is an flock, so a killed process releases it.
    """
    target = _resolve(directory)
    _check_replaceable(target)
    lock_path = target.parent / f".{target.name}.lock"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
    except OSError as e:
        raise ArtifactError(f"{lock_path}: cannot create the lock file ({e.strerror}); fix the permissions of "
                            f"{target.parent} or use another --model-dir") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ArtifactError(f"{lock_path}: not a regular file, so not a lock file forecast made; remove it or use "
                            "another --model-dir")
    with open(fd, "r+") as handle:
        _take_lock(handle, target)
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def _take_lock(handle, target: Path) -> None:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read(100).strip() or "another process"
        raise ArtifactError(
            f"{target}: another `forecast train` or `update` ({holder}) is writing this model directory; try again "
            "when it has finished, or use another --model-dir"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()}")
    handle.flush()


def save_artifact(directory: str | Path, artifact: Artifact) -> Path:
    """Write the artifact to `directory` atomically (replacing what was there only once all is written).

    Call it under model_lock. Refuses (ArtifactError, touching nothing) a directory that is not a forecast
    model directory. Our leftovers of an earlier interrupted save are cleared first; if that save died between
    retiring the old model and renaming the new one into place, the retired model is put back. A filesystem
    error (full, read-only, not writable) is an ArtifactError naming the directory; the old model survives.
    """
    target = _resolve(directory)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _check_replaceable(target)
        _recover(target)
        staging = _stage(target, artifact)
    except OSError as e:
        raise _save_error(target, e) from None
    try:
        old = _swap_into_place(staging, target)
    except OSError as e:
        raise _save_error(target, e) from None
    finally:
        _discard(staging)
    try:
        _kill_point("committed")
        _fsync_dir(target.parent)
    finally:  # (a signal held off during the commit may be raised here, in a library caller)
        if old is not None:
            _discard(old)
    return Path(directory).absolute()


def _save_error(target: Path, e: OSError) -> ArtifactError:
    where = f" ({e.filename})" if e.filename and str(e.filename) != str(target) else ""
    return ArtifactError(f"{target}: cannot save the model: {e.strerror or e}{where}; the previous model, if any, "
                         "is unchanged. Free space, fix permissions or use another --model-dir")


def _discard(staging: Path) -> None:
    """Forget a staging directory; delete it unless the commit moved it (or the old model now there) away."""
    if staging in STAGING:  # listed until it is gone, so that an interrupt meanwhile removes it too
        try:
            shutil.rmtree(staging, ignore_errors=True)
        finally:  # a KeyboardInterrupt inside rmtree (a library caller's Ctrl-C): the next save clears the rest
            STAGING.remove(staging)


def _stage(target: Path, artifact: Artifact) -> Path:
    """A complete model directory beside `target` (a temporary name), listed in STAGING, mode 0o777 less the
    umask (every save: a directory an older forecast made 0o700 becomes readable as the umask allows)."""
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    STAGING.append(staging)
    try:
        _write_model_files(staging, artifact)
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp made it 0o700
        _fsync_dir(staging)
    except BaseException:
        _discard(staging)
        raise
    return staging


def _write_model_files(staging: Path, artifact: Artifact) -> None:
    arrays_path = staging / ARRAYS
    with open(arrays_path, "wb") as f:
        np.savez(f, **artifact.arrays)
        f.flush()
        os.fsync(f.fileno())
    size = arrays_path.stat().st_size
    if size > MAX_ARRAYS_BYTES:
        raise ArtifactError(f"the model's arrays take {size} bytes, over the limit of {MAX_ARRAYS_BYTES} that "
                            "loading accepts; train a smaller model (--hidden, --units) or fewer series")
    _kill_point("arrays")
    manifest = seal({
        **json.loads(json.dumps(artifact.manifest.to_dict(), default=_json_default)),
        "format_version": FORMAT_VERSION,
        "package_version": __version__,
        "files": {ARRAYS: {"sha256": sha256(arrays_path), "bytes": size}},
    })
    text = json.dumps(manifest, indent=2)
    _check_before_saving(json.loads(text), artifact.arrays)
    if len(text.encode()) > MAX_MANIFEST_BYTES:
        raise ArtifactError(f"the model's manifest would exceed {MAX_MANIFEST_BYTES} bytes, which loading refuses; "
                            "train on fewer series")
    with open(staging / MANIFEST, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    _kill_point("manifest")




def _check_before_saving(manifest: dict, arrays: dict[str, np.ndarray]) -> None:
    """Run the checks that loading applies on what is about to be saved: a model that could not be loaded is
    never committed (the old one stays), and a writer that drifted from manifest.py fails at once."""
    try:
        check_manifest(manifest, MANIFEST)
        check_arrays(manifest, arrays, ARRAYS)
    except ArtifactError as e:
        raise ArtifactError(f"the new model fails the checks of loading, so it was not saved (a bug in forecast: "
                            f"please report it): {e}") from None


def _swap_into_place(staging: Path, target: Path) -> Path | None:
    """Commit: put `staging` at `target`. Returns where the old model now is (to delete), if there was one."""
    old = None
    try:
        with _commit_guard():
            if not os.path.lexists(target):
                os.rename(staging, target)
            elif _exchange(staging, target):
                old = staging  # the old model now sits at the staging name
            else:
                old = _swap_by_two_renames(staging, target)
            STAGING.remove(staging)
            if old is not None:  # the retired model: an interrupt delivered as the guard ends removes it too
                STAGING.append(old)
    except KeyboardInterrupt:  # (the CLI's handler exits instead, removing what STAGING lists)
        if old is not None:
            _discard(old)
        raise
    return old


def _swap_by_two_renames(staging: Path, target: Path) -> Path:
    """Move the old model aside (under a retired directory, returned), then the new one in. On an error the
    old model is put back; if the process dies in between, the next save or load finds the retired one."""
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    try:
        os.rename(target, old / "model")
    except OSError:
        os.rmdir(old)
        raise
    _kill_point("retired")
    try:
        os.rename(staging, target)
    except OSError:
        os.rename(old / "model", target)
        os.rmdir(old)
        raise
    return old


# ---- writing an output file ------------------------------------------------------------------------------------

def write_text_atomic(path: str | Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` through a temporary file beside it and a rename: readers see the old file
    or the whole new one, never half of it. See write_atomic."""
    data = text.encode("utf-8")
    write_atomic(path, lambda f: f.write(data))


def write_atomic(path: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """Call `write(file)` on a temporary file beside `path` and rename it into place.

    The file gets the mode (and, where allowed, the owner) of the file it replaces, else 0o666 less the umask.
    A link is kept and its target replaced. A FIFO or device (/dev/stdout, /dev/null) is written in place: it
    is not ours to replace. Temporaries of killed writers (`.NAME.tmp-PID-...` whose PID is gone) are removed.
    Any filesystem error is an OutputError naming `path`; the old file is then unchanged and no temporary left.
    """
    given = Path(path)
    try:
        target, existing = _output_target(given)
        if existing is not None and not stat.S_ISREG(existing.st_mode):
            with open(given, "wb") as f:
                write(f)
            return
        _clear_dead_temps(target)
        _write_and_rename(target, existing, write)
    except OSError as e:
        raise OutputError(f"{given}: cannot write it ({e.strerror or e}); what was there before is unchanged. "
                          "Free space, fix permissions or choose another file") from None


def _output_target(given: Path) -> tuple[Path, os.stat_result | None]:
    """The path to replace (a link's target) and its stat, None when it does not exist yet."""
    target = Path(os.path.realpath(given)) if given.is_symlink() else given.absolute()
    try:
        existing = os.stat(given)
    except FileNotFoundError:
        existing = None
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise OutputError(f"{given}: is a directory; give a file name to write to")
    if existing is None and not target.parent.is_dir():
        raise OutputError(f"{given}: the directory {target.parent} does not exist; create it or choose another file")
    return target, existing


def _write_and_rename(target: Path, existing: os.stat_result | None, write) -> None:
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    STAGING.append(tmp)
    try:
        with open(fd, "wb") as f:
            _copy_owner_and_mode(f.fileno(), existing)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        with _commit_guard():
            os.rename(tmp, target)
            STAGING.remove(tmp)
        _fsync_dir(target.parent)
    finally:
        if tmp in STAGING:
            STAGING.remove(tmp)
            tmp.unlink(missing_ok=True)


def _copy_owner_and_mode(fd: int, existing: os.stat_result | None) -> None:
    if existing is None:
        os.fchmod(fd, 0o666 & ~_umask())
        return
    if (existing.st_uid, existing.st_gid) != (os.geteuid(), os.getegid()):
        try:
            os.fchown(fd, existing.st_uid, existing.st_gid)
        except OSError:
            pass  # not allowed (not root): the file becomes ours, with the old mode
    os.fchmod(fd, stat.S_IMODE(existing.st_mode))


def _clear_dead_temps(target: Path) -> None:
    """Remove `.NAME.tmp-PID-XXXXXXXX` files beside `target` whose writer PID is no longer alive."""
    pattern = re.compile(re.escape(f".{target.name}.tmp-") + r"([1-9][0-9]*)-[0-9a-f]{8}")
    for name in os.listdir(target.parent):
        found = pattern.fullmatch(name)
        if found and not _alive(int(found[1])) and _is_regular(target.parent / name):
            (target.parent / name).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# ---- reading a model directory ---------------------------------------------------------------------------------

def load_artifact(directory: str | Path) -> Artifact:
    """Read and verify a model directory. Raises ArtifactError saying what is wrong.

    Both files are read from one open of the directory, so they come from the same save; if a save swaps the
    directory away mid-read the read starts again (a bounded number of times)."""
    path = Path(directory)
    for attempt in range(_READ_TRIES):
        try:
            return _load_once(path)
        except _Vanished as gone:
            error = gone.error
            time.sleep(0.002 * attempt)
    raise error


def _load_once(path: Path) -> Artifact:
    try:
        dir_fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        # a save killed between retiring the old model and renaming the new one leaves the old one aside
        retired = _retired_model(Path(os.path.realpath(path)))
        if retired is not None:
            return _load_once(retired)
        raise _Vanished(ArtifactError(f"{path}: no model directory; train one with `forecast train DATA "
                                      f"--model-dir {path}`")) from None
    except OSError as e:
        what = "not a model directory (a file)" if e.errno == errno.ENOTDIR else f"cannot open it ({e.strerror})"
        raise ArtifactError(f"{path}: {what}; train one with `forecast train DATA --model-dir {path}`") from None
    try:
        return _load_from(dir_fd, path)
    except FileNotFoundError as e:
        raise _Vanished(_missing(path, e.filename)) from None
    finally:
        os.close(dir_fd)


def _missing(path: Path, name) -> ArtifactError:
    if name == ARRAYS:
        return ArtifactError(f"{path / ARRAYS}: missing; the model directory is incomplete, retrain it")
    return ArtifactError(f"{path}: not a model directory (no manifest.json); train one with `forecast train DATA "
                         f"--model-dir {path}`")


def _load_from(dir_fd: int, path: Path) -> Artifact:
    manifest_path, arrays_path = path / MANIFEST, path / ARRAYS
    manifest = check_manifest(_read_manifest(dir_fd, manifest_path), str(manifest_path))
    entry = _arrays_entry(manifest, path)
    arrays = _load_npz(_read_arrays_bytes(dir_fd, arrays_path, entry), arrays_path)
    check_arrays(manifest, arrays, str(arrays_path))
    return Artifact(Manifest.from_dict(manifest), arrays)


def _arrays_entry(manifest: dict, path: Path) -> dict:
    """The manifest's record of arrays.npz, after checking the format version and the list of files."""
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: model format version {version!r} is newer than this forecast {__version__} understands "
            f"(up to {FORMAT_VERSION}); upgrade forecast or retrain"
        )
    files = manifest.get("files")
    if not isinstance(files, dict) or set(files) != {ARRAYS} or not isinstance(files[ARRAYS], dict):
        listed = sorted(files)[:5] if isinstance(files, dict) else type(files).__name__
        raise ArtifactError(f"{path / MANIFEST}: the manifest lists unexpected files {listed}; retrain")
    return files[ARRAYS]
