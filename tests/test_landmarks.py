"""DLC unique bodyparts are landmarks, not an animal (issue 14, item 6)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dlc_lookagain.features import feature_bank
from dlc_lookagain.io import load_pose
from dlc_lookagain.io.record import PoseRecord, split_landmarks

MONTBLANC = Path(__file__).resolve().parents[2] / "shared" / "data" / "deeplabcut" / "tests" / "data" / \
    "montblanc_tracks.h5"


def _record_with_corner(t: int = 90) -> PoseRecord:
    kp = np.full((t, 3, 3, 2), np.nan, np.float32)
    kp[:, 0, 0] = (110.0, 100.0)  # m1 nose
    kp[:, 0, 1] = (100.0, 100.0)  # m1 tail: body length 10, facing +x
    kp[:, 1, 0] = (300.0, 300.0)
    kp[:, 1, 1] = (300.0, 310.0)
    kp[:, 2, 2] = (130.0, 100.0)  # the corner, tracked under "single"
    conf = np.where(np.isnan(kp[..., 0]), np.nan, 0.9).astype(np.float32)
    return PoseRecord(keypoints=kp, confidence=conf, individuals=["m1", "m2", "single"],
                      bodyparts=["nose", "tail", "corner"], fps=30.0, source=Path("x.h5"),
                      metadata={"unique_bodyparts": ["corner"]})


def test_unique_bodyparts_become_landmarks_with_features():
    rec = split_landmarks(_record_with_corner())
    assert rec.individuals == ["m1", "m2"] and rec.bodyparts == ["nose", "tail"]
    assert list(rec.landmarks) == ["corner"] and rec.landmarks["corner"].shape == (90, 2)
    assert rec.keypoints.shape == (90, 2, 2, 2)
    x, names = feature_bank(rec)
    assert x.shape[:2] == (90, 2)  # one row per animal, none for the corner
    col = {n: k for k, n in enumerate(names)}
    # m1: centroid (105, 100), head (110, 100), body length 10; the corner 25 ahead of the centroid.
    bl = 10.0
    assert x[45, 0, col["landmark_dist_bl__corner"]] == pytest.approx(25 / bl, rel=0.05)
    assert x[45, 0, col["landmark_head_dist_bl__corner"]] == pytest.approx(20 / bl, rel=0.05)
    assert x[45, 0, col["landmark_ego_x_bl__corner"]] > 0  # ahead
    assert abs(x[45, 0, col["landmark_ego_y_bl__corner"]]) < 0.05
    assert split_landmarks(rec) is rec  # nothing left to split


def test_a_single_animal_record_is_left_alone():
    rec = _record_with_corner()
    alone = PoseRecord(keypoints=rec.keypoints[:, :1, :2], confidence=rec.confidence[:, :1, :2],
                       individuals=["single"], bodyparts=["nose", "tail"], fps=30.0, source=Path("y.h5"))
    assert split_landmarks(alone) is alone


@pytest.mark.skipif(not MONTBLANC.is_file(), reason="../shared/data (DLC montblanc_tracks.h5) not present")
def test_madlc_file_with_unique_bodyparts_gets_no_behavior_rows_for_them(tmp_path):
    import shutil

    import dlc_lookagain

    rec = load_pose(MONTBLANC, video=False)
    assert "single" in rec.individuals and rec.metadata["unique_bodyparts"] == ["center"]
    pose = tmp_path / MONTBLANC.name
    shutil.copy(MONTBLANC, pose)
    (summary,) = dlc_lookagain.analyze(pose, top_k=0.0, fps=30.0, figures=False, progress=False)
    table = pd.read_csv(summary.outputs["behaviors_csv"])
    assert sorted(table["individual"].unique()) == ["bird1", "bird2", "bird3"]
    assert len(table) == 3 * rec.n_frames
