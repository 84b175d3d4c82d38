"""The model directory cannot lie (issue 14, class 5): the manifest is sealed, so any flipped bit is refused; every
field is checked for type and range, so an edited and re-sealed manifest is refused in one line; the arrays are
held to the shapes the manifest implies."""

import io
import json
import math
import shutil

import numpy as np
import pytest
import typer.testing
from conftest import seasonal_frame
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from forecast_cli.cli import app
from forecast_cli.errors import ArtifactError
from forecast_cli.manifest import check_manifest, expected_params, seal
from forecast_cli.persistence import FORMAT_VERSION

runner = CliRunner()
KINDS = ("snaive", "naive", "esn", "gru", "auto")
DELETE = object()
# Fields that a forecast from the model directory does not read: a changed value there may load and give the
# same forecast (it still must not give another one). Everything else must be refused.
NOT_READ_BY_PREDICT = ("fit", "validation", "train", "data", "columns", "device", "package_version", "blend.errors",
                       "training_seconds", "model.ridges", "model.spectral_radius", "model.input_scaling",
                       "model.bias_scaling", "model.sparsity", "model.dropout", "window.val_size", "window.scaling",
                       "fingerprint")


# The fields whose schema depends on the kind: every field is mutated in the snaive model, these in every model.
KIND_FIELDS = ("kind", "window", "model", "fit", "blend", "n_features", "season", "series")


def predict(model_dir):
    result = runner.invoke(app, ["predict", "--model-dir", str(model_dir), "--levels", "80"])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module", autouse=True)
def command_built_once():
    """typer's CliRunner builds the click command from `app` at every call: 4/5 of the time of a refused
    predict. The thousand or so predicts here share one."""
    command = typer.main.get_command(app)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(typer.testing, "_get_command", lambda _: command)
        yield


@pytest.fixture(scope="module")
def trained(command_built_once, tmp_path_factory):
    """{kind: (model directory, its forecast)} for a tiny model of every kind, trained once."""
    root = tmp_path_factory.mktemp("models")
    data = root / "data.csv"
    seasonal_frame(n_series=3, length=60).to_csv(data, index=False)
    models = {}
    for kind in KINDS:
        target = root / kind
        result = runner.invoke(app, ["train", str(data), "--model", kind, "--epochs", "2", "--hidden", "8",
                                     "--units", "20", "--model-dir", str(target), "-q"])
        assert result.exit_code == 0, result.output
        code, forecast, _ = predict(target)
        assert code == 0
        models[kind] = target, forecast
    return models


@pytest.fixture
def copy_of(trained, tmp_path):
    def copy(kind):
        target = tmp_path / kind
        shutil.copytree(trained[kind][0], target)
        return target
    return copy


def read(model_dir) -> dict:
    return json.loads((model_dir / "manifest.json").read_text())


def write(model_dir, manifest: dict) -> None:
    (model_dir / "manifest.json").write_text(json.dumps(manifest, indent=2))


def refused(model_dir) -> str:
    """The one stderr line of a `forecast predict` that must fail with exit 1."""
    code, _, stderr = predict(model_dir)
    assert code == 1 and len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr, (code, stderr)
    return stderr


# --- the seal ---------------------------------------------------------------------------------------------


@settings(max_examples=600, deadline=None)
@given(position=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7))
def test_any_flipped_bit_of_the_manifest_is_refused(trained, tmp_path_factory, position, bit):
    """A flip is refused in one line, or it left the parsed content as it was (`1e-06` -> `1E-06`, a hex digit
    of a \\u escape in another case), which every reader sees alike: then the forecast is the same."""
    source, forecast = trained["esn"]  # the esn manifest has every kind of JSON value, exponents too
    model_dir = tmp_path_factory.getbasetemp() / "flips"
    if not model_dir.exists():
        shutil.copytree(source, model_dir)
    original = (source / "manifest.json").read_bytes()
    flipped = bytearray(original)
    flipped[int(position * len(flipped))] ^= 1 << bit
    (model_dir / "manifest.json").write_bytes(bytes(flipped))
    code, stdout, stderr = predict(model_dir)
    if code == 0:
        assert json.loads(bytes(flipped)) == json.loads(original) and stdout == forecast
    else:
        assert code == 1 and len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr


