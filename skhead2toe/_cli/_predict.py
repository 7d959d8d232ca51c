"""``skhead2toe predict``: a fitted model's classes and probabilities, as CSV."""

import csv
import io
import sys

from skhead2toe._cli._checks import _check_device, _output, _write
from skhead2toe._cli._errors import _Failure, _UsageError
from skhead2toe._cli._features import _read_features
from skhead2toe._cli._images import _hinting_skip_bad, _image_files, _readable
from skhead2toe._cli._model import _load_model, _takes_images
from skhead2toe._cli._options import _command, _positive_int, _skip_bad_option

__all__ = ["add_parser"]

_EPILOG_PREDICT = """\
examples:
  skhead2toe predict model.joblib new/ -o predictions.csv
      every image below new/ (recursively), with a model that
      `skhead2toe fit photos/ -o model.joblib` wrote
  skhead2toe predict model.joblib a.jpg 'shots/*.png' -o - --top-k 3
      a file and a glob (expanded by skhead2toe, so quoting it works), the 3
      most probable classes of each image, CSV on stdout
  skhead2toe predict head.joblib --features new.npz -o predictions.csv
      a head fitted on features (`skhead2toe fit features.npz`) takes
      features: those `skhead2toe extract` wrote with the featurizer options
      of the features it was fitted on

The CSV has one row per image: path, label (the predicted class), then
proba_<class> for each class, in the order of the model's classes_. With
--top-k K the columns after label are top1_label, top1_proba, ...,
topK_label, topK_proba instead (the most probable first). From --features,
rows are named by the image paths the .npz holds (column path), or by row
number from 0 (column row) when it holds none.

A folder gives every image file below it (.bmp .gif .jpeg .jpg .png .tif
.tiff .webp; hidden files and folders are skipped); a glob gives the image
files and folders it matches; a file named explicitly is read whatever its
suffix. Each image gets one row, in the order given. The output is written
when complete (-o - writes it to stdout at the end).

A .joblib file is a pickle, which can run code when loaded: predict only
with models you trust.
"""


def _check_inputs(args, takes_images):
    """Usage errors: images for a pipeline, ``--features`` for a head alone."""
    if takes_images:
        if args.features is not None:
            raise _UsageError(
                f"model {args.model!r} is a pipeline from images (featurizer + "
                "head): give the images (files, folders or globs), not --features"
            )
        if not args.images:
            raise _UsageError("give the images to predict: files, folders or globs")
        return
    takes = (
        f"model {args.model!r} is a head fitted on features (`skhead2toe fit "
        "FEATURES.npz`): it takes features, not images"
    )
    if args.images or args.features is None:
        raise _UsageError(
            f"{takes}; give them with --features FILE.npz, written by `skhead2toe "
            "extract IMAGES -o FILE.npz` with the featurizer options of the "
            "features it was fitted on"
        )
    given = [
        name
        for name, value in (
            ("--device", args.device),
            ("--batch-size", args.batch_size),
            ("--skip-bad", args.skip_bad or None),
        )
        if value is not None
    ]
    if given:
        verb = "applies" if len(given) == 1 else "apply"
        raise _UsageError(f"{' and '.join(given)} {verb} to images; {takes}")


def _check_top_k(args, n_classes):
    if args.top_k is not None and args.top_k > n_classes:
        raise _UsageError(
            f"--top-k {args.top_k} exceeds the {n_classes} classes of model "
            f"{args.model!r}"
        )


def _from_images(model, args):
    """Row names and features of the images that ``args.images`` name."""
    feat = model[0]
    device = "auto" if args.device is None else args.device
    _check_device(device)
    paths = _image_files(args.images)
    if args.skip_bad:
        paths, _ = _readable(paths, None, "predict")
    # run where this machine can, with the featurizer's own progress bar
    feat.set_params(device=device, progress="auto")
    if args.batch_size is not None:
        feat.set_params(batch_size=args.batch_size)
    return ("path", paths), _hinting_skip_bad(model[:-1].transform, paths, args)


