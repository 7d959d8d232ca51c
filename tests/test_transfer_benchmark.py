"""Fast checks of benchmarks/transfer (the Head2Toe baselines benchmark)."""

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

TRANSFER = Path(__file__).resolve().parents[1] / "benchmarks" / "transfer"
sys.path.insert(0, str(TRANSFER))

import _baselines as B  # noqa: E402
import run_baselines  # noqa: E402


def _position_images(n, h, w):
    """Images whose pixel values encode their position (plus an image offset)."""
    base = np.arange(h * w, dtype=np.int64).reshape(h, w)
    return np.stack([base + 1000 * i for i in range(n)])


@pytest.mark.parametrize("size, grid", [(8, 4), (28, 4), (12, 3)])
def test_block_shuffle_moves_whole_blocks(size, grid):
    X = _position_images(3, size, size)
    out = B.block_shuffle(X, grid=grid, seed=0)
    assert out.shape == X.shape
    b = size // grid
    sources = []
    for i in range(grid):
        for j in range(grid):
            block = out[0, i * b : (i + 1) * b, j * b : (j + 1) * b]
            r0, c0 = divmod(int(block[0, 0]), size)
            # an aligned block of the input, copied with its inner layout intact
            assert r0 % b == 0 and c0 % b == 0
            np.testing.assert_array_equal(block, X[0, r0 : r0 + b, c0 : c0 + b])
            sources.append((r0 // b, c0 // b))
            # every image gets the same permutation
            np.testing.assert_array_equal(
                out[2, i * b : (i + 1) * b, j * b : (j + 1) * b], block + 2000
            )
    assert len(set(sources)) == grid * grid  # a permutation of the blocks
    moved = [s != (k // grid, k % grid) for k, s in enumerate(sources)]
    assert all(moved)  # no block stays in place
    # deterministic for a seed, different for another seed
    np.testing.assert_array_equal(out, B.block_shuffle(X, grid=grid, seed=0))
    assert not np.array_equal(out, B.block_shuffle(X, grid=grid, seed=1))


def test_block_shuffle_rejects_uneven_grid():
    with pytest.raises(ValueError, match="do not split"):
        B.block_shuffle(np.zeros((1, 10, 10), np.uint8), grid=4)


def test_pixel_shuffle_is_one_fixed_permutation():
    X = _position_images(2, 8, 8)
    out = B.pixel_shuffle(X, seed=0)
    flat = out[0].ravel()
    assert sorted(flat.tolist()) == list(range(64))
    assert not np.any(flat == np.arange(64))
    np.testing.assert_array_equal(out[1], out[0] + 1000)


@pytest.mark.parametrize("variant", ["block-shuffle", "pixel-shuffle", "invert"])
def test_variants_keep_what_a_pixel_model_sees(variant):
    # The variants lower the domain affinity only through the pretrained
    # features: the from-scratch side of the affinity (a linear probe on raw
    # pixels, on the same folds) is unchanged, because the transforms permute
    # the pixels or are affine in them.
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, _, y, _ = B.load_task("digits", 300, 10, random_state=0)
    Xv, _, yv, _ = B.load_task(f"digits+{variant}", 300, 10, random_state=0)
    np.testing.assert_array_equal(y, yv)
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, tol=1e-8))
    a = cross_val_score(probe, X.reshape(300, -1) / 255.0, y, cv=3)
    b = cross_val_score(probe, Xv.reshape(300, -1) / 255.0, y, cv=3)
    np.testing.assert_allclose(a, b, atol=1e-9)
    assert not np.array_equal(X, Xv)


def test_invert_and_rotate():
    X = np.array([[[0, 255], [10, 20]]], dtype=np.uint8)
    np.testing.assert_array_equal(B.invert(X), [[[255, 0], [245, 235]]])
    np.testing.assert_array_equal(B.rotate_invert(X), [[[0, 235], [255, 245]]])
    assert B.invert(X).dtype == np.uint8


def test_variant_task_transforms_the_base_task():
    base = B.load_task("digits", 100, 50, random_state=0)
    variant = B.load_task("digits+block-shuffle", 100, 50, random_state=0)
    np.testing.assert_array_equal(variant[0], B.block_shuffle(base[0]))
    np.testing.assert_array_equal(variant[1], B.block_shuffle(base[1]))
    np.testing.assert_array_equal(variant[2], base[2])
    np.testing.assert_array_equal(variant[3], base[3])
    with pytest.raises(ValueError, match="variant"):
        B.load_task("digits+blur", 100, 50)
    with pytest.raises(ValueError, match="base"):
        B.split_task("cifar10")


def test_lr_schedule_warms_up_then_decays_to_zero():
    f = [B._lr_factor(s, 100, 0.1) for s in range(100)]
    assert f[0] == pytest.approx(0.1) and f[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[9:], f[10:], strict=False))
    assert f[-1] < 0.01


def _eval_loss(model, X, y, cfg):
    import torch

    model.eval()
    with torch.inference_mode():
        logits = model(B._model_input(X, cfg))
    return float(torch.nn.functional.cross_entropy(logits, torch.as_tensor(y)))


def test_fine_tuning_loop_reduces_training_loss():
    import torch

    torch.set_num_threads(1)
    X, _, y, _ = B.load_task("digits", 64, 10, random_state=0)
    recipe = B.FinetuneRecipe(epochs=6, batch_size=16, max_shift=1)
    model, cfg = B.build_classifier("efficientnet_lite0", 10, image_size=32, seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    loss_before = _eval_loss(model, X, y, cfg)
    losses = B.train_epochs(model, X, y, cfg, lr=0.05, recipe=recipe, seed=0)
    assert len(losses) == 6 and np.all(np.isfinite(losses))
    # the optimised (augmented, smoothed) loss falls over the epochs ...
    assert losses[-1] < 0.8 * losses[0]
    # ... and so does the plain loss of the model in eval mode
    assert _eval_loss(model, X, y, cfg) < 0.8 * loss_before
    # the whole backbone is trained, not only the head
    after = list(model.parameters())
    changed = [not torch.equal(a, b) for a, b in zip(before, after, strict=True)]
    assert np.mean(changed) > 0.9
    assert not model.training


def test_fine_tuning_with_zero_lr_changes_nothing_but_batch_norm():
    import torch

    X, _, y, _ = B.load_task("digits", 32, 10, random_state=0)
    recipe = B.FinetuneRecipe(epochs=1, batch_size=16)
    model, cfg = B.build_classifier("efficientnet_lite0", 10, image_size=32, seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    B.train_epochs(model, X, y, cfg, lr=0.0, recipe=recipe, seed=0)
    for a, b in zip(before, model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_fine_tune_tunes_lr_and_epochs_jointly_on_held_out_data():
    import torch

    torch.set_num_threads(1)
    X, _, y, _ = B.load_task("digits", 60, 10, random_state=0)
    y = y.astype(int)
    # lr=0 cannot beat chance on held-out data; lr=0.05 for 3 epochs learns
    recipe = B.FinetuneRecipe(
        lrs=(0.05, 0.0), epochs=(3, 1), batch_size=16, max_shift=0, val_fraction=0.25
    )
    ft = B.fine_tune(X, y, recipe=recipe, image_size=32, seed=0)
    assert set(ft.val_accuracy) == {(0.0, 1), (0.05, 1), (0.0, 3), (0.05, 3)}
    best = max(ft.val_accuracy.values())
    assert ft.val_accuracy[ft.lr, ft.epochs] == best
    # ties go to the shorter schedule, then the smaller rate
    tied = [k for k, v in ft.val_accuracy.items() if v == best]
    assert (ft.epochs, ft.lr) == min((e, lr) for lr, e in tied)
    assert best > ft.val_accuracy[0.0, 3]
    # the final model trains on all the data for the chosen number of epochs
    assert len(ft.losses) == ft.epochs


def test_train_epochs_needs_one_epoch_count():
    recipe = B.FinetuneRecipe(epochs=(1, 2))
    with pytest.raises(ValueError, match="pass epochs="):
        B.train_epochs(
            None, np.zeros((4, 8, 8)), np.zeros(4), {}, lr=0.1, recipe=recipe
        )
    with pytest.raises(ValueError, match="positive integers"):
        B._epoch_grid(B.FinetuneRecipe(epochs=(0,)))


def test_runner_writes_a_well_formed_table(tmp_path):
    argv = [
        "--quick",
        "--tasks",
        "digits+block-shuffle",
        "--n-train",
        "60",
        "--n-test",
        "40",
        "--image-size",
        "32",
        "--output-dir",
        str(tmp_path),
    ]
    results = run_baselines.main(argv)
    files = {p.name for p in tmp_path.iterdir()}
    assert {"results.csv", "results.json", "gain_vs_affinity.png"} <= files
    assert not any(name.startswith(".tmp-") for name in files)

    with open(tmp_path / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == B.CSV_COLUMNS
    assert len(rows) == len(B.METHODS)
    assert [r["method"] for r in rows[: len(B.METHODS)]] == list(B.METHODS)
    for r in rows:
        assert 0.0 <= float(r["test_accuracy"]) <= 1.0
        assert int(r["n_features"]) > 0
        cpu, own, ext = (
            float(r["cpu_s"]),
            float(r["method_cpu_s"]),
            float(r["extraction_cpu_s"]),
        )
        assert cpu == pytest.approx(own + ext, abs=0.02) and own > 0
        if r["method"] in B.FEATURE_METHODS:
            assert ext > 0
        else:
            assert ext == 0

    saved = json.loads((tmp_path / "results.json").read_text())
    meta = saved["metadata"]
    assert {r["git_commit"] for r in rows} == {meta["git_commit"] or ""}
    for key in ("git_commit", "date_utc", "command", "machine"):
        assert key in meta
    assert meta["machine"]["torch_threads"] == 1
    assert "--quick" in meta["command"]
    assert [t["task"] for t in saved["tasks"]] == ["digits+block-shuffle"]
    for t in saved["tasks"]:
        assert t["n_train"] == 60 and t["n_test"] == 40 and t["image_size"] == 32
        aff = t["domain_affinity"]
        assert aff["affinity"] == pytest.approx(
            aff["linear_probe_cv_accuracy"] - aff["from_scratch_cv_accuracy"]
        )
        by_method = {r["method"]: r for r in t["methods"]}
        assert by_method["All layers + L2"]["n_features"] == t["n_features"]
        assert by_method["Head2Toe"]["n_features"] <= t["n_features"]
        assert (
            by_method["Control"]["n_features"] == 2 * by_method["Linear"]["n_features"]
        )
    summary = saved["summary"]
    assert set(summary["methods"]) == set(B.METHODS)
    assert "accuracy_target_met" in summary["targets"]
    assert "Head2Toe" in B.format_table(results)


def test_merge_combines_the_methods_of_a_task_across_runs():
    def part(commit, tasks):
        return {
            "metadata": {"git_commit": commit},
            "tasks": [
                {
                    "task": t,
                    "extraction_cpu_s": e,
                    "methods": [{"method": m} for m in ms],
                }
                for t, e, ms in tasks
            ],
        }

    first = part("aaa", [("digits", 1.0, ["Fine-tuning", "Linear"])])
    second = part(
        "bbb",
        [("digits", 2.0, ["Linear", "Head2Toe"]), ("fashion-mnist", 3.0, ["Linear"])],
    )
    tasks = run_baselines.merge_tasks([first, second])
    assert [t["task"] for t in tasks] == ["digits", "fashion-mnist"]
    digits = tasks[0]
    # methods in the table's order; a method in both runs comes from the last
    assert [r["method"] for r in digits["methods"]] == [
        "Linear",
        "Head2Toe",
        "Fine-tuning",
    ]
    commits = {r["method"]: r["git_commit"] for r in digits["methods"]}
    assert commits == {"Linear": "bbb", "Head2Toe": "bbb", "Fine-tuning": "aaa"}
    assert digits["extraction_cpu_s"] == 2.0
