"""The gru, lstm and elman kinds: the Flax network of models/recurrent.py trained by train.fit, forecast by the
plain-JAX forward pass of models/forward.py (so a forecast never imports Flax).

Early stopping on the validation windows, then (with `refit`) the best network trained on over every window
(those validation held out too) from its weights and Adam state, for REFIT_EPOCHS epochs at REFIT_LEARNING_RATE
times --learning-rate, plus `ensemble - 1` more networks from other seeds, trained from scratch on every window
for the epochs early stopping chose; their forecasts are averaged. Members after the first are stored under
"member<k>/".

Each member's Adam state is kept beside its weights (arrays "state/mu/...", "state/nu/..." and its step count
"state/adam_count"), so that `forecast update` trains on where training stopped: UPDATE_EPOCHS epochs at
UPDATE_LEARNING_RATE times the trained learning rate on the windows that end in the new rows plus a replay
sample of older ones, stopped early on the newest windows, and kept only if it forecasts those better than the
weights before.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import TYPE_CHECKING

import numpy as np

from forecast_cli.config import RecurrentConfig
from forecast_cli.errors import DataError
from forecast_cli.models import FitTask, Fitted, Model, Predictor, batched
from forecast_cli.windows import every_window

if TYPE_CHECKING:
    from forecast_cli.artifact import Manifest

REFIT_EPOCHS = 5  # at most (never more than early stopping's best epoch). Before 2026-12-03 the refit trained a
REFIT_LEARNING_RATE = 0.3  # fresh network for the best epoch's count: the same M1 MASE within 0.4% (3 / 10
# epochs, rates 0.3 / 1 gave the same within 0.3%), in 55-60% of the time on M1 monthly (docs/accuracy.md)
UPDATE_EPOCHS = 5
UPDATE_PATIENCE = 2
UPDATE_LEARNING_RATE = 0.3  # of the trained --learning-rate (a warm start needs no warm-up to a peak)


class Recurrent(Model):
    trained_on_loss = True
    sees_future = True

    def __init__(self, cell: str):
        self.name = cell

    def fit(self, task: FitTask) -> Fitted:
        import jax

        from forecast_cli import train
        from forecast_cli.models import recurrent

        spec, L, H = task.spec, task.window.lookback, task.window.horizon
        train_idx, val_idx, inputs, key = task.train_idx, task.val_idx, task.inputs, task.key
        if not task.total(np.array(len(train_idx))):
            raise DataError("no series is long enough to give a training window; use a smaller --lookback")
        config = RecurrentConfig(**{**spec.recurrent.to_dict(), "cell": self.name, "future": task.future})
        dropout = config.dropout > 0

        model_key, train_key = jax.random.split(key)
        model = recurrent.build(inputs.shape[1], H, config, model_key)
        model, history = train.fit(model, inputs, train_idx, val_idx, L, H, spec.train, train_key, dropout=dropout,
                                   on_epoch=task.on_epoch, row_weight=task.row_weight, future=config.future,
                                   starts=task.panel.starts)
        info = {"epochs": len(history.train_loss), "best_epoch": history.best_epoch,
                "stopped_early": history.stopped_early, "train_loss": history.train_loss[-1],
                "val_loss": history.val_loss[history.best_epoch - 1], "seconds": round(history.seconds, 3)}
        validated = params = recurrent.flat_params(model)
        state = adam_arrays([history.moments])
        if spec.train.refit and task.total(np.array(len(val_idx))):
            every = every_window(task.panel.starts, L, H)  # the windows that straddle the cut as well
            on = dataclasses.replace(spec.train, epochs=min(history.best_epoch, REFIT_EPOCHS), patience=0,
                                     learning_rate=spec.train.learning_rate * REFIT_LEARNING_RATE)
            again = dataclasses.replace(spec.train, epochs=history.best_epoch, patience=0)
            members, moments = [], []
            for member in range(spec.train.ensemble):  # every process refits alike: the same epochs and seeds
                if member:  # another seed, from scratch
                    model_key, train_key = jax.random.split(jax.random.fold_in(key, member))
                    start, config_k, warm = recurrent.build(inputs.shape[1], H, config, model_key), again, None
                else:  # trained on from the validated weights
                    start, config_k, warm = model, on, history.moments
                model_k, refitted = train.fit(start, inputs, every, np.zeros(0, np.int64), L, H, config_k, train_key,
                                              dropout=dropout, row_weight=task.row_weight, future=config.future,
                                              starts=task.panel.starts, moments=warm)
                members.append(recurrent.flat_params(model_k))
                moments.append(refitted.moments)
            params, state = join_members(members), adam_arrays(moments)
            info.update(refit_windows=int(task.total(np.array(len(every)))), refit_epochs=on.epochs,
                        members=spec.train.ensemble)
        return Fitted(params, config.to_dict(), info, validated, state)

    def update(self, task: FitTask, manifest: Manifest, params: dict[str, np.ndarray],
               state: dict[str, np.ndarray]) -> Fitted:
        """Every member trained on from its weights and Adam state (see the module's docstring); a member whose
        update does not forecast the newest windows (task.val_idx) better keeps its weights and state."""
        import jax

        from forecast_cli import train
        from forecast_cli.models import recurrent

        if not len(task.train_idx):
            return Fitted(params, manifest.model, {**manifest.fit, "kept": "the previous weights: no window to "
                                                   "train on (the series that grew are shorter than a lookback and "
                                                   "a horizon)"}, state=state)
        L, H, F = task.window.lookback, task.window.horizon, task.inputs.shape[1]
        config = RecurrentConfig(**manifest.model)
        again = dataclasses.replace(manifest.train, epochs=UPDATE_EPOCHS, patience=UPDATE_PATIENCE, refit=False,
                                    learning_rate=manifest.train.learning_rate * UPDATE_LEARNING_RATE)
        members, mu, nu = (members_of(p) for p in (params, _under(state, "mu/"), _under(state, "nu/")))
        new_members, new_moments, kept = [], [], 0
        for k, own in enumerate(members):
            before = {"count": int(state["adam_count"][k]), "mu": recurrent.restore(F, H, config, mu[k], tree=True),
                      "nu": recurrent.restore(F, H, config, nu[k], tree=True)}
            model, history = train.fit(recurrent.restore(F, H, config, own), task.inputs, task.train_idx,
                                       task.val_idx, L, H, again, jax.random.fold_in(task.key, k),
                                       dropout=config.dropout > 0, row_weight=task.row_weight, moments=before,
                                       future=config.future)
            after = recurrent.flat_params(model)
            if len(task.val_idx) and self._newest_error(manifest, after, task) >= \
                    self._newest_error(manifest, own, task):
                after, history.moments, kept = own, before, kept + 1
            new_members.append(after)
            new_moments.append(history.moments)
        trained = len(members) - kept
        kept = (f"trained on {trained} of {len(members)} network(s) for up to {UPDATE_EPOCHS} epochs" if trained
                else "the previous weights: training on did not forecast the newest windows better")
        info = {**manifest.fit, "kept": kept}
        return Fitted(join_members(new_members), manifest.model, info, state=adam_arrays(new_moments))

    def _newest_error(self, manifest: Manifest, params: dict[str, np.ndarray], task: FitTask) -> float:
        """Mean absolute error (scaled units) of `params`' forecasts of the windows at task.val_idx."""
        from forecast_cli.windows import gather_windows

        X, Y = gather_windows(task.inputs, task.val_idx, task.window.lookback, task.window.horizon, task.future)
        pred = self.predictor(manifest.model, task.window.horizon, task.season, params)(X)
        return float(np.mean(np.abs(pred - Y)))

    def predictor(self, model: dict, horizon: int, season: int, params: dict[str, np.ndarray]) -> Predictor:
        config = RecurrentConfig(**model)
        members = members_of(params)  # an ensemble: averaged

        shape = {"cell": config.cell, "layers": config.layers, "hidden": config.hidden, "future": config.future,
                 "horizon": horizon}
        return lambda X: batched(lambda chunk: _ensemble_forward(members, chunk, **shape), X)


GRU, LSTM, ELMAN = Recurrent("gru"), Recurrent("lstm"), Recurrent("elman")


@functools.cache
def _jitted_ensemble():
    import jax

    from forecast_cli.models.forward import recurrent_forward

    def forward(members, X, cell, layers, hidden, future, horizon):
        return sum(recurrent_forward(p, X, cell, layers, hidden, future, horizon) for p in members) / len(members)

    return jax.jit(forward, static_argnames=("cell", "layers", "hidden", "future", "horizon"))


def _ensemble_forward(members, X, **shape):
    """The members' averaged forecast, by one jitted function per shape (so a process that forecasts with many
    weights, as `update` does, compiles it once)."""
    return _jitted_ensemble()(members, X, **shape)


def members_of(flat: dict[str, np.ndarray]) -> list[dict[str, np.ndarray]]:
    """The members of an ensemble's flat arrays: the first member's names have no prefix, member k's
    "member<k>/" (k from 1)."""
    members = [{k: v for k, v in flat.items() if not k.startswith("member")}]
    for k in range(1, 1 + len({name.split("/")[0] for name in flat if name.startswith("member")})):
        prefix = f"member{k}/"
        members.append({name[len(prefix):]: v for name, v in flat.items() if name.startswith(prefix)})
    return members


def join_members(members: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """members_of's inverse."""
    return {(f"member{k}/{name}" if k else name): v for k, member in enumerate(members) for name, v in member.items()}


def adam_arrays(moments: list[dict]) -> dict[str, np.ndarray]:
    """The "state/" arrays of every member's Adam state (train.TrainHistory.moments): "mu/<param>",
    "nu/<param>" (named as join_members names the weights) and "adam_count": (members,) steps taken."""
    from forecast_cli.models import recurrent

    arrays = {"adam_count": np.array([m["count"] for m in moments], np.int64)}
    for part in ("mu", "nu"):
        joined = join_members([recurrent.flat_params(m[part]) for m in moments])
        arrays.update({f"{part}/{name}": v for name, v in joined.items()})
    return arrays


def _under(flat: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix):]: v for k, v in flat.items() if k.startswith(prefix)}
