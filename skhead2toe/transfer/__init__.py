"""AnB / BnB transfer experiments of Yosinski et al. (2014) with small CNNs.

"How transferable are features in deep neural networks?" splits the classes of a
data set into two disjoint halves, A and B, trains one network on each (*baseA*,
*baseB*), and then, for every depth ``n``, trains on B a network whose first
``n`` layers are copied from a base network and whose other layers are
re-initialised:

- **BnB**: first ``n`` layers copied from baseB and frozen (a *selffer*
  network). A drop below baseB shows *fragile co-adaptation*: features of
  neighbouring layers that were learned together and cannot be re-learned by
  the upper layers alone;
- **BnB+**: the same, with every layer fine-tuned;
- **AnB**: first ``n`` layers copied from baseA and frozen (a *transfer*
  network). A drop below BnB shows how *specific* to task A the first ``n``
  layers are: the features go from general near the input to specific near
  the head;
- **AnB+**: the same, fine-tuned: transfer plus fine-tuning generalises as well
  as, or better than, training on B alone;
- **random**: first ``n`` layers random and frozen (copied from an untrained
  network), the control of the paper's section 4.2.

This subpackage builds the networks (:func:`make_cnn`, :func:`transfer_network`),
trains and scores them (:func:`train_network`, :func:`score_network`), splits
the classes (:func:`split_classes`), runs the whole experiment
(:func:`run_transfer_experiment`, one row per network in a table of
:data:`RESULT_COLUMNS`) and summarises it over seeds
(:func:`summarize_results`). :func:`layer_features` gives the pooled
activations of each layer, so that :func:`~skhead2toe.inspection.probe_layers`
can draw the matching per-layer probe curve. :class:`TransferCurvesDisplay`
draws the paper's figure; it lives in :mod:`skhead2toe.plotting`, with every
display, and is re-exported here.

torch is imported only inside the functions: ``import skhead2toe.transfer`` is
fast.

See Also
--------
skhead2toe.plotting.TransferCurvesDisplay : The paper's figure from the results.
skhead2toe.inspection.probe_layers : Per-layer probes, as in the probe rows.

Notes
-----
One private module per concept (import the names from this package):

- ``_models``: :func:`make_cnn`, :func:`transfer_network` and what a network
  of theirs is;
- ``_training``: :func:`train_network` and :func:`score_network`, one recipe
  for every network;
- ``_features``: :func:`layer_features`, and the linear probes on them;
- ``_tasks``: :func:`split_classes`, and the train and test data of tasks A
  and B;
- ``_runner``: :func:`run_transfer_experiment`, in named steps;
- ``_results``: :data:`TRANSFER_VARIANTS`, :data:`RESULT_COLUMNS` and
  :func:`summarize_results`;
- ``_utils``: seeds, images and labels as tensors, shared constraints.
"""

from ..plotting import TransferCurvesDisplay
from ._features import layer_features
from ._models import make_cnn, transfer_network
from ._results import RESULT_COLUMNS, TRANSFER_VARIANTS, summarize_results
from ._runner import run_transfer_experiment
from ._tasks import split_classes
from ._training import score_network, train_network

__all__ = [
    "RESULT_COLUMNS",
    "TRANSFER_VARIANTS",
    "TransferCurvesDisplay",
    "layer_features",
    "make_cnn",
    "run_transfer_experiment",
    "score_network",
    "split_classes",
    "summarize_results",
    "train_network",
    "transfer_network",
]
