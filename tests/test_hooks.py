import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from skhead2toe.feature_extraction._hooks import (
    ShapeProbe,
    Tap,
    TapSet,
    block_layout,
    pool_output,
    pooled_dim,
    pooling_window,
    target_sizes,
    unit_normalize,
)


@pytest.mark.parametrize(
    "shape, target, expected",
    [
        ((64, 7, 7), 64, 64),  # C >= target: global average
        ((2048, 7, 7), 1024, 2048),  # C > target: still global, exceeds
        ((16, 8, 8), 1024, 1024),  # C*H*W fits exactly: no pooling
        ((16, 8, 8), 2000, 1024),
        ((16, 8, 8), 1023, 256),  # k=2 -> 16*4*4
        ((32, 112, 112), 1024, 32 * 5 * 5),  # k=23: 5x5; k=22 gives 6x6 > 1024
        ((3, 5, 5), 12, 12),  # k=3 -> 2x2 with partial windows
    ],
)
def test_pooled_dim_examples(shape, target, expected):
    assert pooled_dim(shape, target) == expected


@settings(max_examples=200, deadline=None)
@given(
    c=st.integers(1, 300),
    h=st.integers(1, 40),
    w=st.integers(1, 40),
    target=st.integers(1, 5000),
)
def test_pooling_rule_closest_without_exceeding(c, h, w, target):
    k = pooling_window((h, w), c, target)
    dim = pooled_dim((c, h, w), target)
    assert dim == c * math.ceil(h / k) * math.ceil(w / k)
    if c >= target:
        assert dim == c  # global average
        return
    assert dim <= target
    # any smaller window (more features) would exceed the target
    for smaller in range(1, k):
        assert c * math.ceil(h / smaller) * math.ceil(w / smaller) > target


@settings(max_examples=40, deadline=None)
@given(
    c=st.integers(1, 12),
    h=st.integers(1, 12),
    w=st.integers(1, 12),
    target=st.integers(1, 400),
)
def test_pool_output_shape_and_values(c, h, w, target):
    x = torch.randn(2, c, h, w, generator=torch.Generator().manual_seed(c * h + w))
    out = pool_output(x, target)
    assert out.shape == (2, pooled_dim((c, h, w), target))
    # reference: plain numpy mean over each k x k window (partial at the border)
    k = pooling_window((h, w), c, target)
    xn = x.numpy()
    ref = np.stack(
        [
            xn[:, :, i : i + k, j : j + k].mean(axis=(2, 3))
            for i in range(0, h, k)
            for j in range(0, w, k)
        ],
        axis=2,
    ).reshape(2, -1)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-5, atol=1e-6)


def test_token_pooling_follows_the_same_rule():
    x = torch.randn(3, 50, 16)
    assert pool_output(x, 16).shape == (3, 16)  # C >= target: mean over tokens
    torch.testing.assert_close(pool_output(x, 16), x.mean(dim=1))
    assert pool_output(x, 800).shape == (3, 800)  # fits: no pooling
    out = pool_output(x, 300)  # k=3 -> ceil(50/3)=17 tokens, 16*17=272 <= 300
    assert out.shape == (3, 16 * 17) == (3, pooled_dim((50, 16), 300))
    torch.testing.assert_close(out[:, 0], x[:, 0:3, 0].mean(dim=1))
    torch.testing.assert_close(out[:, 16], x[:, 48:50, 0].mean(dim=1))  # partial


def test_cls_token_modes():
    x = torch.randn(2, 17, 8)  # 1 class token + 16 patches
    only = pool_output(x, 64, n_prefix=1, cls_token="only")
    torch.testing.assert_close(only, x[:, 0])
    sep = pool_output(x, 72, n_prefix=1, cls_token="separate")
    assert sep.shape[1] == pooled_dim((17, 8), 72, n_prefix=1, cls_token="separate")
    torch.testing.assert_close(sep[:, :8], x[:, 0])
    torch.testing.assert_close(sep[:, 8:], pool_output(x[:, 1:], 64))
    tiny = pool_output(x, 10, n_prefix=1, cls_token="separate")
    torch.testing.assert_close(tiny, torch.cat([x[:, 0], x[:, 1:].mean(1)], dim=1))
    pooled = pool_output(x, 64, n_prefix=1, cls_token="pool")
    torch.testing.assert_close(pooled, pool_output(x, 64))
    # without prefix tokens every mode pools all tokens
    torch.testing.assert_close(pool_output(x, 64, cls_token="only"), pooled)


def test_vector_outputs_are_kept_and_bad_ndim_rejected():
    x = torch.randn(4, 10)
    assert pool_output(x, 3) is x
    with pytest.raises(ValueError, match="shape"):
        pool_output(torch.randn(1, 2, 3, 4, 5), 10)


