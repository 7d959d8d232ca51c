"""``skhead2toe fit``: features or an image folder to a fitted model (.joblib)."""

from pathlib import Path

from skhead2toe._cli._checks import _output, _prepare, _write
from skhead2toe._cli._errors import _UsageError
from skhead2toe._cli._features import _load_features
from skhead2toe._cli._images import _features, _featurizer, _images
from skhead2toe._cli._options import (
    _command,
    _featurizer_options,
    _fractions,
    _model_options,
    _output_option,
    _positive_int,
    _skip_bad_option,
)

__all__ = ["add_parser"]

_EPILOG_FIT = """\
examples:
  skhead2toe fit features.npz -o head.joblib
      tune a Head2Toe head on features written by `skhead2toe extract`
  skhead2toe fit photos/ -o model.joblib --image-size 128
      extract features of photos/<class>/<image>, then tune the head; the
      saved model is a fitted pipeline (featurizer + head) that predicts
      on images: joblib.load("model.joblib").predict(["new.jpg"])

The head is a GroupLassoClassifierCV: alpha is chosen on a path from
alpha_max down, together with the fraction of features kept, by
cross-validation; the printed accuracy is the cross-validated one.
"""


def _fit(args):
    import joblib
    from sklearn.pipeline import Pipeline

    from skhead2toe import GroupLassoClassifierCV

    out = _output(args, ".joblib")
    source = Path(args.input)
    if not source.exists():
        raise FileNotFoundError(f"input {args.input!r} does not exist")
    if not source.is_dir() and source.suffix != ".npz":
        raise _UsageError(
            f"input {args.input!r} must be a features .npz file (from `skhead2toe "
            "extract`) or a folder of class sub-folders of images"
        )
    _prepare(args, out, featurizer=source.is_dir())
    feat = None
    if source.is_dir():
        paths, y = _images([args.input], args.skip_bad, "fit")
        feat = _featurizer(args)
        X = _features(feat, paths, args)
        groups = feat.feature_groups_
    else:
        X, y, groups = _load_features(source)
    if args.layer_groups and groups is None:
        raise _UsageError(f"--layer-groups needs feature_groups in {args.input!r}")
    head = GroupLassoClassifierCV(
        alphas=args.alphas,
        keep_fractions=None if args.layer_groups else args.keep_fractions,
        selection=args.selection,
        layers="auto" if groups is None else groups,
        groups=groups if args.layer_groups else None,
        cv=args.cv,
        n_jobs=args.n_jobs,
        random_state=args.seed,
        verbose=0,
    ).fit(X, y)
    model = head if feat is None else Pipeline([("features", feat), ("head", head)])
    _write(out, lambda f: joblib.dump(model, f))
    alpha = "" if head.alpha_ is None else f"{head.alpha_ / head.alphas_[0]:.3g} "
    print(
        f"cross-validated accuracy "
        f"{head.cv_results_['mean_test_score'][head.best_index_]:.4f} "
        f"({head.cv or 5}-fold): {head.candidate_} ({alpha or 'no '}alpha_max, "
        f"keep_fraction = {head.keep_fraction_}, refit_l2 = {head.refit_l2_}); "
        f"{int(head.selected_features_.sum())} of {X.shape[1]} features used"
    )
    print(f"wrote {out}: load it with joblib.load({str(out)!r})")
    return 0


def add_parser(sub):
    """Add the ``fit`` command to the sub-parsers of ``skhead2toe``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.

    Returns
    -------
    parser : argparse.ArgumentParser
        The command's parser; it runs the command as ``args.func(args)``.
    """
    from skhead2toe.linear_model._cv import AUTO_KEEP_FRACTIONS as KEEP_FRACTIONS

    fit = _command(
        sub,
        "fit",
        _fit,
        help="features or images -> a fitted model (.joblib) with CV accuracy",
        description="Tune and fit a Head2Toe head (GroupLassoClassifierCV).",
        epilog=_EPILOG_FIT,
    )
    fit.add_argument("input", help="features .npz or a folder of class sub-folders")
    _output_option(fit, "model file (.joblib)")
    fit.add_argument(
        "--alphas",
        type=_positive_int,
        default=6,
        help="alphas on the path from alpha_max down (default: %(default)s)",
    )
    fit.add_argument(
        "--keep-fractions",
        type=_fractions,
        default=list(KEEP_FRACTIONS),
        help="fractions of features kept and refitted, comma-separated; 1 is "
        f"every feature (default: {','.join(f'{v:g}' for v in KEEP_FRACTIONS)})",
    )
    fit.add_argument(
        "--selection",
        choices=("best", "1se"),
        default="best",
        help="best mean CV score, or the fewest features within one standard "
        "error of it (default: %(default)s)",
    )
    fit.add_argument(
        "--layer-groups",
        action="store_true",
        help="select whole layers (one group per layer) instead of features",
    )
    _skip_bad_option(fit)
    _featurizer_options(fit)
    _model_options(fit, cv=5)
    return fit
