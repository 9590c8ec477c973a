"""Writing behavior predictions beside the pose files and reading them back."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dlc_lookagain
from dlc_lookagain.errors import PoseFormatError
from dlc_lookagain.io.annotations import (
    BEHAVIOR_COLUMNS,
    BOUT_COLUMNS,
    BehaviorPrediction,
    bouts_from_mask,
    prediction_from_table,
    read_behaviors,
    read_bouts,
    write_annotations,
)
from dlc_lookagain.io.record import PoseRecord

DLC_NAME = "videoDLC_resnet50_xJan1shuffle1_100.h5"
STEM = DLC_NAME[: -len(".h5")]
BEHAVIORS = ["groom", "face groom", "rear"]  # "face groom" -> column "p_face groom"
SLEAP_EXAMPLE = Path("sleap/docs/notebooks/analysis_example/predictions.slp")


def make_record(
    folder: Path, n_frames=300, individuals=("mouse1", "mouse2"), fps=30.0, name=DLC_NAME, fmt="dlc-h5"
):
    source = folder / name
    if not source.exists():
        source.touch()  # placeholder: the writers only use its name and folder
    n_ind = len(individuals)
    return PoseRecord(
        keypoints=np.zeros((n_frames, n_ind, 3, 2), dtype=np.float32),
        confidence=np.ones((n_frames, n_ind, 3), dtype=np.float32),
        individuals=list(individuals),
        bodyparts=["nose", "tailbase", "back"],
        fps=fps,
        source=source,
        source_format=fmt,
    )


def make_prediction(n_frames=300, n_ind=2, behaviors=BEHAVIORS, seed=0, thresholds=(0.5, 0.3, 0.7)):
    rng = np.random.default_rng(seed)
    return BehaviorPrediction(
        behaviors=list(behaviors),
        probabilities=rng.random((n_frames, n_ind, len(behaviors))).astype(np.float32),
        thresholds=np.asarray(thresholds[: len(behaviors)]),
        looked=rng.random(n_frames) < 0.2,
        motif=rng.integers(-1, 5, size=(n_frames, n_ind)),
    )


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def expected_bouts(pred: BehaviorPrediction, individuals, min_frames=1):
    return {
        (ind, beh): bouts_from_mask(pred.present[:, i, c], min_frames)
        for i, ind in enumerate(individuals)
        for c, beh in enumerate(pred.behaviors)
    }


def bouts_by_key(bouts: pd.DataFrame, individuals, behaviors):
    got = {(i, b): [] for i in individuals for b in behaviors}
    for row in bouts.itertuples(index=False):
        got[(row.individual, row.behavior)].append((row.start_frame, row.end_frame))
    return got


# --------------------------------------------------------------------------- bouts_from_mask


def test_bouts_from_mask_hand_cases():
    assert bouts_from_mask(np.zeros(5, bool)) == []
    assert bouts_from_mask(np.ones(4, bool)) == [(0, 3)]
    assert bouts_from_mask([1, 1, 0, 1, 0, 0, 1, 1, 1]) == [(0, 1), (3, 3), (6, 8)]
    assert bouts_from_mask([1, 1, 0, 1, 0, 0, 1, 1, 1], min_frames=2) == [(0, 1), (6, 8)]
    assert bouts_from_mask([1, 1, 0, 1, 0, 0, 1, 1, 1], min_frames=3) == [(6, 8)]
    assert bouts_from_mask(np.zeros(0, bool)) == []
    assert all(isinstance(v, int) for v in bouts_from_mask([0, 1, 1])[0])


def test_bouts_from_mask_matches_loop():
    mask = np.random.default_rng(3).random(1000) < 0.6
    runs, start = [], None
    for t, on in enumerate(mask):
        if on and start is None:
            start = t
        if not on and start is not None:
            runs.append((start, t - 1))
            start = None
    if start is not None:
        runs.append((start, len(mask) - 1))
    assert bouts_from_mask(mask) == runs
    assert bouts_from_mask(mask, 4) == [r for r in runs if r[1] - r[0] + 1 >= 4]


def test_bouts_from_mask_rejects_bad_input():
    with pytest.raises(ValueError, match="1-D"):
        bouts_from_mask(np.zeros((3, 2), bool))
    with pytest.raises(ValueError, match="min_frames"):
        bouts_from_mask([1, 0], min_frames=0)
    with pytest.raises(ValueError, match="boolean"):
        bouts_from_mask([0, 2, 1])


# --------------------------------------------------------------------------- writers + readers


def test_writes_expected_files_and_columns(tmp_path):
    rec = make_record(tmp_path)
    pred = make_prediction()
    out = write_annotations(rec, pred)
    assert out == {
        "behaviors_csv": tmp_path / f"{STEM}_behaviors.csv",
        "behaviors_h5": tmp_path / f"{STEM}_behaviors.h5",
        "bouts_csv": tmp_path / f"{STEM}_bouts.csv",
    }
    assert all(p.is_file() for p in out.values())
    # No temporary files left beside the outputs.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([DLC_NAME, *(p.name for p in out.values())])

    header = out["behaviors_csv"].read_text(encoding="utf-8").splitlines()[0]
    assert header == "frame,time_s,individual,label,looked,motif,p_groom,p_face groom,p_rear"
    assert out["bouts_csv"].read_text().splitlines()[0] == ",".join(BOUT_COLUMNS)
    # String columns are pickled in 1 MB chunks by pandas' fixed format; compression keeps that small.
    assert out["behaviors_h5"].stat().st_size < 500_000

    for path in (out["behaviors_csv"], out["behaviors_h5"]):
        df = read_behaviors(path)
        assert list(df.columns) == [*BEHAVIOR_COLUMNS, "p_groom", "p_face groom", "p_rear"]
        assert len(df) == 300 * 2
        # Rows: frame-major, individuals in record order.
        assert df["frame"].tolist()[:4] == [0, 0, 1, 1]
        assert df["individual"].tolist()[:4] == ["mouse1", "mouse2", "mouse1", "mouse2"]
        np.testing.assert_allclose(df["time_s"].to_numpy(), df["frame"].to_numpy() / 30.0, atol=1e-6, rtol=0)
        np.testing.assert_array_equal(df["looked"].to_numpy(), np.repeat(pred.looked, 2).astype(np.int8))


def test_round_trip_h5_exact(tmp_path):
    rec = make_record(tmp_path)
    pred = make_prediction()
    out = write_annotations(rec, pred)
    df = read_behaviors(out["behaviors_h5"])
    assert df.attrs["version"] == dlc_lookagain.__version__
    assert df.attrs["behaviors"] == BEHAVIORS
    assert df.attrs["thresholds"] == [0.5, 0.3, 0.7]
    assert df.attrs["fps"] == 30.0
    assert df.attrs["source"] == str(rec.source)

    back = prediction_from_table(df)  # thresholds come from the h5 metadata
    assert back.behaviors == BEHAVIORS
    np.testing.assert_array_equal(back.probabilities, pred.probabilities)
    np.testing.assert_array_equal(back.thresholds, pred.thresholds)
    np.testing.assert_array_equal(back.present, pred.present)
    np.testing.assert_array_equal(back.looked, pred.looked_per_individual)
    np.testing.assert_array_equal(back.motif, pred.motif)
    assert back.labels().tolist() == pred.labels().tolist()

    h5_bouts = read_bouts(out["behaviors_h5"])
    assert bouts_by_key(h5_bouts, rec.individuals, BEHAVIORS) == expected_bouts(pred, rec.individuals)


def test_round_trip_csv(tmp_path):
    rec = make_record(tmp_path)
    pred = make_prediction()
    out = write_annotations(rec, pred)
    df = read_behaviors(out["behaviors_csv"])
    bouts = read_bouts(out["bouts_csv"])
    back = prediction_from_table(df, bouts=bouts, thresholds=pred.thresholds)
    np.testing.assert_allclose(back.probabilities, pred.probabilities, atol=1e-4, rtol=0)
    assert np.abs(back.probabilities - pred.probabilities).max() > 0  # the CSV really is rounded
    np.testing.assert_array_equal(back.present, pred.present)  # exact, through the bouts
    np.testing.assert_array_equal(back.looked, pred.looked_per_individual)
    np.testing.assert_array_equal(back.motif, pred.motif)


def test_bouts_table_contents(tmp_path):
    rec = make_record(tmp_path)
    pred = make_prediction()
    out = write_annotations(rec, pred, min_bout_frames=3)
    bouts = read_bouts(out["bouts_csv"])
    want = expected_bouts(pred, rec.individuals, min_frames=3)
    assert bouts_by_key(bouts, rec.individuals, BEHAVIORS) == want
    assert len(bouts) == sum(len(v) for v in want.values()) > 0
    assert (bouts["n_frames"] >= 3).all()
    # Overlapping bouts of different behaviors are all kept.
    all_runs = expected_bouts(pred, rec.individuals, min_frames=1)
    assert sum(len(v) for v in all_runs.values()) > len(bouts)

    np.testing.assert_array_equal(bouts["n_frames"], bouts["end_frame"] - bouts["start_frame"] + 1)
    np.testing.assert_allclose(bouts["start_s"], bouts["start_frame"] / 30.0, atol=1e-6)
    np.testing.assert_allclose(bouts["end_s"], (bouts["end_frame"] + 1) / 30.0, atol=1e-6)
    np.testing.assert_allclose(bouts["duration_s"], bouts["n_frames"] / 30.0, atol=1e-6)
    ind = {n: i for i, n in enumerate(rec.individuals)}
    beh = {n: c for c, n in enumerate(BEHAVIORS)}
    for row in bouts.itertuples(index=False):
        seg = pred.probabilities[row.start_frame : row.end_frame + 1, ind[row.individual], beh[row.behavior]]
        assert row.mean_probability == pytest.approx(float(seg.astype(np.float64).mean()), abs=1e-4)


def test_label_column_on_hand_made_rows(tmp_path):
    rec = make_record(tmp_path, n_frames=5, individuals=("a",))
    probs = np.array(
        [
            [0.1, 0.2, 0.3],  # nothing present -> none
            [0.9, 0.6, 0.1],  # two present -> the more probable
            [0.2, 0.8, 0.95],  # rear most probable but not present (threshold 0.97)
            [0.7, 0.7, 0.0],  # tie -> first listed
            [0.6, 0.9, 0.99],  # all present -> rear
        ],
        dtype=np.float32,
    )[:, None, :]
    pred = BehaviorPrediction(BEHAVIORS, probs, thresholds=[0.5, 0.5, 0.97])
    out = write_annotations(rec, pred)
    for path in (out["behaviors_csv"], out["behaviors_h5"]):
        assert read_behaviors(path)["label"].tolist() == ["none", "groom", "face groom", "groom", "rear"]
    # An explicit present array wins over the thresholds.
    present = np.zeros_like(probs, dtype=bool)
    present[:, 0, 2] = True
    pred2 = BehaviorPrediction(BEHAVIORS, probs, present=present)
    assert pred2.labels()[:, 0].tolist() == ["rear"] * 5


def test_csv_outputs_are_byte_identical(tmp_path):
    rec = make_record(tmp_path)
    out = write_annotations(rec, make_prediction())
    first = {k: out[k].read_bytes() for k in ("behaviors_csv", "bouts_csv")}
    write_annotations(rec, make_prediction(), overwrite=True)
    for key, data in first.items():
        assert out[key].read_bytes() == data, key


def test_overwrite_false_raises_and_keeps_files(tmp_path):
    rec = make_record(tmp_path)
    out = write_annotations(rec, make_prediction(seed=1))
    before = {p: sha(p) for p in out.values()}
    with pytest.raises(FileExistsError, match="_behaviors.csv"):
        write_annotations(rec, make_prediction(seed=2))
    assert {p: sha(p) for p in out.values()} == before

    # One existing output is enough to refuse, and nothing else gets written.
    out["behaviors_csv"].unlink()
    out["behaviors_h5"].unlink()
    with pytest.raises(FileExistsError, match="_bouts.csv") as err:
        write_annotations(rec, make_prediction(seed=2))
    assert "_behaviors.csv" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([DLC_NAME, out["bouts_csv"].name])

    write_annotations(rec, make_prediction(seed=2), overwrite=True)
    assert sha(out["bouts_csv"]) != before[out["bouts_csv"]]


def test_failure_inside_writer_leaves_nothing(tmp_path, monkeypatch):
    rec = make_record(tmp_path)

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(pd.HDFStore, "put", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_annotations(rec, make_prediction())
    assert [p.name for p in tmp_path.iterdir()] == [DLC_NAME]
    monkeypatch.undo()

    # A failure in the last file written keeps earlier outputs as they were.
    out = write_annotations(rec, make_prediction(seed=5))
    before = {p: sha(p) for p in out.values()}
    real_to_csv = pd.DataFrame.to_csv
    calls = []

    def fail_second(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("quota")
        return real_to_csv(self, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_csv", fail_second)
    with pytest.raises(OSError, match="quota"):
        write_annotations(rec, make_prediction(seed=6), overwrite=True)
    assert {p: sha(p) for p in out.values()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([DLC_NAME, *(p.name for p in out.values())])


def test_sleap_analysis_h5_source_gets_tables_only(tmp_path):
    rec = make_record(tmp_path, name="session1.analysis.h5", fmt="sleap-analysis-h5")
    out = write_annotations(rec, make_prediction())
    assert sorted(out) == ["behaviors_csv", "behaviors_h5", "bouts_csv"]
    assert out["behaviors_csv"].name == "session1.analysis_behaviors.csv"


def test_destfolder(tmp_path):
    rec = make_record(tmp_path)
    dest = tmp_path / "out" / "nested"
    out = write_annotations(rec, make_prediction(), destfolder=dest)
    assert all(p.parent == dest and p.is_file() for p in out.values())
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == [DLC_NAME]


# --------------------------------------------------------------------------- edge cases


def test_fps_unknown(tmp_path):
    rec = make_record(tmp_path, fps=None)
    pred = make_prediction()
    out = write_annotations(rec, pred)
    for path in (out["behaviors_csv"], out["behaviors_h5"]):
        df = read_behaviors(path)
        assert df["time_s"].isna().all()
    line = out["behaviors_csv"].read_text().splitlines()[1]
    assert line.split(",")[:2] == ["0", ""]
    bouts = read_bouts(out["bouts_csv"])
    assert len(bouts) > 0
    assert bouts[["start_s", "end_s", "duration_s"]].isna().all().all()
    assert read_behaviors(out["behaviors_h5"]).attrs["fps"] is None


def test_one_individual_and_behavior_never_present(tmp_path):
    rec = make_record(tmp_path, individuals=("solo",))
    probs = np.random.default_rng(7).random((300, 1, 3)).astype(np.float32)
    probs[:, :, 2] *= 0.4  # "rear" stays below its threshold
    pred = BehaviorPrediction(BEHAVIORS, probs, thresholds=0.5)
    out = write_annotations(rec, pred)
    df = read_behaviors(out["behaviors_csv"])
    assert len(df) == 300 and set(df["individual"]) == {"solo"}
    assert "p_rear" in df.columns and "rear" not in set(df["label"])
    bouts = read_bouts(out["bouts_csv"])
    assert "rear" not in set(bouts["behavior"]) and len(bouts) > 0
    back = prediction_from_table(read_behaviors(out["behaviors_h5"]))
    assert back.behaviors == BEHAVIORS and not back.present[:, :, 2].any()
    np.testing.assert_array_equal(back.present, pred.present)


def test_no_bouts_at_all(tmp_path):
    rec = make_record(tmp_path, n_frames=20)
    pred = BehaviorPrediction(["walk"], np.zeros((20, 2, 1), np.float32))
    out = write_annotations(rec, pred)
    for path in (out["bouts_csv"], out["behaviors_h5"]):
        bouts = read_bouts(path)
        assert len(bouts) == 0 and list(bouts.columns) == list(BOUT_COLUMNS)
    assert set(read_behaviors(out["behaviors_csv"])["label"]) == {"none"}


def test_odd_individual_names_stay_strings(tmp_path):
    rec = make_record(tmp_path, individuals=("1", "NA"))
    out = write_annotations(rec, make_prediction())
    df = read_behaviors(out["behaviors_csv"])
    assert df["individual"].tolist()[:2] == ["1", "NA"]
    assert prediction_from_table(df).probabilities.shape == (300, 2, 3)
    assert set(read_bouts(out["bouts_csv"])["individual"]) == {"1", "NA"}


def test_nan_probabilities_are_not_present(tmp_path):
    rec = make_record(tmp_path, n_frames=10)
    probs = np.full((10, 2, 1), 0.9, np.float32)
    probs[3:5, 1, 0] = np.nan  # individual not tracked there
    pred = BehaviorPrediction(["walk"], probs)
    assert not pred.present[3:5, 1, 0].any()
    out = write_annotations(rec, pred)
    back = prediction_from_table(read_behaviors(out["behaviors_h5"]))
    np.testing.assert_array_equal(np.isnan(back.probabilities), np.isnan(probs))
    assert bouts_by_key(read_bouts(out["bouts_csv"]), rec.individuals, ["walk"])[("mouse2", "walk")] == [
        (0, 2),
        (5, 9),
    ]


def test_mismatched_shapes_give_clear_errors(tmp_path):
    rec = make_record(tmp_path)
    with pytest.raises(PoseFormatError, match=r"\(299, 2, 3\).*300 frames x 2 individuals"):
        write_annotations(rec, make_prediction(n_frames=299))
    with pytest.raises(PoseFormatError, match=r"\(300, 3, 3\)"):
        write_annotations(rec, make_prediction(n_ind=3))
    assert [p.name for p in tmp_path.iterdir()] == [DLC_NAME]

    probs = np.zeros((10, 2, 3), np.float32)
    with pytest.raises(ValueError, match=r"probabilities shape \(10, 2, 3\) has 3 behavior columns but 2"):
        BehaviorPrediction(["a", "b"], probs)
    with pytest.raises(ValueError, match=r"present shape \(10, 2\) does not match .* \(10, 2, 3\)"):
        BehaviorPrediction(BEHAVIORS, probs, present=np.zeros((10, 2), bool))
    with pytest.raises(ValueError, match=r"looked shape \(9,\)"):
        BehaviorPrediction(BEHAVIORS, probs, looked=np.zeros(9, bool))
    with pytest.raises(ValueError, match=r"motif shape \(10,\)"):
        BehaviorPrediction(BEHAVIORS, probs, motif=np.zeros(10, int))
    with pytest.raises(ValueError, match=r"thresholds shape \(2,\)"):
        BehaviorPrediction(BEHAVIORS, probs, thresholds=[0.5, 0.5])
    with pytest.raises(ValueError, match=r"got shape \(10, 6\)"):
        BehaviorPrediction(BEHAVIORS, probs.reshape(10, 6))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        BehaviorPrediction(BEHAVIORS, probs + 1.5)
    with pytest.raises(ValueError, match="motif ids"):
        BehaviorPrediction(BEHAVIORS, probs, motif=np.full((10, 2), -2))
    # looked may be per frame or per frame and individual
    assert BehaviorPrediction(BEHAVIORS, probs, looked=np.ones((10, 2), bool)).looked.shape == (10, 2)


@pytest.mark.parametrize(
    "names", [["none", "b"], ["a", "a"], [" a", "b"], ["a\nb", "c"], ["", "b"], [1, "b"]]
)
def test_unusable_behavior_names(names):
    with pytest.raises(ValueError, match="behavior"):
        BehaviorPrediction(names, np.zeros((3, 1, 2), np.float32))


def test_readers_reject_foreign_tables(tmp_path):
    bad = tmp_path / "x_behaviors.csv"
    pd.DataFrame({"frame": [0], "individual": ["a"], "p_x": [0.1]}).to_csv(bad, index=False)
    missing = r"missing column\(s\) \['time_s', 'label', 'looked', 'motif'\]"
    with pytest.raises(PoseFormatError, match=missing):
        read_behaviors(bad)
    no_p = tmp_path / "y_behaviors.csv"
    pd.DataFrame({c: [0] for c in BEHAVIOR_COLUMNS}).to_csv(no_p, index=False)
    with pytest.raises(PoseFormatError, match="no probability columns"):
        read_behaviors(no_p)
    with pytest.raises(PoseFormatError, match="expected a .csv or .h5"):
        (tmp_path / "z.txt").write_text("x")
        read_behaviors(tmp_path / "z.txt")

    rec = make_record(tmp_path)
    out = write_annotations(rec, make_prediction())
    with pytest.raises(PoseFormatError, match="not a bouts table"):
        read_bouts(out["behaviors_csv"])
    df = read_behaviors(out["behaviors_csv"])
    with pytest.raises(PoseFormatError, match="each \\(frame, individual\\) once"):
        prediction_from_table(df.iloc[:-1])
    with pytest.raises(PoseFormatError, match="not in the table \\['mouse3'\\]"):
        prediction_from_table(df, individuals=["mouse1", "mouse3"])
    # Reordering individuals is allowed.
    back = prediction_from_table(df, individuals=["mouse2", "mouse1"])
    np.testing.assert_allclose(back.probabilities[:, 0], make_prediction().probabilities[:, 1], atol=1e-4)


# --------------------------------------------------------------------------- SLEAP


def _sleap_prediction(n_frames, n_ind, seed=11):
    """Piecewise-constant probabilities: a few dozen bouts instead of thousands."""
    rng = np.random.default_rng(seed)
    levels = rng.random((n_frames // 50 + 1, n_ind, 3))
    probs = np.repeat(levels, 50, axis=0)[:n_frames] + rng.normal(0, 0.02, (n_frames, n_ind, 3))
    probs = np.clip(probs, 0, 1).astype(np.float32)
    probs[:, :, 2] = np.minimum(probs[:, :, 2], 0.3)  # "rear" is never present
    return BehaviorPrediction(BEHAVIORS, probs, thresholds=0.5)


@pytest.mark.shared
def test_sleap_slp_copy_with_events(shared, tmp_path):
    sio = pytest.importorskip("sleap_io")
    src = tmp_path / "predictions.slp"
    shutil.copyfile(shared / SLEAP_EXAMPLE, src)
    original_hash = sha(src)
    labels = sio.load_slp(str(src), open_videos=False)
    tracks = [t.name for t in labels.tracks]
    n_frames = max(lf.frame_idx for lf in labels.labeled_frames) + 1
    assert tracks == ["track_0", "track_1"] and n_frames == 3000

    rec = make_record(
        tmp_path, n_frames=n_frames, individuals=tracks, fps=25.0, name=src.name, fmt="sleap-slp"
    )
    pred = _sleap_prediction(n_frames, len(tracks))
    out = write_annotations(rec, pred, min_bout_frames=2)
    assert out["slp"] == tmp_path / "predictions.behaviors.slp"
    assert out["behaviors_csv"] == tmp_path / "predictions_behaviors.csv"
    assert sha(src) == original_hash

    copy = sio.load_slp(str(out["slp"]), open_videos=False)
    np.testing.assert_array_equal(copy.numpy(), labels.numpy())  # pose data copied unchanged
    assert [et.name for et in copy.event_types] == BEHAVIORS  # catalog lists the never-present one too
    bouts = read_bouts(out["behaviors_h5"])
    assert 10 < len(copy.events) == len(bouts)
    want = expected_bouts(pred, tracks, min_frames=2)
    got = {key: [] for key in want}
    ind = {n: i for i, n in enumerate(tracks)}
    mean = {(r.individual, r.behavior, r.start_frame): r.mean_probability for r in bouts.itertuples()}
    for ev in copy.events:
        assert isinstance(ev, sio.PredictedEvent)
        assert ev.source == "dlc_lookagain"
        assert ev.video is copy.videos[0]
        assert isinstance(ev.subject, sio.Track) and ev.subject.name == ev.metadata["individual"]
        key = (ev.subject.name, ev.type.name)
        got[key].append((ev.start_frame, ev.end_frame))  # both inclusive
        assert ev.score == pytest.approx(mean[(*key, ev.start_frame)], abs=1e-12)
        c = BEHAVIORS.index(ev.type.name)
        expected_trace = pred.probabilities[ev.start_frame : ev.end_frame + 1, ind[ev.subject.name], c]
        np.testing.assert_array_equal(ev.scores, expected_trace)
        assert pred.present[ev.start_frame : ev.end_frame + 1, ind[ev.subject.name], c].all()
    assert {k: sorted(v) for k, v in got.items()} == want
    assert want[("track_0", "rear")] == []

    # Run on the annotated copy: the earlier predictions are replaced, not doubled.
    rec2 = make_record(
        tmp_path, n_frames=n_frames, individuals=tracks, fps=25.0, name=out["slp"].name, fmt="sleap-slp"
    )
    out2 = write_annotations(rec2, pred, min_bout_frames=2)
    assert out2["slp"].name == "predictions.behaviors.behaviors.slp"
    again = sio.load_slp(str(out2["slp"]), open_videos=False)
    assert len(again.events) == len(bouts)
    assert [et.name for et in again.event_types] == BEHAVIORS
    out2["slp"].unlink()

    # Not written again without overwrite; the .slp output counts too.
    for p in out.values():
        if p.name != "predictions.behaviors.slp":
            p.unlink()
    with pytest.raises(FileExistsError, match="predictions.behaviors.slp"):
        write_annotations(rec, pred)
    assert sha(src) == original_hash


@pytest.mark.shared
def test_sleap_untracked_individuals_and_destfolder(shared, tmp_path):
    sio = pytest.importorskip("sleap_io")
    src_dir = tmp_path / "project"
    src_dir.mkdir()
    src = src_dir / "predictions.slp"
    shutil.copyfile(shared / SLEAP_EXAMPLE, src)
    video = src_dir / "20190128_113421.120s.mp4"  # the file's (relative) video name
    video.touch()
    original_hash = sha(src)
    rec = make_record(src_dir, n_frames=3000, individuals=["fly_a"], fps=25.0, name=src.name, fmt="sleap-slp")
    pred = _sleap_prediction(3000, 1, seed=12)
    dest = tmp_path / "elsewhere"

    out = write_annotations(rec, pred, destfolder=dest, write_slp=False)
    assert "slp" not in out and not (dest / "predictions.behaviors.slp").exists()

    out = write_annotations(rec, pred, destfolder=dest, overwrite=True)
    assert out["slp"] == dest / "predictions.behaviors.slp"
    assert sha(src) == original_hash
    copy = sio.load_slp(str(out["slp"]), open_videos=False)
    assert len(copy.events) == len(read_bouts(out["bouts_csv"])) > 0
    assert all(ev.subject is None and ev.metadata["individual"] == "fly_a" for ev in copy.events)
    # The copy lives in another folder, so its relative video path was made absolute.
    assert Path(copy.videos[0].filename).resolve() == video.resolve()
