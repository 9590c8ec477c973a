"""Tests for dlc_lookagain.io.dlc: DLC tables, output names and choosing among outputs.

Expected values are read independently of the reader: CSV cells with the ``csv`` module,
HDF5 cells with ``pandas.read_hdf`` on one column, so a reader bug cannot hide in both.
"""

from __future__ import annotations

import csv
import logging
import math
import pickle
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from dlc_lookagain.errors import PoseFormatError
from dlc_lookagain.io.dlc import choose_dlc_output, parse_dlc_output_name, read_dlc

pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.PerformanceWarning")

OPENFIELD = "ethome/ethome/data/dlc/openfield/openfield_dlc_inference_example.csv"
OPENFIELD_MISSING = "ethome/ethome/data/dlc/openfield/openfield_dlc_inference_example_missingdata.csv"
ETHOME_2MICE = (
    "ethome/tests/data/dlc/"
    "e3v813a-20210610T122332-122642DLC_dlcrnetms5_pilot_studySep24shuffle1_100000_el_filtered.csv"
)
BEHAVIORDEPOT = "behaviordepot/demo/demo1/demo1_tracking.csv"
VAME = "vame/tests/tests_project_sample_data/cropped_video.csv"
DEEPOF = "deepof/tests/test_examples"
GOLDEN = (
    "deeplabcut/examples/golden_mouse-shaokai-2022-10-19/videos/"
    "golden_mouseDLC_dlcrnetms5_golden_mouseOct19shuffle1_2000.h5"
)
MULTI_MOUSE = (
    "deeplabcut/examples/multi_mouse-dlc_team-2022-04-12/videos/"
    "m3v1mp4shortDLC_effnet_b0_multi_mouseApr12shuffle1_5"
)
MONTBLANC = "deeplabcut/tests/data/montblanc_tracks.h5"
TRIMOUSE = "deeplabcut/tests/data/trimouse_calib.h5"
REACHING = "dlc-label-editor/SampleData/reachingvideo1DLC_resnet50_ReachingAug30shuffle1_200000.h5"
COLLECTED_DATA = [
    "deeplabcut/examples/openfield-Pranav-2018-10-30/labeled-data/m4s1/CollectedData_Pranav",
    "deeplabcut/examples/Reaching-Mackenzie-2018-08-30/labeled-data/reachingvideo1/CollectedData_Mackenzie",
    "deeplabcut/examples/golden_mouse-shaokai-2022-10-19/labeled-data/golden_mouse/CollectedData_shaokai",
    "deeplabcut/examples/multi_mouse-dlc_team-2022-04-12/labeled-data/m3v1mp4/CollectedData_dlc_team",
    "deeplabcut/examples/multi_mouse-dlc_team-2022-04-12/labeled-data/m3v1mp4short/CollectedData_dlc_team",
]


# --------------------------------------------------------------------------- independent readers


class CsvTable:
    """Raw cells of a DLC CSV, read with the csv module only."""

    def __init__(self, path: Path):
        with open(path, newline="") as handle:
            rows = list(csv.reader(handle))
        self.header = [r for r in rows[:4] if r and r[0] in ("scorer", "individuals", "bodyparts", "coords")]
        self.data = rows[len(self.header):]
        self.levels = [r[0] for r in self.header]
        coords = self.header[-1]
        self.n_index = next(i for i, cell in enumerate(coords) if i > 0 and cell)

    def column(self, bodypart: str, coord: str, individual: str | None = None) -> int:
        bp_row = self.header[self.levels.index("bodyparts")]
        coord_row = self.header[-1]
        ind_row = self.header[self.levels.index("individuals")] if individual is not None else None
        for j in range(self.n_index, len(coord_row)):
            same_animal = ind_row is None or ind_row[j] == individual
            if bp_row[j] == bodypart and coord_row[j] == coord and same_animal:
                return j
        raise KeyError((individual, bodypart, coord))

    def cell(self, row: int, bodypart: str, coord: str, individual: str | None = None) -> float:
        text = self.data[row][self.column(bodypart, coord, individual)]
        return float(text) if text else math.nan

    def column_values(self, bodypart: str, coord: str, individual: str | None = None) -> np.ndarray:
        j = self.column(bodypart, coord, individual)
        return np.array([float(r[j]) if r[j] else np.nan for r in self.data])


def h5_column(path: Path, *column: str) -> np.ndarray:
    """One column of a DLC HDF5 table (given without the scorer level), read with pandas."""
    frame = pd.read_hdf(path)
    scorer = frame.columns.get_level_values(0)[0]
    return frame[(scorer, *column)].to_numpy(dtype=float)


def assert_close(actual, expected) -> None:
    # The record stores float32; DLC writes float64.
    np.testing.assert_allclose(
        np.asarray(actual, dtype=float), expected, rtol=1e-6, atol=1e-4, equal_nan=True
    )


# --------------------------------------------------------------------------- analyzed output


