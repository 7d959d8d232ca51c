"""Time to a relative suboptimality target: skhead2toe's solvers against peers.

For every problem (Head2Toe-shaped synthetic features, or real features from an
``.npz`` file) and every ``alpha = frac * alpha_max``:

1. a high-precision reference optimum ``F*``: the best objective among
   skhead2toe's ``solver="newton"`` in float64 at ``tol=1e-10`` and glmnet's
   warm-started path at ``thresh=1e-12``; their relative disagreement is
   reported (the cross-check);
2. for every solver, the wall-clock time of the cheapest run (loosest
   stopping setting from a fixed ladder) whose objective -- evaluated by the
   independent float64 code in ``_peers.py`` -- satisfies
   ``(F - F*) / F* <= target`` (default ``1e-6``). A run under a second is
   repeated and timed by its fastest (``--repeat``, default best of 3), for
   every solver alike (glmnet's repeats run inside R);
3. peers in the same run: R's glmnet (single lambda, and glmnet's default
   lambda spacing down to ``alpha``; time of the glmnet call inside R),
   adelie (an 11-point path to ``alpha``, in its own environment: it needs
   numpy < 2; see ``_peers.adelie_python``), ``group-lasso`` (capped, its
   suboptimality at the cap is reported) and
   scikit-learn's ``LogisticRegression`` (L2 only, ``l2 = 1e-3``, as a speed
   reference against its own reference optimum);
4. a 20-alpha warm-started path (``group_lasso_path``) down to
   ``0.01 alpha_max`` against one fit at ``0.01 alpha_max``.

Examples
--------
::

    python benchmarks/bench_solvers.py --quick
    python benchmarks/bench_solvers.py --sizes 5000 20000 --classes 10
    python benchmarks/bench_solvers.py --features feats.npz --out results/real.csv
    python benchmarks/bench_solvers.py --digits --threads 1
"""

import argparse
import csv
import os
import platform
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _peers import (  # noqa: E402
    ADELIE_LADDER,
    LR_L2,
    GlmnetData,
    adelie_python,
    alpha_max,
    best_of,
    duality_gap,
    glmnet_path_lambdas,
    primal_objective,
    relative_suboptimality,
    rscript_available,
    run_adelie,
    run_group_lasso_capped,
    run_sklearn_lr,
)
from _problems import (  # noqa: E402
    benchmark_problems,
    load_digits_features,
    load_features,
)
from _summary import print_summary  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(HERE, ".cache", "featurizer")
CPU_SOLVERS = ["fista", "newton"]  # skhead2toe's numpy solvers, timed on every problem
TOL_LADDER = [1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9]
GLMNET_LADDER = [1e-6, 1e-7, 1e-8, 1e-9, 1e-10, 1e-11, 1e-12]
LR_LADDER = [1e-4, 1e-5, 1e-6, 1e-7, 1e-8]


def _ours_available():
    try:
        from skhead2toe.linear_model import GroupLassoClassifier  # noqa: F401
    except ImportError as exc:
        print(f"skhead2toe not importable ({exc}); benchmarking peers only")
        return False
    return True


