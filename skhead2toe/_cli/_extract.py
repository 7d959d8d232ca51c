"""``skhead2toe extract``: images or an image folder to a features ``.npz`` file."""

from skhead2toe._cli._checks import _output, _prepare, _write
from skhead2toe._cli._images import _features, _featurizer, _images
from skhead2toe._cli._options import (
    _command,
    _featurizer_options,
    _output_option,
    _skip_bad_option,
)

__all__ = ["add_parser"]

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


def add_parser(sub):
    """Add the ``extract`` command to the sub-parsers of ``skhead2toe``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.

    Returns
    -------
    parser : argparse.ArgumentParser
        The command's parser; it runs the command as ``args.func(args)``.
    """
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
    return extract
