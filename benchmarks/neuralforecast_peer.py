"""neuralforecast's GRU on the throughput benchmark's series: training windows per second.

Lives in its own virtual environment (.venv-neuralforecast, `make bench` builds it: neuralforecast brings
Lightning and Ray). Same series as `train_throughput.py`; neuralforecast's GRU with one layer of 64 units,
lookback (`input_size`) 48, horizon 12, 256 windows per step, a linear decoder, MSE, lr 3e-3 with its
default optimizer (Adam; the other two use AdamW), no scaling. Its trainer samples the windows itself, so
the rate is taken from steps: two fits of `STEPS` and `2 * STEPS` steps, and the difference of their wall
times (setting up Lightning, the data and the first compiled kernels cancels out). Prints JSON:
{"windows_per_s": ..., "torch": version, "neuralforecast": version}.
"""

import json
import logging
import os
import sys
import time
import warnings

sys.path.insert(0, os.path.dirname(__file__))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from neuralforecast import NeuralForecast, __version__  # noqa: E402
from neuralforecast.losses.pytorch import MSE  # noqa: E402
from neuralforecast.models import GRU  # noqa: E402
from train_throughput import BATCH, HIDDEN, HORIZON, LOOKBACK, make_data  # noqa: E402

STEPS = 40  # one epoch of the JAX benchmark: 40 batches of 256 windows


def fit_seconds(frame: pd.DataFrame, steps: int) -> float:
    model = GRU(h=HORIZON, input_size=LOOKBACK, encoder_n_layers=1, encoder_hidden_size=HIDDEN, decoder_layers=1,
                loss=MSE(), max_steps=steps, learning_rate=3e-3, batch_size=64, windows_batch_size=BATCH,
                scaler_type="identity", val_check_steps=10 * steps, accelerator="cpu", devices=1,
                enable_progress_bar=False, enable_model_summary=False, logger=False, enable_checkpointing=False)
    start = time.perf_counter()
    NeuralForecast(models=[model], freq=1).fit(frame)
    return time.perf_counter() - start


def main():
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    torch.set_num_threads(os.cpu_count())
    values, _, _ = make_data()
    series = values[:, 0].reshape(64, -1)  # make_data's 64 series of 400 steps, end to end
    frame = pd.DataFrame({"unique_id": np.repeat(np.arange(64), series.shape[1]),
                          "ds": np.tile(np.arange(series.shape[1]), 64), "y": series.reshape(-1)})
    fit_seconds(frame, 5)  # warm-up
    short = sorted(fit_seconds(frame, STEPS) for _ in range(3))[1]
    long = sorted(fit_seconds(frame, 2 * STEPS) for _ in range(3))[1]
    print(json.dumps({"windows_per_s": STEPS * BATCH / (long - short), "torch": torch.__version__,
                      "neuralforecast": __version__}))


if __name__ == "__main__":
    main()
