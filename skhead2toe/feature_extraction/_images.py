"""Image inputs -> batches for a backbone, with errors that name the bad item.

Accepted inputs (:func:`as_source`):

- a numpy array or torch tensor of shape ``(N, H, W)`` (grayscale),
  ``(N, H, W, C)`` or ``(N, C, H, W)`` with ``C`` in {1, 3}. An ``(N, H, W)``
  array whose last axis is 3 or 4 and whose first two axes are both at least 8
  looks like one color image without its batch axis: it is still read as ``N``
  gray images, with a ``UserWarning`` that says to pass ``X[None]``;
- a list (or tuple) of image file paths, of PIL images, or of per-image arrays
  ``(H, W)``, ``(H, W, C)`` or ``(C, H, W)``.

Pixel values, one rule for arrays, tensors, PIL images and files:

- ``uint16`` (PIL modes ``"I;16"``, ``"I;16B"``, ...; 16-bit PNG and TIFF files):
  16-bit, divided by 65535;
- every other integer type (``uint8``, ``int8`` to ``int64``, ``uint32``,
  ``uint64``; PIL mode ``"I"``): 8-bit, the values must lie in ``0..255``;
- floating point (PIL mode ``"F"``): the values must lie in ``[0, 1]``, NaN and
  infinity are errors;
- ``bool`` and complex: errors.

PIL images and files are turned upright by their EXIF orientation (as image
viewers show them), and transparent images (RGBA, LA, palette or gray with a
transparent color) are composited on white; other modes are converted to RGB.
Every error names the offending item (and its file).

Images are read one batch at a time, so memory does not grow with ``N``. Arrays of
one size are resized on the device in a batch; list items, which may differ in size,
are resized one by one on the host with the same function, so both paths give the
same numbers. Grayscale images are repeated to 3 channels; then the backbone's mean
and std are applied. Resizing squashes to ``image_size x image_size`` (no crop),
as in the VTAB protocol used by Head2Toe.
"""

import hashlib
import io
import os
import warnings

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "IMAGE_RULES",
    "ImageSource",
    "as_source",
    "read_image_file",
    "resize",
    "to_model_input",
]

#: Version of the rules that turn inputs into pixels (dtype scaling, EXIF
#: orientation, transparency): part of the feature cache's key, so that a change
#: of rules never serves features read by the old ones.
IMAGE_RULES = 2

_FLOAT_TOL = 1e-3
_RULE = (
    "integer images must lie in 0..255 (8-bit: any integer dtype except uint16), "
    "uint16 images are 16-bit (divided by 65535), float images must lie in [0, 1]"
)
_ORIENTATION = 0x0112  # the EXIF orientation tag
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
_MIN_SIDE = 8  # (N, H, W, 3|4) with N, H >= this: likely one image, see as_source


def _describe(item):
    return type(item).__module__.split(".")[0] + "." + type(item).__name__


def _kind(item):
    from PIL import Image

    if isinstance(item, str | os.PathLike):
        return "path"
    if isinstance(item, Image.Image):
        return "pil"
    if isinstance(item, np.ndarray | torch.Tensor):
        return "array"
    return None


def _layout(shape, what):
    """Return 'nhw', 'nhwc' or 'nchw' for a batch shape, or raise."""
    if len(shape) == 3:
        return "nhw"
    if len(shape) == 4 and shape[-1] in (1, 3):
        return "nhwc"
    if len(shape) == 4 and shape[1] in (1, 3):
        return "nchw"
    if len(shape) == 4:
        raise ValueError(
            f"{what} has shape {tuple(shape)}: expected 1 or 3 channels on the last "
            "axis (N, H, W, C) or the second axis (N, C, H, W); convert RGBA or "
            "multi-band images to RGB first"
        )
    raise ValueError(
        f"{what} has shape {tuple(shape)}: expected images (N, H, W), (N, H, W, C) "
        "or (N, C, H, W)"
    )


def _native(arr):
    """``arr`` in native byte order (torch rejects big-endian arrays)."""
    return arr if arr.dtype.isnative else arr.astype(arr.dtype.newbyteorder("="))


