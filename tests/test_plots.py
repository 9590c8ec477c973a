"""Per-video figures (ethogram, time budget) and the labeled video."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from dlc_lookagain.errors import PoseFormatError
from dlc_lookagain.io import load_pose
from dlc_lookagain.io.annotations import (
    BehaviorPrediction,
    behaviors_table,
    bouts_table,
    read_behaviors,
    write_annotations,
)
from dlc_lookagain.io.labeled_video import LOOKED_COLOR_BGR, write_labeled_video
from dlc_lookagain.io.record import PoseRecord
from dlc_lookagain.plots import (
    BEHAVIOR_PALETTE,
    behavior_colors,
    plot_ethogram,
    plot_time_budget,
    time_budget,
    write_figures,
)

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "sample_project" / "videos"
SAMPLE_POSE = "sample_000DLC_dlcrnetms5_synthmiceMay06shuffle1_200000_el.h5"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DLC_NAME = "videoDLC_resnet50_xJan1shuffle1_100.h5"


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def hand_tables(
    n_frames=100, fps=10.0, bouts=(("m1", "A", 30, 59), ("m1", "B", 0, 99)), looked=(), untracked=()
):
    """A one-animal behaviors table with behaviors A, B and the given (inclusive) bouts."""
    frame = np.arange(n_frames)
    p = np.full((n_frames, 2), 0.1, dtype=np.float32)
    p[list(untracked)] = np.nan
    table = pd.DataFrame(
        {
            "frame": frame,
            "time_s": frame / fps if fps else np.full(n_frames, np.nan),
            "individual": "m1",
            "label": "none",
            "looked": np.isin(frame, list(looked)).astype(np.int8),
            "motif": -1,
            "p_A": p[:, 0],
            "p_B": p[:, 1],
        }
    )
    bt = pd.DataFrame(list(bouts), columns=["individual", "behavior", "start_frame", "end_frame"])
    return table, bt


def colour_mask(img_bgr: np.ndarray, hex_color: str, tol: int = 3) -> np.ndarray:
    h = hex_color.lstrip("#")
    rgb = np.array([int(h[k : k + 2], 16) for k in (0, 2, 4)])
    return (np.abs(img_bgr[..., ::-1].astype(int) - rgb) <= tol).all(axis=2)


def read_png(path: Path) -> np.ndarray:
    data = Path(path).read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path} is not a PNG"
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert img is not None, f"{path} cannot be decoded"
    return img


def written_outputs(folder: Path, n_frames=300, seed=0) -> dict:
    source = folder / DLC_NAME
    source.touch()  # only the name and folder are used by the writer
    rec = PoseRecord(
        np.zeros((n_frames, 2, 3, 2), np.float32), np.ones((n_frames, 2, 3), np.float32),
        ["mouse1", "mouse2"], ["nose", "tailbase", "back"], 30.0, source, source_format="dlc-h5",
    )
    rng = np.random.default_rng(seed)
    probs = np.repeat(rng.random((n_frames // 10, 2, 3)), 10, axis=0).astype(np.float32)
    probs[50:80, 1] = np.nan  # mouse2 not tracked for a second
    pred = BehaviorPrediction(["groom", "face groom", "rear"], probs, looked=rng.random(n_frames) < 0.25)
    return write_annotations(rec, pred)


# --------------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------------
def test_write_figures_beside_outputs_deterministic_and_protected(tmp_path):
    outputs = written_outputs(tmp_path)
    figs = write_figures(outputs)
    stem = DLC_NAME[: -len(".h5")]
    assert figs == {
        "ethogram": tmp_path / f"{stem}_ethogram.png",
        "time_budget": tmp_path / f"{stem}_time_budget.png",
    }
    first = {}
    for key, path in figs.items():
        img = read_png(path)
        h, w = img.shape[:2]
        assert 400 <= w <= 2500 and 150 <= h <= 2500, (key, img.shape)
        assert img.std() > 10, f"{key} looks blank"
        first[key] = path.read_bytes()

    with pytest.raises(FileExistsError, match="_ethogram.png"):
        write_figures(outputs)
    assert {k: p.read_bytes() for k, p in figs.items()} == first

    # Same inputs, same bytes (re-written over the old files, and from the CSV instead of the .h5).
    assert write_figures(outputs, overwrite=True) == figs
    assert {k: p.read_bytes() for k, p in figs.items()} == first
    csv_only = {"behaviors_csv": outputs["behaviors_csv"], "bouts_csv": outputs["bouts_csv"]}
    write_figures(csv_only, overwrite=True)
    assert {k: p.read_bytes() for k, p in figs.items()} == first
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_same_tables_give_identical_png_bytes(tmp_path):
    table, bt = hand_tables(looked=(3, 40, 41))
    a = plot_ethogram(table, bt, tmp_path / "a.png", title="t")
    b = plot_ethogram(table.copy(), bt.copy(), tmp_path / "b.png", title="t")
    assert a.read_bytes() == b.read_bytes()
    c = plot_time_budget(table, bt, tmp_path / "c.png")
    d = plot_time_budget(table, bt, tmp_path / "d.png")
    assert c.read_bytes() == d.read_bytes()
    # and a different bout gives different bytes (the check above is not vacuous)
    _, other = hand_tables(bouts=(("m1", "A", 31, 59), ("m1", "B", 0, 99)), looked=(3, 40, 41))
    e = plot_ethogram(table, other, tmp_path / "e.png", title="t")
    assert e.read_bytes() != a.read_bytes()


@pytest.mark.parametrize("fps", [10.0, None])
def test_ethogram_draws_a_known_bout_at_its_time(tmp_path, fps):
    # B covers the whole recording and so marks the time axis; A covers frames 30..59 = 30..60 %.
    table, bt = hand_tables(fps=fps)
    img = read_png(plot_ethogram(table, bt, tmp_path / "e.png"))
    colors = behavior_colors(["A", "B"])
    assert colors == {"A": BEHAVIOR_PALETTE[0], "B": BEHAVIOR_PALETTE[1]}
    a, b = colour_mask(img, colors["A"]), colour_mask(img, colors["B"])
    assert a.sum() > 500 and b.sum() > 500
    b_cols = np.flatnonzero(b.any(axis=0))
    x0, x1 = b_cols.min(), b_cols.max() + 1
    width = x1 - x0
    assert width > 600  # the panel spans most of the 1200 px figure
    a_cols = np.flatnonzero(a.any(axis=0))
    assert abs(a_cols.min() - (x0 + 0.30 * width)) <= 2
    assert abs(a_cols.max() + 1 - (x0 + 0.60 * width)) <= 2
    # A's row is above B's row (behaviors top to bottom in table order).
    assert np.flatnonzero(a.any(axis=1)).max() < np.flatnonzero(b.any(axis=1)).min()


def test_ethogram_marks_looked_frame_on_the_strip_and_untracked_time(tmp_path):
    table, bt = hand_tables()
    base = read_png(plot_ethogram(table, bt, tmp_path / "base.png", title="x"))
    looked_table, _ = hand_tables(looked=(80,))
    looked = read_png(plot_ethogram(looked_table, bt, tmp_path / "looked.png", title="x"))
    b = colour_mask(base, BEHAVIOR_PALETTE[1])
    b_cols = np.flatnonzero(b.any(axis=0))
    x0, width = b_cols.min(), b_cols.max() + 1 - b_cols.min()
    below = np.flatnonzero(b.any(axis=1)).max() + 1
    changed = (np.abs(base.astype(int) - looked.astype(int)).sum(axis=2) > 30)[below:]
    cols = np.flatnonzero(changed.any(axis=0))
    assert cols.size, "no tick drawn for the looked-at frame"
    assert np.all(np.abs(cols - (x0 + 0.805 * width)) <= 2), cols

    # Untracked frames 90..99 get the grey background; B (whose bout covers them) is still drawn.
    untracked_table, _ = hand_tables(untracked=range(90, 100))
    img = read_png(plot_ethogram(untracked_table, bt, tmp_path / "untracked.png"))
    grey_cols = np.flatnonzero(colour_mask(img, "#e3e3e3", tol=1).sum(axis=0) > 20)
    assert grey_cols.size
    assert abs(grey_cols.min() - (x0 + 0.9 * width)) <= 2


def test_time_budget_counts_tracked_frames_only(tmp_path):
    table, bt = hand_tables(untracked=range(90, 100))
    budget = time_budget(table, bt).set_index("behavior")
    assert budget.loc["A", "frames"] == 30 and budget.loc["B", "frames"] == 90
    assert budget.loc["A", "tracked_frames"] == 90
    assert budget.loc["A", "fraction"] == pytest.approx(30 / 90)
    assert budget.loc["B", "fraction"] == pytest.approx(1.0)
    assert budget.loc["A", "seconds"] == pytest.approx(3.0)
    img = read_png(plot_time_budget(table, bt, tmp_path / "tb.png"))
    a, b = colour_mask(img, BEHAVIOR_PALETTE[0]), colour_mask(img, BEHAVIOR_PALETTE[1])
    a_len = np.ptp(np.flatnonzero(a.any(axis=0)))
    b_len = np.ptp(np.flatnonzero(b.any(axis=0)))
    assert a_len / b_len == pytest.approx(1 / 3, abs=0.02)


def test_tables_missing_columns_or_from_another_run_fail_clearly(tmp_path):
    table, bt = hand_tables()
    with pytest.raises(PoseFormatError, match=r"lacks column\(s\) \['looked'\]"):
        plot_ethogram(table.drop(columns="looked"), bt, tmp_path / "x.png")
    with pytest.raises(PoseFormatError, match=r"bouts table.*lacks column\(s\) \['end_frame'\]"):
        plot_time_budget(table, bt.drop(columns="end_frame"), tmp_path / "x.png")
    with pytest.raises(PoseFormatError, match="no probability column"):
        plot_ethogram(table.drop(columns=["p_A", "p_B"]), bt, tmp_path / "x.png")
    stray = pd.concat([bt, pd.DataFrame([("m1", "C", 1, 2)], columns=bt.columns)])
    with pytest.raises(PoseFormatError, match=r"behavior\(s\) \['C'\]"):
        plot_ethogram(table, stray, tmp_path / "x.png")
    late = pd.DataFrame([("m1", "A", 90, 120)], columns=bt.columns)
    with pytest.raises(PoseFormatError, match="outside"):
        plot_ethogram(table, late, tmp_path / "x.png")
    # From files, the error names the file.
    bad_csv = tmp_path / "rec_behaviors.csv"
    table.drop(columns="looked").to_csv(bad_csv, index=False)
    with pytest.raises(PoseFormatError, match="rec_behaviors.csv"):
        plot_ethogram(bad_csv, bt, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_plot_refuses_to_overwrite_and_wants_png(tmp_path):
    table, bt = hand_tables()
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"my own figure")
    with pytest.raises(FileExistsError, match="mine.png"):
        plot_ethogram(table, bt, mine)
    with pytest.raises(FileExistsError, match="mine.png"):
        plot_time_budget(table, bt, mine)
    assert mine.read_bytes() == b"my own figure"
    plot_ethogram(table, bt, mine, overwrite=True)
    assert mine.read_bytes()[:8] == PNG_SIGNATURE
    with pytest.raises(ValueError, match=r"\.png"):
        plot_ethogram(table, bt, tmp_path / "e.pdf")


def test_write_figures_leaves_nothing_when_one_figure_exists(tmp_path):
    outputs = written_outputs(tmp_path)
    stem = DLC_NAME[: -len(".h5")]
    budget = tmp_path / f"{stem}_time_budget.png"
    budget.write_bytes(b"keep")
    with pytest.raises(FileExistsError, match="_time_budget.png"):
        write_figures(outputs)
    assert not (tmp_path / f"{stem}_ethogram.png").exists()
    assert budget.read_bytes() == b"keep"


# --------------------------------------------------------------------------------------------
# labeled video
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def sample_record(tmp_path_factory):
    """sample_000 (480x360, 600 frames, 2 mice) copied to a temporary folder."""
    folder = tmp_path_factory.mktemp("labeled")
    shutil.copy(SAMPLE / SAMPLE_POSE, folder / SAMPLE_POSE)
    shutil.copy(SAMPLE / "sample_000.mp4", folder / "sample_000.mp4")
    return load_pose(folder / SAMPLE_POSE)


def sample_prediction(record: PoseRecord) -> BehaviorPrediction:
    rng = np.random.default_rng(1)
    probs = np.repeat(rng.random((record.n_frames // 15, 2, 3)), 15, axis=0).astype(np.float32)
    looked = np.arange(record.n_frames) % 3 == 0
    return BehaviorPrediction(["walk", "groom", "rear"], probs, looked=looked)


def decode(path: Path) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def test_labeled_video_clip_has_frames_and_drawings(sample_record, tmp_path):
    rec = sample_record
    pred = sample_prediction(rec)
    table, bt = behaviors_table(rec, pred), bouts_table(rec, pred)
    start, stop = 100, 124
    out = write_labeled_video(
        rec, table, tmp_path / "clip.mp4", bouts=bt, start=start, stop=stop, progress=False
    )
    assert out == tmp_path / "clip.mp4"
    frames = decode(out)
    assert len(frames) == stop - start
    assert frames[0].shape == (360, 480, 3)
    source = decode(rec.video_path)[start:stop]
    kp = rec.keypoints_in_video_pixels()
    n_checked = 0
    for k, (drawn, orig) in enumerate(zip(frames, source)):
        diff = np.abs(drawn.astype(int) - orig.astype(int)).sum(axis=2)
        # Most of the frame is the recording (H.264 noise only) ...
        assert np.median(diff) < 10
        # ... but every visible keypoint has a dot drawn on it.
        xy = kp[start + k].reshape(-1, 2)
        xy = np.round(xy[~np.isnan(xy).any(axis=1)]).astype(int)
        inside = (xy[:, 0] >= 2) & (xy[:, 0] < 478) & (xy[:, 1] >= 2) & (xy[:, 1] < 358)
        for x, y in xy[inside]:
            assert diff[y - 1 : y + 2, x - 1 : x + 2].mean() > 60, (start + k, x, y)
            n_checked += 1
        # The looked marker (top-right) is shown exactly on looked-at frames (every third).
        corner = drawn[:24, -24:].astype(int)
        yellow = (np.abs(corner - np.array(LOOKED_COLOR_BGR)) < 60).all(axis=2).sum()
        if pred.looked[start + k]:
            assert yellow > 20, start + k
        else:
            assert yellow == 0, start + k
    assert n_checked > 100


def test_labeled_video_reads_the_written_files_and_matches_the_prediction(sample_record, tmp_path):
    rec = sample_record
    # Thresholds the CSV does not store: only the bouts file beside it gives the written flags.
    base = sample_prediction(rec)
    pred = BehaviorPrediction(base.behaviors, base.probabilities, thresholds=0.3, looked=base.looked)
    outputs = write_annotations(rec, pred, destfolder=tmp_path)
    a = write_labeled_video(rec, outputs["behaviors_csv"], tmp_path / "a.mp4", stop=6, progress=False)
    b = write_labeled_video(rec, pred, tmp_path / "b.mp4", stop=6, progress=False)
    fa, fb = decode(a), decode(b)
    assert len(fa) == len(fb) == 6
    # Same flags from the files (bouts beside the table) as from the prediction itself.
    assert max(np.abs(x.astype(int) - y.astype(int)).max() for x, y in zip(fa, fb)) == 0
    # Without the bouts, presence is recomputed at the default 0.5 and the labels change.
    table = read_behaviors(outputs["behaviors_csv"])
    table.attrs.pop("path")
    c = write_labeled_video(rec, table, tmp_path / "c.mp4", stop=6, progress=False)
    assert max(np.abs(x.astype(int) - y.astype(int)).max() for x, y in zip(decode(c), fb)) > 100


def test_labeled_video_errors(sample_record, tmp_path, monkeypatch):
    rec = sample_record
    pred = sample_prediction(rec)
    with pytest.raises(PoseFormatError, match="no video is attached"):
        write_labeled_video(dataclasses.replace(rec, video_path=None), pred, tmp_path / "x.mp4")
    with pytest.raises(FileNotFoundError, match="gone.mp4"):
        moved = dataclasses.replace(rec, video_path=tmp_path / "gone.mp4")
        write_labeled_video(moved, pred, tmp_path / "x.mp4")
    with pytest.raises(ValueError, match="stop"):
        write_labeled_video(rec, pred, tmp_path / "x.mp4", start=10, stop=601, progress=False)
    with pytest.raises(ValueError, match=r"\.mp4"):
        write_labeled_video(rec, pred, tmp_path / "x.avi", progress=False)
    other = BehaviorPrediction(["walk"], np.zeros((rec.n_frames, 1, 1), np.float32))
    with pytest.raises(PoseFormatError, match="shape"):
        write_labeled_video(rec, other, tmp_path / "x.mp4", progress=False)
    before = rec.video_path.read_bytes()
    with pytest.raises(PoseFormatError, match="own video"):
        write_labeled_video(rec, pred, rec.video_path, overwrite=True, progress=False)
    assert rec.video_path.read_bytes() == before
    mine = tmp_path / "mine.mp4"
    mine.write_bytes(b"keep")
    with pytest.raises(FileExistsError, match="mine.mp4"):
        write_labeled_video(rec, pred, mine, progress=False)
    assert mine.read_bytes() == b"keep"

    # A failure half-way leaves neither the output nor temporary files.
    from dlc_lookagain.io import labeled_video

    calls = {"n": 0}
    real_draw = labeled_video._Painter.draw

    def failing_draw(self, img, t):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("boom")
        real_draw(self, img, t)

    monkeypatch.setattr(labeled_video._Painter, "draw", failing_draw)
    with pytest.raises(RuntimeError, match="boom"):
        write_labeled_video(rec, pred, tmp_path / "half.mp4", stop=10, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.mp4"]
