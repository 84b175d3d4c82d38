import os
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("FORECAST_CACHE_DIR", os.path.join(tempfile.gettempdir(), "forecast-test-cache"))

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# `make test` is reproducible: hypothesis explores the same cases every run. `make fuzz` (FUZZ_EXAMPLES set)
# draws new ones.
settings.register_profile("repeatable", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("explore" if os.environ.get("FUZZ_EXAMPLES") else "repeatable")


@pytest.fixture
def write_csv(tmp_path, monkeypatch):
    """write_csv(text, name="data.csv") -> relative path of a file holding `text` (or bytes); cwd is tmp_path."""
    monkeypatch.chdir(tmp_path)

    def write(content, name="data.csv"):
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path.relative_to(tmp_path)

    return write


def seasonal_frame(n_series=2, length=150, period=7, noise=0.3, seed=0, start="2024-01-01", freq="D"):
    """Long frame of noisy sine waves with different levels: unique_id, ds, y."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    t = np.arange(length)
    frames = []
    for s in range(n_series):
        y = 10 + 5 * s + 3 * np.sin(2 * np.pi * t / period + s) + noise * rng.standard_normal(length)
        frames.append(pd.DataFrame({"unique_id": f"s{s}", "ds": pd.date_range(start, periods=length, freq=freq),
                                    "y": y.round(4)}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def seasonal_csv(write_csv):
    """seasonal_csv(**seasonal_frame kwargs) -> relative path of a CSV of noisy sine waves."""

    def make(name="seasonal.csv", **kwargs):
        return write_csv(seasonal_frame(**kwargs).to_csv(index=False), name)

    return make

