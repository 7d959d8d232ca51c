"""Yosinski et al. (2014) AnB / BnB transfer curves on Fashion-MNIST, offline.

For each seed: a random half of the 10 Fashion-MNIST classes is task A, the
other half task B; ``--n-train`` images drawn from the training set (about half
per task) train baseA, baseB and, for every depth n = 1..4, the BnB, BnB+,
AnB, AnB+ and random-filters networks of the five-layer CNN of
``skhead2toe.transfer.make_cnn`` (conv1 conv2 conv3 fc4 fc5); every network is
scored on the 10,000-image test set (the half of it in its task). A linear
probe on each layer of baseA, for task B, is scored on the same test images.

Writes, next to this script (or in ``--out-dir``):

- ``results.csv``: one row per network or probe (seed, variant, n, task,
  accuracy);
- ``summary.csv``: mean, std, min, max over the seeds per (variant, n, task);
- ``summary_vs_baseB.csv``: the same for each accuracy minus baseB's of the same
  seed (each seed draws its own class split, so B's difficulty varies between
  seeds; the paired differences remove that);
- ``metadata.json``: git commit, machine (platform, CPU count, torch version,
  threads), parameters and wall-clock time per seed;
- ``anb_fashion_mnist.png``: the figure.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/yosinski/run_anb.py

The defaults are 3 seeds, 6000 training images and 5 epochs (the wall-clock
time of a run is recorded in ``metadata.json``). Needs the Debian package
``dataset-fashion-mnist`` (or ``--data-dir`` with the four IDX files).
"""

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
LAYERS = ["conv1", "conv2", "conv3", "fc4"]
CODE = [str(HERE.parents[1] / p) for p in ("skhead2toe", "benchmarks/yosinski")]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n-train", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out-dir", type=Path, default=HERE)
    return parser.parse_args(argv)


def git_commit():
    def git(*args):
        return subprocess.run(
            ["git", *args], cwd=HERE, capture_output=True, text=True
        ).stdout.strip()

    commit = git("rev-parse", "HEAD") or None
    # Uncommitted changes to the code that produced the results (the outputs
    # written next to this script are not code).
    changed = git("status", "--porcelain", "--untracked-files=no", "--", *CODE)
    return commit, bool(changed)


def machine(threads):
    import sklearn
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "torch_threads": threads,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
    }


def write_csv(path, rows):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {k: f"{v:.4f}" if isinstance(v, float) else v for k, v in row.items()}
            )


def print_table(summary, title):
    mean = {(s["variant"], s["n"]): s for s in summary}
    print(title)
    if ("baseA", 0) in mean:
        print(
            f"baseA (on A): {mean['baseA', 0]['mean']:.4f}   "
            f"baseB (on B): {mean['baseB', 0]['mean']:.4f}"
        )
    columns = ["BnB", "BnB+", "AnB", "AnB+", "random", "probe", "probe random"]
    print("n  " + " ".join(f"{c:>15s}" for c in columns))
    for n in range(1, len(LAYERS) + 1):
        cells = (
            f"{mean[c, n]['mean']:.4f}\u00b1{mean[c, n]['std']:.4f}" for c in columns
        )
        print(f"{n}  " + " ".join(f"{c:>15s}" for c in cells))


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skhead2toe.plotting import TransferabilityCurveDisplay, TransferCurvesDisplay
    from skhead2toe.transfer import summarize_results

    summary = summarize_results(results, baseline="baseB")

    def curve(variant):
        rows = [s for s in summary if s["variant"] == variant]
        return [s["mean"] for s in rows], [s["std"] for s in rows]

    fig, (ax_anb, ax_probe) = plt.subplots(1, 2, figsize=(12, 4.8))
    TransferCurvesDisplay.from_results(results, ax=ax_anb, baseline="baseB")
    ax_anb.set_title("Fashion-MNIST: transfer A \u2192 B")
    (probe, probe_std), (control, control_std) = curve("probe"), curve("probe random")
    TransferabilityCurveDisplay(
        layer_names=LAYERS,
        mean_scores=probe,
        std_scores=probe_std,
        control_mean_scores=control,
        control_std_scores=control_std,
    ).plot(
        ax=ax_probe,
        name="baseA's layer n, linear probe",
        ylabel="accuracy on B minus baseB's (same seed)",
    )
    anb, _ = curve("AnB")
    ax_probe.plot(
        range(len(LAYERS)), anb, "D-", color="tab:red", alpha=0.5, label="AnB"
    )
    ax_probe.legend(fontsize="small")
    ax_probe.set_title("Probing baseA's layers for task B")
    ax_probe.set_ylim(ax_anb.get_ylim())
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main(argv=None):
    args = parse_args(argv)
    import torch

    from skhead2toe.datasets import load_fashion_mnist
    from skhead2toe.transfer import run_transfer_experiment, summarize_results

    torch.set_num_threads(args.threads)
    X_test, y_test = load_fashion_mnist(args.data_dir, subset="test")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    commit, dirty = git_commit()
    results, seconds = [], {}
    start = time.perf_counter()
    for seed in args.seeds:
        tic = time.perf_counter()
        X, y = load_fashion_mnist(
            args.data_dir, n_samples=args.n_train, random_state=seed
        )
        results += run_transfer_experiment(
            X,
            y,
            X_test=X_test,
            y_test=y_test,
            epochs=args.epochs,
            random_state=seed,
            verbose=True,
        )
        seconds[str(seed)] = round(time.perf_counter() - tic, 1)
        print(f"seed {seed}: {seconds[str(seed)]:.0f} s", flush=True)
    total = time.perf_counter() - start
    summary = summarize_results(results)
    paired = summarize_results(results, baseline="baseB")
    write_csv(args.out_dir / "results.csv", results)
    write_csv(args.out_dir / "summary.csv", summary)
    write_csv(args.out_dir / "summary_vs_baseB.csv", paired)
    plot(results, args.out_dir / "anb_fashion_mnist.png")
    metadata = {
        "command": "OMP_NUM_THREADS=1 python benchmarks/yosinski/run_anb.py "
        + " ".join(sys.argv[1:] if argv is None else argv),
        "git_commit": commit,
        "git_dirty": dirty,
        "machine": machine(args.threads),
        "dataset": "Fashion-MNIST (Debian dataset-fashion-mnist)",
        "parameters": {
            "seeds": args.seeds,
            "n_train": args.n_train,
            "n_test": len(X_test),
            "epochs": args.epochs,
            "network": "make_cnn defaults: conv1-3 (16, 32, 64 ch), fc4 (128), fc5",
            "recipe": "train_network defaults: SGD Nesterov 0.9, lr 0.02 cosine, "
            "weight decay 5e-4, batch 64",
        },
        "seconds_per_seed": seconds,
        "seconds_total": round(total, 1),
    }
    (args.out_dir / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    print_table(summary, "Test accuracy on B, mean \u00b1 std over seeds:")
    print_table(paired, "Accuracy minus baseB's, same seed, mean \u00b1 std:")
    print(f"total: {total:.0f} s; results in {args.out_dir}")


if __name__ == "__main__":
    main()
