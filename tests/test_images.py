import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from skhead2toe.feature_extraction import to_model_input
from skhead2toe.feature_extraction._images import as_source

CFG = {
    "image_size": 16,
    "mean": (0.5, 0.4, 0.3),
    "std": (0.2, 0.25, 0.3),
    "interpolation": "bilinear",
}
CPU = torch.device("cpu")


def _prepared(X, idx=(0, 1, 2)):
    batch = as_source(X).load(list(idx), size=CFG["image_size"])
    return to_model_input(batch, CFG, CPU)


@pytest.fixture
def rgb(seed):
    return np.random.default_rng(0).integers(0, 256, (3, 12, 10, 3), dtype=np.uint8)


def test_layouts_dtypes_and_tensors_agree(rgb):
    ref = _prepared(rgb)
    assert ref.shape == (3, 3, 16, 16) and ref.dtype == torch.float32
    torch.testing.assert_close(_prepared(rgb.transpose(0, 3, 1, 2)), ref)
    torch.testing.assert_close(_prepared(rgb / 255.0), ref)
    torch.testing.assert_close(_prepared(rgb.astype(np.int64)), ref)
    torch.testing.assert_close(_prepared(torch.from_numpy(rgb)), ref)
    torch.testing.assert_close(_prepared(list(rgb)), ref)


def test_pil_and_files_match_arrays(rgb, tmp_path):
    ref = _prepared(rgb)
    pils = [Image.fromarray(im) for im in rgb]
    torch.testing.assert_close(_prepared(pils), ref)
    paths = []
    for i, im in enumerate(pils):
        im.save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    torch.testing.assert_close(_prepared(paths), ref)


def test_grayscale_becomes_three_equal_channels(rgb):
    gray = rgb[..., 0]
    out = _prepared(gray)
    assert out.shape == (3, 3, 16, 16)
    std, mean = torch.tensor(CFG["std"]), torch.tensor(CFG["mean"])
    unnorm = out * std.view(1, 3, 1, 1) + mean.view(1, 3, 1, 1)
    torch.testing.assert_close(unnorm[:, 0], unnorm[:, 2])
    torch.testing.assert_close(_prepared(gray[..., None]), out)
    pil_gray = [Image.fromarray(im, mode="L") for im in gray]
    torch.testing.assert_close(_prepared(pil_gray), out)


def test_normalisation_uses_mean_and_std():
    white = np.full((1, 16, 16, 3), 255, np.uint8)
    out = _prepared(white, idx=[0])
    expected = (1 - torch.tensor(CFG["mean"])) / torch.tensor(CFG["std"])
    torch.testing.assert_close(out[0, :, 5, 5], expected)


@pytest.mark.parametrize(
    "X, exc, match",
    [
        (np.zeros((2, 8, 8, 4), np.uint8), ValueError, "1 or 3 channels"),
        (np.zeros((2, 8, 8, 8, 3)), ValueError, r"expected images \(N, H, W\)"),
        (np.zeros((0, 8, 8), np.uint8), ValueError, "empty"),
        ([], ValueError, "empty"),
        ([np.zeros((8, 8)), "a.png"], TypeError, "item 1"),
        ([Image.new("RGB", (4, 4)), np.zeros((4, 4))], TypeError, "mixes"),
        ([3, 4], TypeError, "item 0 of X is a builtins.int"),
        ("folder", TypeError, "single path"),
        (np.zeros((2, 8, 8), dtype=bool), TypeError, "dtype"),
        (np.zeros((2, 8, 8), dtype=complex), TypeError, "dtype"),
        (["/nonexistent/xyz.png"], FileNotFoundError, "/nonexistent/xyz.png"),
        ({"a": 1}, TypeError, "expected an image array"),
    ],
)
def test_bad_inputs_fail_early_with_clear_errors(X, exc, match):
    with pytest.raises(exc, match=match):
        as_source(X)


