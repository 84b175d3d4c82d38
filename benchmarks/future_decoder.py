"""How a recurrent network should see future-known covariates: a head form (the last hidden state and the
horizon's values of the future columns, flattened, into one dense head) against the decoder that
models/recurrent.py builds (one more cell that runs over the horizon from the encoder's last state, taking each
step's future values, with a dense output per step: the seq2seq form of neuralforecast's and darts' future
covariates).

Both are trained by the same loop (train.fit), on the same windows, inputs, loss (MASE weights) and seeds; the
score is the best validation loss (MASE units), the mean over `--seeds`.

    python benchmarks/future_decoder.py [--seeds 3] [--epochs 100]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
from common import header, table  # noqa: E402
from future_covariates import ROOT, synthetic  # noqa: E402


def head_model(n_features: int, horizon: int, future: tuple[int, ...], hidden: int, key):
    """The form measured against the decoder: the last hidden state and the horizon's future values, flattened,
    into one dense head that emits every step."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    class Head(nnx.Module):
        def __init__(self, rngs: nnx.Rngs):
            self.encoder = nnx.RNN(nnx.GRUCell(n_features, hidden, rngs=rngs), return_carry=True, rngs=False)
            self.head = nnx.Linear(hidden + horizon * len(future), horizon, rngs=rngs)

        def __call__(self, x: jax.Array, *, dropout_key=None) -> jax.Array:
            past, ahead = x[:, :-horizon], x[:, -horizon:][:, :, list(future)]
            level = jnp.mean(past[:, :, 0], axis=1, keepdims=True)
            past = past.at[:, :, 0].add(-level)
            carry, _ = self.encoder(past, initial_carry=jnp.zeros((x.shape[0], hidden), x.dtype))
            return self.head(jnp.concatenate([carry, ahead.reshape(x.shape[0], -1)], axis=1)) + level

    return Head(nnx.Rngs(params=key))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=100)
    args = parser.parse_args()
    import jax

    from forecast_cli import models, train
    from forecast_cli.config import DataConfig, RecurrentConfig, TrainConfig, TrainSpec
    from forecast_cli.data import read_series
    from forecast_cli.fit import _task, resolve_window
    from forecast_cli.models import recurrent
    from forecast_cli.windows import default_val_size

    header("Future covariates in a GRU: head against decoder (validation loss, MASE units)", "jax", "flax")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        data = {"synthetic (y = season + 1.5 x)": (synthetic(os.path.join(tmp, "s.csv"), 30, 240, False),
                                                   DataConfig(future_covariates=("x",)), 7),
                "river (rain)": (os.path.join(ROOT, "sample_data", "river.csv"),
                                 DataConfig(target="discharge", future_covariates=("rain",)), 7)}
        for name, (path, config, horizon) in data.items():
            panel = read_series(path, config)
            spec = TrainSpec(kind="gru", horizon=horizon, data=config, train=TrainConfig(epochs=args.epochs))
            window = resolve_window(panel, horizon, None)
            task = _task(panel, spec, window, models.get("gru"), False, default_val_size(panel.lengths, horizon),
                         None)
            L, H, F = window.lookback, window.horizon, task.inputs.shape[1]
            for form in ("head", "decoder"):
                losses, seconds = [], []
                for seed in range(args.seeds):
                    key, fit_key = jax.random.split(jax.random.key(seed))
                    if form == "decoder":  # what models/recurrent.py builds
                        model = recurrent.build(F, H, RecurrentConfig(future=task.future), key)
                    else:
                        model = head_model(F, H, task.future, RecurrentConfig().hidden, key)
                    start = time.perf_counter()
                    _, history = train.fit(model, task.inputs, task.train_idx, task.val_idx, L, H,
                                           dataclasses.replace(spec.train, seed=seed), fit_key,
                                           row_weight=task.row_weight, future=task.future)
                    seconds.append((time.perf_counter() - start) / len(history.train_loss))
                    losses.append(min(history.val_loss))
                rows.append([name, form, f"{np.mean(losses):.4f}", f"{np.std(losses):.4f}",
                             f"{1000 * np.median(seconds):.0f}"])
                print(" | ".join(rows[-1]), file=sys.stderr, flush=True)
    print(table(["data", "future covariates enter", "val loss (mean)", "sd over seeds", "ms/epoch"], rows))


if __name__ == "__main__":
    main()
