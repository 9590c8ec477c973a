"""Finding files of moved projects, and atomic writes."""

from __future__ import annotations

import os
import stat

import pytest

from dlc_lookagain.io.paths import atomic_path, resolve_moved_path


def test_resolve_moved_path_variants(tmp_path):
    proj = tmp_path / "proj"
    (proj / "videos").mkdir(parents=True)
    video = proj / "videos" / "mouse 1.mp4"
    video.write_bytes(b"v")
    anchors = (proj / "videos", proj)
    assert resolve_moved_path(str(video), *anchors) == video  # as stored
    assert resolve_moved_path("/Users/someone/old/proj/videos/mouse 1.mp4", *anchors) == video  # other machine
    assert resolve_moved_path(r"C:\Users\lab\proj\videos\mouse 1.mp4", *anchors) == video  # Windows path
    assert resolve_moved_path("videos/mouse 1.mp4", proj / "videos") == video  # relative to an ancestor
    assert resolve_moved_path("mouse 1.mp4", *anchors) == video  # bare name
    assert resolve_moved_path("/nowhere/other.mp4", *anchors) is None
    assert resolve_moved_path("", *anchors) is None
    # A copy beside the pose file wins over the original that still exists elsewhere.
    original = tmp_path / "original" / "mouse 1.mp4"
    original.parent.mkdir()
    original.write_bytes(b"o")
    assert resolve_moved_path(str(original), *anchors) == video
    assert resolve_moved_path(str(original), tmp_path / "elsewhere") == original


def test_atomic_path_writes_on_success_only(tmp_path):
    out = tmp_path / "sub" / "result.csv"
    with atomic_path(out) as tmp:
        assert tmp.parent == out.parent and tmp.suffix == ".csv"
        tmp.write_text("new")
        assert not out.exists()
    assert out.read_text() == "new"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask  # not mkstemp's owner-only 0600

    with pytest.raises(FileExistsError, match="result.csv"):
        with atomic_path(out) as tmp:
            raise AssertionError("not reached")
    with pytest.raises(RuntimeError):
        with atomic_path(out, overwrite=True) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash while writing")
    assert out.read_text() == "new"  # the old output survives a failed write
    assert sorted(p.name for p in out.parent.iterdir()) == ["result.csv"]  # no temp file left

    with atomic_path(out, overwrite=True) as tmp:
        tmp.write_text("newer")
    assert out.read_text() == "newer"
