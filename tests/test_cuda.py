"""The CUDA paths, run on a GPU (``pytest -m cuda``; skipped without one).

The featurizer on CUDA (bfloat16 autocast, channels-last, the out-of-memory
retry), the torch solver on CUDA against the CPU Newton solver, and a model
fitted on a GPU used on a machine without one. ``benchmarks/gpu_check.sh`` runs
these with the GPU benchmarks.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from helpers import full_W
from scipy.special import logsumexp
from sklearn.datasets import make_classification

from skhead2toe import GroupLassoClassifier, MultiLayerFeaturizer, alpha_max
from skhead2toe.feature_extraction._hooks import TapSet

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def _images(n=8, size=48, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _feat(backbone="test_resnet", **kw):
    kw.setdefault("pretrained", False)
    kw.setdefault("image_size", 64)
    kw.setdefault("target_size", 128)
    kw.setdefault("random_state", 0)
    kw.setdefault("progress", False)
    return MultiLayerFeaturizer(backbone, **kw)


def _blocks(feat, Z):
    """Per-layer blocks of the columns of ``Z`` (one integer target size)."""
    return np.split(Z, np.cumsum(feat.layer_dims_)[:-1], axis=1)


def _first_conv(model):
    return next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))


def test_featurizer_on_cuda_runs_bfloat16_autocast_in_channels_last():
    X = _images()
    gpu = MultiLayerFeaturizer(
        image_size=64, target_size=256, device="cuda", progress=False
    ).fit(X)
    gpu.transform(X[:1])  # moves the network to the GPU
    seen = []

    def record(module, args, output):
        seen.append(
            {
                "input_channels_last": args[0].is_contiguous(
                    memory_format=torch.channels_last
                ),
                "output_dtype": output.dtype,
                "autocast": torch.is_autocast_enabled("cuda"),
                "autocast_dtype": torch.get_autocast_dtype("cuda"),
                "device": output.device.type,
            }
        )

    conv = _first_conv(gpu._model)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    handle = conv.register_forward_hook(record)
    try:
        Z = gpu.transform(X)
    finally:
        handle.remove()
    assert seen and all(
        s["input_channels_last"]
        and s["output_dtype"] == torch.bfloat16
        and s["autocast"]
        and s["autocast_dtype"] == torch.bfloat16
        and s["device"] == "cuda"
        for s in seen
    ), seen
    assert Z.dtype == np.float32 and np.isfinite(Z).all()
    # each layer's block is a unit vector per image: bfloat16 turns it by a little
    cpu = gpu.set_params(device="cpu")
    for got, ref in zip(_blocks(cpu, Z), _blocks(cpu, cpu.transform(X)), strict=True):
        cosine = (got * ref).sum(axis=1)
        assert cosine.min() > 0.99, cosine


def test_cuda_out_of_memory_halves_the_batch_and_frees_memory(monkeypatch):
    X = _images(9)
    feat = _feat("test_efficientnet", device="cuda", batch_size=2).fit(X)
    ref = feat.transform(X)  # the batches a halving from 8 ends with: 2, 2, ...
    feat.set_params(batch_size=8)
    baseline = torch.cuda.memory_allocated()
    run, sizes, emptied = TapSet.run, [], []
    empty_cache = torch.cuda.empty_cache

    def greedy(self, x, *, n_features):
        sizes.append(len(x))
        if len(x) > 2:  # a real out-of-memory error from the CUDA allocator
            torch.empty(1 << 50, dtype=torch.uint8, device=x.device)
        return run(self, x, n_features=n_features)

    def spy_empty_cache():
        emptied.append(True)
        empty_cache()

    monkeypatch.setattr(TapSet, "run", greedy)
    monkeypatch.setattr(torch.cuda, "empty_cache", spy_empty_cache)
    with pytest.warns(RuntimeWarning, match="out of memory on cuda") as rec:
        Z = feat.transform(X)
    assert [str(w.message).rsplit("=", 1)[1] for w in rec] == ["4", "2"]
    assert sizes[:3] == [8, 4, 2] and max(sizes[3:]) <= 2
    assert len(emptied) == 2
    np.testing.assert_allclose(Z, ref, atol=1e-3)
    assert torch.cuda.memory_allocated() <= baseline + 16 * 2**20


def _objective(X, y, W, b, alpha):
    """The group-lasso objective in float64 (own code): mean CE + alpha sum ||W_j||."""
    Z = np.asarray(X, np.float64) @ W + b
    ce = logsumexp(Z, axis=1) - Z[np.arange(len(y)), y]
    return ce.mean() + alpha * np.linalg.norm(W, axis=1).sum()


@pytest.mark.parametrize("dtype, tol", [("float32", 1e-4), ("float64", 1e-8)])
def test_torch_solver_on_cuda_agrees_with_cpu_newton_to_tol(monkeypatch, dtype, tol):
    from skhead2toe.linear_model import _torch

    devices = []

    class RecordingOps(_torch.TorchOps):
        def __init__(self, device):
            super().__init__(device)
            devices.append(self.device.type)

    monkeypatch.setattr(_torch, "TorchOps", RecordingOps)
    X, y = make_classification(
        n_samples=400, n_features=300, n_informative=12, n_classes=4, random_state=0
    )
    X = X.astype(dtype)
    alpha = 0.1 * alpha_max(X, y)
    kw = dict(alpha=alpha, tol=tol, max_iter=100_000)
    newton = GroupLassoClassifier(solver="newton", device="cpu", **kw).fit(X, y)
    gpu = GroupLassoClassifier(solver="torch", device="cuda", **kw).fit(X, y)
    assert devices == ["cuda"]
    assert newton.converged_ and gpu.converged_
    # each objective is within its certified gap (<= tol * objective) of the optimum
    F_newton, F_gpu = (_objective(X, y, *full_W(c), alpha) for c in (newton, gpu))
    assert abs(F_gpu - F_newton) <= tol * max(F_gpu, F_newton)
    reported = (gpu.objective_, newton.objective_)
    assert abs(reported[0] - reported[1]) <= tol * max(reported)
    if dtype == "float64":
        np.testing.assert_allclose(
            gpu.predict_proba(X), newton.predict_proba(X), atol=1e-3
        )


_LOAD_ON_CPU = textwrap.dedent(
    """
    import json, sys
    import joblib, numpy as np, torch
    assert not torch.cuda.is_available()
    X = np.load(sys.argv[1])
    auto = joblib.load(sys.argv[2])
    explicit = joblib.load(sys.argv[3])
    np.save(sys.argv[4], auto.predict_proba(X))
    try:
        explicit.predict_proba(X)
        error = None
    except RuntimeError as exc:
        error = str(exc)
    explicit.set_params(multilayerfeaturizer__device="cpu")
    np.save(sys.argv[5], explicit.predict_proba(X))
    print(json.dumps({"error": error}))
    """
)


def test_model_fitted_on_cuda_loads_and_predicts_on_cpu(tmp_path):
    import joblib
    from sklearn.pipeline import make_pipeline

    from skhead2toe.datasets import load_digits_images

    X, y = load_digits_images()
    X, y = X[:90], y[:90]
    feat = MultiLayerFeaturizer(image_size=64, target_size=128, progress=False)
    alpha = 0.1 * alpha_max(feat.fit_transform(X), y)
    models = {}
    for device in ("auto", "cuda"):
        models[device] = make_pipeline(
            MultiLayerFeaturizer(
                image_size=64, target_size=128, device=device, progress=False
            ),
            GroupLassoClassifier(alpha, keep_fraction=0.2, device=device),
        ).fit(X, y)
        fitted = models[device][0]._model
        assert next(fitted.parameters()).device.type == "cuda"
        joblib.dump(models[device], tmp_path / f"{device}.joblib")
    np.save(tmp_path / "X.npy", X)
    script = tmp_path / "load_on_cpu.py"
    script.write_text(_LOAD_ON_CPU)
    paths = [tmp_path / n for n in ("X.npy", "auto.joblib", "cuda.joblib")]
    outs = [tmp_path / "auto_proba.npy", tmp_path / "cuda_proba.npy"]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    done = subprocess.run(
        [sys.executable, str(script), *map(str, paths + outs)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    error = json.loads(done.stdout.strip().splitlines()[-1])["error"]
    assert error is not None and "device='cuda'" in error and "'cpu'" in error
    for device, out in zip(("auto", "cuda"), outs, strict=True):
        on_gpu = models[device].predict_proba(X)  # bfloat16 features
        models[device].set_params(multilayerfeaturizer__device="cpu")
        # the loaded model is the fitted one: the same CPU predictions
        np.testing.assert_allclose(
            np.load(out), models[device].predict_proba(X), atol=1e-5
        )
        agree = (np.load(out).argmax(1) == on_gpu.argmax(1)).mean()
        assert agree >= 0.9, agree
