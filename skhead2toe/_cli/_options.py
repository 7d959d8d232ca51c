"""Options the commands share: value types, the featurizer and model groups."""

import argparse


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


def _layers(args):
    """``--layers``: a preset name, or a list of comma-separated names."""
    if "," in args.layers:
        return [name.strip() for name in args.layers.split(",") if name.strip()]
    return args.layers


def _output_option(parser, what):
    parser.add_argument("-o", "--output", required=True, help=what)


def _skip_bad_option(parser):
    parser.add_argument(
        "--skip-bad",
        action="store_true",
        help="decode every image first and skip (and list on stderr) those that "
        "cannot be read; by default an unreadable image is an error naming it",
    )


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
