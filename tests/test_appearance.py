"""Tests of benchmarks/appearance.py: crop geometry, HOG, propagation, frame sampling, determinism."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from dlc_lookagain.io.record import PoseRecord

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import appearance  # noqa: E402

PARTS = ["nose", "left_ear", "right_ear", "neck", "body_center", "tail_base", "tail_tip"]
# Positions along the body axis in body lengths from the nose (tail_tip beyond the tail base).
AXIS = {"nose": 0.0, "left_ear": 0.15, "right_ear": 0.15, "neck": 0.25, "body_center": 0.55,
        "tail_base": 1.0, "tail_tip": 1.8}


def _record(centers, headings, length, n_frames=None, video=None) -> PoseRecord:
    """One-animal-per-entry record whose keypoints lie on a straight body of ``length`` px."""
    centers = np.asarray(centers, float)  # (T, I, 2) nose positions
    headings = np.asarray(headings, float)  # (T, I) radians, direction tail -> nose
    t, n_ind = headings.shape
    kp = np.zeros((t, n_ind, len(PARTS), 2))
    fwd = np.stack([np.cos(headings), np.sin(headings)], -1)
    left = np.stack([np.sin(headings), -np.cos(headings)], -1)
    for k, name in enumerate(PARTS):
        kp[:, :, k] = centers - fwd * AXIS[name] * length
        if name == "left_ear":
            kp[:, :, k] += left * 0.08 * length
        if name == "right_ear":
            kp[:, :, k] -= left * 0.08 * length
    return PoseRecord(kp, np.ones(kp.shape[:3]), [f"individual{i + 1}" for i in range(n_ind)], PARTS, 30.0,
                      Path("synthetic.h5"), video_path=video)


@pytest.mark.parametrize("angle", [0.0, 0.7, math.pi / 2, 2.5, -2.0])
def test_rotated_crop_puts_up_on_top_and_right_on_the_right(angle):
    img = np.zeros((240, 320), np.uint8)
    center = np.array([160.0, 120.0])
    up = np.array([math.cos(angle), math.sin(angle)])
    right = np.array([-up[1], up[0]])
    # A blob 30 px "up" of the center and a dimmer one 30 px to its "right".
    cv2.circle(img, tuple(int(round(v)) for v in center + 30 * up), 4, 255, -1)
    cv2.circle(img, tuple(int(round(v)) for v in center + 30 * right), 4, 120, -1)
    crop = appearance.rotated_crop(img, center, up, side=96.0, size=32).astype(float)
    scale = 32 / 96
    c = 15.5
    v, u = np.unravel_index(np.argmax(crop), crop.shape)
    assert abs(u - c) <= 1.0 and abs(v - (c - 30 * scale)) <= 1.0
    dim = np.where(crop > 200, 0, crop)  # hide the bright blob to find the dim one
    v, u = np.unravel_index(np.argmax(dim), dim.shape)
    assert abs(u - (c + 30 * scale)) <= 1.0 and abs(v - c) <= 1.0


def test_crop_geometry_scales_with_body_length_and_points_along_the_body():
    cfg = appearance.AppearanceConfig()
    small = _record([[[100.0, 80.0]]], [[0.3]], length=40.0)
    big = _record([[[200.0, 160.0]]], [[0.3]], length=80.0)
    body_c, head_c, body_dir, head_dir, sides = appearance.crop_geometry(small, cfg)
    np.testing.assert_allclose(sides[0], [cfg.body_scale * 40, cfg.head_scale * 40], rtol=1e-6)
    np.testing.assert_allclose(appearance.crop_geometry(big, cfg)[4], 2 * sides, rtol=1e-6)
    expected = [math.cos(0.3), math.sin(0.3)]
    np.testing.assert_allclose(body_dir[0, 0], expected, atol=1e-6)
    np.testing.assert_allclose(head_dir[0, 0], expected, atol=1e-6)
    np.testing.assert_allclose(body_c[0, 0], small.keypoints[0, 0, PARTS.index("body_center")], atol=1e-4)
    # The head crop sits just behind the nose, on the body axis.
    nose = np.array([100.0, 80.0])
    np.testing.assert_allclose(head_c[0, 0], nose - cfg.head_back * 40 * np.array(expected), atol=1e-4)


def _scene(rec: PoseRecord, t: int, scale: float = 1.0, h: int = 240, w: int = 320) -> np.ndarray:
    """A dark "animal" (line along its keypoints) with a pink paw at the nose, on a light floor."""
    img = np.full((h, w, 3), 200, np.uint8)
    for i in range(rec.keypoints.shape[1]):
        kp = rec.keypoints[t, i]
        nose, tail = kp[0], kp[PARTS.index("tail_base")]
        cv2.line(img, tuple(np.round(nose).astype(int)), tuple(np.round(tail).astype(int)), (50, 50, 50),
                 max(1, int(8 * scale)))
        cv2.circle(img, tuple(np.round(nose).astype(int)), max(1, int(2 * scale)), (230, 150, 160), -1)
    return img


def test_features_are_deterministic_and_scale_free():
    cfg = appearance.AppearanceConfig()
    rec = _record([[[200.0, 120.0]]], [[0.9]], length=64.0)
    f1 = appearance.frame_features(_scene(rec, 0), 0, appearance.crop_geometry(rec, cfg), cfg)
    f2 = appearance.frame_features(_scene(rec, 0), 0, appearance.crop_geometry(rec, cfg), cfg)
    assert f1.shape == (1, len(appearance.feature_names(cfg)))
    assert np.isfinite(f1).all()
    np.testing.assert_array_equal(f1, f2)
    # The same scene at twice the resolution gives nearly the same features (crops follow length).
    big = _record([[[400.0, 240.0]]], [[0.9]], length=128.0)
    big_scene = _scene(big, 0, 2.0, 480, 640)
    f_big = appearance.frame_features(big_scene, 0, appearance.crop_geometry(big, cfg), cfg)
    assert np.corrcoef(f1[0], f_big[0])[0, 1] > 0.9


def test_hog_ignores_contrast_polarity():
    rng = np.random.default_rng(0)
    img = (rng.random((32, 32)) * 255).astype(np.uint8)
    hog = appearance._hog(32)
    np.testing.assert_allclose(hog.compute(img), hog.compute(255 - img), atol=1e-5)
    assert hog.compute(img).size == hog.getDescriptorSize() == 144


def test_missing_keypoints_give_nan_features():
    cfg = appearance.AppearanceConfig()
    rec = _record([[[100.0, 100.0], [220.0, 120.0]]], [[0.0, 1.0]], length=50.0)
    rec.keypoints[0, 1] = np.nan
    out = appearance.frame_features(_scene(_record([[[100.0, 100.0]]], [[0.0]], 50.0), 0), 0,
                                    appearance.crop_geometry(rec, cfg), cfg)
    assert np.isfinite(out[0]).all() and np.isnan(out[1]).all()


def test_propagate_copies_the_nearest_selected_frame_with_signed_distance():
    sel = np.array([2, 6, 9])
    feats = np.array([[10.0], [20.0], [30.0]])
    out = appearance.propagate(sel, feats, 12)
    assert out.shape == (12, 2)
    # t=4 is 2 from both 2 and 6: the earlier one wins.
    np.testing.assert_array_equal(out[:, 0], [10, 10, 10, 10, 10, 20, 20, 20, 30, 30, 30, 30])
    np.testing.assert_array_equal(out[:, 1], [-2, -1, 0, 1, 2, -1, 0, 1, -1, 0, 1, 2])
    secs = appearance.propagate(sel, feats, 12, fps=2.0)
    np.testing.assert_allclose(secs[:, 1], out[:, 1] / 2)
    # Extra axes (animals) broadcast; the distance is the same for every animal.
    multi = appearance.propagate(sel, np.arange(12.0).reshape(3, 2, 2), 12)
    assert multi.shape == (12, 2, 3)
    np.testing.assert_array_equal(multi[5, :, :2], np.arange(12.0).reshape(3, 2, 2)[1])
    np.testing.assert_array_equal(multi[5, :, 2], [-1, -1])
    with pytest.raises(ValueError):
        appearance.propagate([3, 1], feats[:2], 12)
    with pytest.raises(ValueError):
        appearance.propagate([], feats[:0], 12)


def test_uniform_frames():
    np.testing.assert_array_equal(appearance.uniform_frames(100, 0.1), np.arange(5, 100, 10))
    np.testing.assert_array_equal(appearance.uniform_frames(7, 1.0), np.arange(7))
    assert appearance.uniform_frames(100, 0.25).size == 25
    with pytest.raises(ValueError):
        appearance.uniform_frames(10, 0.0)


def test_extract_decodes_only_the_selected_frames_and_matches_all_frames(tmp_path):
    n = 12
    headings = np.linspace(0, 2, n)[:, None]
    noses = np.stack([100 + 5 * np.arange(n), np.full(n, 110.0)], -1)[:, None]
    rec = _record(noses, headings, 50.0)
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (320, 240))
    if not writer.isOpened():
        pytest.skip("no MJPG writer in this OpenCV build")
    for t in range(n):
        writer.write(cv2.cvtColor(_scene(rec, t), cv2.COLOR_RGB2BGR))
    writer.release()
    everything = appearance.extract(rec, np.arange(n), video=path)
    some = appearance.extract(rec, [1, 4, 10], video=path)
    np.testing.assert_array_equal(some, everything[[1, 4, 10]])
    np.testing.assert_array_equal(some, appearance.extract(rec, [1, 4, 10], video=path))
    with pytest.raises(ValueError):
        appearance.extract(rec, [4, 1], video=path)
