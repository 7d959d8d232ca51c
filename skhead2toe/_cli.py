"""Command line: ``skhead2toe demo | extract | fit`` (also ``python -m skhead2toe``).

Errors a user can fix (a missing file, a bad option value) are printed as one line
``skhead2toe <command>: error: ...`` with exit status 2 for bad options and 1 for
everything else; nothing half-written is left behind.
"""

import argparse
import sys
from pathlib import Path

__all__ = ["main"]

_EPILOG_EXTRACT = """\
examples:
  skhead2toe extract photos/ -o features.npz
      photos/<class>/<image>: features of every image, with the class labels
  skhead2toe extract a.jpg b.png -o features.npz --image-size 128
      just these files (no labels)

The .npz file holds X (n_images, n_features) float32, feature_names,
feature_groups (layer index of each column), layer_names, paths, and y when
the input was a folder of class sub-folders. Load it with numpy.load.
"""

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


class _UsageError(ValueError):
    """A bad option value: reported like argparse's own errors (exit status 2)."""


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _fractions(text):
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers in (0, 1], got {text!r}"
        ) from None
    if not values or any(not 0 < v <= 1 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated numbers in (0, 1], got {text!r}"
        )
    return values


def _featurizer_options(parser):
    group = parser.add_argument_group("featurizer")
    group.add_argument(
        "--backbone",
        default="efficientnet_lite0",
        help="alias or timm model name (default: %(default)s, embedded, offline)",
    )
    group.add_argument(
        "--weights",
        default=None,
        metavar="PATH",
        help="local .pth or .safetensors weights for a hub backbone",
    )
    group.add_argument(
        "--random-weights",
        action="store_true",
        help="seeded random weights instead of pretrained ones (a control)",
    )
    group.add_argument(
        "--layers",
        default="head2toe",
        help="preset (head2toe, blocks, last), or comma-separated names or "
        "glob patterns (default: %(default)s)",
    )
    group.add_argument(
        "--target-size",
        type=_positive_int,
        default=1024,
        help="largest number of pooled features per layer (default: %(default)s)",
    )
    group.add_argument(
        "--image-size",
        type=_positive_int,
        default=None,
        help="model input side in pixels (default: the backbone's, 224)",
    )
    group.add_argument(
        "--batch-size", type=_positive_int, default=32, help="images per batch"
    )
    group.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, ...")
    group.add_argument(
        "--cache", default=None, metavar="DIR", help="per-image feature cache folder"
    )
    group.add_argument(
        "--seed", type=int, default=0, help="seed of random weights (default: 0)"
    )


def _featurizer(args):
    from skhead2toe import MultiLayerFeaturizer

    if args.weights is not None and args.random_weights:
        raise _UsageError("--weights and --random-weights exclude each other")
    if args.weights is not None and not Path(args.weights).is_file():
        raise FileNotFoundError(f"weights file {args.weights!r} does not exist")
    pretrained = (
        False if args.random_weights else (args.weights if args.weights else True)
    )
    layers = args.layers
    if "," in layers:
        layers = [name.strip() for name in layers.split(",") if name.strip()]
    return MultiLayerFeaturizer(
        args.backbone,
        layers=layers,
        target_size=args.target_size,
        pretrained=pretrained,
        image_size=args.image_size,
        device=args.device,
        batch_size=args.batch_size,
        cache=args.cache,
        progress="auto",
        random_state=args.seed,
    )


def _images(inputs):
    """Image paths (and labels for a single folder of class sub-folders)."""
    from skhead2toe.datasets import load_image_folder

    if len(inputs) == 1 and Path(inputs[0]).is_dir():
        return load_image_folder(inputs[0])
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            raise _UsageError(
                f"{item!r} is a folder: give one folder of class sub-folders, "
                "or image files"
            )
        if not path.is_file():
            raise FileNotFoundError(f"image file {item!r} does not exist")
    return list(inputs), None