def test_bad_values_name_the_image():
    X = np.zeros((5, 8, 8), np.float32)
    X[3, 2, 2] = np.nan
    with pytest.raises(ValueError, match="image 3 contains NaN"):
        as_source(X).load(range(5), size=8)
    X[3, 2, 2] = 7.0
    with pytest.raises(ValueError, match=r"image 3 has values in \[0, 7\].*\[0, 1\]"):
        as_source(X).load(range(5), size=8)
    ints = np.zeros((3, 8, 8), np.int32)
    ints[1, 0, 0] = 300
    with pytest.raises(ValueError, match="image 1 has integer values"):
        as_source(ints).load(range(3), size=8)
    nan_item = [np.zeros((8, 8)), np.full((8, 8), np.nan)]
    with pytest.raises(ValueError, match="image 1 contains NaN"):
        as_source(nan_item).load([0, 1], size=8)


def test_unreadable_file_names_its_path(tmp_path):
    good = tmp_path / "good.png"
    Image.new("RGB", (6, 6)).save(good)
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image at all")
    source = as_source([str(good), str(bad)])
    with pytest.raises(ValueError, match=r"broken\.jpg.*item 1") as info:
        source.load([0, 1], size=8)
    # the message is about the file, not PIL's in-memory buffer
    assert "BytesIO" not in str(info.value)
    assert "not an image file" in str(info.value)


def test_mixed_sizes_in_a_list_are_resized_one_by_one():
    items = [np.zeros((10, 20, 3), np.uint8), np.full((30, 5), 255, np.uint8)]
    batch = as_source(items).load([0, 1], size=12)
    assert batch.shape == (2, 3, 12, 12)
    assert float(batch[0].max()) == 0.0
    assert float(batch[1].min()) == pytest.approx(1.0)


def test_content_hashes(rgb, tmp_path):
    source = as_source(rgb)
    h = source.hashes(range(3))
    assert len(set(h)) == 3 and all(len(x) == 32 for x in h)
    assert as_source(rgb.copy()).hashes(range(3)) == h
    changed = rgb.copy()
    changed[1, 0, 0, 0] ^= 1
    h2 = as_source(changed).hashes(range(3))
    assert h2[0] == h[0] and h2[1] != h[1]
    p = tmp_path / "a.png"
    Image.fromarray(rgb[0]).save(p)
    assert as_source([str(p)]).hashes([0]) == as_source([str(p)]).hashes([0])
    pil = Image.fromarray(rgb[0])
    assert as_source([pil]).hashes([0]) != as_source([pil.convert("L")]).hashes([0])


def test_hashing_then_loading_reads_each_file_once(rgb, tmp_path, monkeypatch):
    from skhead2toe.feature_extraction import _images

    paths = []
    for i, im in enumerate(rgb):
        Image.fromarray(im).save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    ref = as_source(paths).load(range(3), size=16)
    reads = []
    read_bytes = _images._read_bytes

    def counting(path, i):
        reads.append(path)
        return read_bytes(path, i)

    monkeypatch.setattr(_images, "_read_bytes", counting)
    source = as_source(paths)
    source.hashes(range(3))
    torch.testing.assert_close(source.load(range(3), size=16), ref)
    assert sorted(reads) == sorted(paths)  # once for the hash and the pixels


def _three(X):
    """Model inputs of the three images of X (arrays) or of X's list items."""
    return _prepared(X, idx=range(len(X)))


def test_pil_float_and_int32_images_follow_the_array_rules(tmp_path):
    def pil(value, dtype):
        return Image.fromarray(np.full((4, 4), value, dtype))

    with pytest.raises(ValueError, match=r"image 0 .*values in \[-5, -5\].*\[0, 1\]"):
        as_source([pil(-5.0, np.float32)]).load([0], size=4)
    with pytest.raises(ValueError, match="image 1 .*contains NaN"):
        as_source([pil(0.5, np.float32), pil(np.nan, np.float32)]).load([0, 1], size=4)
    with pytest.raises(
        ValueError, match=r"image 0 .*values in \[-1000, -1000\].*int32"
    ):
        as_source([pil(-1000, np.int32)]).load([0], size=4)
    # in range: the same numbers as arrays of the same dtype
    floats = np.array([0.0, 0.25, 1.0], np.float32)[:, None, None] * np.ones((4, 4))
    floats = floats.astype(np.float32)
    torch.testing.assert_close(
        _three([Image.fromarray(im) for im in floats]), _three(floats)
    )
    ints = (floats * 200).astype(np.int32)
    torch.testing.assert_close(
        _three([Image.fromarray(im) for im in ints]), _three(ints.astype(np.uint8))
    )
    # a file's value errors name the file
    path = tmp_path / "nan.tif"
    pil(np.nan, np.float32).save(path)
    with pytest.raises(ValueError, match=r"nan\.tif.*item 0.*contains NaN"):
        as_source([str(path)]).load([0], size=4)