def test_openfield_csv_values(shared):
    path = shared / OPENFIELD
    rec = read_dlc(path)
    raw = CsvTable(path)
    assert rec.source_format == "dlc-csv"
    assert rec.keypoints.shape == (2330, 1, 4, 2)
    assert rec.individuals == ["individual0"]
    assert rec.bodyparts == ["snout", "leftear", "rightear", "tailbase"]
    assert rec.n_frames == len(raw.data) == 2330
    assert rec.scorer == "DLC_resnet50_openfieldOct30shuffle1_6000"
    assert rec.frame_names is None and rec.fps is None
    assert not np.isnan(rec.keypoints).any()
    for row in (0, 700, 1500, 2329):
        for b, bp in enumerate(rec.bodyparts):
            assert_close(rec.keypoints[row, 0, b], [raw.cell(row, bp, "x"), raw.cell(row, bp, "y")])
            assert_close(rec.confidence[row, 0, b], raw.cell(row, bp, "likelihood"))
    lowest = min(raw.column_values(bp, "likelihood").min() for bp in rec.bodyparts)
    assert_close(rec.confidence.min(), lowest)


def test_openfield_missingdata_blanks_exactly_the_empty_cells(shared):
    path = shared / OPENFIELD_MISSING
    rec = read_dlc(path)
    full = read_dlc(shared / OPENFIELD)
    raw = CsvTable(path)
    blank = np.zeros(rec.keypoints.shape[:3], dtype=bool)
    for b, bp in enumerate(rec.bodyparts):
        blank[:, 0, b] = np.isnan(raw.column_values(bp, "x")) | np.isnan(raw.column_values(bp, "y"))
    assert blank.sum() == 2  # the author blanked snout in two rows
    np.testing.assert_array_equal(np.isnan(rec.keypoints[..., 0]), blank)
    np.testing.assert_array_equal(np.isnan(rec.confidence), blank)
    np.testing.assert_array_equal(rec.keypoints[~blank], full.keypoints[~blank])


def test_ethome_two_mice_filtered_csv(shared):
    path = shared / ETHOME_2MICE
    rec = read_dlc(path)
    raw = CsvTable(path)
    assert rec.keypoints.shape == (5700, 2, 7, 2)
    assert rec.individuals == ["adult", "juvenile"]
    assert rec.bodyparts == ["nose", "leftear", "rightear", "neck", "lefthip", "righthip", "tail"]
    assert rec.scorer == "DLC_dlcrnetms5_pilot_studySep24shuffle1_100000"
    assert not np.isnan(rec.keypoints).any() and not np.isnan(rec.confidence).any()
    for row in (0, 2850, 5699):
        for i, ind in enumerate(rec.individuals):
            for b in (0, 6):
                bp = rec.bodyparts[b]
                expected_xy = [raw.cell(row, bp, "x", ind), raw.cell(row, bp, "y", ind)]
                assert_close(rec.keypoints[row, i, b], expected_xy)
                assert_close(rec.confidence[row, i, b], raw.cell(row, bp, "likelihood", ind))
    meta = rec.metadata
    assert meta["track_method"] == "el" and meta["filtered"] is True
    assert meta["shuffle"] == 1 and meta["iteration"] == 100000
    assert meta["video_stem"] == "e3v813a-20210610T122332-122642"


def test_behaviordepot_csv_names(shared):
    path = shared / BEHAVIORDEPOT
    rec = read_dlc(path)
    raw = CsvTable(path)
    assert rec.keypoints.shape == (6000, 1, 8, 2)
    assert rec.bodyparts == [
        "Nose", "Left Ear", "Right Ear", "Tailbase", "Left Leg", "Right Leg", "Mid-Back", "Tail"
    ]
    assert rec.scorer == "DLC_resnet101_PointGreyApr24shuffle1_1050000"
    for row in (0, 3000, 5999):
        b = rec.bodyparts.index("Mid-Back")
        expected_xy = [raw.cell(row, "Mid-Back", "x"), raw.cell(row, "Mid-Back", "y")]
        assert_close(rec.keypoints[row, 0, b], expected_xy)
        assert_close(rec.confidence[row, 0, 1], raw.cell(row, "Left Ear", "likelihood"))
    expected_missing = sum(int(np.isnan(raw.column_values(bp, "x")).sum()) for bp in rec.bodyparts)
    assert int(np.isnan(rec.keypoints[..., 0]).sum()) == expected_missing


def test_vame_csv_mangled_scorer_and_legacy_name(shared):
    path = shared / VAME
    rec = read_dlc(path)
    raw = CsvTable(path)
    assert len(set(raw.header[0][1:])) == 18  # the mangled scorer row really is there
    assert rec.scorer == "DeepCut_resnet50_VAME-FinalNov7shuffle1_350000"
    assert "scorers" not in rec.metadata  # one scorer once the ".N" mangling is undone
    assert rec.keypoints.shape == (750, 1, 6, 2)
    assert rec.bodyparts == [
        "Nose", "Forehand-Left", "Forehand-Right", "Hindhand-Left", "Hindhand-Right", "Tailroot"
    ]
    for row in (0, 749):
        expected_xy = [raw.cell(row, "Tailroot", "x"), raw.cell(row, "Tailroot", "y")]
        assert_close(rec.keypoints[row, 0, 5], expected_xy)
        assert_close(rec.confidence[row, 0, 3], raw.cell(row, "Hindhand-Left", "likelihood"))


