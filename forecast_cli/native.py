"""Native CPU kernels: C++ sources under forecast_cli/kernels/, compiled on first use with the machine's C++
compiler and registered with JAX as XLA FFI custom calls (`jax.ffi`).

The build is not part of `pip install`: it needs only `c++` and the XLA FFI headers that jaxlib ships, and its
result is cached per source, jaxlib version and CPU under the compilation cache (`runtime.native_cache_dir`).
Where it cannot be built (no compiler, a failed build: its log is kept there and not retried), or with
FORECAST_NATIVE=0, or on an accelerator, callers use their pure-JAX path, which is also the reference the tests
hold each kernel to. A run that wanted a kernel it could not build says so in one line on stderr.

Kernels:
- `reservoir_states`: the echo-state reservoir's recurrence over a sparse W (forecast_cli/kernels/reservoir.cc).
"""

from __future__ import annotations

import functools
import os

SOURCES = os.path.join(os.path.dirname(__file__), "kernels")
BUILD_SECONDS = 300  # a compile that takes longer is abandoned (the pure-JAX path is used)
MAX_THREADS = 16


def enabled() -> bool:
    """Whether the native kernels may be used: FORECAST_NATIVE is not 0 and JAX computes on the CPU."""
    if os.environ.get("FORECAST_NATIVE", "1").strip() in ("0", "false", "no", "off"):
        return False
    import jax

    return jax.default_backend() == "cpu"


def threads() -> int:
    """Threads a kernel call may use: the cores this process may run on (at most MAX_THREADS)."""
    from forecast_cli.runtime import usable_cores

    return max(1, min(usable_cores(), MAX_THREADS))


@functools.cache
def reservoir_kernel() -> bool:
    """Build (once per machine), load and register the reservoir kernel; False where it is not available."""
    if not enabled():
        return False
    library = _library("reservoir")
    if library is None:
        return False
    import ctypes

    import jax

    try:
        loaded = ctypes.CDLL(library)
    except OSError as e:  # a library the loader refuses (a damaged cache): rebuilt once its file is removed
        _note(f"cannot load the native reservoir kernel {library} ({e})")
        return False
    jax.ffi.register_ffi_target("forecast_reservoir", jax.ffi.pycapsule(loaded.ForecastReservoir), platform="cpu")
    return True


def reservoir_states(x, w_in, bias, sparse: dict, start, leak_rate: float, keep: int):
    """States s' = (1 - a) s + a tanh(W s + W_in x + b) from a zero state, W given by its CSR rows `sparse`
    ({"indptr", "indices", "values"}), for inputs `x: (time, batch, n_features)`; a sequence holds its zero state
    for the steps before its `start: (batch,)`. Returns (the states of the last `keep` steps: (batch, keep,
    units), the state before them: (batch, units)). Usable inside jit; call reservoir_kernel() first."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    batch, units = x.shape[1], w_in.shape[0]
    call = jax.ffi.ffi_call("forecast_reservoir", (jax.ShapeDtypeStruct((batch, keep, units), jnp.float32),
                                                   jax.ShapeDtypeStruct((batch, units), jnp.float32)))
    return call(x.astype(jnp.float32), w_in, bias, sparse["indptr"], sparse["indices"], sparse["values"],
                start.astype(jnp.int32), leak=np.float32(leak_rate), threads=np.int64(threads()))


def _library(name: str) -> str | None:
    """Path of the compiled forecast_cli/kernels/<name>.cc, building it when it is not cached."""
    import hashlib
    import platform
    import shutil
    import subprocess
    import tempfile

    import jax.ffi
    import jaxlib

    from forecast_cli.runtime import native_cache_dir

    source = os.path.join(SOURCES, f"{name}.cc")
    compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if compiler is None:
        _note(f"no C++ compiler (c++, g++ or clang++) found to build the native {name} kernel")
        return None
    command = [compiler, "-O3", "-march=native", "-std=c++17", "-shared", "-fPIC", "-w",
               "-I", jax.ffi.include_dir(), source, "-lpthread"]
    with open(source, "rb") as f:
        key = hashlib.sha256(f.read())
    for part in (jaxlib.__version__, platform.machine(), _cpu_flags(), *command[:-3]):
        key.update(part.encode())
    directory = native_cache_dir()
    library = os.path.join(directory, f"{name}-{key.hexdigest()[:16]}.so")
    failed = library[:-3] + ".log"
    if os.path.exists(library):
        return library
    if os.path.exists(failed):  # it failed before: not tried again until the source, jaxlib or CPU changes
        _note(f"the native {name} kernel did not build (see {failed})")
        return None
    try:
        os.makedirs(directory, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=directory, prefix=f".{name}-", suffix=".so")
        os.close(fd)
    except OSError as e:
        _note(f"cannot write the native {name} kernel to {directory} ({e.strerror})")
        return None
    from forecast_cli.report import say

    say(f"building the native {name} kernel into {directory} (once; a few seconds)")
    try:
        done = subprocess.run([*command, "-o", partial], capture_output=True, text=True, timeout=BUILD_SECONDS)
        if done.returncode == 0:
            os.replace(partial, library)  # atomic: another process building at once finds a whole library
            return library
        log = done.stderr
    except (OSError, subprocess.TimeoutExpired) as e:
        log = str(e)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)
    try:
        with open(failed, "w") as f:
            f.write(" ".join(command) + "\n" + log)
    except OSError:
        pass
    _note(f"the native {name} kernel did not build (see {failed})")
    return None


def _cpu_flags() -> str:
    """The CPU's feature flags (-march=native builds for them), so a cache shared by other CPUs rebuilds."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line for line in f if line.startswith(("flags", "Features"))), "")
    except OSError:
        import platform

        return platform.processor()


def _note(reason: str) -> None:
    from forecast_cli.report import warn

    warn(f"{reason}; using the pure-JAX path, which is slower (FORECAST_NATIVE=0 turns this off)")