def test_16_bit_images_are_scaled_by_the_type_range(tmp_path):
    eight = np.array([128, 255, 0], np.uint8)[:, None, None] * np.ones((6, 6), np.uint8)
    sixteen = eight.astype(np.uint16) * 257  # 128 -> 32896, 255 -> 65535
    ref = _three(eight)
    assert not torch.allclose(ref[0], ref[1])  # half and full bright differ
    torch.testing.assert_close(_three(sixteen), ref)
    if hasattr(torch, "uint16"):  # torch >= 2.3
        as_tensor = torch.from_numpy(sixteen.astype(np.int32)).to(torch.uint16)
        torch.testing.assert_close(_three(as_tensor), ref)
    torch.testing.assert_close(_three(list(sixteen)), ref)
    torch.testing.assert_close(_three(sixteen.astype(">u2")), ref)
    pils = [Image.fromarray(im) for im in sixteen]
    assert pils[0].mode == "I;16"
    torch.testing.assert_close(_three(pils), ref)
    big_endian = [
        Image.frombytes("I;16B", (6, 6), im.astype(">u2").tobytes()) for im in sixteen
    ]
    torch.testing.assert_close(_three(big_endian), ref)
    paths = []
    for i, im in enumerate(pils):
        im.save(tmp_path / f"{i}.png")
        paths.append(str(tmp_path / f"{i}.png"))
    torch.testing.assert_close(_three(paths), ref)


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.uint32, np.uint64, np.int64])
def test_integer_dtypes_in_0_255_are_8_bit_images(dtype):
    eight = np.array([0, 127, 100], np.uint8)[:, None, None] * np.ones((5, 5), np.uint8)
    ref = _three(eight)
    torch.testing.assert_close(_three(eight.astype(dtype)), ref)
    torch.testing.assert_close(_three(list(eight.astype(dtype))), ref)


@pytest.mark.parametrize(
    "dtype, value, found",
    [
        (np.uint32, 300, r"\[0, 300\]"),
        (np.uint64, 70000, r"\[0, 70000\]"),
        (np.int8, -3, r"\[-3, 0\]"),
        (np.int64, -1, r"\[-1, 0\]"),
    ],
)
def test_integer_values_outside_0_255_name_dtype_range_and_rule(dtype, value, found):
    X = np.zeros((2, 4, 4), dtype)
    X[1, 0, 0] = value
    rule = r"0\.\.255.*uint16.*65535.*\[0, 1\]"
    name = np.dtype(dtype).name
    with pytest.raises(
        ValueError,
        match=rf"image 1 has integer values in {found}.*"
        rf"\(dtype {name}\).*{rule}",
    ):
        as_source(X).load([0, 1], size=4)
    with pytest.raises(ValueError, match=rf"image 1 has integer values in {found}"):
        as_source(list(X)).load([0, 1], size=4)


def test_dtype_errors_state_the_rule():
    with pytest.raises(TypeError, match=r"bool.*0\.\.255.*uint16.*65535.*\[0, 1\]"):
        as_source(np.zeros((2, 4, 4), bool))


def test_a_directory_in_a_path_list_is_named_as_a_directory(tmp_path):
    good = tmp_path / "good.png"
    Image.new("RGB", (6, 6)).save(good)
    (tmp_path / "sub").mkdir()
    sub = str(tmp_path / "sub")
    with pytest.raises(IsADirectoryError, match=rf"{sub}.*item 1.*is a directory"):
        as_source([str(good), sub])


