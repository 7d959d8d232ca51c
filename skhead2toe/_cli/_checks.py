"""What the commands check before any work, and how they write their output.

The device, the ``--weights`` file and the output's folder are checked before
any image is read; the output is written by :func:`skhead2toe._io.atomic_write`,
so a failure or an interruption leaves neither a half-written output nor a
temporary file.
"""

from pathlib import Path

from skhead2toe._cli._errors import _Failure, _one_line, _UsageError


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
