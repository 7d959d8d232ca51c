"""Export a fitted pipeline: one torch module or one ONNX file, images to probabilities.

Public names
------------
to_torch
    A fitted ``Pipeline(MultiLayerFeaturizer, head)`` as an
    :class:`ExportedPipeline`: the backbone cut after the last used layer, only
    the used taps pooled, the head applied.
to_onnx
    The same module written as an ONNX file (``torch.onnx.export``, dynamo
    exporter; the ``export`` extra installs onnx, onnxruntime and onnxscript).
ExportedPipeline
    The module :func:`to_torch` returns.

Modules
-------
_graph
    The fx tracing that cuts the backbone and pools the taps inside the graph.
_module
    :class:`ExportedPipeline` and :func:`to_torch`.
_onnx
    :func:`to_onnx`.
"""

from ._module import ExportedPipeline, to_torch
from ._onnx import to_onnx

__all__ = ["ExportedPipeline", "to_onnx", "to_torch"]