def _from_numpy(arr):
    """Convert numpy to torch on any torch version (< 2.3 has no uint16..uint64).

    ``uint16`` becomes float32 in ``[0, 1]`` (the 16-bit rule), ``uint32`` and
    ``uint64`` become int64 (clipped at its maximum), to be checked against
    ``0..255`` as every other integer type is.
    """
    arr = _native(arr)
    if arr.dtype == np.uint16:
        return torch.from_numpy(arr.astype(np.float32) / np.float32(65535.0))
    if arr.dtype in (np.uint32, np.uint64):
        arr = np.minimum(arr, np.uint64(np.iinfo(np.int64).max)).astype(np.int64)
    return torch.from_numpy(arr)


def _to_tensor(arr):
    if isinstance(arr, torch.Tensor):
        return arr.detach()
    return _from_numpy(np.array(arr, copy=True))


def _dtype_name(dtype):
    return dtype.name if isinstance(dtype, np.dtype) else str(dtype).split(".")[-1]


_TORCH_UINT16 = getattr(torch, "uint16", None)  # torch >= 2.3
_TORCH_WIDE_UINTS = tuple(
    d for d in (getattr(torch, "uint32", None), getattr(torch, "uint64", None)) if d
)


def _check_values(x, names, dtype=None):
    """Check dtype and values of an (n, C, H, W) tensor; return uint8 or float32.

    ``names[j]`` names image ``j`` in error messages ("image 3", "image file ...");
    ``dtype``, the input's dtype if ``x`` was converted from it. The rule is the
    module's (see its docstring and ``_RULE``).
    """
    dtype = _dtype_name(x.dtype if dtype is None else dtype)
    if x.dtype == torch.bool or not (x.is_floating_point() or _is_int(x)):
        raise TypeError(f"{names[0]} has dtype {dtype}, not supported: {_RULE}")
    if x.is_floating_point():
        return _check_float(x, names)
    if x.dtype == torch.uint8:
        return x
    if x.dtype == _TORCH_UINT16:
        return x.float().div_(65535.0)
    flat = x.flatten(1)
    if x.dtype in _TORCH_WIDE_UINTS:
        flat = flat.double()  # torch has no min/max for these
    lo, hi = flat.amin(dim=1).double(), flat.amax(dim=1).double()
    bad = (lo < 0) | (hi > 255)  # in float64: 255 overflows int8
    if bad.any():
        j = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"{names[j]} has integer values in [{int(lo[j])}, {int(hi[j])}] "
            f"(dtype {dtype}): {_RULE}"
        )
    return x.to(torch.uint8)


def _check_float(x, names):
    bad = ~torch.isfinite(x).flatten(1).all(dim=1)
    if bad.any():
        name = names[int(bad.nonzero()[0, 0])]
        raise ValueError(f"{name} contains NaN or infinite values")
    lo, hi = x.flatten(1).amin(dim=1), x.flatten(1).amax(dim=1)
    bad = (lo < -_FLOAT_TOL) | (hi > 1 + _FLOAT_TOL)
    if bad.any():
        j = int(bad.nonzero()[0, 0])
        raise ValueError(
            f"{names[j]} has values in [{float(lo[j]):.4g}, {float(hi[j]):.4g}]: "
            "float images must be scaled to [0, 1] (divide by 255, or pass uint8 "
            "images)"
        )
    return x.float()


def _is_int(x):
    return not x.is_floating_point() and not x.is_complex() and x.dtype != torch.bool


def _nchw(x, layout):
    if layout == "nhw":
        return x[:, None]
    if layout == "nhwc":
        return x.permute(0, 3, 1, 2)
    return x


def _hash(*parts):
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        h.update(part if isinstance(part, bytes | memoryview) else str(part).encode())
    return h.hexdigest()


def _array_hash(img):
    arr = img.cpu().numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
    arr = np.ascontiguousarray(arr)
    return _hash(arr.dtype.str, arr.shape, memoryview(arr).cast("B"))


def resize(x, size, interpolation="bilinear"):
    """Resize a float batch ``(n, C, H, W)`` to ``size x size`` (antialiased).

    Parameters
    ----------
    x : torch.Tensor
        Float images in ``[0, 1]``.
    size : int
        Output side in pixels.
    interpolation : str, default="bilinear"
        ``"bicubic"`` or ``"bilinear"`` (anything else means bilinear).

    Returns
    -------
    x : torch.Tensor of shape (n, C, size, size)
        Resized images, clipped to ``[0, 1]``.
    """
    if tuple(x.shape[-2:]) == (size, size):
        return x
    mode = "bicubic" if interpolation == "bicubic" else "bilinear"
    out = F.interpolate(x, size=(size, size), mode=mode, antialias=True)
    return out.clamp_(0.0, 1.0)


def _to_unit_float(x):
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


