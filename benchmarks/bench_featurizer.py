"""Benchmark MultiLayerFeaturizer: hook overhead, memory, and the feature cache.

Three measurements, printed as ratios:

1. Throughput: images/s of ``transform`` with the ``"head2toe"`` preset versus a
   plain forward of the same model on the same preprocessed batches, interleaved
   in one process (target: ratio >= 0.95 on CPU).
2. Peak memory of ``transform`` for N = 500 and N = 5000, each in a fresh process,
   minus the output array (target: within 10%).
3. A grid search over a head on top of the featurizer, with and without
   ``cache=``: backbone forward passes (images) counted.

Usage::

    python benchmarks/bench_featurizer.py [--quick] [--device cpu|cuda]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import nullcontext

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # shared CPUs: no spinning

import numpy as np  # noqa: E402
import torch  # noqa: E402


def _images(n, size, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _plain_model(feat, dev):
    """The fitted featurizer's network, built again for plain forward passes.

    Same name, weights and seed as ``feat``'s own; on CUDA in channels-last
    format, as the featurizer puts its copy.
    """
    from skhead2toe.feature_extraction import build_backbone

    built = build_backbone(
        feat.backbone,
        pretrained=feat.pretrained,
        seed=feat.seed_,
        image_size=feat.image_size,
        preprocessing=feat.preprocessing,
    )
    model = built.model.to(dev)
    if dev.type == "cuda":
        model.to(memory_format=torch.channels_last)
    return model


def bench_throughput(device, backbone, pretrained, n_images, batch_size, repeats):
    from skhead2toe.feature_extraction import MultiLayerFeaturizer, to_model_input

    X = _images(n_images, 224)
    feat = MultiLayerFeaturizer(
        backbone,
        pretrained=pretrained,
        random_state=0,
        device=device,
        batch_size=batch_size,
        progress=False,
    ).fit(X[:2])
    dev = torch.device(device)
    model = _plain_model(feat, dev)
    cfg = feat.data_config_
    cuda = dev.type == "cuda"

    def plain():
        ctx = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()
        with torch.inference_mode(), ctx:
            for start in range(0, n_images, batch_size):
                batch = torch.from_numpy(X[start : start + batch_size])
                x = to_model_input(
                    batch.permute(0, 3, 1, 2), cfg, dev, channels_last=cuda
                )
                model(x).float().cpu()
        if cuda:
            torch.cuda.synchronize()

    def featurize():
        feat.transform(X)
        if cuda:
            torch.cuda.synchronize()

    plain()
    featurize()  # warm up both paths
    times = {"plain": [], "head2toe": []}
    ratios = []
    pair = (("plain", plain), ("head2toe", featurize))
    for r in range(repeats):  # interleaved pairs: both see the same machine load
        for name, fn in pair if r % 2 == 0 else pair[::-1]:  # ABBA order
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
        ratios.append(times["plain"][-1] / times["head2toe"][-1])
    rate = {k: n_images / statistics.median(v) for k, v in times.items()}
    return {
        "backbone": feat.backbone_tag_,
        "n_layers": len(feat.layer_names_),
        "n_features": feat.n_features_out_,
        "plain_img_s": rate["plain"],
        "head2toe_img_s": rate["head2toe"],
        "ratio_median": statistics.median(ratios),
        "ratios": ratios,
    }


def bench_memory_format(device, n_images=64, batch_size=32, repeats=5):
    """Plain forward time on NCHW-contiguous batches over channels-last ones.

    Resized and grayscale inputs come out of preprocessing NCHW-contiguous; the
    featurizer converts every batch to channels-last (oneDNN's fast layout on the
    CPU). Interleaved pairs, as in :func:`bench_throughput`.
    """
    from skhead2toe.feature_extraction import MultiLayerFeaturizer, to_model_input

    X = _images(batch_size, 224)
    feat = MultiLayerFeaturizer(device=device, progress=False).fit(X[:2])
    dev = torch.device(device)
    model = _plain_model(feat, dev)
    x = to_model_input(torch.from_numpy(X).permute(0, 3, 1, 2), feat.data_config_, dev)
    layouts = {
        "nchw": x.contiguous(),
        "channels_last": x.contiguous(memory_format=torch.channels_last),
    }
    n_batches = max(1, n_images // batch_size)
    ratios = []
    with torch.inference_mode():
        for name in layouts:  # warm up both
            model(layouts[name])
        for _ in range(repeats):
            t = {}
            for name, batch in layouts.items():
                t0 = time.perf_counter()
                for _ in range(n_batches):
                    model(batch)
                t[name] = time.perf_counter() - t0
            ratios.append(t["nchw"] / t["channels_last"])
    return statistics.median(ratios), ratios


def _anon_rss():
    """Anonymous resident memory of this process in bytes (Linux).

    File-backed pages, such as those of a memory-mapped output, are not counted.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no RssAnon in /proc/self/status (Linux only)")


