"""The ``skhead2toe`` command line: demo, extract and fit, and their errors."""

import json
import os
import shutil
import stat
import subprocess
import sys

import joblib
import numpy as np
import pytest
from helpers import deny_writes_in
from PIL import Image

from skhead2toe._cli import main
from skhead2toe._demo import split_timings

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
    # The printed score is the chosen candidate's mean CV score, and its kind.
    printed = float(out.split("cross-validated accuracy ")[1].split()[0])
    best = head.cv_results_["mean_test_score"][head.best_index_]
    assert printed == pytest.approx(best, abs=1e-4)
    assert f": {head.candidate_} (" in out
    # the layers come from the file, so the last-layer baseline is a candidate
    np.testing.assert_array_equal(head.layers_, data["feature_groups"])
    assert "last layer" in set(head.cv_results_["candidate"])


def test_fit_selection_1se_uses_no_more_features(folder, tmp_path):
    feats = tmp_path / "feats.npz"
    main(["extract", str(folder), "-o", str(feats), *TINY])
    heads = {}
    for rule in ("best", "1se"):
        model = tmp_path / f"{rule}.joblib"
        argv = ["fit", str(feats), "-o", str(model), "--cv", "3", "--alphas", "3"]
        assert main([*argv, "--selection", rule]) == 0
        heads[rule] = joblib.load(model)
    assert heads["1se"].selection == "1se"
    n_best = heads["best"].selected_features_.sum()
    assert heads["1se"].selected_features_.sum() <= n_best


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
    # the random-weights extraction is a stage of its own, counted as extraction
    timings = results["timings_s"]
    assert "extracting random-weights features" in timings
    extraction, head = split_timings(timings)
    assert extraction == pytest.approx(
        timings["extracting features"] + timings["extracting random-weights features"]
    )
    assert head == pytest.approx(
        sum(timings[k] for k in ("Linear", "All layers + L2", "Head2Toe"))
        + timings["domain affinity"]
        + timings["transferability probes (pretrained and random weights)"]
    )
    assert f"head work: {head:.1f} s" in printed


# --------------------------------------------------------------------------
# Errors are one line (issue 16): exit 1 for a failed job, 2 for bad options,
# 130 for Ctrl-C; a bug (an unexpected exception type) keeps its traceback.


