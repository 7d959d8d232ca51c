"""Small image datasets for examples and tests, all offline.

- :func:`load_digits_images`: scikit-learn's 8x8 digits as uint8 images.
- :func:`load_fashion_mnist`: Fashion-MNIST from its IDX files (by default those of
  Debian's ``dataset-fashion-mnist`` package).
- :func:`load_image_folder`: a folder with one sub-folder of images per class.
"""

import gzip
import os
from pathlib import Path

import numpy as np
from sklearn.utils import check_random_state

__all__ = [
    "FASHION_MNIST_CLASSES",
    "load_digits_images",
    "load_fashion_mnist",
    "load_image_folder",
    "read_idx",
]

#: Default location of the Fashion-MNIST IDX files (Debian ``dataset-fashion-mnist``).
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
#: Class names of Fashion-MNIST labels 0..9.
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp")
_IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def load_digits_images(*, n_class=10):
    """scikit-learn's handwritten digits as 8x8 uint8 images.

    Parameters
    ----------
    n_class : int, default=10
        Number of classes to return (digits ``0 .. n_class - 1``).

    Returns
    -------
    images : ndarray of shape (n_samples, 8, 8), dtype uint8
        Grey levels 0..16 of :func:`sklearn.datasets.load_digits` scaled to
        0..255.
    target : ndarray of shape (n_samples,), dtype int64
        Digit labels.

    Examples
    --------
    >>> from skhead2toe.datasets import load_digits_images
    >>> X, y = load_digits_images()
    >>> X.shape, X.dtype, int(X.max())
    ((1797, 8, 8), dtype('uint8'), 255)
    """
    from sklearn.datasets import load_digits

    digits = load_digits(n_class=n_class)
    images = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    return images, digits.target.astype(np.int64)