@pytest.mark.parametrize("edit", [("window", "horizon", 8), ("window", "log", False), ("season", None, 6)])
def test_an_edit_without_a_new_seal_is_a_checksum_mismatch(copy_of, edit):
    model_dir = copy_of("snaive")
    manifest = read(model_dir)
    section, key, value = edit
    if key is None:
        manifest[section] = value
    else:
        manifest[section][key] = value
    write(model_dir, manifest)
    assert "checksum mismatch: the manifest was edited or corrupted" in refused(model_dir)


def test_the_seal_covers_content_not_layout(copy_of, trained):
    model_dir = copy_of("gru")
    manifest = read(model_dir)
    (model_dir / "manifest.json").write_text(json.dumps(dict(reversed(manifest.items())), separators=(",", ":")))
    assert predict(model_dir)[1] == trained["gru"][1]


def test_version_1_and_newer_manifests_are_refused_with_what_to_do(copy_of):
    model_dir = copy_of("naive")
    manifest = read(model_dir)
    old = {k: v for k, v in manifest.items() if k != "checksum"} | {"format_version": 1}
    write(model_dir, old)
    message = refused(model_dir)
    assert "written by an older forecast (format version 1) without a manifest checksum" in message
    assert message.strip().endswith("retrain the model")
    write(model_dir, seal({**manifest, "format_version": FORMAT_VERSION + 1}))
    assert f"format version {FORMAT_VERSION + 1} is newer" in refused(model_dir)
    # version 2 (before per-series calibration): its manifest has nonnegative and no calibration section
    v2 = {k: v for k, v in manifest.items() if k != "calibration"} | {"format_version": 2, "nonnegative": True}
    write(model_dir, seal(v2))
    message = refused(model_dir)
    assert "model format version 2 was written by an older forecast" in message
    assert message.strip().endswith("retrain the model")


def test_nan_is_written_as_null_and_read_back_alike(trained):
    manifest = read(trained["gru"][0])
    manifest["fit"]["val_loss"] = math.nan
    manifest["validation"]["model_mae"] = math.inf
    sealed = seal(manifest)
    assert sealed["fit"]["val_loss"] is None and sealed["validation"]["model_mae"] is None
    text = json.dumps(sealed)  # strict JSON: no NaN token
    assert "NaN" not in text and "Infinity" not in text
    assert check_manifest(json.loads(text), "m.json")["fit"]["val_loss"] is None
    with pytest.raises(ArtifactError, match="NaN or Infinity"):  # a NaN token in the file is not ours
        check_manifest({**json.loads(text), "training_seconds": math.nan}, "m.json")


# --- every field --------------------------------------------------------------------------------------------


