"""Training throughput against the number of devices, on CPU devices forced with XLA_FLAGS. They share the
machine's cores, but one device's recurrent step keeps only about 1.3 cores busy, so on two cores two devices
train faster than one (`forecast train` makes one per core)."""

from __future__ import annotations

import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))

from common import header, table  # noqa: E402

SCRIPT = """
import time, jax, numpy as np
from forecast_cli import train
from forecast_cli.config import RecurrentConfig, TrainConfig
from forecast_cli.models import recurrent
t = np.arange(20_000)
inputs = np.sin(2 * np.pi * t / 24)[:, None].astype(np.float32)
idx = np.arange(0, 256 * 40)
model = recurrent.build(1, 12, RecurrentConfig(hidden=64), jax.random.key(0))
config = TrainConfig(epochs=4, patience=0, batch_size=256, devices={devices})
start = time.perf_counter()
_, history = train.fit(model, inputs, idx, idx[:512], 48, 12, config, jax.random.key(1))
print((len(idx) * 3) / (history.seconds - history.first_epoch_seconds))
"""


def main():
    header("Data-parallel training on forced CPU devices", "jax")
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    rows = []
    for devices in (1, 2, 4):
        out = subprocess.run([sys.executable, "-c", SCRIPT.format(devices=devices)], capture_output=True,
                             text=True, env=env, check=True).stdout
        rate = float(out.strip().splitlines()[-1])
        rows.append([devices, f"{rate:,.0f}"])
    base = float(rows[0][1].replace(",", ""))
    for row in rows:
        row.append(f"{float(row[1].replace(',', '')) / base:.2f}")
    print(table(["devices", "windows/s (epochs 2-4)", "ratio to 1 device"], rows))


if __name__ == "__main__":
    main()