def to_model_input(x, data_config, device, *, channels_last=False):
    """Move a loaded batch to ``device``, resize, expand gray, normalise.

    Parameters
    ----------
    x : torch.Tensor of shape (n, C, H, W)
        uint8 (0..255) or float (0..1) images with C in {1, 3}.
    data_config : dict
        ``image_size``, ``mean``, ``std``, ``interpolation``.
    device : torch.device
        Target device; on CUDA the host batch is pinned and copied asynchronously.
    channels_last : bool, default=False
        Return the batch in channels-last memory format (for CUDA convnets).

    Returns
    -------
    x : torch.Tensor of shape (n, 3, image_size, image_size)
        Normalised float32 batch on ``device``.

    Examples
    --------
    Two grey 8x8 images, black on the left and white on the right, resized to
    32x32, expanded to 3 channels and mapped to ``(x - mean) / std``:

    >>> import torch
    >>> from skhead2toe.feature_extraction import to_model_input
    >>> x = torch.zeros(2, 1, 8, 8, dtype=torch.uint8)
    >>> x[..., 4:] = 255
    >>> config = {
    ...     "image_size": 32,
    ...     "mean": (0.5, 0.5, 0.5),
    ...     "std": (0.5, 0.5, 0.5),
    ...     "interpolation": "bilinear",
    ... }
    >>> batch = to_model_input(x, config, torch.device("cpu"))
    >>> batch.shape, batch.dtype
    (torch.Size([2, 3, 32, 32]), torch.float32)
    >>> batch[0, :, 0, 0].tolist(), batch[0, :, 0, -1].tolist()  # black, white
    ([-1.0, -1.0, -1.0], [1.0, 1.0, 1.0])

    A backbone's own configuration is the ``data_config`` of its
    :class:`~skhead2toe.feature_extraction.Backbone`.
    """
    if device.type == "cuda" and x.device.type == "cpu":
        x = x.pin_memory()
    x = _to_unit_float(x.to(device, non_blocking=True))
    x = resize(x, data_config["image_size"], data_config["interpolation"])
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    mean = torch.tensor(data_config["mean"], device=device).view(1, 3, 1, 1)
    inv_std = 1.0 / torch.tensor(data_config["std"], device=device).view(1, 3, 1, 1)
    x = (x - mean).mul_(inv_std)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


class ImageSource:
    """Uniform, lazy, batch-wise access to a set of images.

    Parameters
    ----------
    images : array, tensor or list
        See :func:`as_source`.
    kind : {"array", "paths", "pil", "arrays"}
        Input kind (one batch array, or a list of one kind of item).
    layout : str or None
        Layout of a batch array: ``"nhw"``, ``"nhwc"`` or ``"nchw"``.
    """

    def __init__(self, images, kind, layout=None):
        self.images = images
        self.kind = kind
        self.layout = layout
        # File contents read by the last hashes() call, decoded by the next load()
        # instead of read again: a cached run reads each file once.
        self._file_bytes = {}

    def __len__(self):
        return len(self.images)

    def load(self, indices, *, size, interpolation="bilinear", pool=None):
        """Load images ``indices`` as one ``(n, C, H, W)`` tensor on the host.

        Parameters
        ----------
        indices : array-like of int
            Positions of the images to load.
        size : int
            Side of the model input; list items are resized to it here.
        interpolation : str, default="bilinear"
            See :func:`resize`.
        pool : concurrent.futures.Executor or None, default=None
            Decode list items in parallel with this executor.

        Returns
        -------
        batch : torch.Tensor
            uint8 or float32 images with 1 or 3 channels.
        """
        indices = [int(i) for i in indices]
        if self.kind == "array":
            contiguous = indices == list(range(indices[0], indices[-1] + 1))
            x = self.images[indices[0] : indices[-1] + 1] if contiguous else None
            if x is None:
                x = self.images[indices]  # a copy
            if not isinstance(x, torch.Tensor):
                if not x.flags.writeable:
                    x = np.array(x)  # torch wants writable memory
                x = _from_numpy(np.ascontiguousarray(x))
            names = [f"image {i}" for i in indices]
            return _check_values(_nchw(x, self.layout), names, self.images.dtype)
        load = pool.map if pool is not None else map
        items = list(load(self._load_item, indices))
        items = [resize(_to_unit_float(t[None]), size, interpolation) for t in items]
        channels = {t.shape[1] for t in items}
        if len(channels) > 1:
            items = [t.expand(-1, 3, -1, -1) for t in items]
        return torch.cat(items)

    def _load_item(self, i):
        item = self.images[i]
        if self.kind == "path":
            return read_image_file(item, i, self._file_bytes.pop(i, None))
        if self.kind == "pil":
            return _pil_to_tensor(item, i)
        shape = tuple(item.shape)
        layout = _layout((1, *shape), f"image {i}")
        x = _nchw(_to_tensor(item)[None], layout)
        return _check_values(x, [f"image {i}"], item.dtype)[0]

    def hashes(self, indices):
        """Content hash of each image ``indices`` (hex strings).

        Parameters
        ----------
        indices : array-like of int
            Positions of the images.

        Returns
        -------
        hashes : list of str
            A 32-character hash per image: of the file bytes for paths, of the
            pixels, mode and size for PIL images (and their EXIF orientation,
            transparent color and palette, when they have one), of the values,
            dtype and shape for arrays.
        """
        out = []
        file_bytes = {}
        for i in indices:
            item = self.images[int(i)]
            if self.kind == "path":
                file_bytes[int(i)] = data = _read_bytes(item, int(i))
                out.append(_hash(b"file", data))
            elif self.kind == "pil":
                parts = item.mode, item.size, item.tobytes(), *_pil_extras(item)
                out.append(_hash(b"pil", *parts))
            else:
                out.append(_array_hash(item))
        self._file_bytes = file_bytes  # only the last batch's: memory stays small
        return out