def test_deepof_single_not_split(shared):
    """``Left_ear``/``Spine_1`` are one animal; the csv holds 97 rows, the h5 100.

    The two deepof single-animal tables are different recordings (their values differ),
    so each is checked against its own raw cells.
    """
    h5 = shared / DEEPOF / "test_single_topview/Tables/testDLC_h5_table.h5"
    csv_path = shared / DEEPOF / "test_single_topview/Tables/testDLC_csv_table.csv"
    rec_h5, rec_csv = read_dlc(h5), read_dlc(csv_path)
    parts = ["Nose", "Left_ear", "Right_ear", "Spine_1", "Center", "Spine_2", "Tail_base", "Tail_1", "Tail_2",
             "Tail_tip", "Left_bhip", "Right_bhip", "Left_fhip", "Right_fhip"]
    for rec, n in ((rec_h5, 100), (rec_csv, 97)):
        assert rec.individuals == ["individual0"]
        assert rec.bodyparts == parts
        assert rec.n_frames == n
        assert "individuals_from_prefix" not in rec.metadata
        assert rec.scorer == "DLC_resnet50_deepof_single_topviewAug28shuffle1_1030000"
    assert rec_h5.metadata["h5_key"] == "df"
    assert_close(rec_h5.keypoints[:, 0, 3, 0], h5_column(h5, "Spine_1", "x"))
    assert_close(rec_h5.confidence[:, 0, 13], h5_column(h5, "Right_fhip", "likelihood"))
    raw = CsvTable(csv_path)
    assert_close(rec_csv.keypoints[:, 0, 1, 1], raw.column_values("Left_ear", "y"))


def test_deepof_old_style_multi_split_by_prefix(shared):
    h5 = shared / DEEPOF / "test_multi_topview/Tables/testDLC_h5_table_multi.h5"
    csv_path = shared / DEEPOF / "test_multi_topview/Tables/testDLC_csv_table_multi.csv"
    rec_h5, rec_csv = read_dlc(h5), read_dlc(csv_path)
    for rec in (rec_h5, rec_csv):
        assert rec.individuals == ["B", "W"]
        assert rec.bodyparts[:4] == ["Nose", "Left_ear", "Right_ear", "Spine_1"] and len(rec.bodyparts) == 14
        assert rec.metadata["individuals_from_prefix"] is True
    assert rec_h5.n_frames == 100 and rec_csv.n_frames == len(CsvTable(csv_path).data) == 98
    w, tail = rec_h5.individuals.index("W"), rec_h5.bodyparts.index("Tail_base")
    assert_close(rec_h5.keypoints[:, w, tail, 0], h5_column(h5, "W_Tail_base", "x"))
    assert_close(rec_h5.confidence[:, 0, 0], h5_column(h5, "B_Nose", "likelihood"))
    np.testing.assert_array_equal(rec_csv.keypoints, rec_h5.keypoints[:98])
    np.testing.assert_array_equal(rec_csv.confidence, rec_h5.confidence[:98])


def test_deepof_madlc_h5_and_mangled_csv_agree(shared):
    h5 = shared / DEEPOF / "test_madlc_topview/Tables/testDLC_h5_table_madlc.h5"
    csv_path = shared / DEEPOF / "test_madlc_topview/Tables/testDLC_csv_table_madlc.csv"
    rec_h5, rec_csv = read_dlc(h5), read_dlc(csv_path)
    assert rec_h5.metadata["h5_key"] == "tracks"
    assert rec_csv.metadata["csv_header_rows"] == 4
    for rec in (rec_h5, rec_csv):
        assert rec.individuals == ["mouse_black_tail", "mouse_white_tail"]
        assert len(rec.bodyparts) == 14 and rec.bodyparts[-1] == "Right_fhip"
        assert rec.scorer == "DLC_dlcrnetms5_20220525_CSDS_KET_SI_TRIALJune03shuffle1_200000"
    assert (rec_h5.n_frames, rec_csv.n_frames) == (100, 97)
    assert_close(rec_h5.keypoints[:, 1, 4, 0], h5_column(h5, "mouse_white_tail", "Center", "x"))
    np.testing.assert_array_equal(rec_csv.keypoints, rec_h5.keypoints[:97])
    np.testing.assert_array_equal(rec_csv.confidence, rec_h5.confidence[:97])


def test_golden_mouse_h5_with_meta_fps(shared):
    path = shared / GOLDEN
    rec = read_dlc(path)
    assert rec.keypoints.shape == (4860, 1, 27, 2)
    assert rec.bodyparts[0] == "nose" and rec.bodyparts[-1] == "head_midpoint"
    assert rec.fps == 30.0
    assert rec.metadata["nframes"] == 4860
    assert rec.metadata["frame_dimensions"] == (1350, 1500)
    assert rec.metadata["iteration"] == 2000 and rec.metadata["network"] == "dlcrnetms5"
    assert not np.isnan(rec.keypoints).any()
    assert_close(rec.keypoints[:, 0, 9, 1], h5_column(path, "mouse_center", "y"))
    likelihood = np.stack([h5_column(path, bp, "likelihood") for bp in rec.bodyparts], axis=1)
    assert_close(rec.confidence[:, 0, :], likelihood)


