"""The AnB / BnB experiment, step by step.

:func:`run_transfer_experiment` validates its parameters, then runs four
steps: prepare the data of tasks A and B (``_make_tasks`` of ``_tasks.py``),
train the base networks (``_train_bases``), train the transferred networks of
every depth and variant (``_train_transfers``) and probe the layers of the
base network (``_probe``); a ``_Recorder`` collects the rows of the results
table.
"""

import time
from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params

from ._features import _probe_scores
from ._models import _ARCH_CONSTRAINTS, make_cnn, transfer_network
from ._results import _PROBE_VARIANTS, _check_variants, _to_frame
from ._tasks import _make_tasks
from ._training import _RECIPE_CONSTRAINTS, score_network, train_network
from ._utils import _seed


@validate_params(
    {
        "X": ["array-like"],
        "y": ["array-like"],
        "X_test": ["array-like", None],
        "y_test": ["array-like", None],
        "test_size": [Interval(Real, 0, 1, closed="neither")],
        "classes_a": ["array-like", None],
        "n_values": ["array-like", None],
        **_ARCH_CONSTRAINTS,
        **_RECIPE_CONSTRAINTS,
        "variants": ["array-like", str, None],
        "probe": ["boolean"],
        "as_frame": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    },
    prefer_skip_nested_validation=True,
)
def run_transfer_experiment(
    X,
    y,
    *,
    X_test=None,
    y_test=None,
    test_size=0.25,
    classes_a=None,
    n_values=None,
    n_conv=3,
    n_fc=2,
    width=16,
    epochs=20,
    batch_size=64,
    lr=0.02,
    weight_decay=5e-4,
    variants=None,
    probe=True,
    as_frame=False,
    random_state=0,
    verbose=False,
):
    """Yosinski et al.'s AnB / BnB experiment on one split, one seed.

    1. Split the classes into halves A and B (:func:`split_classes`), and the
       images into train and test sets (unless ``X_test`` is given).
       Pixels are standardised with the mean and standard deviation of the
       training images, the same for both tasks.
    2. Train *baseA* on A and *baseB* on B from scratch (:func:`make_cnn`,
       :func:`train_network`), and draw one untrained network for the
       random-filters control.
    3. For every depth ``n`` in ``n_values`` and every variant, build the
       network with :func:`transfer_network` (``BnB``/``BnB+`` from baseB,
       ``AnB``/``AnB+`` from baseA, ``random`` from the untrained network;
       frozen, or fine-tuned for ``+``), train it on B's training images and
       score it on B's test images. For one ``n`` all variants share the seed
       of the re-initialised layers and of the shuffling, so their differences
       are due to the copied layers only.
    4. With ``probe=True``, fit a linear probe
       (:func:`~skhead2toe.inspection.default_probe`, through
       :func:`~skhead2toe.inspection.probe_layers`) on the pooled output of
       each layer ``n`` of baseA (:func:`layer_features`) for task B, trained
       on B's training images and scored on B's test images: the
       per-layer transferability curve that goes with AnB; and the same on the
       untrained network as its control.

    Every network uses the same recipe (see :func:`train_network`).

    Parameters
    ----------
    X : array-like of shape (n_samples, H, W) or (n_samples, C, H, W)
        Images (uint8 is scaled to [0, 1] before standardisation).
    y : array-like of shape (n_samples,)
        Class labels; at least 4 classes, so that each half has 2.
    X_test : array-like of shape (n_test, H, W) or (n_test, C, H, W), default=None
        Test images; None: hold out ``test_size`` of ``X`` (stratified).
    y_test : array-like of shape (n_test,), default=None
        Their labels; given with ``X_test``.
    test_size : float, default=0.25
        Fraction of ``X`` held out for testing when ``X_test`` is None.
    classes_a : array-like, default=None
        The classes of task A (B gets the others); None: a random half drawn
        from ``random_state``.
    n_values : array-like of int, default=None
        Depths ``n`` to evaluate, each in ``1 .. L - 1`` with
        ``L = n_conv + n_fc``; None: all of them.
    n_conv : int, default=3
        Convolutional layers of the network (see :func:`make_cnn`).
    n_fc : int, default=2
        Dense layers, the output layer included.
    width : int, default=16
        Channels of the first conv layer.
    epochs : int, default=20
        Training epochs of every network.
    batch_size : int, default=64
        Mini-batch size.
    lr : float, default=0.02
        Initial learning rate of SGD (cosine schedule).
    weight_decay : float, default=5e-4
        L2 penalty on the trainable weights.
    variants : array-like of str, default=None
        Subset of :data:`TRANSFER_VARIANTS` to train; None: all five.
    probe : bool, default=True
        Add the per-layer probe rows (``"probe"`` for baseA's features,
        ``"probe random"`` for the untrained network's).
    as_frame : bool, default=False
        Return a pandas DataFrame instead of a list of dicts.
    random_state : int, RandomState instance or None, default=0
        Seeds the class split, the train/test split, every initialisation and
        every shuffling; recorded in the ``seed`` column when it is an int.
    verbose : int, default=False
        Print each network's accuracy as it is trained.

    Returns
    -------
    results : list of dict or pandas.DataFrame
        One row per trained network or probe, with :data:`RESULT_COLUMNS`:

        - ``seed``: ``random_state`` (None unless an int);
        - ``variant``: ``"baseA"``, ``"baseB"``, one of
          :data:`TRANSFER_VARIANTS`, ``"probe"`` or ``"probe random"``;
        - ``n``: number of copied layers (0 for the base networks; for the
          probes, the layer whose output is probed);
        - ``task``: ``"A"`` for baseA (scored on A's test images), else ``"B"``;
        - ``accuracy``: top-1 accuracy on the test images of ``task``.

    Raises
    ------
    ValueError
        If a parameter is out of range (the message names it), the labels
        have fewer than 4 classes, or ``n_values`` / ``variants`` /
        ``classes_a`` hold invalid entries.

    See Also
    --------
    summarize_results : Mean and standard deviation over seeds.
    TransferCurvesDisplay : The paper's figure from these rows.

    References
    ----------
    Yosinski, J., Clune, J., Bengio, Y. and Lipson, H. (2014). How transferable
    are features in deep neural networks? NeurIPS. The AnB, BnB and fine-tuned
    variants are theirs, here at a small scale.

    Examples
    --------
    >>> from skhead2toe.transfer import run_transfer_experiment
    >>> from skhead2toe.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> rows = run_transfer_experiment(
    ...     X[:400], y[:400], n_values=[2], epochs=2, variants=["AnB"], probe=False
    ... )
    >>> [(r["variant"], r["n"], r["task"]) for r in rows]
    [('baseA', 0, 'A'), ('baseB', 0, 'B'), ('AnB', 2, 'B')]
    """
    rng = check_random_state(random_state)
    n_values = _check_n_values(n_values, n_conv + n_fc)
    variants = _check_variants(variants)
    tasks = _make_tasks(
        X, y, X_test, y_test, test_size=test_size, classes_a=classes_a, rng=rng
    )
    in_channels, *image_size = tasks["A"].X.shape[1:]
    arch = dict(
        image_size=tuple(image_size),
        in_channels=in_channels,
        n_conv=n_conv,
        n_fc=n_fc,
        width=width,
    )
    recipe = dict(
        epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay
    )
    seed = int(random_state) if isinstance(random_state, Integral) else None
    recorder = _Recorder(seed, verbose)
    bases = _train_bases(tasks, arch, recipe, rng, recorder)
    _train_transfers(bases, tasks["B"], n_values, variants, recipe, rng, recorder)
    if probe:
        _probe(bases, tasks["B"], n_values, recorder)
    return _to_frame(recorder.rows, as_frame)


