"""The forecast CSV without pandas: `forecast predict` from a model directory alone need not import it (0.4 s of
a cron job's start). The text is byte for byte what `DataFrame.to_csv(index=False, float_format=...)` writes
(tests/test_csvout.py compares them); for anything it cannot match for sure, it returns None and the caller
uses pandas.
"""

from __future__ import annotations

import csv
import io

import numpy as np


def to_csv(columns: dict[str, np.ndarray], float_format: str = "%.8g") -> str | None:
    """CSV text of equal-length columns (strings, integers, floats or datetime64), header first; None when a
    column's type or values fall outside what is matched here (sub-second or missing stamps, other dtypes)."""
    cells = []
    for values in columns.values():
        values = np.asarray(values)
        text = _column_text(values, float_format)
        if text is None:
            return None
        cells.append(text)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")  # pandas writes through csv.writer with these settings
    writer.writerow(list(columns))
    writer.writerows(zip(*cells, strict=True))
    return buffer.getvalue()


def _column_text(values: np.ndarray, float_format: str) -> list[str] | None:
    kind = values.dtype.kind
    if kind == "U":
        return values.tolist()
    if kind in "iu":
        return [str(v) for v in values.tolist()]
    if kind == "f":
        return ["" if v != v else float_format % v for v in values.tolist()]  # NaN is written as ""
    if kind == "M":
        return _stamps_text(values)
    return None


def _stamps_text(stamps: np.ndarray) -> list[str] | None:
    """pandas writes dates alone when every stamp is at midnight, else date and time to the second."""
    if np.isnat(stamps).any():
        return None
    seconds = stamps.astype("datetime64[s]")
    if (seconds != stamps).any():
        return None  # sub-second stamps: pandas' precision rules are not reproduced here
    days = stamps.astype("datetime64[D]")
    if (days == stamps).all():
        return np.datetime_as_string(days, unit="D").tolist()
    return [s.replace("T", " ") for s in np.datetime_as_string(seconds, unit="s").tolist()]
