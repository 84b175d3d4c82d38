"""Training of the recurrent forecasters: backpropagation through time, AdamW, early stopping.

One training loop (`fit`: epochs, divergence check, early stopping, progress) runs over one of two back-ends,
so the loss, the per-series weights and every stopping rule are the same however the work is spread:

- `_OneProcess`: the model sees windows gathered on the device by index from one `inputs: (n_rows,
  n_features)` array (column 0 is the scaled target), so the data is transferred once. A whole epoch
  (shuffle, every minibatch, the optimizer updates) is one compiled call: `lax.scan` over minibatches of a
  fixed size, the last one padded with zero-weight windows, so nothing recompiles per batch or per epoch. With
  several local devices each batch is split over them (parallel.Devices).
- `_Processes`: several processes (jax.distributed) each hold a shard of the series, on their own devices: the
  rows are one global array split by process over a (process, data) mesh. An epoch is again one compiled call
  (the same scan body), run on every device of every process at once (`jax.shard_map`); each process shuffles
  its own windows on the host and sends the epoch's indices once, a global batch holds an equal part of each
  process's windows, and each batch's loss and gradient sums cross the processes once, as one vector. The
  parameters are replicated and the losses global, so every process takes the same decisions and ends with
  the same weights.
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
from jax.flatten_util import ravel_pytree

from forecast_cli import parallel
from forecast_cli.config import TrainConfig
from forecast_cli.errors import TrainingError
from forecast_cli.features import aligned_empty
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
    first_epoch_seconds: float = 0.0  # includes compiling the epoch (benchmarks/scaling.py leaves it out)
    moments: dict | None = None  # Adam's state at the returned weights ({"count", "mu", "nu"}, see adam_moments):
    # what `forecast update` continues from


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


def adam_moments(opt_state) -> dict:
    """{"count": steps taken, "mu": first moments, "nu": second moments} of an optimizer state of make_optimizer
    (the moments are trees shaped like the parameters)."""
    from optax import tree_utils

    adam = _adam_state(opt_state)
    count = adam.count if adam.count.is_fully_addressable else adam.count.addressable_data(0)
    return {"count": int(np.asarray(count)), "mu": tree_utils.tree_get(opt_state, "mu"),
            "nu": tree_utils.tree_get(opt_state, "nu")}


def with_adam_moments(opt_state, moments: dict):
    """`opt_state` (of make_optimizer) with Adam's step count and moments replaced by `moments` (adam_moments'
    form): a warm start. The learning-rate schedule's own count is left alone, so a new schedule starts anew."""
    adam = _adam_state(opt_state)
    warm = adam._replace(count=jnp.asarray(moments["count"], adam.count.dtype),
                         mu=jax.tree.map(jnp.asarray, moments["mu"]), nu=jax.tree.map(jnp.asarray, moments["nu"]))
    return jax.tree.map(lambda s: warm if s is adam else s, opt_state, is_leaf=lambda s: s is adam)


def _adam_state(opt_state) -> optax.ScaleByAdamState:
    found = [s for s in jax.tree.leaves(opt_state, is_leaf=lambda s: isinstance(s, optax.ScaleByAdamState))
             if isinstance(s, optax.ScaleByAdamState)]
    if len(found) != 1:
        raise ValueError("not an optimizer state of make_optimizer (one Adam state)")
    return found[0]


def window_loss(pred: Array, Y: Array, loss: str) -> Array:
    """(batch, horizon) forecasts and targets -> (batch,) loss of each window."""
    error = pred - Y
    return jnp.mean(error**2 if loss == "mse" else jnp.abs(error), axis=1)


def weight_of(row_weight, begin):
    """The weight of the windows starting at rows `begin`: row_weight[begin], or with `row_weight: (1,)` (no
    weights, which saves 4 bytes a row on each device) its one value."""
    return row_weight[begin] if row_weight.shape[0] > 1 else jnp.broadcast_to(row_weight[0], begin.shape)


def _loss_sum(graphdef, lookback: int, horizon: int, loss: str, future: tuple[int, ...], dropout: bool):
    """loss_sum(params, inputs, row_weight, begin, weight, key): the weighted loss sum of the windows starting at
    rows `begin` of `inputs` (weight 0 for padding), each also times its row weight (weight_of)."""

    def loss_sum(params, inputs, row_weight, begin, weight, key):
        X, Y = gather_windows(inputs, begin, lookback, horizon, future)
        pred = nnx.merge(graphdef, params)(X, dropout_key=key if dropout else None)
        return jnp.sum(window_loss(pred, Y, loss) * weight * weight_of(row_weight, begin))

    return loss_sum