def _check_output(path, suffix):
    path = Path(path)
    if path.suffix != suffix:
        raise _UsageError(f"the output file must end with {suffix}, got {str(path)!r}")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"output folder {str(path.parent)!r} does not exist")
    return path


def _extract(args):
    import numpy as np

    from skhead2toe._io import atomic_write

    out = _check_output(args.output, ".npz")
    paths, labels = _images(args.inputs)
    feat = _featurizer(args)
    X = feat.fit_transform(paths)
    arrays = {
        "X": X,
        "feature_names": feat.get_feature_names_out().astype(str),
        "feature_groups": feat.feature_groups_,
        "layer_names": feat.layer_names_.astype(str),
        "paths": np.asarray(paths, dtype=str),
        "backbone": np.asarray(feat.backbone_tag_ or args.backbone),
    }
    if labels is not None:
        arrays["y"] = labels
    atomic_write(out, lambda f: np.savez(f, **arrays))
    print(
        f"wrote {out}: {X.shape[0]} images x {X.shape[1]} features from "
        f"{len(feat.layer_names_)} layers"
        + (f", {len(np.unique(labels))} classes" if labels is not None else "")
    )
    return 0


def _load_features(path):
    import numpy as np

    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read features file {str(path)!r}: {exc}") from None
    missing = {"X", "y"} - set(data.files)
    if missing:
        raise ValueError(
            f"features file {str(path)!r} lacks {sorted(missing)}: write it with "
            "`skhead2toe extract <folder of class sub-folders> -o FILE.npz`"
        )
    groups = data["feature_groups"] if "feature_groups" in data.files else None
    return data["X"], data["y"], groups


def _fit(args):
    import joblib
    from sklearn.pipeline import Pipeline

    from skhead2toe import GroupLassoClassifierCV
    from skhead2toe._io import atomic_write

    out = _check_output(args.output, ".joblib")
    source = Path(args.input)
    if not source.exists():
        raise FileNotFoundError(f"input {args.input!r} does not exist")
    feat = None
    if source.is_dir():
        paths, y = _images([args.input])
        feat = _featurizer(args)
        X = feat.fit_transform(paths)
        groups = feat.feature_groups_
    elif source.suffix == ".npz":
        X, y, groups = _load_features(source)
    else:
        raise _UsageError(
            f"input {args.input!r} must be a features .npz file (from `skhead2toe "
            "extract`) or a folder of class sub-folders of images"
        )
    if args.layer_groups and groups is None:
        raise _UsageError(f"--layer-groups needs feature_groups in {args.input!r}")
    head = GroupLassoClassifierCV(
        alphas=args.alphas,
        keep_fractions=None if args.layer_groups else args.keep_fractions,
        groups=groups if args.layer_groups else None,
        cv=args.cv,
        n_jobs=args.n_jobs,
        random_state=args.seed,
        verbose=0,
    ).fit(X, y)
    model = head if feat is None else Pipeline([("features", feat), ("head", head)])
    atomic_write(out, lambda f: joblib.dump(model, f))
    print(
        f"cross-validated accuracy {head.mean_scores_.max():.4f} ({head.cv}-fold) "
        f"at alpha = {head.alpha_:.3g} ({head.alpha_ / head.alphas_[0]:.3g} "
        f"alpha_max), keep_fraction = {head.keep_fraction_}, refit_l2 = "
        f"{head.refit_l2_}; "
        f"{int(head.selected_features_.sum())} of {X.shape[1]} features used"
    )
    print(f"wrote {out}: load it with joblib.load({str(out)!r})")
    return 0


def _demo(args):
    from skhead2toe._demo import run_demo

    if args.n_train < 10:
        raise _UsageError(f"--n-train must be at least 10, got {args.n_train}")
    run_demo(
        dataset=args.dataset,
        n_train=args.n_train,
        n_test=args.n_test,
        backbone=args.backbone,
        pretrained=False if args.random_weights else (args.weights or True),
        image_size=args.image_size,
        cv=args.cv,
        output_dir=args.output_dir,
        cache=args.cache,
        plots=not args.no_plots,
        random_state=args.seed,
        n_jobs=args.n_jobs,
    )
    return 0


