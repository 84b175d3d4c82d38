"""The model directory: `manifest.json` (everything but arrays, with checksums) and `arrays.npz` (weights, scaler
statistics, the last window of every series). npz is read with allow_pickle=False, so loading runs no code.

Saving writes a temporary directory beside the target and renames it into place, so an interrupted save
leaves the previous model whole.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from forecast_cli import __version__
from forecast_cli.errors import ArtifactError
from forecast_cli.manifest import check_arrays, check_manifest, seal

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
ARRAYS = "arrays.npz"


@dataclass
class Artifact:
    """A trained model and what it needs to forecast without the training CSV.

    manifest: JSON-ready metadata (kind, configs, data contract, ids, metrics, ...).
    arrays: named numpy arrays: model weights under "params/...", "scaler/loc", "scaler/scale",
        "history/values" (n_series, lookback, n_columns) in original units, NaN-padded on the left for short
        series, "history/last_ds" (n_series,), "history/length" (n_series,).
    """

    manifest: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def params(self) -> dict[str, np.ndarray]:
        return {k[len("params/"):]: v for k, v in self.arrays.items() if k.startswith("params/")}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextmanager
def model_lock(directory: str | Path):
    """Hold an exclusive lock on a model directory (a `.NAME.lock` file beside it) for one training run.

    A second writer fails at once with ArtifactError rather than waiting (cron runs should not pile up). The
    lock is an flock, so a killed process releases it.
    """
    target = Path(directory).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    lock_path = target.parent / f".{target.name}.lock"
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise ArtifactError(
                f"{target}: another `forecast train` ({holder}) is writing this model directory; try again "
                "when it has finished, or use another --model-dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def _leftovers(target: Path) -> list[Path]:
    """Temporary and retired directories that an interrupted save may have left beside `target`."""
    return sorted(target.parent.glob(f".{target.name}.tmp-*")) + sorted(target.parent.glob(f".{target.name}.old-*"))


def save_artifact(directory: str | Path, artifact: Artifact) -> Path:
    """Write the artifact to `directory` atomically (replacing what was there only once all is written).

    Call it under model_lock. Leftovers of an earlier interrupted save are cleared first; if that save died
    between retiring the old model and renaming the new one into place, the retired model is put back.
    """
    target = Path(directory).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    _recover(target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        arrays_path = staging / ARRAYS
        with open(arrays_path, "wb") as f:
            np.savez(f, **artifact.arrays)
            f.flush()
            os.fsync(f.fileno())
        manifest = seal({
            **json.loads(json.dumps(artifact.manifest, default=_json_default)),
            "format_version": FORMAT_VERSION,
            "package_version": __version__,
            "files": {ARRAYS: {"sha256": sha256(arrays_path), "bytes": arrays_path.stat().st_size}},
        })
        with open(staging / MANIFEST, "w") as f:
            json.dump(manifest, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        _swap_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _recover(target: Path) -> None:
    retired = _retired_model(target)
    if retired is not None and not target.exists():
        os.replace(retired, target)
    for leftover in _leftovers(target):
        shutil.rmtree(leftover, ignore_errors=True)


def _retired_model(target: Path) -> Path | None:
    """The newest complete model that an interrupted swap moved aside, if any."""
    found = [p / "model" for p in target.parent.glob(f".{target.name}.old-*") if (p / "model" / MANIFEST).exists()]
    return max(found, key=lambda p: p.stat().st_mtime) if found else None


def _swap_into_place(staging: Path, target: Path) -> None:
    if not target.exists():
        os.replace(staging, target)
        return
    if not (target / MANIFEST).exists() and any(target.iterdir()):
        raise ArtifactError(f"{target} exists and is not a model directory; refusing to replace it")
    retired = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
    os.replace(target, retired / "model")
    os.replace(staging, target)
    shutil.rmtree(retired, ignore_errors=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same directory and a rename: readers see the
    old file or the whole new one, never half of it."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent.absolute())
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def load_artifact(directory: str | Path) -> Artifact:
    """Read and verify a model directory. Raises ArtifactError saying what is wrong."""
    path = Path(directory)
    if not path.exists():
        # a save killed between retiring the old model and renaming the new one leaves the old one aside
        path = _retired_model(path.absolute()) or path
    manifest_path = path / MANIFEST
    if not manifest_path.exists():
        what = "no model directory" if not path.exists() else "not a model directory (no manifest.json)"
        raise ArtifactError(f"{path}: {what}; train one with `forecast train DATA --model-dir {path}`")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{manifest_path}: corrupt manifest ({e}); retrain the model") from e
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{manifest_path}: corrupt manifest (not a JSON object); retrain the model")
    manifest = check_manifest(manifest, str(manifest_path))
    version = manifest.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: model format version {version!r} is newer than this forecast {__version__} understands "
            f"(up to {FORMAT_VERSION}); upgrade forecast or retrain"
        )
    files = manifest.get("files", {})
    if set(files) != {ARRAYS}:
        raise ArtifactError(f"{manifest_path}: the manifest lists unexpected files {sorted(files)}; retrain")
    arrays_path = path / ARRAYS
    if not arrays_path.exists():
        raise ArtifactError(f"{arrays_path}: missing; the model directory is incomplete, retrain it")
    if sha256(arrays_path) != files[ARRAYS].get("sha256"):
        raise ArtifactError(f"{arrays_path}: checksum mismatch, the file is corrupt or was changed; retrain")
    try:
        with np.load(arrays_path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (ValueError, OSError) as e:
        raise ArtifactError(f"{arrays_path}: unreadable ({e}); retrain the model") from e
    check_arrays(manifest, arrays, str(arrays_path))
    return Artifact(manifest, arrays)
