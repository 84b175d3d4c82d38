"""Every device and process concern in one place: the local devices a batch is split over, and several
processes (hosts) on JAX's own distributed runtime. Nothing here imports jax before it is used.

Devices: a one-axis mesh named "data" over the local devices; the batch axis of every minibatch is split over
it while parameters and the input series are replicated. Each device computes its part's loss sum and gradient
inside `jax.shard_map`, and one `psum` per batch adds them up (train.py; left to XLA's partitioner, the
recurrent gradient was all-reduced at every time step). With one device nothing changes.

Processes: each keeps its own shard of the series (a stable hash of `unique_id`), trains on global batches
assembled from every process's windows, and process 0 alone writes the model directory after gathering what
the others hold. With one process every function here is the identity.

Models do not import this module: they are handed a `Devices` and a reduction (`allsum`, or the identity).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from forecast_cli.errors import ConfigError

if TYPE_CHECKING:
    from jax.sharding import Mesh

AXIS = "data"
PROCESS_AXIS = "process"
PROCESS_AXES = (PROCESS_AXIS, AXIS)  # a mesh over every process's devices (process_mesh)


def initialize(coordinator: str | None, num_processes: int | None, process_id: int | None) -> None:
    """Start jax.distributed (before anything touches a device). CPU collectives go through gloo."""
    import jax

    if num_processes is not None and num_processes < 1 or (process_id is not None and process_id < 0):
        raise ConfigError("--num-processes must be at least 1 and --process-id at least 0")
    if jax.config.jax_platforms in (None, "", "cpu") or "cpu" in str(jax.config.jax_platforms):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes,
                                   process_id=process_id, initialization_timeout=120)
    except (RuntimeError, ValueError) as e:
        raise ConfigError(f"cannot join the distributed run at {coordinator}: {str(e).splitlines()[0]}") from e


def process_count() -> int:
    import jax

    return jax.process_count()


def process_index() -> int:
    import jax

    return jax.process_index()


def owner(series_id: str, count: int) -> int:
    """The process that holds a series: crc32 of its id modulo the process count (stable across runs)."""
    return zlib.crc32(str(series_id).encode()) % count


def shard_panel(panel):
    """This process's series of a panel (all of them with one process)."""
    count = process_count()
    if count == 1:
        return panel
    mine = np.array([owner(s, count) == process_index() for s in panel.ids])
    if not mine.any():
        raise ConfigError(f"process {process_index()} of {count} holds no series: use fewer processes")
    return panel.select(mine)


def allgather(x: np.ndarray) -> np.ndarray:
    """Stack equal-shaped arrays from every process: (n_processes, *x.shape), bit for bit.

    The data travels as raw bytes: JAX without x64 would turn float64 and int64 into 32-bit numbers."""
    from jax.experimental import multihost_utils

    x = np.asarray(x)  # (ascontiguousarray would make a scalar 1-d)
    raw = np.frombuffer(x.tobytes(), np.uint8)
    gathered = np.asarray(multihost_utils.process_allgather(raw))
    return np.ascontiguousarray(gathered).view(x.dtype).reshape((len(gathered),) + x.shape)


def allsum(x) -> np.ndarray:
    return allgather(np.asarray(x)).sum(axis=0)


def gather_rows(x: np.ndarray) -> np.ndarray:
    """Concatenate along axis 0 arrays whose first dimension differs between processes (in process order)."""
    counts = allgather(np.array(len(x)))
    padded = np.zeros((int(counts.max()),) + x.shape[1:], x.dtype)
    padded[: len(x)] = x
    stacked = allgather(padded)
    return np.concatenate([stacked[i, : counts[i]] for i in range(len(counts))])


def gather_strings(values) -> np.ndarray:
    """gather_rows for strings, as an object array: sent as one run of UTF-8 bytes and their lengths, so a long
    id costs its own length, not the width of every other one."""
    encoded = [str(s).encode() for s in values]
    lengths = gather_rows(np.array([len(e) for e in encoded], np.int64))
    blob = gather_rows(np.frombuffer(b"".join(encoded), np.uint8)).tobytes()
    ends = np.cumsum(lengths)
    return np.array([blob[e - n : e].decode() for n, e in zip(lengths.tolist(), ends.tolist(), strict=True)],
                    dtype=object)


