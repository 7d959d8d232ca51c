"""``skhead2toe predict``: a fitted model's predictions of images, as CSV."""

import csv
import io
import shutil

import joblib
import numpy as np
import pytest
from helpers import deny_writes_in
from PIL import Image

from skhead2toe._cli import main

TINY = [
    "--backbone",
    "test_resnet",
    "--random-weights",
    "--image-size",
    "32",
    "--target-size",
    "64",
    "--device",
    "cpu",
]
FAST_FIT = ["--cv", "2", "--alphas", "3", "--keep-fractions", "0.5,1"]
CLASSES = ["cat", "dog", "owl"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """root/<class>/<image>.png: 3 classes of 6 images with class-dependent colour.

    root/cat also holds what a folder search skips: a hidden file, a hidden
    folder and a file that is not an image.
    """
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for k, name in enumerate(CLASSES):
        (root / name).mkdir()
        for i in range(6):
            pixels = rng.integers(0, 60, (20, 20, 3)) + 90 * k
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")
    (root / "cat" / "notes.txt").write_text("not an image")
    shutil.copy(root / "cat" / "0.png", root / "cat" / "._0.png")
    (root / "cat" / ".ipynb_checkpoints").mkdir()
    shutil.copy(root / "cat" / "1.png", root / "cat" / ".ipynb_checkpoints" / "1.png")
    return root


@pytest.fixture(scope="module")
def model_file(folder, tmp_path_factory):
    """A featurizer + head pipeline, as ``skhead2toe fit <folder>`` writes it."""
    out = tmp_path_factory.mktemp("model") / "model.joblib"
    assert main(["fit", str(folder), "-o", str(out), *TINY, *FAST_FIT]) == 0
    return out


@pytest.fixture(scope="module")
def model(model_file):
    return joblib.load(model_file)


@pytest.fixture(scope="module")
def features_file(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("features") / "features.npz"
    assert main(["extract", str(folder), "-o", str(out), *TINY]) == 0
    return out


@pytest.fixture(scope="module")
def head_file(features_file):
    """A head alone, as ``skhead2toe fit <features.npz>`` writes it."""
    out = features_file.parent / "head.joblib"
    assert main(["fit", str(features_file), "-o", str(out), *FAST_FIT]) == 0
    return out


def _images(folder, name):
    return [str(folder / name / f"{i}.png") for i in range(6)]


def _read_csv(text):
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], rows[1:]


def _predict(argv, out):
    assert main(["predict", *argv, "-o", str(out)]) == 0
    return _read_csv(out.read_text())


def _one_error_line(capsys):
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    assert err.startswith("skhead2toe predict: error: ")
    return err


def _probabilities(rows, start=2):
    return np.array([[float(v) for v in row[start:]] for row in rows])


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if images are read: errors must come before any work."""
    from skhead2toe import MultiLayerFeaturizer

    def refuse(*args, **kwargs):
        raise AssertionError("work started before the error")

    monkeypatch.setattr(MultiLayerFeaturizer, "transform", refuse)


# ------------------------------------------------------- a pipeline on images
def test_files_folder_and_glob_give_the_models_predictions(
    folder, model_file, model, tmp_path, capsys
):
    glob = str(folder / "dog" / "*.png")  # quoted: expanded by skhead2toe
    owl = str(folder / "owl" / "3.png")
    argv = [str(model_file), str(folder / "cat"), glob, owl]
    header, rows = _predict(argv, tmp_path / "p.csv")
    paths = _images(folder, "cat") + _images(folder, "dog") + [owl]
    assert header == ["path", "label"] + [f"proba_{c}" for c in model.classes_]
    assert [row[0] for row in rows] == paths  # hidden files and notes.txt skipped
    assert [row[1] for row in rows] == list(model.predict(paths))
    np.testing.assert_allclose(
        _probabilities(rows), model.predict_proba(paths), rtol=1e-6, atol=1e-9
    )
    assert capsys.readouterr().out == (
        f"wrote {tmp_path / 'p.csv'}: 13 images, cat 6, dog 6, owl 1\n"
    )


def test_a_folder_is_searched_recursively_and_each_image_is_listed_once(
    folder, model_file, tmp_path
):
    glob = str(folder / "**" / "*.png")
    argv = [str(model_file), str(folder), glob, str(folder / "owl" / "0.png")]
    header, rows = _predict(argv, tmp_path / "p.csv")
    expected = [path for name in CLASSES for path in _images(folder, name)]
    assert [row[0] for row in rows] == expected
    assert [row[1] for row in rows] == [n for n in CLASSES for _ in range(6)]


def test_top_k_columns_are_the_most_probable_classes(
    folder, model_file, model, tmp_path
):
    paths = _images(folder, "owl")[:3] + _images(folder, "cat")[:3]
    header, rows = _predict(
        [str(model_file), *paths, "--top-k", "2"], tmp_path / "p.csv"
    )
    assert header == [
        "path",
        "label",
        "top1_label",
        "top1_proba",
        "top2_label",
        "top2_proba",
    ]
    proba = model.predict_proba(paths)
    order = np.argsort(-proba, axis=1)[:, :2]
    for row, p, idx in zip(rows, proba, order, strict=True):
        assert row[2] == row[1]  # the top class is the predicted label
        assert [row[2], row[4]] == list(model.classes_[idx])
        np.testing.assert_allclose([float(row[3]), float(row[5])], p[idx], rtol=1e-6)
        assert float(row[3]) >= float(row[5])


@pytest.mark.parametrize(
    ("k", "message"),
    [("4", "--top-k 4 exceeds the 3 classes of model"), ("0", "positive integer")],
)
def test_top_k_is_checked_against_the_classes(
    k, message, folder, model_file, tmp_path, capsys, no_work
):
    out = tmp_path / "p.csv"
    argv = ["predict", str(model_file), str(folder), "--top-k", k, "-o", str(out)]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_dash_writes_the_csv_to_stdout(folder, model_file, tmp_path, capsys):
    paths = _images(folder, "dog")[:2]
    _predict([str(model_file), *paths], tmp_path / "p.csv")
    capsys.readouterr()
    assert main(["predict", str(model_file), *paths, "-o", "-"]) == 0
    out = capsys.readouterr().out
    assert out == (tmp_path / "p.csv").read_text()
    assert out.startswith("path,label,proba_cat,")


def test_batch_size_and_device_are_passed_to_the_featurizer(
    folder, model_file, tmp_path, monkeypatch
):
    from skhead2toe import MultiLayerFeaturizer

    seen = []
    transform = MultiLayerFeaturizer.transform

    def spy(self, X, out=None):
        seen.append((self.batch_size, self.device, self.progress, len(X)))
        return transform(self, X, out)

    monkeypatch.setattr(MultiLayerFeaturizer, "transform", spy)
    argv = [str(model_file), str(folder / "cat"), "--batch-size", "4"]
    _predict([*argv, "--device", "cpu"], tmp_path / "p.csv")
    assert seen == [(4, "cpu", "auto", 6)]


# --------------------------------------------------- a head fitted on features
def test_a_head_alone_says_it_takes_features(folder, head_file, tmp_path, capsys):
    out = tmp_path / "p.csv"
    with pytest.raises(SystemExit) as exc:
        main(["predict", str(head_file), str(folder), "-o", str(out)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "is a head fitted on features" in err and "--features FILE.npz" in err
    assert list(tmp_path.iterdir()) == []


def test_a_head_alone_predicts_from_features(
    features_file, head_file, tmp_path, capsys
):
    header, rows = _predict(
        [str(head_file), "--features", str(features_file)], tmp_path / "p.csv"
    )
    head = joblib.load(head_file)
    with np.load(features_file) as data:
        X, paths = data["X"], list(data["paths"])
    assert header == ["path", "label"] + [f"proba_{c}" for c in head.classes_]
    assert [row[0] for row in rows] == paths
    assert [row[1] for row in rows] == list(head.predict(X))
    np.testing.assert_array_equal(_probabilities(rows), head.predict_proba(X))


def test_features_without_paths_name_rows_by_their_index(
    features_file, head_file, tmp_path
):
    with np.load(features_file) as data:
        X = data["X"][:5]
    bare = tmp_path / "bare.npz"
    np.savez(bare, X=X)
    header, rows = _predict(
        [str(head_file), "--features", str(bare)], tmp_path / "p.csv"
    )
    assert header[:2] == ["row", "label"]
    assert [row[0] for row in rows] == ["0", "1", "2", "3", "4"]
    assert [row[1] for row in rows] == list(joblib.load(head_file).predict(X))


def test_wrong_feature_count_names_the_file(features_file, head_file, tmp_path, capsys):
    with np.load(features_file) as data:
        X = data["X"]
    narrow = tmp_path / "narrow.npz"
    np.savez(narrow, X=X[:, :10])
    out = tmp_path / "p.csv"
    assert main(["predict", str(head_file), "--features", str(narrow), "-o", str(out)])
    err = _one_error_line(capsys)
    assert f"features file {str(narrow)!r} has 10 features per image" in err
    assert f"takes {X.shape[1]}" in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--device", "cpu"], "--device applies to images"),
        (["--skip-bad", "--batch-size", "2"], "--batch-size and --skip-bad apply"),
    ],
)
def test_image_options_are_refused_for_a_head_alone(
    extra, message, features_file, head_file, tmp_path, capsys
):
    argv = ["predict", str(head_file), "--features", str(features_file), *extra]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "-o", str(tmp_path / "p.csv")])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_a_pipeline_refuses_features(features_file, model_file, tmp_path, capsys):
    argv = ["predict", str(model_file), "--features", str(features_file)]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "-o", str(tmp_path / "p.csv")])
    assert exc.value.code == 2
    assert "is a pipeline from images" in capsys.readouterr().err


# ------------------------------------------------------------------ errors
def _bad_models(tmp_path, model_file):
    text = tmp_path / "notes.joblib"
    text.write_text("not a model\n")
    damaged = tmp_path / "damaged.joblib"
    damaged.write_bytes(model_file.read_bytes()[:200])
    other = tmp_path / "dict.joblib"
    joblib.dump({"classes_": [0, 1]}, other)
    return [
        (tmp_path / "missing.joblib", "does not exist"),
        (tmp_path, "is a folder"),
        (text, "cannot load model file"),
        (damaged, "cannot load model file"),
        (other, "holds a dict, not a fitted classifier"),
    ]


def test_what_is_not_a_model_is_one_line_naming_it(
    folder, model_file, tmp_path, capsys, no_work
):
    out = tmp_path / "p.csv"
    for path, message in _bad_models(tmp_path, model_file):
        assert main(["predict", str(path), str(folder), "-o", str(out)]) == 1
        err = _one_error_line(capsys)
        assert repr(str(path)) in err and message in err, err
    assert not out.exists()


def test_images_that_do_not_exist_are_one_line(
    folder, model_file, tmp_path, capsys, no_work
):
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "notes.txt").write_text("no image")
    cases = [
        (str(tmp_path / "missing.png"), "image file or folder"),
        (str(folder / "cat" / "*.jpg"), "no image file matches"),
        (str(empty), "no images (.bmp"),
    ]
    out = tmp_path / "p.csv"
    for item, message in cases:
        assert main(["predict", str(model_file), item, "-o", str(out)]) == 1
        err = _one_error_line(capsys)
        assert message in err and repr(item) in err, err
    assert not out.exists()


def test_no_images_and_a_bad_suffix_are_usage_errors(model_file, tmp_path, capsys):
    for argv in (
        [str(model_file), "-o", str(tmp_path / "p.csv")],
        [str(model_file), str(tmp_path), "-o", str(tmp_path / "p.txt")],
    ):
        with pytest.raises(SystemExit) as exc:
            main(["predict", *argv])
        assert exc.value.code == 2
        err = capsys.readouterr().err
        assert "give the images" in err or "must end with .csv" in err, err


def test_unwritable_output_fails_before_any_work_and_leaves_nothing(
    folder, model_file, tmp_path, capsys, monkeypatch, no_work
):
    readonly = tmp_path / "ro"
    readonly.mkdir()
    deny_writes_in(readonly, monkeypatch)
    out = readonly / "p.csv"
    assert main(["predict", str(model_file), str(folder), "-o", str(out)]) == 1
    err = _one_error_line(capsys)
    assert str(out) in err and "not writable" in err
    assert list(readonly.iterdir()) == []


def test_an_unreadable_image_is_named_and_skip_bad_skips_it(
    folder, model_file, model, tmp_path, capsys
):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    out = tmp_path / "p.csv"
    out.write_text("previous\n")
    good = _images(folder, "owl")[:2]
    assert main(["predict", str(model_file), str(bad), *good, "-o", str(out)]) == 1
    err = _one_error_line(capsys)
    assert str(bad) in err and "--skip-bad" in err
    assert out.read_text() == "previous\n"  # left as it was
    argv = [str(model_file), str(bad), *good, "--skip-bad"]
    header, rows = _predict(argv, out)
    assert [row[0] for row in rows] == good
    assert [row[1] for row in rows] == list(model.predict(good))
    assert f"skhead2toe predict: skipped {bad}" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.png", "p.csv"]


def test_ctrl_c_during_extraction_leaves_nothing(
    folder, model_file, tmp_path, capsys, monkeypatch
):
    from skhead2toe import MultiLayerFeaturizer

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(MultiLayerFeaturizer, "transform", interrupt)
    out = tmp_path / "p.csv"
    assert main(["predict", str(model_file), str(folder), "-o", str(out)]) == 130
    assert capsys.readouterr().err == "skhead2toe: interrupted\n"
    assert list(tmp_path.iterdir()) == []


def test_help_shows_predict_and_its_examples(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "predict" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["predict", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "skhead2toe predict model.joblib new/ -o predictions.csv" in out
    assert "--top-k K" in out and "--features FILE.npz" in out


def test_a_failed_write_leaves_the_old_output_and_no_temporary_file(
    folder, model_file, tmp_path, capsys, monkeypatch
):
    import os

    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    out = tmp_path / "p.csv"
    out.write_text("previous\n")
    argv = ["predict", str(model_file), *_images(folder, "cat")[:2], "-o", str(out)]
    assert main(argv) == 1
    err = _one_error_line(capsys)
    assert f"cannot write {str(out)!r}: No space left on device" in err
    assert out.read_text() == "previous\n"
    assert [p.name for p in tmp_path.iterdir()] == ["p.csv"]


@pytest.mark.parametrize(
    ("device", "status", "message"),
    [
        ("cuda", 1, "--device cuda: "),
        ("gpu0", 2, "--device 'gpu0' is not a torch device"),
    ],
)
def test_a_device_this_machine_lacks_fails_before_any_work(
    device, status, message, folder, model_file, tmp_path, capsys, monkeypatch, no_work
):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    argv = ["predict", str(model_file), str(folder), "--device", device]
    argv += ["-o", str(tmp_path / "p.csv")]
    if status == 2:
        with pytest.raises(SystemExit) as exc:
            main(argv)
        assert exc.value.code == 2
    else:
        assert main(argv) == 1
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
