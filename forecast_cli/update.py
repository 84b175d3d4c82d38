"""Fold the new rows of the series a model knows into it, without a full retrain: the library behind
`forecast update`.

DATA is the data the model was trained on, grown: each known series' rows up to the last one the model saw
must be the ones it was trained on (a digest of them is kept, Panel.digests), and the rows after it are new.
A series whose history changed is refused (RevisionError) unless revisions are allowed; series the model does
not know are left to `predict DATA`, which forecasts them as before; known series missing from DATA keep what
they had. The model's scaling of each series stays as training fitted it.

What is updated:
- the model, by its kind (Model.update): the ESN's normal equations get the new windows and the readout is
  solved again (exactly a fit on every window); a network trains on from its weights and Adam state on the
  windows ending in the new rows plus a replay sample of older ones, early-stopped on each series' newest window;
  `auto`'s Theta part is fitted at forecast time on the stored recent history, which is updated.
- the conformal scores, online: forecasts the model made before this update from origins at or after the last
  row it had seen (out of sample: it never trained on those rows) are scored once their whole horizon is in the
  data; those still open are kept as "calibration/pending" for a later update. The newest scores replace the
  oldest, keeping at least as many as there were.
- the history a forecast starts from, the error scales at each series' end, and the manifest's "updates" record.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from forecast_cli import limits, models
from forecast_cli.artifact import Artifact
from forecast_cli.errors import DataError
from forecast_cli.features import model_inputs
from forecast_cli.fit import _check_params
from forecast_cli.metrics import base_scales, end_scales, local_scales, local_span, mase_weights
from forecast_cli.models import FitTask
from forecast_cli.models.auto import MAX_WINDOWS, context_rows
from forecast_cli.windows import Scaler, gather_windows

if TYPE_CHECKING:
    from forecast_cli.data import Panel

REPLAY = 2  # older windows replayed per new window when a network trains on (at least REPLAY_MIN of them)
REPLAY_MIN = 256


class RevisionError(DataError):
    """DATA changes rows the model was trained on."""


@dataclass
class Update:
    """What `update_model` did: the updated artifact (None when DATA had nothing new), and in numbers."""

    artifact: Artifact | None
    rows: int  # new rows folded in
    series: int  # known series that grew
    new_series: int  # series of DATA the model does not know (left to predict)
    scored: int  # forecasts scored into the calibration


def update_model(artifact: Artifact, panel: Panel, allow_revisions: bool = False) -> Update:
    """`artifact` with the rows of `panel` after the ones it was trained on folded in (see the module's
    docstring). RevisionError when a known series' old rows differ, unless `allow_revisions`."""
    import jax

    start = time.perf_counter()
    m, a = artifact.manifest, artifact.arrays
    L, H, season = m.window.lookback, m.window.horizon, m.season
    if panel.freq != m.freq:
        raise DataError(f"{panel.source}: the data's frequency is {panel.freq} but the model was trained on {m.freq} "
                        "data")
    known = {sid: i for i, sid in enumerate(m.series)}
    index = np.array([known.get(sid, -1) for sid in panel.ids], np.int64)
    new_series = int((index < 0).sum())
    panel, index = panel.select(index >= 0), index[index >= 0]
    seen = _rows_seen(panel, index, a, L, allow_revisions)
    grew = panel.lengths > seen
    if not grew.any():
        return Update(None, 0, 0, new_series, 0)
    panel, index, seen = panel.select(grew), index[grew], seen[grew]
    if m.window.log and (where := panel.first_not_positive()):
        raise DataError(f"{panel.source}: the model forecasts the log of the target, which needs values above 0, "
                        f"but {where}; retrain it with --no-log")
    kind = models.get(m.kind)
    scaler = Scaler(a["scaler/loc"][index], a["scaler/scale"][index], m.window.log)
    static = None
    if m.static:
        from forecast_cli.static import encode

        static = np.repeat(encode(m.static, panel.static_values, panel.source, panel.ids), panel.lengths, axis=0)
    inputs = _padded(model_inputs(scaler.transform(panel.values, panel.starts), panel.ds, panel.freq,
                                  m.data.holidays, static), H)
    train_idx, val_idx, replay = _windows(panel.starts, seen, L, H, np.random.default_rng([m.train.seed,
                                                                                          len(m.updates or ())]))
    trained = kind.trained_on_loss
    row_weight = _padded(mase_weights(inputs[: len(panel.ds), 0], panel.starts, panel.lengths, season), H) \
        if trained and m.train.loss == "mase" else None
    task = FitTask(panel, None, m.window, inputs, scaler, np.concatenate([train_idx, replay]) if trained else
                   train_idx, val_idx, panel.lengths, season,
                   jax.random.fold_in(jax.random.key(m.train.seed), 1 + len(m.updates or ())), row_weight=row_weight,
                   future=tuple(m.model.get("future", ())))
    params = artifact.params()
    state = {k[len("state/"):]: v for k, v in a.items() if k.startswith("state/")}
    old_predictor = kind.predictor(m.model, H, season, params)
    fitted = kind.update(task, m, params, state)
    _check_params(fitted.params)
    arrays = dict(a)
    arrays.update({f"params/{k}": v for k, v in fitted.params.items()})
    arrays.update({f"state/{k}": v for k, v in fitted.state.items()})
    scored = _calibrate_online(arrays, kind, old_predictor, task, index, seen, m, allow_revisions)
    _refresh_history(arrays, panel, index, m)
    record = {"at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
              "rows": int((panel.lengths - seen).sum()), "series": len(index), "ids": panel.ids[:20].tolist(),
              "new_series": new_series, "windows": int(len(train_idx) + len(val_idx)),
              "calibration_windows": int(len(arrays["calibration/scores"])),
              "kept": fitted.info.pop("kept", "updated"), "seconds": round(time.perf_counter() - start, 3)}
    fingerprint = hashlib.sha256(f"{m.fingerprint}:{_digest_text(arrays['history/digest'])}".encode()).hexdigest()
    updates = [*(m.updates or ()), record][-limits.MAX_UPDATES_KEPT :]
    manifest = dataclasses.replace(
        m, fit=fitted.info, fingerprint=fingerprint[:16], updates=updates,
        calibration={**m.calibration, "windows": int(len(arrays["calibration/scores"]))})
    return Update(Artifact(manifest, arrays), record["rows"], len(index), new_series, scored)