def _one_error_line(capsys, command):
    """The single stderr line, checked to be ``skhead2toe <command>: error: ...``."""
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"skhead2toe {command}: error: "), lines
    return lines[0]


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if images are listed or features extracted."""

    def refuse(*args, **kwargs):
        raise AssertionError("the command did work before checking its options")

    from skhead2toe import MultiLayerFeaturizer, datasets

    monkeypatch.setattr(MultiLayerFeaturizer, "fit_transform", refuse)
    monkeypatch.setattr(MultiLayerFeaturizer, "fit", refuse)
    monkeypatch.setattr(datasets, "load_image_folder", refuse)


def _without_cuda(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


@pytest.mark.parametrize("command", ["extract", "fit"])
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_device_cuda_without_cuda_fails_early(
    command, device, folder, tmp_path, capsys, monkeypatch, no_work
):
    _without_cuda(monkeypatch)
    suffix = ".npz" if command == "extract" else ".joblib"
    out = tmp_path / f"out{suffix}"
    argv = [command, str(folder), "-o", str(out), *TINY, "--device", device]
    assert main(argv) == 1
    line = _one_error_line(capsys, command)
    assert f"--device {device}" in line and "CUDA is not available" in line
    assert "--device cpu" in line
    assert list(tmp_path.iterdir()) == []


def test_device_index_beyond_the_gpus_fails_early(
    folder, tmp_path, capsys, monkeypatch, no_work
):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    argv = ["extract", str(folder), "-o", str(tmp_path / "f.npz"), *TINY]
    assert main([*argv, "--device", "cuda:2"]) == 1
    assert "2 CUDA devices (cuda:0 to cuda:1)" in _one_error_line(capsys, "extract")


def test_device_that_is_no_torch_device_is_a_usage_error(
    folder, tmp_path, capsys, no_work
):
    argv = ["extract", str(folder), "-o", str(tmp_path / "f.npz"), *TINY]
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--device", "gpu0"])
    assert exc.value.code == 2
    assert "'gpu0' is not a torch device" in _one_error_line(capsys, "extract")


def _bad_weights(tmp_path):
    import torch

    files = {
        "empty.pth": b"",
        "random.pth": np.random.default_rng(0).bytes(2000),
        "random.safetensors": np.random.default_rng(1).bytes(2000),
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")  # not a state dict
    torch.save({"fc.weight": torch.zeros(3)}, tmp_path / "other_model.pth")
    return [*files, "tensor.pth", "other_model.pth"]


@pytest.mark.filterwarnings("ignore")
def test_bad_weights_files_are_one_line_naming_the_file(folder, tmp_path, capsys):
    base = [a for a in TINY if a != "--random-weights"]
    for name in _bad_weights(tmp_path):
        out = tmp_path / "f.npz"
        argv = ["extract", str(folder), "-o", str(out), *base]
        assert main([*argv, "--weights", str(tmp_path / name)]) == 1, name
        line = _one_error_line(capsys, "extract")
        assert name in line and "weights" in line, line
        assert len(line) < 1600
        assert not out.exists()


@pytest.mark.filterwarnings("ignore")
def test_unreachable_hub_is_one_line(folder, tmp_path, capsys, monkeypatch):
    import timm

    create = timm.create_model

    def offline(name, *, pretrained=False, **kwargs):
        if pretrained and not kwargs.get("pretrained_cfg_overlay"):
            raise ConnectionError("cannot reach https://huggingface.co (offline)")
        return create(name, pretrained=pretrained, **kwargs)

    monkeypatch.setattr(timm, "create_model", offline)
    base = [a for a in TINY if a != "--random-weights"]
    argv = ["extract", str(folder), "-o", str(tmp_path / "f.npz"), *base]
    assert main(argv) == 1
    line = _one_error_line(capsys, "extract")
    assert "test_resnet" in line
    assert list(tmp_path.iterdir()) == []


def test_multi_line_messages_are_joined_into_one(folder, tmp_path, capsys, monkeypatch):
    from skhead2toe import MultiLayerFeaturizer

    def fails(self, X, y=None):
        raise RuntimeError("first line\n\tsecond line\n" + "x" * 5000)

    monkeypatch.setattr(MultiLayerFeaturizer, "fit_transform", fails)
    argv = ["extract", str(folder), "-o", str(tmp_path / "f.npz"), *TINY]
    assert main(argv) == 1
    line = _one_error_line(capsys, "extract")
    assert "first line second line xxx" in line and line.endswith("...")
    assert len(line) < 1600


@pytest.mark.parametrize(
    "error", [EOFError(), MemoryError(), OSError(28, "No space left on device")]
)
def test_user_error_types_are_one_line(error, folder, tmp_path, capsys, monkeypatch):
    from skhead2toe import MultiLayerFeaturizer

    def fails(self, X, y=None):
        raise error

    monkeypatch.setattr(MultiLayerFeaturizer, "fit_transform", fails)
    argv = ["extract", str(folder), "-o", str(tmp_path / "f.npz"), *TINY]
    assert main(argv) == 1
    line = _one_error_line(capsys, "extract")
    assert line.split("error: ")[1]  # something is said, even for a bare EOFError


@pytest.mark.parametrize("error", [KeyError("x"), TypeError("x"), AttributeError("x")])
def test_a_bug_keeps_its_traceback(error, folder, tmp_path, monkeypatch):
    from skhead2toe import MultiLayerFeaturizer

    def fails(self, X, y=None):
        raise error

    monkeypatch.setattr(MultiLayerFeaturizer, "fit_transform", fails)
    argv = ["extract", str(folder), "-o", str(tmp_path / "f.npz"), *TINY]
    with pytest.raises(type(error)):
        main(argv)
    assert list(tmp_path.iterdir()) == []


def _interrupt(*args, **kwargs):
    raise KeyboardInterrupt


def test_ctrl_c_during_extraction(folder, tmp_path, capsys, monkeypatch):
    from skhead2toe import MultiLayerFeaturizer

    monkeypatch.setattr(MultiLayerFeaturizer, "fit_transform", _interrupt)
    argv = ["extract", str(folder), "-o", str(tmp_path / "f.npz"), *TINY]
    assert main(argv) == 130
    assert capsys.readouterr().err == "skhead2toe: interrupted\n"
    assert list(tmp_path.iterdir()) == []


def _write_half_then(error):
    def write(*args, **kwargs):  # np.savez(file, ...) or joblib.dump(obj, file)
        file = next(a for a in args if hasattr(a, "write"))
        file.write(b"PK\x03\x04 half a file")
        raise error

    return write


@pytest.mark.parametrize("command", ["extract", "fit"])
def test_ctrl_c_while_writing_leaves_nothing(
    command, folder, tmp_path, capsys, monkeypatch
):
    if command == "extract":
        monkeypatch.setattr(np, "savez", _write_half_then(KeyboardInterrupt))
        argv = ["extract", str(folder), "-o", str(tmp_path / "f.npz"), *TINY]
    else:
        monkeypatch.setattr(joblib, "dump", _write_half_then(KeyboardInterrupt))
        argv = ["fit", str(folder), "-o", str(tmp_path / "m.joblib"), *TINY]
        argv += ["--cv", "2", "--alphas", "2"]
    assert main(argv) == 130
    assert capsys.readouterr().err == "skhead2toe: interrupted\n"
    assert list(tmp_path.iterdir()) == []


def test_python_dash_m_ctrl_c_exits_130(tmp_path):
    # The real thing: SIGINT delivered to the process while it works.
    script = (
        "import signal, os, sys\n"
        "import skhead2toe.datasets as d\n"
        "def listed(root):\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "d.load_image_folder = listed\n"
        "from skhead2toe._cli import main\n"
        f"sys.exit(main(['extract', {str(tmp_path)!r}, '-o', "
        f"{str(tmp_path / 'f.npz')!r}, '--device', 'cpu']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 130
    assert done.stderr == "skhead2toe: interrupted\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["extract", "fit"])
def test_failure_while_writing_leaves_neither_output_nor_temp(
    command, folder, tmp_path, capsys, monkeypatch
):
    disk_full = OSError(28, "No space left on device")
    suffix = ".npz" if command == "extract" else ".joblib"
    out = tmp_path / f"out{suffix}"
    out.write_bytes(b"previous")
    if command == "extract":
        monkeypatch.setattr(np, "savez", _write_half_then(disk_full))
    else:
        monkeypatch.setattr(joblib, "dump", _write_half_then(disk_full))
    argv = [command, str(folder), "-o", str(out), *TINY]
    if command == "fit":
        argv += ["--cv", "2", "--alphas", "2"]
    assert main(argv) == 1
    line = _one_error_line(capsys, command)
    assert f"cannot write {str(out)!r}: No space left on device" in line
    assert out.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == [out.name]


# --------------------------------------------------------------------------
# Outputs: modes follow the umask, unwritable places fail before any work.


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_outputs_follow_the_umask(folder, tmp_path, umask_022):
    feats, model = tmp_path / "f.npz", tmp_path / "m.joblib"
    cache = tmp_path / "cache"
    extract = ["extract", str(folder), "-o", str(feats), "--cache", str(cache)]
    assert main([*extract, *TINY]) == 0
    assert main(["fit", str(feats), "-o", str(model), "--cv", "2"]) == 0
    entries = [p for p in cache.rglob("*") if p.is_file()]
    assert entries  # the feature cache's entries too
    for path in (feats, model, *entries):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


@pytest.mark.parametrize("command", ["extract", "fit"])
def test_unwritable_output_fails_before_any_work(
    command, folder, tmp_path, capsys, monkeypatch, no_work
):
    readonly = tmp_path / "ro"
    readonly.mkdir()
    deny_writes_in(readonly, monkeypatch)
    out = readonly / ("f.npz" if command == "extract" else "m.joblib")
    assert main([command, str(folder), "-o", str(out), *TINY]) == 1
    line = _one_error_line(capsys, command)
    assert str(out) in line and "not writable" in line and ".tmp-" not in line
    assert list(readonly.iterdir()) == []


def test_output_that_is_a_folder_or_in_a_missing_folder(
    folder, tmp_path, capsys, no_work
):
    (tmp_path / "dir.npz").mkdir()
    assert main(["extract", str(folder), "-o", str(tmp_path / "dir.npz")]) == 1
    assert "is a folder" in _one_error_line(capsys, "extract")
    missing = tmp_path / "no" / "f.npz"
    assert main(["extract", str(folder), "-o", str(missing)]) == 1
    assert "does not exist" in _one_error_line(capsys, "extract")


# --------------------------------------------------------------------------
# fit on something that is not a features file; --version; --skip-bad


@pytest.fixture
def features(folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("features") / "feats.npz"
    assert main(["extract", str(folder), "-o", str(out), *TINY]) == 0
    return out


@pytest.mark.parametrize("content", ["text", "npy", "truncated", "empty"])
def test_fit_on_a_file_that_is_not_a_features_file(content, features, tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    if content == "text":
        bad.write_text("1,2,3\n")
    elif content == "npy":
        np.save(tmp_path / "a.npy", np.zeros(3))
        (tmp_path / "a.npy").rename(bad)
    elif content == "truncated":
        data = features.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    else:
        bad.write_bytes(b"")
    capsys.readouterr()
    assert main(["fit", str(bad), "-o", str(tmp_path / "m.joblib")]) == 1
    line = _one_error_line(capsys, "fit")
    assert f"{str(bad)!r} is not a features file" in line
    assert "skhead2toe extract" in line and "pickle" not in line
    assert not (tmp_path / "m.joblib").exists()


def test_fit_on_a_damaged_features_file(features, tmp_path, capsys):
    data = bytearray(features.read_bytes())
    data[60:400] = bytes(340)  # inside the first member, keeping the zip index
    bad = tmp_path / "damaged.npz"
    bad.write_bytes(bytes(data))
    capsys.readouterr()
    assert main(["fit", str(bad), "-o", str(tmp_path / "m.joblib")]) == 1
    assert "damaged.npz" in _one_error_line(capsys, "fit")


def test_version(capsys):
    from skhead2toe import __version__

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"skhead2toe {__version__}\n"


@pytest.fixture
def folder_with_bad_images(folder, tmp_path):
    root = tmp_path / "images"
    shutil.copytree(folder, root)
    (root / "dog" / "broken.png").write_bytes(b"not an image")
    good = (root / "owl" / "0.png").read_bytes()
    (root / "owl" / "truncated.png").write_bytes(good[: len(good) // 2])
    return root


def test_bad_image_in_a_folder_is_an_error_naming_it(
    folder_with_bad_images, tmp_path, capsys
):
    out = tmp_path / "f.npz"
    assert main(["extract", str(folder_with_bad_images), "-o", str(out), *TINY]) == 1
    line = _one_error_line(capsys, "extract")
    assert "broken.png" in line or "truncated.png" in line
    assert "--skip-bad" in line
    assert not out.exists()


def test_skip_bad_extracts_the_rest(folder_with_bad_images, tmp_path, capsys):
    out = tmp_path / "f.npz"
    argv = ["extract", str(folder_with_bad_images), "-o", str(out), *TINY]
    assert main([*argv, "--skip-bad"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3, err
    assert "broken.png" in err[0] and "truncated.png" in err[1]
    assert all(line.startswith("skhead2toe extract: skipped ") for line in err)
    assert "skipped 2 of 26 images" in err[2]
    data = np.load(out)
    assert data["X"].shape[0] == len(data["y"]) == len(data["paths"]) == 24
    assert not any("broken" in p or "truncated" in p for p in data["paths"])


def test_skip_bad_on_files_and_in_fit(folder_with_bad_images, tmp_path, capsys):
    bad = str(folder_with_bad_images / "dog" / "broken.png")
    good = str(folder_with_bad_images / "dog" / "0.png")
    out = tmp_path / "f.npz"
    assert main(["extract", good, bad, "-o", str(out), *TINY, "--skip-bad"]) == 0
    assert np.load(out)["X"].shape[0] == 1
    model = tmp_path / "m.joblib"
    argv = ["fit", str(folder_with_bad_images), "-o", str(model), *TINY]
    assert main([*argv, "--cv", "2", "--alphas", "2", "--skip-bad"]) == 0
    assert "skipped 2 of 26 images" in capsys.readouterr().err
    assert model.exists()


def test_skip_bad_with_no_readable_image_is_an_error(tmp_path, capsys):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    out = tmp_path / "f.npz"
    assert main(["extract", str(bad), "-o", str(out), *TINY, "--skip-bad"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert "broken.png" in err[0]
    assert err[-1].startswith("skhead2toe extract: error: no readable image")
    assert not out.exists()


def test_demo_passes_its_featurizer_options_on(tmp_path, monkeypatch):
    # --layers, --target-size, --batch-size and --device reach the featurizer
    import skhead2toe

    made = []
    Featurizer = skhead2toe.MultiLayerFeaturizer

    def spy(*args, **kwargs):
        made.append(Featurizer(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(skhead2toe, "MultiLayerFeaturizer", spy, raising=False)
    argv = ["demo", "--n-train", "60", "--n-test", "40", "--cv", "2", "--no-plots"]
    options = ["--layers", "blocks", "--target-size", "48", "--batch-size", "7"]
    out = tmp_path / "demo"
    argv = [*argv, *TINY, *options, "--device", "cpu", "--output-dir", str(out)]
    assert main(argv) == 0
    params = made[0].get_params()
    assert (params["layers"], params["target_size"]) == ("blocks", 48)
    assert (params["batch_size"], params["device"]) == (7, "cpu")
    results = json.loads((out / "results.json").read_text())
    # the table is that featurizer's: its layers and widths
    assert results["n_layers"] == len(made[0].layer_names_)
    assert results["n_features"] == sum(made[0].layer_dims_)


def test_skip_bad_skips_what_the_featurizer_would_reject(folder, tmp_path, capsys):
    # a float image with negative values decodes, but its pixels are invalid:
    # --skip-bad judges images by the featurizer's own reading rules
    odd = tmp_path / "negative.tif"
    Image.fromarray(np.full((8, 8), -5.0, np.float32), mode="F").save(odd)
    good = next(folder.rglob("*.png"))
    out = tmp_path / "f.npz"
    argv = ["extract", str(good), str(odd), "-o", str(out), *TINY, "--skip-bad"]
    assert main(argv) == 0
    assert "skipped 1 of 2 images" in capsys.readouterr().err
    assert np.load(out)["X"].shape[0] == 1