def fit_ours(X, y, alpha, tol, solver="fista", device="cpu", dtype=None, **kw):
    """Fit skhead2toe's GroupLassoClassifier; return W (d, K), b, seconds, model."""
    from skhead2toe.linear_model import GroupLassoClassifier

    model = GroupLassoClassifier(
        alpha=alpha,
        tol=tol,
        max_iter=kw.pop("max_iter", 100_000),
        solver=solver,
        device=device,
        dtype=dtype,
        **kw,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        model.fit(X, y)
        seconds = time.perf_counter() - t0
    W = np.asarray(model.coef_, dtype=np.float64).T
    b = np.asarray(model.intercept_, dtype=np.float64)
    if W.shape[1] == 1:  # binary layout: (1, d) -> multinomial
        W = np.hstack([-W / 2, W / 2])
        b = np.array([-b[0] / 2, b[0] / 2])
    return W, b, seconds, model


class Recorder:
    """Collect result rows, print them as they come, write the CSV."""

    fields = [
        "problem",
        "n",
        "d",
        "K",
        "alpha_frac",
        "alpha",
        "method",
        "setting",
        "seconds",
        "rel_subopt",
        "reached",
        "n_iter",
        "note",
    ]

    def __init__(self, out):
        self.rows = []
        self.out = out

    def add(self, **row):
        row = {k: row.get(k, "") for k in self.fields}
        self.rows.append(row)
        sub = row["rel_subopt"]
        sub = f"{sub:9.2e}" if isinstance(sub, float) else f"{sub!s:>9}"
        print(
            f"  {row['method']:<18} {row['setting']!s:<14} "
            f"{row['seconds']:9.3f} s  subopt {sub}  {row['note']}",
            flush=True,
        )
        self.write()

    def write(self):
        if not self.out:
            return
        os.makedirs(os.path.dirname(os.path.abspath(self.out)), exist_ok=True)
        with open(self.out, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.fields)
            writer.writeheader()
            writer.writerows(self.rows)


def ladder(run, settings, F_star, target, X, y, alpha, time_cap):
    """Run ``run(setting)`` for loosening-to-tightening settings until on target.

    Returns a list of ``(setting, seconds, rel_subopt, n_iter)``; the last one
    reached the target unless the ladder or the time cap ran out.
    """
    out = []
    spent = 0.0
    for setting in settings:
        W, b, seconds, n_iter = run(setting)
        if W is None:
            out.append((setting, seconds, np.nan, n_iter))
            break
        F = primal_objective(X, y, W, b, alpha)
        sub = relative_suboptimality(F, F_star)
        out.append((setting, seconds, sub, n_iter))
        spent += seconds
        if sub <= target or spent > time_cap:
            break
    return out


def bench_problem(problem, args, rec, glmnet_ok, ours_ok, devices):
    X, y = problem.X, problem.y
    n, d, K = problem.n, problem.d, problem.n_classes
    print(f"\n=== {problem.name}  (n={n}, d={d}, K={K})", flush=True)
    am = alpha_max(X, y)
    base = dict(problem=problem.name, n=n, d=d, K=K)
    if ours_ok:
        from skhead2toe.linear_model import alpha_max as ours_alpha_max

        am_ours = ours_alpha_max(X, y)
        print(f"  alpha_max = {am:.6g} (skhead2toe: {am_ours:.6g})")
    else:
        print(f"  alpha_max = {am:.6g}")
    summary = []
    glm = GlmnetData(X, y) if glmnet_ok else None
    try:
        for frac in args.alphas:
            alpha = frac * am
            row = dict(base, alpha_frac=frac, alpha=alpha)
            print(f"-- alpha = {frac:g} alpha_max = {alpha:.4g}", flush=True)
            lam_path = glmnet_path_lambdas(alpha, am)

            # ---- reference optimum
            cands = {}
            if ours_ok:
                W, b, s, model = fit_ours(
                    X,
                    y,
                    alpha,
                    args.ref_tol,
                    "newton",
                    "cpu",
                    "float64",
                    max_iter=args.ref_max_iter,
                )
                cands[f"skhead2toe newton f64 tol={args.ref_tol:g}"] = (
                    primal_objective(X, y, W, b, alpha),
                    s,
                    W,
                    b,
                )
            if glm is not None:
                res = glm.run(
                    alpha, [1e-12], lambdas=lam_path, time_cap=1e9, maxit=1_000_000
                )
                r = res[-1]
                if r["W"] is None:
                    print(f"  glmnet reference failed: {r['warning']}")
                else:
                    cands["glmnet path thresh=1e-12"] = (
                        primal_objective(X, y, r["W"], r["b"], alpha),
                        r["seconds"],
                        r["W"],
                        r["b"],
                    )
            if not cands:
                raise RuntimeError("no reference solver available")
            F_star = min(v[0] for v in cands.values())
            for name, (F, s, W, b) in cands.items():
                gap, _ = duality_gap(X, y, W, b, alpha)
                nnz = int(np.any(W != 0, axis=1).sum())
                rec.add(
                    **row,
                    method="reference",
                    setting=name,
                    seconds=s,
                    rel_subopt=relative_suboptimality(F, F_star),
                    reached="",
                    note=f"F={F:.12g} gap={gap:.2e} active_rows={nnz}",
                )
            entry = dict(problem=problem.name, frac=frac)

            # ---- ours
            if ours_ok:
                for solver, device in [(s, "cpu") for s in CPU_SOLVERS] + [
                    ("torch", dev) for dev in devices
                ]:
                    name = f"ours-{solver}-{device}"

                    def run(tol, solver=solver, device=device, alpha=alpha):
                        W, b, s, m = best_of(
                            lambda: fit_ours(
                                X, y, alpha, tol, solver, device, args.dtype
                            ),
                            args.repeat,
                        )
                        return W, b, s, int(np.max(m.n_iter_))

                    lad = ladder(
                        run,
                        TOL_LADDER,
                        F_star,
                        args.target,
                        X,
                        y,
                        alpha,
                        args.cap,
                    )
                    entry[name] = _record_ladder(rec, row, name, "tol", lad, args)

            # ---- glmnet
            if glm is not None:
                for mode, lams in [("single", None), ("path", lam_path)]:
                    name = f"glmnet-{mode}"
                    res = glm.run(
                        alpha,
                        GLMNET_LADDER,
                        lambdas=lams,
                        f_star=F_star,
                        target=args.target,
                        time_cap=args.glmnet_cap,
                        repeat=args.repeat,
                    )
                    lad = []
                    for r in res:
                        if r["W"] is None:
                            lad.append((r["thresh"], r["seconds"], np.nan, -1))
                            continue
                        F = primal_objective(X, y, r["W"], r["b"], alpha)
                        lad.append(
                            (
                                r["thresh"],
                                r["seconds"],
                                relative_suboptimality(F, F_star),
                                r["npasses"],
                            )
                        )
                    note = f"{len(lams)} lambdas" if lams is not None else ""
                    entry[name] = _record_ladder(
                        rec, row, name, "thresh", lad, args, note
                    )

            # ---- adelie (PyPI, its own environment)
            if args.adelie_python:
                entry["adelie"] = _bench_adelie(X, y, alpha, am, F_star, rec, row, args)

            # ---- group-lasso (PyPI)
            if args.group_lasso_cap > 0:
                try:
                    W, b, s, it = run_group_lasso_capped(
                        X, y, alpha, args.group_lasso_cap
                    )
                    sub = relative_suboptimality(
                        primal_objective(X, y, W, b, alpha), F_star
                    )
                    reached = bool(sub <= args.target)
                    rec.add(
                        **row,
                        method="group-lasso",
                        setting=f"n_iter={it}",
                        seconds=s,
                        rel_subopt=sub,
                        reached=reached,
                        n_iter=it,
                        note="capped run" + ("" if reached else ": target missed"),
                    )
                    entry["group-lasso"] = (s, sub, reached)
                except ImportError:
                    print("  group-lasso not installed")
            summary.append(entry)

        # ---- scikit-learn LogisticRegression (L2 only), speed reference
        if args.lr:
            entry, default_tol_s = _bench_lr(X, y, rec, base, args)
            for e in summary:
                e["sklearn-LR"], e["sklearn-LR-default"] = entry, default_tol_s

        # ---- path vs single fit
        if ours_ok and args.path and min(args.alphas) > 0:
            _bench_path(X, y, am, rec, base, args, summary)
    finally:
        if glm is not None:
            glm.close()
    return summary


def _bench_adelie(X, y, alpha, am, F_star, rec, row, args):
    """adelie's 11-point path to ``alpha``, its tolerance ladder to the target."""

    def run(tol):
        W, b, s = run_adelie(X, y, alpha, am, tol, args.adelie_python)
        return W, b, s, -1

    lad = ladder(run, ADELIE_LADDER, F_star, args.target, X, y, alpha, args.adelie_cap)
    return _record_ladder(rec, row, "adelie-path", "tol", lad, args, "11 lambdas")


def _record_ladder(rec, row, name, what, lad, args, note=""):
    """Record every rung; return (seconds, subopt, reached) of the last one."""
    for i, (setting, s, sub, it) in enumerate(lad):
        last = i == len(lad) - 1
        reached = bool(sub <= args.target)
        rec.add(
            **row,
            method=name,
            setting=f"{what}={setting:g}",
            seconds=s,
            rel_subopt=float(sub),
            reached=reached if last else "",
            n_iter=it,
            note=(
                note
                + (" <- time to target" if last and reached else "")
                + (" (ladder/cap exhausted)" if last and not reached else "")
            ),
        )
    setting, s, sub, it = lad[-1]
    return (s, float(sub), bool(sub <= args.target))


def _bench_lr(X, y, rec, base, args):
    l2 = LR_L2
    row = dict(base, alpha_frac=0, alpha=0)
    print(f"-- sklearn LogisticRegression, l2 = {l2:g} (C = 1/(n l2))", flush=True)
    W, b, s, it = run_sklearn_lr(X, y, l2, tol=1e-10, max_iter=args.lr_max_iter)
    F_star = primal_objective(X, y, W, b, 0.0, l2)
    F_ours = np.inf
    if _ours_available():
        W2, b2, s2, m = fit_ours(
            X,
            y,
            0.0,
            args.ref_tol,
            "auto",
            "cpu",
            "float64",
            l2=l2,
            max_iter=args.ref_max_iter,
        )
        F_ours = primal_objective(X, y, W2, b2, 0.0, l2)
    rec.add(
        **row,
        method="reference-LR",
        setting="lbfgs tol=1e-10",
        seconds=s,
        rel_subopt=relative_suboptimality(F_star, min(F_star, F_ours)),
        n_iter=it,
        note=f"F={F_star:.12g}; skhead2toe alpha=0: F={F_ours:.12g}",
    )
    F_star = min(F_star, F_ours)

    def run(tol):
        return best_of(
            lambda: run_sklearn_lr(X, y, l2, tol=tol, max_iter=args.lr_max_iter),
            args.repeat,
        )

    def obj(W, b):
        return primal_objective(X, y, W, b, 0.0, l2)

    out = []
    for tol in LR_LADDER:
        W, b, s, it = run(tol)
        sub = relative_suboptimality(obj(W, b), F_star)
        out.append((tol, s, sub, it))
        if sub <= args.target or s > args.cap:
            break
    # the first rung is scikit-learn's default tol (1e-4): the time of "one
    # LogisticRegression" that our group-lasso fits are compared with
    default_tol_s = out[0][1]
    return (
        _record_ladder(rec, row, f"sklearn-LR-l2={l2:g}", "tol", out, args),
        default_tol_s,
    )


def _bench_path(X, y, am, rec, base, args, summary):
    from skhead2toe.linear_model import alpha_grid, group_lasso_path

    frac = min(args.alphas)
    alpha = frac * am
    alphas = alpha_grid(am, 20, frac)
    row = dict(base, alpha_frac=frac, alpha=alpha)
    print(f"-- 20-alpha path down to {frac:g} alpha_max vs one fit", flush=True)
    tol = 1e-6
    # the path and the single fit: the same solver ("auto": Newton on the CPU), tol
    W, b, s_single, m = best_of(
        lambda: fit_ours(X, y, alpha, tol, "auto", "cpu", args.dtype), args.repeat
    )

    def fit_path():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            out = group_lasso_path(
                X, y, alphas=alphas, tol=tol, max_iter=100_000, solver="auto"
            )
            return out, None, time.perf_counter() - t0

    out, _, s_path = best_of(fit_path, args.repeat)
    coefs, intercepts = out[1], out[2]
    Wp = np.asarray(coefs[-1], dtype=np.float64).T
    bp = np.asarray(intercepts[-1], dtype=np.float64)
    F_single = primal_objective(X, y, W, b, alpha)
    F_path = primal_objective(X, y, Wp, bp, alpha)
    rec.add(
        **row,
        method="ours-single-fit",
        setting=f"tol={tol:g}",
        seconds=s_single,
        rel_subopt="",
        note=f"F={F_single:.12g}",
    )
    rec.add(
        **row,
        method="ours-path-20",
        setting=f"tol={tol:g}",
        seconds=s_path,
        rel_subopt="",
        note=f"F={F_path:.12g} ratio path/single={s_path / s_single:.2f}",
    )
    for e in summary:
        if e["frac"] == frac:
            e["path-ratio"] = s_path / s_single


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--quick", action="store_true", help="d=5000, K=10 only, shorter caps"
    )
    p.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000, 100000])
    p.add_argument("--classes", type=int, nargs="+", default=[10, 100])
    p.add_argument(
        "--samples",
        type=int,
        default=1000,
        help="n of the synthetic problems (glmnet needs 2 per class: K=397 wants "
        "more than 1000)",
    )
    p.add_argument(
        "--alphas",
        type=float,
        nargs="+",
        default=[0.1, 0.01],
        help="alpha as fractions of alpha_max",
    )
    p.add_argument("--features", help=".npz file with X, y (and groups)")
    p.add_argument(
        "--digits",
        action="store_true",
        help="real features: MultiLayerFeaturizer on the first 1000 digit images "
        "(cached in benchmarks/.cache)",
    )
    p.add_argument(
        "--target", type=float, default=1e-6, help="relative suboptimality target"
    )
    p.add_argument(
        "--dtype",
        default=None,
        choices=[None, "float32", "float64"],
        help="dtype passed to skhead2toe (default: keep float32 data)",
    )
    p.add_argument(
        "--cuda",
        action="store_true",
        help="also time solver='torch' on CUDA (default: if available)",
    )
    p.add_argument("--no-glmnet", action="store_true")
    p.add_argument(
        "--adelie-python",
        default=None,
        help="python of an environment with adelie and numpy < 2 (default: "
        "benchmarks/.venv-adelie if it exists)",
    )
    p.add_argument("--no-adelie", action="store_true")
    p.add_argument(
        "--adelie-cap",
        type=float,
        default=120.0,
        help="seconds of adelie fits per tolerance ladder",
    )
    p.add_argument("--no-lr", dest="lr", action="store_false")
    p.add_argument("--no-path", dest="path", action="store_false")
    p.add_argument(
        "--group-lasso-cap",
        type=float,
        default=60.0,
        help="seconds for the group-lasso run (0: skip)",
    )
    p.add_argument(
        "--glmnet-cap",
        type=float,
        default=120.0,
        help="seconds of glmnet fits per threshold ladder",
    )
    p.add_argument(
        "--cap",
        type=float,
        default=120.0,
        help="seconds of fits per tolerance ladder (ours, sklearn)",
    )
    p.add_argument(
        "--ref-tol",
        type=float,
        default=1e-10,
        help="tolerance of skhead2toe's float64 reference fit",
    )
    p.add_argument("--ref-max-iter", type=int, default=20_000)
    p.add_argument("--lr-max-iter", type=int, default=20_000)
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="BLAS/torch threads for the Python solvers",
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs under a second are repeated this many times, fastest kept",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="CSV path (default results/...)")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.classes = [5000], [10]
        args.group_lasso_cap = min(args.group_lasso_cap, 15.0)
        args.glmnet_cap = min(args.glmnet_cap, 30.0)
        args.cap = min(args.cap, 30.0)
    if args.out is None:
        tag = "quick" if args.quick else "full"
        if args.features:
            tag = os.path.splitext(os.path.basename(args.features))[0]
        elif args.digits:
            tag = "digits"
        args.out = os.path.join(HERE, "results", f"bench_solvers_{tag}.csv")

    limiter = None
    if args.threads:
        from threadpoolctl import threadpool_limits

        limiter = threadpool_limits(args.threads)
        import torch

        torch.set_num_threads(args.threads)

    ours_ok = _ours_available()
    glmnet_ok = not args.no_glmnet and rscript_available()
    args.adelie_python = None if args.no_adelie else adelie_python(args.adelie_python)
    devices = ["cpu"]
    try:
        import torch

        if torch.cuda.is_available() or args.cuda:
            devices.append("cuda")
        torch_info = torch.__version__
    except ImportError:
        torch_info = "absent"
    print(
        f"# {platform.node()} {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cpus, numpy {np.__version__}, torch {torch_info}, "
        f"glmnet {'yes' if glmnet_ok else 'no'}, "
        f"adelie {'yes' if args.adelie_python else 'no'}, "
        f"threads {args.threads or 'all'}"
    )

    if args.features:
        problems = [load_features(args.features)]
    elif args.digits:
        problems = [load_digits_features(CACHE)]
    else:
        problems = benchmark_problems(
            args.sizes, args.classes, n=args.samples, random_state=args.seed
        )
    rec = Recorder(args.out)
    summaries = []
    t0 = time.perf_counter()
    for problem in problems:
        summaries += bench_problem(problem, args, rec, glmnet_ok, ours_ok, devices)
    print_summary(summaries, args.target)
    print(f"\ntotal {time.perf_counter() - t0:.0f} s; rows in {args.out}")
    if limiter is not None:
        limiter.unregister()


if __name__ == "__main__":
    main()
