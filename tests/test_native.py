"""The native reservoir kernel (forecast_cli/kernels/reservoir.cc) against its pure-JAX reference, and its build's
fallback."""

import os
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from forecast_cli import native
from forecast_cli.config import ESNConfig
from forecast_cli.models import esn

COMPILER = shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")


@pytest.mark.skipif(COMPILER is None, reason="no C++ compiler here")
def test_the_reservoir_kernel_builds_and_the_esn_uses_it():
    """Where a compiler is, a broken kernel fails here rather than falling back unseen."""
    assert native.reservoir_kernel()
    reservoir = esn.init_reservoir(2, ESNConfig(units=50), jax.random.key(0))  # the default sparsity, 0.9
    arrays = esn.prepared(reservoir)
    assert {"indptr", "indices", "values"} <= set(arrays)
    dense = esn.init_reservoir(2, ESNConfig(units=50, sparsity=0.0), jax.random.key(0))
    assert "indptr" not in esn.prepared(dense)  # a dense W runs as XLA's product


def _reference_and_native(n_features, batch, steps, keep, seed=0):
    reservoir = esn.init_reservoir(n_features, ESNConfig(units=70, sparsity=0.9, bias_scaling=0.3),
                                   jax.random.key(seed))
    rng = np.random.default_rng(seed)
    x = jnp.asarray(rng.standard_normal((steps, batch, n_features)), jnp.float32)
    start = jnp.asarray(rng.integers(0, steps // 2, batch), jnp.int32)
    dense = esn.run_reservoir(reservoir, x, 0.3, start, keep)
    kernel = jax.jit(lambda r, x, s: esn.run_reservoir(r, x, 0.3, s, keep))(esn.prepared(reservoir), x, start)
    return dense, kernel


@pytest.mark.skipif(COMPILER is None, reason="no C++ compiler here")
@pytest.mark.parametrize("n_features, batch, steps, keep", [(1, 16, 30, None), (3, 37, 25, 1), (2, 5, 40, 17),
                                                            (4, 70, 12, 12)])
def test_the_reservoir_kernel_gives_the_dense_scan_states(n_features, batch, steps, keep):
    """Blocks of 16 sequences and a partial one, several inputs, sequences that start late, the last `keep`
    states and the state before them."""
    (dense, dense_before), (kernel, kernel_before) = _reference_and_native(n_features, batch, steps, keep)
    assert kernel.shape == dense.shape == (batch, steps if keep is None else keep, 70)
    np.testing.assert_allclose(np.asarray(kernel), np.asarray(dense), atol=1e-5)
    np.testing.assert_allclose(np.asarray(kernel_before), np.asarray(dense_before), atol=1e-5)
    assert float(jnp.abs(dense).max()) > 0.1  # the states are not trivially zero


@pytest.mark.skipif(COMPILER is None, reason="no C++ compiler here")
@pytest.mark.parametrize("threads", [1, 3, 8])
@pytest.mark.parametrize("batch", [5, 37, 100, 200])
def test_the_reservoir_kernel_gives_the_same_states_on_any_number_of_threads(monkeypatch, threads, batch):
    """Blocks of 16, 32 or 64 shared out over any number of threads, more threads than blocks included."""
    monkeypatch.setattr(native, "threads", lambda: threads)
    (dense, dense_before), (kernel, kernel_before) = _reference_and_native(2, batch, 20, 9, seed=threads)
    np.testing.assert_allclose(np.asarray(kernel), np.asarray(dense), atol=1e-5)
    np.testing.assert_allclose(np.asarray(kernel_before), np.asarray(dense_before), atol=1e-5)


@pytest.mark.skipif(COMPILER is None, reason="no C++ compiler here")
def test_the_esn_readout_and_forecasts_match_the_pure_jax_path(monkeypatch):
    config = ESNConfig(units=120)
    reservoir = esn.init_reservoir(1, config, jax.random.key(3))
    t = np.arange(600)
    inputs = (np.sin(t / 5.0) + 0.1 * np.random.default_rng(0).standard_normal(600)).astype(np.float32)[:, None]
    train, val = np.arange(0, 400), np.arange(420, 560)

    def fitted():
        readout, _, info, normal = esn.fit(reservoir, inputs, train, val, 24, 6, config)
        X = jnp.asarray(np.stack([inputs[i : i + 24] for i in range(500, 560)]))
        forecast = esn.predict(esn.prepared(reservoir), jnp.asarray(readout), X, config.leak_rate)
        return normal["gram"], info["ridge"], np.asarray(forecast)

    gram, ridge, forecast = fitted()
    monkeypatch.setattr(native, "reservoir_kernel", lambda: False)
    assert "indptr" not in esn.prepared(reservoir)
    gram_jax, ridge_jax, forecast_jax = fitted()
    np.testing.assert_allclose(gram, gram_jax, rtol=1e-4, atol=1e-3)  # the readout's normal equations
    assert ridge == ridge_jax
    np.testing.assert_allclose(forecast, forecast_jax, atol=1e-4)


def test_a_failed_build_says_so_once_per_run_and_is_not_tried_again(tmp_path, monkeypatch, capsys):
    calls = tmp_path / "calls"
    compiler = tmp_path / "broken-c++"
    compiler.write_text(f"#!/bin/sh\necho run >> {calls}\necho 'reservoir.cc:1: error: no' >&2\nexit 1\n")
    compiler.chmod(0o755)
    monkeypatch.setenv("CXX", str(compiler))
    monkeypatch.setenv("FORECAST_CACHE_DIR", str(tmp_path / "cache"))
    assert native._library("reservoir") is None
    building, err = capsys.readouterr().err.strip().splitlines()  # what it is doing, then that it failed
    assert "building the native reservoir kernel" in building
    assert "did not build" in err and "pure-JAX" in err
    log = next((tmp_path / "cache" / "native").glob("reservoir-*.log"))
    assert "error: no" in log.read_text()
    assert not list((tmp_path / "cache" / "native").glob("*.so"))  # nothing half-built left behind
    assert native._library("reservoir") is None  # a later run uses the pure-JAX path without building again
    assert calls.read_text().count("run") == 1
    assert "did not build" in capsys.readouterr().err


def test_forecast_native_0_turns_the_kernels_off(monkeypatch):
    monkeypatch.setenv("FORECAST_NATIVE", "0")
    assert not native.enabled()
    monkeypatch.setenv("FORECAST_NATIVE", "1")
    assert native.enabled() == (jax.default_backend() == "cpu")
    assert os.path.isfile(os.path.join(native.SOURCES, "reservoir.cc"))


def test_a_damaged_cached_kernel_is_refused_with_a_note(tmp_path, monkeypatch, capsys):
    damaged = tmp_path / "reservoir-0123456789abcdef.so"
    damaged.write_bytes(b"\x7fELF but cut short")
    monkeypatch.setattr(native, "_library", lambda name: str(damaged))
    if not native.enabled():
        pytest.skip("the kernels are off here")
    assert native.reservoir_kernel.__wrapped__() is False
    err = capsys.readouterr().err
    assert "cannot load the native reservoir kernel" in err and len(err.strip().splitlines()) == 1