def _parser():
    parser = argparse.ArgumentParser(
        prog="skhead2toe",
        description="Head2Toe for scikit-learn: select features from every layer "
        "of a frozen backbone with a group-lasso head.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _demo_parser(sub)
    _extract_parser(sub)
    _fit_parser(sub)
    return parser


def _command(sub, name, func, *, help, description, epilog=None):
    """A sub-command's parser that runs ``func``; an epilog is shown as written."""
    if epilog is not None:
        kwargs = {
            "epilog": epilog,
            "formatter_class": argparse.RawDescriptionHelpFormatter,
        }
    else:
        kwargs = {}
    parser = sub.add_parser(name, help=help, description=description, **kwargs)
    parser.set_defaults(func=func)
    return parser


def _output_option(parser, what):
    parser.add_argument("-o", "--output", required=True, help=what)


def _demo_parser(sub):
    from skhead2toe.experiments import DATASETS

    demo = _command(
        sub,
        "demo",
        _demo,
        help="Linear vs All layers + L2 vs Head2Toe on a 1000-image task",
        description="Reproduce Head2Toe's comparison offline on the embedded "
        "EfficientNet-Lite0: a table of test accuracy, features used and time per "
        "stage, the domain affinity, and PNG plots of layer importances and "
        "transferability. About 3-5 minutes on 2 CPU cores for digits.",
    )
    demo.add_argument("--dataset", choices=DATASETS, default="digits")
    demo.add_argument("--n-train", type=_positive_int, default=1000)
    demo.add_argument(
        "--n-test",
        type=_positive_int,
        default=None,
        help="test images (default: the rest of digits, 2000 for fashion-mnist)",
    )
    demo.add_argument(
        "--output-dir",
        default="skhead2toe-demo",
        help="where results.json and the plots go (default: %(default)s)",
    )
    demo.add_argument("--no-plots", action="store_true", help="skip the plots")
    _featurizer_options(demo)
    _model_options(demo, cv=3)


def _extract_parser(sub):
    extract = _command(
        sub,
        "extract",
        _extract,
        help="images or an image folder -> a features .npz file",
        description="Extract pooled, normalised features of every tapped layer.",
        epilog=_EPILOG_EXTRACT,
    )
    extract.add_argument(
        "inputs", nargs="+", metavar="INPUT", help="a folder or image files"
    )
    _output_option(extract, "features file (.npz)")
    _featurizer_options(extract)


def _fit_parser(sub):
    from skhead2toe.experiments import KEEP_FRACTIONS

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
        default=10,
        help="alphas on the path from alpha_max down (default: %(default)s)",
    )
    fit.add_argument(
        "--keep-fractions",
        type=_fractions,
        default=list(KEEP_FRACTIONS),
        help="fractions of features kept and refitted, comma-separated "
        f"(default: {','.join(f'{v:g}' for v in KEEP_FRACTIONS)})",
    )
    fit.add_argument(
        "--layer-groups",
        action="store_true",
        help="select whole layers (one group per layer) instead of features",
    )
    _featurizer_options(fit)
    _model_options(fit, cv=5)


def _model_options(parser, cv):
    parser.add_argument(
        "--cv", type=_positive_int, default=cv, help="folds (default: %(default)s)"
    )
    parser.add_argument(
        "--n-jobs", type=int, default=None, help="parallel jobs for cross-validation"
    )


def main(argv=None):
    """Entry point of the ``skhead2toe`` command.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        0 on success, 1 for a failed job (a missing file, bad data), 2 for bad
        options.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except _UsageError as exc:
        parser.exit(2, f"skhead2toe {args.command}: error: {exc}\n")
    except (ValueError, TypeError, OSError, ImportError) as exc:
        print(f"skhead2toe {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
