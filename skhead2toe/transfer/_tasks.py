"""Tasks A and B: the class split, and each task's train and test images."""

import numpy as np
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import validate_params

from ._utils import _as_images, _check_label_vector, _seed


@validate_params(
    {"y": ["array-like"], "random_state": ["random_state"]},
    prefer_skip_nested_validation=True,
)
def split_classes(y, *, random_state=0):
    """Split the classes of ``y`` at random into two disjoint halves A and B.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Labels; at least 2 distinct classes.
    random_state : int, RandomState instance or None, default=0
        Draws the split.

    Returns
    -------
    classes_a, classes_b : ndarray
        The sorted classes of each half; together they hold every class of
        ``y`` once. With an odd number of classes, B has one more.

    Raises
    ------
    ValueError
        If ``y`` is not 1-D or has fewer than 2 classes.

    Examples
    --------
    >>> from skhead2toe.transfer import split_classes
    >>> a, b = split_classes([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], random_state=0)
    >>> len(a), len(b), sorted(set(a) | set(b)) == list(range(10))
    (5, 5, True)
    """
    classes = np.unique(np.asarray(y))
    if np.ndim(y) != 1 or classes.size < 2:
        raise ValueError(
            "y must be a 1-D array of labels with at least 2 classes to split, got "
            f"shape {np.shape(y)} with {classes.size} class(es)."
        )
    order = check_random_state(random_state).permutation(classes.size)
    half = classes.size // 2
    return np.sort(classes[order[:half]]), np.sort(classes[order[half:]])


def _check_halves(classes, classes_a):
    """Validate a user-given half A; return (classes_a, classes_b)."""
    classes_a = np.unique(np.asarray(classes_a))
    unknown = np.setdiff1d(classes_a, classes)
    if unknown.size:
        raise ValueError(
            f"classes_a must be classes of y; {unknown.tolist()} are not "
            f"(the classes are {classes.tolist()})."
        )
    classes_b = np.setdiff1d(classes, classes_a)
    if classes_a.size < 2 or classes_b.size < 2:
        raise ValueError(
            "classes_a must leave at least 2 classes in each half (task A and "
            f"task B), got {classes_a.size} in A and {classes_b.size} in B."
        )
    return classes_a, classes_b


def _task(X, y, classes):
    """Images of ``classes`` and their labels encoded as ``0 .. K-1``."""
    mask = np.isin(y, classes)
    return X[mask], np.searchsorted(classes, y[mask])


def _check_data(X, y, X_test, y_test, test_size, seed):
    """Train and test images (float32, N x C x H x W) and labels."""
    from sklearn.model_selection import train_test_split

    X = _as_images(X).numpy()
    y = _check_label_vector(y, X.shape[0])
    if (X_test is None) != (y_test is None):
        raise ValueError("Give both X_test and y_test, or neither.")
    if X_test is None:
        return train_test_split(
            X, y, test_size=test_size, stratify=y, random_state=seed
        )
    X_test = _as_images(X_test, "X_test").numpy()
    y_test = np.asarray(y_test)
    if y_test.shape != (X_test.shape[0],) or X_test.shape[1:] != X.shape[1:]:
        raise ValueError(
            f"X_test and y_test must match X's image shape {X.shape[1:]} with one "
            f"label per image; got {X_test.shape} and {y_test.shape}."
        )
    return X, X_test, y, y_test


def _standardize(X_train, X_test):
    """Scale pixels by the mean and std of the training images."""
    mean, std = X_train.mean(), X_train.std()
    std = std if std > 0 else 1.0
    return (X_train - mean) / std, (X_test - mean) / std


def _make_tasks(X, y, X_test, y_test, *, test_size, classes_a, rng):
    """Step 1 of the experiment: the standardised data of tasks A and B.

    The train/test split (unless ``X_test`` is given) and the class split
    (unless ``classes_a`` is given) are drawn from ``rng``, in that order.
    Returns a dict ``{"A": task, "B": task}`` of Bunches with ``classes`` (the
    task's classes of ``y``) and ``X``, ``y``, ``X_test``, ``y_test`` (labels
    encoded as ``0 .. K - 1``).
    """
    X, X_test, y, y_test = _check_data(X, y, X_test, y_test, test_size, _seed(rng))
    classes = np.unique(y)
    if classes.size < 4:
        raise ValueError(
            f"y must have at least 4 classes (2 per half), got {classes.size}."
        )
    halves = (
        split_classes(classes, random_state=_seed(rng))
        if classes_a is None
        else _check_halves(classes, classes_a)
    )
    X, X_test = _standardize(X, X_test)
    tasks = {}
    for name, task_classes in zip("AB", halves, strict=True):
        X_task, y_task = _task(X, y, task_classes)
        X_task_test, y_task_test = _task(X_test, y_test, task_classes)
        tasks[name] = Bunch(
            classes=task_classes,
            X=X_task,
            y=y_task,
            X_test=X_task_test,
            y_test=y_task_test,
        )
    return tasks
