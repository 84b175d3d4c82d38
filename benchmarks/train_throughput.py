"""GRU training throughput: forecast (JAX, jitted epoch) against a plain PyTorch nn.GRU loop.

Same model (GRU hidden 64, one layer, lookback 48, horizon 12, dense head), batch 256, float32, AdamW with
gradient clipping, on the same windows. Reports windows/s per epoch (median), the time to reach a fixed
validation loss, and the fraction of the machine's measured float32 matmul peak that the JAX step reaches.
forecast runs as `forecast train` does, each batch split over one CPU device per core, and also on one device.
neuralforecast's GRU (windows/s only) joins where its environment exists: see neuralforecast_peer.py.
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
from common import header, median_time, table  # noqa: E402

HIDDEN, LOOKBACK, HORIZON, BATCH, N_WINDOWS = 64, 48, 12, 256, 256 * 40
TARGET_LOSS = 0.05
MAX_EPOCHS = 60  # the time-to-loss runs stop here if they never reach TARGET_LOSS


def make_data(seed=0):
    rng = np.random.default_rng(seed)
    n_series, length = 64, 400
    t = np.arange(length)
    series = [np.sin(2 * np.pi * t / 24 + p) + 0.5 * np.sin(2 * np.pi * t / 168 + p) + 0.1 * rng.standard_normal(length)
              for p in rng.uniform(0, 6.28, n_series)]
    values = np.concatenate(series)[:, None].astype(np.float32)
    starts = np.arange(n_series + 1) * length
    begins = np.concatenate([s + np.arange(length - LOOKBACK - HORIZON + 1) for s in starts[:-1]])
    rng.shuffle(begins)
    return values, begins[:N_WINDOWS], begins[N_WINDOWS : N_WINDOWS + 2048]


def peak_matmul_flops() -> float:
    import jax
    import jax.numpy as jnp

    a = jnp.ones((2048, 2048), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    # the best of 20, not the median: a peak is what the machine can do, and on a shared machine the median
    # of 10 moved between 98 and 169 GFLOP/s from run to run
    times = []
    for _ in range(20):
        start = time.perf_counter()
        f(a).block_until_ready()
        times.append(time.perf_counter() - start)
    return 2 * 2048**3 / min(times)


def gru_flops_per_window() -> float:
    """Forward + backward matmul FLOPs of one window: 3 gates x (input + recurrent) per step, backward ~2x."""
    per_step = 2 * 3 * HIDDEN * (1 + HIDDEN)
    head = 2 * HIDDEN * HORIZON
    return 3 * (per_step * LOOKBACK + head)


def bench_jax(values, train_idx, val_idx, devices: int):
    """As `forecast train` runs it: each batch split over `devices` CPU devices (the CLI makes one per core)."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from forecast_cli import parallel, train
    from forecast_cli.config import RecurrentConfig, TrainConfig
    from forecast_cli.models import recurrent

    place = parallel.local_devices(devices)
    model = recurrent.build(1, HORIZON, RecurrentConfig(hidden=HIDDEN), jax.random.key(0))
    graphdef, params = nnx.split(model)
    # the learning-rate schedule (warm-up, cosine decay) spans the run as `--epochs MAX_EPOCHS` would
    config = TrainConfig(batch_size=BATCH, learning_rate=3e-3, epochs=MAX_EPOCHS)
    size, n_batches = train.batches(len(train_idx), BATCH, devices)
    tx = train.make_optimizer(config, MAX_EPOCHS * n_batches)
    epoch = train.make_steps(graphdef, tx, LOOKBACK, HORIZON, size, n_batches, False, place)
    evaluate = train.make_evaluate(graphdef, LOOKBACK, HORIZON, place)
    # every window counts alike (MSE, as the PyTorch loop)
    inputs, idx, weight, vb, vw = place.replicated((
        jnp.asarray(values), jnp.asarray(train_idx, jnp.int32), jnp.ones(len(values), jnp.float32),
        *(jnp.asarray(a) for a in train.pad_to_batches(val_idx.astype(np.int32), 1024, devices))))
    state = {"params": place.replicated(params), "opt": place.replicated(tx.init(params)),
             "key": jax.random.key(1)}

    def one_epoch():
        state["key"], k = jax.random.split(state["key"])
        state["params"], state["opt"], loss = epoch(state["params"], state["opt"], inputs, weight, idx, k)
        loss.block_until_ready()

    one_epoch()  # compile
    seconds = median_time(one_epoch, repeats=5, warmup=0)
    model = recurrent.build(1, HORIZON, RecurrentConfig(hidden=HIDDEN), jax.random.key(0))
    graphdef, params = nnx.split(model)
    state.update(params=place.replicated(params), opt=place.replicated(tx.init(params)))
    start, epochs = time.perf_counter(), 0
    while float(evaluate(state["params"], inputs, weight, vb, vw)) > TARGET_LOSS and epochs < MAX_EPOCHS:
        one_epoch()
        epochs += 1
    return len(train_idx) / seconds, time.perf_counter() - start, epochs