class _Recorder:
    """The rows of the results table of one run, printed as they come if verbose."""

    def __init__(self, seed, verbose):
        self.seed, self.verbose, self.rows = seed, verbose, []

    def add(self, variant, n, task, accuracy):
        """Append one row."""
        self.rows.append(
            dict(seed=self.seed, variant=variant, n=n, task=task, accuracy=accuracy)
        )

    def score(self, variant, n, task, net, X_test, y_test, start):
        """Append the row of a network trained since ``start`` (perf_counter)."""
        accuracy = score_network(net, X_test, y_test)
        self.add(variant, n, task, accuracy)
        if self.verbose:
            print(
                f"[seed {self.seed}] {variant:>6s} n={n} task {task}: accuracy "
                f"{accuracy:.4f} ({time.perf_counter() - start:.1f} s)",
                flush=True,
            )


def _train_bases(tasks, arch, recipe, rng, recorder):
    """Step 2: baseA and baseB trained from scratch, and an untrained network.

    Returns a dict with the networks ``"A"``, ``"B"`` and ``"random"``.
    """
    bases = {}
    for name, task in tasks.items():
        start = time.perf_counter()
        net = make_cnn(task.classes.size, **arch, random_state=_seed(rng))
        bases[name] = train_network(
            net, task.X, task.y, **recipe, random_state=_seed(rng)
        )
        recorder.score(
            f"base{name}", 0, name, bases[name], task.X_test, task.y_test, start
        )
    n_classes_b = tasks["B"].classes.size
    bases["random"] = make_cnn(n_classes_b, **arch, random_state=_seed(rng))
    return bases


def _train_transfers(bases, task_b, n_values, variants, recipe, rng, recorder):
    """Step 3: for each depth ``n``, each variant's network trained on task B.

    All variants of one ``n`` share the seeds of the re-initialised layers and
    of the shuffling, so their differences are due to the copied layers only.
    """
    for n in n_values:
        init_seed, shuffle_seed = _seed(rng), _seed(rng)
        for variant in variants:
            start = time.perf_counter()
            source = bases[variant[0] if variant[0] in "AB" else "random"]
            net = transfer_network(
                source,
                n,
                fine_tune=variant.endswith("+"),
                n_classes=task_b.classes.size,
                random_state=init_seed,
            )
            train_network(net, task_b.X, task_b.y, **recipe, random_state=shuffle_seed)
            recorder.score(variant, n, "B", net, task_b.X_test, task_b.y_test, start)


def _probe(bases, task_b, n_values, recorder):
    """Step 4: linear probes on each layer ``n`` of baseA and of the random net."""
    for variant, net in zip(
        _PROBE_VARIANTS, (bases["A"], bases["random"]), strict=True
    ):
        scores = _probe_scores(net, task_b.X, task_b.y, task_b.X_test, task_b.y_test)
        for n in n_values:
            recorder.add(variant, n, "B", float(scores[n - 1]))


def _check_n_values(n_values, n_layers):
    """The depths ``n`` to run, sorted and unique, in ``1 .. n_layers - 1``."""
    if n_layers < 2:
        raise ValueError(f"n_conv + n_fc must be at least 2, got {n_layers}.")
    if n_values is None:
        return list(range(1, n_layers))
    values = np.asarray(n_values)
    if (
        values.ndim != 1
        or values.size == 0
        or not np.issubdtype(values.dtype, np.integer)
        or values.min() < 1
        or values.max() > n_layers - 1
    ):
        raise ValueError(
            f"n_values must be a non-empty list of integers in 1 .. {n_layers - 1} "
            f"(L - 1 for n_conv + n_fc = {n_layers} layers), got {n_values!r}."
        )
    return sorted({int(v) for v in values})
