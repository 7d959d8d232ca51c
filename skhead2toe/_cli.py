"""Command line: ``skhead2toe demo | extract | fit`` (also ``python -m skhead2toe``).

The error contract (see :func:`main`): an error the user can cause and fix (a
missing or unreadable file, a bad option value, no CUDA, an unreachable model hub,
a full disk) is printed as ONE line ``skhead2toe <command>: error: ...`` naming
the problem, with exit status 2 for bad options (as argparse) and 1 for everything
else; Ctrl-C prints ``skhead2toe: interrupted`` and exits with 130. Every output
is written by :func:`skhead2toe._io.atomic_write`, and its folder is checked to
be writable before any work, so a failure or an interruption leaves neither a
half-written output nor a temporary file.
"""

import argparse
import pickle
import sys
import zipfile
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


class _Failure(Exception):
    """A failed job the user can fix, with its one-line message (exit status 1)."""


# The error boundary. These exception types are errors the user can cause, from
# their files, options, machine or network, whoever raises them (numpy, PIL,
# torch, timm, the hub, the OS): one line, exit status 1. Any other type
# (TypeError, AttributeError, KeyError, IndexError, AssertionError, ...) and the
# RuntimeError subclasses in _BUGS are bugs of this package: they keep their
# traceback, so that they get reported and fixed instead of hidden.
_USER_ERRORS = (
    _Failure,
    OSError,  # missing, unreadable or unwritable files, full disks, networks
    ValueError,  # bad data and values (numpy, scikit-learn, the featurizer)
    RuntimeError,  # torch (CUDA, out of memory, weights), hub downloads
    ImportError,  # a missing optional dependency
    EOFError,  # truncated files
    MemoryError,
    pickle.UnpicklingError,
    zipfile.BadZipFile,  # damaged .npz files
)
_BUGS = (NotImplementedError, RecursionError)
_MAX_MESSAGE = 1500


def _optional_user_errors():
    """Error types of libraries that are loaded: PIL's and safetensors'."""
    found = []
    if "PIL.Image" in sys.modules:
        found.append(sys.modules["PIL.Image"].DecompressionBombError)
    safetensors = sys.modules.get("safetensors")
    if safetensors is not None and hasattr(safetensors, "SafetensorError"):
        found.append(safetensors.SafetensorError)
    return tuple(found)


def _one_line(exc):
    """The message of ``exc`` on one line (at most ``_MAX_MESSAGE`` characters)."""
    if isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror  # without the "[Errno 13] " of str(exc)
        if exc.filename is not None:
            text += f": {str(exc.filename)!r}"
    else:
        text = str(exc)
    text = " ".join(text.split())
    if not text or isinstance(exc, EOFError | MemoryError):
        text = f"{type(exc).__name__}{': ' if text else ''}{text}"
        if isinstance(exc, EOFError):
            text = f"unexpected end of file ({text})"
    if len(text) > _MAX_MESSAGE:
        text = text[: _MAX_MESSAGE - 3].rstrip() + "..."
    return text


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


def _check_device(name):
    """Check ``--device`` before any work: a usage error, or no such device here.

    The check the featurizer and the torch solver make (the one a Python user
    gets), run early.
    """
    from skhead2toe._device import DeviceUnavailableError, resolve_device

    try:
        resolve_device(name)
    except ValueError:
        raise _UsageError(
            f"--device {name!r} is not a torch device; use auto, cpu, cuda or "
            "cuda:<index>"
        ) from None
    except DeviceUnavailableError as exc:
        raise _Failure(
            f"--device {name}: {exc.problem}; use --device cpu (or auto)"
        ) from None


def _check_weights(args):
    """Build the backbone from ``--weights`` once, to blame a bad file on it.

    Any exception while doing so is a problem of that file (not a torch or
    safetensors file, empty, truncated, another model's weights): whatever its
    type, it becomes one line naming the file. This builds the backbone a second
    time (from a local file) but keeps the check exact: the featurizer's own code.
    """
    if args.weights is not None and args.random_weights:
        raise _UsageError("--weights and --random-weights exclude each other")
    if args.weights is None:
        return
    path = Path(args.weights)
    if not path.is_file():
        raise _Failure(f"weights file {args.weights!r} does not exist")
    from skhead2toe.feature_extraction import build_backbone

    try:
        built = build_backbone(
            args.backbone,
            pretrained=args.weights,
            seed=args.seed,
            image_size=args.image_size,
        )
    except Exception as exc:  # see the docstring: the file is to blame
        message = _one_line(exc)
        if path.name not in message:
            message = (
                f"cannot load the weights file {args.weights!r} into backbone "
                f"{args.backbone!r}: {type(exc).__name__}: {message}"
            )
        raise _Failure(message) from exc
    del built