def process_mesh() -> Mesh:
    """A (processes, devices) mesh, axes PROCESS_AXES, over the same number of local devices of every process
    (the fewest any process has: a host with more cores does not make the mesh ragged)."""
    import jax
    from jax.sharding import Mesh

    local = int(allgather(np.array(jax.local_device_count())).min())
    mine = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    grid = [[d for d in mine if d.process_index == p][:local] for p in range(jax.process_count())]
    return Mesh(np.array(grid), PROCESS_AXES)


def global_array(mesh: Mesh, tree, spec=None):
    """A pytree of this process's parts (numpy or jax arrays) as global arrays over `mesh`, laid out by `spec`
    (a PartitionSpec; replicated when None: every process passes the same values)."""
    from jax.experimental import multihost_utils
    from jax.sharding import PartitionSpec

    return multihost_utils.host_local_array_to_global_array(tree, mesh, PartitionSpec() if spec is None else spec)


# ---- the local devices -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Devices:
    """The local devices one batch is split over: `mesh` None for a single device (then every method is the
    identity). Hashable, so compiled functions can be cached per Devices."""

    mesh: Mesh | None = None

    @property
    def count(self) -> int:
        return 1 if self.mesh is None else self.mesh.size

    def replicated(self, tree):
        """Put a pytree on every device (on the default one with a single device). A C-contiguous numpy array
        of the right dtype, 64-byte aligned (features.aligned_empty), is shared with the CPU devices rather
        than copied (JAX aliases such host memory): the model inputs of 100 million rows are then 2 GB in all,
        not 2 GB more on each device. It must not change after."""
        import jax

        if self.mesh is None:
            return jax.device_put(tree)
        from jax.sharding import NamedSharding, PartitionSpec

        return jax.device_put(tree, NamedSharding(self.mesh, PartitionSpec()))

    def _split(self, axis: int):
        from jax.sharding import NamedSharding, PartitionSpec

        return NamedSharding(self.mesh, PartitionSpec(*([None] * axis + [AXIS])))

    def split_batch(self, x, axis: int = 0):
        """Inside jit: ask for `x` split over the devices along `axis` (its batch axis)."""
        if self.mesh is None:
            return x
        import jax

        return jax.lax.with_sharding_constraint(x, self._split(axis))

    def put_batch(self, x, axis: int = 0):
        """Outside jit: place `x` split over the devices along `axis`."""
        if self.mesh is None:
            return x
        import jax

        return jax.device_put(x, self._split(axis))

    def per_device(self, f, batch_args: tuple[int, ...], n_args: int):
        """`f` run on each device with its part of the arguments at `batch_args` (split along axis 0) and all of
        the others; `f` sums its results over the devices itself (`jax.lax.psum` over AXIS), so they come out
        replicated. On a single device, `f` itself."""
        if self.mesh is None:
            return f
        import jax
        from jax.sharding import PartitionSpec

        specs = tuple(PartitionSpec(AXIS) if i in batch_args else PartitionSpec() for i in range(n_args))
        # check_vma off: the models start their recurrences from zeros, which the check would want marked
        # per-device
        return jax.shard_map(f, mesh=self.mesh, in_specs=specs, out_specs=PartitionSpec(), check_vma=False)


ONE_DEVICE = Devices()


def local_devices(count: int | None = None) -> Devices:
    """The first `count` local devices (all when None); ConfigError when there are fewer (--devices)."""
    import jax
    from jax.sharding import Mesh

    available = jax.local_devices()
    count = len(available) if count is None else count
    if not 1 <= count <= len(available):
        raise ConfigError(f"--devices {count}: this machine has {len(available)} {available[0].platform} "
                          f"device(s)")
    return Devices(None if count == 1 else Mesh(np.array(available[:count]), (AXIS,)))


def reduction() -> Callable[[np.ndarray], np.ndarray]:
    """How a model adds up a sum over every process's windows: allsum with several processes, else the
    identity."""
    return allsum if process_count() > 1 else (lambda x: x)
