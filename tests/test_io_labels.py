"""Tests for dlc_lookagain.io.labels: every accepted label layout, on real public files and synthetic ones."""

from __future__ import annotations

import csv
import logging
import math

import h5py
import numpy as np
import pandas as pd
import pytest

from dlc_lookagain.errors import PoseFormatError
from dlc_lookagain.io.labels import BehaviorLabels, read_labels

ETHOME_BORIS = "ethome/tests/data/boris/e3v813a-20210610T122332-122642_reencode.csv"
BD_HB = "behaviordepot/demo/demo1/hB_demo1_manual_annotations.mat.mat"


def _frame(t: float, fps: float) -> int:
    """Nearest frame, halves up (written out here so the test does not reuse the module's helper)."""
    return int(math.floor(t * fps + 0.5 + 1e-6))


def _write(tmp_path, name: str, text: str):
    p = tmp_path / name
    p.write_text(text)
    return p


def _naive_bouts(mask: np.ndarray) -> list[tuple[int, int]]:
    out, start = [], None
    for i, v in enumerate(list(mask) + [False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            out.append((start, i - 1))
            start = None
    return out


# ------------------------------------------------------------------------------------------------------------
# Real files
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.shared
def test_ethome_boris_events(shared):
    path = shared / ETHOME_BORIS
    # Read the START/STOP times ourselves with the csv module, skipping the preamble.
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    header = next(i for i, r in enumerate(rows) if r[:1] == ["Time"])
    events = [dict(zip(rows[header], r)) for r in rows[header + 1:] if r]
    starts = [float(e["Time"]) for e in events if e["Status"] == "START"]
    stops = [float(e["Time"]) for e in events if e["Status"] == "STOP"]
    assert len(starts) == len(stops) == 10

    labels = read_labels(path)
    assert labels.source_format == "boris-events"
    assert labels.fps == 30.0
    assert labels.n_frames == 5700  # Total length 190 s * 30 fps
    assert labels.behaviors == ["interact"]
    assert labels.individuals == ["adult"]
    assert labels.annotated.all()

    bouts = labels.to_bouts()
    assert len(bouts) == 10
    assert set(bouts["individual"]) == {"adult"}
    first = bouts.iloc[0]
    assert first["start_frame"] == _frame(starts[0], 30.0)
    assert first["end_frame"] == _frame(stops[0], 30.0) - 1  # STOP time is exclusive
    assert abs(first["start_s"] - starts[0]) <= 0.5 / 30
    expected_total = sum(_frame(b, 30.0) - _frame(a, 30.0) for a, b in zip(starts, stops))
    assert labels.frame_counts() == {"interact": expected_total}
    assert 650 <= expected_total <= 675  # 22.1 s of interaction at 30 fps

    aligned = labels.align(["adult", "juvenile"])
    assert aligned.individuals == ["adult", "juvenile"]
    np.testing.assert_array_equal(aligned.present[:, 0], labels.present[:, 0])
    assert not aligned.present[:, 1].any()
    # Only the adult was scored: the juvenile's frames are unknown, not negatives.
    assert aligned.annotated[:, 0].all() and not aligned.annotated[:, 1].any()

    # The same through read_labels' own arguments, with the matching pose length.
    direct = read_labels(path, n_frames=5700, fps=30.0, individuals=["juvenile", "adult"])
    np.testing.assert_array_equal(direct.present[:, 1], labels.present[:, 0])


@pytest.mark.shared
def test_behaviordepot_hb(shared):
    path = shared / BD_HB
    with h5py.File(path, "r") as f:
        raw_bouts = f["hBehavior/Freezing/Bouts"][()].T  # MATLAB n-by-2, stored transposed
    labels = read_labels(path)
    assert labels.source_format == "behaviordepot"
    assert labels.behaviors == ["Freezing"]
    assert labels.n_frames == 6000
    assert labels.frame_counts() == {"Freezing": 1368}
    bouts = labels.to_bouts()
    assert len(bouts) == 20
    s, e = raw_bouts[0]
    assert (bouts.iloc[0]["start_frame"], bouts.iloc[0]["end_frame"]) == (s - 1, e - 1)
    np.testing.assert_array_equal(bouts[["start_frame", "end_frame"]].to_numpy(), raw_bouts.astype(int) - 1)
    # BehaviorDEPOT is single-animal: the labels go onto whatever the pose file calls its animal.
    on_pose = read_labels(path, individuals=["individual0"], n_frames=6000, fps=50.0)
    assert on_pose.individuals == ["individual0"] and on_pose.present.sum() == 1368
    assert on_pose.to_bouts().iloc[0]["start_s"] == pytest.approx((s - 1) / 50.0)


# ------------------------------------------------------------------------------------------------------------
# Frame tables
# ------------------------------------------------------------------------------------------------------------


def test_frame_table_01_columns(tmp_path, caplog):
    p = _write(
        tmp_path,
        "ann.csv",
        "frame,individual,groom,sit\n"
        "0,m1,1,0\n"
        "1,m1,1,1\n"
        "2,m1,0,\n"  # partly empty: unknown, so the whole row is unlabeled
        "4,m1,false,true\n"
        "0,m2,0,0\n"
        "1,m2,0,1\n",
    )
    with caplog.at_level(logging.WARNING):
        labels = read_labels(p)
    assert "some behavior cells empty" in caplog.text
    assert labels.source_format == "frame-table"
    assert labels.behaviors == ["groom", "sit"]
    assert labels.individuals == ["m1", "m2"]
    assert labels.n_frames == 5
    np.testing.assert_array_equal(labels.annotated[:, 0], [True, True, False, False, True])
    np.testing.assert_array_equal(labels.annotated[:, 1], [True, True, False, False, False])
    np.testing.assert_array_equal(labels.present[:, 0, 0], [1, 1, 0, 0, 0])
    np.testing.assert_array_equal(labels.present[:, 0, 1], [0, 1, 0, 0, 1])  # multi-label at frame 1
    np.testing.assert_array_equal(labels.present[:, 1, 1], [0, 1, 0, 0, 0])
    assert labels.frame_counts() == {"groom": 2, "sit": 3}


def test_frame_table_label_column_without_individual(tmp_path):
    p = _write(
        tmp_path,
        "ann.tsv",
        "frame\tlabel\n0\tgroom\n1\tnone\n2\t\n3\tgroom;rear\n3\tsit\n6\trear\n",
    )
    labels = read_labels(p)
    assert labels.source_format == "frame-table-labels"
    assert labels.behaviors == ["groom", "rear", "sit"]
    assert labels.individuals == ["all"]
    np.testing.assert_array_equal(labels.annotated[:, 0], [1, 1, 1, 1, 0, 0, 1])
    np.testing.assert_array_equal(labels.present[3, 0], [True, True, True])
    assert not labels.present[1:3].any()

    # Without a subject the labels apply to every animal of the pose file.
    both = labels.align(["a", "b"], n_frames=9)
    assert both.n_frames == 9
    np.testing.assert_array_equal(both.present[:7, 0], labels.present[:, 0])
    np.testing.assert_array_equal(both.present[:, 0], both.present[:, 1])
    assert not both.annotated[7:].any()


def test_prediction_output_is_readable_as_labels(tmp_path):
    # Layout of our own <stem>_behaviors.csv: 'label' wins, p_ columns only contribute behavior names.
    p = _write(
        tmp_path,
        "rec_behaviors.csv",
        "frame,time_s,individual,label,looked,motif,p_groom,p_sit,p_rear,p_a;b\n"
        "0,0.0,adult,groom,1,3,0.9,0.05,0.05,0.0\n"
        "1,0.033,adult,groom,0,3,0.6,0.3,0.1,0.0\n"
        "2,0.067,adult,none,0,1,0.2,0.3,0.5,0.0\n"
        "0,0.0,juvenile,sit,1,2,0.1,0.8,0.1,0.0\n"
        "1,0.033,juvenile,a;b,1,2,0.1,0.4,0.5,0.9\n"
        "2,0.067,juvenile,sit,0,2,0.1,0.8,0.1,0.0\n",
    )
    labels = read_labels(p, fps=30.0)
    # 'rear' is never the top label but is a class; 'a;b' is one behavior name, not two.
    assert labels.behaviors == ["groom", "sit", "rear", "a;b"]
    assert labels.individuals == ["adult", "juvenile"]
    assert labels.annotated.all()
    assert labels.frame_counts() == {"groom": 2, "sit": 2, "rear": 0, "a;b": 1}
    np.testing.assert_array_equal(labels.present[:, 1, 1], [True, False, True])
    assert not labels.present[2, 0].any()  # 'none' = annotated, no behavior


def test_frame_table_rejects_unknown_columns(tmp_path):
    p = _write(tmp_path, "notes.csv", "frame,groom,notes\n0,1,looks tired\n1,0,\n")
    with pytest.raises(PoseFormatError, match="'notes'") as exc:
        read_labels(p)
    assert str(p) in str(exc.value)
    p2 = _write(tmp_path, "dist.csv", "frame,groom,speed\n0,1,3.5\n1,0,0.2\n")
    with pytest.raises(PoseFormatError, match="'speed'"):
        read_labels(p2)
    p3 = _write(tmp_path, "what.csv", "animal_id,weight,cage\nm1,23.1,4\n")
    with pytest.raises(PoseFormatError, match="not a recognized label table"):
        read_labels(p3)


# ------------------------------------------------------------------------------------------------------------
# Bout tables
# ------------------------------------------------------------------------------------------------------------


def test_bout_table_frames(tmp_path):
    p = _write(
        tmp_path,
        "bouts.csv",
        "subject,behavior,start,end\nm1,groom,2,4\nm1,sit,4,4\nm2,groom,0,1\nm3,none,0,0\n",
    )
    labels = read_labels(p, n_frames=8)
    assert labels.source_format == "bout-table"
    assert labels.individuals == ["m1", "m2", "m3"]  # m3 has only a 'none' row: annotated, no behavior
    assert labels.n_frames == 8 and labels.annotated.all()
    np.testing.assert_array_equal(labels.present[:, 0, 0], [0, 0, 1, 1, 1, 0, 0, 0])  # end is inclusive
    np.testing.assert_array_equal(labels.present[:, 0, 1], [0, 0, 0, 0, 1, 0, 0, 0])
    assert not labels.present[:, 2].any()

    # Without n_frames the labels stop at the last bout; align pads the rest as unlabeled.
    short = read_labels(p)
    assert short.n_frames == 5
    padded = short.align(n_frames=8)
    assert not padded.annotated[5:].any() and padded.annotated[:5].all()


def test_bout_table_seconds(tmp_path):
    p = _write(tmp_path, "bouts_s.csv", "behavior,start_s,end_s\nrear,1.0,2.0\nrear,3.04,3.06\n")
    with pytest.raises(PoseFormatError, match="pass fps"):
        read_labels(p)
    labels = read_labels(p, fps=10.0, n_frames=50)
    # [1.0, 2.0) s at 10 fps = frames 10..19; a bout shorter than a frame still marks one frame.
    assert labels.to_bouts()[["start_frame", "end_frame"]].values.tolist() == [[10, 19], [30, 30]]


def test_bout_table_frame_columns_must_be_whole(tmp_path):
    p = _write(tmp_path, "b.csv", "behavior,start,end\ngroom,1.5,3.2\n")
    with pytest.raises(PoseFormatError, match="start_s/end_s"):
        read_labels(p)
    p2 = _write(tmp_path, "b2.csv", "behavior,start_frame,end_frame\ngroom,5,3\n")
    with pytest.raises(PoseFormatError, match="before it starts"):
        read_labels(p2)


def test_round_trip_through_bout_csv(tmp_path):
    rng = np.random.default_rng(0)
    t, inds, behs = 300, ["adult", "juvenile"], ["groom", "sit", "chase"]
    # Runs of random lengths, several behaviors at once.
    present = np.repeat(rng.random((t // 10, len(inds), len(behs))) < 0.3, 10, axis=0)
    present[::7] ^= rng.random((len(present[::7]), len(inds), len(behs))) < 0.5
    present[-1, 0, 0] = True  # a bout touching the last frame
    labels = BehaviorLabels(behs, inds, present, np.ones((t, len(inds)), bool), 25.0, tmp_path / "x.csv")

    bouts = labels.to_bouts()
    for i, ind in enumerate(inds):
        for c, beh in enumerate(behs):
            sel = bouts[(bouts["individual"] == ind) & (bouts["behavior"] == beh)]
            assert list(zip(sel["start_frame"], sel["end_frame"])) == _naive_bouts(present[:, i, c])

    out = tmp_path / "bouts.csv"
    # Extra columns of our <stem>_bouts.csv output are ignored by the reader.
    bouts.assign(duration_s=bouts["end_s"] - bouts["start_s"], mean_probability=0.8).to_csv(out, index=False)
    back = read_labels(out, n_frames=t, individuals=inds, behaviors=behs)
    np.testing.assert_array_equal(back.present, present)

    # Seconds only: [start_s, end_s) must convert back to the same frames.
    out_s = tmp_path / "bouts_s.csv"
    bouts.drop(columns=["start_frame", "end_frame"]).to_csv(out_s, index=False)
    back_s = read_labels(out_s, n_frames=t, fps=25.0, individuals=inds, behaviors=behs)
    np.testing.assert_array_equal(back_s.present, present)


# ------------------------------------------------------------------------------------------------------------
# BORIS variants
# ------------------------------------------------------------------------------------------------------------

_TABULAR_HEADER = [
    "Observation id", "Observation date", "Description", "Observation duration", "Observation type", "Source",
    "Time offset (s)", "Media duration (s)", "FPS", "Subject", "Behavior", "Behavioral category",
    "Behavior type", "Time", "Media file name", "Image index", "Image file path", "Comment",
]


def _tabular_row(subject, behavior, status, time, fps="25.000", duration="20.000"):
    return ["obs1", "2024-05-01 10:00:00", "", "20.0", "Media file(s)", "player #1:/v/rec.mp4", "0.0",
            duration, fps, subject, behavior, "", status, time, "/v/rec.mp4", "NA", "NA", ""]


@pytest.mark.parametrize("sep", [",", "\t"])
def test_boris_tabular_events_with_points(tmp_path, sep):
    rows = [
        _tabular_row("rat1", "walk", "START", "1.000"),
        _tabular_row("", "sniff", "POINT", "1.500"),  # no focal subject
        _tabular_row("rat2", "walk", "START", "1.000"),
        _tabular_row("rat1", "walk", "STOP", "2.000"),
        _tabular_row("rat1", "groom", "POINT", "3.02"),
        _tabular_row("rat2", "walk", "STOP", "1.400"),
    ]
    text = "\n".join(sep.join(r) for r in [_TABULAR_HEADER, *rows]) + "\n"
    p = _write(tmp_path, "boris_tabular.txt", text)  # extension says nothing: content decides
    labels = read_labels(p)
    assert labels.source_format == "boris-events"
    assert labels.fps == 25.0 and labels.n_frames == 500
    assert labels.behaviors == ["walk", "sniff", "groom"]
    assert labels.individuals == ["rat1", "all", "rat2"]
    b = labels.to_bouts().set_index(["individual", "behavior"])
    assert tuple(b.loc[("rat1", "walk"), ["start_frame", "end_frame"]]) == (25, 49)
    assert tuple(b.loc[("rat2", "walk"), ["start_frame", "end_frame"]]) == (25, 34)
    assert tuple(b.loc[("rat1", "groom"), ["start_frame", "end_frame"]]) == (_frame(3.02, 25),) * 2
    assert tuple(b.loc[("all", "sniff"), ["start_frame", "end_frame"]]) == (_frame(1.5, 25),) * 2

    aligned = labels.align(["rat1", "rat2"])
    sniff = aligned.behaviors.index("sniff")
    assert aligned.present[_frame(1.5, 25), :, sniff].all()  # the no-subject POINT applies to both rats


def test_boris_with_preamble_and_fps_override(tmp_path, caplog):
    preamble = "Observation id,obs1\n,\nTime offset (s),0.0\n,\n"
    header = "Time,Media file path,Total length,FPS,Subject,Behavior,Behavioral category,Comment,Status\n"
    body = ("2.0,/v/a.avi,10.0,30.0,No focal subject,rear,,,START\n"
            "3.0,/v/a.avi,10.0,30.0,No focal subject,rear,,,STOP\n")
    p = _write(tmp_path, "old_boris.csv", preamble + header + body)
    with caplog.at_level(logging.WARNING):
        labels = read_labels(p, fps=25.0)
    assert "using 25.000" in caplog.text
    assert labels.individuals == ["all"] and labels.n_frames == 250
    assert labels.to_bouts()[["start_frame", "end_frame"]].values.tolist() == [[50, 74]]


def test_boris_aggregated_start_stop(tmp_path):
    header = ("Observation id,Observation date,Description,Observation type,Source,Time offset (s),"
              "Coding duration,Media duration (s),FPS (frame/s),Subject,"
              "Observation duration by subject by observation,Behavior,Behavioral category,Behavior type,"
              "Start (s),Stop (s),Duration (s),Media file name,Image index start,Image index stop,"
              "Image file path start,Image file path stop,Comment start,Comment stop\n")
    common = "obs1,2024-05-01,,Media file,/v/x.mp4,0.000,60.000,60.000,30.000"
    body = (
        f"{common},mouseA,60,huddle,,STATE,10.000,12.500,2.500,x.mp4,NA,NA,NA,NA,,\n"
        f"{common},mouseA,60,jump,,POINT,20.000,20.000,NA,x.mp4,NA,NA,NA,NA,,\n"
        f"{common},mouseB,60,huddle,,STATE,11.000,11.100,0.100,x.mp4,NA,NA,NA,NA,,\n"
    )
    p = _write(tmp_path, "agg.csv", header + body)
    labels = read_labels(p)
    assert labels.source_format == "boris-aggregated"
    assert labels.n_frames == 1800 and labels.fps == 30.0
    b = labels.to_bouts()
    got = {(r.individual, r.behavior): (r.start_frame, r.end_frame) for r in b.itertuples()}
    # [10, 12.5) s -> 300..374; the POINT is one frame; [11, 11.1) s -> 330..332 (round(333) - 1).
    assert got == {("mouseA", "huddle"): (300, 374), ("mouseA", "jump"): (600, 600),
                   ("mouseB", "huddle"): (330, 332)}


def test_boris_unpaired_start(tmp_path):
    rows = [_tabular_row("rat1", "walk", "START", "1.000"), _tabular_row("rat1", "walk", "STOP", "2.000"),
            _tabular_row("rat1", "walk", "START", "4.250")]
    p = _write(tmp_path, "unpaired.csv", "\n".join(",".join(r) for r in [_TABULAR_HEADER, *rows]) + "\n")
    with pytest.raises(PoseFormatError, match=r"'walk'.*4\.250") as exc:
        read_labels(p)
    assert str(p) in str(exc.value)


def test_boris_back_to_back_bouts_in_either_order(tmp_path):
    # The START of the next bout is written before the STOP of the previous one at the same instant.
    rows = [_tabular_row("rat1", "walk", "START", "1.000"), _tabular_row("rat1", "walk", "START", "2.000"),
            _tabular_row("rat1", "walk", "STOP", "2.000"), _tabular_row("rat1", "walk", "STOP", "3.000")]
    p = _write(tmp_path, "b2b.csv", "\n".join(",".join(r) for r in [_TABULAR_HEADER, *rows]) + "\n")
    labels = read_labels(p)
    assert labels.to_bouts()[["start_frame", "end_frame"]].values.tolist() == [[25, 74]]


def test_boris_several_observations_rejected(tmp_path):
    rows = [_tabular_row("rat1", "walk", "POINT", "1.0"), _tabular_row("rat1", "walk", "POINT", "2.0")]
    rows[1][0] = "obs2"
    p = _write(tmp_path, "two_obs.csv", "\n".join(",".join(r) for r in [_TABULAR_HEADER, *rows]) + "\n")
    with pytest.raises(PoseFormatError, match="2 observations"):
        read_labels(p)


# ------------------------------------------------------------------------------------------------------------
# BehaviorDEPOT, synthetic
# ------------------------------------------------------------------------------------------------------------


def _write_matlab_h5(path, behaviors: dict, total_frames: int):
    """An HDF5 file laid out like MATLAB v7.3 writes an hBehavior struct (matrices stored transposed)."""
    with h5py.File(path, "w") as f:
        g = f.create_group("hBehavior")
        g["TotalFrames"] = np.array([[float(total_frames)]])
        # MATLAB records the struct's field order; h5py alone would list members alphabetically.
        fields = ["TotalFrames", *behaviors]
        g.attrs.create("MATLAB_fields", [np.array(list(n), dtype="S1") for n in fields],
                       dtype=h5py.vlen_dtype(np.dtype("S1")))
        for name, (vector, bouts) in behaviors.items():
            b = g.create_group(name)
            if vector is not None:
                b["Vector"] = np.asarray(vector, float).reshape(-1, 1)
            if bouts is not None:
                b["Bouts"] = np.asarray(bouts, float).T  # n-by-2 in MATLAB -> (2, n) on disk


def test_behaviordepot_synthetic_h5_bouts_only_and_mismatch(tmp_path, caplog):
    vec = np.zeros(30)
    vec[4:8] = 1  # frames 5..8 in MATLAB numbering
    p = tmp_path / "hB_test.mat"
    _write_matlab_h5(p, {
        "Rearing": (vec, [[5, 8]]),
        "Grooming": (None, [[1, 2], [10, 12]]),  # two bouts: the (2, 2) on-disk shape must not be misread
        "Freezing": (vec, [[5, 9]]),  # disagrees with its Vector by one frame
    }, total_frames=30)
    with caplog.at_level(logging.WARNING):
        labels = read_labels(p)
    assert "Freezing Vector and Bouts disagree on 1 frame" in caplog.text
    assert "Rearing" not in caplog.text
    assert labels.behaviors == ["Rearing", "Grooming", "Freezing"]
    assert labels.n_frames == 30
    np.testing.assert_array_equal(np.nonzero(labels.present[:, 0, 1])[0], [0, 1, 9, 10, 11])
    np.testing.assert_array_equal(labels.present[:, 0, 2], vec.astype(bool))  # Vector wins


def test_behaviordepot_matlab_v5(tmp_path):
    from scipy.io import savemat

    vec = np.zeros((1, 12))
    vec[0, 2:5] = 1
    p = tmp_path / "hB_v5.mat"
    savemat(p, {"hBehavior": {"TotalFrames": 12.0, "FrameRate": 20.0,
                              "Sniff": {"Bouts": np.array([[3.0, 5.0]]), "Vector": vec}}})
    labels = read_labels(p)
    assert labels.fps == 20.0 and labels.n_frames == 12
    assert labels.to_bouts()[["start_frame", "end_frame"]].values.tolist() == [[2, 4]]


def test_hdf5_without_behavior_struct(tmp_path):
    p = tmp_path / "other.h5"
    with h5py.File(p, "w") as f:
        f["tracks"] = np.zeros((3, 2))
    with pytest.raises(PoseFormatError, match="hBehavior"):
        read_labels(p)


# ------------------------------------------------------------------------------------------------------------
# Junk, model checks, align/subset
# ------------------------------------------------------------------------------------------------------------


def test_unreadable_files(tmp_path):
    cases = {
        "empty.csv": b"",
        "blank.csv": b"\n \n",
        "junk.bin": bytes(range(256)) * 4,
        "sheet.xlsx": b"PK\x03\x04" + b"\x01" * 100,
        "pose.csv": b"scorer,DLC_x,DLC_x\nbodyparts,nose,nose\ncoords,x,y\n0,1.0,2.0\n",
        "header_only.csv": b"frame,groom\n",
    }
    for name, content in cases.items():
        p = tmp_path / name
        p.write_bytes(content)
        with pytest.raises(PoseFormatError) as exc:
            read_labels(p)
        assert str(p) in str(exc.value), name
    with pytest.raises(PoseFormatError, match="not found"):
        read_labels(tmp_path / "missing.csv")
    with pytest.raises(PoseFormatError, match="folder"):
        read_labels(tmp_path)


def test_align_unknown_individual_lists_both(tmp_path):
    p = _write(tmp_path, "b.csv",
               "individual,behavior,start_frame,end_frame\nmouse1,groom,0,3\nmouse9,groom,2,3\n")
    labels = read_labels(p)
    with pytest.raises(PoseFormatError) as exc:
        labels.align(["mouse1", "mouse2"])
    msg = str(exc.value)
    assert "mouse9" in msg and "mouse2" in msg and str(p) in msg
    # One animal on each side: names need not match.
    single = read_labels(_write(tmp_path, "s.csv", "individual,behavior,start,end\nrat,groom,0,3\n"))
    assert single.align(["individual0"]).present[:, 0, 0].sum() == 4


def test_align_crop_warns_and_subset(tmp_path, caplog):
    p = _write(tmp_path, "b.csv", "behavior,start,end\ngroom,0,3\nsit,8,9\n")
    labels = read_labels(p)
    with caplog.at_level(logging.WARNING):
        cropped = labels.align(n_frames=9)
    assert "1 labeled frame(s) dropped" in caplog.text
    assert cropped.n_frames == 9

    sub = labels.subset(["sit"])
    assert sub.behaviors == ["sit"] and sub.frame_counts() == {"sit": 2}
    with pytest.raises(PoseFormatError, match="available behaviors"):
        labels.subset(["rear"])
    # Asking for a behavior the bout file never mentions: all-absent column.
    more = read_labels(p, behaviors=["sit", "rear"])
    assert more.frame_counts() == {"sit": 2, "rear": 0}
    # ... but a 0/1 table without that column never labeled it.
    t = _write(tmp_path, "t.csv", "frame,sit\n0,1\n")
    with pytest.raises(PoseFormatError, match="never"):
        read_labels(t, behaviors=["rear"])


def test_present_must_be_annotated(tmp_path):
    present = np.zeros((4, 1, 1), bool)
    present[2] = True
    annotated = np.ones((4, 1), bool)
    annotated[2] = False
    with pytest.raises(PoseFormatError, match="not annotated"):
        BehaviorLabels(["x"], ["a"], present, annotated, None, tmp_path / "l.csv")
    with pytest.raises(PoseFormatError, match="do not match"):
        BehaviorLabels(["x", "y"], ["a"], np.zeros((4, 1, 1), bool), annotated, None, tmp_path / "l.csv")


def test_to_bouts_without_fps_and_empty(tmp_path):
    labels = BehaviorLabels(["x"], ["a"], np.zeros((5, 1, 1), bool), np.ones((5, 1), bool), None,
                            tmp_path / "l")
    bouts = labels.to_bouts()
    assert list(bouts.columns) == ["individual", "behavior", "start_frame", "end_frame", "n_frames",
                                   "start_s", "end_s"]
    assert bouts.empty
    labels.present[1:3, 0, 0] = True
    b = labels.to_bouts()
    assert b[["start_frame", "end_frame", "n_frames"]].values.tolist() == [[1, 2, 2]]
    assert pd.isna(b["start_s"]).all()