def _expected_present(path: Path, individual: str, bodypart: str) -> np.ndarray:
    x, y = h5_column(path, individual, bodypart, "x"), h5_column(path, individual, bodypart, "y")
    lik = h5_column(path, individual, bodypart, "likelihood")
    return ~np.isnan(x) & ~np.isnan(y) & ~np.isnan(lik)


def test_multi_mouse_el_h5_tracks_key_unique_bodyparts_and_meta(shared):
    path = shared / f"{MULTI_MOUSE}_el.h5"
    rec = read_dlc(path)
    assert rec.metadata["h5_key"] == "tracks"
    assert rec.individuals == ["individual1", "individual2", "individual3", "single"]
    assert rec.bodyparts == ["bodypart1", "bodypart2", "bodypart3", "corner1", "corner2"]
    assert rec.n_frames == 31
    assert rec.fps == pytest.approx(29.980657640232106)
    assert rec.metadata["nframes"] == 31 and rec.metadata["frame_dimensions"] == (480, 640)
    assert rec.metadata["track_method"] == "el" and rec.metadata["filtered"] is False
    # Unique parts exist only for "single", animal parts never for it.
    assert np.isnan(rec.keypoints[:, 3, :3]).all()
    assert np.isnan(rec.keypoints[:, :3, 3:]).all()
    for i, ind in enumerate(rec.individuals):
        parts = ["corner1", "corner2"] if ind == "single" else ["bodypart1", "bodypart2", "bodypart3"]
        for bp in parts:
            b = rec.bodyparts.index(bp)
            present = _expected_present(path, ind, bp)
            np.testing.assert_array_equal(~np.isnan(rec.keypoints[:, i, b, 0]), present)
            assert_close(rec.keypoints[present, i, b, 0], h5_column(path, ind, bp, "x")[present])


def test_multi_mouse_filtered_csv_equals_filtered_h5(shared):
    h5 = shared / f"{MULTI_MOUSE}_el_filtered.h5"
    rec_h5 = read_dlc(h5)
    rec_csv = read_dlc(shared / f"{MULTI_MOUSE}_el_filtered.csv")
    assert rec_h5.metadata["h5_key"] == "df_with_missing"
    assert rec_csv.individuals == rec_h5.individuals
    assert rec_h5.individuals == ["individual1", "individual2", "individual3", "single"]
    np.testing.assert_array_equal(rec_csv.keypoints, rec_h5.keypoints)
    np.testing.assert_array_equal(rec_csv.confidence, rec_h5.confidence)
    assert rec_csv.fps == rec_h5.fps == pytest.approx(29.980657640232106)  # meta has no _el_filtered suffix
    assert rec_csv.metadata["filtered"] is True
    # DLC's filter left positions without likelihood (nothing was detected there): dropped, counted.
    frame = pd.read_hdf(h5)
    x = frame.xs("x", level="coords", axis=1).to_numpy()
    y = frame.xs("y", level="coords", axis=1).to_numpy()
    lik = frame.xs("likelihood", level="coords", axis=1).to_numpy()
    interpolated = ~np.isnan(x) & ~np.isnan(y) & np.isnan(lik)
    assert rec_h5.metadata["points_without_likelihood"] == int(interpolated.sum()) > 0
    columns = [(ind, bp) for ind, bp in frame.xs("x", level="coords", axis=1).columns.droplevel(0)]
    for row, col in zip(*np.nonzero(interpolated)):
        ind, bp = columns[col]
        i, b = rec_h5.individuals.index(ind), rec_h5.bodyparts.index(bp)
        assert np.isnan(rec_h5.keypoints[row, i, b]).all(), (row, ind, bp)


def test_montblanc_df_key(shared):
    path = shared / MONTBLANC
    rec = read_dlc(path)
    assert rec.metadata["h5_key"] == "df"
    assert rec.individuals == ["bird1", "bird2", "bird3", "single"]
    assert rec.bodyparts == ["head", "tail", "leftwing", "rightwing", "center"]
    assert rec.n_frames == 180 and rec.scorer == "DLC_resnet50_MontBlancDec16shuffle1_30000"
    assert rec.fps is None
    expected_present = sum(
        int(_expected_present(path, ind, bp).sum())
        for ind in ("bird1", "bird2", "bird3") for bp in ("head", "tail", "leftwing", "rightwing")
    ) + int(_expected_present(path, "single", "center").sum())
    assert int((~np.isnan(rec.keypoints[..., 0])).sum()) == expected_present
    assert_close(rec.confidence[:, 1, 2], h5_column(path, "bird2", "leftwing", "likelihood"))