def test_one_rgb_image_without_batch_axis_warns():
    image = np.zeros((16, 12, 3), np.uint8)
    with pytest.warns(UserWarning, match=r"16 grayscale images.*X\[None\]"):
        source = as_source(image)
    assert len(source) == 16  # still read as documented
    with pytest.warns(UserWarning, match=r"RGBA image.*X\[None, \.\.\., :3\]"):
        as_source(torch.zeros(20, 9, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for shape in [(3, 3, 3), (4, 4, 4), (10, 16, 16), (2, 16, 3), (16, 5, 3)]:
            as_source(np.zeros(shape, np.uint8))
        as_source(image[None])


def _exif_image(orientation):
    a = np.zeros((4, 6, 3), np.uint8)
    a[0, 0] = (255, 0, 0)  # a red top-left corner
    a[3, 5] = (0, 0, 255)
    img = Image.fromarray(a)
    img.getexif()[0x0112] = orientation
    return img


def test_exif_orientation_is_applied(tmp_path):
    from PIL import ImageOps

    img = _exif_image(6)  # rotated 90 degrees: shown 6 wide, 4 tall -> 4 x 6
    upright = np.asarray(ImageOps.exif_transpose(img))
    assert upright.shape == (6, 4, 3)
    expected = as_source([upright]).load([0], size=8)
    torch.testing.assert_close(as_source([img]).load([0], size=8), expected)
    path = tmp_path / "rotated.png"
    img.save(path, exif=img.getexif())
    assert Image.open(path).getexif()[0x0112] == 6
    torch.testing.assert_close(as_source([str(path)]).load([0], size=8), expected)
    # the orientation is part of a PIL image's content hash
    h = as_source([_exif_image(1), _exif_image(6), _exif_image(3)]).hashes([0, 1, 2])
    assert len(set(h)) == 3


def test_transparency_is_composited_on_white(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)  # opaque: kept
    rgba[0, 1] = (10, 20, 30, 0)  # transparent: white
    rgba[1] = (0, 0, 0, 0)
    img = Image.fromarray(rgba, mode="RGBA")
    path = tmp_path / "rgba.png"
    img.save(path)
    expected = np.full((2, 2, 3), 255, np.uint8)
    expected[0, 0] = (10, 20, 30)
    for item in (img, str(path)):
        out = as_source([item]).load([0], size=2)
        np.testing.assert_array_equal(
            (out[0] * 255).round().byte().permute(1, 2, 0).numpy(), expected
        )
    la = Image.fromarray(np.array([[[50, 0], [50, 255]]], np.uint8), mode="LA")
    out = as_source([la]).load([0], size=2)  # gray stays one channel
    assert out.shape == (1, 1, 2, 2)
    assert (out[0, 0, 0] * 255).round().tolist() == [255.0, 50.0]
    pal = Image.new("P", (2, 1))
    pal.putpalette([0, 0, 0, 200, 100, 0])
    pal.putpixel((1, 0), 1)
    pal.info["transparency"] = 0
    out = as_source([pal]).load([0], size=2)
    assert (out[0, :, 0, 0] * 255).round().tolist() == [255.0, 255.0, 255.0]
    assert (out[0, :, 0, 1] * 255).round().tolist() == [200.0, 100.0, 0.0]


def test_pil_hash_covers_palette_and_transparency():
    def pal(palette, transparency=None):
        img = Image.new("P", (2, 1))
        img.putpalette(palette)
        if transparency is not None:
            img.info["transparency"] = transparency
        return img

    items = [pal([0, 0, 0, 9, 9, 9]), pal([5, 5, 5, 9, 9, 9]), pal([0] * 6, 0)]
    assert len(set(as_source(items).hashes(range(3)))) == 3
    assert as_source([pal([1, 2, 3])]).hashes([0]) == as_source(
        [pal([1, 2, 3])]
    ).hashes([0])