def _summed(loss_sum, axes):
    """sums_and_grads(params, inputs, row_weight, begin, weight, key): (weighted loss sum, its gradient, weight
    sum) over a batch, each added up over the mesh `axes` once (None: no mesh). Run on each device with its part
    of the batch (left to XLA's partitioner, the weight gradient of the recurrent step was all-reduced at every
    one of the time steps); each device draws its own dropout masks."""

    def sums_and_grads(params, inputs, row_weight, begin, weight, key):
        if axes is not None:
            key = jax.random.fold_in(key, jax.lax.axis_index(axes))
        total, grads = jax.value_and_grad(loss_sum)(params, inputs, row_weight, begin, weight, key)
        if axes is None:
            return total, grads, jnp.sum(weight)
        # one all-reduce of one vector: over gloo, each array of a tree crossed the processes on its own
        flat, unravel = ravel_pytree((total, grads, jnp.sum(weight)))
        return unravel(jax.lax.psum(flat, axes))

    return sums_and_grads


def _optimizer_step(tx, sums_and_grads, inputs, row_weight):
    """The body of an epoch's scan over batches (begin, weight, key): one update by the batch's mean loss;
    it yields the batch's weighted loss sum."""

    def step(carry, batch):
        params, opt_state = carry
        total, grads, count = sums_and_grads(params, inputs, row_weight, *batch)
        count = jnp.maximum(count, 1.0)
        updates, opt_state = tx.update(jax.tree.map(lambda g: g / count, grads), opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), total

    return step


def _evaluation_step(graphdef, lookback: int, horizon: int, loss: str, future: tuple[int, ...], inputs,
                     row_weight):
    """The body of a scan over batches (begin, weight) that yields each batch's weighted loss sum (params ride in
    the carry: a closed-over State cannot merge in a nested trace)."""

    def one(params, batch):
        b, w = batch
        X, Y = gather_windows(inputs, b, lookback, horizon, future)
        pred = nnx.merge(graphdef, params)(X)
        return params, jnp.sum(window_loss(pred, Y, loss) * w * weight_of(row_weight, b))

    return one


def make_steps(graphdef, tx, lookback: int, horizon: int, batch_size: int, n_batches: int, dropout: bool,
               devices: parallel.Devices = parallel.ONE_DEVICE, loss: str = "mse", future: tuple[int, ...] = ()):
    """The compiled epoch function for one run (shapes fixed, so it compiles once). `row_weight: (n_rows,)`
    weighs each window by the row it starts at (a series' weight in the loss), or `(1,)` every window alike
    (weight_of); `future`: the input columns
    whose horizon values the windows carry (windows.gather_windows)."""
    sums_and_grads = devices.per_device(
        _summed(_loss_sum(graphdef, lookback, horizon, loss, future, dropout),
                None if devices.count == 1 else parallel.AXIS), batch_args=(3, 4), n_args=6)

    @jax.jit
    def train_epoch(params, opt_state, inputs, row_weight, train_idx, key, lo=None, width=None):
        order_key, dropout_key = jax.random.split(key)
        if lo is not None:  # window_budget: a fresh draw of one window from each stretch (train_idx is None)
            budget_key, order_key = jax.random.split(order_key)
            train_idx = drawn(lo, width, jax.random.uniform(budget_key, lo.shape))
        order = jax.random.permutation(order_key, train_idx)
        pad = batch_size * n_batches - order.shape[0]
        begin = jnp.concatenate([order, jnp.zeros(pad, order.dtype)]).reshape(n_batches, batch_size)
        weight = jnp.concatenate([jnp.ones(order.shape[0]), jnp.zeros(pad)]).reshape(n_batches, batch_size)
        begin, weight = devices.split_batch(begin, 1), devices.split_batch(weight, 1)
        keys = jax.random.split(dropout_key, n_batches)
        step = _optimizer_step(tx, sums_and_grads, inputs, row_weight)
        (params, opt_state), totals = jax.lax.scan(step, (params, opt_state), (begin, weight, keys))
        return params, opt_state, jnp.sum(totals) / order.shape[0]

    return train_epoch


