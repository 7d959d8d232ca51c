"""Head2Toe's baselines table (Evci et al., ICML 2022, Table 1), offline, on CPU.

On 1000-image training sets, with the embedded EfficientNet-Lite0 at one
resolution for every method, report test accuracy, features used and total CPU
time (``time.process_time`` of this process, feature extraction included) of:
Linear, Control, All layers + L2, All layers + L1, Head2Toe, Head2Toe with
layer-wise groups, and full fine-tuning; plus each task's domain affinity and a
plot of the Head2Toe - Linear gain against it.

The feature-based methods share one extraction of the pretrained features: it
is timed once and its CPU time is added to each of their totals. The Control
extracts its own features (two random-weight networks) and is timed with them.
Fine-tuning's CPU time includes its learning-rate search.

The heads and their grids are those of :mod:`skhead2toe.experiments`, as in
``skhead2toe demo``. Usage (how long each takes: ``README.rst`` here)::

    OMP_NUM_THREADS=1 python benchmarks/transfer/run_baselines.py
    OMP_NUM_THREADS=1 python benchmarks/transfer/run_baselines.py --quick
    OMP_NUM_THREADS=1 python benchmarks/transfer/run_baselines.py --screen-variants

Writes ``results.csv``, ``results.json`` and ``gain_vs_affinity.png`` to
``--output-dir`` (default: this folder; ``--quick``: ``quick/`` under it).
"""

import argparse
import datetime
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # shared CPUs: no spinning

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _baselines as B  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

DEFAULT_TASKS = ("digits", "fashion-mnist", "fashion-mnist+block-shuffle")


def _log(message):
    stamp = time.strftime("%H:%M:%S")
    print(f"[{stamp}] {message}", file=sys.stderr, flush=True)


def metadata(argv, threads):
    """Commit, machine and command of this run."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=HERE,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    import sklearn
    import timm

    return {
        "git_commit": commit,
        "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "command": "OMP_NUM_THREADS=1 python "
        + " ".join(
            shlex.quote(a) for a in ["benchmarks/transfer/run_baselines.py"] + argv
        ),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "torch_threads": threads,
            "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
            "timm": timm.__version__,
            "scikit-learn": sklearn.__version__,
            "numpy": np.__version__,
        },
        "cpu_time": (
            "time.process_time() of the benchmark process around each method; the "
            "shared extraction of pretrained features is timed once and added to "
            "each feature-based method; fine-tuning includes its lr search"
        ),
    }


def make_config(args):
    """The run's :class:`_baselines.Config` from the command line."""
    cfg = B.Config(
        image_size=args.image_size,
        n_train=args.n_train,
        n_test=args.n_test,
        random_state=args.seed,
    )
    if args.quick:
        cfg = replace(
            cfg,
            image_size=min(args.image_size, 64),
            n_train=min(args.n_train, 120),
            n_test=args.n_test or 100,
            target_size=256,
            cv=2,
            l2_Cs=(1.0, 100.0),
            l1_Cs=(10.0,),
            h2t_alphas=3,
            h2t_keep_fractions=(0.05, 0.2),
            recipe=B.FinetuneRecipe(lrs=(0.03,), epochs=1, batch_size=16, max_shift=2),
        )
    if args.epochs is not None:
        cfg.recipe.epochs = tuple(args.epochs)
    if args.lrs is not None:
        cfg.recipe.lrs = tuple(args.lrs)
    return cfg


def run(args, argv):
    torch.set_num_threads(args.threads)
    cfg = make_config(args)
    out = Path(args.output_dir or (HERE / "quick" if args.quick else HERE))
    out.mkdir(parents=True, exist_ok=True)
    tasks = args.tasks or (
        ("digits", "digits+block-shuffle") if args.quick else DEFAULT_TASKS
    )
    for t in tasks:
        B.split_task(t)  # fail early on a bad name
    start = time.perf_counter()
    cpu0 = time.process_time()
    results = {
        "metadata": metadata(argv, torch.get_num_threads()),
        "config": cfg.to_dict(),
        "tasks": [],
    }
    for task in tasks:
        results["tasks"].append(B.run_task(task, cfg, methods=args.methods, log=_log))
        results["summary"] = B.summarize(results["tasks"])
        results["metadata"]["total_wall_s"] = round(time.perf_counter() - start, 1)
        results["metadata"]["total_cpu_s"] = round(time.process_time() - cpu0, 1)
        B.write_json(out / "results.json", results)  # partial results survive
        B.write_csv(
            out / "results.csv",
            B.csv_rows(results["tasks"], results["metadata"]["git_commit"]),
        )
    if not args.no_plot:
        B.plot_gain_vs_affinity(results, out / "gain_vs_affinity.png")
    print(B.format_table(results))
    _log(
        f"done in {results['metadata']['total_wall_s']:.0f} s wall, "
        f"{results['metadata']['total_cpu_s']:.0f} s CPU; wrote {out}"
    )
    return results


