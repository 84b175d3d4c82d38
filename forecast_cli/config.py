"""Frozen configuration dataclasses. CLI options map one-to-one onto their fields."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

FILL_POLICIES = ("interpolate", "ffill", "zero", "error")
LAYOUTS = ("long", "wide", "single")


@dataclass(frozen=True)
class DataConfig:
    """How to read a CSV into the canonical long panel (see data.read_series)."""

    id_col: str | None = None  # series id column (long layout); auto-detected when None
    time_col: str | None = None  # timestamp column; auto-detected when None
    target: str | None = None  # value column to forecast; auto-detected when None
    covariates: tuple[str, ...] = ()  # extra numeric columns that travel with the target
    freq: str | None = None  # pandas offset alias ("D", "h", "MS", ...) or "int:1"; inferred when None
    fill: str = "interpolate"  # how missing timestamps and values are filled: one of FILL_POLICIES
    layout: str | None = None  # "long", "wide" or "single"; auto-detected when None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> DataConfig:
        return cls(**{**d, "covariates": tuple(d.get("covariates", ()))})


@dataclass(frozen=True)
class WindowConfig:
    """How series become (input, target) windows."""

    lookback: int  # input steps per window
    horizon: int  # target steps per window
    val_size: int | None = None  # steps at the end of each series kept for validation; auto when None
    scaling: str = "standard"  # per-series scaling: "standard" (mean/std) or "robust" (median/IQR)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)