def make_evaluate(graphdef, lookback: int, horizon: int, devices: parallel.Devices = parallel.ONE_DEVICE,
                  loss: str = "mse", future: tuple[int, ...] = ()):
    @jax.jit
    def evaluate(params, inputs, row_weight, begin, weight):
        """Mean loss over windows `begin: (n_batches, batch)` with weights (0 for padding)."""
        begin, weight = devices.split_batch(begin, 1), devices.split_batch(weight, 1)
        one = _evaluation_step(graphdef, lookback, horizon, loss, future, inputs, row_weight)
        _, sums = jax.lax.scan(one, params, (begin, weight))
        return jnp.sum(sums) / jnp.maximum(jnp.sum(weight), 1.0)

    return evaluate


def make_process_steps(graphdef, tx, lookback: int, horizon: int, dropout: bool, mesh, loss: str = "mse",
                       future: tuple[int, ...] = ()):
    """(train_epoch, evaluate) of several processes, over `mesh` (parallel.process_mesh: axes process x data).
    Each runs on every device at once (shard_map), with its process's own rows: `inputs: (processes, rows,
    n_features)` and `row_weight: (processes, rows or 1)` split by process, and batches `(processes, n_batches,
    batch)` split by process and, within a batch, over the process's devices. The whole epoch (every batch and
    optimizer update) is one compiled call; each batch's loss and gradient sums cross the devices and processes
    once (one all-reduce, over gloo on CPU). Both return global sums, replicated: (weighted loss sum, weight
    sum)."""
    from jax.sharding import PartitionSpec as P

    axes = parallel.PROCESS_AXES
    sums_and_grads = _summed(_loss_sum(graphdef, lookback, horizon, loss, future, dropout), axes)
    batch, mine = P(parallel.PROCESS_AXIS, None, parallel.AXIS), P(parallel.PROCESS_AXIS)

    def epoch(params, opt_state, inputs, row_weight, begin, weight, keys):
        step = _optimizer_step(tx, sums_and_grads, inputs[0], row_weight[0])
        (params, opt_state), totals = jax.lax.scan(step, (params, opt_state), (begin[0], weight[0], keys))
        return params, opt_state, jnp.sum(totals), jax.lax.psum(jnp.sum(weight), axes)

    def evaluate(params, inputs, row_weight, begin, weight):
        one = _evaluation_step(graphdef, lookback, horizon, loss, future, inputs[0], row_weight[0])
        _, sums = jax.lax.scan(one, params, (begin[0], weight[0]))
        return jax.lax.psum((jnp.sum(sums), jnp.sum(weight)), axes)

    # check_vma off: the models start their recurrences from zeros, which the check would want marked per-device
    train_epoch = jax.shard_map(epoch, mesh=mesh, in_specs=(P(), P(), mine, mine, batch, batch, P()),
                                out_specs=P(), check_vma=False)
    evaluate = jax.shard_map(evaluate, mesh=mesh, in_specs=(P(), mine, mine, batch, batch), out_specs=P(),
                             check_vma=False)

    @jax.jit
    def train(params, opt_state, inputs, row_weight, begin, weight, key_data):
        keys = jax.random.split(jax.random.wrap_key_data(key_data), begin.shape[1])
        return train_epoch(params, opt_state, inputs, row_weight, begin, weight, keys)

    return train, jax.jit(evaluate)


@functools.lru_cache(maxsize=8)
def compiled_steps(graphdef, config: TrainConfig, lookback: int, horizon: int, batch_size: int, n_batches: int,
                   dropout: bool, devices: parallel.Devices, future: tuple[int, ...] = ()):
    """(optimizer, train_epoch, evaluate) for one set of shapes and options: fits that share them (the members
    of an ensemble) share the compiled functions too (pass the config with seed 0: the seed does not change
    them)."""
    tx = make_optimizer(config, config.epochs * n_batches)
    return (tx, make_steps(graphdef, tx, lookback, horizon, batch_size, n_batches, dropout, devices, config.loss,
                           future),
            make_evaluate(graphdef, lookback, horizon, devices, config.loss, future))