def _layers(args):
    """``--layers``: a preset name, or a list of comma-separated names."""
    if "," in args.layers:
        return [name.strip() for name in args.layers.split(",") if name.strip()]
    return args.layers


def _featurizer(args):
    from skhead2toe import MultiLayerFeaturizer

    pretrained = (
        False if args.random_weights else (args.weights if args.weights else True)
    )
    return MultiLayerFeaturizer(
        args.backbone,
        layers=_layers(args),
        target_size=args.target_size,
        pretrained=pretrained,
        image_size=args.image_size,
        device=args.device,
        batch_size=args.batch_size,
        cache=args.cache,
        progress="auto",
        random_state=args.seed,
    )


def _features(feat, paths, args):
    """``feat.fit_transform(paths)``; an unreadable image's error hints --skip-bad."""
    try:
        return feat.fit_transform(paths)
    except (OSError, ValueError) as exc:
        message = _one_line(exc)
        if args.skip_bad or not any(path in message for path in paths):
            raise
        raise _Failure(
            f"{message} (--skip-bad skips the images that cannot be read)"
        ) from exc


def _images(inputs, skip_bad=False, command="extract"):
    """Image paths (and labels for a single folder of class sub-folders)."""
    from skhead2toe import datasets

    if len(inputs) == 1 and Path(inputs[0]).is_dir():
        paths, labels = datasets.load_image_folder(inputs[0])
    else:
        for item in inputs:
            path = Path(item)
            if path.is_dir():
                raise _UsageError(
                    f"{item!r} is a folder: give one folder of class sub-folders, "
                    "or image files"
                )
            if not path.is_file():
                raise FileNotFoundError(f"image file {item!r} does not exist")
        paths, labels = list(inputs), None
    if skip_bad:
        paths, labels = _readable(paths, labels, command)
    return paths, labels


def _image_problem(path, i):
    """Why image file ``path`` (item ``i``) cannot be read, or None if it can.

    It is read as the featurizer reads it (decoding, modes, value checks), so an
    image that passes here is not rejected by the extraction later.
    """
    from skhead2toe.feature_extraction._images import read_image_file

    try:
        read_image_file(path, i)
    except (OSError, ValueError) as exc:
        return _one_line(exc)
    return None


def _readable(paths, labels, command):
    """Drop (and report on stderr) the images that cannot be decoded."""
    keep = []
    for i, path in enumerate(paths):
        problem = _image_problem(path, i)
        if problem is None:
            keep.append(i)
        else:
            print(f"skhead2toe {command}: skipped {path}: {problem}", file=sys.stderr)
    n_bad = len(paths) - len(keep)
    if n_bad:
        print(
            f"skhead2toe {command}: skipped {n_bad} of {len(paths)} images that "
            f"cannot be read; using the other {len(keep)}",
            file=sys.stderr,
        )
    if not keep:
        raise _Failure(f"no readable image among the {len(paths)} given")
    return [paths[i] for i in keep], None if labels is None else labels[keep]


def _output(args, suffix):
    """The ``--output`` path, checked to end with ``suffix`` (a usage error)."""
    path = Path(args.output)
    if path.suffix != suffix:
        raise _UsageError(f"the output file must end with {suffix}, got {str(path)!r}")
    return path


def _prepare(args, out, *, featurizer=True):
    """Check all that needs no image, before any work: device, weights, output."""
    from skhead2toe._io import check_writable

    if featurizer:
        _check_device(args.device)
        _check_weights(args)
    check_writable(out)


def _write(out, write):
    """``atomic_write(out, write)``; a failure (a full disk) names ``out``."""
    from skhead2toe._io import atomic_write

    try:
        atomic_write(out, write)
    except OSError as exc:
        raise _Failure(f"cannot write {str(out)!r}: {_one_line(exc)}") from exc


