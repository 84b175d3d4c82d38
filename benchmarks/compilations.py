"""XLA compilations in a full `forecast train` + `forecast predict`: the count must not grow with epochs or
batches. Counts "Compiling" log records of jax.log_compiles in one process, with the persistent cache off."""

from __future__ import annotations

import logging
import os
import sys
import tempfile

os.environ["JAX_PLATFORMS"] = "cpu"
sys.path.insert(0, os.path.dirname(__file__))

from common import header, table  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Counter(logging.Handler):
    def __init__(self):
        super().__init__()
        self.names = []

    def emit(self, record):
        message = record.getMessage()
        if message.startswith("Compiling "):
            self.names.append(message.split()[1])


def count(epochs: int, batch_size: int) -> tuple[int, int, dict]:
    import jax
    from typer.testing import CliRunner

    from forecast_cli.cli import app

    counter = Counter()
    logging.getLogger("jax").addHandler(counter)
    runner = CliRunner()
    with tempfile.TemporaryDirectory() as tmp, jax.log_compiles():
        model = os.path.join(tmp, "m")
        data = os.path.join(ROOT, "sample_data", "river.csv")
        result = runner.invoke(app, ["train", data, "--target", "discharge", "--covariates", "rain,temp", "--epochs",
                                     str(epochs), "--patience", "0", "--batch-size", str(batch_size),
                                     "--model-dir", model, "-q"])
        assert result.exit_code == 0, result.output
        trained = len(counter.names)
        assert runner.invoke(app, ["predict", "--model-dir", model, "--horizon", "7"]).exit_code == 0
    logging.getLogger("jax").removeHandler(counter)
    per_function = {}
    for name in counter.names:
        per_function[name] = per_function.get(name, 0) + 1
    return trained, len(counter.names) - trained, per_function


def main():
    import jax

    jax.config.update("jax_enable_compilation_cache", False)
    header("XLA compilations in train + predict (GRU, river sample)", "jax")
    rows = []
    for epochs, batch in ((2, 256), (8, 256), (8, 32)):
        trained, predicted, per_function = count(epochs, batch)
        epoch_compiles = per_function.get("jit(train_epoch)", 0)
        rows.append([epochs, batch, trained, epoch_compiles, predicted])
    print(table(["epochs", "batch size", "compilations in train", "of them jit(train_epoch)",
                 "compilations in predict"], rows))


if __name__ == "__main__":
    main()
