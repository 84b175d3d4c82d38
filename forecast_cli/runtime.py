"""The JAX runtime a command runs on: platform, CPU devices and the persistent compilation cache.

JAX is imported inside the functions, so importing this module costs nothing (`forecast --help` stays fast).
Each function must run before JAX starts a backend, except setup_jax, which starts it.
"""

from __future__ import annotations

import os
import sys

from forecast_cli.errors import ConfigError

PLATFORMS = {"cpu": "cpu", "gpu": "cuda", "tpu": "tpu"}  # --device -> JAX_PLATFORMS
MAX_CPU_DEVICES = 4


MMAP_THRESHOLD = 1 << 20  # bytes: glibc gives blocks at least this large their own mapping, returned when freed


def return_freed_memory() -> bool:
    """Have glibc map every allocation of MMAP_THRESHOLD bytes or more on its own, so that freeing it gives the
    memory back. By default the threshold rises to 32 MB after the first large free, and the arrays of a few
    MB that validation and calibration make by the hundred then stay in the heap once freed: 100,000 series x
    100 steps peaked at 1.59 GB in training, 1.42 GB with this. Whether it was set: not where the C library
    is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        return ctypes.CDLL(None).mallopt(-3, MMAP_THRESHOLD) == 1  # M_MMAP_THRESHOLD (the process's own symbols)
    except (OSError, AttributeError):
        return False


def setup_platform(device: str | None) -> None:
    """Point JAX at the requested platform (before anything touches a device)."""
    if device is not None and device not in PLATFORMS:
        raise ConfigError(f"Unknown --device '{device}'; choose cpu, gpu or tpu")
    if device:
        os.environ["JAX_PLATFORMS"] = PLATFORMS[device]
        import jax

        jax.config.update("jax_platforms", PLATFORMS[device])


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def split_cpu_cores() -> None:
    """For training: one JAX CPU device per usable core (at most MAX_CPU_DEVICES), so that each batch is
    split over them like over GPUs. One device's recurrent step is a chain of small kernels that keeps about
    1.3 cores busy whatever its thread pool; two devices on two cores trained 1.6x the windows per second
    (docs/benchmarks.md). Left alone when the user chose a count (XLA_FLAGS or JAX_NUM_CPU_DEVICES), and when
    JAX has already started in this process (a library caller keeps its devices). Must run before JAX
    starts; GPUs and TPUs are not affected."""
    if "xla_force_host_platform_device_count" in os.environ.get("XLA_FLAGS", ""):
        return
    count = min(usable_cores(), MAX_CPU_DEVICES)
    import jax

    if count > 1 and jax.config.jax_num_cpu_devices == -1:
        try:
            jax.config.update("jax_num_cpu_devices", count)
        except RuntimeError:
            pass


def compilation_cache_dir() -> str:
    """$FORECAST_CACHE_DIR, else forecast/jax under $XDG_CACHE_HOME (~/.cache)."""
    return os.environ.get("FORECAST_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "forecast", "jax")


def native_cache_dir() -> str:
    """Where native kernels are built (forecast_cli/native.py): $FORECAST_CACHE_DIR/native, else
    forecast/native under $XDG_CACHE_HOME (~/.cache)."""
    if os.environ.get("FORECAST_CACHE_DIR"):
        return os.path.join(os.environ["FORECAST_CACHE_DIR"], "native")
    return os.path.join(os.path.dirname(compilation_cache_dir()), "native")


def use_compilation_cache() -> None:
    """Turn on JAX's persistent compilation cache for every compilation; without a writable cache directory,
    compile every time."""
    import jax

    cache = compilation_cache_dir()
    try:
        os.makedirs(cache, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
    except OSError:
        pass


def setup_jax(device: str | None) -> str:
    """Choose the device and turn on JAX's persistent compilation cache; returns the device description,
    e.g. "cpu (2 devices: cpu)"."""
    setup_platform(device)
    import jax

    use_compilation_cache()
    try:
        found = jax.devices()
    except (RuntimeError, AssertionError) as e:  # JAX skips cuda without a visible GPU, then asserts it has
        # some backend: the AssertionError is this case (JAX_PLATFORMS=cuda on a machine without one)
        raise ConfigError(no_device_message(device, e)) from e
    return f"{found[0].platform} ({len(found)} device{'s' if len(found) > 1 else ''}: {found[0].device_kind})"


def no_device_message(device: str | None, error: BaseException) -> str:
    """What to tell a user whose --device (or JAX_PLATFORMS) names a platform JAX can't start here."""
    names = {"gpu": "GPU", "tpu": "TPU", "cpu": "CPU"}
    name = names.get(device or "", os.environ.get("JAX_PLATFORMS") or "device")
    detail = str(error).splitlines()[0] if str(error) else "JAX found none"
    if "(set JAX_PLATFORMS" in detail:
        detail = detail[:detail.index("(set JAX_PLATFORMS")].strip()
    flag = f"--device {device}" if device else f"JAX_PLATFORMS={os.environ.get('JAX_PLATFORMS', '')}"
    return (f"{flag}: no {name} is available to JAX here ({detail}); install the JAX package for it, or use "
            "--device cpu or leave --device out")
