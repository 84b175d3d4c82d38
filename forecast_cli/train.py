"""Training of the recurrent forecasters: backpropagation through time, AdamW, early stopping.

The model sees windows gathered on the device by index from one `inputs: (n_rows, n_features)` array
(column 0 is the scaled target), so the data is transferred once. A whole epoch (shuffle, every minibatch,
the optimizer updates) is one compiled call: `lax.scan` over minibatches of a fixed size, the last one padded
with zero-weight windows, so nothing recompiles per batch or per epoch.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from forecast_cli import sharding
from forecast_cli.config import TrainConfig
from forecast_cli.errors import TrainingError
from forecast_cli.windows import gather_windows

Array = jax.Array


@dataclass
class TrainHistory:
    """Per-epoch losses (the `--loss` of TrainConfig, on scaled values) and where training stopped."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    seconds: float = 0.0
    first_epoch_seconds: float = 0.0  # includes compiling the epoch


def gather(inputs: Array, begin: Array, lookback: int, horizon: int) -> tuple[Array, Array]:
    """Windows starting at rows `begin: (batch,)` -> X: (batch, lookback, n_features), Y: (batch, horizon)."""
    X = inputs[begin[:, None] + jnp.arange(lookback)]
    Y = inputs[begin[:, None] + lookback + jnp.arange(horizon), 0]
    return X, Y


