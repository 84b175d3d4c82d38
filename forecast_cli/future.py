"""The values of the future-known covariates (`--future-covariates`) over a forecast's horizon.

They come from the rows of DATA after a series' last target value (the target empty, the future covariates
filled), from `--future FILE`, or, in a backtest, from the data after each cutoff (an oracle future). Each
source becomes a `Future`; `Future.over` lines its values up with the stamps a forecast needs and refuses a
missing one, naming the series, the column and the first date without a value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forecast_cli.errors import DataError
from forecast_cli.features import stamps_around


@dataclass(frozen=True, eq=False)
class Future:
    """Future covariate values by series and stamp, laid out like a Panel: series i is rows starts[i]:starts[i+1],
    sorted by stamp.

    ids: (n_series,) object array of str, sorted; None when the values are the same for every series (a file
        without a series id column, as a single-series or wide model has).
    ds: (n_rows,) stamps; values: (n_rows, len(names)) float64, NaN where a cell was empty.
    """

    ids: np.ndarray | None
    ds: np.ndarray
    values: np.ndarray
    starts: np.ndarray
    names: tuple[str, ...]
    source: str

    def over(self, ids: np.ndarray, last_ds: np.ndarray, freq: str, horizon: int) -> np.ndarray:
        """(n, horizon, len(names)): for each series ids[i], the values at the `horizon` stamps after last_ds[i].
        DataError for the first series (in the order given) that lacks a value at some step."""
        k = len(self.names)
        _, stamps = stamps_around(np.asarray(last_ds), freq, 1, horizon)  # (n, horizon)
        if self.ids is None:
            segment = np.zeros(len(ids), np.int64)
        else:
            known = {sid: i for i, sid in enumerate(self.ids)}
            segment = np.array([known.get(sid, -1) for sid in ids], np.int64)
        out = np.full((len(ids), horizon, k), np.nan)
        has = segment >= 0
        if has.any() and len(self.ds):
            # one sorted key per row, (segment, stamp): each wanted stamp is found by one binary search
            every = np.unique(np.concatenate([self.ds, stamps[has].reshape(-1)]))
            n_stamps = np.int64(len(every))
            row_segment = np.repeat(np.arange(len(self.starts) - 1), np.diff(self.starts))
            keys = row_segment * n_stamps + np.searchsorted(every, self.ds)
            wanted = segment[has, None] * n_stamps + np.searchsorted(every, stamps[has])
            at = np.clip(np.searchsorted(keys, wanted), 0, len(keys) - 1)
            found = keys[at] == wanted
            out[has] = np.where(found[..., None], self.values[at], np.nan)
        missing = np.isnan(out).any(axis=2)
        if missing.any():
            i, h = np.argwhere(missing)[0]
            column = int(np.argmax(np.isnan(out[i, h])))
            where = f"no rows for series '{ids[i]}'" if not has[i] else \
                f"series '{ids[i]}', column '{self.names[column]}': no value for {_shown(stamps[i, h])}"
            raise DataError(f"{self.source}: {where} (step {h + 1} of the {horizon}-step horizon); the model takes "
                            f"future covariates ({', '.join(self.names)}) for every step it forecasts")
        return out


def of_rows(ids: np.ndarray, ds: np.ndarray, values: np.ndarray, starts: np.ndarray, names: tuple[str, ...],
            source: str) -> Future:
    """A Future of a panel's rows (a backtest's oracle: the actual values after each cutoff)."""
    return Future(np.asarray(ids, dtype=object), ds, np.asarray(values, np.float64), starts, tuple(names), source)


def _shown(stamp) -> str:
    if isinstance(stamp, np.datetime64):
        import pandas as pd

        text = str(pd.Timestamp(stamp))
        return text[:-9] if text.endswith(" 00:00:00") else text  # a date alone
    return str(stamp)
