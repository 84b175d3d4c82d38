"""Cold start: what a cron job pays on every run. `forecast predict --horizon 7` on a saved model and
`forecast --help`, each in a fresh process, against bare imports measured in the same run."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))

from common import header, run_seconds, table  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FORECAST = [sys.executable, "-m", "forecast_cli"]


def main(repeats: int = 7):
    header("Cold start", "jax", "flax", "optax", "pandas")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "JAX_PLATFORMS": "cpu", "FORECAST_CACHE_DIR": os.path.join(tmp, "cache")}
        model = os.path.join(tmp, "model")
        subprocess.run(FORECAST + ["train", os.path.join(ROOT, "sample_data", "river.csv"), "--target", "discharge",
                                   "--covariates", "rain,temp", "--epochs", "3", "--model-dir", model, "-q"],
                       check=True, env=env)
        bare = run_seconds([sys.executable, "-c", "import jax, flax, optax, pandas"], repeats, env=env)
        jax_only = run_seconds([sys.executable, "-c", "import jax"], repeats, env=env)
        predict = run_seconds(FORECAST + ["predict", "--horizon", "7", "--model-dir", model], repeats, env=env)
        help_ = run_seconds(FORECAST + ["--help"], repeats, env=env)
    print(table(["command", "median wall time", "peer", "ratio (goal)"], [
        ["forecast predict --horizon 7 (GRU, warm compile cache)", f"{predict:.2f} s",
         f"import jax, flax, optax, pandas: {bare:.2f} s", f"{predict / bare:.2f} (<= 1.0)"],
        ["forecast --help", f"{help_:.2f} s", f"import jax: {jax_only:.2f} s", f"{help_ / jax_only:.2f} (< 0.3)"],
    ]))


if __name__ == "__main__":
    main()
