"""The manifest of a model directory: sealed with a checksum of its own content when saved, and checked field
by field (type and range) when loaded, so that an edited or corrupt manifest is refused in one line.

The checksum is the sha256 of a canonical JSON encoding of every field but "checksum" (sorted keys, no spaces,
UTF-8, no NaN), so it covers content, not layout: re-indenting the file keeps it valid, any change of a value
does not. The schema below is what `fit.fit_model` and `persistence.save_artifact` write, field by
field; `check_arrays` then holds the arrays to the shapes that the manifest implies. Neither imports pandas or
Flax, so a cron `forecast predict` pays nothing for them.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable

import numpy as np

from forecast_cli import __version__, limits, timeindex
from forecast_cli.config import (
    DECIMALS,
    FILL_POLICIES,
    LAYOUTS,
    MODEL_KINDS,
    RECURRENT_KINDS,
    SEPARATORS,
    THOUSANDS,
    DataConfig,
)
from forecast_cli.errors import ArtifactError, ConfigError
from forecast_cli.models.auto import BLENDS, CONTEXT, DRIFTS, WEIGHTS, blend_key
from forecast_cli.models.ets import state_width
from forecast_cli.windows import SCALINGS

ORIGINS = ("validation", "every window", "holdout")  # where calibration errors came from (fit.calibrate)
FORMAT_VERSION = 5  # of the model directory; bump it when the layout or the manifest's schema changes

RETRAIN = "retrain the model"


class Invalid(Exception):
    """A field that no forecast writes: `field` its dotted path, `problem` what it should be, `found` what it is."""

    def __init__(self, field: str, problem: str, found: str | None = None):
        super().__init__(field, problem, found)
        self.field, self.problem, self.found = field, problem, found


# --- checkers: each takes (value, dotted path) and raises Invalid, or returns None ---------------------------

Check = Callable[[object, str], None]


def show(value: object) -> str:
    """A value in a few characters on one line (control characters escaped), for a message."""
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, str):
        return f"the text {json.dumps(value[:40])}" + ("…" if len(value) > 40 else "")
    if isinstance(value, (int, float)):
        shown = repr(value)
        return shown if len(shown) <= 40 else f"a {len(shown)}-character number"
    return f"a list of {len(value)}" if isinstance(value, list) else "an object"


def integer(lo: int, hi: int) -> Check:
    def check(value, at):
        if type(value) is not int or not lo <= value <= hi:  # `type`: JSON true is no integer
            raise Invalid(at, f"must be an integer from {lo} to {hi}", show(value))
    return check


def number(lo: float = -math.inf, hi: float = math.inf, *, above: bool = False, below: bool = False) -> Check:
    """A finite int or float in [lo, hi]; `above`/`below`: lo/hi excluded."""
    words = f"{'(' if above else '['}{lo:g}, {hi:g}{')' if below else ']'}"

    def check(value, at):
        if type(value) not in (int, float) or (type(value) is float and not math.isfinite(value)) \
                or not (lo < value if above else lo <= value) or not (value < hi if below else value <= hi):
            raise Invalid(at, f"must be a finite number in {words}", show(value))
    return check


def boolean(value, at):
    if type(value) is not bool:
        raise Invalid(at, "must be true or false", show(value))


def text(max_chars: int = 1_000, *, choices: tuple[str, ...] | None = None, hex_digits: int | None = None) -> Check:
    def check(value, at):
        if choices is not None and value not in choices:
            raise Invalid(at, f"must be one of {', '.join(map(str, choices))}", show(value))
        if not isinstance(value, str) or not 1 <= len(value) <= max_chars:
            raise Invalid(at, f"must be a text of 1 to {max_chars} characters", show(value))
        if hex_digits is not None and (len(value) != hex_digits or value.strip("0123456789abcdef")):
            raise Invalid(at, f"must be {hex_digits} lowercase hexadecimal digits", show(value))
    return check


def nullable(check: Check) -> Check:
    def maybe(value, at):
        if value is not None:
            check(value, at)
    return maybe


def list_of(item: Check, *, min_len: int = 0, unique: bool = False, max_len: int | None = None) -> Check:
    def check(value, at):
        if not isinstance(value, list) or len(value) < min_len:
            raise Invalid(at, f"must be a list of at least {min_len}", show(value))
        if max_len is not None and len(value) > max_len:
            raise Invalid(at, f"must be a list of at most {max_len}", f"{len(value)} entries")
        for i, v in enumerate(value):
            item(v, f"{at}[{i}]")
        if unique and len(set(value)) < len(value):
            seen = set()
            twice = next(v for v in value if v in seen or seen.add(v))
            raise Invalid(at, "must not hold the same entry twice", show(twice))
    return check


def mapping(value_check: Check) -> Check:
    """An object of any keys (texts) whose values all pass `value_check`."""
    def check(value, at):
        if not isinstance(value, dict):
            raise Invalid(at, "must be an object", show(value))
        for k, v in value.items():
            value_check(v, f"{at}.{k}")
    return check


def record(fields: dict[str, Check], optional: tuple[str, ...] = ()) -> Check:
    """An object with exactly these keys (those in `optional` may be absent). Unknown keys are refused: the
    checksum already proves nobody edited them, so one is from a writer this version does not know (or this
    schema is behind fit.py, which every save-and-load test then shows at once); either way what it means
    for the forecast is unknown."""
    def check(value, at):
        if not isinstance(value, dict):
            raise Invalid(at, "must be an object", show(value))
        unknown = sorted(value.keys() - fields.keys())
        if unknown:
            raise Invalid(f"{at}.{unknown[0]}".lstrip("."), "is not a field of this model format")
        for key, field_check in fields.items():
            if key in value:
                field_check(value[key], f"{at}.{key}".lstrip("."))
            elif key not in optional:
                raise Invalid(f"{at}.{key}".lstrip("."), "is missing")
    return check


def frequency(value, at):
    """A frequency in the canonical form timeindex.check_freq gives ("D", "15min", "W-SUN", "int:1")."""
    text(64)(value, at)
    step = timeindex.fixed_step(value)
    if step is not None:  # D, 3D, h, 15min, s: checked without pandas, which writes 1D as D
        count, unit = int(step.astype(np.int64)), value.lstrip("0123456789")
        canonical = value.isascii() and value == ("" if count == 1 else str(count)) + unit
    else:  # integer periods without pandas; calendar frequencies (W-SUN, MS) need it to forecast anyway
        try:
            canonical = timeindex.check_freq(value) == value
        except ConfigError:
            canonical = False
    if not canonical:
        raise Invalid(at, "must be a frequency such as D, h, 15min, W-SUN, MS or int:1", show(value))


# --- the schema --------------------------------------------------------------------------------------------

METRIC = nullable(number(0))  # a loss or an error: null where training had none (NaN is written as null)
COUNT = integer(0, 2**53)
NAME = nullable(text())  # a column name as the user spelled it; null: detected or none

WINDOW = record({
    "lookback": integer(1, limits.MAX_LOOKBACK),
    "horizon": integer(1, limits.MAX_HORIZON),
    "val_size": nullable(integer(0, 10 * limits.MAX_HORIZON)),  # null: default_val_size per series
    "scaling": text(choices=SCALINGS),
    "log": boolean,
})
TRAIN = record({  # config.TrainConfig; cli.train checks the same bounds on its options
    "epochs": integer(1, limits.MAX_EPOCHS),
    "patience": integer(0, limits.MAX_PATIENCE),
    "batch_size": nullable(integer(1, limits.MAX_BATCH_SIZE)),
    "loss": text(choices=("mase", "mae", "mse")),
    "refit": boolean,
    "ensemble": integer(1, limits.MAX_ENSEMBLE),
    "series_windows": integer(0, limits.MAX_SERIES_WINDOWS),
    "learning_rate": number(limits.MIN_LEARNING_RATE, limits.MAX_LEARNING_RATE),
    "weight_decay": number(0, 1e3),
    "clip_norm": number(0, 1e12, above=True),
    "seed": integer(0, limits.MAX_SEED),
    "devices": nullable(integer(1, limits.MAX_DEVICES)),
}, optional=("series_windows",))  # absent in models saved before it (every window: 0)
DATA = record({  # config.DataConfig: how `predict DATA` reads fresh data
    "id_col": NAME, "time_col": NAME, "target": NAME,
    "covariates": list_of(text(), unique=True),
    "freq": nullable(text(64)),  # as the user gave it; the canonical one is the top-level "freq"
    "fill": text(choices=FILL_POLICIES),
    "layout": nullable(text(choices=LAYOUTS)),
    "sep": nullable(text(choices=tuple(SEPARATORS))),  # the dialect options, as given (null: detected or none)
    "decimal": text(choices=DECIMALS),
    "thousands": nullable(text(choices=THOUSANDS)),
    "date_format": nullable(text(200)),
    "future_covariates": list_of(text(), unique=True),
    "holidays": nullable(text(64)),
    "static": list_of(text(), unique=True),
}, optional=("sep", "decimal", "thousands", "date_format", "future_covariates", "holidays", "static"))  # absent in
# manifests written before them
RECURRENT_FIT = record({
    "epochs": integer(1, limits.MAX_EPOCHS), "best_epoch": integer(1, limits.MAX_EPOCHS),
    "stopped_early": boolean, "train_loss": METRIC, "val_loss": METRIC, "seconds": number(0),
    "refit_windows": COUNT, "refit_epochs": integer(1, limits.MAX_EPOCHS), "members": integer(1, limits.MAX_ENSEMBLE),
}, optional=("refit_windows", "refit_epochs", "members"))  # only when refitted on the validation windows too (no
# refit_epochs in models saved before 2026-12-03, whose refit trained a fresh network for best_epoch epochs)


FUTURE = list_of(integer(1, limits.MAX_COLUMNS), min_len=1, unique=True)  # input columns known over the horizon


def recurrent_model(cell: str) -> Check:
    return record({"cell": text(choices=(cell,)), "hidden": integer(1, limits.MAX_HIDDEN),
                   "layers": integer(1, limits.MAX_LAYERS), "dropout": number(0, limits.MAX_DROPOUT),
                   "future": FUTURE}, optional=("future",))


ESN_MODEL = record({
    "units": integer(1, limits.MAX_UNITS), "spectral_radius": number(0, 1e3), "input_scaling": number(0, 1e6),
    "bias_scaling": number(0, 1e6), "sparsity": number(0, 1), "leak_rate": number(0, 1, above=True),
    "ridges": list_of(number(0, 1e12, above=True), min_len=1), "future": FUTURE,
}, optional=("future",))
ESN_FIT = record({"ridge": number(0, 1e12, above=True), "val_loss": METRIC, "train_windows": COUNT,
                  "val_windows": COUNT, "val_loss_by_ridge": mapping(METRIC)})
BLEND = record({"weight": number(0, 1), "drift": number(min(DRIFTS), max(DRIFTS)), "ets": number(0, 1),
                "errors": mapping(METRIC)}, optional=("ets",))  # ets: absent in models saved before ETS joined
NO_CONFIG = record({})
STATIC = record({  # one --static column's encoding: numeric (mean, scale) or categorical (categories)
    "name": text(), "mean": number(-1e100, 1e100), "scale": number(0, 1e100, above=True),
    "categories": list_of(text(), min_len=1, unique=True, max_len=limits.MAX_STATIC_CATEGORIES),
}, optional=("mean", "scale", "categories"))
UPDATE = record({  # one `forecast update` (update.py)
    "at": text(64), "rows": COUNT, "series": COUNT, "ids": list_of(text(limits.MAX_ID_CHARS), max_len=20),
    "new_series": COUNT, "windows": COUNT, "calibration_windows": COUNT, "kept": text(200), "seconds": number(0),
})
MODEL = {"auto": (recurrent_model("gru"), RECURRENT_FIT), "esn": (ESN_MODEL, ESN_FIT),
         "naive": (NO_CONFIG, NO_CONFIG), "snaive": (NO_CONFIG, NO_CONFIG),
         **{kind: (recurrent_model(kind), RECURRENT_FIT) for kind in RECURRENT_KINDS}}


def fields_of(kind: str) -> dict[str, Check]:
    """The top-level fields of a model of `kind` (already checked to be one of MODEL_KINDS)."""
    model, fit = MODEL[kind]
    return {
        "kind": text(choices=MODEL_KINDS),
        "window": WINDOW,
        "train": TRAIN,
        "data": DATA,
        "freq": frequency,
        # the seasonal-naive and Theta period: not compared with timeindex.season_length(freq), which imports
        # pandas (0.3 s of every cron predict); any period in range forecasts, the checksum catches a changed one
        "season": integer(1, limits.MAX_LOOKBACK),
        "covariates": list_of(text(), unique=True),
        "columns": record({"id": NAME, "time": NAME, "target": NAME, "time_sep": text(choices=("T",))},
                          optional=("time_sep",)),  # "T": the training file wrote 2024-01-31T13:00
        "n_features": integer(1, limits.MAX_COLUMNS * (limits.MAX_STATIC_CATEGORIES + 1)),  # columns, sin/cos of up
        # to 3 calendar cycles, a holiday indicator, and the static columns' one-hot codes
        "calendar": list_of(text(choices=("hour", "weekday", "month")), unique=True),
        "series": list_of(text(limits.MAX_ID_CHARS), min_len=1, unique=True),
        "fingerprint": text(hex_digits=16),
        "device": text(64),
        "model": model,
        "fit": fit,
        "validation": record({"windows": COUNT, "model_mae": METRIC, "naive_mae": METRIC, "snaive_mae": METRIC},
                             optional=("model_mae", "naive_mae", "snaive_mae")),  # absent with no windows
        "calibration": record({"windows": COUNT, "origins": text(choices=ORIGINS),
                               "holdout": COUNT, "ratio": number(0, 1e6, above=True)}),
        **({"blend": BLEND} if kind == "auto" else {}),
        "processes": integer(1, limits.MAX_PROCESSES),  # distributed training only
        "updates": list_of(UPDATE, max_len=limits.MAX_UPDATES_KEPT),  # `forecast update`s since training
        "static": list_of(STATIC, min_len=1),  # --static: each column's encoding (static.py)
        "training_seconds": number(0),
        "format_version": integer(1, 1 << 31),  # equal to FORMAT_VERSION: check_manifest sees to it first
        "package_version": text(64),
        "files": mapping(record({"sha256": text(hex_digits=64), "bytes": integer(0, limits.MAX_ARRAYS_BYTES)})),
        "checksum": text(hex_digits=64),
    }


OPTIONAL = ("processes", "updates", "static")


def consistent(m: dict) -> None:
    """The rules between fields (each field is already of the right type and range)."""
    calendar = list(timeindex.calendar_feature_names(m["freq"]))
    n_columns = 1 + len(m["covariates"])
    future, holidays = m["data"].get("future_covariates", []), m["data"].get("holidays")
    if m["covariates"] != m["data"]["covariates"] + future:
        raise Invalid("covariates", "must equal data.covariates then data.future_covariates", show(m["covariates"]))
    holiday = n_columns + 2 * len(calendar)
    expected = list(range(1 + len(m["data"]["covariates"]), n_columns)) + ([holiday] if holidays else [])
    if m["model"].get("future", []) != (expected if m["kind"] not in ("naive", "snaive") else []):
        raise Invalid("model.future", f"must be {expected or 'absent'} (the input columns of "
                      "data.future_covariates)", show(m["model"].get("future")))
    if m["calendar"] != calendar:
        raise Invalid("calendar", f"must be {calendar} for freq {m['freq']}", show(m["calendar"]))
    static = m.get("static") or []
    if [e["name"] for e in static] != m["data"].get("static", []):
        raise Invalid("static", "must encode exactly data.static, in order", show([e["name"] for e in static]))
    for e in static:
        if ("categories" in e) == ("mean" in e) or ("mean" in e) != ("scale" in e):
            raise Invalid("static", "each column holds either mean and scale or categories", show(e["name"]))
    n_static = sum(len(e["categories"]) if "categories" in e else 1 for e in static)
    wanted = n_columns + 2 * len(calendar) + bool(holidays) + n_static
    if m["n_features"] != wanted:
        raise Invalid("n_features", f"must be {wanted} (target, covariates, sin and cos of {len(calendar)} calendar "
                      "cycles, the holiday indicator with data.holidays, the static columns' encoding)",
                      show(m["n_features"]))
    if timeindex.is_int_freq(m["freq"]) and m["season"] != 1:
        raise Invalid("season", "must be 1 for integer periods", show(m["season"]))
    fit = m["fit"]
    if "best_epoch" in fit and fit["best_epoch"] > fit["epochs"]:
        raise Invalid("fit.best_epoch", f"must be at most fit.epochs ({fit['epochs']})", show(fit["best_epoch"]))
    if fit.get("members", 1) > m["train"]["ensemble"]:
        raise Invalid("fit.members", f"must be at most train.ensemble ({m['train']['ensemble']})",
                      show(fit["members"]))
    if ("refit_windows" in fit) != ("members" in fit):
        raise Invalid("fit.members", "must come with fit.refit_windows")
    if "refit_epochs" in fit and ("refit_windows" not in fit or fit["refit_epochs"] > fit.get("best_epoch", 0)):
        raise Invalid("fit.refit_epochs", "must come with fit.refit_windows and be at most fit.best_epoch",
                      show(fit["refit_epochs"]))
    calibration = m["calibration"]
    if (calibration["origins"] == "holdout") != (calibration["holdout"] > 0):
        raise Invalid("calibration.holdout", "must be above 0 exactly when calibration.origins is \"holdout\"",
                      show(calibration["holdout"]))
    windows = m["validation"]["windows"]
    if windows and len(m["validation"]) != 4:
        raise Invalid("validation", f"must hold model_mae, naive_mae and snaive_mae for its {windows} windows")
    if m["kind"] == "esn":
        ridges = m["model"]["ridges"]
        if fit["ridge"] not in ridges:
            raise Invalid("fit.ridge", "must be one of model.ridges", show(fit["ridge"]))
        tried = {str(r) for r in ridges} if fit["val_windows"] else set()  # as esn.fit names them
        if set(fit["val_loss_by_ridge"]) != tried:
            raise Invalid("fit.val_loss_by_ridge", f"must have the keys {sorted(tried)}")
    if m["kind"] == "auto":
        blend = m["blend"]
        if "ets" in blend:
            tried = {blend_key(*b) for b in BLENDS} if windows else set()
            if blend["weight"] + blend["ets"] > 1 + 1e-9:
                raise Invalid("blend.ets", "must be at most 1 - blend.weight", show(blend["ets"]))
        else:  # saved before ETS joined the blend: (drift, weight) pairs
            tried = {f"{d:g}/{w:g}" for d in DRIFTS for w in WEIGHTS} if windows else set()
        if set(blend["errors"]) != tried:  # as auto.choose_from_sums names them
            raise Invalid("blend.errors", "must have a key for every blend that auto tries (models/auto.py BLENDS)")
    try:
        DataConfig.from_dict(m["data"])
    except (TypeError, ValueError) as e:  # pragma: no cover - the DATA record already holds it to this
        raise Invalid("data", f"is not a data configuration ({e})") from e


# --- sealing and checking ----------------------------------------------------------------------------------


def canonical(manifest: dict) -> bytes:
    """The bytes the checksum is taken of: every field but "checksum". ValueError for NaN or infinity."""
    content = {k: v for k, v in manifest.items() if k != "checksum"}
    text_ = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text_.encode("utf-8", "surrogatepass")  # a lone surrogate ("\ud800" in the file) still encodes


def finite_or_null(value):
    """`value` (JSON-ready) with every NaN or infinite float replaced by None: strict JSON, which the
    canonical encoding needs. Only metrics can be non-finite (a validation loss with no windows)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_or_null(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite_or_null(v) for v in value]
    return value