def _padded(rows: np.ndarray, horizon: int) -> np.ndarray:
    """`rows` with zero rows added to the next multiple of 2^(bits - 3) of their count plus a horizon (at least
    1024): every window (and a forecast's target past a series' end) stays inside, and the compiled functions
    see the same shape on the days that follow (at most 12.5% more rows), so a daily update hits JAX's
    compilation cache rather than compiling again."""
    n = len(rows) + horizon
    step = 1 << max(10, n.bit_length() - 3)
    return np.concatenate([rows, np.zeros((-(-n // step) * step - len(rows),) + rows.shape[1:], rows.dtype)])


def _digest_text(digest: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(digest).tobytes()).hexdigest()


def _rows_seen(panel: Panel, index: np.ndarray, a: dict[str, np.ndarray], lookback: int, allow_revisions: bool
               ) -> np.ndarray:
    """(n_series,) rows of each series of `panel` that the model has seen: those up to its last stamp. Unless
    `allow_revisions`, RevisionError for the first series whose rows up to there are not the trained ones."""
    last = a["history/last_ds"][index]
    seen = np.array([np.searchsorted(panel.ds[b:e], t, side="right") for b, e, t in
                     zip(panel.starts[:-1], panel.starts[1:], last, strict=True)], np.int64)
    if allow_revisions:
        return seen
    rows = a["history/rows"][index]
    aligned = (seen == rows)
    same = aligned & (panel.digests(np.minimum(rows, panel.lengths)) == a["history/digest"][index])
    if same.all():
        return seen
    i = int(np.argmin(same))
    raise RevisionError(f"{panel.source}: series '{panel.ids[i]}': {_first_difference(panel, i, a, index[i], lookback)}"
                        "; the model was trained on other data. Retrain it, or update with --allow-revisions")


def _first_difference(panel: Panel, i: int, a: dict[str, np.ndarray], model_i: int, lookback: int) -> str:
    """Where series i of `panel` first differs from the data that the model's series model_i was trained on,
    in words, as far as the kept history (its last `lookback` rows) tells."""
    first, end = panel.starts[i], panel.starts[i + 1]
    rows, last = int(a["history/rows"][model_i]), a["history/last_ds"][model_i]
    kept = int(a["history/length"][model_i])
    if end - first < rows or panel.ds[first + rows - 1] != last:
        where = np.flatnonzero(panel.ds[first:end] <= last)
        return (f"DATA has {len(where)} rows up to {_stamp(last)}, its last step in the model's data, where "
                f"the model was trained on {rows}")
    ours = a["history/values"][model_i, lookback - kept :]
    theirs = panel.values[first + rows - kept : first + rows]
    differs = ~((ours == theirs) | (np.isnan(ours) & np.isnan(theirs)))
    names = [panel.columns.get("target") or "target", *panel.covariates]
    if differs.any():
        row, column = np.argwhere(differs)[0]
        stamp = panel.ds[first + rows - kept + row]
        return (f"column '{names[column]}' on {_stamp(stamp)} is {theirs[row, column]:.8g} in DATA but was "
                f"{ours[row, column]:.8g}")
    return (f"a row before {_stamp(panel.ds[first + rows - kept])} differs (the model keeps the last {kept} "
            "rows it was trained on to compare with)")


def _stamp(stamp) -> str:
    import pandas as pd

    if not isinstance(stamp, np.datetime64):
        return str(stamp)
    stamp = pd.Timestamp(stamp)
    return str(stamp.date()) if stamp == stamp.normalize() else str(stamp)


def _windows(starts: np.ndarray, seen: np.ndarray, lookback: int, horizon: int, rng: np.random.Generator
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows where the windows to learn from begin: (new windows, whose target ends in the new rows, but the
    newest; the newest window of each series; a replay sample of older windows, always with the last one the
    model had). A window of series i starting at row s of it ends at s + lookback + horizon."""
    lengths, span = np.diff(starts), lookback + horizon
    first_new = np.maximum(seen - span + 1, 0)  # the first start whose window ends after the seen rows
    newest = lengths - span
    fresh = [np.arange(b + f, b + n) for b, f, n in zip(starts[:-1], first_new, newest, strict=True) if n > f]
    val = (starts[:-1] + newest)[newest >= first_new]
    last_seen = (starts[:-1] + seen - span)[seen - span >= 0]
    older = [np.arange(b, b + n) for b, n in zip(starts[:-1], seen - span, strict=True) if n > 0]
    train = np.concatenate(fresh) if fresh else np.zeros(0, np.int64)
    older = np.concatenate(older) if older else np.zeros(0, np.int64)
    wanted = max((1 + REPLAY) * (len(train) + len(val)), REPLAY_MIN)
    wanted = 1 << (wanted - 1).bit_length()  # a power of two in all: the same shapes from one day to the next
    count = int(np.clip(wanted - len(train) - len(last_seen), 0, len(older)))
    replay = np.union1d(last_seen, rng.choice(older, count, replace=False) if count else older[:0])
    return train.astype(np.int64), val.astype(np.int64), replay.astype(np.int64)


def _calibrate_online(arrays: dict, kind: models.Model, predictor, task: FitTask, index: np.ndarray,
                      seen: np.ndarray, m, allow_revisions: bool) -> int:
    """Score, into "calibration/scores", the forecasts made before this update whose horizon the data now
    holds: pending ones of earlier updates, and the old model's from every origin at or after the last row it had
    seen; keep the open ones as pending. Returns how many were scored."""
    L, H, season = m.window.lookback, m.window.horizon, m.season
    starts, lengths, target = task.panel.starts, task.panel.lengths, task.panel.values[:, 0]
    pend, pend_series, pend_row = (arrays["calibration/pending"], arrays["calibration/pending_series"],
                                   arrays["calibration/pending_row"])
    if allow_revisions:  # rows may have moved: what was pending is dropped
        pend, pend_series, pend_row = pend[:0], pend_series[:0], pend_row[:0]
    local = {int(s): j for j, s in enumerate(index)}  # model series -> its place in task.panel
    mine = np.array([int(s) in local for s in pend_series], bool)
    kept_pending = (pend[~mine], pend_series[~mine], pend_row[~mine])  # series that did not grow
    pend, pend_series, pend_row = pend[mine], pend_series[mine], pend_row[mine]
    # the old model's forecasts from every origin o (rows of the series before it) with seen <= o < length
    count = np.maximum(lengths - np.maximum(seen, L), 0)
    j = np.repeat(np.arange(len(index)), count)
    origin = np.maximum(seen, L)[j] + np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    if task.future:  # an open origin's horizon has no future covariate values here: it is not forecast
        j, origin = j[origin + H <= lengths[j]], origin[origin + H <= lengths[j]]
    j, origin = _bounded(j, origin, origin + H <= lengths[j])
    forecast = _forecasts(kind, predictor, task, starts[j] + origin - L, j, m)
    j = np.concatenate([np.array([local[int(s)] for s in pend_series], np.int64), j])
    origin = np.concatenate([pend_row, origin]).astype(np.int64)
    forecast = np.concatenate([pend, forecast])
    done = origin + H <= lengths[j]
    if done.any():
        rows = starts[j[done]] + origin[done]
        truth = target[rows[:, None] + np.arange(H)]
        scale = base_scales(local_scales(target, starts, j[done], rows, season, local_span(H, season)))
        ratio = arrays["calibration/ratio"][index[j[done]]]
        new = np.abs(forecast[done] - truth) / (scale * ratio)[:, None]
        new = new[np.argsort(task.panel.ds[rows], kind="stable")]  # oldest origin first, as training keeps them
        old = arrays["calibration/scores"]
        keep = min(max(len(old), len(new)), limits.MAX_CALIBRATION_WINDOWS)
        arrays["calibration/scores"] = np.concatenate([old, new.astype(np.float32)])[-keep:]
    pending = (np.concatenate([kept_pending[0], forecast[~done]]),
               np.concatenate([kept_pending[1], index[j[~done]]]).astype(np.int64),
               np.concatenate([kept_pending[2], origin[~done]]).astype(np.int64))
    if len(pending[0]) > limits.MAX_CALIBRATION_WINDOWS:  # evenly spaced over the series, as training keeps scores
        pick = np.linspace(0, len(pending[0]) - 1, limits.MAX_CALIBRATION_WINDOWS).astype(int)
        pending = tuple(p[pick] for p in pending)
    for name, value in zip(("pending", "pending_series", "pending_row"), pending, strict=True):
        arrays[f"calibration/{name}"] = value
    return int(done.sum())


def _bounded(j: np.ndarray, origin: np.ndarray, done: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """At most MAX_CALIBRATION_WINDOWS origins that can be scored now and as many still open, evenly spaced
    (after a long gap between updates every new row is an origin: forecasting them all would not be bounded)."""
    keep = np.zeros(len(j), bool)
    for part in (np.flatnonzero(done), np.flatnonzero(~done)):
        if len(part) > limits.MAX_CALIBRATION_WINDOWS:
            part = part[np.linspace(0, len(part) - 1, limits.MAX_CALIBRATION_WINDOWS).astype(int)]
        keep[part] = True
    return j[keep], origin[keep]


def _forecasts(kind: models.Model, predictor, task: FitTask, begin: np.ndarray, series: np.ndarray, m
               ) -> np.ndarray:
    """The model's forecasts (n, horizon) in original units of the windows starting at rows `begin` (of
    task.panel's series `series`), as training judged them (`auto`: blended with Theta by the chosen weight)."""
    H = m.window.horizon
    if not len(begin):
        return np.zeros((0, H))
    chosen = {"blend": m.blend} if m.blend is not None else None
    out = []
    for first in range(0, len(begin), MAX_WINDOWS):  # (task.inputs go a horizon past the last row: _padded)
        part = begin[first : first + MAX_WINDOWS]
        _, _, scaled = kind.after_fit(task, predictor, part, chosen)
        if scaled is None:
            scaled = predictor(gather_windows(task.inputs, part, m.window.lookback, H, task.future)[0])
        out.append(task.scaler.inverse_target(np.asarray(scaled, np.float64), series[first : first + MAX_WINDOWS]))
    return np.concatenate(out)


def _refresh_history(arrays: dict, panel: Panel, index: np.ndarray, m) -> None:
    """The arrays a forecast starts from, for the series that grew (rows `index` of the model's)."""
    from forecast_cli.fit import nonnegative

    L = m.window.lookback
    history = panel.last_windows(L)
    updates = {"history/values": history.values, "history/last_ds": history.last_ds,
               "history/length": history.length, "history/rows": panel.lengths.astype(np.int64),
               "history/digest": panel.digests(),
               "history/nonnegative": nonnegative(panel) & arrays["history/nonnegative"][index],
               "calibration/scale": end_scales(panel.values[:, 0], panel.starts, m.season, m.window.horizon)
               * arrays["calibration/ratio"][index]}
    if "context/values" in arrays:  # as long as `predict DATA` would take it (auto.context_rows)
        rows = arrays["history/rows"].copy()
        rows[index] = panel.lengths
        width = max(context_rows(rows, L), arrays["context/values"].shape[1])  # (rows may shrink with revisions)
        old = arrays["context/values"]
        arrays["context/values"] = np.concatenate([np.full((len(old), width - old.shape[1]), np.nan), old], axis=1)
        updates["context/values"] = panel.last_windows(width, target_only=True).values[:, :, 0]
    for name, value in updates.items():
        array = arrays[name].copy()
        array[index] = value
        arrays[name] = array
    if "ets/state" in arrays:  # auto's ETS, fitted again on the grown context (kind.context_state)
        arrays.update(models.get(m.kind).context_state(arrays["context/values"], m.season, {"blend": m.blend}))
