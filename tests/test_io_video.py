"""Tests for dlc_lookagain.io.video: probing, sparse sequential reading, attaching videos to poses."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from dlc_lookagain.errors import PoseFormatError, VideoMismatchError
from dlc_lookagain.io.paths import VIDEO_EXTENSIONS
from dlc_lookagain.io.record import PoseRecord
from dlc_lookagain.io.video import (
    VideoInfo,
    VideoReader,
    VideoWarning,
    attach_video,
    find_video_beside,
    probe_video,
)

OPENFIELD = "deeplabcut/examples/openfield-Pranav-2018-10-30/videos/m3v1mp4.mp4"
SHORT = "deeplabcut/examples/multi_mouse-dlc_team-2022-04-12/videos/m3v1mp4short.mp4"
REACHING_VIDEO = "deeplabcut/tests/data/vid.avi"
REACHING_POSE = "dlc-label-editor/SampleData/reachingvideo1DLC_resnet50_ReachingAug30shuffle1_200000.h5"
VAME_VIDEO = "vame/tests/tests_project_sample_data/cropped_video.mp4"
VAME_POSE = "vame/tests/tests_project_sample_data/cropped_video.csv"
OPENFIELD_POSE = "ethome/ethome/data/dlc/openfield/openfield_dlc_inference_example.csv"

# Numbers from the PROVENANCE.md files: frames, fps, width, height.
PROVENANCE_VIDEOS = {
    OPENFIELD: (2330, 30.0003, 640, 480),
    SHORT: (31, 30.0, 640, 480),
    REACHING_VIDEO: (256, 30.0, 416, 374),
    VAME_VIDEO: (749, 25.0, 1064, 1070),
    "sleap/tests/data/json_format_v1/centered_pair_low_quality.mp4": (1100, 15.0, 384, 384),
    "sleap/tests/data/tracks/clip.mp4": (1500, 25.0, 1024, 1024),
    "sleap/docs/notebooks/analysis_example/20190128_113421.120s.mp4": (3000, 25.0, 1024, 1024),
    "sleap/tests/data/videos/small_robot_3_frame.mp4": (3, 10.0, 560, 320),
}


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def naive_frames(path: Path, indices) -> dict[int, np.ndarray]:
    """Reference decoder: plain read() of every frame, keeping the wanted ones (BGR)."""
    wanted = set(int(i) for i in indices)
    out = {}
    cap = cv2.VideoCapture(str(path))
    i = 0
    while wanted - out.keys():
        ok, frame = cap.read()
        if not ok:
            break
        if i in wanted:
            out[i] = frame
        i += 1
    cap.release()
    return out


def record_from_dlc_frame(df: pd.DataFrame, source: Path, fps=None, **kw) -> PoseRecord:
    """Build a single-animal PoseRecord from a DLC table, keyed on bodyparts/coords only."""
    coords = df.columns.get_level_values(-1)
    parts = list(dict.fromkeys(df.columns.get_level_values(-2)))
    # np.array copies: pandas may hand out read-only views (copy-on-write).
    x = np.array(df.loc[:, coords == "x"], dtype=np.float32)
    y = np.array(df.loc[:, coords == "y"], dtype=np.float32)
    lik = np.array(df.loc[:, coords == "likelihood"], dtype=np.float32)
    kp = np.stack([x, y], axis=-1)[:, None]
    return PoseRecord(kp, lik[:, None], ["individual0"], parts, fps, source, source_format="dlc", **kw)


def synthetic_record(
    n_frames: int, source="synthetic.h5", fps=None, xy_max=(100.0, 100.0), **kw
) -> PoseRecord:
    rng = np.random.default_rng(0)
    kp = rng.uniform(0, 1, size=(n_frames, 1, 2, 2)).astype(np.float32) * np.float32(xy_max)
    return PoseRecord(kp, np.ones((n_frames, 1, 2), np.float32), ["m"], ["a", "b"], fps, Path(source), **kw)


def video_warnings(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, VideoWarning)]


@pytest.fixture(scope="module")
def reaching_record(shared) -> PoseRecord:
    path = shared / REACHING_POSE
    return record_from_dlc_frame(pd.read_hdf(path), path)


@pytest.fixture(scope="module")
def vame_record(shared) -> PoseRecord:
    path = shared / VAME_POSE
    return record_from_dlc_frame(pd.read_csv(path, header=[0, 1, 2], index_col=0), path)


CELL = 16  # px; the synthetic frame i has a bright square in grid cell i


def write_index_video(path: Path, n_frames: int, fps: float = 10.0, fourcc: str = "mp4v") -> None:
    """Each frame shows a white CELLxCELL square at grid cell ``i`` (8 columns) on black."""
    cols, rows = 8, (n_frames + 7) // 8
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (cols * CELL, rows * CELL))
    assert writer.isOpened()
    for i in range(n_frames):
        frame = np.zeros((rows * CELL, cols * CELL, 3), np.uint8)
        r, c = divmod(i, cols)
        frame[r * CELL : (r + 1) * CELL, c * CELL : (c + 1) * CELL] = 255
        writer.write(frame)
    writer.release()


def decoded_identity(frame: np.ndarray) -> int:
    """Inverse of write_index_video (any frame size): which of the 8-column grid cells is brightest."""
    g = frame.mean(axis=2)
    cell = g.shape[1] // 8
    rows, cols = g.shape[0] // cell, 8
    cells = g[: rows * cell, : cols * cell].reshape(rows, cell, cols, cell).mean(axis=(1, 3))
    return int(np.argmax(cells))


# ------------------------------------------------------------------------------------------
# probe_video
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("rel", sorted(PROVENANCE_VIDEOS))
def test_probe_matches_provenance(shared, rel):
    n, fps, w, h = PROVENANCE_VIDEOS[rel]
    info = probe_video(shared / rel)
    assert isinstance(info, VideoInfo)
    assert (info.n_frames, info.width, info.height) == (n, w, h)
    assert info.fps == pytest.approx(fps, rel=1e-3)
    assert info.codec in {"h264", "FMP4"}
    assert info.path == shared / rel


def test_every_shared_video_is_probed(shared):
    """A video added to shared/data without provenance numbers here should be noticed."""
    found = {
        p.relative_to(shared).as_posix()
        for p in shared.rglob("*")
        if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file()
    }
    assert found == set(PROVENANCE_VIDEOS)


def test_probe_count_frames_agrees_with_container(shared):
    assert probe_video(shared / SHORT, count_frames=True).n_frames == 31


def test_probe_errors_name_the_file(tmp_path):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    text = tmp_path / "notes.avi"
    text.write_text("not a video\n" * 100)
    for bad in (corrupt, text, tmp_path / "missing.mp4", tmp_path):
        with pytest.raises(PoseFormatError) as exc:
            probe_video(bad)
        assert str(bad) in str(exc.value)
        assert exc.value.path == bad
    with pytest.raises(PoseFormatError, match="does not exist"):
        VideoReader(tmp_path / "missing.mp4")


# ------------------------------------------------------------------------------------------
# VideoReader
# ------------------------------------------------------------------------------------------
def test_sparse_read_is_pixel_identical_to_naive_loop(shared):
    path = shared / OPENFIELD
    rng = np.random.default_rng(42)
    # ~25 % of frames, given unsorted and with duplicates, incl. the first and last frames.
    chosen = np.concatenate([rng.choice(2330, 580, replace=False), [0, 2329, 7, 7]])
    rng.shuffle(chosen)
    expected_order = sorted(set(chosen.tolist()))
    # Compare in lock-step with a plain read() loop so only two frames are held at a time.
    naive = cv2.VideoCapture(str(path))
    naive_pos = 0
    seen, previous = [], None
    with VideoReader(path) as reader:
        for i, frame in reader.read_frames(chosen, color="bgr"):
            while naive_pos <= i:
                ok, ref = naive.read()
                assert ok
                naive_pos += 1
            assert frame.dtype == np.uint8 and frame.shape == (480, 640, 3)
            assert np.array_equal(frame, ref), f"frame {i} differs from a plain read() loop"
            # Frames must be independent buffers, not views of one reused decoder buffer.
            assert previous is None or not np.shares_memory(frame, previous)
            seen.append(i)
            previous = frame
    naive.release()
    assert seen == expected_order


def test_re_requesting_earlier_frames_reopens(shared, caplog):
    path = shared / OPENFIELD
    ref = naive_frames(path, [3, 40, 120])
    with VideoReader(path) as reader:
        first = dict(reader.read_frames([40, 120], color="bgr"))
        assert reader.position == 121
        with caplog.at_level(logging.DEBUG, logger="dlc_lookagain.io.video"):
            again = dict(reader.read_frames([3, 120], color="bgr"))
        assert any("reopening" in r.message for r in caplog.records)
    assert np.array_equal(first[40], ref[40]) and np.array_equal(first[120], ref[120])
    assert np.array_equal(again[3], ref[3]) and np.array_equal(again[120], ref[120])


def test_partial_iteration_then_new_call(shared):
    """Abandoning an iterator midway keeps the reader consistent; stale iterators refuse to run."""
    path = shared / SHORT
    ref = naive_frames(path, [2, 9, 10, 20])
    with VideoReader(path) as reader:
        it = reader.read_frames([2, 9, 20])
        assert next(it)[0] == 2
        stale = reader.read_frames([25])  # newer call invalidates `it`
        with pytest.raises(RuntimeError, match="newer read_frames"):
            next(it)
        first_call = reader.read_frames([1])
        reader.read_frames([9])
        with pytest.raises(RuntimeError):
            next(first_call)  # never started, but superseded: must not reopen or decode
        del stale
        got = dict(reader.read_frames([9, 10, 20], color="bgr"))
    assert all(np.array_equal(got[i], ref[i]) for i in (9, 10, 20))


def test_size_and_color_options(shared):
    path = shared / SHORT
    ref = naive_frames(path, [5])[5]
    with VideoReader(path) as reader:
        (_, rgb), = reader.read_frames([5])
        (_, bgr), = reader.read_frames([5], color="bgr")
        (_, small), = reader.read_frames([5], size=(320, 240))
        (_, odd), = reader.read_frames([5], size=(100, 50), color="bgr")
    assert np.array_equal(bgr, ref)
    assert np.array_equal(rgb, ref[..., ::-1])
    assert small.shape == (240, 320, 3) and small.dtype == np.uint8
    expected_small = cv2.resize(ref, (320, 240), interpolation=cv2.INTER_AREA)[..., ::-1]
    assert np.array_equal(small, expected_small)
    assert odd.shape == (50, 100, 3)


def test_rgb_channel_order_on_synthetic_video(tmp_path):
    path = tmp_path / "red.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, (32, 32))
    for _ in range(3):
        writer.write(np.full((32, 32, 3), (0, 0, 255), np.uint8))  # pure red in BGR
    writer.release()
    with VideoReader(path) as reader:
        (_, frame), = reader.read_frames([1])
    r, g, b = frame.reshape(-1, 3).mean(axis=0)
    assert r > 200 and g < 40 and b < 40


def test_bad_arguments_fail_at_call_time(shared):
    with VideoReader(shared / SHORT) as reader:
        with pytest.raises(ValueError, match=">= 0"):
            reader.read_frames([-1, 3])
        with pytest.raises(ValueError, match="integers"):
            reader.read_frames(np.array([True, False]))
        with pytest.raises(ValueError, match="integers"):
            reader.read_frames([1.5])
        with pytest.raises(ValueError, match="color"):
            reader.read_frames([1], color="hsv")
        with pytest.raises(ValueError, match="size"):
            reader.read_frames([1], size=(0, 10))
        assert list(reader.read_frames([])) == []
    with pytest.raises(ValueError, match="closed"):
        reader.read_frames([1])


def test_read_past_end_raises_or_stops(shared):
    path = shared / SHORT
    with VideoReader(path) as reader:
        with pytest.raises(PoseFormatError) as exc:
            list(reader.read_frames([10, 35]))
        msg = str(exc.value)
        assert str(path) in msg and "frame 35" in msg and "after 31 decoded frames" in msg
        with pytest.warns(VideoWarning, match="after 31 decoded frames"):
            got = [i for i, _ in reader.read_frames([10, 30, 35, 40], allow_short=True)]
        assert got == [10, 30]
        # The reader is usable again afterwards.
        assert [i for i, _ in reader.read_frames([0])] == [0]


def test_container_overstates_frame_count(tmp_path):
    """A truncated MJPG AVI: the header still says 40 frames, only about half decode."""
    full = tmp_path / "full.avi"
    write_index_video(full, 40, fourcc="MJPG")
    data = full.read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(data[: len(data) // 2])
    info = probe_video(cut)
    assert info.n_frames == 40
    with VideoReader(cut) as reader:
        with pytest.raises(PoseFormatError, match=r"before requested frame 39") as exc:
            list(reader.read_frames([0, 39]))
        decoded = int(str(exc.value).split("after ")[1].split(" decoded")[0])
        assert 0 < decoded < 40
        with pytest.warns(VideoWarning):
            got = [i for i, _ in reader.read_frames(range(40), allow_short=True)]
    assert got == list(range(decoded))
    assert probe_video(cut, count_frames=True).n_frames == decoded


def test_frame_identity_on_synthetic_mp4v(tmp_path):
    path = tmp_path / "index.mp4"
    write_index_video(path, 60)
    info = probe_video(path)
    assert (info.n_frames, info.width, info.height, info.fps) == (60, 128, 128, 10.0)
    wanted = [0, 1, 2, 9, 17, 33, 34, 58, 59]
    with VideoReader(path) as reader:
        got = [(i, decoded_identity(f)) for i, f in reader.read_frames(wanted)]
        assert got == [(i, i) for i in wanted]
        back = [(i, decoded_identity(f)) for i, f in reader.read_frames([4, 5, 59])]
        assert back == [(4, 4), (5, 5), (59, 59)]
        every = [decoded_identity(f) for _, f in reader.read_frames(range(60), size=(64, 64))]
    assert every == list(range(60))


# ------------------------------------------------------------------------------------------
# attach_video
# ------------------------------------------------------------------------------------------
def test_attach_vame_off_by_one_warns_and_attaches(shared, vame_record):
    video = shared / VAME_VIDEO
    with pytest.warns(VideoWarning) as rec:
        out = attach_video(vame_record, video)
    msgs = video_warnings(rec)
    assert len(msgs) == 1 and "750" in msgs[0] and "749" in msgs[0]
    assert out.video_path == video and out.n_video_frames == 749
    assert out.fps == pytest.approx(25.0)
    assert out.video_scale == 1.0
    assert vame_record.video_path is None and vame_record.fps is None  # original untouched
    with pytest.raises(VideoMismatchError):
        attach_video(vame_record, video, tolerance=0)


def test_attach_frame_count_mismatch_raises(shared):
    video = shared / OPENFIELD
    rec = synthetic_record(2335, source="/data/session1DLC_resnet50.h5")
    with pytest.raises(VideoMismatchError) as exc:
        attach_video(rec, video)
    msg = str(exc.value)
    for part in ("2335", "2330", "session1DLC_resnet50.h5", str(video)):
        assert part in msg


def test_attach_real_openfield_pose_is_silent(shared):
    path = shared / OPENFIELD_POSE
    rec = record_from_dlc_frame(pd.read_csv(path, header=[0, 1, 2], index_col=0), path, fps=30.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", VideoWarning)
        out = attach_video(rec, shared / OPENFIELD)
    assert out.video_scale == 1.0 and out.n_video_frames == 2330 and out.fps == 30.0


def test_attach_reaching_detects_half_scale(shared, reaching_record):
    with pytest.warns(VideoWarning) as rec:
        out = attach_video(reaching_record, shared / REACHING_VIDEO)
    msgs = video_warnings(rec)
    assert len(msgs) == 1 and "1/2" in msgs[0] and "pose_frame_size" in msgs[0]
    assert rec[0].filename == __file__  # attributed to the caller, not to video.py
    assert out.video_scale == 0.5
    assert reaching_record.video_scale == 1.0
    px = out.keypoints_in_video_pixels()
    assert np.nanmin(px) >= 0
    assert np.nanmax(px[..., 0]) < 416 and np.nanmax(px[..., 1]) < 374
    # Unscaled the keypoints do not fit the half-resolution video.
    assert np.nanmax(reaching_record.keypoints[..., 1]) > 374


def test_attach_reaching_with_pose_frame_size(shared, reaching_record):
    with warnings.catch_warnings():
        warnings.simplefilter("error", VideoWarning)
        out = attach_video(reaching_record, shared / REACHING_VIDEO, pose_frame_size=(832, 747))
    assert out.video_scale == 0.5
    # DLC's frame_dimensions is (height, width); passed unswapped it must not scale silently:
    # it is ignored with a warning and the scale is judged from the keypoints.
    with pytest.warns(VideoWarning) as rec:
        swapped = attach_video(reaching_record, shared / REACHING_VIDEO, pose_frame_size=(747, 832))
    msgs = video_warnings(rec)
    assert len(msgs) == 2 and "aspect ratio" in msgs[0] and "1/2" in msgs[1]
    assert swapped.video_scale == 0.5
    # A consistent size is trusted even when the keypoints alone would suggest nothing.
    with warnings.catch_warnings():
        warnings.simplefilter("error", VideoWarning)
        doubled = attach_video(reaching_record, shared / REACHING_VIDEO, pose_frame_size=(208, 187))
    assert doubled.video_scale == 2.0


def test_attach_pose_far_outside_video_raises(shared):
    rec = synthetic_record(256, xy_max=(5000.0, 5000.0))
    with pytest.raises(VideoMismatchError, match="1/4"):
        attach_video(rec, shared / REACHING_VIDEO)


def test_attach_fps(shared):
    video = shared / SHORT
    with warnings.catch_warnings():
        warnings.simplefilter("error", VideoWarning)
        taken = attach_video(synthetic_record(31), video)
        close = attach_video(synthetic_record(31, fps=29.98), video)  # DLC meta pickle value, <1% off
    assert taken.fps == pytest.approx(30.0003, rel=1e-4)
    assert close.fps == 29.98
    with pytest.warns(VideoWarning, match=r"25 fps.*30\.0003 fps") as rec:
        differs = attach_video(synthetic_record(31, fps=25.0), video)
    assert differs.fps == 25.0 and len(video_warnings(rec)) == 1


def test_attach_missing_video_is_keypoints_only(shared, tmp_path, caplog):
    rec = synthetic_record(10, source=tmp_path / "pose.h5")
    for video in (None, tmp_path / "gone.mp4"):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="dlc_lookagain.io.video"):
            with pytest.warns(VideoWarning, match="keypoints-only mode") as w:
                out = attach_video(rec, video)
        assert f"no video for {tmp_path / 'pose.h5'}" in str(w[0].message)
        assert out.video_path is None and out.n_video_frames is None
        assert any("keypoints-only" in r.message for r in caplog.records)
    attached = attach_video(synthetic_record(31), shared / SHORT)
    with pytest.warns(VideoWarning):
        assert attach_video(attached, None).video_path is None


def test_attach_corrupt_video_raises(tmp_path):
    corrupt = tmp_path / "session.mp4"
    corrupt.write_bytes(np.random.default_rng(2).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    with pytest.raises(PoseFormatError) as exc:
        attach_video(synthetic_record(10), corrupt)
    assert "session.mp4" in str(exc.value)
    assert not isinstance(exc.value, VideoMismatchError)


def test_attach_skips_frame_count_for_label_tables(shared):
    rec = synthetic_record(3, frame_names=["img0.png", "img1.png", "img2.png"])
    out = attach_video(rec, shared / OPENFIELD)
    assert out.video_path == shared / OPENFIELD and out.n_video_frames == 2330


# ------------------------------------------------------------------------------------------
# find_video_beside
# ------------------------------------------------------------------------------------------
def test_find_video_beside_shared_layouts(shared):
    vame = shared / VAME_POSE
    assert find_video_beside(vame) == shared / VAME_VIDEO
    clip = shared / "sleap/tests/data/tracks"
    assert find_video_beside(clip / "clip.predictions.slp") == clip / "clip.mp4"
    assert find_video_beside(clip / "clip.slp") == clip / "clip.mp4"
    ma = shared / SHORT
    el = ma.parent / "m3v1mp4shortDLC_effnet_b0_multi_mouseApr12shuffle1_5_el.h5"
    assert find_video_beside(el, video_stem="m3v1mp4short") == ma
    assert find_video_beside(el) == ma  # DLC naming rule
    # SLEAP docs example: the analysis file is not named after its video.
    assert find_video_beside(shared / "sleap/docs/notebooks/analysis_example/predictions.analysis.h5") is None


def test_find_video_beside_rules(tmp_path):
    for name in ("a.predictions.analysis.h5", "a.MP4", "b.h5", "labels.000_c.analysis.h5", "c.mov",
                 "x.h5", "x.mp4", "x.avi", "dDLC_resnet50_T.csv", "d_labeled.mp4", "e.txt"):
        (tmp_path / name).touch()
    assert find_video_beside(tmp_path / "a.predictions.analysis.h5") == tmp_path / "a.MP4"
    assert find_video_beside(tmp_path / "b.h5") is None
    assert find_video_beside(tmp_path / "labels.000_c.analysis.h5") == tmp_path / "c.mov"
    assert find_video_beside(tmp_path / "dDLC_resnet50_T.csv") is None  # only d_labeled.mp4 there
    assert find_video_beside(tmp_path / "b.h5", video_stem="e") is None  # .txt is not a video
    assert find_video_beside(tmp_path / "b.h5", video_stem="c") == tmp_path / "c.mov"
    with pytest.warns(VideoWarning, match="several videos"):
        assert find_video_beside(tmp_path / "x.h5") is None
    assert find_video_beside(tmp_path / "nowhere" / "p.h5") is None