def _peak_child(n, image_size, device):
    """Run in a fresh process: print the peak anonymous-memory growth (bytes)."""
    from skhead2toe import MultiLayerFeaturizer

    X = _images(n, 32)  # small stored images, resized to image_size on the fly
    feat = MultiLayerFeaturizer(
        image_size=image_size, device=device, batch_size=32, progress=False
    ).fit(X[:2])
    feat.transform(X[:320])  # warm up allocator and kernels (10 batches)
    base = _anon_rss()
    peak, done = [base], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _anon_rss())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with tempfile.TemporaryDirectory() as tmp:
        out = feat.transform(X, out=os.path.join(tmp, "features.npy"))
        done.set()
        sampler.join()
        out_bytes = out.nbytes
        del out
    print(json.dumps({"n": n, "growth": peak[0] - base, "output": out_bytes}))


def bench_memory(sizes, image_size, device):
    rows = []
    for n in sizes:
        cmd = [
            sys.executable,
            __file__,
            "--peak-child",
            str(n),
            "--image-size",
            str(image_size),
            "--device",
            device,
        ]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    return rows


def bench_cache(n_images, image_size, device):
    from sklearn.linear_model import RidgeClassifier
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline

    from skhead2toe import MultiLayerFeaturizer
    from skhead2toe.datasets import load_digits_images

    X, y = load_digits_images()
    X, y = X[:n_images], y[:n_images]
    seen = []
    forward = MultiLayerFeaturizer._forward

    def counting(self, source, idx, *args):
        seen.append(len(idx))
        return forward(self, source, idx, *args)

    MultiLayerFeaturizer._forward = counting
    grid = {"ridgeclassifier__alpha": [0.1, 1.0, 10.0]}  # a cheap head
    results = {}
    try:
        for label in ("no cache", "cache"):
            with tempfile.TemporaryDirectory() as tmp:
                feat = MultiLayerFeaturizer(
                    image_size=image_size,
                    target_size=256,
                    device=device,
                    cache=tmp if label == "cache" else None,
                    progress=False,
                )
                pipe = make_pipeline(feat, RidgeClassifier())
                seen.clear()
                t0 = time.perf_counter()
                search = GridSearchCV(pipe, grid, cv=3).fit(X, y)
                results[label] = {
                    "images_forwarded": sum(seen),
                    "seconds": time.perf_counter() - t0,
                    "best_score": search.best_score_,
                }
    finally:
        MultiLayerFeaturizer._forward = forward
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--peak-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peak_child:
        _peak_child(args.peak_child, args.image_size, args.device)
        return
    quick = args.quick
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"device {args.device}, load average {os.getloadavg()[0]:.1f}"
    )

    tp = bench_throughput(
        args.device,
        "efficientnet_lite0",
        True,
        n_images=64 if quick else 128,
        batch_size=32,
        repeats=3 if quick else 7,
    )
    print(
        f"\n[1] throughput, {tp['backbone']} 224 px, 'head2toe' preset "
        f"({tp['n_layers']} layers, {tp['n_features']} features)"
    )
    print(f"    plain forward   {tp['plain_img_s']:8.1f} img/s")
    print(f"    head2toe        {tp['head2toe_img_s']:8.1f} img/s")
    pairs = ", ".join(f"{r:.3f}" for r in tp["ratios"])
    print(
        f"    ratio           {tp['ratio_median']:8.3f} (median of interleaved "
        f"pairs: {pairs})  target >= 0.95"
    )
    fmt, fmt_pairs = bench_memory_format(args.device, repeats=3 if quick else 5)
    pairs = ", ".join(f"{r:.3f}" for r in fmt_pairs)
    print(
        f"    plain forward, NCHW-contiguous time / channels-last time: {fmt:.3f} "
        f"({pairs}); the featurizer feeds channels-last batches"
    )
    if args.device.startswith("cuda"):
        vit = bench_throughput(args.device, "vit_b16", False, 256, 64, 3)
        print(
            f"    vit_b16 (random weights): head2toe {vit['head2toe_img_s']:.1f}"
            f" img/s, plain {vit['plain_img_s']:.1f} img/s, ratio "
            f"{vit['ratio_median']:.3f}"
        )

    sizes = (200, 2000) if quick else (500, 5000)
    mem = bench_memory(sizes, args.image_size, args.device)
    print(
        f"\n[2] peak anonymous-memory growth during transform ({args.image_size} "
        "px; output in a .npy memmap, so not counted)"
    )
    for row in mem:
        print(
            f"    N={row['n']:5d}: {row['growth'] / 2**20:7.1f} MiB "
            f"(output file {row['output'] / 2**20:7.1f} MiB)"
        )
    ratio = mem[1]["growth"] / max(mem[0]["growth"], 1)
    print(f"    ratio large / small: {ratio:.3f}  target <= 1.10")

    cache = bench_cache(150 if quick else 300, 64, args.device)
    print(
        "\n[3] GridSearchCV(3 alphas x 3 folds) over "
        "make_pipeline(featurizer, RidgeClassifier), 64 px digits"
    )
    for label, row in cache.items():
        print(
            f"    {label:9s}: {row['images_forwarded']:5d} images through the "
            f"backbone, {row['seconds']:6.1f} s, best CV score "
            f"{row['best_score']:.3f}"
        )
    saved = cache["no cache"]["images_forwarded"] / cache["cache"]["images_forwarded"]
    print(f"    backbone work saved by the cache: {saved:.1f}x")


if __name__ == "__main__":
    main()