def screen_variants(args, argv):
    """Domain affinity of every variant in :data:`_baselines.VARIANTS`."""
    from skhead2toe import MultiLayerFeaturizer
    from skhead2toe.inspection import domain_affinity
    from skhead2toe.linear_model import LinearProbe

    torch.set_num_threads(args.threads)
    cfg = make_config(args)
    out = Path(args.output_dir or (HERE / "quick" if args.quick else HERE))
    out.mkdir(parents=True, exist_ok=True)
    bases = [t for t in (args.tasks or B.TASK_BASES) if "+" not in t]
    rows = []
    for base in bases:
        for variant in (None, *B.VARIANTS):
            task = base if variant is None else f"{base}+{variant}"
            X_train, _, y_train, _ = B.load_task(
                task, cfg.n_train, cfg.n_test, cfg.random_state
            )
            feat = MultiLayerFeaturizer(
                cfg.backbone,
                layers="last",
                image_size=cfg.image_size,
                progress=False,
                random_state=cfg.random_state,
            )
            Z = feat.fit_transform(X_train)
            probe = B._l2_probe(cfg).fit(Z, y_train)
            aff = domain_affinity(
                Z,
                y_train,
                X_scratch=X_train.reshape(len(X_train), -1) / 255.0,
                estimator=LinearProbe(C=probe.C_),
                cv=cfg.cv,
            )
            rows.append(
                {
                    "task": task,
                    "domain_affinity": round(aff.affinity, 4),
                    "linear_probe_cv_accuracy": round(aff.linear_score, 4),
                    "from_scratch_cv_accuracy": round(aff.scratch_score, 4),
                }
            )
            _log(f"screen {task}: affinity {aff.affinity:+.4f}")
    cols = tuple(rows[0])
    B.write_csv(out / "variant_screen.csv", rows, columns=cols)
    B.write_json(
        out / "variant_screen.json",
        {"metadata": metadata(argv, torch.get_num_threads()), "rows": rows},
    )
    for r in rows:
        print(
            "  ".join(f"{r[c]!s:>34s}" if c == "task" else f"{r[c]:+.4f}" for c in cols)
        )


def merge_tasks(parts):
    """The tasks of several runs; rows of the same task are combined by method.

    Runs may split the work by task or by method (e.g. fine-tuning in one run,
    the feature-based methods in another). When several runs hold the same
    method on the same task, the run listed last wins, and so do its task-level
    measurements (extraction, domain affinity). Every row records the commit
    of the run that produced it.
    """
    tasks = {}
    for part in parts:
        commit = part["metadata"].get("git_commit")
        for task in part["tasks"]:
            rows = {
                r["method"]: r for r in tasks.get(task["task"], {}).get("methods", [])
            }
            rows |= {
                r["method"]: {**r, "git_commit": r.get("git_commit", commit)}
                for r in task["methods"]
            }
            order = [m for m in B.METHODS if m in rows] + [
                m for m in rows if m not in B.METHODS
            ]
            tasks[task["task"]] = {**task, "methods": [rows[m] for m in order]}
    return list(tasks.values())


def merge(args, argv):
    """Combine the ``results.json`` of runs made separately (e.g. one per task)."""
    import json

    parts = [json.loads(Path(p).read_text()) for p in args.merge]
    out = Path(args.output_dir or HERE)
    out.mkdir(parents=True, exist_ok=True)
    meta = dict(parts[0]["metadata"])
    meta["runs"] = [
        {
            k: p["metadata"].get(k)
            for k in (
                "command",
                "git_commit",
                "date_utc",
                "total_cpu_s",
                "total_wall_s",
            )
        }
        for p in parts
    ]
    meta["command"] = " && ".join(r["command"] for r in meta["runs"])
    meta["merge_command"] = "python " + " ".join(
        shlex.quote(a) for a in ["benchmarks/transfer/run_baselines.py"] + argv
    )
    meta["total_cpu_s"] = round(sum(r["total_cpu_s"] for r in meta["runs"]), 1)
    meta["total_wall_s"] = round(max(r["total_wall_s"] for r in meta["runs"]), 1)
    configs = {json.dumps(p["config"], sort_keys=True) for p in parts}
    if len(configs) != 1:
        raise SystemExit("--merge: the runs have different configurations")
    tasks = merge_tasks(parts)
    results = {"metadata": meta, "config": parts[0]["config"], "tasks": tasks}
    results["summary"] = B.summarize(tasks)
    B.write_json(out / "results.json", results)
    B.write_csv(out / "results.csv", B.csv_rows(tasks))
    if not args.no_plot:
        B.plot_gain_vs_affinity(results, out / "gain_vs_affinity.png")
    print(B.format_table(results))
    return results


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--tasks",
        nargs="+",
        help="tasks: digits, fashion-mnist, or <base>+<variant> with variant in "
        f"{sorted(B.VARIANTS)} (default: {' '.join(DEFAULT_TASKS)})",
    )
    parser.add_argument(
        "--methods", nargs="+", default=list(B.METHODS), choices=B.METHODS
    )
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument(
        "--n-test",
        type=int,
        default=None,
        help="test images (default: the rest of digits, 2000 of Fashion-MNIST)",
    )
    parser.add_argument("--epochs", type=int, nargs="+", help="fine-tuning epoch grid")
    parser.add_argument("--lrs", type=float, nargs="+", help="fine-tuning lr grid")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument(
        "--quick", action="store_true", help="tiny configuration (about a minute)"
    )
    parser.add_argument(
        "--screen-variants",
        action="store_true",
        help="only measure the domain affinity of every variant of the bases",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        metavar="RESULTS_JSON",
        help="combine the results.json of separate runs (same configuration)",
    )
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--output-dir", type=Path)
    args = parser.parse_args(argv)
    if args.merge:
        return merge(args, argv)
    if args.screen_variants:
        return screen_variants(args, argv)
    return run(args, argv)


if __name__ == "__main__":
    main()
