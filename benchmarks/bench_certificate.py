"""Time to a *certified* relative duality gap, over nearby alphas.

``bench_solvers.py`` times each solver to a suboptimality measured against a
reference optimum at one alpha. This script times what a user asks for with
``tol``: one ``GroupLassoClassifier`` fit stopping at a certified relative gap,
at several alphas close to ``frac * alpha_max`` (``frac * (1 + e)`` for each
relative offset ``e``). A single alpha can hide how hard the certificate is:
on the K = 100 synthetic problem, before the Newton steps on the settled
support, 0.1 alpha_max computed in float64 certified 1e-6 in about 3,000
iterations while the same fraction of alpha_max computed in float32 (5.7e-8
away) stayed above a 1e-6 relative gap for 10,000; with them, eight alphas
from -1e-2 to +1e-2 away all certify in 1,200-1,600
(``results/bench_certificate_K100.log``; issue 18). Every row
is printed as its time over one scikit-learn ``LogisticRegression`` (L2,
lbfgs, default tol, ``C = 1 / (n l2)`` with ``l2 = 1e-3``) on the same data,
measured in the same run.

Example
-------
::

    python benchmarks/bench_certificate.py --d 20000 --classes 100 --tol 1e-6
    python benchmarks/bench_certificate.py --quick
"""

import argparse
import time
import warnings

import numpy as np
from _peers import LR_L2, run_sklearn_lr
from _problems import make_head2toe_problem
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from skhead2toe import GroupLassoClassifier
from skhead2toe.linear_model import alpha_max

OFFSETS = (-1e-2, -1e-4, -1e-6, 0.0, 1e-6, 1e-4, 1e-2)


def _floats(text):
    """``"-1e-6,0,1e-6"`` -> ``[-1e-06, 0.0, 1e-06]`` (argparse reads a lone
    ``-1e-6`` as an option, so the offsets are one comma-separated argument)."""
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        msg = f"not comma-separated numbers: {text!r}"
        raise argparse.ArgumentTypeError(msg) from None


def parse_args(argv=None):
    """The command line (``--help``)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--d", type=int, default=20000)
    p.add_argument("--classes", type=int, default=100)
    p.add_argument("--frac", type=float, default=0.1, help="alpha / alpha_max")
    p.add_argument(
        "--offsets",
        type=_floats,
        default=list(OFFSETS),
        help="relative offsets, comma-separated (e.g. --offsets=-1e-6,0,1e-6)",
    )
    p.add_argument("--tol", type=float, default=1e-6)
    p.add_argument("--max-iter", type=int, default=10_000)
    p.add_argument("--solver", default="newton")
    p.add_argument("--threads", type=int, default=1, help="BLAS threads")
    p.add_argument("--quick", action="store_true", help="a small problem, seconds")
    args = p.parse_args(argv)
    if args.quick:
        args.d, args.classes, args.offsets = 2000, 10, [-1e-4, 0.0, 1e-4]
    return args


def reference_time(X, y, l2=LR_L2):
    """Seconds of one default-tol ``LogisticRegression`` (the speed unit)."""
    return run_sklearn_lr(X, y, l2, tol=1e-4)[2]  # scikit-learn's default tol


def certified_fit(X, y, alpha, args):
    """One fit to ``tol``: seconds, iterations, relative gap, converged."""
    model = GroupLassoClassifier(
        alpha, tol=args.tol, max_iter=args.max_iter, solver=args.solver, device="cpu"
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    seconds = time.perf_counter() - start
    rgap = model.dual_gap_ / abs(model.objective_)
    return seconds, model.n_iter_, rgap, bool(model.converged_)


def main(argv=None):
    """Print one row per alpha offset, with its time over the reference."""
    args = parse_args(argv)
    problem = make_head2toe_problem(
        n=args.n, d=args.d, n_classes=args.classes, random_state=0
    )
    # float32 features, as the featurizer gives (and as bench_solvers times
    # LogisticRegression); alpha_max from their exact float64 values
    X, y = problem.X, problem.y
    with threadpool_limits(args.threads, "blas"):
        base = args.frac * alpha_max(X.astype(np.float64), y)
        ref = reference_time(X, y)
        print(f"n={args.n} d={args.d} K={args.classes} tol={args.tol:g}")
        print(f"one LogisticRegression: {ref:.2f} s")
        print(f"{'offset':>9s} {'seconds':>8s} {'ratio':>6s} {'iter':>6s} rel.gap  ok")
        times = []
        for e in args.offsets:
            sec, it, rgap, ok = certified_fit(X, y, base * (1.0 + e), args)
            times.append(sec)
            print(f"{e:+9.2e} {sec:8.2f} {sec / ref:6.2f} {it:6d} {rgap:.1e} {ok}")
        print(
            f"median {np.median(times) / ref:.2f}x, worst {max(times) / ref:.2f}x "
            "one LogisticRegression"
        )


if __name__ == "__main__":
    main()