def test_trimouse_calib_labels(shared):
    path = shared / TRIMOUSE
    rec = read_dlc(path)
    frame = pd.read_hdf(path)
    assert rec.metadata["h5_key"] == "calib"
    assert rec.individuals == ["mus1", "mus2", "mus3"]
    assert len(rec.bodyparts) == 12 and rec.bodyparts[0] == "snout" and rec.bodyparts[-1] == "tailend"
    assert rec.n_frames == 500 and rec.scorer == "Daniel"
    assert rec.frame_names == [str(i) for i in frame.index]
    assert rec.frame_names[0] == "labeled-data/videocompressed06short_cropped/img00c00.png"
    present = ~np.isnan(rec.keypoints[..., 0])
    assert (rec.confidence[present] == 1.0).all() and np.isnan(rec.confidence[~present]).all()
    x = frame.xs("x", level="coords", axis=1).to_numpy()
    y = frame.xs("y", level="coords", axis=1).to_numpy()
    assert int(present.sum()) == int((~np.isnan(x) & ~np.isnan(y)).sum())
    assert_close(rec.keypoints[:, 1, 4, 1], h5_column(path, "mus2", "spine1", "y"))


def test_reaching_h5(shared):
    path = shared / REACHING
    rec = read_dlc(path)
    assert rec.keypoints.shape == (256, 1, 5, 2)
    assert rec.bodyparts == ["Hand", "Finger1", "Tongue", "Joystick1", "Joystick2"]
    assert rec.scorer == "DLC_resnet50_ReachingAug30shuffle1_200000"
    assert rec.metadata["iteration"] == 200000 and rec.metadata["video_stem"] == "reachingvideo1"
    assert_close(rec.keypoints[:, 0, 0, 0], h5_column(path, "Hand", "x"))
    assert_close(rec.confidence[:, 0, 2], h5_column(path, "Tongue", "likelihood"))


@pytest.mark.parametrize("stem", COLLECTED_DATA, ids=lambda s: s.split("/")[2] + "/" + s.split("/")[-2])
def test_collected_data_csv_and_h5_agree(shared, stem):
    csv_path, h5_path = shared / f"{stem}.csv", shared / f"{stem}.h5"
    rec_csv, rec_h5 = read_dlc(csv_path), read_dlc(h5_path)
    raw = CsvTable(csv_path)
    assert rec_csv.n_frames == len(raw.data)
    assert rec_csv.frame_names == rec_h5.frame_names
    assert rec_csv.frame_names[0] == "/".join(raw.data[0][: raw.n_index])
    assert rec_csv.frame_names[0].startswith("labeled-data/")
    assert rec_csv.individuals == rec_h5.individuals and rec_csv.bodyparts == rec_h5.bodyparts
    assert rec_csv.scorer == rec_h5.scorer == raw.header[0][raw.n_index]
    np.testing.assert_array_equal(rec_csv.keypoints, rec_h5.keypoints)
    present = ~np.isnan(rec_csv.keypoints[..., 0])
    assert (rec_csv.confidence[present] == 1.0).all() and np.isnan(rec_csv.confidence[~present]).all()
    assert rec_csv.fps is None
    # One raw cell per row, through the csv module.
    individual = rec_csv.individuals[0] if "individuals" in raw.levels else None
    bp = rec_csv.bodyparts[0]
    expected = [raw.cell(r, bp, "x", individual) for r in range(len(raw.data))]
    assert_close(rec_csv.keypoints[:, 0, 0, 0], expected)
    # Labeled points: cells with both x and y filled (individuals lacking a part have no column).
    coords, bps = raw.header[-1], raw.header[raw.levels.index("bodyparts")]
    inds = raw.header[raw.levels.index("individuals")] if individual is not None else [None] * len(coords)
    n_labeled = sum(
        1
        for j in range(raw.n_index, len(coords)) if coords[j] == "x"
        for r in range(len(raw.data))
        if not math.isnan(raw.cell(r, bps[j], "x", inds[j]))
        and not math.isnan(raw.cell(r, bps[j], "y", inds[j]))
    )
    assert int(present.sum()) == n_labeled


# --------------------------------------------------------------------------- synthetic tables


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_gapped_frame_index_is_made_dense(tmp_path):
    path = write_csv(tmp_path / "gaps.csv", [
        "scorer,S,S,S",
        "bodyparts,nose,nose,nose",
        "coords,x,y,likelihood",
        "0,1.5,2.5,0.9",
        "3,4.0,5.0,0.8",
        "5,6.0,7.0,0.7",
    ])
    rec = read_dlc(path)
    assert rec.n_frames == 6
    assert rec.metadata["frames_absent_in_file"] == 3
    np.testing.assert_array_equal(
        np.isnan(rec.keypoints[:, 0, 0, 0]), [False, True, True, False, True, False]
    )
    assert_close(rec.keypoints[3, 0, 0], [4.0, 5.0])
    assert_close(rec.confidence[5, 0, 0], 0.7)


