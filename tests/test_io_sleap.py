"""Tests for dlc_lookagain.io.sleap on SLEAP's and DeepOF's public files.

Values are checked against independent reads: raw HDF5 tables through h5py, and
sleap-io's own (eager, per-instance) numpy export. Cases the public files lack
(user + predicted on one frame, untracked instances, several videos) use small
.slp files written by sleap-io into tmp_path.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import sleap_io as sio

from dlc_lookagain.errors import PoseFormatError
from dlc_lookagain.io.record import PoseRecord
from dlc_lookagain.io.sleap import consolidate_tracks, read_analysis_h5, read_slp

needs_data = pytest.mark.shared  # uses ../shared/data (skipped when absent)

CENTERED_PAIR = "sleap/tests/data/hdf5_format_v1/centered_pair_predictions.slp"
CLIP_GT = "sleap/tests/data/tracks/clip.slp"
CLIP_PRED = "sleap/tests/data/tracks/clip.predictions.slp"
COURTSHIP_SLP = "sleap/docs/notebooks/analysis_example/predictions.slp"
COURTSHIP_H5 = "sleap/docs/notebooks/analysis_example/predictions.analysis.h5"
ROBOT_H5 = "sleap/tests/data/hdf5_format_v1/small_robot.000_small_robot_3_frame.analysis.h5"
DEEPOF_SLP = "deepof/tests/test_examples/test_single_topview/Tables/SLEAP/testDLC_sleap.slp"
DEEPOF_H5 = "deepof/tests/test_examples/test_single_topview/Tables/SLEAP/testDLC_sleap.analysis.h5"
ALL_SLP = [CENTERED_PAIR, CLIP_GT, CLIP_PRED, COURTSHIP_SLP, DEEPOF_SLP]


# --------------------------------------------------------------------------- raw readers


def raw_instance(slp: Path, row: int) -> tuple[int, str, np.ndarray, np.ndarray]:
    """(frame index, track name, xy with NaN where missing, point scores) of one
    instance row, read from the .slp tables with h5py only."""
    with h5py.File(slp, "r") as h5:
        inst = h5["instances"][row]
        frames = h5["frames"][:]
        track_names = [json.loads(t)[1] for t in h5["tracks_json"][:]]
        predicted = int(inst["instance_type"]) == 1
        table = h5["pred_points" if predicted else "points"]
        pts = table[int(inst["point_id_start"]) : int(inst["point_id_end"])]
    owner = frames[(frames["instance_id_start"] <= row) & (frames["instance_id_end"] > row)]
    assert len(owner) == 1
    xy = np.stack([pts["x"], pts["y"]], axis=-1)
    xy[~pts["visible"]] = np.nan
    scores = pts["score"] if predicted else np.ones(len(pts))
    scores = np.where(np.isnan(xy[:, 0]), np.nan, scores)
    return int(owner["frame_idx"][0]), track_names[int(inst["track"])], xy, scores


def assert_instance_matches(record: PoseRecord, slp: Path, row: int) -> None:
    frame, track, xy, scores = raw_instance(slp, row)
    slot = record.individuals.index(track)
    np.testing.assert_array_equal(record.keypoints[frame, slot], xy.astype(np.float32))
    np.testing.assert_array_equal(record.confidence[frame, slot], scores.astype(np.float32))


def n_instances(slp: Path) -> int:
    with h5py.File(slp, "r") as h5:
        return len(h5["instances"])


# --------------------------------------------------------------------------- .slp on public data


@needs_data
@pytest.mark.parametrize("name", ALL_SLP)
def test_read_slp_equals_sleap_io_eager_export(shared, name):
    # sleap-io's eager path builds one object per instance: an independent implementation.
    path = shared / name
    record = read_slp(path)
    labels = sio.load_slp(str(path), open_videos=False)
    expected = labels.numpy(return_confidence=True)
    track_names = [t.name for t in labels.tracks]
    expected = expected[:, [track_names.index(n) for n in record.individuals]]
    np.testing.assert_array_equal(record.keypoints, expected[..., :2])
    # sleap-io keeps the stored score (0) of a missing point; a PoseRecord has NaN there.
    present = ~np.isnan(record.keypoints[..., 0])
    np.testing.assert_array_equal(record.confidence[present], expected[..., 2][present])
    assert np.isnan(record.confidence[~present]).all()
    assert record.source_format == "sleap-slp"
    assert record.bodyparts == list(labels.skeletons[0].node_names)
    assert record.skeleton == [tuple(e) for e in labels.skeletons[0].edge_names]
    for row in (0, n_instances(path) // 2, n_instances(path) - 1):
        assert_instance_matches(record, path, row)


@needs_data
def test_centered_pair_fragmented_tracks_and_relative_video(shared):
    path = shared / CENTERED_PAIR
    record = read_slp(path)
    with h5py.File(path, "r") as h5:
        stored_tracks = [json.loads(t)[1] for t in h5["tracks_json"][:]]
        frames = h5["frames"][:]
    assert record.keypoints.shape == (1100, 27, 24, 2)
    assert record.individuals == stored_tracks
    assert record.metadata["labeled_frames"] == len(frames) == 1100
    video = shared / "sleap/tests/data/json_format_v1/centered_pair_low_quality.mp4"
    assert record.video_path.resolve() == video.resolve()  # stored relative to SLEAP's repository root
    assert record.fps is None  # the .slp stores no fps
    # The most crowded frame: every one of its instances lands in its own track.
    per_frame = frames["instance_id_end"].astype(int) - frames["instance_id_start"].astype(int)
    crowded = int(np.argmax(per_frame))
    assert per_frame[crowded] == 5
    occupied = ~np.isnan(record.keypoints[frames["frame_idx"][crowded]]).all(axis=(1, 2))
    assert occupied.sum() == 5
    for row in range(int(frames["instance_id_start"][crowded]), int(frames["instance_id_end"][crowded])):
        assert_instance_matches(record, path, row)


@needs_data
def test_clip_ground_truth_user_labels(shared):
    path = shared / CLIP_GT
    record = read_slp(path)
    assert record.individuals == ["female", "male"]
    assert record.keypoints.shape == (1500, 2, 13, 2)
    present = ~np.isnan(record.keypoints[..., 0])
    assert np.all(record.confidence[present] == 1.0)
    assert np.isnan(record.confidence[~present]).all()
    with h5py.File(path, "r") as h5:
        points = h5["points"][:]
    # Present points are exactly the visible, non-NaN rows of the user `points` table.
    assert present.sum() == np.sum(~np.isnan(points["x"]) & points["visible"])
    assert record.metadata["n_user_instances"] == 3000
    assert record.scorer == "SLEAP"  # manual labels: no model provenance
    assert record.video_path.resolve() == (shared / "sleap/tests/data/tracks/clip.mp4").resolve()  # bare file name


@needs_data
def test_clip_predictions_keep_scores_above_one(shared):
    path = shared / CLIP_PRED
    record = read_slp(path)
    assert sorted(record.bodyparts) == ["head", "thorax"]
    assert record.skeleton == [("thorax", "head")]
    assert record.individuals == ["female", "male"]
    with h5py.File(path, "r") as h5:
        pred = h5["pred_points"][:]
    # SLEAP peak scores are not probabilities; they are kept as stored.
    assert np.nanmax(record.confidence) == np.float32(pred["score"][~np.isnan(pred["x"])].max()) > 1.0
    assert "min_tracks_2node.UNet.bottomup_multiclass" in record.scorer
    assert record.scorer.startswith("SLEAP 1.4.1a2")
    # Stored relative to SLEAP's repository root: tests/data/tracks/clip.mp4.
    assert record.video_path.resolve() == (shared / "sleap/tests/data/tracks/clip.mp4").resolve()


@needs_data
def test_courtship_slp_reads_every_frame(shared):
    record = read_slp(shared / COURTSHIP_SLP)
    assert record.keypoints.shape == (3000, 2, 13, 2)


# --------------------------------------------------------------------------- analysis h5 on public data


@needs_data
def test_courtship_analysis_h5_matches_slp(shared, caplog):
    h5_path = shared / COURTSHIP_H5
    with caplog.at_level(logging.INFO, logger="dlc_lookagain.io.sleap"):
        from_h5 = read_analysis_h5(h5_path)
    from_slp = read_slp(shared / COURTSHIP_SLP)
    assert from_h5.metadata["layout"] == "old"
    assert from_h5.individuals == ["track_0", "track_1"] == from_slp.individuals
    assert from_h5.bodyparts == from_slp.bodyparts
    assert from_h5.keypoints.shape == (3000, 2, 13, 2)
    np.testing.assert_array_equal(from_h5.keypoints, from_slp.keypoints)  # NaN where either is
    present = ~np.isnan(from_h5.keypoints[..., 0])
    assert np.all(from_h5.confidence[present] == 1.0)  # the old layout has no scores

    with h5py.File(h5_path, "r") as h5:
        raw = h5["tracks"][:]  # (track, xy, node, frame)
    at_1234 = raw[..., 1234].transpose(0, 2, 1)  # (track, node, xy)
    np.testing.assert_array_equal(from_h5.keypoints[1234], at_1234.astype(np.float32))
    with h5py.File(shared / COURTSHIP_SLP, "r") as h5:
        frame = h5["frames"][np.flatnonzero(h5["frames"]["frame_idx"] == 1234)[0]]
        rows = range(int(frame["instance_id_start"]), int(frame["instance_id_end"]))
    for row in rows:
        frame, track, xy, _ = raw_instance(shared / COURTSHIP_SLP, row)
        np.testing.assert_array_equal(raw[from_h5.individuals.index(track), :, :, frame].T, xy)

    nan_fraction = np.isnan(from_h5.keypoints[..., 0]).mean(axis=(0, 2))
    np.testing.assert_array_equal(nan_fraction, np.isnan(raw[:, 0]).mean(axis=(1, 2)))
    np.testing.assert_allclose(nan_fraction, [0.017, 0.022], atol=0.001)  # PROVENANCE: 1.7% / 2.2%

    # No stored video path: the only video in the folder is taken, and said so.
    video = shared / "sleap/docs/notebooks/analysis_example/20190128_113421.120s.mp4"
    assert from_h5.video_path.resolve() == video.resolve()
    assert "only video" in caplog.text


@needs_data
def test_small_robot_new_layout_without_track_names(shared):
    path = shared / ROBOT_H5
    record = read_analysis_h5(path)
    with h5py.File(path, "r") as h5:
        raw = h5["tracks"][:]
        point_scores = h5["point_scores"][:]  # (track, node, frame)
        occupancy = h5["track_occupancy"][:]
        assert len(h5["track_names"]) == 0
    assert record.metadata["layout"] == "new"
    assert record.individuals == ["track0"]
    assert record.bodyparts == ["top", "front", "rear"]
    assert record.skeleton == [("top", "front"), ("top", "rear"), ("front", "rear")]
    assert record.n_frames == 3
    np.testing.assert_array_equal(record.keypoints, raw.transpose(3, 0, 2, 1).astype(np.float32))
    assert record.metadata["labeled_frames"] == int(occupancy.any(axis=1).sum())
    # Only frame 1 holds a predicted (scored) instance; SLEAP exports the other
    # occupied frames' user-labelled instances without scores, so they get 1.0.
    scored = ~np.isnan(point_scores[0])
    assert scored.any(axis=0).tolist() == [False, True, False]
    np.testing.assert_array_equal(record.confidence[1, 0], point_scores[0, :, 1].astype(np.float32))
    assert np.all(record.confidence[[0, 2]] == 1.0)
    assert record.metadata["unscored_points"] == 6
    # Stored as D:/TalmoLab/sleap/tests/data/videos/...: found in the sibling videos/ folder.
    assert record.video_path.resolve() == (shared / "sleap/tests/data/videos/small_robot_3_frame.mp4").resolve()


@needs_data
def test_deepof_slp_and_analysis_h5_agree_and_have_no_video(shared, caplog):
    with caplog.at_level(logging.INFO, logger="dlc_lookagain.io.sleap"):
        from_slp = read_slp(shared / DEEPOF_SLP)
        from_h5 = read_analysis_h5(shared / DEEPOF_H5)
    for record in (from_slp, from_h5):
        assert record.keypoints.shape == (101, 1, 14, 2)
        assert record.video_path is None
        assert record.individuals == ["track_0"]
        assert "deepof.topdown" in record.scorer
    assert "test2DLC_video_circular_arena.mp4" in caplog.text and "not found" in caplog.text
    assert from_slp.bodyparts == from_h5.bodyparts
    np.testing.assert_array_equal(from_slp.keypoints, from_h5.keypoints)
    np.testing.assert_array_equal(from_slp.confidence, from_h5.confidence)
    with h5py.File(shared / DEEPOF_H5, "r") as h5:
        scores = h5["point_scores"][:]  # (track, node, frame)
    np.testing.assert_array_equal(from_h5.confidence[:, 0], scores[0].T.astype(np.float32))


@needs_data
def test_analysis_h5_with_sleap_io_dims_attribute(shared, tmp_path):
    # sleap-io's "standard" preset stores (frame, track, node, xy) and names the axes.
    labels = sio.load_slp(str(shared / CLIP_PRED), open_videos=False)
    out = tmp_path / "clip.standard.analysis.h5"
    sio.save_analysis_h5(labels, str(out), preset="standard")
    record = read_analysis_h5(out)
    expected = read_slp(shared / CLIP_PRED)
    assert record.metadata["tracks_dims"] == ["frame", "track", "node", "xy"]
    assert record.individuals == expected.individuals
    np.testing.assert_array_equal(record.keypoints, expected.keypoints)
    np.testing.assert_array_equal(record.confidence, expected.confidence)


# --------------------------------------------------------------------------- track consolidation


@needs_data
def test_consolidate_centered_pair_into_two_flies(shared):
    record = read_slp(shared / CENTERED_PAIR)
    merged = consolidate_tracks(record, 2)
    assert merged.individuals == ["animal0", "animal1"]
    occupied = ~np.isnan(merged.keypoints[..., 0]).all(axis=2)
    assert occupied.all(axis=1).mean() > 0.95
    source_occupied = ~np.isnan(record.keypoints[..., 0]).all(axis=2)
    kept = [name for names in merged.metadata["slot_tracks"].values() for name in names]
    assert merged.metadata["dropped_fragments"] + len(kept) == int(source_occupied.any(axis=0).sum())
    for slot, names in enumerate(merged.metadata["slot_tracks"].values()):
        columns = [record.individuals.index(n) for n in names]
        # No two source tracks of one slot share a frame ...
        assert source_occupied[:, columns].sum(axis=1).max() == 1
        # ... and the slot holds exactly their points.
        rebuilt = np.full_like(merged.keypoints[:, slot], np.nan)
        for c in columns:
            rebuilt[source_occupied[:, c]] = record.keypoints[source_occupied[:, c], c]
        np.testing.assert_array_equal(merged.keypoints[:, slot], rebuilt)


@needs_data
def test_consolidate_relinks_cut_tracks(shared):
    # Cut both continuous courtship tracks at random frames and blank a few frames
    # after each cut, as a tracker that lost both flies would: at every restart both
    # slots are free, so only the nearest-centroid rule can give back the two tracks.
    record = read_slp(shared / COURTSHIP_SLP)
    rng = np.random.default_rng(7)
    cuts = np.sort(rng.choice(np.arange(50, record.n_frames - 50, 50), size=6, replace=False))
    gap = 5
    expected = record.keypoints.copy()
    for cut in cuts:
        expected[cut : cut + gap] = np.nan
    pieces, names = [], []
    edges = [0, *cuts.tolist(), record.n_frames]
    for track in range(2):
        for start, stop in zip(edges[:-1], edges[1:]):
            piece = np.full_like(expected[:, track], np.nan)
            piece[start:stop] = expected[start:stop, track]
            pieces.append(piece)
            names.append(f"{record.individuals[track]}@{start}")
    order = rng.permutation(len(names))  # the tracks' order must not matter
    keypoints = np.stack(pieces, axis=1)[:, order]
    fragmented = PoseRecord(
        keypoints=keypoints,
        confidence=np.where(np.isnan(keypoints[..., 0]), np.nan, 1.0),
        individuals=[names[i] for i in order],
        bodyparts=record.bodyparts,
        fps=None,
        source=record.source,
    )
    merged = consolidate_tracks(fragmented, 2)
    assert merged.metadata["dropped_fragments"] == 0
    slot_origin = [merged.metadata["slot_tracks"][f"animal{i}"] for i in range(2)]
    assert all(len({name.split("@")[0] for name in names}) == 1 for names in slot_origin)
    first = record.individuals.index(slot_origin[0][0].split("@")[0])
    np.testing.assert_array_equal(merged.keypoints, expected[:, [first, 1 - first]])


@needs_data
def test_consolidate_rejects_zero_slots(shared):
    with pytest.raises(ValueError, match="at least 1"):
        consolidate_tracks(read_slp(shared / DEEPOF_SLP), 0)


# --------------------------------------------------------------------------- sleap-io-written cases


@pytest.fixture()
def skeleton():
    return sio.Skeleton(["head", "tail"], edges=[("head", "tail")])


def save(tmp_path, name, frames, videos, skeleton, tracks=()):
    path = tmp_path / name
    labels = sio.Labels(labeled_frames=frames, videos=videos, skeletons=[skeleton], tracks=list(tracks))
    sio.save_slp(labels, str(path))
    return path


def test_prefer_user_or_predicted(tmp_path, skeleton):
    video = sio.Video(filename="cam.mp4", open_backend=False)
    left, right = sio.Track("left"), sio.Track("right")
    pred_left = sio.PredictedInstance.from_numpy(np.array([[1.0, 2.0], [3.0, 4.0]]), skeleton=skeleton,
                                                 point_scores=np.array([0.5, 0.25]), score=0.9, track=left)
    user_left = sio.Instance.from_numpy(np.array([[10.0, 20.0], [11.0, 21.0]]), skeleton=skeleton, track=left)
    user_left.points["visible"][1] = False  # SLEAP keeps the position of a point marked not visible
    # A user instance made from an untracked prediction, then given a track.
    pred_free = sio.PredictedInstance.from_numpy(np.array([[5.0, 6.0], [7.0, 8.0]]), skeleton=skeleton,
                                                 point_scores=np.array([0.75, 0.5]), score=0.8)
    user_right = sio.Instance.from_numpy(np.array([[50.0, 60.0], [70.0, 80.0]]), skeleton=skeleton,
                                         track=right, from_predicted=pred_free)
    instances = [pred_left, user_left, pred_free, user_right]
    frames = [sio.LabeledFrame(video=video, frame_idx=4, instances=instances)]
    path = save(tmp_path, "mixed.slp", frames, [video], skeleton, [left, right])

    user = read_slp(path)
    assert user.individuals == ["left", "right"]
    assert user.n_frames == 5  # no stored video length: last labelled frame + 1
    assert user.metadata["n_frames_source"] == "last labelled frame"
    np.testing.assert_array_equal(user.keypoints[4, 0], [[10.0, 20.0], [np.nan, np.nan]])
    np.testing.assert_array_equal(user.confidence[4, 0], [1.0, np.nan])
    np.testing.assert_array_equal(user.keypoints[4, 1], [[50.0, 60.0], [70.0, 80.0]])
    assert user.metadata["dropped_paired_instances"] == 2

    predicted = read_slp(path, prefer="predicted")
    np.testing.assert_array_equal(predicted.keypoints[4, 0], [[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(predicted.confidence[4, 0], [0.5, 0.25])
    # The linked prediction had no track: it becomes untracked, the user copy is dropped.
    assert predicted.individuals == ["left", "untracked0"]
    np.testing.assert_array_equal(predicted.keypoints[4, 1], [[5.0, 6.0], [7.0, 8.0]])

    with pytest.raises(ValueError, match="prefer"):
        read_slp(path, prefer="best")


def test_untracked_instances_ordered_by_score(tmp_path, skeleton):
    video = sio.Video(filename="cam.mp4", open_backend=False)

    def pred(x, score):
        return sio.PredictedInstance.from_numpy(np.array([[x, x], [x, x]]), skeleton=skeleton,
                                                point_scores=np.array([score, score]), score=score)

    frames = [
        sio.LabeledFrame(video=video, frame_idx=0,
                         instances=[pred(1.0, 0.2), pred(2.0, 0.9), pred(3.0, 0.5)]),
        sio.LabeledFrame(video=video, frame_idx=2, instances=[
            pred(4.0, 0.7), sio.Instance.from_numpy(np.array([[9.0, 9.0], [9.0, 9.0]]), skeleton=skeleton)]),
    ]
    record = read_slp(save(tmp_path, "untracked.slp", frames, [video], skeleton))
    assert record.individuals == ["untracked0", "untracked1", "untracked2"]  # max 3 per frame
    np.testing.assert_array_equal(record.keypoints[0, :, 0, 0], [2.0, 3.0, 1.0])  # score 0.9, 0.5, 0.2
    np.testing.assert_array_equal(record.confidence[0, :, 0], np.float32([0.9, 0.5, 0.2]))
    # A user instance is ground truth and ranks before any prediction.
    np.testing.assert_array_equal(record.keypoints[2, :2, 0, 0], [9.0, 4.0])
    assert np.isnan(record.keypoints[2, 2]).all() and np.isnan(record.keypoints[1]).all()


def test_two_predictions_on_one_track_keep_the_best(tmp_path, skeleton, caplog):
    video = sio.Video(filename="cam.mp4", open_backend=False)
    track = sio.Track("fly")
    weak, strong = (
        sio.PredictedInstance.from_numpy(np.full((2, 2), x), skeleton=skeleton,
                                         point_scores=np.array([score, score]), score=score, track=track)
        for x, score in ((1.0, 0.3), (2.0, 0.8))
    )
    frames = [sio.LabeledFrame(video=video, frame_idx=0, instances=[weak, strong])]
    with caplog.at_level(logging.WARNING, logger="dlc_lookagain.io.sleap"):
        record = read_slp(save(tmp_path, "dup.slp", frames, [video], skeleton, [track]))
    assert record.individuals == ["fly"]
    np.testing.assert_array_equal(record.keypoints[0, 0], np.full((2, 2), 2.0))
    assert record.metadata["dropped_duplicate_instances"] == 1
    assert "dup.slp" in caplog.text


def test_video_selection_length_and_fps_from_metadata(tmp_path, skeleton, caplog):
    # Stored video shape and fps (sleap-io writes them) set the grid and fps.
    first = sio.Video(filename="/elsewhere/session1_top.mp4",
                      backend_metadata={"shape": [50, 64, 64, 1], "fps": 30.0}, open_backend=False)
    second = sio.Video(filename="D:\\rig\\session2_side.avi", open_backend=False)
    (tmp_path / "session2_side.avi").write_bytes(b"")  # beside the .slp: found by name, never opened
    track = sio.Track("mouse")

    def inst(x):
        return sio.Instance.from_numpy(np.array([[x, x], [x, x]]), skeleton=skeleton, track=track)

    frames = [sio.LabeledFrame(video=first, frame_idx=7, instances=[inst(1.0)]),
              sio.LabeledFrame(video=second, frame_idx=2, instances=[inst(2.0)])]
    path = save(tmp_path, "two_videos.slp", frames, [first, second], skeleton, [track])

    with caplog.at_level(logging.INFO, logger="dlc_lookagain.io.sleap"):
        default = read_slp(path)
    assert "2 videos" in caplog.text and "session2_side.avi" in caplog.text
    assert default.metadata["video_index"] == 0
    assert (default.n_frames, default.fps) == (50, 30.0)
    assert default.metadata["n_frames_source"] == "video metadata"
    assert default.video_path is None
    assert default.keypoints[7, 0, 0, 0] == 1.0

    for selector in (1, "session2_side", "session2_side.avi", -1):
        chosen = read_slp(path, video=selector)
        assert chosen.metadata["video_index"] == 1
        assert chosen.n_frames == 3 and chosen.fps is None
        assert chosen.keypoints[2, 0, 0, 0] == 2.0
        assert chosen.video_path.resolve() == (tmp_path / "session2_side.avi").resolve()
    for bad in (2, "session3", 1.5):
        with pytest.raises(PoseFormatError, match="session1_top.mp4.*session2_side.avi") as err:
            read_slp(path, video=bad)
        assert "two_videos.slp" in str(err.value)


# --------------------------------------------------------------------------- bad input


@needs_data
def test_truncated_slp(shared, tmp_path):
    data = (shared / CLIP_PRED).read_bytes()
    bad = tmp_path / "cut.slp"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(PoseFormatError, match=r"cut\.slp: .*truncated"):
        read_slp(bad)


@needs_data
def test_slp_whose_points_table_is_short(shared, tmp_path):
    bad = tmp_path / "short_points.slp"
    shutil.copy(shared / CLIP_PRED, bad)
    with h5py.File(bad, "r+") as h5:
        kept = h5["pred_points"][:100]
        del h5["pred_points"]
        h5.create_dataset("pred_points", data=kept)
    with pytest.raises(PoseFormatError, match=r"short_points\.slp: .*pred_point"):
        read_slp(bad)


def test_text_file_renamed_slp(tmp_path):
    bad = tmp_path / "labels.slp"
    bad.write_text("scorer,DLC_resnet50\nbodyparts,nose\ncoords,x\n0,1.5\n")
    with pytest.raises(PoseFormatError, match=r"labels\.slp: not an HDF5 file"):
        read_slp(bad)


@needs_data
def test_truncated_analysis_h5(shared, tmp_path):
    data = (shared / COURTSHIP_H5).read_bytes()
    bad = tmp_path / "cut.analysis.h5"
    bad.write_bytes(data[: int(len(data) * 0.9)])
    with pytest.raises(PoseFormatError, match=r"cut\.analysis\.h5: .*truncated"):
        read_analysis_h5(bad)


@needs_data
def test_h5_that_is_neither(shared, tmp_path):
    other = tmp_path / "table.h5"
    with h5py.File(other, "w") as h5:
        h5["df"] = np.zeros((3, 2))
    with pytest.raises(PoseFormatError, match=r"table\.h5: dataset 'tracks' is missing"):
        read_analysis_h5(other)
    with pytest.raises(PoseFormatError, match=r"table\.h5: not a SLEAP \.slp file: missing 'metadata'"):
        read_slp(other)
    # A .slp handed to the analysis reader is named as such.
    with pytest.raises(PoseFormatError, match=r"clip\.slp: dataset 'tracks' is missing \(a SLEAP \.slp"):
        read_analysis_h5(shared / CLIP_GT)


@needs_data
def test_analysis_h5_with_wrong_shapes(shared, tmp_path):
    bad = tmp_path / "wrong.analysis.h5"
    shutil.copy(shared / COURTSHIP_H5, bad)
    with h5py.File(bad, "r+") as h5:
        names = h5["node_names"][:-1]
        del h5["node_names"]
        h5["node_names"] = names
    with pytest.raises(PoseFormatError, match=r"wrong\.analysis\.h5: dataset 'node_names' has 12 names"):
        read_analysis_h5(bad)
    with h5py.File(bad, "r+") as h5:
        del h5["node_names"]
        h5["node_names"] = names
        del h5["tracks"]
        h5["tracks"] = np.zeros((2, 13, 10))
    expected = r"wrong\.analysis\.h5: dataset 'tracks' has shape \(2, 13, 10\), expected 4 axes"
    with pytest.raises(PoseFormatError, match=expected):
        read_analysis_h5(bad)
