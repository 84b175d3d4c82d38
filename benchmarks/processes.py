"""Per-epoch training time of one process against two processes on this machine (jax.distributed over gloo on
loopback), each process holding half of the series, as `forecast train --coordinator` splits them. The same GRU,
windows, global batch and epochs in both; the time per epoch is the median of epochs 2.. (the first compiles).

    python benchmarks/processes.py [--series 64] [--length 500] [--epochs 5]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))

from common import header, table  # noqa: E402

SCRIPT = """
import sys, time
import jax
processes, rank, port, series, length, epochs = (int(a) for a in sys.argv[1:7])
if processes > 1:
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"127.0.0.1:{{port}}", processes, rank)
import numpy as np
from forecast_cli import train
from forecast_cli.config import RecurrentConfig, TrainConfig
from forecast_cli.models import recurrent
lookback, horizon = 48, 12
mine = range(rank, series, processes)  # this process's share of the series
t = np.arange(length)
rng = np.random.default_rng(0)
values = [np.sin(2 * np.pi * (t + 3 * s) / 24) + 0.1 * rng.standard_normal(length) for s in range(series)]
inputs = np.concatenate([values[s] for s in mine])[:, None].astype(np.float32)
starts = np.arange(len(mine) + 1) * length
windows = length - lookback - horizon + 1
idx = np.concatenate([starts[i] + np.arange(windows) for i in range(len(mine))])
val = idx.reshape(len(mine), windows)[:, -horizon:].ravel()
model = recurrent.build(1, horizon, RecurrentConfig(hidden=64), jax.random.key(0))
config = TrainConfig(epochs=epochs, patience=0, batch_size=256)
seconds = []
_, history = train.fit(model, inputs, idx, val, lookback, horizon, config, jax.random.key(1),
                       on_epoch=lambda epoch, losses: seconds.append(time.perf_counter()))
print("EPOCHS", *np.diff(seconds), "LOSS", history.train_loss[-1], flush=True)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def per_epoch(processes: int, series: int, length: int, epochs: int, env: dict) -> tuple[float, float]:
    """(median seconds per epoch after the first, process 0's last training loss)."""
    port = free_port()
    runs = [subprocess.Popen([sys.executable, "-c", SCRIPT.format(), str(processes), str(rank), str(port),
                              str(series), str(length), str(epochs)], stdout=subprocess.PIPE, text=True, env=env)
            for rank in range(processes)]
    outs = [run.communicate(timeout=1800)[0] for run in runs]
    if any(run.returncode for run in runs):
        raise SystemExit(f"a run of {processes} process(es) failed")
    line = next(line for line in outs[0].splitlines() if line.startswith("EPOCHS")).split()
    loss = line.index("LOSS")
    return statistics.median(float(x) for x in line[1:loss]), float(line[loss + 1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--series", type=int, default=64)
    parser.add_argument("--length", type=int, default=500)
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()
    header("One process against two on one machine", "jax")
    windows = args.series * (args.length - 48 - 12 + 1)
    print(f"GRU hidden 64, lookback 48, horizon 12, batch 256, {args.series} series x {args.length} steps "
          f"({windows:,} windows)\n")
    rows = []
    base = None
    for processes, devices in ((1, 2), (2, 1), (2, 2)):
        env = {**os.environ, "JAX_PLATFORMS": "cpu", "JAX_NUM_CPU_DEVICES": str(devices)}
        seconds, loss = per_epoch(processes, args.series, args.length, args.epochs, env)
        base = base or seconds
        rows.append([processes, devices, f"{seconds:.2f}", f"{seconds / base:.2f}", f"{loss:.4f}"])
    print(table(["processes", "CPU devices each", "s per epoch (median of 2..)", "ratio to 1 process",
                 "last train loss"], rows))


if __name__ == "__main__":
    main()
