"""``skhead2toe export``: a fitted pipeline as a standalone ONNX model."""

import json
from pathlib import Path

from skhead2toe._cli._checks import _output, _write
from skhead2toe._cli._errors import _Failure, _UsageError
from skhead2toe._cli._model import _load_model, _takes_images
from skhead2toe._cli._options import _command, _positive_int

__all__ = ["add_parser"]

_EPILOG_EXPORT = """\
examples:
  skhead2toe export model.joblib -o model.onnx
      the model that `skhead2toe fit photos/ -o model.joblib` wrote, as one
      ONNX file that onnxruntime (or any ONNX runtime) runs without Python
      packages of this project, torch or scikit-learn
  skhead2toe export model.joblib -o model.onnx --opset 18 --info model.json
      a given ONNX opset; the export's summary also as JSON

The ONNX model takes input "images": float32 (batch, 3, S, S), RGB in
[0, 1], already resized to the model's input size S (printed, and stored in
the file's metadata); the backbone's mean/std normalisation happens inside.
Its output "probabilities" is (batch, K), columns in the order of the
model's classes (stored in the metadata as JSON under "classes"). Only what
the head uses is computed: the backbone up to the last layer with a kept
feature, the pooling of the layers with kept features, the kept columns.

Before the file is written, onnxruntime runs it on random images and its
probabilities must match the torch module's to 1e-4 (--no-check skips this).
The file is written when complete. From Python: skhead2toe.export.to_onnx,
or skhead2toe.export.to_torch for a torch.nn.Module.
Needs the `export` extra: pip install 'skhead2toe[export]'.
"""


def _export(args):
    from skhead2toe._io import check_writable

    out = _output(args, ".onnx")
    info_out = None if args.info is None else _output_info(args.info)
    check_writable(out)
    if info_out is not None:
        check_writable(info_out)
    model, _ = _load_model(args.model)
    if not _takes_images(model):
        raise _Failure(
            f"model file {args.model!r} holds a {type(model).__name__} fitted on "
            "features; export needs a pipeline from images, as `skhead2toe fit "
            "FOLDER` writes it (the featurizer is part of the exported model)"
        )
    from skhead2toe.export import to_onnx

    info = to_onnx(model, out, opset=args.opset, check=not args.no_check)
    if info_out is not None:
        text = json.dumps(info, indent=1, default=str) + "\n"
        _write(info_out, lambda f: f.write(text.encode()))
    _report(info)
    return 0


def _output_info(path):
    if Path(path).suffix != ".json":
        raise _UsageError(f"--info must end with .json, got {path!r}")
    return Path(path)


def _report(info):
    diff = info.get("max_abs_diff")
    check = "" if diff is None else f"; onnxruntime matches torch to {diff:.1e}"
    print(
        f"wrote {info['path']} ({info['bytes'] / 1e6:.1f} MB, ONNX opset "
        f"{info['opset']}): input {info['input_name']!r} float32 "
        f"{tuple(info['input_shape'])} in [0, 1], output {info['output_name']!r} "
        f"(batch, {len(info['classes'])}) over classes {info['classes']}"
    )
    print(
        f"uses {info['n_features_used']} of {info['n_features_in']} features from "
        f"{len(info['layer_names'])} layers (last: {info['layer_names'][-1]})"
        if info["layer_names"]
        else "uses no feature: the probabilities are the intercepts'"
    )
    if check:
        print(check[2:])


def add_parser(sub):
    """Add the ``export`` command to the sub-parsers of ``skhead2toe``.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        What ``ArgumentParser.add_subparsers`` returned.

    Returns
    -------
    parser : argparse.ArgumentParser
        The command's parser; it runs the command as ``args.func(args)``.
    """
    export = _command(
        sub,
        "export",
        _export,
        help="a fitted pipeline (.joblib) -> a standalone ONNX model (.onnx)",
        description="Export a pipeline fitted from images as an ONNX model: "
        "images in, class probabilities out.",
        epilog=_EPILOG_EXPORT,
    )
    export.add_argument(
        "model", metavar="MODEL", help="model file (.joblib) from `skhead2toe fit`"
    )
    export.add_argument("-o", "--output", required=True, help="ONNX file (.onnx)")
    export.add_argument(
        "--opset",
        type=_positive_int,
        default=None,
        help="ONNX opset (default: the exporter's, 18 or more)",
    )
    export.add_argument(
        "--info", metavar="FILE.json", help="also write the export's summary as JSON"
    )
    export.add_argument(
        "--no-check",
        action="store_true",
        help="do not compare onnxruntime's probabilities with torch's first",
    )
    return export
