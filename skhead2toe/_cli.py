"""Command line: ``skhead2toe demo`` (also ``python -m skhead2toe demo``)."""

import argparse
import sys
import time

__all__ = ["main"]


def _demo(args):
    """Fit the group-lasso head on scikit-learn's digits and print a small table."""
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    from skhead2toe.linear_model import GroupLassoClassifierCV

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, train_size=args.n_train, stratify=y, random_state=args.random_state
    )
    rows = []
    start = time.perf_counter()
    n = len(y_train)
    linear = LogisticRegression(C=1.0 / (n * 1e-3), max_iter=2000).fit(X_train, y_train)
    rows.append(
        (
            "L2 logistic (all pixels)",
            linear.score(X_test, y_test),
            X.shape[1],
            time.perf_counter() - start,
        )
    )
    start = time.perf_counter()
    head = GroupLassoClassifierCV(
        alphas=10,
        keep_fractions=[0.25, 0.5, 1.0],
        cv=3,
        tol=1e-5,
        random_state=args.random_state,
    ).fit(X_train, y_train)
    rows.append(
        (
            "Group lasso + refit (CV)",
            head.score(X_test, y_test),
            int(head.selected_features_.sum()),
            time.perf_counter() - start,
        )
    )
    print(f"digits pixels: {len(y_train)} training / {len(y_test)} test images")
    print(f"{'method':28s} {'test acc':>8s} {'features':>8s} {'seconds':>8s}")
    for name, acc, nfeat, sec in rows:
        print(f"{name:28s} {acc:8.4f} {nfeat:8d} {sec:8.2f}")
    print(
        f"chosen alpha = {head.alpha_:.3g} ({head.alpha_ / head.alphas_[0]:.3g} "
        f"alpha_max), keep_fraction = {head.keep_fraction_}"
    )
    return 0 if np.isfinite(rows[-1][1]) else 1


def main(argv=None):
    """Entry point of the ``skhead2toe`` command.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        Exit status.
    """
    parser = argparse.ArgumentParser(
        prog="skhead2toe", description="Head2Toe for scikit-learn."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="fit the group-lasso head on digits")
    demo.add_argument("--n-train", type=int, default=1000, help="training images")
    demo.add_argument("--random-state", type=int, default=0, help="seed")
    demo.set_defaults(func=_demo)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
