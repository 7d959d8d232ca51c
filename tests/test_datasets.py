import gzip
import struct

import numpy as np
import pytest

from skhead2toe.datasets import (
    FASHION_MNIST_CLASSES,
    load_digits_images,
    load_fashion_mnist,
    load_image_folder,
    read_idx,
)


def _write_idx(path, array, code=0x08, compress=False):
    header = bytes([0, 0, code, array.ndim]) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    path.write_bytes(gzip.compress(data) if compress else data)


@pytest.fixture
def fashion_dir(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, n, compress in [("train", 30, True), ("t10k", 12, False)]:
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        suffix = ".gz" if compress else ""
        _write_idx(
            tmp_path / f"{prefix}-images-idx3-ubyte{suffix}", images, compress=compress
        )
        _write_idx(
            tmp_path / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress=compress
        )
    return tmp_path


def test_load_digits_images():
    X, y = load_digits_images()
    assert X.shape == (1797, 8, 8) and X.dtype == np.uint8
    assert X.min() == 0 and X.max() == 255 and y.shape == (1797,)
    from sklearn.datasets import load_digits

    np.testing.assert_allclose(X / 255 * 16, load_digits().images, atol=16 / 255)
    X3, y3 = load_digits_images(n_class=3)
    assert set(y3) == {0, 1, 2} and len(X3) == len(y3)


def test_read_idx_roundtrip_and_dtypes(tmp_path):
    a = np.arange(24, dtype=np.int32).reshape(2, 3, 4) - 5
    _write_idx(tmp_path / "a", a, code=0x0C)
    out = read_idx(tmp_path / "a")
    np.testing.assert_array_equal(out, a)
    assert out.dtype == np.dtype("int32")
    f = np.linspace(0, 1, 6).astype(np.float32)
    _write_idx(tmp_path / "f.gz", f, code=0x0D, compress=True)
    np.testing.assert_array_equal(read_idx(tmp_path / "f.gz"), f)


def test_read_idx_rejects_bad_files(tmp_path):
    (tmp_path / "junk").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(tmp_path / "junk")
    _write_idx(tmp_path / "t", np.zeros((3, 4), np.uint8))
    (tmp_path / "t").write_bytes((tmp_path / "t").read_bytes()[:-2])
    with pytest.raises(ValueError, match="needs 12"):
        read_idx(tmp_path / "t")
    (tmp_path / "z.gz").write_bytes(gzip.compress(b"\x00" * 40)[:15])
    with pytest.raises(ValueError, match="damaged gzip"):
        read_idx(tmp_path / "z.gz")


def test_load_fashion_mnist_from_folder(fashion_dir):
    X, y = load_fashion_mnist(fashion_dir)
    assert X.shape == (30, 28, 28) and X.dtype == np.uint8 and y.dtype == np.int64
    Xt, yt = load_fashion_mnist(fashion_dir, subset="test")
    assert Xt.shape == (12, 28, 28)
    np.testing.assert_array_equal(yt, np.arange(12) % 10)
    Xs, ys = load_fashion_mnist(fashion_dir, n_samples=7, random_state=0)
    Xs2, ys2 = load_fashion_mnist(fashion_dir, n_samples=7, random_state=0)
    assert Xs.shape == (7, 28, 28)
    np.testing.assert_array_equal(Xs, Xs2)
    # the subset is a subset of the full set, in file order
    rows = [int(np.flatnonzero((X == im).all(axis=(1, 2)))[0]) for im in Xs]
    assert rows == sorted(rows)
    assert len(FASHION_MNIST_CLASSES) == 10


def test_load_fashion_mnist_errors(tmp_path, fashion_dir):
    with pytest.raises(FileNotFoundError, match="apt install dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path / "missing")
    with pytest.raises(ValueError, match="subset"):
        load_fashion_mnist(fashion_dir, subset="val")
    with pytest.raises(ValueError, match="n_samples=31"):
        load_fashion_mnist(fashion_dir, n_samples=31)


def test_load_image_folder(tmp_path):
    from PIL import Image

    for cls, n in [("cat", 2), ("dog", 3)]:
        (tmp_path / cls / "sub").mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (4, 4)).save(tmp_path / cls / "sub" / f"{i}.PNG")
    (tmp_path / "cat" / "notes.txt").write_text("x")
    paths, labels = load_image_folder(tmp_path)
    assert len(paths) == 5 and list(labels) == ["cat"] * 2 + ["dog"] * 3
    assert all(p.endswith(".PNG") for p in paths)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image_folder(tmp_path / "nope")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images"):
        load_image_folder(tmp_path / "empty")


def test_load_image_folder_skips_hidden_files_and_folders(tmp_path):
    from PIL import Image

    (tmp_path / "cat" / ".ipynb_checkpoints").mkdir(parents=True)
    (tmp_path / ".trash" / "x").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "cat" / "0.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "cat" / ".ipynb_checkpoints" / "0.png")
    Image.new("RGB", (4, 4)).save(tmp_path / ".trash" / "x" / "1.png")
    (tmp_path / "cat" / "._0.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (tmp_path / "cat" / ".hidden.png").write_bytes(b"not an image")
    paths, labels = load_image_folder(tmp_path)
    assert paths == [str(tmp_path / "cat" / "0.png")]
    assert list(labels) == ["cat"]
    # a hidden root is not a hidden part of the paths below it
    paths, _ = load_image_folder(tmp_path / ".trash")
    assert paths == [str(tmp_path / ".trash" / "x" / "1.png")]