def _read_bytes(path, i):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise FileNotFoundError(
            f"image file {str(path)!r} (item {i}) not found"
        ) from None
    except IsADirectoryError:
        raise IsADirectoryError(_directory_message(path, i)) from None
    except OSError as exc:
        raise OSError(
            f"cannot read image file {str(path)!r} (item {i}): {exc}"
        ) from exc


def _directory_message(path, i):
    return (
        f"image file {str(path)!r} (item {i}) is a directory, not an image file; "
        "list the image files in it (for a folder of class sub-folders use "
        "skhead2toe.datasets.load_image_folder)"
    )


def _pil_extras(img):
    """What a PIL image's pixels, mode and size leave out but its reading uses."""
    extras = []
    orientation = img.getexif().get(_ORIENTATION, 1)
    if orientation != 1:
        extras.append(f"orientation={orientation}")
    if "transparency" in img.info:
        extras.append(f"transparency={img.info['transparency']!r}")
    if img.mode in ("P", "PA"):
        extras.append(bytes(img.getpalette() or []))
    return extras


def _on_white(img):
    """Composite a transparent PIL image on white; gray stays gray."""
    from PIL import Image

    gray = img.mode in ("1", "L", "LA", "La")
    if img.mode == "La":
        img = img.convert("LA")  # Pillow converts La to nothing else
    white = Image.new("RGBA", img.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, img.convert("RGBA")).convert(
        "L" if gray else "RGB"
    )


def _pil_pixels(img):
    """Pixels of a PIL image, upright, as a (C, H, W) tensor of its own type."""
    from PIL import ImageOps

    if img.getexif().get(_ORIENTATION, 1) != 1:
        img = ImageOps.exif_transpose(img)
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):
        return _from_numpy(np.array(img))[None]  # int32, float32; uint16 -> [0, 1]
    if img.mode in _ALPHA_MODES or "transparency" in img.info:
        img = _on_white(img)
    if img.mode not in ("L", "RGB"):
        img = img.convert("L" if img.mode == "1" else "RGB")
    t = torch.from_numpy(np.array(img, dtype=np.uint8))
    return t[None] if t.ndim == 2 else t.permute(2, 0, 1)


def _pil_to_tensor(img, i):
    """PIL image (item ``i``) -> checked (C, H, W) uint8 or float32 tensor."""
    name = f"image {i} (PIL mode {img.mode!r})"
    try:
        pixels = _pil_pixels(img)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {name}: {exc}") from exc
    return _check_values(pixels[None], [name])[0]


