"""The gru, lstm and elman kinds: the Flax network of models/recurrent.py trained by train.fit, forecast by the
plain-JAX forward pass of models/forward.py (so a forecast never imports Flax).

Early stopping on the validation windows, then (with `refit`) the same network trained again on every window
for the epochs early stopping chose, plus `ensemble - 1` more from other seeds trained that way; their forecasts
are averaged. Members after the first are stored under "member<k>/".
"""

from __future__ import annotations

import dataclasses

import numpy as np

from forecast_cli.config import RecurrentConfig
from forecast_cli.errors import DataError
from forecast_cli.models import FitTask, Fitted, Model, Predictor, batched, flatten_params


class Recurrent(Model):
    trained_on_loss = True

    def __init__(self, cell: str):
        self.name = cell

    def fit(self, task: FitTask) -> Fitted:
        import jax
        from flax import nnx

        from forecast_cli import train
        from forecast_cli.models import recurrent

        spec, L, H = task.spec, task.window.lookback, task.window.horizon
        train_idx, val_idx, inputs, key = task.train_idx, task.val_idx, task.inputs, task.key
        if not task.total(np.array(len(train_idx))):
            raise DataError("no series is long enough to give a training window; use a smaller --lookback")
        config = RecurrentConfig(**{**spec.recurrent.to_dict(), "cell": self.name})
        dropout = config.dropout > 0

        def flat(model):
            return flatten_params(nnx.to_pure_dict(nnx.state(model)))

        model_key, train_key = jax.random.split(key)
        model = recurrent.build(inputs.shape[1], H, config, model_key)
        model, history = train.fit(model, inputs, train_idx, val_idx, L, H, spec.train, train_key, dropout=dropout,
                                   on_epoch=task.on_epoch, row_weight=task.row_weight)
        info = {"epochs": len(history.train_loss), "best_epoch": history.best_epoch,
                "stopped_early": history.stopped_early, "train_loss": history.train_loss[-1],
                "val_loss": history.val_loss[history.best_epoch - 1], "seconds": round(history.seconds, 3)}
        validated = params = flat(model)
        if spec.train.refit and task.total(np.array(len(val_idx))):
            every = np.union1d(train_idx, val_idx)
            again = dataclasses.replace(spec.train, epochs=history.best_epoch, patience=0)
            params = {}
            for member in range(spec.train.ensemble):  # every process refits alike: the same epochs and seeds
                if member:
                    model_key, train_key = jax.random.split(jax.random.fold_in(key, member))
                fresh = recurrent.build(inputs.shape[1], H, config, model_key)
                model, _ = train.fit(fresh, inputs, every, np.zeros(0, np.int64), L, H, again, train_key,
                                     dropout=dropout, row_weight=task.row_weight)
                params.update({(f"member{member}/{k}" if member else k): v for k, v in flat(model).items()})
            info.update(refit_windows=int(task.total(np.array(len(every)))), members=spec.train.ensemble)
        return Fitted(params, config.to_dict(), info, validated)

    def predictor(self, model: dict, horizon: int, season: int, params: dict[str, np.ndarray]) -> Predictor:
        import jax

        from forecast_cli.models.forward import recurrent_forward

        config = RecurrentConfig(**model)
        members = [{k: v for k, v in params.items() if not k.startswith("member")}]
        for prefix in sorted({k.split("/")[0] + "/" for k in params if k.startswith("member")}):  # an ensemble:
            members.append({k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)})  # averaged

        @jax.jit
        def forward(members, X):
            return sum(recurrent_forward(p, X, config.cell, config.layers, config.hidden)
                       for p in members) / len(members)

        return lambda X: batched(lambda chunk: forward(members, chunk), X)


GRU, LSTM, ELMAN = Recurrent("gru"), Recurrent("lstm"), Recurrent("elman")
