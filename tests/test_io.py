import os

import pytest

from skhead2toe._io import atomic_write


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".tmp-"))


def test_success_writes_and_replaces(tmp_path):
    path = tmp_path / "out.bin"
    atomic_write(path, lambda f: f.write(b"first"))
    assert path.read_bytes() == b"first"
    atomic_write(path, lambda f: f.write(b"second"), suffix=".bin")
    assert path.read_bytes() == b"second"
    assert _leftovers(tmp_path) == []


def test_failing_write_leaves_no_file_and_no_temp(tmp_path):
    path = tmp_path / "out.bin"

    def failing(f):
        f.write(b"partial")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        atomic_write(path, failing)
    assert not path.exists()
    assert _leftovers(tmp_path) == []


def test_failing_write_keeps_the_old_content(tmp_path, monkeypatch):
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, lambda f: f.write(b"new"))
    assert path.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_old_path_gives_the_same_helper():
    from skhead2toe import _cache

    assert _cache.atomic_write is atomic_write