def read_image_file(path, i, data=None):
    """Decode image file ``path`` as the featurizer does, with its checks.

    Parameters
    ----------
    path : str or path-like
        The image file.
    i : int
        Its position in the input, for the error messages.
    data : bytes, default=None
        Its content, if already read.

    Returns
    -------
    pixels : ndarray
        The decoded, validated pixels (EXIF-oriented, transparency on white).

    Raises
    ------
    OSError, ValueError
        The file is missing, a folder, not a decodable image, or its values are
        out of range; the message names it.
    """
    from PIL import Image, UnidentifiedImageError

    name = f"image file {str(path)!r} (item {i})"
    if data is None:
        data = _read_bytes(path, i)
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            pixels = _pil_pixels(img)
    except UnidentifiedImageError as exc:
        # PIL names the in-memory buffer, not the file: say it plainly
        raise ValueError(
            f"cannot read {name}: not an image file of a format PIL can decode "
            f"({len(data):,} bytes)"
        ) from exc
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {name}: {exc}") from exc
    return _check_values(pixels[None], [name])[0]


def _list_source(images):
    if len(images) == 0:
        raise ValueError("X is empty: got 0 images")
    kinds = [_kind(item) for item in images]
    for i, (item, kind) in enumerate(zip(images, kinds, strict=True)):
        if kind is None:
            raise TypeError(
                f"item {i} of X is a {_describe(item)}; expected image paths, PIL "
                "images or arrays"
            )
        if kind != kinds[0]:
            raise TypeError(
                f"X mixes input types: item 0 is a {_describe(images[0])} but item "
                f"{i} is a {_describe(item)}; pass one kind of image"
            )
    if kinds[0] == "path":
        for i, path in enumerate(images):
            if os.path.isdir(path):
                raise IsADirectoryError(_directory_message(path, i))
            if not os.path.isfile(path):
                raise FileNotFoundError(
                    f"image file {str(path)!r} (item {i}) not found"
                )
        return ImageSource(list(images), "path")
    if kinds[0] == "array":
        for i, item in enumerate(images):
            _layout((1, *item.shape), f"image {i}")
        return ImageSource(list(images), "arrays")
    return ImageSource(list(images), "pil")


def _warn_if_one_image(shape):
    """Warn when an (N, H, W) batch looks like one (H, W, C) color image."""
    n, h, w = shape
    if w not in (3, 4) or min(n, h) < _MIN_SIDE:
        return
    if w == 3:
        fix = "pass X[None] to add the batch axis"
    else:
        fix = (
            "pass X[None, ..., :3] (alpha dropped) or [PIL.Image.fromarray(X)] "
            "(composited on white)"
        )
    warnings.warn(
        f"X has shape {shape}: it is read as {n} grayscale images of {h}x{w} "
        f"pixels. If it is one {'RGB' if w == 3 else 'RGBA'} image (H, W, C), "
        f"{fix}",
        UserWarning,
        stacklevel=3,
    )


def as_source(X):
    """Wrap images as an :class:`ImageSource`, checking what is cheap to check.

    Shapes, types, emptiness and file existence are checked here; values (NaN,
    range) and file contents are checked batch by batch as they are read.

    Parameters
    ----------
    X : array, tensor, list or tuple
        ``(N, H, W)``, ``(N, H, W, C)`` or ``(N, C, H, W)`` array or tensor, or a
        list of paths, PIL images or per-image arrays.

    Returns
    -------
    source : ImageSource
        Lazy view of the images.
    """
    if isinstance(X, ImageSource):
        return X
    if isinstance(X, list | tuple):
        return _list_source(X)
    if isinstance(X, str | os.PathLike):
        raise TypeError(
            f"X is a single path {str(X)!r}; pass a list of paths (for a folder "
            "of class sub-folders use skhead2toe.datasets.load_image_folder)"
        )
    if isinstance(X, torch.Tensor) or hasattr(X, "__array__"):
        if not isinstance(X, torch.Tensor):
            X = np.asarray(X)
            if X.dtype == object:
                return _list_source(list(X))
        if X.ndim > 0 and len(X) == 0:
            raise ValueError(f"X is empty: got 0 images (shape {tuple(X.shape)})")
        layout = _layout(tuple(X.shape), "X")
        if layout == "nhw":
            _warn_if_one_image(tuple(X.shape))
        dtype = X.dtype
        is_num = (
            dtype.is_floating_point or dtype == torch.uint8 or not dtype.is_complex
            if isinstance(X, torch.Tensor)
            else dtype.kind in "uif"
        )
        if not is_num or dtype in (np.bool_, torch.bool):
            raise TypeError(f"X has dtype {dtype}, not supported: {_RULE}")
        return ImageSource(X, "array", layout)
    raise TypeError(
        f"X is a {_describe(X)}; expected an image array (N, H, W[, C]), a torch "
        "tensor, or a list of paths or PIL images"
    )
