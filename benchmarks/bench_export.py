"""Throughput of the exported model against the pipeline it comes from.

One fitted pipeline per head (the embedded EfficientNet-Lite0, ``"head2toe"``
taps, ``target_size=1024``, digits upscaled to the input size): its
``predict_proba``, the module of :func:`skhead2toe.export.to_torch` and the
ONNX file of :func:`skhead2toe.export.to_onnx` run by onnxruntime on the CPU
classify the same images, already at the input size, on the same number of
threads, in one process. Each is timed twice after a warm-up batch (the best
time is kept) and the table gives images per second, the ratios to the
pipeline and the largest probability difference from it. Heads:

- ``top 1%``: Head2Toe's recipe at one alpha (``GroupLassoClassifier``,
  ``keep_fraction=0.01``): its features come from layers all along the network;
- ``early``: the same head fitted on the columns of the layers before
  ``blocks.3.0`` only (the rest zeroed), so the backbone is cut early;
- ``probe``: ``LinearProbe`` on every column (nothing to cut or skip).

Usage::

    python benchmarks/bench_export.py [--n-images 256] [--threads 1]
        [--image-size 224] [--output benchmarks/results/bench_export.txt]
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # shared CPUs: no spinning

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from skhead2toe import GroupLassoClassifier, MultiLayerFeaturizer, alpha_max  # noqa: E402
from skhead2toe._io import atomic_write  # noqa: E402
from skhead2toe.datasets import load_digits_images  # noqa: E402
from skhead2toe.export import to_onnx, to_torch  # noqa: E402
from skhead2toe.feature_extraction._images import resize  # noqa: E402
from skhead2toe.linear_model import LinearProbe  # noqa: E402

BATCH = 32  # images per forward pass, for all three (the featurizer's default)
EARLY = "blocks.3.0"


def _images(n, size):
    """Digits as float32 RGB (n, 3, size, size) in [0, 1], and their labels."""
    X, y = load_digits_images()
    X = torch.from_numpy(X[:n, None].astype(np.float32) / 255.0)
    X = resize(X, size, "bicubic").expand(-1, 3, -1, -1)
    return np.ascontiguousarray(X.numpy()), y[:n]


def _heads(feat, Z, y):
    alpha = 0.1 * alpha_max(Z, y)
    early = list(feat.layer_names_).index(EARLY)
    Z_early = np.where(feat.feature_groups_ < early, Z, 0).astype(np.float32)
    return {
        "top 1%": GroupLassoClassifier(alpha=alpha, keep_fraction=0.01).fit(Z, y),
        "early": GroupLassoClassifier(alpha=alpha, keep_fraction=0.01).fit(Z_early, y),
        "probe": LinearProbe(C=1.0).fit(Z, y),
    }


def _best_time(run, X, repeats=2):
    run(X[:BATCH])  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = run(X)
        times.append(time.perf_counter() - start)
    return out, min(times)


def _batched(fn):
    def run(X):
        return np.concatenate([fn(X[i : i + BATCH]) for i in range(0, len(X), BATCH)])

    return run


def _torch_runner(module):
    def forward(x):
        with torch.inference_mode():
            return module(torch.from_numpy(x)).numpy()

    return _batched(forward)


def _onnx_runner(pipe, threads, folder):
    import onnxruntime

    path = Path(folder) / "model.onnx"
    start = time.perf_counter()
    info = to_onnx(pipe, path)
    export_s = time.perf_counter() - start
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(
        path, options, providers=["CPUExecutionProvider"]
    )
    run = _batched(lambda x: session.run(None, {"images": x})[0])
    return run, info, export_s


def _row(name, pipe, X, threads, folder):
    expected, t_pipe = _best_time(pipe.predict_proba, X)
    module = to_torch(pipe)
    got_torch, t_torch = _best_time(_torch_runner(module), X)
    run_onnx, info, export_s = _onnx_runner(pipe, threads, folder)
    got_onnx, t_onnx = _best_time(run_onnx, X)
    n = len(X)
    return {
        "head": name,
        "layers": len(module.layer_names),
        "last": module.last_layer,
        "features": f"{module.n_features_used}/{module.n_features_in}",
        "pipe": n / t_pipe,
        "torch": n / t_torch,
        "onnx": n / t_onnx,
        "diff_torch": float(np.abs(got_torch - expected).max()),
        "diff_onnx": float(np.abs(got_onnx - expected).max()),
        "export_s": export_s,
        "opset": info["opset"],
        "mb": info["bytes"] / 1e6,
    }


def _table(rows, args):
    lines = [
        f"{args.n_images} images at {args.image_size} px, {args.threads} thread(s), "
        f"batches of {BATCH}; torch {torch.__version__}; images/s (best of 2)",
        f"{'head':8} {'layers':>6} {'last layer':>11} {'features':>12} "
        f"{'pipeline':>9} {'torch':>7} {'onnx':>7} {'torch/p':>8} {'onnx/p':>7} "
        f"{'max|dp| torch':>14} {'onnx':>8} {'export s':>9} {'MB':>5}",
    ]
    for r in rows:
        lines.append(
            f"{r['head']:8} {r['layers']:>6} {r['last']!s:>11} {r['features']:>12} "
            f"{r['pipe']:>9.1f} {r['torch']:>7.1f} {r['onnx']:>7.1f} "
            f"{r['torch'] / r['pipe']:>8.2f} {r['onnx'] / r['pipe']:>7.2f} "
            f"{r['diff_torch']:>14.1e} {r['diff_onnx']:>8.1e} "
            f"{r['export_s']:>9.1f} {r['mb']:>5.1f}"
        )
    lines.append(f"ONNX opset {rows[0]['opset']} (torch.onnx.export, dynamo=True)")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-images", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--output", default="benchmarks/results/bench_export.txt")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    X, y = _images(args.n_images, args.image_size)
    feat = MultiLayerFeaturizer(
        image_size=args.image_size, device="cpu", progress=False
    )
    with threadpool_limits(limits=args.threads):
        Z = feat.fit_transform(X)
        rows = []
        with tempfile.TemporaryDirectory() as folder:
            for name, head in _heads(feat, Z, y).items():
                rows.append(
                    _row(name, make_pipeline(feat, head), X, args.threads, folder)
                )
                print(f"{name}: done", file=sys.stderr, flush=True)
    text = _table(rows, args)
    print(text, end="")
    if args.output:
        atomic_write(Path(args.output), lambda f: f.write(text.encode()))


if __name__ == "__main__":
    main()
