"""The transfer suite: heads on many image tasks across domain affinity, resumable.

Every (task, seed, method) result is cached as one JSON record under
``--cache-dir`` (default ``benchmarks/transfer/cache/``), next to the task's
features (extracted once per task, for every image its seeds need), so an
interrupted run resumes and a later run only computes the missing cells; a
method that cannot run yet (the new ``GroupLassoClassifierCV`` API) is skipped
and computed on a later run. ``--force METHOD`` recomputes a method's cells.

Each run ends with the report of everything cached for the tasks and methods
asked: ``suite_results.{csv,json}``, ``suite_table.rst`` and
``suite_gain_vs_affinity.png`` in ``--output-dir`` (default: this folder).
Usage (the commands of the committed run: ``README.rst`` here)::

    OMP_NUM_THREADS=1 python benchmarks/transfer/run_suite.py --tasks digits \\
        --methods Linear "All layers + L2"
    OMP_NUM_THREADS=1 python benchmarks/transfer/run_suite.py --report-only
"""

import argparse
import os
import sys
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # shared CPUs: one thread unless told
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _baselines as B  # noqa: E402
import _suite as S  # noqa: E402


def _log(message):
    stamp = time.strftime("%H:%M:%S")
    print(f"[{stamp}] {message}", file=sys.stderr, flush=True)


def parse_args(argv=None):
    """The command line (``--help``)."""
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Tasks: " + ", ".join(S.TASKS) + ".\nMethods: " + ", ".join(S.METHODS),
    )
    p.add_argument("--tasks", nargs="+", default=None, help="default: all TASKS")
    p.add_argument(
        "--methods",
        nargs="+",
        default=None,
        help="methods to compute (default: the baselines: "
        + ", ".join(S.BASELINE_METHODS)
        + "); the report shows every cached method",
    )
    p.add_argument("--seeds", nargs="+", type=int, default=list(S.SEEDS))
    p.add_argument(
        "--force",
        nargs="+",
        default=[],
        metavar="METHOD",
        help="recompute these methods' cells even if cached",
    )
    p.add_argument("--force-extract", action="store_true", help="re-extract features")
    p.add_argument("--cache-dir", type=Path, default=S.DEFAULT_CACHE)
    p.add_argument("--output-dir", type=Path, default=HERE)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--extract-only", action="store_true", help="only extract features")
    p.add_argument(
        "--report-only", action="store_true", help="only report the cached cells"
    )
    p.add_argument("--no-report", action="store_true", help="compute, do not report")
    p.add_argument("--no-plot", action="store_true")
    args = p.parse_args(argv)
    for t in args.tasks or ():
        S.split_task(t)  # fail early on a bad name
    for m in [*(args.methods or ()), *args.force]:
        if m not in S.METHODS:
            p.error(f"unknown method {m!r}; one of {list(S.METHODS)}")
    return args


def config(args):
    """The suite's :class:`_baselines.Config` (128 px, 1024 features per layer)."""
    return B.Config(image_size=128, target_size=1024, n_train=1000, n_test=2000)


def compute(args, cfg):
    """Run every requested (task, seed, method) cell not cached yet."""
    import torch

    torch.set_num_threads(args.threads)
    methods = [] if args.extract_only else (args.methods or list(S.BASELINE_METHODS))
    for task in args.tasks or S.TASKS:
        try:
            S.run_task(
                task,
                cfg,
                args.cache_dir,
                seeds=args.seeds,
                methods=methods,
                force=set(args.force),
                force_extract=args.force_extract,
                log=_log,
            )
        except FileNotFoundError as exc:  # e.g. no Fashion-MNIST here
            _log(f"{task}: skipped ({exc})")


def main(argv=None):
    args = parse_args(argv)
    cfg = config(args)
    if not args.report_only:
        compute(args, cfg)
    if args.no_report or args.extract_only:
        return None
    report = S.build_report(
        args.cache_dir, tasks=args.tasks or S.TASKS, seeds=args.seeds, cfg=cfg
    )
    S.write_report(report, args.output_dir, plot=not args.no_plot)
    print(report["rst"])
    return report


if __name__ == "__main__":
    main()
