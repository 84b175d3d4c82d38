"""The forecast CSV, written without pandas: `forecast predict` from a model directory alone need not import it
(0.4 s of a cron job's start). The text is what `DataFrame.to_csv(index=False, float_format=...)` writes
(tests/test_csvout.py compares them), except that a text cell holding a bare carriage return is quoted too
(Python 3.11's csv module leaves it bare, and readers then split the row in two).
"""

from __future__ import annotations

import numpy as np

_SPECIAL = (",", '"', "\n", "\r")


def to_csv(columns: dict[str, np.ndarray], float_format: str = "%.8g", time_sep: str = " ") -> str:
    """CSV text of equal-length columns (text, integers, floats or datetime64), header first. Raises TypeError
    for any other column type, and ValueError for a missing (NaT) stamp: a forecast has none."""
    cells = [_column_text(np.asarray(values), float_format, time_sep) for values in columns.values()]
    rows = [",".join(_quoted(name) for name in columns)]
    rows += map(",".join, zip(*cells, strict=True))
    return "\n".join(rows) + "\n"


def _quoted(text: str) -> str:
    """A text cell as the csv module's minimal quoting writes it, carriage returns included."""
    if any(c in text for c in _SPECIAL):
        return '"' + text.replace('"', '""') + '"'
    return text


def _column_text(values: np.ndarray, float_format: str, time_sep: str = " ") -> list[str]:
    kind = values.dtype.kind
    if kind in "UO":  # ids repeat on every row of their series: quote each distinct one once
        quoted = {text: _quoted(str(text)) for text in dict.fromkeys(values.tolist())}
        return [quoted[text] for text in values.tolist()]
    if kind in "iu":
        return [str(v) for v in values.tolist()]
    if kind == "f":
        return ["" if v != v else float_format % v for v in values.tolist()]  # NaN is written as ""
    if kind == "M":
        return _stamps_text(values, time_sep)
    raise TypeError(f"cannot write a column of dtype {values.dtype} as CSV")


def _stamps_text(stamps: np.ndarray, time_sep: str = " ") -> list[str]:
    """pandas writes dates alone when every stamp is at midnight, else date and time to the second, or to the
    finest fraction that a stamp needs; `time_sep` between date and time ("T" to keep an ISO 8601 file's style)."""
    if np.isnat(stamps).any():
        raise ValueError("a forecast timestamp is missing (NaT)")
    seconds = stamps.astype("datetime64[s]")
    if (seconds != stamps).any():
        import pandas as pd  # sub-second stamps: pandas' precision rules, rare enough to pay its import

        return [t.replace(" ", time_sep) for t in pd.DatetimeIndex(stamps).astype(str).tolist()]
    days = stamps.astype("datetime64[D]")
    if (days == stamps).all():
        return np.datetime_as_string(days, unit="D").tolist()
    return [s.replace("T", time_sep) for s in np.datetime_as_string(seconds, unit="s").tolist()]
