"""Frozen configuration dataclasses. CLI options map one-to-one onto their fields."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

FILL_POLICIES = ("interpolate", "ffill", "zero", "error")
LAYOUTS = ("long", "wide", "single")
SEPARATORS = {",": ",", ";": ";", "\t": "\t", "\\t": "\t", "tab": "\t", "|": "|"}  # --sep: given -> delimiter
DECIMALS = (".", ",")  # --decimal
THOUSANDS = (",", ".", " ", "'", "_")  # --thousands


@dataclass(frozen=True)
class DataConfig:
    """How to read a CSV into the canonical long panel (see data.read_series)."""

    id_col: str | None = None  # series id column (long layout); auto-detected when None
    time_col: str | None = None  # timestamp column; auto-detected when None
    target: str | None = None  # value column to forecast; auto-detected when None
    covariates: tuple[str, ...] = ()  # extra numeric columns that travel with the target (past values only)
    future_covariates: tuple[str, ...] = ()  # numeric columns whose values over the horizon are known when
    # forecasting (a tide table, a rainfall forecast, planned prices): the models see them for every forecast step
    freq: str | None = None  # pandas offset alias ("D", "h", "MS", ...) or "int:1"; inferred when None
    fill: str = "interpolate"  # how missing timestamps and values are filled: one of FILL_POLICIES
    layout: str | None = None  # "long", "wide" or "single"; auto-detected when None
    sep: str | None = None  # field delimiter: ",", ";", "\t" or "|"; detected from the first lines when None
    decimal: str = "."  # decimal mark of the numbers: "." or ","
    thousands: str | None = None  # thousands separator of the numbers ("," "." " " "'" "_"); none when None
    date_format: str | None = None  # strftime format of the time column (%d/%m/%Y) or "dayfirst"; ISO 8601 when None
    holidays: str | None = None  # a country (US) or country-subdivision (DE-HE) code: a public-holiday indicator
    # joins the inputs as a future-known feature (the `holidays` package's calendars)
    static: tuple[str, ...] = ()  # columns with one value per series (region, store type): numbers are
    # standardised over the series, text is one-hot encoded; every input row of the series carries them

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DataConfig:
        return cls(**{**d, "covariates": tuple(d.get("covariates", ())),  # (a key missing: its default)
                      "future_covariates": tuple(d.get("future_covariates", ())),
                      "static": tuple(d.get("static", ()))})


@dataclass(frozen=True)
class WindowConfig:
    """How series become (input, target) windows."""

    lookback: int  # input steps per window
    horizon: int  # target steps per window
    val_size: int | None = None  # steps at the end of each series kept for validation; auto when None
    scaling: str = "standard"  # per-series scaling of the inputs: windows.SCALINGS
    log: bool = False  # the model sees the log of the target

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


MODEL_KINDS = ("auto", "gru", "lstm", "elman", "esn", "naive", "snaive")  # auto: GRU blended with Theta
RECURRENT_KINDS = ("gru", "lstm", "elman")


@dataclass(frozen=True)
class RecurrentConfig:
    """A stack of recurrent layers and a dense head that emits all `horizon` steps at once."""

    cell: str = "gru"  # "gru", "lstm" or "elman" (simple RNN): the only difference between the three models
    hidden: int = 64  # units per recurrent layer
    layers: int = 1  # stacked recurrent layers
    dropout: float = 0.0  # dropout on the last hidden state during training
    future: tuple[int, ...] = ()  # input columns known over the horizon: the head sees their next `horizon`
    # values beside the last hidden state (set by fitting, from --future-covariates)

    def __post_init__(self):
        object.__setattr__(self, "future", tuple(self.future))  # (a list when read back from JSON)

    def to_dict(self) -> dict:
        return _without_empty_future(dataclasses.asdict(self))


@dataclass(frozen=True)
class ESNConfig:
    """Echo-state network: a fixed random leaky reservoir and a ridge-regression readout. The reservoir runs
    over each input window from a zero state, so the lookback is its washout."""

    units: int = 500  # reservoir size
    spectral_radius: float = 0.9  # largest |eigenvalue| of the reservoir matrix
    input_scaling: float = 0.5  # input weights are uniform in [-input_scaling, input_scaling]
    bias_scaling: float = 0.1  # bias is uniform in [-bias_scaling, bias_scaling]
    sparsity: float = 0.9  # fraction of reservoir weights that are zero
    leak_rate: float = 0.5  # s' = (1 - leak_rate) s + leak_rate tanh(W s + W_in x + b)
    ridges: tuple[float, ...] = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)  # ridge grid, relative to the
    # mean diagonal of the normal equations; the best on the validation windows wins
    future: tuple[int, ...] = ()  # input columns known over the horizon: the readout also takes their next
    # `horizon` values (set by fitting, from --future-covariates)

    def __post_init__(self):
        object.__setattr__(self, "ridges", tuple(self.ridges))
        object.__setattr__(self, "future", tuple(self.future))

    def to_dict(self) -> dict:
        return _without_empty_future(dataclasses.asdict(self))


def _without_empty_future(d: dict) -> dict:
    """A model's manifest section names `future` only when it has future-known inputs (as before they were)."""
    if not d.get("future"):
        d.pop("future", None)
    else:
        d["future"] = list(d["future"])
    return d


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation of the recurrent models (the ESN readout is closed form and ignores most of this)."""

    epochs: int = 100  # passes over the training windows at most
    patience: int = 10  # epochs without a better validation loss before stopping; 0 turns it off
    batch_size: int | None = None  # windows per step; None: a tenth of the training windows, within 16..256
    # (small data still gets enough steps); the last batch is padded, so the step compiles once
    loss: str = "mase"  # "mse", "mae" or "mase": mean absolute error in units of each series' in-sample
    # seasonal-naive error, the competition metric (every series counts alike, whatever its noise)
    refit: bool = True  # after early stopping, train the best network on over every window (validation ones too,
    # models/rnn.py REFIT_EPOCHS), so the forecast uses the latest data
    series_windows: int = 16  # training windows of each series per epoch at most (more when an epoch would have
    # under train.MIN_EPOCH_WINDOWS), drawn afresh every epoch, so an epoch of long series costs as much as one of
    # short ones (0: every window every epoch). 16 and 64 were level on M1 and a long monthly panel, 16 3x faster
    ensemble: int = 1  # with refit: networks from this many seeds (seed, then derived ones: trained from scratch
    # on every window for the best epoch's count), whose forecasts are averaged (3 gained under 0.4% MASE on the
    # M1 holdouts for 1.85x the time)
    learning_rate: float = 3e-3  # AdamW peak learning rate, after a short warm-up, cosine-decayed
    weight_decay: float = 1e-4  # AdamW decoupled weight decay
    clip_norm: float = 1.0  # gradients are clipped to this global norm
    seed: int = 0  # everything random (initial weights, reservoir, batch order) derives from it
    devices: int | None = None  # local devices to split each batch over (data parallel); None: all of them

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class TrainSpec:
    """Everything `forecast train` decides besides the data."""

    kind: str = "auto"
    horizon: int | None = None  # default: about one season of the frequency (timeindex.default_horizon)
    lookback: int | None = None  # default: default_lookback(), capped by the data
    scaling: str = "standard"
    log: bool | None = None  # model the log of the target; None: when every target value is above 0
    recurrent: RecurrentConfig = RecurrentConfig()
    esn: ESNConfig = ESNConfig()
    train: TrainConfig = TrainConfig()
    data: DataConfig = field(default_factory=DataConfig)
