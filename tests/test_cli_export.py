"""``skhead2toe export``: a fitted pipeline as an ONNX file that matches it."""

import json

import joblib
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from helpers import deny_writes_in
from PIL import Image

from skhead2toe._cli import main

SIZE = 32  # images are written at the model's input size: no resizing
TINY = [
    "--backbone",
    "test_resnet",
    "--random-weights",
    "--image-size",
    str(SIZE),
    "--target-size",
    "64",
    "--device",
    "cpu",
]
FAST_FIT = ["--cv", "2", "--alphas", "3", "--keep-fractions", "0.5,1"]
CLASSES = ["cat", "dog", "owl"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """root/<class>/<i>.png: 3 classes of 6 RGB images with class-dependent colour."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for k, name in enumerate(CLASSES):
        (root / name).mkdir()
        for i in range(6):
            pixels = rng.integers(0, 60, (SIZE, SIZE, 3)) + 90 * k
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")
    return root


@pytest.fixture(scope="module")
def paths(folder):
    return sorted(str(p) for p in folder.glob("*/*.png"))


@pytest.fixture(scope="module")
def model_file(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "model.joblib"
    assert main(["fit", str(folder), "-o", str(out), *TINY, *FAST_FIT]) == 0
    return out


@pytest.fixture(scope="module")
def exported(model_file, tmp_path_factory):
    """``skhead2toe export model.joblib -o model.onnx --info model.json``."""
    folder = tmp_path_factory.mktemp("onnx")
    out, info = folder / "model.onnx", folder / "model.json"
    argv = ["export", str(model_file), "-o", str(out), "--info", str(info)]
    assert main(argv) == 0
    return out, json.loads(info.read_text())


def _model_input(paths):
    """The ONNX input of image files already at the input size: RGB in [0, 1]."""
    images = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])
    return (images.transpose(0, 3, 1, 2) / 255.0).astype(np.float32)


def _status(argv):
    """``main(argv)``'s exit status, usage errors (argparse's exit) included."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def _one_error_line(capsys):
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("skhead2toe export: error: ")
    return err


def test_the_onnx_model_gives_the_pipelines_probabilities(exported, model_file, paths):
    out, info = exported
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (proba,) = session.run(None, {"images": _model_input(paths)})
    model = joblib.load(model_file)
    np.testing.assert_allclose(proba, model.predict_proba(paths), atol=1e-4)
    assert info["classes"] == list(model.classes_)
    assert info["input_shape"][1:] == [3, SIZE, SIZE]


def test_the_opset_is_recorded_in_the_file_and_the_summary(exported):
    out, info = exported
    proto = onnx.load(str(out))
    default_domain = {o.domain: o.version for o in proto.opset_import}[""]
    assert default_domain == info["opset"]
    meta = {p.key: p.value for p in proto.metadata_props}
    assert str(info["opset"]) in meta.values()


def test_a_given_opset_is_used(model_file, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", str(model_file), "-o", str(out), "--opset", "18"]) == 0
    proto = onnx.load(str(out))
    assert {o.domain: o.version for o in proto.opset_import}[""] == 18
    printed = capsys.readouterr().out
    assert "opset 18" in printed and str(out) in printed


def test_a_head_fitted_on_features_is_refused_without_output(folder, tmp_path, capsys):
    features = tmp_path / "f.npz"
    assert main(["extract", str(folder), "-o", str(features), *TINY]) == 0
    head = tmp_path / "head.joblib"
    assert main(["fit", str(features), "-o", str(head), *FAST_FIT]) == 0
    capsys.readouterr()
    out = tmp_path / "m.onnx"
    assert main(["export", str(head), "-o", str(out)]) == 1
    err = _one_error_line(capsys)
    assert "fitted on features" in err and "head.joblib" in err
    assert not out.exists()


def test_bad_output_suffixes_are_usage_errors(model_file, tmp_path, capsys):
    assert _status(["export", str(model_file), "-o", str(tmp_path / "m.txt")]) == 2
    assert ".onnx" in _one_error_line(capsys)
    argv = ["export", str(model_file), "-o", str(tmp_path / "m.onnx")]
    assert _status([*argv, "--info", str(tmp_path / "i.txt")]) == 2
    assert ".json" in _one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []


def test_a_missing_model_file_names_it(tmp_path, capsys):
    missing = tmp_path / "nope.joblib"
    assert main(["export", str(missing), "-o", str(tmp_path / "m.onnx")]) == 1
    assert "nope.joblib" in _one_error_line(capsys)


def test_an_unwritable_folder_fails_before_loading_the_model(
    model_file, tmp_path, monkeypatch, capsys
):
    def refuse(*args, **kwargs):
        raise AssertionError("the model was loaded before the output was checked")

    monkeypatch.setattr(joblib, "load", refuse)
    locked = tmp_path / "locked"
    locked.mkdir()
    deny_writes_in(locked, monkeypatch)
    assert main(["export", str(model_file), "-o", str(locked / "m.onnx")]) == 1
    _one_error_line(capsys)
    assert list(locked.iterdir()) == []


def test_help_describes_the_input_contract(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["export", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "float32" in text and "[0, 1]" in text and "probabilities" in text