def test_prefix_split_needs_identical_suffix_sets_and_no_body_sides(tmp_path):
    def table(parts: list[str]) -> Path:
        header = ["scorer", "bodyparts", "coords"]
        cols = [(bp, c) for bp in parts for c in ("x", "y")]
        lines = [
            ",".join([header[0]] + ["S"] * len(cols)),
            ",".join([header[1]] + [bp for bp, _ in cols]),
            ",".join([header[2]] + [c for _, c in cols]),
            ",".join(["0"] + [str(float(k)) for k in range(len(cols))]),
        ]
        return write_csv(tmp_path / f"{'-'.join(parts)}.csv", lines)

    animals = read_dlc(table(["m1_nose", "m1_tail", "m2_nose", "m2_tail"]))
    assert animals.individuals == ["m1", "m2"] and animals.bodyparts == ["nose", "tail"]
    assert_close(animals.keypoints[0, 1, 1], [6.0, 7.0])  # m2_tail is the 4th bodypart: columns 6, 7
    sides = read_dlc(table(["Left_ear", "Left_paw", "Right_ear", "Right_paw"]))
    assert sides.individuals == ["individual0"] and sides.bodyparts[0] == "Left_ear"
    uneven = read_dlc(table(["a_nose", "a_tail", "b_nose", "b_ear"]))
    assert uneven.individuals == ["individual0"] and "individuals_from_prefix" not in uneven.metadata


def _small_h5(path: Path) -> Path:
    columns = pd.MultiIndex.from_product(
        [["DLC_resnet50_taskJan1shuffle1_100"], ["nose", "tail"], ["x", "y", "likelihood"]],
        names=["scorer", "bodyparts", "coords"],
    )
    frame = pd.DataFrame(np.arange(24, dtype=float).reshape(4, 6), columns=columns)
    frame.to_hdf(path, key="df_with_missing", format="table", mode="w")
    return path


def test_meta_pickle_found_for_suffixed_name_and_bad_pickle_is_warned(tmp_path, caplog):
    pose = _small_h5(tmp_path / "vidDLC_resnet50_taskJan1shuffle1_100_el_filtered.h5")
    meta = tmp_path / "vidDLC_resnet50_taskJan1shuffle1_100_meta.pickle"
    meta.write_bytes(pickle.dumps({"data": {"fps": 25.0, "nframes": 4, "frame_dimensions": (10, 20)}}))
    rec = read_dlc(pose)
    assert rec.fps == 25.0 and rec.metadata["frame_dimensions"] == (10, 20) and rec.metadata["nframes"] == 4
    assert_close(rec.keypoints[2, 0, 1], [15.0, 16.0])

    meta.write_bytes(b"not a pickle at all")
    with caplog.at_level(logging.WARNING, logger="dlc_lookagain.io.dlc"):
        rec = read_dlc(pose)
    assert rec.fps is None
    assert any(meta.name in r.getMessage() and "without fps" in r.getMessage() for r in caplog.records)


def test_meta_pickle_with_code_is_refused(tmp_path, caplog):
    pose = _small_h5(tmp_path / "vidDLC_resnet50_taskJan1shuffle1_100.h5")
    meta = tmp_path / "vidDLC_resnet50_taskJan1shuffle1_100_meta.pickle"
    meta.write_bytes(pickle.dumps({"data": {"fps": 25.0, "hook": print}}))
    with caplog.at_level(logging.WARNING, logger="dlc_lookagain.io.dlc"):
        rec = read_dlc(pose)
    assert rec.fps is None
    assert any("refusing" in r.getMessage() for r in caplog.records)


# --------------------------------------------------------------------------- bad input


def test_truncated_h5(shared, tmp_path):
    data = (shared / REACHING).read_bytes()
    bad = tmp_path / "reachingvideo1DLC_resnet50_ReachingAug30shuffle1_200000.h5"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(PoseFormatError) as info:
        read_dlc(bad)
    assert bad.name in str(info.value)
    assert "truncated or corrupt" in str(info.value)


def test_empty_csv(tmp_path):
    bad = tmp_path / "emptyDLC_resnet50_taskJan1shuffle1_100.csv"
    bad.write_text("")
    with pytest.raises(PoseFormatError) as info:
        read_dlc(bad)
    assert bad.name in str(info.value) and "empty" in str(info.value)


def test_non_numeric_coordinate(tmp_path):
    bad = write_csv(tmp_path / "textcell.csv", [
        "scorer,S,S,S,S,S,S",
        "bodyparts,nose,nose,nose,tail,tail,tail",
        "coords,x,y,likelihood,x,y,likelihood",
        "0,1,2,0.5,3,4,0.5",
        "1,1,2,0.5,3,oops,0.5",
    ])
    with pytest.raises(PoseFormatError) as info:
        read_dlc(bad)
    message = str(info.value)
    assert bad.name in message and "'oops'" in message and "tail/y" in message and "line 5" in message


def test_missing_y_column(tmp_path):
    bad = write_csv(tmp_path / "noy.csv", [
        "scorer,S,S,S,S,S",
        "bodyparts,nose,nose,nose,tail,tail",
        "coords,x,y,likelihood,x,likelihood",
        "0,1,2,0.5,3,0.5",
    ])
    with pytest.raises(PoseFormatError) as info:
        read_dlc(bad)
    message = str(info.value)
    assert bad.name in message and "missing 'y' column" in message and "'tail'" in message


def test_h5_without_dataframe(tmp_path):
    bad = tmp_path / "session.analysis.h5"
    with h5py.File(bad, "w") as h5:
        h5["tracks"] = np.zeros((1, 2, 3, 4))
        h5["node_names"] = np.array([b"a", b"b", b"c"])
    with pytest.raises(PoseFormatError) as info:
        read_dlc(bad)
    message = str(info.value)
    assert bad.name in message and "no pandas DataFrame" in message and "SLEAP" in message


