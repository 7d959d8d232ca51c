import numpy as np
import pytest

from skhead2toe.transfer import split_classes


@pytest.mark.parametrize("n_classes", [2, 5, 10, 11])
def test_split_classes_disjoint_and_covering(n_classes):
    y = np.repeat(np.arange(n_classes) * 3 + 1, 4)
    a, b = split_classes(y, random_state=0)
    assert set(a).isdisjoint(b)
    assert sorted(np.concatenate([a, b])) == sorted(np.unique(y))
    assert len(a) == n_classes // 2 and len(b) == n_classes - n_classes // 2
    assert list(a) == sorted(a) and list(b) == sorted(b)


def test_split_classes_is_seeded():
    y = np.arange(10)
    first = split_classes(y, random_state=0)
    np.testing.assert_array_equal(first[0], split_classes(y, random_state=0)[0])
    splits = {tuple(split_classes(y, random_state=s)[0]) for s in range(10)}
    assert len(splits) > 1


def test_split_classes_string_labels():
    a, b = split_classes(["cat", "dog", "cat", "bird"], random_state=0)
    assert sorted([*a, *b]) == ["bird", "cat", "dog"]