def test_unit_normalize_is_zero_safe():
    x = torch.tensor([[3.0, 4.0], [0.0, 0.0]])
    out = unit_normalize(x)
    torch.testing.assert_close(out, torch.tensor([[0.6, 0.8], [0.0, 0.0]]))
    assert torch.isfinite(out).all()


class _InplaceNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.act(self.conv(x))


def test_hook_pools_before_inplace_relu_overwrites(seed):
    net = _InplaceNet().eval()
    x = torch.randn(2, 3, 6, 6)
    tap = Tap("conv", target_size=10_000, unit=False, start=0, stop=4 * 36)
    with torch.inference_mode(), TapSet(net, [tap]) as taps:
        feats = taps.run(x, n_features=tap.stop)
    expected = net.conv(x).flatten(1)
    assert (expected < 0).any()  # ReLU would have changed these values
    torch.testing.assert_close(feats, expected)
    assert not net.conv._forward_hooks  # hooks removed on exit


def test_stop_after_skips_the_rest(seed):
    calls = []
    net = _InplaceNet().eval()
    net.act.register_forward_hook(lambda *a: calls.append(1))
    tap = Tap("conv", target_size=8, unit=True, start=0, stop=4)
    with torch.inference_mode(), TapSet(net, [tap], stop_after="conv") as taps:
        feats = taps.run(torch.randn(2, 3, 6, 6), n_features=4)
    assert not calls
    torch.testing.assert_close(feats.norm(dim=1), torch.ones(2))


class _TupleNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(4, 4, batch_first=True)
        self.unused = nn.Linear(4, 4)

    def forward(self, x):
        return self.lstm(x)[0]


def test_probe_errors_name_the_layer():
    net = _TupleNet()
    with pytest.raises(TypeError, match="'lstm' returned tuple"):
        ShapeProbe(net, ["lstm"]).run(torch.randn(1, 3, 4))
    with pytest.raises(ValueError, match="unused"):
        ShapeProbe(net, ["unused"]).run(torch.randn(1, 3, 4))


# ------------------------------------------------------------ several sizes


def test_one_module_tapped_at_several_sizes(seed):
    net = _InplaceNet().eval()
    x = torch.randn(2, 3, 6, 6)
    small = Tap("conv", target_size=4, unit=True, start=0, stop=4)  # global
    large = Tap("conv", target_size=10_000, unit=False, start=4, stop=4 + 4 * 36)
    with (
        torch.inference_mode(),
        TapSet(net, [small, large], stop_after="conv") as taps,
    ):
        feats = taps.run(x, n_features=large.stop)
    out = net.conv(x)
    # both slices written before the pass stops, each pooled and scaled on its own
    torch.testing.assert_close(feats[:, :4], unit_normalize(out.mean(dim=(2, 3))))
    torch.testing.assert_close(feats[:, 4:], out.flatten(1))
    assert not net.conv._forward_hooks


class _HeadNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward_features(self, x):
        return self.conv(x)

    def forward_head(self, x, pre_logits=False):
        return x.mean(dim=(2, 3))


def test_pre_logits_tapped_at_several_sizes(seed):
    net = _HeadNet().eval()
    x = torch.randn(3, 3, 8, 8)
    taps = [
        Tap("pre_logits", target_size=2, unit=False, start=0, stop=4),
        Tap("pre_logits", target_size=8, unit=True, start=4, stop=8),
    ]
    with torch.inference_mode(), TapSet(net, taps) as tapset:
        feats = tapset.run(x, n_features=8)
    head = net.conv(x).mean(dim=(2, 3))
    torch.testing.assert_close(feats[:, :4], head)
    torch.testing.assert_close(feats[:, 4:], unit_normalize(head))


def test_target_sizes_keep_the_order_and_refuse_bad_values():
    assert target_sizes(7) == (7,)
    assert target_sizes([9, 3]) == (9, 3)
    (size,) = target_sizes((np.int64(5),))
    assert type(size) is int and size == 5
    for bad in [(), (3, 3), (0,), (2, True), (1.5,), ("4",)]:
        with pytest.raises(ValueError, match="'target_size' parameter"):
            target_sizes(bad)


def test_block_layout_is_size_major():
    groups, sizes = block_layout((8, 2), [[2, 0, 1], [1, 3, 0]])
    assert groups.tolist() == [0, 0, 2, 0, 1, 1, 1]
    assert sizes.tolist() == [8, 8, 8, 2, 2, 2, 2]
    groups, sizes = block_layout((5,), [4, 1])  # one size: a flat row will do
    assert groups.tolist() == [0, 0, 0, 0, 1] and set(sizes.tolist()) == {5}
