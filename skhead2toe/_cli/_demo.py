"""``skhead2toe demo``: the command; the job itself is :mod:`skhead2toe._demo`."""

from skhead2toe._cli._errors import _UsageError
from skhead2toe._cli._options import (
    _command,
    _featurizer_options,
    _layers,
    _model_options,
    _positive_int,
)

__all__ = ["add_parser"]


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


def add_parser(sub):
    """Add the ``demo`` command to the sub-parsers of ``skhead2toe``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.

    Returns
    -------
    parser : argparse.ArgumentParser
        The command's parser; it runs the command as ``args.func(args)``.
    """
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
    return demo