def test_header_only_no_bodyparts_and_wrong_first_cell(tmp_path):
    header_only = write_csv(tmp_path / "header.csv", ["scorer,S,S", "bodyparts,nose,nose", "coords,x,y"])
    with pytest.raises(PoseFormatError, match="no data rows") as info:
        read_dlc(header_only)
    assert header_only.name in str(info.value)
    no_parts = write_csv(tmp_path / "noparts.csv", ["scorer", "bodyparts", "coords", "0"])
    with pytest.raises(PoseFormatError, match="no bodyparts") as info:
        read_dlc(no_parts)
    assert no_parts.name in str(info.value)
    other = write_csv(tmp_path / "other.csv", ["frame,x,y", "0,1,2"])
    with pytest.raises(PoseFormatError, match="scorer") as info:
        read_dlc(other)
    assert other.name in str(info.value)


# --------------------------------------------------------------------------- output names


@pytest.mark.parametrize(
    "name, expected",
    [
        ("m3v1mp4DLC_resnet50_openfieldOct30shuffle1_6000.csv",
         dict(video_stem="m3v1mp4", scorer="DLC_resnet50_openfieldOct30shuffle1_6000", legacy=False,
              network="resnet50", task_date="openfieldOct30", shuffle=1, iteration=6000, snapshot=None,
              detector_snapshot=None, track_method=None, filtered=False, suffix=".csv")),
        ("cropped_videoDeepCut_resnet50_VAME-FinalNov7shuffle1_350000.csv",
         dict(video_stem="cropped_video", scorer="DeepCut_resnet50_VAME-FinalNov7shuffle1_350000",
              legacy=True, network="resnet50", task_date="VAME-FinalNov7", shuffle=1, iteration=350000)),
        ("m3v1mp4shortDLC_effnet_b0_multi_mouseApr12shuffle1_5_el_filtered.h5",
         dict(video_stem="m3v1mp4short", scorer="DLC_effnet_b0_multi_mouseApr12shuffle1_5",
              network="effnet_b0", task_date="multi_mouseApr12", iteration=5, track_method="el",
              filtered=True, suffix=".h5")),
        ("golden_mouseDLC_dlcrnetms5_golden_mouseOct19shuffle1_2000.h5",
         dict(video_stem="golden_mouse", network="dlcrnetms5", task_date="golden_mouseOct19",
              iteration=2000)),
        ("e3v813a-20210610T122332-122642DLC_dlcrnetms5_pilot_studySep24shuffle1_100000_el_filtered.csv",
         dict(video_stem="e3v813a-20210610T122332-122642", task_date="pilot_studySep24", iteration=100000,
              track_method="el", filtered=True)),
        ("videoDLC_Resnet50_openfieldOct30shuffle1_snapshot_200.h5",
         dict(video_stem="video", scorer="DLC_Resnet50_openfieldOct30shuffle1_snapshot_200",
              network="Resnet50", iteration=None, snapshot=200, detector_snapshot=None)),
        ("videoDLC_HrnetW32_taskJan1shuffle2_detector_090_snapshot_200_tr.h5",
         dict(video_stem="video", scorer="DLC_HrnetW32_taskJan1shuffle2_detector_090_snapshot_200",
              network="HrnetW32", task_date="taskJan1", shuffle=2, snapshot=200, detector_snapshot=90,
              track_method="tr", filtered=False)),
        ("videoDLC_HrnetW32_taskJan1shuffle2_detector_090_snapshot_200_ctd.h5",
         dict(track_method="ctd", snapshot=200, detector_snapshot=90)),
        ("my_DLC_clipDLC_resnet50_taskJan1shuffle3_500_bx.csv",
         dict(video_stem="my_DLC_clip", shuffle=3, iteration=500, track_method="bx")),
        ("ratDLC_mobnet_100_reachJun3shuffle1_1000_sk_filtered.h5",
         dict(network="mobnet_100", task_date="reachJun3", track_method="sk", filtered=True)),
    ],
)
def test_parse_dlc_output_name(name, expected):
    parsed = parse_dlc_output_name(Path("/any/folder") / name)
    assert parsed is not None
    for field, value in expected.items():
        assert getattr(parsed, field) == value, field


@pytest.mark.parametrize(
    "name",
    [
        "m3v1mp4shortDLC_effnet_b0_multi_mouseApr12shuffle1_5_meta.pickle",
        "m3v1mp4shortDLC_effnet_b0_multi_mouseApr12shuffle1_5_full.pickle",
        "m3v1mp4shortDLC_effnet_b0_multi_mouseApr12shuffle1_5_assemblies.pickle",
        "m3v1mp4shortDLC_effnet_b0_multi_mouseApr12shuffle1_5_el.pickle",
        "m3v1mp4DLC_resnet50_openfieldOct30shuffle1_6000_skeleton.csv",
        "m3v1mp4DLC_resnet50_openfieldOct30shuffle1_6000_labeled.mp4",
        "m3v1mp4DLC_resnet50_openfieldOct30shuffle1_6000_behaviors.csv",
        "m3v1mp4DLC_resnet50_openfieldOct30shuffle1_6000_bouts.csv",
        "testDLC_h5_table.h5",
        "CollectedData_Pranav.h5",
        "m3v1mp4.mp4",
    ],
)
def test_parse_rejects_non_pose_files(name):
    assert parse_dlc_output_name(name) is None


