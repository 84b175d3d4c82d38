"""Data-parallel training on 4 forced CPU devices gives the same model as on one device.

The device count must be set before JAX starts, so the check runs in a subprocess."""

import json
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json
    import jax
    import numpy as np
    from flax import nnx
    from forecast_cli import train
    from forecast_cli.config import ESNConfig, RecurrentConfig, TrainConfig
    from forecast_cli.models import esn, flatten_params, recurrent

    t = np.arange(600)
    inputs = np.stack([np.sin(2 * np.pi * t / 12), np.cos(2 * np.pi * t / 7)], axis=1).astype(np.float32)
    train_idx, val_idx = np.arange(0, 480), np.arange(480, 560)

    def gru(devices):
        model = recurrent.build(2, 4, RecurrentConfig(hidden=16), jax.random.key(0))
        config = TrainConfig(epochs=3, patience=0, batch_size=64, learning_rate=1e-2, devices=devices)
        model, history = train.fit(model, inputs, train_idx, val_idx, 24, 4, config, jax.random.key(1))
        params = flatten_params(nnx.to_pure_dict(nnx.state(model)))
        placed = len(next(iter(nnx.state(model).flat_state()))[1].get_value().sharding.device_set)
        return params, history.train_loss, placed

    def ridge(devices):
        from forecast_cli import parallel
        reservoir = esn.init_reservoir(2, ESNConfig(units=60), jax.random.key(2))
        readout, _, info, _ = esn.fit(reservoir, inputs, train_idx, val_idx, 24, 4, ESNConfig(units=60),
                                   parallel.local_devices(devices))
        X = np.stack([inputs[i : i + 24] for i in val_idx])
        return np.asarray(esn.predict(reservoir, readout, X, 0.5)), info["ridge"]

    def all_reduces(devices):  # all-reduce operations in the compiled sharded epoch of the GRU
        from forecast_cli import parallel
        model = recurrent.build(2, 4, RecurrentConfig(hidden=16), jax.random.key(0))
        graphdef, params = nnx.split(model)
        place = parallel.local_devices(devices)
        tx = train.make_optimizer(TrainConfig(), 10)
        epoch = train.make_steps(graphdef, tx, 24, 4, 64, 2, False, place)
        args = place.replicated((params, tx.init(params), inputs, np.ones(len(inputs), np.float32),
                                          train_idx[:128]))
        return epoch.lower(*args, jax.random.key(0)).compile().as_text().count(" all-reduce(")

    def process_epoch():
        # the several-process epoch (train.make_process_steps) on a mesh of 1 process x 4 devices, against the
        # same batches stepped through on one device without a mesh; and its all-reduces
        from forecast_cli import parallel
        model = recurrent.build(2, 4, RecurrentConfig(hidden=16), jax.random.key(0))
        graphdef, params = nnx.split(model)
        tx = train.make_optimizer(TrainConfig(learning_rate=1e-2), 10)
        mesh = parallel.process_mesh()
        epoch, evaluate = train.make_process_steps(graphdef, tx, 24, 4, False, mesh, "mae")
        begin = np.random.default_rng(0).permutation(train_idx)[:120].astype(np.int32)
        begin = np.concatenate([begin, np.zeros(8, np.int32)]).reshape(1, 2, 64)  # 2 batches, the last padded
        weight = (np.arange(128) < 120).astype(np.float32).reshape(1, 2, 64)
        row_weight = np.linspace(0.5, 1.5, len(inputs)).astype(np.float32)
        spec = jax.sharding.PartitionSpec(parallel.PROCESS_AXIS, None, parallel.AXIS)
        by_process = jax.sharding.PartitionSpec(parallel.PROCESS_AXIS)
        args = (parallel.global_array(mesh, params), parallel.global_array(mesh, tx.init(params)),
                parallel.global_array(mesh, inputs[None], by_process),
                parallel.global_array(mesh, row_weight[None], by_process),
                parallel.global_array(mesh, begin, spec), parallel.global_array(mesh, weight, spec),
                np.asarray(jax.random.key_data(jax.random.key(3))))
        new_params, _, total, count = epoch(*args)
        mean_loss = evaluate(new_params, *args[2:6])

        sums = train._summed(train._loss_sum(graphdef, 24, 4, "mae", (), False), None)
        step = train._optimizer_step(tx, sums, jax.numpy.asarray(inputs), jax.numpy.asarray(row_weight))
        keys = jax.random.split(jax.random.key(0), 2)
        (ref, _), totals = jax.lax.scan(step, (params, tx.init(params)), (begin[0], weight[0], keys))
        one = train._evaluation_step(graphdef, 24, 4, "mae", (), jax.numpy.asarray(inputs),
                                     jax.numpy.asarray(row_weight))
        ref_eval = jax.lax.scan(one, ref, (begin[0], weight[0]))[1].sum()
        a, b = flatten_params(nnx.to_pure_dict(new_params)), flatten_params(nnx.to_pure_dict(ref))
        hlo = epoch.lower(*args).compile().as_text()
        return {"param_diff": max(float(np.max(np.abs(np.asarray(a[k]) - b[k]))) for k in a),
                "loss": [float(total), float(totals.sum())], "count": float(count),
                "eval": [float(mean_loss[0]), float(ref_eval), float(mean_loss[1])],
                "all_reduces": [line.split("=", 1)[1].split(" all-reduce(")[0].strip()
                                for line in hlo.splitlines() if " all-reduce(" in line]}

    one, one_loss, one_placed = gru(1)
    four, four_loss, four_placed = gru(4)
    print(json.dumps({
        "devices": jax.device_count(),
        "placed": [one_placed, four_placed],
        "loss_one": one_loss, "loss_four": four_loss,
        "param_diff": max(float(np.max(np.abs(one[k] - four[k]))) for k in one),
        "param_scale": max(float(np.max(np.abs(one[k]))) for k in one),
        "esn": [ridge(1)[1], ridge(4)[1]],
        "esn_forecast_diff": float(np.max(np.abs(ridge(1)[0] - ridge(4)[0]))),
        "all_reduces": all_reduces(4),
        "processes": process_epoch(),
    }))
