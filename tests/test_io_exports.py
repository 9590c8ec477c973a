"""Exports for other tools: BORIS aggregated events (TSV) and NWB (pynwb + ndx-pose)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dlc_lookagain.errors import PoseFormatError
from dlc_lookagain.io.annotations import BehaviorPrediction, read_bouts, write_annotations
from dlc_lookagain.io.boris import BORIS_AGGREGATED_COLUMNS, boris_path, write_boris
from dlc_lookagain.io.labels import read_labels
from dlc_lookagain.io.record import PoseRecord
from dlc_lookagain.project_training import LABEL_SUFFIXES, find_label_file

VIDEO_STEM = "mouse1"
DLC_NAME = f"{VIDEO_STEM}DLC_resnet50_openfieldOct30shuffle1_6000.h5"
BEHAVIORS = ["groom", "face groom", "rear"]
BODYPARTS = ["nose", "left ear", "tailbase"]


def make_record(folder: Path, *, n_frames=240, individuals=("mouse1", "mouse2"), fps=30.0, seed=0,
                with_video=True, scores=True) -> PoseRecord:
    rng = np.random.default_rng(seed)
    source = folder / DLC_NAME
    source.touch()
    video = folder / f"{VIDEO_STEM}.mp4"
    if with_video:
        video.touch()
    n_ind = len(individuals)
    kp = (rng.random((n_frames, n_ind, len(BODYPARTS), 2)) * 400).astype(np.float32)
    kp[rng.random((n_frames, n_ind, len(BODYPARTS))) < 0.15] = np.nan  # missing keypoints
    conf = rng.random(kp.shape[:3]).astype(np.float32) if scores else np.ones(kp.shape[:3], np.float32)
    return PoseRecord(keypoints=kp, confidence=conf, individuals=list(individuals), bodyparts=BODYPARTS,
                      fps=fps, source=source, video_path=video if with_video else None,
                      scorer="DLC_resnet50_openfieldOct30shuffle1_6000", source_format="dlc-h5",
                      skeleton=[("nose", "left ear"), ("left ear", "tailbase")])


def make_prediction(n_frames=240, n_ind=2, seed=0) -> BehaviorPrediction:
    """Smooth random probabilities: runs of every length, bouts touching frame 0 and the last frame."""
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.normal(0, 0.35, (n_frames, n_ind, len(BEHAVIORS))), axis=0)
    probs = (1 / (1 + np.exp(-walk))).astype(np.float32)
    probs[0, 0, :] = 0.99
    probs[-1, 0, :] = 0.99
    probs[100:101, 0, 0] = 0.99  # a one-frame bout ...
    probs[99, 0, 0] = probs[101, 0, 0] = 0.01  # ... on its own
    probs[50:70, 1, :] = np.nan  # individual 2 not tracked: never present
    return BehaviorPrediction(behaviors=BEHAVIORS, probabilities=probs, thresholds=np.array([0.5, 0.6, 0.4]))


def read_tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


# ------------------------------------------------------------------------------------------------------------
# BORIS
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fps", [30.0, 30000 / 1001, 2997.0])  # 3 decimals (as BORIS) would fail at 2997
def test_boris_round_trip_gives_the_bouts_frames(tmp_path, fps):
    rec = make_record(tmp_path, fps=fps)
    pred = make_prediction()
    outputs = write_annotations(rec, pred)
    bouts = read_bouts(outputs["bouts_csv"])
    assert (bouts["n_frames"] == 1).any() and (bouts["start_frame"] == 0).any()
    assert (bouts["end_frame"] == rec.n_frames - 1).any()

    out = write_boris(outputs["bouts_csv"], boris_path(rec), fps=fps, media_file=rec.video_path,
                      n_frames=rec.n_frames)
    assert out == tmp_path / f"{Path(DLC_NAME).stem}_behaviors_boris.tsv"

    labels = read_labels(out, n_frames=rec.n_frames, fps=fps, individuals=rec.individuals,
                         behaviors=BEHAVIORS)
    assert labels.source_format == "boris-aggregated"
    np.testing.assert_array_equal(labels.present, pred.present)
    assert labels.annotated.all()

    # The file alone carries fps and length: no arguments needed to get the same frames back.
    alone = read_labels(out).align(rec.individuals).subset(BEHAVIORS)
    assert alone.n_frames == rec.n_frames and alone.fps == pytest.approx(fps)
    np.testing.assert_array_equal(alone.present, pred.present)


def test_boris_columns_and_values(tmp_path):
    rec = make_record(tmp_path)
    pred = make_prediction()
    outputs = write_annotations(rec, pred)
    out = write_boris(outputs["behaviors_h5"], tmp_path / "x.tsv", fps=30.0, media_file=rec.video_path)
    text = out.read_text(encoding="utf-8")
    assert text.splitlines()[0].split("\t") == list(BORIS_AGGREGATED_COLUMNS)
    df = read_tsv(out)
    bouts = read_bouts(outputs["bouts_csv"])
    assert len(df) == len(bouts)
    assert (df["Behavior type"] == "STATE").all()
    assert (df["Observation id"] == VIDEO_STEM).all()
    assert (df["Media file name"] == str(rec.video_path)).all()
    assert (df["Source"] == f"player #1:{rec.video_path}").all()
    assert (df["FPS (frame/s)"] == "30.000").all()
    # n_frames came from the .h5 metadata: the media duration is the recording's length.
    assert (df["Media duration (s)"] == f"{rec.n_frames / 30:.6f}").all()
    starts = df["Start (s)"].astype(float).to_numpy()
    assert (np.diff(starts) >= 0).all()  # sorted by start, as BORIS sorts its export

    merged = df.assign(
        start_frame=df["Image index start"].astype(int), stop_index=df["Image index stop"].astype(int),
        individual=df["Subject"], behavior=df["Behavior"],
    ).merge(bouts, on=["individual", "behavior", "start_frame"], validate="one_to_one")
    assert len(merged) == len(bouts)
    # Start/Stop follow the bouts file: start_s and end_s = (end_frame + 1) / fps.
    np.testing.assert_allclose(merged["Start (s)"].astype(float), merged["start_s"], atol=1e-6)
    np.testing.assert_allclose(merged["Stop (s)"].astype(float), merged["end_s"], atol=1e-6)
    np.testing.assert_allclose(merged["Duration (s)"].astype(float), merged["duration_s"], atol=1e-6)
    assert (merged["stop_index"] == merged["end_frame"] + 1).all()
    probs = merged["Comment start"].str.removeprefix("mean_probability=").astype(float)
    np.testing.assert_allclose(probs, merged["mean_probability"], atol=6e-5)
    # Time in at least one bout (the union: behaviors overlap), never more than the recording.
    covered = {}
    for ind, sub in bouts.groupby("individual"):
        mask = np.zeros(rec.n_frames, bool)
        for a, b in zip(sub["start_frame"], sub["end_frame"]):
            mask[a:b + 1] = True
        covered[ind] = mask.sum() / 30.0
    got = merged.groupby("individual")["Observation duration by subject by observation"].first().astype(float)
    np.testing.assert_allclose(got[list(covered)], list(covered.values()), atol=1e-5)
    assert (got <= rec.n_frames / 30.0).all()


def test_boris_observation_duration_counts_overlapping_bouts_once(tmp_path):
    """Issue 14: the sum of overlapping bouts gave 89.7 s for a 77.7 s video."""
    bouts = pd.DataFrame({"individual": ["m1", "m1", "m1", "m2"], "behavior": ["groom", "rear", "walk", "walk"],
                          "start_frame": [0, 30, 150, 10], "end_frame": [59, 89, 179, 19],
                          "mean_probability": [0.9, 0.8, 0.7, 0.6]})
    out = write_boris(bouts, tmp_path / "x.tsv", fps=30.0, n_frames=180)
    df = read_tsv(out)
    got = df.groupby("Subject")["Observation duration by subject by observation"].first().astype(float)
    assert got["m1"] == pytest.approx((90 + 30) / 30.0)  # frames 0-89 and 150-179, not 60 + 60 + 30
    assert got["m2"] == pytest.approx(10 / 30.0)


def test_boris_export_is_not_a_training_label_file(tmp_path):
    rec = make_record(tmp_path)
    outputs = write_annotations(rec, make_prediction())
    out = write_boris(outputs["bouts_csv"], boris_path(rec), fps=30.0, n_frames=rec.n_frames)
    assert out.is_file()
    assert find_label_file(rec) is None
    assert find_label_file(rec, tmp_path) is None
    # The check can fail: under the name users give their BORIS labels, the same file is found.
    assert "_boris.tsv" in LABEL_SUFFIXES
    user_named = tmp_path / f"{VIDEO_STEM}_boris.tsv"
    shutil.copy(out, user_named)
    assert find_label_file(rec) == user_named


def test_boris_dataframe_input_with_awkward_names_and_overlaps(tmp_path, caplog):
    n_frames, fps = 100, 25.0
    bouts = pd.DataFrame({
        "individual": ["rat 1", "rat 1", "rat 1", "rat2", "rat2"],
        "behavior": ['face "groom", left', 'face "groom", left', "sniff#1", "sniff#1", "sniff#1"],
        "start_frame": [10, 15, 0, 40, 50],  # rat 1 groom: 10..20 and 15..30 overlap -> 10..30
        "end_frame": [20, 30, 0, 49, 60],  # rat2 sniff: 40..49 and 50..60 touch -> kept apart
    })
    out = write_boris(bouts, tmp_path / "awkward.tsv", fps=fps, n_frames=n_frames, observation_id="obs 1")
    assert "overlap" in caplog.text
    df = read_tsv(out)
    assert len(df) == 4 and set(df["Observation id"]) == {"obs 1"}
    assert (df["Media file name"] == "NA").all()
    labels = read_labels(out, n_frames=n_frames, fps=fps)
    want = np.zeros((n_frames, 2, 2), dtype=bool)
    want[10:31, 0, 0] = True
    want[0, 0, 1] = True
    want[40:61, 1, 1] = True
    got = labels.align(["rat 1", "rat2"]).subset(['face "groom", left', "sniff#1"])
    np.testing.assert_array_equal(got.present, want)
    starts = df.loc[df["Subject"] == "rat2", "Start (s)"].astype(float).tolist()
    stops = df.loc[df["Subject"] == "rat2", "Stop (s)"].astype(float).tolist()
    assert starts == [40 / fps, 50 / fps] and stops == [50 / fps, 61 / fps]  # back-to-back, as BORIS writes


def test_boris_refusals(tmp_path):
    rec = make_record(tmp_path)
    outputs = write_annotations(rec, make_prediction())
    bouts_csv = outputs["bouts_csv"]
    out = write_boris(bouts_csv, boris_path(rec), fps=30.0)
    before = out.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        write_boris(bouts_csv, out, fps=30.0)
    assert out.read_bytes() == before

    # The bouts' seconds were computed at 30 fps: 25 fps would move every bout.
    with pytest.raises(PoseFormatError, match="30 fps|implies 30") as exc:
        write_boris(bouts_csv, tmp_path / "wrong_fps.tsv", fps=25.0)
    assert str(bouts_csv) in str(exc.value)
    assert not (tmp_path / "wrong_fps.tsv").exists()

    with pytest.raises(PoseFormatError, match="after the last frame"):
        write_boris(bouts_csv, tmp_path / "short.tsv", fps=30.0, n_frames=100)
    with pytest.raises(PoseFormatError, match="lacks column"):
        write_boris(pd.DataFrame({"behavior": ["x"], "start_frame": [0], "end_frame": [1]}),
                    tmp_path / "bad.tsv", fps=30.0)
    with pytest.raises(ValueError, match="fps"):
        write_boris(bouts_csv, tmp_path / "nofps.tsv", fps=0)
    with pytest.raises(ValueError, match="'#'"):
        write_boris(bouts_csv, tmp_path / "hash.tsv", fps=30.0, observation_id="#1")
    assert sorted(p.name for p in tmp_path.iterdir() if p.suffix == ".tsv") == [out.name]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_boris_without_bouts_writes_the_header(tmp_path, caplog):
    empty = pd.DataFrame({c: [] for c in ("individual", "behavior", "start_frame", "end_frame")})
    out = write_boris(empty, tmp_path / "none.tsv", fps=30.0, n_frames=10)
    assert out.read_text().splitlines() == ["\t".join(BORIS_AGGREGATED_COLUMNS)]
    assert "no bouts" in caplog.text


# ------------------------------------------------------------------------------------------------------------
# NWB
# ------------------------------------------------------------------------------------------------------------


@pytest.fixture
def nwb():
    pynwb = pytest.importorskip("pynwb")
    pytest.importorskip("ndx_pose")
    return pynwb


def _validation_errors(pynwb, path: Path) -> list:
    try:
        result = pynwb.validate(path=str(path))
    except TypeError:  # pynwb < 3
        result = pynwb.validate(paths=[str(path)])
    # pynwb >= 3 returns a list of errors, older versions (errors, status).
    return list(result[0]) if isinstance(result, tuple) else list(result)


def test_nwb_round_trip(tmp_path, nwb):
    from dlc_lookagain.io.nwb import nwb_path, write_nwb

    rec = make_record(tmp_path)
    mtime = 1_700_000_000
    os.utime(rec.source, (mtime, mtime))
    pred = make_prediction()
    outputs = write_annotations(rec, pred)
    out = write_nwb(rec, outputs["bouts_csv"], nwb_path(rec), behaviors=outputs["behaviors_h5"],
                    subject={"subject_id": "cage3", "species": "Mus musculus"})
    assert out == tmp_path / f"{Path(DLC_NAME).stem}_behaviors.nwb"
    assert _validation_errors(nwb, out) == []
    bouts = read_bouts(outputs["bouts_csv"])

    with nwb.NWBHDF5IO(str(out), "r") as io:
        f = io.read()
        assert f.session_start_time == dt.datetime.fromtimestamp(mtime).astimezone()
        assert f.session_start_time.tzinfo is not None
        assert f.subject.subject_id == "cage3"
        module = f.processing["behavior"]
        skeletons = module["Skeletons"]
        for i, ind in enumerate(rec.individuals):
            pe = module[f"PoseEstimation_{ind}"]
            assert pe.skeleton is skeletons.skeletons[f"{ind}_skeleton"]
            assert list(pe.skeleton.nodes[:]) == BODYPARTS
            np.testing.assert_array_equal(pe.skeleton.edges[:], [[0, 1], [1, 2]])
            assert pe.skeleton.subject is None  # two animals, one NWB subject: not linked
            assert pe.source_software == "DeepLabCut" and pe.scorer == rec.scorer
            assert sorted(pe.pose_estimation_series) == sorted(BODYPARTS)
            for b, part in enumerate(BODYPARTS):
                s = pe.pose_estimation_series[part]
                assert s.data.shape == (rec.n_frames, 2) and s.unit == "pixels"
                assert s.rate == 30.0 and s.starting_time == 0.0
                np.testing.assert_array_equal(s.data[:], rec.keypoints[:, i, b])  # NaN where missing, too
                assert np.isnan(s.data[:]).any()
                np.testing.assert_array_equal(s.confidence[:], rec.confidence[:, i, b])
                assert "likelihood" in s.confidence_definition
            series = module["behavior_probabilities"][ind]
            assert series.data.shape == (rec.n_frames, len(BEHAVIORS)) and series.rate == 30.0
            np.testing.assert_array_equal(series.data[:], pred.probabilities[:, i, :])
            assert json.loads(series.description.split("columns: ")[1].split("; ")[0]) == BEHAVIORS

        table = f.intervals["behavior_bouts"].to_dataframe()
        assert len(table) == len(bouts)
        np.testing.assert_allclose(table["start_time"], bouts["start_frame"] / 30.0)
        np.testing.assert_allclose(table["stop_time"], (bouts["end_frame"] + 1) / 30.0)
        np.testing.assert_allclose(table["stop_time"], bouts["end_s"], atol=1e-6)
        assert table["behavior"].tolist() == bouts["behavior"].tolist()
        assert table["individual"].tolist() == bouts["individual"].tolist()
        assert table["end_frame"].tolist() == bouts["end_frame"].tolist()
        np.testing.assert_allclose(table["mean_probability"], bouts["mean_probability"])

        first = module[f"PoseEstimation_{rec.individuals[0]}"]
        linked = first.device if hasattr(first, "device") else first.devices[0]  # ndx-pose >= 0.4 / older
        assert linked is f.devices["camera"]
        if "video" in f.acquisition:  # ndx-pose >= 0.4: an ImageSeries linking the video file
            video = f.acquisition["video"]
            assert list(video.external_file[:]) == [f"{VIDEO_STEM}.mp4"]  # relative to the NWB file
            assert first.source_video is video
        else:
            assert list(first.original_videos[:]) == [f"{VIDEO_STEM}.mp4"]


def test_nwb_single_animal_without_scores_or_video(tmp_path, nwb):
    from dlc_lookagain.io.nwb import _confidence_required, write_nwb

    rec = make_record(tmp_path, individuals=("individual0",), with_video=False, scores=False)
    bouts = pd.DataFrame({"individual": ["individual0"], "behavior": ["rear"], "start_frame": [5],
                          "end_frame": [9]})
    start = dt.datetime(2024, 5, 1, 9, 30, tzinfo=dt.timezone.utc)
    out = write_nwb(rec, bouts, tmp_path / "one.nwb", session_start_time=start, subject="m7",
                    session_description="open field")
    assert _validation_errors(nwb, out) == []
    with nwb.NWBHDF5IO(str(out), "r") as io:
        f = io.read()
        assert f.session_start_time == start and f.session_description == "open field"
        pe = f.processing["behavior"]["PoseEstimation_individual0"]
        assert pe.skeleton.subject is f.subject  # one animal: the skeleton is the subject's
        confidence = pe.pose_estimation_series["nose"].confidence
        if _confidence_required(nwb):  # ndx-pose 0.2.x requires one: 1.0 where present, and says so
            assert "no scores" in pe.pose_estimation_series["nose"].confidence_definition
            np.testing.assert_array_equal(confidence[:], rec.confidence[:, 0, 0])
        else:
            assert confidence is None  # the pose file had no scores
        assert "video" not in f.acquisition
        assert "behavior_probabilities" not in f.processing["behavior"].data_interfaces
        row = f.intervals["behavior_bouts"].to_dataframe().iloc[0]
        assert (row.start_time, row.stop_time) == (5 / 30, 10 / 30)
        assert np.isnan(row.mean_probability)


def test_nwb_refusals(tmp_path, nwb, monkeypatch):
    import dataclasses

    from dlc_lookagain.io.nwb import write_nwb

    rec = make_record(tmp_path)
    outputs = write_annotations(rec, make_prediction())
    with pytest.raises(PoseFormatError, match="fps unknown") as exc:
        write_nwb(dataclasses.replace(rec, fps=None), outputs["bouts_csv"], tmp_path / "a.nwb")
    assert str(rec.source) in str(exc.value)

    stranger = pd.DataFrame({"individual": ["mouse9"], "behavior": ["rear"], "start_frame": [0],
                             "end_frame": [1]})
    with pytest.raises(PoseFormatError, match="mouse9"):
        write_nwb(rec, stranger, tmp_path / "b.nwb")
    too_long = stranger.assign(individual="mouse1", end_frame=rec.n_frames)
    with pytest.raises(PoseFormatError, match="outside"):
        write_nwb(rec, too_long, tmp_path / "c.nwb")
    short = dataclasses.replace(rec, keypoints=rec.keypoints[:100], confidence=rec.confidence[:100])
    with pytest.raises(PoseFormatError, match="has 100 frames") as exc:
        write_nwb(short, None, tmp_path / "d.nwb", behaviors=outputs["behaviors_csv"])
    assert str(outputs["behaviors_csv"]) in str(exc.value)
    with pytest.raises(PoseFormatError, match="overwrite the pose file"):
        write_nwb(rec, None, rec.source, overwrite=True)

    done = write_nwb(rec, None, tmp_path / "e.nwb")
    before = done.read_bytes()
    with pytest.raises(FileExistsError):
        write_nwb(rec, None, done)
    assert done.read_bytes() == before
    assert not list(tmp_path.glob("[abcd].nwb")) and not list(tmp_path.glob(".*"))

    monkeypatch.setitem(sys.modules, "ndx_pose", None)  # as if not installed
    with pytest.raises(ImportError, match=r'pip install "dlc_lookagain\[nwb\]"'):
        write_nwb(rec, None, tmp_path / "f.nwb")


def test_nwb_without_bouts_still_has_the_table(tmp_path, nwb):
    from dlc_lookagain.io.nwb import write_nwb

    rec = make_record(tmp_path)
    empty = pd.DataFrame({c: [] for c in ("individual", "behavior", "start_frame", "end_frame")})
    out = write_nwb(rec, empty, tmp_path / "empty.nwb")
    assert _validation_errors(nwb, out) == []
    with nwb.NWBHDF5IO(str(out), "r") as io:
        table = io.read().intervals["behavior_bouts"].to_dataframe()
    assert len(table) == 0
    assert {"start_time", "stop_time", "behavior", "individual", "mean_probability"} <= set(table.columns)