# --------------------------------------------------------------------------- choosing an output

STEM = "vidDLC_effnet_b0_taskJan1shuffle1_5"


def paths(*names: str) -> list[Path]:
    return [Path("/videos") / n for n in names]


def test_choose_prefers_filtered_then_tracker_then_h5():
    files = paths(f"{STEM}_el.h5", f"{STEM}_el_filtered.csv", f"{STEM}_el_filtered.h5", f"{STEM}_bx.h5",
                  f"{STEM}_meta.pickle", f"{STEM}_full.pickle")
    assert choose_dlc_output(files).name == f"{STEM}_el_filtered.h5"
    assert choose_dlc_output(files, filtered=False).name == f"{STEM}_el.h5"
    assert choose_dlc_output(files, track_method="bx").name == f"{STEM}_bx.h5"
    filtered_csv_vs_h5 = paths(f"{STEM}_el_filtered.csv", f"{STEM}_el.h5")
    assert choose_dlc_output(filtered_csv_vs_h5).name == f"{STEM}_el_filtered.csv"
    order = [f"{STEM}{t}.h5" for t in ("_sk", "_bx", "_ctd", "_tr", "_el", "")]
    assert choose_dlc_output(paths(*order)).name == f"{STEM}_el.h5"
    assert choose_dlc_output(paths(*order[:4])).name == f"{STEM}_tr.h5"
    assert choose_dlc_output(paths(f"{STEM}.h5", f"{STEM}_sk.h5")).name == f"{STEM}_sk.h5"
    assert choose_dlc_output(paths(f"{STEM}.h5", f"{STEM}_sk.h5"), track_method="none").name == f"{STEM}.h5"


def test_choose_most_trained_then_lowest_shuffle():
    files = paths("vDLC_resnet50_aJan1shuffle2_200000.h5", "vDLC_resnet50_aJan1shuffle1_100000.h5",
                  "vDLC_resnet50_aJan1shuffle3_200000.h5")
    assert choose_dlc_output(files).name == "vDLC_resnet50_aJan1shuffle2_200000.h5"
    assert choose_dlc_output(files, shuffle=1).name == "vDLC_resnet50_aJan1shuffle1_100000.h5"
    torch = paths("vDLC_Resnet50_aJan1shuffle1_snapshot_050.h5",
                  "vDLC_Resnet50_aJan1shuffle1_snapshot_200.h5")
    assert choose_dlc_output(torch).name == "vDLC_Resnet50_aJan1shuffle1_snapshot_200.h5"


def test_choose_no_match_lists_what_exists():
    files = paths(f"{STEM}_el.h5", f"{STEM}_el_filtered.h5")
    with pytest.raises(PoseFormatError) as info:
        choose_dlc_output(files, shuffle=4)
    message = str(info.value)
    assert "shuffle=4" in message and f"{STEM}_el.h5" in message and f"{STEM}_el_filtered.h5" in message
    with pytest.raises(PoseFormatError):
        choose_dlc_output(paths(f"{STEM}_meta.pickle", "notes.txt"))
    with pytest.raises(ValueError):
        choose_dlc_output(files, track_method="kalman")


def test_choose_tie_warns_and_is_deterministic(caplog):
    files = paths("vDLC_resnet50_aJan1shuffle1_1000.h5", "vDLC_resnet101_aJan1shuffle1_1000.h5")
    with caplog.at_level(logging.INFO, logger="dlc_lookagain.io.dlc"):
        first = choose_dlc_output(files)
        second = choose_dlc_output(list(reversed(files)))
    assert first == second == Path("/videos/vDLC_resnet101_aJan1shuffle1_1000.h5")
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and all("vDLC_resnet50_aJan1shuffle1_1000.h5" in w and "network" in w for w in warnings)
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert any("Chose" in m and "vDLC_resnet50_aJan1shuffle1_1000.h5" in m for m in infos)


def test_choose_mixed_engines_do_not_compare_epochs_with_iterations(caplog):
    files = paths("vDLC_resnet50_aJan1shuffle1_100000.h5", "vDLC_Resnet50_aJan1shuffle1_snapshot_200.h5")
    with caplog.at_level(logging.WARNING, logger="dlc_lookagain.io.dlc"):
        chosen = choose_dlc_output(files)
    assert chosen.name == "vDLC_Resnet50_aJan1shuffle1_snapshot_200.h5"  # lexicographic: "R" < "r"
    assert any("engine" in r.getMessage() for r in caplog.records)


def test_choose_single_unrecognised_table_is_used():
    assert choose_dlc_output(paths("testDLC_h5_table.h5", "notes.txt")).name == "testDLC_h5_table.h5"
