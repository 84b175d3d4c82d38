"""Data parallelism over the local devices with JAX's own sharding: a one-axis mesh named "data"; the batch
axis of every minibatch is split over it and parameters and the input series are replicated. Each device
computes its part's loss sum and gradient inside `jax.shard_map`, and one `psum` per batch adds them up
(train.make_steps; left to XLA's partitioner, the recurrent gradient was all-reduced at every time step).
With one device nothing changes."""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from forecast_cli.errors import ConfigError

AXIS = "data"


def data_mesh(devices: int | None = None) -> Mesh | None:
    """A mesh over the first `devices` local devices (all when None); None when that is a single device."""
    available = jax.local_devices()
    count = len(available) if devices is None else devices
    if not 1 <= count <= len(available):
        raise ConfigError(f"--devices {devices}: this machine has {len(available)} {available[0].platform} "
                          f"device(s)")
    return None if count == 1 else Mesh(np.array(available[:count]), (AXIS,))


def replicated(mesh: Mesh | None, tree):
    """Put a pytree on every device of the mesh (unchanged without a mesh)."""
    return tree if mesh is None else jax.device_put(tree, NamedSharding(mesh, PartitionSpec()))


def split_batch(mesh: Mesh | None, x, axis: int = 0):
    """Inside jit: ask for `x` split over the devices along `axis` (its batch axis)."""
    if mesh is None:
        return x
    spec = PartitionSpec(*([None] * axis + [AXIS]))
    return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, spec))


def put_batch(mesh: Mesh | None, x, axis: int = 0):
    """Outside jit: place `x` split over the devices along `axis`."""
    if mesh is None:
        return x
    return jax.device_put(x, NamedSharding(mesh, PartitionSpec(*([None] * axis + [AXIS]))))


def per_device(mesh: Mesh, f, batch_args: tuple[int, ...], n_args: int):
    """`f` run on each device with its part of the arguments at `batch_args` (split along axis 0) and all of
    the others; `f` sums its results over the devices itself (`jax.lax.psum` over AXIS), so they come out
    replicated."""
    specs = tuple(PartitionSpec(AXIS) if i in batch_args else PartitionSpec() for i in range(n_args))
    # check_vma off: the models start their recurrences from zeros, which the check would want marked per-device
    return jax.shard_map(f, mesh=mesh, in_specs=specs, out_specs=PartitionSpec(), check_vma=False)


def device_count(mesh: Mesh | None) -> int:
    return 1 if mesh is None else mesh.size