def _from_features(head, args):
    """Row names and features of the ``--features`` file, checked against ``head``."""
    arrays = _read_features(
        args.features,
        ("X", "paths"),
        required=("X",),
        hint="`skhead2toe extract IMAGES -o FILE.npz`",
    )
    X, where = arrays["X"], f"features file {args.features!r}"
    expected = getattr(head, "n_features_in_", None)
    if X.ndim != 2:
        raise _Failure(f"{where} holds X of shape {X.shape}; expected 2 dimensions")
    if expected is not None and X.shape[1] != expected:
        raise _Failure(
            f"{where} has {X.shape[1]} features per image; model {args.model!r} "
            f"takes {expected}: extract them with the featurizer options "
            "(--backbone, --layers, --target-size, --image-size) of the features "
            "it was fitted on"
        )
    if "paths" not in arrays:
        return ("row", [str(i) for i in range(len(X))]), X
    if arrays["paths"].shape != (len(X),):
        raise _Failure(
            f"{where} holds {arrays['paths'].size} paths for {len(X)} rows of X"
        )
    return ("path", [str(p) for p in arrays["paths"]]), X


def _table(names, labels, proba, classes, top_k):
    """The CSV's header and rows (probabilities as exact decimal ``repr``)."""
    import numpy as np

    header = [names[0], "label"]
    if top_k is None:
        header += [f"proba_{c}" for c in classes]
        cells = [[repr(float(p)) for p in row] for row in proba]
    else:
        for k in range(1, top_k + 1):
            header += [f"top{k}_label", f"top{k}_proba"]
        order = np.argsort(-proba, axis=1, kind="stable")[:, :top_k]
        cells = [
            [v for j in idx for v in (str(classes[j]), repr(float(row[j])))]
            for idx, row in zip(order, proba, strict=True)
        ]
    rows = [
        [name, str(label), *more]
        for name, label, more in zip(names[1], labels, cells, strict=True)
    ]
    return header, rows


def _csv_bytes(header, rows):
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    # paths that are not valid UTF-8 keep their own bytes
    return text.getvalue().encode("utf-8", "surrogateescape")


def _to_stdout(data):
    sys.stdout.flush()
    stream = getattr(sys.stdout, "buffer", None)
    if stream is None:
        sys.stdout.write(data.decode("utf-8", "surrogateescape"))
    else:
        stream.write(data)
        stream.flush()


def _predict(args):
    from skhead2toe._io import check_writable

    out = None if args.output == "-" else _output(args, ".csv")
    if out is not None:
        check_writable(out)
    model, head = _load_model(args.model)
    takes_images = _takes_images(model)
    _check_inputs(args, takes_images)
    _check_top_k(args, len(head.classes_))
    if takes_images:
        names, X = _from_images(model, args)
    else:
        names, X = _from_features(head, args)
    labels, proba = head.predict(X), head.predict_proba(X)
    data = _csv_bytes(*_table(names, labels, proba, head.classes_, args.top_k))
    if out is None:
        _to_stdout(data)
        return 0
    _write(out, lambda f: f.write(data))
    print(f"wrote {out}: {len(labels)} images, {_counts(labels, head.classes_)}")
    return 0


def _counts(labels, classes):
    """``"cat 3, dog 2"``: how many images each class was predicted for."""
    import numpy as np

    found = [(c, int(np.sum(labels == c))) for c in classes]
    return ", ".join(f"{c} {n}" for c, n in found if n)


def add_parser(sub):
    """Add the ``predict`` command to the sub-parsers of ``skhead2toe``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.

    Returns
    -------
    parser : argparse.ArgumentParser
        The command's parser; it runs the command as ``args.func(args)``.
    """
    predict = _command(
        sub,
        "predict",
        _predict,
        help="a fitted model + images (or features) -> predictions .csv",
        description="Class and class probabilities of images, by a fitted model.",
        epilog=_EPILOG_PREDICT,
    )
    predict.add_argument(
        "model", metavar="MODEL", help="model file (.joblib) from `skhead2toe fit`"
    )
    predict.add_argument(
        "images",
        nargs="*",
        metavar="IMAGES",
        help="image files, folders (searched recursively) or globs",
    )
    predict.add_argument(
        "-o",
        "--output",
        required=True,
        help="predictions file (.csv); - writes the CSV to stdout",
    )
    predict.add_argument(
        "--features",
        metavar="FILE.npz",
        help="for a head fitted on features: the features file (from "
        "`skhead2toe extract`) to predict from, instead of images",
    )
    predict.add_argument(
        "--top-k",
        type=_positive_int,
        default=None,
        metavar="K",
        help="columns top1_label, top1_proba, ..., topK_label, topK_proba "
        "instead of one proba_<class> column per class",
    )
    _skip_bad_option(predict)
    predict.add_argument(
        "--batch-size",
        type=_positive_int,
        default=None,
        help="images per batch (default: the model's)",
    )
    predict.add_argument(
        "--device",
        default=None,
        help="auto, cpu, cuda, cuda:1, ... (default: auto, whatever the model "
        "was fitted on)",
    )
    return predict