def _extract(args):
    import numpy as np

    out = _output(args, ".npz")
    _prepare(args, out)
    paths, labels = _images(args.inputs, args.skip_bad, "extract")
    feat = _featurizer(args)
    X = _features(feat, paths, args)
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
    _write(out, lambda f: np.savez(f, **arrays))
    print(
        f"wrote {out}: {X.shape[0]} images x {X.shape[1]} features from "
        f"{len(feat.layer_names_)} layers"
        + (f", {len(np.unique(labels))} classes" if labels is not None else "")
    )
    return 0


_FEATURES_FILE = "a features file is the .npz that `skhead2toe extract` writes"


def _load_features(path):
    import numpy as np

    with open(path, "rb") as f:  # an unreadable file is an OSError naming it
        is_zip = zipfile.is_zipfile(f)
    if not is_zip:
        raise _Failure(
            f"{str(path)!r} is not a features file: it is not a .npz (zip) archive;"
            f" {_FEATURES_FILE}"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            names = set(data.files)
            arrays = {k: data[k] for k in ("X", "y", "feature_groups") if k in names}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise _Failure(
            f"cannot read features file {str(path)!r} ({_FEATURES_FILE}): "
            f"{_one_line(exc)}"
        ) from exc
    missing = {"X", "y"} - names
    if missing:
        raise _Failure(
            f"features file {str(path)!r} lacks {sorted(missing)}: write it with "
            "`skhead2toe extract <folder of class sub-folders> -o FILE.npz`"
        )
    return arrays["X"], arrays["y"], arrays.get("feature_groups")


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
        layers=_layers(args),
        target_size=args.target_size,
        batch_size=args.batch_size,
        device=args.device,
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
    from skhead2toe import __version__

    parser.add_argument(
        "--version", action="version", version=f"skhead2toe {__version__}"
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


def _skip_bad_option(parser):
    parser.add_argument(
        "--skip-bad",
        action="store_true",
        help="decode every image first and skip (and list on stderr) those that "
        "cannot be read; by default an unreadable image is an error naming it",
    )


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
        "transferability. About 1.5-2 minutes on 2 CPU cores for digits.",
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
    _model_options(demo, cv=3, n_jobs=-1)


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
    _skip_bad_option(extract)
    _featurizer_options(extract)


def _fit_parser(sub):
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


def _model_options(parser, cv, n_jobs=None):
    parser.add_argument(
        "--cv", type=_positive_int, default=cv, help="folds (default: %(default)s)"
    )
    parser.add_argument(
        "--n-jobs",
        type=int,
        default=n_jobs,
        help="parallel jobs for cross-validation (default: %(default)s; -1: all cores)",
    )


def main(argv=None):
    """Entry point of the ``skhead2toe`` command.

    An error the user can cause (the types of ``_USER_ERRORS``: a missing or
    unreadable file, bad data, no CUDA, an unreachable hub, a full disk) prints
    one line ``skhead2toe <command>: error: ...`` on stderr; other exception
    types are bugs and keep their traceback. Ctrl-C prints
    ``skhead2toe: interrupted``. Outputs are written atomically, so neither
    leaves a partial output or a temporary file.

    Parameters
    ----------
    argv : list of str, default=None
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        0 on success, 1 for a failed job (a missing file, bad data), 2 for bad
        options (argparse's own errors exit with 2 too), 130 when interrupted.
    """
    try:
        parser = _parser()
        args = parser.parse_args(argv)
        return _run(parser, args)
    except KeyboardInterrupt:
        print("skhead2toe: interrupted", file=sys.stderr)
        return 130


def _run(parser, args):
    """Run the command; turn the user's errors into one line (see :func:`main`)."""
    try:
        return args.func(args)
    except _UsageError as exc:
        parser.exit(2, f"skhead2toe {args.command}: error: {_one_line(exc)}\n")
    except Exception as exc:
        if isinstance(exc, _BUGS) or not isinstance(
            exc, _USER_ERRORS + _optional_user_errors()
        ):
            raise  # a bug: the traceback is what we need to fix it
        print(f"skhead2toe {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
