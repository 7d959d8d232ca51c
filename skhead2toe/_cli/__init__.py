"""Command line: ``skhead2toe demo | extract | fit | predict | export``.

Also ``python -m skhead2toe``.

The error contract (see :func:`main`): an error the user can cause and fix (a
missing or unreadable file, a bad option value, no CUDA, an unreachable model hub,
a full disk) is printed as ONE line ``skhead2toe <command>: error: ...`` naming
the problem, with exit status 2 for bad options (as argparse) and 1 for everything
else; Ctrl-C prints ``skhead2toe: interrupted`` and exits with 130. Every output
is written by :func:`skhead2toe._io.atomic_write`, and its folder is checked to
be writable before any work, so a failure or an interruption leaves neither a
half-written output nor a temporary file.

One module per command (``_demo``, ``_extract``, ``_fit``, ``_predict``,
``_export``), each
with ``add_parser(sub)``, listed in ``_COMMANDS`` (a new command is a module and
one entry there); what they share lives in ``_errors`` (the error boundary),
``_options`` (option types and groups), ``_checks`` (checks before the work,
the atomic write), ``_images`` (image arguments and the featurizer),
``_features`` (the features ``.npz`` file) and ``_model`` (the model file).
"""

import argparse
import sys

from skhead2toe._cli import _demo, _export, _extract, _fit, _predict
from skhead2toe._cli._errors import _is_user_error, _one_line, _UsageError

__all__ = ["main"]

# The commands, in the order ``skhead2toe --help`` lists them.
_COMMANDS = (_demo, _extract, _fit, _predict, _export)


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
    for command in _COMMANDS:
        command.add_parser(sub)
    return parser


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
        if not _is_user_error(exc):
            raise  # a bug: the traceback is what we need to fix it
        print(f"skhead2toe {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