@functools.lru_cache(maxsize=8)
def compiled_process_steps(graphdef, config: TrainConfig, lookback: int, horizon: int, n_batches: int,
                           dropout: bool, mesh, future: tuple[int, ...] = ()):
    """compiled_steps for several processes: (optimizer, train_epoch, evaluate) of make_process_steps, shared by
    the fits with the same shapes and options (an ensemble's members, the refit of the same windows)."""
    tx = make_optimizer(config, config.epochs * n_batches)
    return (tx, *make_process_steps(graphdef, tx, lookback, horizon, dropout, mesh, config.loss, future))


MIN_EPOCH_WINDOWS = 4096  # a window budget never makes an epoch smaller than this (a single long series still
# gets a real epoch)


def window_budget(train_idx: np.ndarray, starts: np.ndarray, budget: int) -> tuple[np.ndarray, np.ndarray] | None:
    """An epoch's draw of at most `budget` windows of each series (raised so that an epoch keeps at least
    MIN_EPOCH_WINDOWS): each series' windows (its part of the ascending `train_idx`, by the series' rows
    `starts: (n_series + 1,)`: a run of consecutive rows, as window_starts gives them) cut into `budget` equal
    stretches, one window drawn from each (drawn). Returns (lo, width), int32 of each stretch: the row of its
    first window and its count of windows; None when no series has more windows than the budget (every window
    is used every epoch) or the budget is 0. Per stretch, not per window: a million series of 66 windows keep 2
    arrays of 16 million, not sort 66 million each epoch, and train_idx itself need not be on the device."""
    if not budget or not len(train_idx):
        return None
    first = np.searchsorted(train_idx, starts[:-1])
    count = np.searchsorted(train_idx, starts[1:]) - first
    some = count > 0
    if np.any(train_idx[(first + count - 1)[some]] - train_idx[first[some]] != count[some] - 1):
        raise ValueError("window_budget: a series' training windows are not consecutive rows")
    budget = max(budget, -(-MIN_EPOCH_WINDOWS // int(np.count_nonzero(count))))
    if count.max() <= budget:
        return None
    keep = np.minimum(count, budget)
    series = np.repeat(np.arange(len(count)), keep)
    j = np.arange(len(series)) - np.repeat(np.cumsum(keep) - keep, keep)  # the stretch's place in its series
    low = j * count[series] // keep[series]
    high = (j + 1) * count[series] // keep[series]
    return (train_idx[first[series]] + low).astype(np.int32), (high - low).astype(np.int32)


def monitored(idx: np.ndarray, starts: np.ndarray | None, budget: int) -> np.ndarray:
    """The windows early stopping evaluates every epoch: of each series' windows in `idx` (as window_budget
    takes them), at most `budget` evenly spaced, the series' last one among them (the stretches of
    window_budget, the last window of each). Overlapping windows of one series tell little more than a few of
    them do: 100,000 series of 500 steps have 4.4 million validation windows, which cost more per epoch than
    its 1.6 million training windows. All of them without `starts` or a budget, or where they are not runs."""
    if starts is None:
        return idx
    try:
        kept = window_budget(idx, starts, budget)
    except ValueError:
        return idx
    return idx if kept is None else kept[0] + kept[1] - 1


def drawn(lo, width, uniform):
    """Rows where windows begin, one uniformly within each stretch of window_budget: lo + floor(u * width),
    numpy or jax arrays alike."""
    xp = jnp if isinstance(lo, jax.Array) else np
    return lo + xp.minimum((uniform * width).astype(lo.dtype), width - 1)


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
    moments: dict | None = None,
    future: tuple[int, ...] = (),
    starts: np.ndarray | None = None,
) -> tuple[nnx.Module, TrainHistory]:
    """Train `model` on windows of `inputs: (n_rows, n_features)` starting at `train_idx`; stop early on
    the loss at `val_idx` and return the model with the best validation weights restored (with no validation
    window in any process, the training windows are monitored instead, or, with patience 0 too, nothing is:
    the last weights are returned). A window's loss (`config.loss`) is multiplied by `row_weight[start row]`
    (default 1). With several processes, each passes its own rows and windows and all get the same model.
    `moments` (adam_moments' form, for these parameters): Adam starts from them rather than from zero (a warm
    start, `forecast update`); history.moments holds Adam's state at the returned weights. `future`: the input
    columns known over the horizon, which the windows carry (the model's config.future). `starts:
    (n_series + 1,)` the rows where the series of `inputs` begin: with it, an epoch draws at most
    config.series_windows windows of each series (window_budget), and early stopping watches at most that many
    evenly spaced windows of each series (`monitored`)."""
    start = time.perf_counter()
    graphdef, params = nnx.split(model)
    row_weight = np.ones(1, np.float32) if row_weight is None else np.asarray(row_weight, np.float32)
    backend = (_Processes if jax.process_count() > 1 else _OneProcess)(
        graphdef, inputs, row_weight, train_idx, val_idx, lookback, horizon, config, dropout, tuple(future), starts)
    params, opt_state = backend.init(params, moments)
    history = TrainHistory()
    best, best_state, best_loss, waited = params, opt_state, math.inf, 0
    monitored = backend.validated or config.patience > 0  # else (a refit): fixed epochs, the last weights kept
    for epoch in range(1, config.epochs + 1):
        key, epoch_key = jax.random.split(key)
        params, opt_state, train_loss = backend.epoch(params, opt_state, epoch_key)
        val_loss = backend.monitor(params) if monitored else train_loss
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
            best, best_state, best_loss, waited, history.best_epoch = params, opt_state, val_loss, 0, epoch
        else:
            waited += 1
        if on_epoch:
            on_epoch(epoch, {"train_loss": train_loss, "val_loss": val_loss, "best_val_loss": best_loss})
        if config.patience and waited >= config.patience:
            history.stopped_early = True
            break
    history.seconds = time.perf_counter() - start
    adam = adam_moments(best_state)
    history.moments = {"count": adam["count"], **{k: jax.tree.map(np.asarray, backend.host(adam[k]))
                                                  for k in ("mu", "nu")}}
    return nnx.merge(graphdef, backend.host(best)), history


class _OneProcess:
    """The back-end of one process: the epoch is one compiled call over device-resident data, each batch split
    over `config.devices` local devices."""

    def __init__(self, graphdef, inputs, row_weight, train_idx, val_idx, lookback, horizon, config, dropout, future,
                 starts):
        if len(train_idx) == 0:
            raise TrainingError("no training windows: the series are too short for this lookback and horizon")
        devices = parallel.local_devices(config.devices)
        kept = None if starts is None else window_budget(train_idx, starts, config.series_windows)
        size, n_batches = batches(len(train_idx) if kept is None else len(kept[0]), config.batch_size, devices.count)
        self.tx, self.train_epoch, self.evaluate = compiled_steps(
            graphdef, dataclasses.replace(config, seed=0), lookback, horizon, size, n_batches, dropout, devices,
            future)
        self.devices, self.validated = devices, len(val_idx) > 0
        self.inputs, self.row_weight, self.train_idx = devices.replicated(
            (np.asarray(inputs, np.float32), jnp.asarray(row_weight),
             None if kept is not None else jnp.asarray(train_idx, jnp.int32)))
        self.budget = () if kept is None else devices.replicated(kept)
        monitor = monitored(val_idx if len(val_idx) else train_idx, starts, config.series_windows)
        self.val_batches = devices.replicated(tuple(
            jnp.asarray(a) for a in pad_to_batches(np.asarray(monitor, np.int32), 1024, devices.count)))

    def init(self, params, moments=None):
        state = self.tx.init(params)
        return self.devices.replicated(params), self.devices.replicated(
            state if moments is None else with_adam_moments(state, moments))

    def epoch(self, params, opt_state, key) -> tuple:
        params, opt_state, loss = self.train_epoch(params, opt_state, self.inputs, self.row_weight,
                                                   self.train_idx, key, *self.budget)
        return params, opt_state, float(loss)

    def monitor(self, params) -> float:
        return float(self.evaluate(params, self.inputs, self.row_weight, *self.val_batches))

    def host(self, params):
        return params


class _Processes:
    """The back-end of several processes: each keeps its own rows on its own devices, as one global array split
    by process (padded to the longest process's rows), and an epoch is one compiled call over every device
    (make_process_steps). Each process shuffles its own windows on the host, from (seed, process index), and
    sends the epoch's window indices once; a global batch holds `size / processes` windows of each process."""

    def __init__(self, graphdef, inputs, row_weight, train_idx, val_idx, lookback, horizon, config, dropout, future,
                 starts):
        from jax.sharding import PartitionSpec

        self.kept = None if starts is None else window_budget(train_idx, starts, config.series_windows)
        used = len(train_idx) if self.kept is None else len(self.kept[0])
        val_idx = monitored(val_idx, starts, config.series_windows)
        train_watched = monitored(train_idx, starts, config.series_windows)  # watched where no process validates
        counts = parallel.allgather(np.array([used, len(val_idx), len(inputs), len(row_weight), len(train_watched)]))
        if counts[:, 0].sum() == 0:
            raise TrainingError("no training windows: the series are too short for this lookback and horizon")
        mesh = parallel.process_mesh()
        processes, local_devices = mesh.devices.shape
        self.train_idx, self.validated = train_idx, bool(counts[:, 1].sum())
        self.windows = int(counts[:, 0].sum())
        size, _ = batches(self.windows, config.batch_size, processes * local_devices)
        self.local = size // processes  # windows each process contributes to a global batch
        self.n_batches = max(1, math.ceil(counts[:, 0].max() / self.local))
        self.tx, self.train_epoch, self.evaluate = compiled_process_steps(
            graphdef, dataclasses.replace(config, seed=0), lookback, horizon, self.n_batches, dropout, mesh, future)
        self.to_global = partial(parallel.global_array, mesh)
        self.inputs = self.to_global(_padded(np.asarray(inputs, np.float32), int(counts[:, 2].max())),
                                     PartitionSpec(parallel.PROCESS_AXIS))
        self.row_weight = self.to_global(_padded(row_weight, int(counts[:, 3].max())),
                                         PartitionSpec(parallel.PROCESS_AXIS))
        watched = val_idx if self.validated else train_watched
        n_monitor = max(1, math.ceil(counts[:, 1 if self.validated else 4].max() / self.local))
        self.monitor_batches = self._batches(np.asarray(watched), n_monitor)
        self.rng = np.random.default_rng([config.seed, jax.process_index()])

    def _batches(self, idx: np.ndarray, n_batches: int) -> tuple:
        """This process's windows `idx` as its part of global (begin, weight) batches: (processes, n_batches,
        local), padded with zero-weight windows at row 0."""
        from jax.sharding import PartitionSpec

        begin = np.zeros(n_batches * self.local, np.int32)
        begin[: len(idx)] = idx
        weight = (np.arange(len(begin)) < len(idx)).astype(np.float32)
        spec = PartitionSpec(parallel.PROCESS_AXIS, None, parallel.AXIS)
        return tuple(self.to_global(a.reshape(1, n_batches, self.local), spec) for a in (begin, weight))

    def init(self, params, moments=None):
        # the same initial weights everywhere (the same seed); the state is made here and then placed like the
        # weights: made by a jit over the global weights, its step counts came out typed apart from those the
        # epoch returns, and the epoch compiled twice
        state = self.tx.init(params)
        return self.to_global(params), self.to_global(state if moments is None else with_adam_moments(state, moments))

    def epoch(self, params, opt_state, key) -> tuple:
        train_idx = self.train_idx
        if self.kept is not None:  # window_budget, drawn on the host
            train_idx = drawn(*self.kept, self.rng.random(len(self.kept[0])))
        key_data = self.to_global(np.asarray(jax.random.key_data(key)))  # every process has the same key
        params, opt_state, total, _ = self.train_epoch(params, opt_state, self.inputs, self.row_weight,
                                                       *self._batches(self.rng.permutation(train_idx),
                                                                      self.n_batches), key_data)
        return params, opt_state, _scalar(total) / self.windows

    def monitor(self, params) -> float:
        total, weight = self.evaluate(params, self.inputs, self.row_weight, *self.monitor_batches)
        return _scalar(total) / max(_scalar(weight), 1.0)

    def host(self, params):
        return jax.tree.map(lambda x: np.asarray(x.addressable_data(0)), params)


def _padded(x: np.ndarray, rows: int) -> np.ndarray:
    """x: (n, ...) as (1, rows, ...), zeros after its own rows (every process's part of a global array has the
    longest process's shape), 64-byte aligned so that the CPU devices share it rather than copy it."""
    if len(x) == rows:
        return x[None]
    out = aligned_empty((1, rows) + x.shape[1:], x.dtype)
    out[0, : len(x)] = x
    out[0, len(x):] = 0
    return out


def _scalar(x) -> float:
    return float(np.asarray(x.addressable_data(0)))
