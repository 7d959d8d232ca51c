"""skhead2toe._io: atomic writes with the umask's modes, and output checks."""

import os
import stat

import pytest
from helpers import deny_writes_in

from skhead2toe._io import atomic_write, check_writable


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


@pytest.fixture
def umask():
    """Set the process umask for one test, then restore it."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o077, 0o002, 0o027], ids=oct)
def test_new_file_gets_the_mode_a_plain_open_would(tmp_path, umask, mask):
    umask(mask)
    path = tmp_path / "out.bin"
    atomic_write(path, lambda f: f.write(b"data"))
    with open(tmp_path / "plain.bin", "wb"):
        pass
    expected = 0o666 & ~mask
    assert stat.S_IMODE(path.stat().st_mode) == expected
    assert stat.S_IMODE((tmp_path / "plain.bin").stat().st_mode) == expected
    assert _leftovers(tmp_path) == []


def test_replacing_a_file_keeps_its_mode(tmp_path, umask):
    umask(0o022)
    path = tmp_path / "out.bin"
    path.write_bytes(b"old")
    path.chmod(0o640)
    atomic_write(path, lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_interrupted_write_leaves_no_file_and_no_temp(tmp_path):
    path = tmp_path / "out.bin"

    def interrupted(f):
        f.write(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, interrupted)
    assert not path.exists()
    assert _leftovers(tmp_path) == []


def test_check_writable_accepts_a_writable_folder(tmp_path):
    assert check_writable(tmp_path / "out.npz") == tmp_path / "out.npz"
    assert list(tmp_path.iterdir()) == []  # the probe file is gone


def test_check_writable_names_the_output_path(tmp_path, monkeypatch):
    missing = tmp_path / "no" / "out.npz"
    with pytest.raises(FileNotFoundError, match=r"out\.npz.*does not exist"):
        check_writable(missing)
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="not a folder"):
        check_writable(tmp_path / "file" / "out.npz")
    (tmp_path / "dir.npz").mkdir()
    with pytest.raises(IsADirectoryError, match=r"dir\.npz.*is a folder"):
        check_writable(tmp_path / "dir.npz")
    readonly = tmp_path / "ro"
    readonly.mkdir()
    deny_writes_in(readonly, monkeypatch)
    with pytest.raises(PermissionError, match=r"cannot write .*ro/out\.npz") as exc:
        check_writable(readonly / "out.npz")
    assert ".tmp-" not in str(exc.value)
    assert list(readonly.iterdir()) == []


def test_readable_temporary_file_can_be_read_back_while_written(tmp_path):
    # a writable memory map of the temporary file needs it open read-write
    target = tmp_path / "a.bin"

    def write(f):
        f.write(b"abc")
        f.seek(0)
        assert f.read() == b"abc"

    atomic_write(target, write, readable=True)
    assert target.read_bytes() == b"abc"
    assert not list(tmp_path.glob(".tmp-*"))