""")


def test_four_devices_match_one():
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["devices"] == 4
    assert report["placed"] == [1, 4]  # the sharded run really spread over the four devices
    # the loss, gradients and weight sums cross the devices once per batch, not once per time step of the GRU
    assert report["all_reduces"] == 1
    for a, b in zip(report["loss_one"], report["loss_four"], strict=True):
        assert abs(a - b) <= 1e-4 * max(abs(a), 1e-3)
    assert report["param_diff"] <= 1e-4 * report["param_scale"]
    assert report["esn"][0] == report["esn"][1]  # the same ridge strength chosen
    assert report["esn_forecast_diff"] <= 1e-3  # the series are sines of amplitude 1
    # several processes' epoch: the same updates as the batches stepped through without a mesh; each batch's sums
    # cross the devices once, as one vector (an all-reduce of a tuple, the tree's arrays one by one, cost 2.5x the
    # time over gloo), plus the epoch's weight sum
    processes = report["processes"]
    assert processes["param_diff"] <= 1e-5 and processes["count"] == 120
    assert abs(processes["loss"][0] - processes["loss"][1]) <= 1e-4 * processes["loss"][1]
    assert abs(processes["eval"][0] - processes["eval"][1]) <= 1e-4 * processes["eval"][1]
    assert processes["eval"][2] == 120
    assert len(processes["all_reduces"]) == 2 and not any(r.startswith("(") for r in processes["all_reduces"])


def test_train_splits_batches_over_the_cpu_cores(tmp_path):
    """`forecast train` on CPU makes one JAX device per core (at most MAX_CPU_DEVICES) and splits each batch over
    them, unless the user chose a device count."""
    from conftest import seasonal_frame

    from forecast_cli.runtime import MAX_CPU_DEVICES

    seasonal_frame().to_csv(tmp_path / "d.csv", index=False)
    cores = min(len(os.sched_getaffinity(0)), MAX_CPU_DEVICES)
    cases = (({}, cores), ({"JAX_NUM_CPU_DEVICES": "1"}, 1),
             ({"XLA_FLAGS": "--xla_force_host_platform_device_count=3"}, 3))
    for extra, expected in cases:
        env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
        out = subprocess.run([sys.executable, "-m", "forecast_cli", "train", str(tmp_path / "d.csv"), "--model", "esn",
                              "--model-dir", str(tmp_path / "m")], capture_output=True, text=True,
                             env={**env, "JAX_PLATFORMS": "cpu", **extra}, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        assert f"on cpu ({expected} device{'s' if expected > 1 else ''}: cpu)" in out.stderr, (extra, out.stderr)
