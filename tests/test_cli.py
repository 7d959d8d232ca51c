"""The ``skhead2toe`` command line: demo, extract and fit, and their errors."""

import json
import subprocess
import sys

import joblib
import numpy as np
import pytest
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


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """root/<class>/<image>.png: 3 classes of 8 images with class-dependent colour."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for k, name in enumerate(["cat", "dog", "owl"]):
        (root / name).mkdir()
        for i in range(8):
            pixels = rng.integers(0, 60, (20, 20, 3)) + 90 * k
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.png")
    return root


def _leftovers(path):
    return sorted(p.name for p in path.iterdir() if p.name.startswith("."))


def test_help_lists_commands_and_examples(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "extract", "fit"):
        assert command in out
    for command in ("extract", "fit"):
        with pytest.raises(SystemExit) as exc:
            main([command, "--help"])
        assert exc.value.code == 0
        assert f"skhead2toe {command} " in capsys.readouterr().out


def test_python_dash_m_runs_the_cli():
    done = subprocess.run(
        [sys.executable, "-m", "skhead2toe", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0
    assert "extract" in done.stdout


def test_extract_folder_writes_features_and_labels(folder, tmp_path, capsys):
    out = tmp_path / "feats.npz"
    assert main(["extract", str(folder), "-o", str(out), *TINY]) == 0
    data = np.load(out)
    X, y = data["X"], data["y"]
    assert X.dtype == np.float32 and X.shape[0] == 24
    assert sorted(set(y)) == ["cat", "dog", "owl"]
    assert len(data["feature_names"]) == X.shape[1]
    assert data["feature_groups"].max() == len(data["layer_names"]) - 1
    assert data["paths"][0].endswith(".png")
    assert "24 images" in capsys.readouterr().out
    assert _leftovers(tmp_path) == []


def test_extract_files_without_labels(folder, tmp_path):
    files = sorted(str(p) for p in (folder / "cat").iterdir())[:3]
    out = tmp_path / "f.npz"
    assert main(["extract", *files, "-o", str(out), *TINY]) == 0
    data = np.load(out)
    assert data["X"].shape[0] == 3
    assert "y" not in data.files


def test_extract_missing_file_is_an_error_naming_it(folder, tmp_path, capsys):
    out = tmp_path / "f.npz"
    missing = str(folder / "cat" / "nope.png")
    good = str(folder / "cat" / "0.png")
    assert main(["extract", good, missing, "-o", str(out), *TINY]) == 1
    err = capsys.readouterr().err
    assert "skhead2toe extract: error" in err and "nope.png" in err
    assert not out.exists()
    assert _leftovers(tmp_path) == []


def test_extract_unreadable_image_names_the_file(folder, tmp_path, capsys):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    out = tmp_path / "f.npz"
    assert main(["extract", str(bad), "-o", str(out), *TINY]) == 1
    assert "broken.png" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["extract", "x.png", "-o", "out.txt"], "must end with .npz"),
        (["fit", "feats.npz", "-o", "model.pkl"], "must end with .joblib"),
        (["fit", "feats.npz", "-o", "m.joblib", "--keep-fractions", "0.5,2"], "(0, 1]"),
        (["fit", "feats.npz", "-o", "m.joblib", "--cv", "0"], "positive integer"),
        (["demo", "--dataset", "imagenet"], "invalid choice"),
    ],
)
def test_bad_options_exit_with_status_2(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_weights_and_random_weights_exclude_each_other(folder, tmp_path, capsys):
    argv = ["extract", str(folder), "-o", str(tmp_path / "f.npz")]
    with pytest.raises(SystemExit) as exc:
        main([*argv, *TINY, "--weights", str(tmp_path / "w.pth")])
    assert exc.value.code == 2
    assert "exclude each other" in capsys.readouterr().err


def test_fit_on_features_saves_a_head_with_cv_accuracy(folder, tmp_path, capsys):
    feats = tmp_path / "feats.npz"
    main(["extract", str(folder), "-o", str(feats), *TINY])
    model = tmp_path / "head.joblib"
    argv = ["fit", str(feats), "-o", str(model), "--cv", "3", "--alphas", "4"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "cross-validated accuracy" in out
    head = joblib.load(model)
    data = np.load(feats)
    assert set(head.predict(data["X"])) <= {"cat", "dog", "owl"}
    # The printed score is the head's best mean CV score.
    printed = float(out.split("cross-validated accuracy ")[1].split()[0])
    assert printed == pytest.approx(head.mean_scores_.max(), abs=1e-4)


def test_fit_layer_groups_selects_whole_layers(folder, tmp_path):
    feats = tmp_path / "feats.npz"
    main(["extract", str(folder), "-o", str(feats), *TINY])
    model = tmp_path / "head.joblib"
    argv = ["fit", str(feats), "-o", str(model), "--cv", "3", "--layer-groups"]
    assert main(argv) == 0
    head = joblib.load(model)
    groups = np.load(feats)["feature_groups"]
    selected = head.selected_features_
    for g in np.unique(groups):
        assert len(set(selected[groups == g])) == 1  # all or nothing per layer


def test_fit_on_image_folder_saves_a_pipeline_that_predicts_images(folder, tmp_path):
    model = tmp_path / "model.joblib"
    argv = ["fit", str(folder), "-o", str(model), "--cv", "3", "--alphas", "4"]
    assert main([*argv, *TINY]) == 0
    pipe = joblib.load(model)
    files = [str(folder / "dog" / "0.png"), str(folder / "owl" / "1.png")]
    assert pipe.predict(files).shape == (2,)
    assert pipe.named_steps["features"].n_features_out_ > 0


def test_fit_errors(folder, tmp_path, capsys):
    model = tmp_path / "m.joblib"
    assert main(["fit", str(tmp_path / "none.npz"), "-o", str(model)]) == 1
    assert "does not exist" in capsys.readouterr().err
    unlabeled = tmp_path / "x.npz"
    np.savez(unlabeled, X=np.zeros((4, 3), np.float32))
    assert main(["fit", str(unlabeled), "-o", str(model)]) == 1
    assert "lacks ['y']" in capsys.readouterr().err
    text = tmp_path / "x.csv"
    text.write_text("1,2\n")
    with pytest.raises(SystemExit) as exc:
        main(["fit", str(text), "-o", str(model)])
    assert exc.value.code == 2
    assert not model.exists()
    assert _leftovers(tmp_path) == []


def test_demo_writes_table_results_and_plots(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--n-train", "150", "--n-test", "100", "--cv", "2"]
    assert main([*argv, "--output-dir", str(out), *TINY]) == 0
    printed = capsys.readouterr().out
    for method in ("Linear", "All layers + L2", "Head2Toe", "domain affinity"):
        assert method in printed
    results = json.loads((out / "results.json").read_text())
    assert [r["method"] for r in results["methods"]] == [
        "Linear",
        "All layers + L2",
        "Head2Toe",
    ]
    assert results["n_train"] == 150 and results["n_test"] == 100
    for row in results["methods"]:
        assert 0 <= row["test_accuracy"] <= 1 and row["n_features"] > 0
    assert results["methods"][1]["n_features"] == results["n_features"]
    h2t_acc = results["methods"][2]["test_accuracy"]
    for row, cmp in zip(results["methods"][:2], results["head2toe_vs"], strict=True):
        assert cmp["other"] == row["method"]
        assert cmp["difference"] == pytest.approx(h2t_acc - row["test_accuracy"])
        assert 0 <= cmp["p_value"] <= 1
        assert "McNemar p" in printed
    for name in ("layer_importances", "transferability"):
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert str(png) in printed
    assert _leftovers(out) == []