def auto_batch_size(n: int) -> int:
    """A tenth of the windows, within 16..256: enough optimizer steps per epoch on small data, and the
    throughput sweet spot of a CPU on large data."""
    return int(np.clip(n // 10, 16, 256))


def batches(n: int, batch_size: int | None, multiple: int = 1) -> tuple[int, int]:
    """(batch size actually used, number of batches): a batch never exceeds the number of windows (rounded up
    to a multiple of the device count, so it splits evenly over the devices)."""
    size = max(1, min(batch_size or auto_batch_size(n), n))
    size = -(-size // multiple) * multiple
    return size, math.ceil(n / size)


def make_optimizer(config: TrainConfig, total_steps: int) -> optax.GradientTransformation:
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=config.learning_rate * 0.1,
        peak_value=config.learning_rate,
        warmup_steps=max(1, total_steps // 20),
        decay_steps=max(2, total_steps),
        end_value=config.learning_rate * 0.05,
    )
    return optax.chain(
        optax.clip_by_global_norm(config.clip_norm),
        optax.adamw(schedule, weight_decay=config.weight_decay),
    )



def window_loss(pred: Array, Y: Array, loss: str) -> Array:
    """(batch, horizon) forecasts and targets -> (batch,) loss of each window."""
    error = pred - Y
    return jnp.mean(error**2 if loss == "mse" else jnp.abs(error), axis=1)


def make_steps(graphdef, tx, lookback: int, horizon: int, batch_size: int, n_batches: int, dropout: bool,
               mesh=None, loss: str = "mse"):
    """The compiled epoch function for one run (shapes fixed, so it compiles once). `row_weight: (n_rows,)`
    weighs each window by the row it starts at (a series' weight in the loss)."""

    def loss_sum(params, inputs, row_weight, begin, weight, key):
        X, Y = gather(inputs, begin, lookback, horizon)
        pred = nnx.merge(graphdef, params)(X, dropout_key=key if dropout else None)
        return jnp.sum(window_loss(pred, Y, loss) * weight * row_weight[begin])

    def sums_and_grads(params, inputs, row_weight, begin, weight, key):
        """(weighted loss sum, its gradient, weight sum) over the batch: on a mesh, each device takes its part
        of the batch and the three are summed over the devices once (left to XLA's partitioner, the weight
        gradient of the recurrent step was all-reduced at every one of the time steps). Each device draws its
        own dropout masks."""
        if mesh is not None:
            key = jax.random.fold_in(key, jax.lax.axis_index(sharding.AXIS))
        total, grads = jax.value_and_grad(loss_sum)(params, inputs, row_weight, begin, weight, key)
        sums = (total, grads, jnp.sum(weight))
        return sums if mesh is None else jax.lax.psum(sums, sharding.AXIS)

    if mesh is not None:
        sums_and_grads = sharding.per_device(mesh, sums_and_grads, batch_args=(3, 4), n_args=6)

    @jax.jit
    def train_epoch(params, opt_state, inputs, row_weight, train_idx, key):
        order_key, dropout_key = jax.random.split(key)
        order = jax.random.permutation(order_key, train_idx)
        pad = batch_size * n_batches - order.shape[0]
        begin = jnp.concatenate([order, jnp.zeros(pad, order.dtype)]).reshape(n_batches, batch_size)
        weight = jnp.concatenate([jnp.ones(order.shape[0]), jnp.zeros(pad)]).reshape(n_batches, batch_size)
        begin, weight = sharding.split_batch(mesh, begin, 1), sharding.split_batch(mesh, weight, 1)
        keys = jax.random.split(dropout_key, n_batches)

        def step(carry, batch):
            params, opt_state = carry
            total, grads, count = sums_and_grads(params, inputs, row_weight, *batch)
            count = jnp.maximum(count, 1.0)
            loss, grads = total / count, jax.tree.map(lambda g: g / count, grads)
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), loss * jnp.sum(batch[1])

        (params, opt_state), losses = jax.lax.scan(step, (params, opt_state), (begin, weight, keys))
        return params, opt_state, jnp.sum(losses) / order.shape[0]

    return train_epoch


def make_evaluate(graphdef, lookback: int, horizon: int, mesh=None, loss: str = "mse"):
    @jax.jit
    def evaluate(params, inputs, row_weight, begin, weight):
        """Mean loss over windows `begin: (n_batches, batch)` with weights (0 for padding)."""
        begin, weight = sharding.split_batch(mesh, begin, 1), sharding.split_batch(mesh, weight, 1)

        def one(params, batch):  # params ride in the carry: a closed-over State cannot merge in a nested trace
            b, w = batch
            X, Y = gather(inputs, b, lookback, horizon)
            pred = nnx.merge(graphdef, params)(X)
            return params, jnp.sum(window_loss(pred, Y, loss) * w * row_weight[b])

        _, sums = jax.lax.scan(one, params, (begin, weight))
        return jnp.sum(sums) / jnp.maximum(jnp.sum(weight), 1.0)

    return evaluate


@functools.lru_cache(maxsize=8)
def compiled_steps(graphdef, config: TrainConfig, lookback: int, horizon: int, batch_size: int, n_batches: int,
                   dropout: bool, mesh):
    """(optimizer, train_epoch, evaluate) for one set of shapes and options: fits that share them (the members
    of an ensemble) share the compiled functions too (pass the config with seed 0: the seed does not change
    them)."""
    tx = make_optimizer(config, config.epochs * n_batches)
    return (tx, make_steps(graphdef, tx, lookback, horizon, batch_size, n_batches, dropout, mesh, config.loss),
            make_evaluate(graphdef, lookback, horizon, mesh, config.loss))


def pad_to_batches(idx: np.ndarray, batch_size: int, multiple: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """idx: (n,) -> (n_batches, batch) indices and weights, padded with zero-weight copies of idx[0]."""
    size, n_batches = batches(len(idx), batch_size, multiple)
    pad = size * n_batches - len(idx)
    begin = np.concatenate([idx, np.full(pad, idx[0] if len(idx) else 0)]).reshape(n_batches, size)
    weight = np.concatenate([np.ones(len(idx)), np.zeros(pad)]).reshape(n_batches, size)
    return begin, weight.astype(np.float32)


def fit(
    model: nnx.Module,
    inputs: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    lookback: int,
    horizon: int,
    config: TrainConfig,
    key: Array,
    dropout: bool = False,
    on_epoch: Callable[[int, dict], None] | None = None,
    row_weight: np.ndarray | None = None,
) -> tuple[nnx.Module, TrainHistory]:
    """Train `model` on windows of `inputs: (n_rows, n_features)` starting at `train_idx`; stop early on
    the loss at `val_idx` and return the model with the best validation weights restored (with no `val_idx`,
    the training windows are monitored instead, or, with patience 0 too, nothing is: the last weights are
    returned). A window's loss is multiplied by
    `row_weight[start row]` (default 1)."""
    if len(train_idx) == 0:
        raise TrainingError("no training windows: the series are too short for this lookback and horizon")
    start = time.perf_counter()
    mesh = sharding.data_mesh(config.devices)
    devices = sharding.device_count(mesh)
    graphdef, params = nnx.split(model)
    size, n_batches = batches(len(train_idx), config.batch_size, devices)
    tx, train_epoch, evaluate = compiled_steps(graphdef, dataclasses.replace(config, seed=0), lookback, horizon,
                                               size, n_batches, dropout, mesh)
    params = sharding.replicated(mesh, params)
    opt_state = sharding.replicated(mesh, tx.init(params))
    inputs = sharding.replicated(mesh, jnp.asarray(inputs, jnp.float32))
    row_weight = sharding.replicated(mesh, jnp.asarray(np.ones(len(inputs)) if row_weight is None else row_weight,
                                                       jnp.float32))
    train_idx = sharding.replicated(mesh, jnp.asarray(train_idx, jnp.int32))
    monitor = val_idx if len(val_idx) else np.asarray(train_idx)
    val_begin, val_weight = sharding.replicated(mesh, tuple(
        jnp.asarray(a) for a in pad_to_batches(np.asarray(monitor, np.int32), 1024, devices)))
    history = TrainHistory()
    best, best_loss, waited = params, math.inf, 0
    monitored = len(val_idx) > 0 or config.patience > 0  # else: a fixed number of epochs, the last weights kept
    for epoch in range(1, config.epochs + 1):
        key, epoch_key = jax.random.split(key)
        params, opt_state, train_loss = train_epoch(params, opt_state, inputs, row_weight, train_idx, epoch_key)
        train_loss = float(train_loss)
        val_loss = float(evaluate(params, inputs, row_weight, val_begin, val_weight)) if monitored else train_loss
        if epoch == 1:
            history.first_epoch_seconds = time.perf_counter() - start
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            raise TrainingError(
                f"training diverged at epoch {epoch} (loss {train_loss}); nothing was saved. "
                "Try a smaller --learning-rate or check the data for extreme values"
            )
        history.train_loss.append(train_loss)
        history.val_loss.append(val_loss)
        if val_loss < best_loss or not monitored:
            best, best_loss, waited, history.best_epoch = params, val_loss, 0, epoch
        else:
            waited += 1
        if on_epoch:
            on_epoch(epoch, {"train_loss": train_loss, "val_loss": val_loss, "best_val_loss": best_loss})
        if config.patience and waited >= config.patience:
            history.stopped_early = True
            break
    history.seconds = time.perf_counter() - start
    return nnx.merge(graphdef, best), history


def fit_across_processes(
    model: nnx.Module,
    inputs: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    lookback: int,
    horizon: int,
    config: TrainConfig,
    on_epoch: Callable[[int, dict], None] | None = None,
    row_weight: np.ndarray | None = None,
) -> tuple[nnx.Module, TrainHistory]:
    """fit() when several processes each hold a shard of the series (jax.distributed is running): the same
    `config.loss` and per-row weights (`row_weight: (n_rows,)` of this process's rows, default 1) as fit().

    Every step's global batch is assembled from each process's own windows (gathered on its host, then
    `jax.make_array_from_process_local_data` over a mesh of every device of every process); parameters are
    replicated, XLA all-reduces the gradients, and early stopping uses the global validation loss, so all
    processes take the same decisions and end with the same weights. Dropout is not used here.
    """
    from jax.experimental import multihost_utils
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    from forecast_cli import distributed

    start = time.perf_counter()
    processes = jax.process_count()
    mesh = Mesh(np.array(jax.devices()), (sharding.AXIS,))
    split = NamedSharding(mesh, PartitionSpec(sharding.AXIS))
    counts = distributed.allgather(np.array([len(train_idx), len(val_idx)]))
    size, _ = batches(int(counts[:, 0].sum()), config.batch_size, jax.device_count())
    local = size // processes  # windows each process contributes to a global batch
    n_batches = max(1, math.ceil(counts[:, 0].max() / local))
    n_val_batches = max(1, math.ceil(counts[:, 1].max() / local)) if counts[:, 1].sum() else 0
    graphdef, params = nnx.split(model)  # the same initial weights everywhere: the same seed
    tx = make_optimizer(config, config.epochs * n_batches)
    to_global = partial(multihost_utils.host_local_array_to_global_array, global_mesh=mesh, pspecs=PartitionSpec())
    params = to_global(params)
    opt_state = jax.jit(tx.init)(params)

    rows_weight = np.ones(len(inputs), np.float32) if row_weight is None else np.asarray(row_weight, np.float32)

    def loss_sums(params, X, Y, w, rw):
        """(sum of the windows' losses, each times its row weight, over real windows; how many are real)."""
        pred = nnx.merge(graphdef, params)(X)
        return jnp.sum(window_loss(pred, Y, config.loss) * w * rw), jnp.sum(w)

    @jax.jit
    def step(params, opt_state, X, Y, w, rw):
        def loss_fn(params):
            total, weight = loss_sums(params, X, Y, w, rw)
            return total / jnp.maximum(weight, 1.0), (total, weight)

        (_, (total, weight)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, total, weight

    sums = jax.jit(loss_sums)

    def global_batch(idx, first):
        part = idx[first : first + local]
        begin = np.concatenate([part, np.zeros(local - len(part), np.int64)]).astype(np.int64)
        X, Y = gather_windows(inputs, begin, lookback, horizon)
        w = (np.arange(local) < len(part)).astype(np.float32)
        return tuple(jax.make_array_from_process_local_data(split, a) for a in (X, Y, w, rows_weight[begin]))

    def scalar(x) -> float:
        return float(np.asarray(x.addressable_data(0)))

    history = TrainHistory()
    best, best_loss, waited = params, math.inf, 0
    rng = np.random.default_rng([config.seed, jax.process_index()])
    monitor = val_idx if n_val_batches else train_idx
    monitored = n_val_batches > 0 or config.patience > 0  # else (a refit): fixed epochs, the last weights kept
    for epoch in range(1, config.epochs + 1):
        order = rng.permutation(train_idx)
        total = weight = 0.0
        for b in range(n_batches):
            params, opt_state, t, w = step(params, opt_state, *global_batch(order, b * local))
            total, weight = total + scalar(t), weight + scalar(w)
        train_loss = total / max(weight, 1.0)
        val_total = val_weight = 0.0
        for b in range(n_val_batches or n_batches) if monitored else ():
            t, w = sums(params, *global_batch(monitor, b * local))
            val_total, val_weight = val_total + scalar(t), val_weight + scalar(w)
        val_loss = val_total / max(val_weight, 1.0) if monitored else train_loss
        if not (math.isfinite(train_loss) and math.isfinite(val_loss)):
            raise TrainingError(f"training diverged at epoch {epoch} (loss {train_loss}); nothing was saved")
        history.train_loss.append(train_loss)
        history.val_loss.append(val_loss)
        if val_loss < best_loss or not monitored:
            best, best_loss, waited, history.best_epoch = params, val_loss, 0, epoch
        else:
            waited += 1
        if on_epoch:
            on_epoch(epoch, {"train_loss": train_loss, "val_loss": val_loss, "best_val_loss": best_loss})
        if config.patience and waited >= config.patience:
            history.stopped_early = True
            break
    history.seconds = time.perf_counter() - start
    host = jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), best)
    return nnx.merge(graphdef, host), history