def bench_torch(values, train_idx, val_idx):
    import torch

    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.gru = torch.nn.GRU(1, HIDDEN, batch_first=True)
            self.head = torch.nn.Linear(HIDDEN, HORIZON)

        def forward(self, x):
            out, _ = self.gru(x)
            return self.head(out[:, -1])

    data = torch.from_numpy(values)
    offsets = torch.arange(LOOKBACK)
    targets = torch.arange(HORIZON) + LOOKBACK

    def windows(idx):
        idx = torch.as_tensor(idx)
        return data[idx[:, None] + offsets], data[idx[:, None] + targets, 0]

    Xv, Yv = windows(val_idx)

    def fresh():
        net = Net()
        return net, torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)

    net, opt = fresh()

    def one_epoch():
        order = torch.as_tensor(train_idx)[torch.randperm(len(train_idx))]
        for first in range(0, len(order), BATCH):
            X, Y = windows(order[first : first + BATCH])
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(net(X), Y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()

    seconds = median_time(one_epoch, repeats=3, warmup=1)
    net, opt = fresh()
    start, epochs = time.perf_counter(), 0
    while epochs < MAX_EPOCHS:
        with torch.no_grad():
            if torch.nn.functional.mse_loss(net(Xv), Yv).item() <= TARGET_LOSS:
                break
        one_epoch()
        epochs += 1
    return len(train_idx) / seconds, time.perf_counter() - start, epochs


def bench_neuralforecast() -> dict | None:
    """neuralforecast's GRU, run in its own environment (see neuralforecast_peer.py); None where it is missing."""
    import json
    import subprocess

    default = os.path.join(os.path.dirname(__file__), "..", ".venv-neuralforecast", "bin", "python")
    python = os.environ.get("NEURALFORECAST_PYTHON", default)
    if not os.path.exists(python):
        print(f"(neuralforecast skipped: no {python}; `make bench` builds it)")
        return None
    script = os.path.join(os.path.dirname(__file__), "neuralforecast_peer.py")
    out = subprocess.run([python, script], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    from forecast_cli.runtime import split_cpu_cores

    split_cpu_cores()  # as `forecast train` does: one CPU device per core (before JAX starts)
    import jax

    header("GRU training throughput", "jax", "flax", "optax", "torch")
    values, train_idx, val_idx = make_data()
    peak = peak_matmul_flops()
    devices = jax.local_device_count()
    jax_rate, jax_time, jax_epochs = bench_jax(values, train_idx, val_idx, devices)
    rows = [[f"forecast (JAX, {devices} CPU device{'s' if devices > 1 else ''}, as `forecast train`)",
             f"{jax_rate:,.0f}", "1.00",
             f"{jax_time:.1f} s ({jax_epochs} epochs)"]]
    if devices > 1:
        one_rate, one_time, one_epochs = bench_jax(values, train_idx, val_idx, 1)
        rows.append(["forecast (JAX, 1 device)", f"{one_rate:,.0f}", f"{one_rate / jax_rate:.2f}",
                     f"{one_time:.1f} s ({one_epochs} epochs)"])
    try:
        torch_rate, torch_time, torch_epochs = bench_torch(values, train_idx, val_idx)
        rows.append(["PyTorch nn.GRU loop", f"{torch_rate:,.0f}", f"{torch_rate / jax_rate:.2f}",
                     f"{torch_time:.1f} s ({torch_epochs} epochs)"])
        ratio = jax_rate / torch_rate
    except ImportError:
        ratio = None
    peer = bench_neuralforecast()
    if peer:
        rows.append([f"neuralforecast {peer['neuralforecast']} GRU (torch {peer['torch']})",
                     f"{peer['windows_per_s']:,.0f}", f"{peer['windows_per_s'] / jax_rate:.2f}", "not measured"])
    print(table(["implementation", "windows/s (median epoch)", "ratio to forecast", f"time to val MSE {TARGET_LOSS}"],
                rows))
    achieved = jax_rate * gru_flops_per_window()
    print(f"\nforecast / PyTorch throughput: {ratio:.2f}x" if ratio else "\nPyTorch not installed")
    print(f"Measured float32 matmul peak (2048x2048, JAX): {peak / 1e9:.0f} GFLOP/s; the train step reaches "
          f"{achieved / 1e9:.0f} GFLOP/s = {100 * achieved / peak:.0f}% of it "
          f"({gru_flops_per_window() / 1e6:.2f} MFLOP per window, forward and backward matmuls)")


if __name__ == "__main__":
    main()