def read_idx(path):
    """Read an IDX file (the MNIST format), gzip-compressed or not.

    Parameters
    ----------
    path : str or path-like
        File name; a ``.gz`` suffix (or gzip magic bytes) means compressed.

    Returns
    -------
    array : ndarray
        The stored array with its dimensions and native-endian dtype.

    Examples
    --------
    Write a tiny IDX file (magic number, dimensions, then the values) and read
    it back:

    >>> import os
    >>> import tempfile
    >>> import numpy as np
    >>> from skhead2toe.datasets import read_idx
    >>> images = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    >>> header = bytes([0, 0, 0x08, images.ndim])  # 0x08: uint8 values
    >>> header += np.array(images.shape, dtype=">u4").tobytes()
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "tiny-images-idx3-ubyte")
    ...     with open(path, "wb") as f:
    ...         _ = f.write(header + images.tobytes())
    ...     back = read_idx(path)
    >>> back.shape, back.dtype
    ((2, 3, 4), dtype('uint8'))
    >>> bool((back == images).all())
    True
    """
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{str(path)!r} is a damaged gzip file: {exc}") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(
            f"{str(path)!r} is not an IDX file (bad magic number {raw[:4]!r})"
        )
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{str(path)!r} is truncated (incomplete IDX header)")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(
            f"{str(path)!r} holds {len(raw) - header} data bytes; its header "
            f"(shape {shape}, {dtype}) needs {expected - header}"
        )
    data = np.frombuffer(raw, dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def _find_idx(root, stem):
    for name in (f"{stem}.gz", stem):
        if (root / name).is_file():
            return root / name
    raise FileNotFoundError(
        f"Fashion-MNIST file {stem}[.gz] not found in {str(root)!r}. Install the "
        "Debian package (sudo apt install dataset-fashion-mnist), or download the "
        "four IDX files from https://github.com/zalandoresearch/fashion-mnist and "
        "pass their folder as path="
    )


def load_fashion_mnist(path=None, *, subset="train", n_samples=None, random_state=None):
    """Fashion-MNIST images and labels from the standard IDX files.

    Parameters
    ----------
    path : str, path-like or None, default=None
        Folder with ``{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]``. None
        uses ``/usr/share/datasets/fashion-mnist`` (Debian's
        ``dataset-fashion-mnist``).
    subset : {"train", "test"}, default="train"
        The 60,000 training or 10,000 test images.
    n_samples : int or None, default=None
        Return a random subset of this many images (in their file order).
    random_state : int, RandomState instance or None, default=None
        Draws the subset.

    Returns
    -------
    images : ndarray of shape (n_samples, 28, 28), dtype uint8
        Grey images.
    target : ndarray of shape (n_samples,), dtype int64
        Labels 0..9; names in :data:`FASHION_MNIST_CLASSES`.

    Examples
    --------
    With Debian's ``dataset-fashion-mnist`` installed, a random subset of the
    training set:

    >>> from skhead2toe.datasets import load_fashion_mnist
    >>> X, y = load_fashion_mnist(n_samples=1000, random_state=0)  # doctest: +SKIP
    >>> X.shape, X.dtype  # doctest: +SKIP
    ((1000, 28, 28), dtype('uint8'))

    Any folder of the IDX files works too; here a fake one with six images:

    >>> import os
    >>> import tempfile
    >>> import numpy as np
    >>> from skhead2toe.datasets import FASHION_MNIST_CLASSES
    >>> def write_idx(path, array):  # uint8 IDX: magic number, shape, values
    ...     shape = np.array(array.shape, dtype=">u4").tobytes()
    ...     with open(path, "wb") as f:
    ...         _ = f.write(bytes([0, 0, 0x08, array.ndim]) + shape + array.tobytes())
    >>> rng = np.random.default_rng(0)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     images = rng.integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
    ...     write_idx(os.path.join(folder, "train-images-idx3-ubyte"), images)
    ...     labels = np.array([0, 1, 7, 8, 9, 9], dtype=np.uint8)
    ...     write_idx(os.path.join(folder, "train-labels-idx1-ubyte"), labels)
    ...     X, y = load_fashion_mnist(folder)
    >>> X.shape, X.dtype, y.dtype
    ((6, 28, 28), dtype('uint8'), dtype('int64'))
    >>> [FASHION_MNIST_CLASSES[label] for label in y[:4]]
    ['T-shirt/top', 'Trouser', 'Sneaker', 'Bag']
    """
    if subset not in ("train", "test"):
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}")
    root = Path(path) if path is not None else FASHION_MNIST_DIR
    if not root.is_dir():
        _find_idx(root, "train-images-idx3-ubyte")
    prefix = "train" if subset == "train" else "t10k"
    images = read_idx(_find_idx(root, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find_idx(root, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(
            f"Fashion-MNIST files in {str(root)!r} disagree: images {images.shape}, "
            f"labels {labels.shape}"
        )
    if n_samples is not None:
        if not 0 < n_samples <= len(images):
            raise ValueError(
                f"n_samples={n_samples} must lie in [1, {len(images)}] for "
                f"subset={subset!r}"
            )
        rng = check_random_state(random_state)
        keep = np.sort(rng.choice(len(images), n_samples, replace=False))
        images, labels = images[keep], labels[keep]
    return images.astype(np.uint8), labels.astype(np.int64)


def _hidden(name):
    # dot files and folders: .DS_Store, macOS AppleDouble ._*, .ipynb_checkpoints
    return name.startswith(".")


def load_image_folder(root, *, extensions=IMAGE_EXTENSIONS):
    """Image paths and labels from a folder of class sub-folders.

    Parameters
    ----------
    root : str or path-like
        Folder whose sub-folders are class names, each holding image files
        (searched recursively). Hidden files and folders (names starting with
        ``"."``, such as macOS ``._*`` resource files or
        ``.ipynb_checkpoints``) are skipped, below ``root`` and as classes.
    extensions : tuple of str, default=IMAGE_EXTENSIONS
        File name suffixes (case-insensitive) counted as images.

    Returns
    -------
    paths : list of str
        Image file paths, sorted by class then path.
    labels : ndarray of str, shape (n_images,)
        Class (sub-folder) name of each image.

    Examples
    --------
    A folder ``root/<class>/<image>`` of three small PNG images:

    >>> import os
    >>> import tempfile
    >>> from PIL import Image
    >>> from skhead2toe.datasets import load_image_folder
    >>> with tempfile.TemporaryDirectory() as root:
    ...     for label, grey in [("cat", 0), ("cat", 128), ("dog", 255)]:
    ...         os.makedirs(os.path.join(root, label), exist_ok=True)
    ...         path = os.path.join(root, label, f"grey{grey}.png")
    ...         Image.new("L", (8, 8), grey).save(path)
    ...     paths, labels = load_image_folder(root)
    >>> [os.path.basename(path) for path in paths]
    ['grey0.png', 'grey128.png', 'grey255.png']
    >>> labels
    array(['cat', 'cat', 'dog'], dtype='<U3')

    ``paths`` is a valid input of :class:`~skhead2toe.MultiLayerFeaturizer`
    (e.g. ``pipeline.fit(paths, labels)``): the images are read batch by batch.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder {str(root)!r} does not exist")
    suffixes = tuple(e.lower() for e in extensions)
    paths, labels = [], []
    classes = (p for p in root.iterdir() if p.is_dir() and not _hidden(p.name))
    for class_dir in sorted(classes):
        files = sorted(
            p
            for p in class_dir.rglob("*")
            if p.is_file()
            and p.suffix.lower() in suffixes
            and not any(_hidden(part) for part in p.relative_to(class_dir).parts)
        )
        paths += [os.fspath(p) for p in files]
        labels += [class_dir.name] * len(files)
    if not paths:
        raise ValueError(
            f"no images ({', '.join(suffixes)}) found in class sub-folders of "
            f"{str(root)!r}; expected root/<class>/<image>"
        )
    return paths, np.asarray(labels)
