"""to_onnx: a fitted pipeline (or its exported module) as an ONNX file.

The exporter is ``torch.onnx.export(..., dynamo=True)``: torch's default since
2.9, built on :func:`torch.export.export`, which needs ``onnxscript``. The
TorchScript-based exporter (``dynamo=False``) also works on the module but is
deprecated, and is not used.
"""

import json

import numpy as np
import torch

from .. import __version__
from .._io import atomic_write, check_writable
from ._module import ExportedPipeline, to_torch

__all__ = ["to_onnx"]

INPUT_NAME = "images"
OUTPUT_NAME = "probabilities"
_CHECK_TOL = 1e-4
_INSTALL = "pip install 'skhead2toe[export]' (onnx, onnxruntime, onnxscript)"


def _require(name):
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(
            f"to_onnx needs {name}, which is not installed: {_INSTALL}"
        ) from exc


def to_onnx(model, path, *, opset=None, batch_size=2, check=True):
    """Write a fitted pipeline as an ONNX file: images in, probabilities out.

    The file holds :func:`to_torch`'s module, exported by
    ``torch.onnx.export(..., dynamo=True)`` (torch's :func:`torch.export`-based
    exporter) with a dynamic batch axis. Its input ``"images"`` is float32
    ``(batch, 3, S, S)``, RGB in ``[0, 1]`` at the featurizer's input size
    ``S``; its output ``"probabilities"`` is ``(batch, K)``, columns ordered as
    the head's ``classes_``. The file's ``metadata_props`` record the opset,
    the classes, the input contract and the layers used. The file is written
    under a temporary name and moved into place once complete: a failure
    leaves ``path`` as it was.

    Parameters
    ----------
    model : sklearn.pipeline.Pipeline or ExportedPipeline
        A fitted pipeline (as :func:`to_torch` takes, e.g. ``joblib.load`` of
        the file ``skhead2toe fit`` writes), or a module it returned.
    path : str or path-like
        The ``.onnx`` file to write; its folder must exist.
    opset : int or None, default=None
        ONNX opset of the default domain; None: the exporter's default (18 or
        more; lower ones are converted down by ``onnx``'s version converter).
    batch_size : int, default=2
        Images in the example batch that is traced (the batch axis stays
        dynamic); ``batch_size + 1`` images are used by ``check``.
    check : bool, default=True
        Run the ONNX model with onnxruntime (CPU) on random images before the
        file is written, and raise if its probabilities differ from the torch
        module's by more than 1e-4.

    Returns
    -------
    info : dict
        ``path``, ``opset``, ``exporter``, ``input_name``, ``input_shape``
        (``["batch", 3, S, S]``), ``output_name``, ``classes``,
        ``layer_names``, ``n_features_used``, ``n_features_in``, ``bytes``
        (file size) and ``max_abs_diff`` (of ``check``, None without it): plain
        Python values, ready for :func:`json.dumps`.

    Raises
    ------
    ImportError
        If ``onnx``, ``onnxruntime`` or ``onnxscript`` is missing (install the
        ``export`` extra).
    OSError
        If ``path`` cannot be written (checked before the export starts).
    RuntimeError
        If ``check`` finds that onnxruntime disagrees with the torch module.

    See Also
    --------
    to_torch : The module that is exported.

    Examples
    --------
    >>> import numpy as np
    >>> import onnxruntime
    >>> from sklearn.pipeline import make_pipeline
    >>> from skhead2toe import GroupLassoClassifier, MultiLayerFeaturizer
    >>> from skhead2toe.export import to_onnx
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((12, 3, 32, 32), dtype=np.float32)
    >>> y = np.arange(12) % 2
    >>> pipe = make_pipeline(
    ...     MultiLayerFeaturizer(image_size=32, target_size=64),
    ...     GroupLassoClassifier(alpha=1e-2, keep_fraction=0.01),
    ... ).fit(X, y)
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "model.onnx")
    >>> info = to_onnx(pipe, path)
    >>> info["input_shape"], info["opset"] >= 18
    (['batch', 3, 32, 32], True)
    >>> session = onnxruntime.InferenceSession(path)
    >>> proba = session.run(None, {"images": X})[0]
    >>> bool(np.allclose(proba, pipe.predict_proba(X), atol=1e-4))
    True
    """
    path = check_writable(path)
    onnx = _require("onnx")
    _require("onnxscript")  # the dynamo exporter's translator
    if check:
        _require("onnxruntime")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    module = model if isinstance(model, ExportedPipeline) else to_torch(model)
    proto = _export(module, opset, int(batch_size))
    used = _opset(proto)
    onnx.helper.set_model_props(proto, _metadata(module, used))
    onnx.checker.check_model(proto)
    try:
        data = proto.SerializeToString()
    except ValueError as exc:  # protobuf refuses messages over 2 GiB
        raise ValueError(
            f"cannot write {str(path)!r}: the model is too large for one ONNX file "
            f"({exc})"
        ) from exc
    diff = _check(module, data, int(batch_size) + 1) if check else None
    atomic_write(path, lambda f: f.write(data), suffix=".onnx")
    return {
        "path": str(path),
        "opset": used,
        "exporter": f"torch.onnx.export(dynamo=True), torch {torch.__version__}",
        "input_name": INPUT_NAME,
        "input_shape": ["batch", *module.input_shape],
        "output_name": OUTPUT_NAME,
        "classes": module.classes.tolist(),
        "layer_names": list(module.layer_names),
        "n_features_used": module.n_features_used,
        "n_features_in": module.n_features_in,
        "bytes": len(data),
        "max_abs_diff": diff,
    }


def _example(module, n, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand((n, *module.input_shape), generator=gen)


def _export(module, opset, batch_size):
    """The ONNX ``ModelProto`` of ``module``, batch axis dynamic."""
    batch = torch.export.Dim("batch", min=1)
    program = torch.onnx.export(
        module,
        (_example(module, batch_size),),
        dynamo=True,
        opset_version=opset,
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_shapes=({0: batch},),
        verbose=False,
    )
    return program.model_proto


def _opset(proto):
    return next(
        int(o.version) for o in proto.opset_import if o.domain in ("", "ai.onnx")
    )


def _metadata(module, opset):
    size = module.image_size
    return {
        "skhead2toe.version": __version__,
        "skhead2toe.opset": str(opset),
        "skhead2toe.input": (
            f"{INPUT_NAME}: float32 (batch, 3, {size}, {size}), RGB in [0, 1]; the "
            "backbone's mean/std normalisation is inside the model"
        ),
        "skhead2toe.output": f"{OUTPUT_NAME}: float32 (batch, n_classes)",
        "skhead2toe.classes": json.dumps(module.classes.tolist()),
        "skhead2toe.layer_names": json.dumps(list(module.layer_names)),
        "skhead2toe.n_features_used": str(module.n_features_used),
    }


def _check(module, data, n):
    """Largest difference of onnxruntime's probabilities from the module's."""
    import onnxruntime

    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    images = _example(module, n, seed=1)
    with torch.inference_mode():
        expected = module(images).numpy()
    got = session.run([OUTPUT_NAME], {INPUT_NAME: images.numpy()})[0]
    diff = float(np.abs(got - expected).max())
    if not diff <= _CHECK_TOL:  # NaN fails too
        raise RuntimeError(
            f"onnxruntime's probabilities differ from the torch module's by {diff:.3g} "
            f"(> {_CHECK_TOL}) on random images; nothing was written"
        )
    return diff