def walk(value, path=()):
    """(path, value) of every object member and list item of a JSON tree, containers included."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        yield path + (key,), item
        yield from walk(item, path + (key,))


def mutations(value):
    """(what, new value): the field deleted, of another type, out of any range a forecast writes."""
    yield "deleted", DELETE
    if isinstance(value, bool):
        yield from [("1 for true", int(value)), ("text", json.dumps(value))]
    elif isinstance(value, int):
        yield from [("text", str(value)), ("float", value + 0.5), ("true", True), ("-1", -1), ("1e9", 10**9),
                    ("1e30", 10**30)]
    elif isinstance(value, float):
        yield from [("text", str(value)), ("-1", -1.0), ("1e300", 1e300), ("NaN", math.nan), ("false", False)]
    elif isinstance(value, str):
        yield from [("number", 7), ("empty", ""), ("bogus", "bogus"), ("long", "x" * 5000), ("null", None)]
    elif value is None:
        yield from [("list", []), ("true", True), ("-1", -1)]
    elif isinstance(value, list):
        yield from [("object", {}), ("text", "x"), ("nested", [value])]
    else:
        yield from [("list", []), ("text", "x"), ("unknown key", {**value, "bogus": 1})]


def mutated(manifest: dict, path: tuple, new) -> dict:
    out = json.loads(json.dumps(manifest))
    parent = out
    for key in path[:-1]:
        parent = parent[key]
    if new is DELETE:
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return seal(out)


def chosen(kind: str, path: tuple) -> bool:
    """Every field of the snaive model, the kind-dependent ones of the others; of blend.errors' 77 alike entries,
    one stands for all (each mutation is one `forecast predict`: the test stays at a few seconds)."""
    if path[0] == "checksum" or (kind != "snaive" and path[0] not in KIND_FIELDS):
        return False
    return not (path[:2] == ("blend", "errors") and len(path) > 2 and path[2] != "0/0")


def dotted(path: tuple) -> str:
    return ".".join(str(k) for k in path)


@pytest.mark.parametrize("kind", KINDS)
def test_every_field_deleted_retyped_or_out_of_range_is_refused(copy_of, trained, kind):
    """Each mutation is re-sealed (the checksum is right): the schema alone must refuse it in one line, or
    (for a field no forecast reads) load and forecast exactly as before. Never a traceback, another exit code
    or another forecast."""
    model_dir, forecast = copy_of(kind), trained[kind][1]
    original = read(model_dir)
    cases = [((), "unknown key", None)] + [
        (path, what, new) for path, value in walk(original) if chosen(kind, path)
        for what, new in mutations(value) if not (path[0] == "series" and what == "bogus")]  # any text is an
    # id: "bogus" is another series' name, not a mutation
    wrong, accepted = [], []
    for path, what, new in cases:
        write(model_dir, {**seal(original), "bogus": 1} if not path else mutated(original, path, new))
        code, stdout, stderr = predict(model_dir)
        lines = stderr.strip().splitlines()
        if code == 1 and len(lines) == 1 and "Traceback" not in stderr and "retrain" in lines[0]:
            continue
        if code == 0 and stdout == forecast and dotted(path).startswith(NOT_READ_BY_PREDICT):
            accepted.append(f"{dotted(path)} {what}")
            continue
        wrong.append(f"{dotted(path)} {what}: exit {code}, {stderr.strip()[-300:]!r}")
    print(f"{kind}: {len(cases)} mutations, {len(accepted)} loaded with the same forecast: {accepted}")
    assert not wrong, f"{len(wrong)} of {len(cases)} mutations got through:\n" + "\n".join(wrong)
    assert len(accepted) < len(cases) // 3  # most are refused even where the forecast would not change


def test_messages_name_the_manifest_and_the_field(copy_of):
    model_dir = copy_of("gru")
    manifest = read(model_dir)
    cases = {
        ("window", "horizon"): ("1e9", 10**9, "field 'window.horizon' must be an integer from 1 to 10000, "
                                "found 1000000000"),
        ("window", "lookback"): ("-1", -1, "field 'window.lookback' must be an integer from 1 to"),
        ("window", "log"): ("1", 1, "field 'window.log' must be true or false, found 1"),
        ("kind",): ("bogus", "bogus", "field 'kind' must be one of auto, gru"),
        ("freq",): ("int:0", "int:0", "field 'freq' must be a frequency such as D"),
        ("window",): ("deleted", DELETE, "field 'window' is missing"),
        ("series", 0): ("a duplicate", "s1", "field 'series' must not hold the same entry twice"),
        ("fit", "refit_epochs"): ("past the best epoch", 50, "field 'fit.refit_epochs' must come with "
                                  "fit.refit_windows and be at most fit.best_epoch, found 50"),
    }
    for path, (_, new, expected) in cases.items():
        write(model_dir, mutated(manifest, path, new))
        message = refused(model_dir)
        assert message.startswith(f"Error: {model_dir / 'manifest.json'}: {expected}"), message
        assert message.strip().endswith("; retrain the model")


# --- the arrays ---------------------------------------------------------------------------------------------


def resave(model_dir, change, manifest_change=None) -> None:
    """Apply `change` to the arrays, save them, and record their new sha256 and size in a re-sealed manifest."""
    with np.load(model_dir / "arrays.npz") as data:
        arrays = {k: data[k] for k in data.files}
    change(arrays)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    (model_dir / "arrays.npz").write_bytes(buffer.getvalue())
    import hashlib

    manifest = read(model_dir)
    manifest["files"]["arrays.npz"] = {"sha256": hashlib.sha256(buffer.getvalue()).hexdigest(),
                                       "bytes": len(buffer.getvalue())}
    if manifest_change:
        manifest_change(manifest)
    write(model_dir, seal(manifest))


def drop_series(arrays):
    for name in ("scaler/loc", "scaler/scale", "history/values", "history/last_ds", "history/length"):
        arrays[name] = arrays[name][:-1]


def setter(name, value):
    def change(arrays):
        arrays[name] = value(arrays[name]) if callable(value) else value
    return change


def with_nan(index):
    def change(a):
        a = a.copy()
        a[index] = np.nan
        return a
    return change


ARRAY_CASES = {
    "one series fewer": ("gru", drop_series, "scaler/loc' has shape (2, 1) but the manifest implies (3, 1)"),
    "head for another horizon": ("gru", setter("params/head/kernel", lambda a: a[:, :-1]),
                                 "implies (8, 7) (a gru model: cell gru, hidden 8, layers 1, 5 features, horizon 7)"),
    "an extra ensemble member": ("gru", lambda a: a.update({"params/member1/head/bias": a["params/head/bias"]}),
                                 "is not part of this gru model"),
    "a missing weight": ("gru", lambda a: a.pop("params/head/bias"), "'params/head/bias' is missing"),
    "a reservoir of another size": ("esn", setter("params/W", lambda a: a[:-1, :-1]), "params/W"),
    "no Theta context": ("auto", lambda a: a.pop("context/values"), "'context/values' is missing"),
    "a Theta context of no steps": ("auto", setter("context/values", lambda a: a[:, :0]), "must hold 21 to"),
    "a Theta context without its last value": ("auto", setter("context/values", with_nan((0, -1))), "NaN only"),
    "float lengths": ("naive", setter("history/length", lambda a: a.astype(float)), "not integer"),
    "a length over the lookback": ("naive", setter("history/length", lambda a: a + 100), "outside 1..21"),
    "integer stamps for daily data": ("naive", setter("history/last_ds", lambda a: a.view(np.int64)),
                                      "not datetime64"),
    "NaT stamps": ("naive", setter("history/last_ds", lambda a: np.where(np.arange(len(a)) == 0, np.datetime64(
        "NaT"), a)), "NaT"),
    "stamps at the end of time": ("naive", setter("history/last_ds", lambda a: np.full(
        a.shape, np.iinfo(np.int64).max - 1).view(a.dtype)), "too near the end"),
    "NaN scale": ("snaive", setter("scaler/scale", with_nan(0)), "scaler/scale"),
    "zero scale": ("snaive", setter("scaler/scale", lambda a: a * 0), "scaler/scale"),
    "infinite loc": ("snaive", setter("scaler/loc", lambda a: a + np.inf), "scaler/loc"),
    "NaN inside the history": ("snaive", setter("history/values", with_nan((0, -1, 0))), "history/values"),
    "NaN weights": ("esn", setter("params/readout", with_nan(0)), "params/readout"),
    "scores of another horizon": ("snaive", setter("calibration/scores", lambda a: a[:, :-1]), "calibration/scores"),
    "negative scores": ("snaive", setter("calibration/scores", lambda a: -a - 1), "calibration/scores"),
    "a scores row too many": ("snaive", setter("calibration/scores", lambda a: np.concatenate([a, a[:1]])),
                              "calibration/scores"),
    "a zero error scale": ("snaive", setter("calibration/scale", lambda a: a * 0), "calibration/scale"),
    "error scales of another panel": ("snaive", setter("calibration/scale", lambda a: a[:-1]), "calibration/scale"),
    "a NaN error ratio": ("snaive", setter("calibration/ratio", with_nan(0)), "calibration/ratio"),
    "error ratios of another panel": ("snaive", setter("calibration/ratio", lambda a: a[:-1]), "calibration/ratio"),
    "a float sign": ("snaive", setter("history/nonnegative", lambda a: a.astype(float)), "history/nonnegative"),
    "a 2-D history": ("snaive", setter("history/values", lambda a: a[:, :, 0]), "history/values"),
}


@pytest.mark.parametrize("case", ARRAY_CASES)
def test_arrays_that_do_not_match_the_manifest_are_refused(copy_of, case):
    kind, change, expected = ARRAY_CASES[case]
    model_dir = copy_of(kind)
    resave(model_dir, change)
    message = refused(model_dir)
    assert f"{model_dir / 'arrays.npz'}: array '" in message and expected in message, message


def test_a_series_count_that_does_not_match_the_arrays_is_refused(copy_of):
    model_dir = copy_of("esn")
    resave(model_dir, lambda a: None, lambda m: m["series"].append("s9"))
    assert "'scaler/loc' has shape (3, 1) but the manifest implies (4, 1) (4 series, lookback 21" in refused(model_dir)


def test_covariates_in_the_manifest_but_not_in_the_arrays_are_refused(copy_of):
    model_dir = copy_of("gru")

    def with_covariate(m):
        m["covariates"] = m["data"]["covariates"] = ["rain"]
        m["n_features"] += 1

    resave(model_dir, lambda a: None, with_covariate)
    assert "array 'scaler/loc' has shape (3, 1)" in refused(model_dir)


@pytest.mark.parametrize("cell", ["gru", "lstm", "elman"])
@pytest.mark.parametrize("layers", [1, 3])
def test_expected_parameter_shapes_are_those_flax_builds(cell, layers):
    import jax
    from flax import nnx

    from forecast_cli.config import RecurrentConfig
    from forecast_cli.models import recurrent

    config = RecurrentConfig(cell=cell, hidden=5, layers=layers)
    model = nnx.eval_shape(lambda: recurrent.build(4, 3, config, jax.random.key(0)))
    built = {"/".join(str(k) for k in path): leaf.shape
             for path, leaf in jax.tree_util.tree_flatten_with_path(nnx.to_pure_dict(nnx.state(model)))[0]
             for path in [[getattr(p, "key", getattr(p, "idx", p)) for p in path]]}
    manifest = {"kind": cell, "model": config.to_dict(), "n_features": 4, "window": {"horizon": 3},
                "fit": {"members": 2}}
    expected = expected_params(manifest)
    assert {k: v for k, v in expected.items() if not k.startswith("member")} == built
    assert {k[len("member1/"):]: v for k, v in expected.items() if k.startswith("member1/")} == built


def reshaped(array: np.ndarray):
    """(what, array): one fewer along each axis, one axis more, another dtype."""
    for axis in range(array.ndim):
        if array.shape[axis]:
            yield f"one fewer along axis {axis}", np.delete(array, -1, axis=axis)
    yield "one axis more", array[..., None]
    yield "another dtype", array.astype(np.float32) if array.dtype.kind in "iuM" else array.astype(np.int64)


@pytest.mark.parametrize("kind", KINDS)
def test_every_array_of_another_shape_or_dtype_is_refused(copy_of, trained, kind):
    model_dir = copy_of(kind)
    with np.load(model_dir / "arrays.npz") as data:
        names = list(data.files)
        cases = [(name, what, new) for name in names for what, new in reshaped(data[name])]
    original = (model_dir / "manifest.json").read_text(), (model_dir / "arrays.npz").read_bytes()
    wrong = []
    for name, what, new in cases:
        resave(model_dir, setter(name, new))
        code, stdout, stderr = predict(model_dir)
        if not (code == 1 and len(stderr.strip().splitlines()) == 1 and f"array '{name}'" in stderr):
            wrong.append(f"{name} {what}: exit {code}, {stderr.strip()[-200:]!r}")
        (model_dir / "manifest.json").write_text(original[0])
        (model_dir / "arrays.npz").write_bytes(original[1])
    assert not wrong, f"{len(wrong)} of {len(cases)} got through:\n" + "\n".join(wrong)
