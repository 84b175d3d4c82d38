"""Where a GRU training epoch spends its time: the compiled epoch of `train_throughput.py` (same model, batch
and windows) run under `jax.profiler`, with XLA's CPU runtime tracing each of its operations; prints the
operations that take the most time per batch, with how often they run per batch.

    python benchmarks/profile_step.py [--batches 8] [--top 15]

The trace itself stays in a temporary folder (Perfetto format); the profiler adds some overhead to every
operation, so the per-batch total here is higher than the throughput benchmark's. Last, outside the profiler,
the recurrent matrix products alone (three per time step, 48 steps in sequence, nothing else): a bound on
what any GRU step built from XLA's CPU products can reach at this shape.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# per-operation trace events from XLA's CPU runtime; must be set before JAX starts
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_enable_xprof_traceme=true").strip()
sys.path.insert(0, os.path.dirname(__file__))

import train_throughput as bench  # noqa: E402
from common import header, median_time, table  # noqa: E402
from train_throughput import BATCH, HIDDEN, HORIZON, LOOKBACK, gru_flops_per_window, make_data  # noqa: E402


def epoch_function(n_windows: int):
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from forecast_cli import train
    from forecast_cli.config import RecurrentConfig, TrainConfig
    from forecast_cli.models import recurrent

    values, train_idx, _ = make_data()
    model = recurrent.build(1, HORIZON, RecurrentConfig(hidden=HIDDEN), jax.random.key(0))
    graphdef, params = nnx.split(model)
    config = TrainConfig(batch_size=BATCH, learning_rate=3e-3, epochs=bench.MAX_EPOCHS)
    size, n_batches = train.batches(n_windows, BATCH)
    tx = train.make_optimizer(config, bench.MAX_EPOCHS * n_batches)
    epoch = train.make_steps(graphdef, tx, LOOKBACK, HORIZON, size, n_batches, False)
    args = (params, tx.init(params), jnp.asarray(values), jnp.ones(len(values), jnp.float32),
            jnp.asarray(train_idx[:n_windows], jnp.int32), jax.random.key(1))
    return lambda: jax.block_until_ready(epoch(*args)), n_batches


def recurrent_products(devices: int = 1) -> float:
    """Seconds per batch of the step's recurrent products alone, in sequence as the scan runs them: forward
    h (B, H) @ W (H, 3H), and backward the gradients for h (B, 3H) @ W.T and for W h.T @ (B, 3H). With several
    devices, each runs the chain on its part of the batch, as `forecast train` splits it."""
    import jax
    import jax.numpy as jnp

    from forecast_cli import parallel

    place = parallel.local_devices(devices)
    mesh = place.mesh
    h0 = place.put_batch(jax.random.normal(jax.random.key(0), (BATCH, HIDDEN)))
    W = place.replicated(0.1 * jax.random.normal(jax.random.key(1), (HIDDEN, 3 * HIDDEN)))

    def chain(h0, W):
        def step(h, _):
            gates = h @ W
            dh, dW = gates @ W.T, h.T @ gates
            return jnp.tanh(dh) + 1e-3 * dW[0, 0], None  # each step needs the last: no reordering

        return jax.lax.scan(step, h0, None, length=LOOKBACK)[0]

    if mesh is not None:
        P = jax.sharding.PartitionSpec
        chain = jax.shard_map(chain, mesh=mesh, in_specs=(P(parallel.AXIS), P()), out_specs=P(parallel.AXIS))
    chain = jax.jit(chain)
    chain(h0, W).block_until_ready()
    return median_time(lambda: chain(h0, W).block_until_ready(), repeats=20)


def operation_times(trace_dir: str) -> collections.Counter:
    """Total microseconds per traced operation name in the Perfetto trace under `trace_dir`."""
    path = next(Path(trace_dir).rglob("*.trace.json.gz"))
    totals: collections.Counter = collections.Counter()
    counts: collections.Counter = collections.Counter()
    for event in json.load(gzip.open(path))["traceEvents"]:
        if event.get("ph") == "X":
            totals[event["name"]] += event["dur"]
            counts[event["name"]] += 1
    return totals, counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    from forecast_cli.runtime import split_cpu_cores

    split_cpu_cores()  # one CPU device per core, as `forecast train` makes them; the profile uses the first
    import jax

    header("GRU training epoch: profile", "jax", "flax", "optax")
    run, n_batches = epoch_function(args.batches * BATCH)
    run()  # compile
    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp, create_perfetto_trace=True):
            run()
        totals, counts = operation_times(tmp)
    # XLA's operations, not the host's wrappers (thunk executor, Python frames, the while loops around them)
    ops = {name: us for name, us in totals.items()
           if not name.startswith(("$", "ThunkExecutor", "PjitFunction", "Common", "while", "Slinky"))}
    total = sum(ops.values())
    rows = [[name, f"{us / n_batches:,.0f}", f"{counts[name] / n_batches:g}", f"{100 * us / total:.1f}%"]
            for name, us in sorted(ops.items(), key=lambda item: -item[1])[: args.top]]
    print(table(["XLA operation", "µs per batch", "runs per batch", "share"], rows))
    flops = gru_flops_per_window() * BATCH
    print(f"\nAll operations: {total / n_batches / 1e3:.2f} ms per batch of {BATCH} windows "
          f"({flops / 1e6:.0f} MFLOP of matmuls: {flops / (total / n_batches) / 1e3:.0f} GFLOP/s under the profiler)")
    products = sum(us for name, us in ops.items() if "dot" in name or "ynn" in name)
    print(f"Matrix products (dot, ynn_fusion): {100 * products / total:.0f}% of it; the rest is elementwise "
          "fusions, slices and stacking of the time steps, and the optimizer.")
    product_flops = 3 * 2 * BATCH * HIDDEN * 3 * HIDDEN * LOOKBACK
    for devices in sorted({1, jax.local_device_count()}):
        seconds = recurrent_products(devices)
        print(f"The recurrent products alone (3 per step x {LOOKBACK} steps, nothing else, no profiler), the "
              f"batch split over {devices} device(s): {seconds * 1e3:.2f} ms per batch, "
              f"{product_flops / seconds / 1e9:.0f} GFLOP/s; a step made of them cannot pass "
              f"{BATCH / seconds:,.0f} windows/s.")


if __name__ == "__main__":
    main()
