"""From the image arguments to features: paths, unreadable images, the featurizer."""

import glob
import os
import sys
from pathlib import Path

from skhead2toe._cli._errors import _Failure, _one_line, _UsageError
from skhead2toe._cli._options import _layers


def _images(inputs, skip_bad=False, command="extract"):
    """Image paths (and labels for a single folder of class sub-folders)."""
    from skhead2toe import datasets

    if len(inputs) == 1 and Path(inputs[0]).is_dir():
        paths, labels = datasets.load_image_folder(inputs[0])
    else:
        for item in inputs:
            path = Path(item)
            if path.is_dir():
                raise _UsageError(
                    f"{item!r} is a folder: give one folder of class sub-folders, "
                    "or image files"
                )
            if not path.is_file():
                raise FileNotFoundError(f"image file {item!r} does not exist")
        paths, labels = list(inputs), None
    if skip_bad:
        paths, labels = _readable(paths, labels, command)
    return paths, labels


_GLOB_CHARACTERS = frozenset("*?[")


def _image_files(inputs):
    """The image files that files, folders and globs name: each once, in order.

    A folder gives every image file below it (recursively); a glob (expanded
    here, so a quoted one works too) gives the image files and the images of
    the folders it matches. Image files are those with an image suffix, and
    hidden files and folders are skipped, as in
    :func:`skhead2toe.datasets.load_image_folder`; a file named explicitly is
    taken whatever its name.
    """
    found = {}
    for item in inputs:
        for path in _named_by(item):
            found.setdefault(path, None)
    return list(found)


def _named_by(item):
    """The image files one argument names (a file, a folder or a glob)."""
    path = Path(item)
    if path.is_file():
        return [item]
    if path.is_dir():
        return _folder_images(path, item)
    if _GLOB_CHARACTERS.isdisjoint(item):
        raise FileNotFoundError(f"image file or folder {item!r} does not exist")
    files = []
    for match in sorted(glob.glob(item, recursive=True)):
        if Path(match).is_dir():
            files += _folder_images(Path(match), match, required=False)
        elif _is_image(Path(match)):
            files.append(match)
    if not files:
        raise _Failure(f"no image file matches {item!r}")
    return files


def _is_image(path, root=None):
    """Whether ``path`` has an image suffix and no hidden part below ``root``."""
    from skhead2toe.datasets import IMAGE_EXTENSIONS, _hidden

    parts = path.relative_to(root).parts if root is not None else (path.name,)
    return path.suffix.lower() in IMAGE_EXTENSIONS and not any(map(_hidden, parts))


def _folder_images(root, item, required=True):
    """The image files below folder ``root`` (argument ``item``), sorted."""
    from skhead2toe.datasets import IMAGE_EXTENSIONS

    files = sorted(p for p in root.rglob("*") if p.is_file() and _is_image(p, root))
    if required and not files:
        raise _Failure(
            f"no images ({', '.join(IMAGE_EXTENSIONS)}) found in folder {item!r}"
        )
    return [os.fspath(p) for p in files]


def _image_problem(path, i):
    """Why image file ``path`` (item ``i``) cannot be read, or None if it can.

    It is read as the featurizer reads it (decoding, modes, value checks), so an
    image that passes here is not rejected by the extraction later.
    """
    from skhead2toe.feature_extraction._images import read_image_file

    try:
        read_image_file(path, i)
    except (OSError, ValueError) as exc:
        return _one_line(exc)
    return None


def _readable(paths, labels, command):
    """Drop (and report on stderr) the images that cannot be decoded."""
    keep = []
    for i, path in enumerate(paths):
        problem = _image_problem(path, i)
        if problem is None:
            keep.append(i)
        else:
            print(f"skhead2toe {command}: skipped {path}: {problem}", file=sys.stderr)
    n_bad = len(paths) - len(keep)
    if n_bad:
        print(
            f"skhead2toe {command}: skipped {n_bad} of {len(paths)} images that "
            f"cannot be read; using the other {len(keep)}",
            file=sys.stderr,
        )
    if not keep:
        raise _Failure(f"no readable image among the {len(paths)} given")
    return [paths[i] for i in keep], None if labels is None else labels[keep]


def _featurizer(args):
    from skhead2toe import MultiLayerFeaturizer

    pretrained = (
        False if args.random_weights else (args.weights if args.weights else True)
    )
    return MultiLayerFeaturizer(
        args.backbone,
        layers=_layers(args),
        target_size=args.target_size,
        pretrained=pretrained,
        image_size=args.image_size,
        device=args.device,
        batch_size=args.batch_size,
        cache=args.cache,
        progress="auto",
        random_state=args.seed,
    )


def _features(feat, paths, args):
    """``feat.fit_transform(paths)``; an unreadable image's error hints --skip-bad."""
    return _hinting_skip_bad(feat.fit_transform, paths, args)


def _hinting_skip_bad(extract, paths, args):
    """``extract(paths)``; an unreadable image's error hints --skip-bad."""
    try:
        return extract(paths)
    except (OSError, ValueError) as exc:
        message = _one_line(exc)
        if args.skip_bad or not any(path in message for path in paths):
            raise
        raise _Failure(
            f"{message} (--skip-bad skips the images that cannot be read)"
        ) from exc
