"""A trained model as the code sees it: an `Artifact` of a typed `Manifest` and named arrays.

The manifest's hyperparameters (`model`, with `kind`, `window` and `n_features`) rebuild the model's skeleton;
the arrays are its leaves (models/*.py turn them into a forecast function). On disk the manifest is JSON (see
persistence.py for the files and manifest.py for the checked schema); `Manifest.to_dict` and `from_dict` convert.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from forecast_cli.config import DataConfig, TrainConfig, WindowConfig

STORED_ONLY = ("format_version", "package_version", "files", "checksum")  # persistence.py adds them on saving


@dataclass(frozen=True)
class Manifest:
    """Everything about a trained model but its arrays."""

    kind: str  # a key of models.MODELS
    window: WindowConfig  # lookback, horizon, val_size, scaling, log
    train: TrainConfig
    data: DataConfig  # how the training CSV was read: fresh data for predict is read the same way
    freq: str
    season: int  # seasonal-naive and Theta period
    covariates: tuple[str, ...]
    columns: dict  # the user's column names: {"id", "time", "target"}
    n_features: int  # model input columns: target, covariates, calendar
    calendar: tuple[str, ...]  # calendar features (timeindex.calendar_feature_names)
    series: tuple[str, ...]  # every series id, in the arrays' order
    fingerprint: str  # of the training data
    device: str
    model: dict  # the kind's hyperparameters (RecurrentConfig, ESNConfig or {}): they rebuild the model
    fit: dict  # how fitting went (epochs, ridge, ...)
    validation: dict  # {"windows", "model_mae", "naive_mae", "snaive_mae"}
    calibration: dict  # {"windows", "origins", "ratio"}: the conformal scores kept (fit.calibrate)
    blend: dict | None = None  # auto only: {"weight", "drift", "errors"}
    processes: int | None = None  # trained across this many processes
    updates: list | None = None  # `forecast update`s since training, oldest first (update.py)
    static: list | None = None  # --static: how each column is encoded (static.py), in input-column order
    training_seconds: float = 0.0
    stored: dict = field(default_factory=dict, compare=False)  # format_version, package_version, ... when loaded

    def to_dict(self) -> dict:
        """The JSON-ready manifest (without the fields persistence adds)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "stored"}
        d.update(window=self.window.to_dict(), train=self.train.to_dict(), data=self.data.to_dict(),
                 covariates=list(self.covariates), calendar=list(self.calendar), series=list(self.series))
        return {k: v for k, v in d.items() if v is not None or k not in ("blend", "processes", "updates", "static")}

    @classmethod
    def from_dict(cls, d: dict) -> Manifest:
        """From a manifest read back (manifest.check_manifest has checked every field already)."""
        names = {f.name for f in dataclasses.fields(cls)} - {"stored"}
        fields = {k: v for k, v in d.items() if k in names}
        fields.update(window=WindowConfig(**d["window"]), train=TrainConfig(**{"series_windows": 0, **d["train"]}),
                      data=DataConfig.from_dict(d["data"]), covariates=tuple(d["covariates"]),
                      calendar=tuple(d["calendar"]), series=tuple(d["series"]))
        return cls(**fields, stored={k: d[k] for k in STORED_ONLY if k in d})


@dataclass
class Artifact:
    """A trained model and what it needs to forecast without the training CSV.

    arrays: model weights under "params/...", "scaler/loc", "scaler/scale" (n_series,), "history/values"
        (n_series, lookback, n_columns) in original units, NaN-padded on the left for short series,
        "history/last_ds" (n_series,), "history/length" (n_series,), "history/nonnegative" (n_series,),
        "history/rows" (n_series,) rows trained on, "history/digest" (n_series,) their digest (Panel.digests),
        "calibration/scores" (n_windows, horizon) oldest origin first, "calibration/scale" (n_series,), what
        `forecast update` continues from under "state/..." and, for kinds that ask for it (auto),
        "context/values" (n_series, context).
    """

    manifest: Manifest
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    def params(self) -> dict[str, np.ndarray]:
        return {k[len("params/"):]: v for k, v in self.arrays.items() if k.startswith("params/")}
