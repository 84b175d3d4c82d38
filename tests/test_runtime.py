"""forecast_cli.runtime: the JAX platform, the CPU device split and the compilation cache. What needs a JAX that
has not started yet runs in a fresh interpreter."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from forecast_cli.errors import ConfigError
from forecast_cli.runtime import MAX_CPU_DEVICES, no_device_message, setup_platform


def run_python(code: str, **env: str) -> dict:
    """Run `code` in a fresh interpreter (JAX not started) that prints one JSON object; return it."""
    clean = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**clean, "JAX_PLATFORMS": "cpu", **env})
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_unknown_device_is_refused_before_jax_is_touched(monkeypatch):
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    with pytest.raises(ConfigError, match=r"^Unknown --device 'cuda'; choose cpu, gpu or tpu$") as caught:
        setup_platform("cuda")  # the JAX name, not the option's
    assert caught.value.exit_code == 2
    assert os.environ["JAX_PLATFORMS"] == "cpu"


def test_no_device_message_names_the_option_and_drops_jaxs_hint(monkeypatch):
    error = RuntimeError("Unable to initialize backend 'cuda': no CUDA devices (set JAX_PLATFORMS='' to "
                         "automatically choose an available backend)\nmore detail")
    assert no_device_message("gpu", error) == (
        "--device gpu: no GPU is available to JAX here (Unable to initialize backend 'cuda': no CUDA devices); "
        "install the JAX package for it, or use --device cpu or leave --device out")
    monkeypatch.setenv("JAX_PLATFORMS", "tpu")
    assert no_device_message(None, AssertionError()) == (
        "JAX_PLATFORMS=tpu: no tpu is available to JAX here (JAX found none); install the JAX package for it, "
        "or use --device cpu or leave --device out")


def test_importing_runtime_does_not_import_jax():
    found = run_python("import json, sys, forecast_cli.runtime; print(json.dumps('jax' in sys.modules))")
    assert found is False


SPLIT = ("import json, jax; from forecast_cli.runtime import split_cpu_cores; split_cpu_cores(); "
         "print(json.dumps([jax.config.jax_num_cpu_devices, len(jax.devices())]))")


def test_split_cpu_cores_leaves_the_users_xla_flags_alone():
    flags = "--xla_force_host_platform_device_count=3"
    assert run_python(SPLIT, XLA_FLAGS=flags) == [-1, 3]


def test_split_cpu_cores_makes_one_device_per_core_up_to_the_maximum():
    cores = min(len(os.sched_getaffinity(0)), MAX_CPU_DEVICES)
    assert run_python(SPLIT) == ([cores, cores] if cores > 1 else [-1, 1])


def test_split_cpu_cores_after_jax_started_keeps_its_devices():
    code = ("import json, jax; before = len(jax.devices()); from forecast_cli.runtime import split_cpu_cores; "
            "split_cpu_cores(); print(json.dumps([before, len(jax.devices())]))")
    assert run_python(code) == [1, 1]


def test_setup_jax_describes_the_devices_and_turns_the_cache_on(tmp_path):
    cache = tmp_path / "cache" / "jax"
    code = ("import json, jax; from forecast_cli.runtime import setup_jax; where = setup_jax('cpu'); "
            "print(json.dumps([where, jax.config.jax_compilation_cache_dir]))")
    where, directory = run_python(code, FORECAST_CACHE_DIR=str(cache), JAX_NUM_CPU_DEVICES="2")
    assert where == "cpu (2 devices: cpu)"
    assert directory == str(cache) and cache.is_dir()


def test_setup_jax_without_a_writable_cache_still_runs(tmp_path):
    (tmp_path / "file").write_text("")
    code = ("import json, jax; from forecast_cli.runtime import setup_jax; where = setup_jax(None); "
            "print(json.dumps([where, jax.config.jax_compilation_cache_dir]))")
    where, directory = run_python(code, FORECAST_CACHE_DIR=str(tmp_path / "file" / "jax"))
    assert where == "cpu (1 device: cpu)" and directory is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
@pytest.mark.parametrize("returned", [False, True])
def test_freed_memory_is_returned_to_the_system(returned):
    """After a 24 MB block is freed, glibc would keep later 16 MB blocks in its heap once freed (640 MB here,
    pinned by small blocks between them); with return_freed_memory they leave the process."""
    code = "\n".join([
        "import numpy as np",
        "from forecast_cli.runtime import return_freed_memory",
        "def rss(): return int(open('/proc/self/statm').read().split()[1]) * 4096",
        "assert return_freed_memory()" if returned else "",
        "a = np.ones(3_000_000); del a",
        "before = rss(); blocks, keep = [], []",
        "for _ in range(40): blocks.append(np.ones(2_000_000)); keep.append(np.ones(1000))",
        "del blocks",
        "print(rss() - before < 64 << 20)"])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(returned)
