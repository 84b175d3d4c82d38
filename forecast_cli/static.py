"""Static covariates (`--static region,store_type`): one value per series, encoded into model input columns that
every row of the series carries.

A column whose every value is a number is standardised over the training series (its mean and standard
deviation across them); any other is categorical and one-hot encoded over the values seen in training (at most
limits.MAX_STATIC_CATEGORIES). A category the training data did not have encodes as no category (all zeros).
The encoding is saved in the manifest ("static"), each known series' encoded values in "static/values".
"""

from __future__ import annotations

import numpy as np

from forecast_cli.errors import ConfigError, DataError
from forecast_cli.limits import MAX_STATIC_CATEGORIES


def fit_encoding(names: tuple[str, ...], values: np.ndarray) -> list[dict]:
    """One entry per column of `values: (n_series, len(names))` (text): {"name", "mean", "scale"} for a numeric
    column, {"name", "categories"} for a categorical one."""
    encoding = []
    for i, name in enumerate(names):
        numbers = _numbers(values[:, i])
        if numbers is not None:
            scale = float(numbers.std())
            encoding.append({"name": name, "mean": float(numbers.mean()), "scale": scale if scale > 0 else 1.0})
            continue
        categories = sorted(set(values[:, i].tolist()))
        if len(categories) > MAX_STATIC_CATEGORIES:
            raise ConfigError(f"--static column '{name}' has {len(categories):,} distinct values; forecast one-hot "
                              f"encodes at most {MAX_STATIC_CATEGORIES:,}")
        encoding.append({"name": name, "categories": categories})
    return encoding


def width(encoding: list[dict]) -> int:
    """Input columns the encoding makes."""
    return sum(len(e["categories"]) if "categories" in e else 1 for e in encoding)


def encode(encoding: list[dict], values: np.ndarray, source: str, ids: np.ndarray) -> np.ndarray:
    """(n_series, width) float32 of `values: (n_series, len(encoding))` (text). DataError for a value of a numeric
    column that is not a number."""
    parts = []
    for i, entry in enumerate(encoding):
        column = values[:, i]
        if "categories" in entry:
            index = {c: k for k, c in enumerate(entry["categories"])}
            hot = np.zeros((len(column), len(entry["categories"])), np.float32)
            for row, value in enumerate(column.tolist()):
                if value in index:
                    hot[row, index[value]] = 1.0
            parts.append(hot)
            continue
        numbers = np.empty(len(column))
        for row, value in enumerate(column.tolist()):
            try:
                numbers[row] = float(value)
            except (TypeError, ValueError):
                raise DataError(f"{source}: column '{entry['name']}': series '{ids[row]}' has '{value}', but this "
                                "--static column held numbers in training") from None
        if not np.isfinite(numbers).all():
            row = int(np.argmax(~np.isfinite(numbers)))
            raise DataError(f"{source}: column '{entry['name']}': series '{ids[row]}' has '{column[row]}', not a "
                            "finite number")
        parts.append(((numbers - entry["mean"]) / entry["scale"]).astype(np.float32)[:, None])
    return np.concatenate(parts, axis=1) if parts else np.zeros((len(values), 0), np.float32)


def _numbers(texts: np.ndarray) -> np.ndarray | None:
    try:
        numbers = np.array([float(t) for t in texts.tolist()])
    except (TypeError, ValueError):
        return None
    return numbers if np.isfinite(numbers).all() and np.all(np.abs(numbers) <= 1e100) else None