def seal(manifest: dict) -> dict:
    """The manifest with a "checksum" of its content added (what save_artifact writes); NaN and infinite
    values become null first, so what is written is strict JSON and reads back to the same content."""
    clean = finite_or_null({k: v for k, v in manifest.items() if k != "checksum"})
    return {**clean, "checksum": hashlib.sha256(canonical(clean)).hexdigest()}


def depth(value: object) -> int:
    """Nesting of lists and objects, found without recursion (a 200,000-deep `[[[` must not overflow)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if deepest > limits.MAX_MANIFEST_DEPTH:
                return deepest
            stack.extend((v, level + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def check_manifest(manifest: object, where: str) -> dict:
    """Verify the checksum and every field's type and range; returns the manifest. ArtifactError naming `where`
    (the manifest's path) and the field otherwise. Called before the arrays are read."""
    if not isinstance(manifest, dict):
        raise ArtifactError(f"{where}: corrupt manifest (not a JSON object); {RETRAIN}")
    version = manifest.get("format_version")
    if type(version) is int and version > FORMAT_VERSION:  # a newer format may seal differently: say so first
        raise ArtifactError(f"{where}: model format version {version} is newer than this forecast {__version__} "
                            f"understands (up to {FORMAT_VERSION}); upgrade forecast or {RETRAIN}")
    if "checksum" not in manifest:
        why = ("was written by an older forecast (format version 1) without a manifest checksum" if version == 1
               else "has no field 'checksum': it was not written by forecast")
        raise ArtifactError(f"{where}: the manifest {why}; {RETRAIN}")
    if depth(manifest) > limits.MAX_MANIFEST_DEPTH:
        raise ArtifactError(f"{where}: corrupt manifest (nested deeper than {limits.MAX_MANIFEST_DEPTH}); {RETRAIN}")
    try:
        digest = hashlib.sha256(canonical(manifest)).hexdigest()
    except ValueError:
        raise ArtifactError(f"{where}: corrupt manifest (NaN or Infinity, which forecast never writes); "
                            f"{RETRAIN}") from None
    if digest != manifest["checksum"]:
        raise ArtifactError(f"{where}: checksum mismatch: the manifest was edited or corrupted (field 'checksum' "
                            f"does not match its content); {RETRAIN}")
    if type(version) is int and version < FORMAT_VERSION:
        raise ArtifactError(f"{where}: model format version {version} was written by an older forecast; this one "
                            f"reads version {FORMAT_VERSION} (version 5 keeps what `forecast update` continues from); "
                            f"{RETRAIN}")
    try:
        text(choices=MODEL_KINDS)(manifest.get("kind"), "kind")
        record(fields_of(manifest["kind"]), optional=OPTIONAL)(manifest, "")
        if manifest["format_version"] != FORMAT_VERSION:
            raise Invalid("format_version", f"must be {FORMAT_VERSION}", show(manifest["format_version"]))
        consistent(manifest)
    except Invalid as e:
        found = f", found {e.found}" if e.found is not None else ""
        raise ArtifactError(f"{where}: field '{e.field}' {e.problem}{found}; {RETRAIN}") from None
    return manifest


# --- the arrays --------------------------------------------------------------------------------------------


def expected_params(manifest: dict) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every "params/..." array that a model of this manifest holds: what
    models.recurrent.build (flax's GRUCell, LSTMCell, SimpleCell and Linear) and esn.init_reservoir make
    (tests/test_manifest.py holds this to flax's own shapes). Ensemble members after the first are under
    "member<k>/"."""
    kind, model = manifest["kind"], manifest["model"]
    F, h = manifest["n_features"], manifest["window"]["horizon"]
    ahead = h * len(model.get("future", ()))  # the future covariates' horizon values the readout takes
    if kind == "esn":
        U = model["units"]
        return {"W": (U, U), "W_in": (U, F), "b": (U,), "readout": (U + F + 1 + ahead, h)}
    if kind not in RECURRENT_KINDS and kind != "auto":
        return {}
    H, cell, n_future = model["hidden"], model["cell"], len(model.get("future", ()))
    one = {"head/kernel": (H, 1 if n_future else h), "head/bias": (1 if n_future else h,)}  # a decoder: per step
    cells = [(F if layer == 0 else H, f"layers/{layer}/cell/") for layer in range(model["layers"])]
    for inputs, at in cells + ([(n_future, "decoder/cell/")] if n_future else []):
        if cell == "lstm":
            for gate in ("i", "f_", "g", "o"):
                one[f"{at}i{gate}/kernel"] = (inputs, H)
                one[f"{at}h{gate.rstrip('_')}/kernel"] = (H, H)
                one[f"{at}h{gate.rstrip('_')}/bias"] = (H,)
        else:
            width = 3 * H if cell == "gru" else H
            one.update({f"{at}dense_i/kernel": (inputs, width), f"{at}dense_i/bias": (width,),
                        f"{at}dense_h/kernel": (H, width)})
    members = manifest["fit"].get("members", 1)
    return {(f"member{k}/{name}" if k else name): shape for k in range(members) for name, shape in one.items()}


def expected_arrays(manifest: dict, context_steps: int) -> dict[str, tuple[int, ...]]:
    n, lookback = len(manifest["series"]), manifest["window"]["lookback"]
    n_columns = 1 + len(manifest["covariates"])
    shapes = {"scaler/loc": (n, n_columns), "scaler/scale": (n, n_columns),
              "history/values": (n, lookback, n_columns), "history/last_ds": (n,), "history/length": (n,),
              "history/nonnegative": (n,), "history/rows": (n,), "history/digest": (n,),
              "calibration/ratio": (n,), "calibration/scale": (n,)}
    if manifest["kind"] == "auto":
        shapes["context/values"] = (n, context_steps)
        if manifest["blend"].get("ets", 0) > 0:  # auto.context_state
            shapes.update({"ets/state": (n, state_width(manifest["season"])), "ets/multiplicative": (n,)})
    if manifest.get("static"):
        shapes["static/values"] = (n, sum(len(e["categories"]) if "categories" in e else 1 for e in manifest["static"]))
    params = expected_params(manifest)
    shapes.update({f"params/{k}": v for k, v in params.items()})
    shapes.update({f"state/{k}": v for k, v in expected_state(manifest, params).items()})
    return shapes


def expected_state(manifest: dict, params: dict[str, tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    """Name -> shape of the "state/..." arrays that `forecast update` continues from: the ESN's normal equations,
    a network's Adam moments (one per weight) and each member's step count."""
    if manifest["kind"] == "esn":
        p = params["readout"][0]
        return {"gram": (p, p), "cross": (p, manifest["window"]["horizon"])}
    if not params:
        return {}
    moments = {f"{part}/{name}": shape for part in ("mu", "nu") for name, shape in params.items()}
    return {**moments, "adam_count": (manifest["fit"].get("members", 1),)}


def check_arrays(manifest: dict, arrays: dict[str, np.ndarray], where: str) -> None:
    """Verify that the arrays match the manifest (names, dtypes, shapes: series count, lookback, columns,
    parameter shapes of the model kind) and hold finite numbers where a forecast uses them. ArtifactError
    naming `where` (the arrays' path) otherwise."""
    def refuse(name: str, problem: str) -> None:
        raise ArtifactError(f"{where}: array '{name}' {problem}; {RETRAIN}")

    context = arrays.get("context/values")
    steps = context.shape[-1] if context is not None and context.ndim == 2 else manifest["window"]["lookback"]
    expected = expected_arrays(manifest, steps)
    for name in ("calibration/scores", "calibration/pending", "calibration/pending_series",
                 "calibration/pending_row"):
        expected[name] = None  # any number of calibration windows
    for name in sorted(arrays.keys() - expected.keys()):
        refuse(name, f"is not part of this {manifest['kind']} model")
    for name in sorted(expected.keys() - arrays.keys()):
        refuse(name, "is missing")
    horizon = manifest["window"]["horizon"]
    stamp_dtype = (("i", "int64 (integer periods)") if timeindex.is_int_freq(manifest["freq"])
                   else ("M", f"datetime64 (freq {manifest['freq']})"))
    for name, shape in expected.items():
        array = arrays[name]
        kinds, words = {"history/length": ("iu", "integer"), "history/rows": ("iu", "integer"),
                        "state/adam_count": ("iu", "integer"), "history/digest": ("u", "uint64"),
                        "calibration/pending_series": ("i", "int64"), "calibration/pending_row": ("i", "int64"),
                        "history/last_ds": stamp_dtype, "history/nonnegative": ("b", "bool"),
                        "ets/multiplicative": ("b", "bool")}.get(name, ("f", "float"))
        if array.dtype.kind not in kinds:
            refuse(name, f"has dtype {array.dtype}, not {words}")
        if name in ("calibration/scores", "calibration/pending"):
            if array.ndim != 2 or array.shape[1] != horizon:
                refuse(name, f"has shape {array.shape}, not (windows, {horizon}) for the horizon {horizon}")
        elif name.startswith("calibration/pending_"):
            if array.shape != arrays["calibration/pending"].shape[:1]:
                refuse(name, f"has shape {array.shape}, not one entry per row of calibration/pending")
        elif array.shape != shape:
            refuse(name, f"has shape {array.shape} but the manifest implies {shape} ({implied(manifest, name)})")
    check_values(manifest, arrays, refuse)


def implied(manifest: dict, name: str) -> str:
    """What in the manifest fixes the shape of array `name`, in words."""
    window, model = manifest["window"], manifest["model"]
    if name.startswith("params/"):
        sizes = ", ".join(f"{k} {v}" for k, v in model.items() if k in ("cell", "hidden", "layers", "units"))
        return (f"a {manifest['kind']} model: {sizes}, {manifest['n_features']} features, horizon {window['horizon']}"
                + (f", {manifest['fit']['members']} members" if manifest["fit"].get("members", 1) > 1 else ""))
    return (f"{len(manifest['series'])} series, lookback {window['lookback']}, "
            f"{1 + len(manifest['covariates'])} columns")


def check_values(manifest: dict, arrays: dict[str, np.ndarray], refuse: Callable[[str, str], None]) -> None:
    """The numbers a forecast uses are finite (every scan is linear in arrays already in memory)."""
    lookback = manifest["window"]["lookback"]
    for name, array in arrays.items():
        if name.startswith(("params/", "state/")) or name == "scaler/loc":
            if not np.isfinite(array).all():
                refuse(name, "holds NaN or infinite values")
    scores = arrays["calibration/scores"]
    if not (np.isfinite(scores) & (scores >= 0)).all():
        refuse("calibration/scores", "holds values that are not finite and at least 0")
    windows = manifest["calibration"]["windows"]  # one process keeps at most MAX_CALIBRATION_WINDOWS of them
    if len(scores) != windows or ("processes" not in manifest and windows > limits.MAX_CALIBRATION_WINDOWS):
        refuse("calibration/scores", f"has {len(scores)} rows for the manifest's {windows} calibration windows "
               f"(at most {limits.MAX_CALIBRATION_WINDOWS:,} from one process)")
    for name in ("scaler/scale", "calibration/ratio", "calibration/scale"):
        if not (np.isfinite(arrays[name]) & (arrays[name] > 0)).all():
            refuse(name, "holds values that are not finite and above 0")
    length = arrays["history/length"]
    if length.size and not ((length >= 1) & (length <= lookback)).all():  # every series has at least one row
        refuse("history/length", f"holds lengths outside 1..{lookback} (the lookback)")
    if not (arrays["history/rows"] == np.maximum(arrays["history/rows"], length)).all() or \
            not (np.minimum(arrays["history/rows"], lookback) == length).all():
        refuse("history/rows", "does not agree with history/length (the rows seen, at most a lookback of them kept)")
    pending = arrays["calibration/pending"]
    if len(pending) > limits.MAX_CALIBRATION_WINDOWS or not np.isfinite(pending).all() or \
            not ((arrays["calibration/pending_series"] >= 0) & (arrays["calibration/pending_series"] < len(length))
                 & (arrays["calibration/pending_row"] >= lookback)).all():
        refuse("calibration/pending", f"must hold at most {limits.MAX_CALIBRATION_WINDOWS:,} finite forecasts of "
               "known series, from origins at least a lookback into them")
    if "state/adam_count" in arrays and (arrays["state/adam_count"] < 0).any():
        refuse("state/adam_count", "holds negative step counts")
    present = np.arange(lookback)[None, :] >= lookback - length[:, None]  # NaN on the left of short series
    if not (np.isfinite(arrays["history/values"]) == present[:, :, None]).all():
        refuse("history/values", "holds NaN or infinite values where history/length says there is data")
    stamps_fit(manifest, arrays["history/last_ds"], refuse)
    context = arrays.get("context/values")
    if context is not None and (not lookback <= context.shape[1] <= max(lookback, CONTEXT)
                                or np.isinf(context).any() or not np.isfinite(context[:, -1]).all()):
        refuse("context/values", f"must hold {lookback} to {max(lookback, CONTEXT)} steps, NaN only before a "
               "series starts")
    if "ets/state" in arrays and not (np.isfinite(arrays["ets/state"]).all() and (arrays["ets/state"][:, 3] > 0).all()):
        refuse("ets/state", "holds values that are not finite, or units not above 0")
    if context is not None and not np.array_equal(context[:, -lookback:], arrays["history/values"][:, :, 0],
                                                  equal_nan=True):  # both end at the series' last value
        refuse("context/values", "does not end with the target of history/values")


def stamps_fit(manifest: dict, last: np.ndarray, refuse: Callable[[str, str], None]) -> None:
    """The stamps of the stored history and of a forecast of the trained horizon are representable: at a fixed
    step (integer periods, D, h, min, s) none wraps around int64 (numpy would wrap silently); no NaT."""
    freq, window = manifest["freq"], manifest["window"]
    if not timeindex.is_int_freq(freq) and np.isnat(last).any():
        refuse("history/last_ds", "holds NaT (no timestamp)")
    if timeindex.is_int_freq(freq):
        step = float(timeindex.int_step(freq))
    elif timeindex.fixed_step(freq) is not None:
        step = timeindex.fixed_step(freq) / np.timedelta64(1, np.datetime_data(last.dtype)[0])
    else:
        return  # calendar steps go through pandas, which raises rather than wraps
    ticks = last.view(np.int64).astype(np.float64)  # the history reaches back a lookback, a forecast ahead a horizon
    if ticks.size and (ticks.max() + step * window["horizon"] >= 2.0**63
                       or ticks.min() - step * window["lookback"] <= -(2.0**63)):
        refuse("history/last_ds", f"holds stamps too near the end of the representable range for a lookback of "
               f"{window['lookback']} and a horizon of {window['horizon']} steps of {freq}")
