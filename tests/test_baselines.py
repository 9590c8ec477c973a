"""Keypoint-only baselines (benchmarks/baselines.py) and the real-label benchmark's plumbing.

Synthetic records are built directly as PoseRecord so that every expected value is known.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dlc_lookagain.io.record import PoseRecord

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import baselines as bl  # noqa: E402
import real_labels  # noqa: E402


def make_record(keypoints: np.ndarray, fps: float = 10.0, bodyparts=None, individuals=None) -> PoseRecord:
    kp = np.asarray(keypoints, dtype=np.float32)
    t, n_ind, b, _ = kp.shape
    conf = np.where(np.isnan(kp).any(-1), np.nan, 0.9).astype(np.float32)
    return PoseRecord(
        keypoints=kp,
        confidence=conf,
        individuals=individuals or [f"animal{i}" for i in range(n_ind)],
        bodyparts=bodyparts or [f"part{k}" for k in range(b)],
        fps=fps,
        source=Path("synthetic.csv"),
    )


def random_walk(t=300, n_ind=2, b=4, seed=0) -> np.ndarray:
    """Animals as rigid-ish point clouds wandering smoothly, with jitter."""
    rng = np.random.default_rng(seed)
    shape = rng.normal(0, 20, size=(1, n_ind, b, 2))
    start = rng.uniform(100, 400, (1, n_ind, 1, 2))
    path = np.cumsum(rng.normal(0, 2, size=(t, n_ind, 1, 2)), axis=0) + start
    return shape + path + rng.normal(0, 0.5, size=(t, n_ind, b, 2))


def feature(x, names, name):
    return x[..., names.index(name)]


# ----------------------------------------------------------------------------------------------
# Features
# ----------------------------------------------------------------------------------------------


def test_constant_speed_gives_that_speed():
    fps, t = 10.0, 50
    triangle = np.array([[0.0, 0.0], [30.0, 0.0], [0.0, 40.0]])  # longest side 50 px
    step = np.array([3.0, 4.0])  # 5 px/frame = 50 px/s
    kp = triangle[None, None] + np.arange(t)[:, None, None, None] * step
    x, names = bl.keypoint_features(make_record(kp, fps))
    assert x.shape == (t, 1, len(names)) and x.dtype == np.float32
    np.testing.assert_allclose(feature(x, names, "centroid_speed_px_s"), 50.0, rtol=1e-5)
    np.testing.assert_allclose(feature(x, names, "centroid_speed_bl_s"), 1.0, rtol=1e-5)
    np.testing.assert_allclose(feature(x, names, "centroid_accel_px_s2"), 0.0, atol=1e-3)
    for k in range(3):
        np.testing.assert_allclose(feature(x, names, f"kp_speed_bl_s__part{k}"), 1.0, rtol=1e-5)
    np.testing.assert_allclose(feature(x, names, "dist_bl__part1__part2"), 1.0, rtol=1e-6)
    np.testing.assert_allclose(feature(x, names, "hull_area_bl2"), 0.5 * 30 * 40 / 50**2, rtol=1e-5)
    turn = [n for n in names if n.startswith("turn_rate") and "__roll" not in n]
    assert len(turn) == 3
    assert all(np.abs(feature(x, names, n)).max() < 1e-4 for n in turn)
    np.testing.assert_allclose(feature(x, names, "likelihood_mean"), 0.9, rtol=1e-6)
    assert (feature(x, names, "missing") == 0).all()
    # Rolling mean of a constant is the constant, and its std is 0.
    np.testing.assert_allclose(feature(x, names, "centroid_speed_bl_s__roll1s_mean"), 1.0, rtol=1e-5)
    np.testing.assert_allclose(feature(x, names, "centroid_speed_bl_s__roll0.2s_std"), 0.0, atol=1e-5)


def test_normalized_features_invariant_to_scaling():
    kp = random_walk(seed=1)
    x1, names = bl.keypoint_features(make_record(kp))
    x2, names2 = bl.keypoint_features(make_record(kp * 2))
    assert names == names2
    scale_free = [k for k, n in enumerate(names) if "_px" not in n]
    in_px = [k for k, n in enumerate(names) if "_px" in n]
    assert in_px and len(scale_free) > 50
    np.testing.assert_allclose(x1[..., scale_free], x2[..., scale_free], rtol=2e-4, atol=2e-5)
    # Pixel features do scale (sanity check that the test would notice a missing normalization).
    speed = names.index("centroid_speed_px_s")
    np.testing.assert_allclose(x2[..., speed], 2 * x1[..., speed], rtol=1e-4)


def test_pairwise_distance_count_and_longest_pairs():
    b = 5
    x, names = bl.keypoint_features(make_record(random_walk(t=60, n_ind=1, b=b)))
    dists = [n for n in names if n.startswith("dist_bl__") and "__roll" not in n]
    assert len(dists) == b * (b - 1) // 2
    assert sum(n.startswith("bend_rad__") for n in names) == 3
    assert not np.isnan(x).any()
    assert not any(n.startswith("soc_") for n in names)  # one animal: no social features


def test_features_of_6000_frames_have_no_gaps():
    # Speed is the benchmarks' job (a timed test fails on a busy machine).
    rec = make_record(random_walk(t=6000, n_ind=2, b=8), fps=50)
    x, names = bl.keypoint_features(rec)
    assert x.shape[:2] == (6000, 2) and not np.isnan(x).any()


def test_interpolate_gaps_short_only():
    x = np.arange(20, dtype=float)
    y = x.copy()
    y[[0, 1]] = np.nan  # leading gap: nothing to interpolate from
    y[5:8] = np.nan  # 3 frames: filled
    y[10:16] = np.nan  # 6 frames: too long for max_gap=5
    y[19] = np.nan  # trailing
    out = bl.interpolate_gaps(y, 5)
    np.testing.assert_allclose(out[5:8], x[5:8])
    assert np.isnan(out[[0, 1, 19]]).all() and np.isnan(out[10:16]).all()
    # Several columns at once, independent of each other.
    two = np.stack([y, x], axis=1)
    np.testing.assert_allclose(bl.interpolate_gaps(two, 5)[:, 1], x)


def test_nan_gaps_handled():
    fps, t = 10.0, 80
    triangle = np.array([[0.0, 0.0], [30.0, 0.0], [0.0, 40.0]])
    kp = triangle[None, None] + np.arange(t)[:, None, None, None] * np.array([3.0, 4.0])
    kp[20:23, 0, 1] = np.nan  # 0.3 s gap of one keypoint: interpolated exactly (linear motion)
    kp[50:70, 0] = np.nan  # 2 s without the animal: cannot be interpolated
    x, names = bl.keypoint_features(make_record(kp, fps))
    assert not np.isnan(x).any() and np.isfinite(x).all()
    speed = feature(x, names, "centroid_speed_px_s")
    np.testing.assert_allclose(speed[15:28, 0], 50.0, rtol=1e-4)
    missing = feature(x, names, "missing")[:, 0]
    assert (missing[50:70] == 1).all() and (missing[15:28] == 0).all()
    frac = feature(x, names, "frac_missing_kp")[:, 0]
    assert (frac[50:70] == 1).all() and np.isclose(frac[21], 1 / 3)


def test_social_features_symmetric():
    x, names = bl.keypoint_features(make_record(random_walk(seed=3)))
    for name in ("soc_centroid_dist_bl", "soc_nearest_kp_dist_bl", "soc_rel_speed_bl_s",
                 "soc_approach_rate_bl_s"):
        f = feature(x, names, name)
        np.testing.assert_allclose(f[:, 0], f[:, 1], rtol=1e-5, atol=1e-6, err_msg=name)
    # Facing angles are per animal: the other's angle toward me is my partner's own angle.
    own, other = feature(x, names, "soc_facing_rad"), feature(x, names, "soc_other_facing_rad")
    np.testing.assert_allclose(own[:, 0], other[:, 1], atol=1e-6)
    assert (own >= 0).all() and (own <= np.pi + 1e-6).all()


def test_social_features_when_the_other_animal_is_missing():
    kp = random_walk(t=100, seed=4)
    kp[40:70, 1] = np.nan  # the second animal is gone for 3 s
    x, names = bl.keypoint_features(make_record(kp))
    assert not np.isnan(x).any()
    missing = feature(x, names, "missing")
    assert (missing[40:70] == 1).all() and (missing[:30] == 0).all()
    dist = feature(x, names, "soc_centroid_dist_bl")
    # Imputed with the median distance, never 0 (the animal paired with itself).
    assert (dist[40:70, 0] > 0).all()
    assert np.ptp(dist[40:70]) == 0  # one median fills the whole gap, for both animals
    seen = np.r_[0:40, 70:100]  # frames where the distance was measured: the median lies among them
    assert dist[seen].min() <= dist[50, 0] <= dist[seen].max()


def test_approaching_animals():
    fps, t = 10.0, 40
    body = np.array([[10.0, 0.0], [0.0, 0.0], [-10.0, 0.0]])  # nose first, pointing to +x
    left = body[None] + np.stack([np.arange(t) * 1.0, np.zeros(t)], -1)[:, None]  # +1 px/frame
    right = -body[None] + np.stack([300 - np.arange(t) * 1.0, np.zeros(t)], -1)[:, None]  # facing -x
    kp = np.stack([left, right], axis=1)
    x, names = bl.keypoint_features(make_record(kp, fps, bodyparts=["nose", "mid", "tail"]))
    approach = feature(x, names, "soc_approach_rate_bl_s")
    # Closing speed 2 px/frame = 20 px/s, body length 20 px -> -1 body length per second.
    np.testing.assert_allclose(approach, -1.0, rtol=1e-4)
    np.testing.assert_allclose(feature(x, names, "soc_facing_rad"), 0.0, atol=1e-5)
    np.testing.assert_allclose(feature(x, names, "soc_rel_speed_bl_s"), 1.0, rtol=1e-4)
    dist = feature(x, names, "soc_centroid_dist_bl")[:, 0]
    assert (np.diff(dist) < 0).all()
    # Nearest keypoints are the two noses: centroid distance minus 2 x 10 px.
    np.testing.assert_allclose(feature(x, names, "soc_nearest_kp_dist_bl")[:, 0], dist - 1.0, rtol=1e-5)


def test_convex_hull_matches_scipy():
    from scipy.spatial import ConvexHull

    rng = np.random.default_rng(5)
    pts = rng.normal(size=(200, 9, 2)) * rng.uniform(1, 50, size=(200, 1, 1))
    expected = np.array([ConvexHull(p).volume for p in pts])
    np.testing.assert_allclose(bl.convex_hull_area(pts), expected, rtol=1e-9)
    pts[:10, 3:] = np.nan  # 3 valid points: triangle
    tri = np.array([ConvexHull(p[:3]).volume for p in pts[:10]])
    np.testing.assert_allclose(bl.convex_hull_area(pts[:10]), tri, rtol=1e-9)
    pts[10, 2:] = np.nan
    pts[11] = np.nan
    area = bl.convex_hull_area(pts[10:12])
    assert area[0] == 0 and np.isnan(area[1])


def test_head_index():
    assert bl.head_index(["tail", "Left Ear", "Nose"]) == 2
    assert bl.head_index(["thorax", "Snout tip"]) == 1
    assert bl.head_index(["a", "b"]) == 0


# ----------------------------------------------------------------------------------------------
# Folds and scores
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_frames,k,fps", [(1000, 5, 10.0), (5700, 5, 30.0), (101, 3, 7.0)])
def test_blocked_folds_no_overlap_and_gap(n_frames, k, fps):
    folds = bl.blocked_folds(n_frames, k, fps=fps, gap_s=1.0)
    assert len(folds) == k
    tests = np.concatenate([te for _, te in folds])
    np.testing.assert_array_equal(np.sort(tests), np.arange(n_frames))  # each frame tested once
    for train, test in folds:
        assert np.all(np.diff(test) == 1)  # contiguous block
        assert not np.intersect1d(train, test).size
        # The test block is contiguous and train lies outside it: the nearest pair involves an end.
        gap = np.minimum(np.abs(train - test[0]), np.abs(train - test[-1])).min()
        assert gap > fps  # at least 1 s of frames left out between them
        left_out = n_frames - train.size - test.size
        assert left_out <= 2 * int(np.ceil(fps))
    with pytest.raises(ValueError):
        bl.blocked_folds(100, 5)  # gap_s without fps


def test_f1_table_matches_sklearn():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(7)
    y_true = rng.random((400, 3)) < [0.1, 0.3, 0.5]
    y_pred = rng.random((400, 3)) < [0.2, 0.3, 0.4]
    table = bl.f1_table(y_true, y_pred, ["a", "b", "c"])
    for c, name in enumerate("abc"):
        row = table[table["behavior"] == name].iloc[0]
        assert row["f1"] == pytest.approx(sklearn_metrics.f1_score(y_true[:, c], y_pred[:, c]))
        assert row["precision"] == pytest.approx(sklearn_metrics.precision_score(y_true[:, c], y_pred[:, c]))
        assert row["recall"] == pytest.approx(sklearn_metrics.recall_score(y_true[:, c], y_pred[:, c]))
        assert row["n_true"] == y_true[:, c].sum()
    macro = table[table["behavior"] == "macro"].iloc[0]
    assert macro["f1"] == pytest.approx(sklearn_metrics.f1_score(y_true, y_pred, average="macro"))
    # (T, I, C) with a mask equals the flat computation on the masked rows.
    yt3, yp3 = y_true.reshape(100, 4, 3), y_pred.reshape(100, 4, 3)
    mask = rng.random((100, 4)) < 0.6
    masked = bl.f1_table(yt3, yp3, ["a", "b", "c"], mask=mask)
    flat = bl.f1_table(yt3[mask], yp3[mask], ["a", "b", "c"])
    np.testing.assert_allclose(masked[["precision", "recall", "f1"]], flat[["precision", "recall", "f1"]])


def test_f1_table_zero_division():
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    y_true = np.zeros((50, 2), dtype=bool)
    y_true[:5, 1] = True
    y_pred = np.zeros((50, 2), dtype=bool)
    table = bl.f1_table(y_true, y_pred, ["never", "missed"])
    assert np.isnan(table.loc[0, "f1"]) and np.isnan(table.loc[0, "precision"])  # nothing to score
    assert table.loc[1, "f1"] == 0 and table.loc[1, "recall"] == 0
    assert table.loc[2, "f1"] == 0  # macro ignores the undefined behavior
    expected = sklearn_metrics.f1_score(y_true[:, 0], y_pred[:, 0], zero_division=np.nan)
    assert np.isnan(expected)


def test_remove_short_bouts():
    m = np.array([1, 1, 0, 1, 1, 1, 0, 1, 0, 1, 1, 1, 1], dtype=bool)
    out = bl.remove_short_bouts(m, 3)
    np.testing.assert_array_equal(out, [0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1])
    two = np.stack([m, ~m], axis=1)
    out2 = bl.remove_short_bouts(two, 3)
    np.testing.assert_array_equal(out2[:, 0], out)
    np.testing.assert_array_equal(out2[:, 1], bl.remove_short_bouts(~m, 3))


# ----------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------


def separable_data(t=800, seed=0):
    """Behavior in 40-frame bouts; feature 0 carries it, the others are noise."""
    rng = np.random.default_rng(seed)
    y = (np.arange(t) // 40) % 3 == 0
    x = rng.normal(size=(t, 1, 6)).astype(np.float32)
    x[:, 0, 0] += 4 * y
    return x, y[:, None, None]


def test_forest_learns_separable_behavior():
    x, y = separable_data()
    t = x.shape[0]
    train, test = bl.blocked_folds(t, 4, fps=10.0)[3]
    annotated = np.zeros((t, 1), dtype=bool)
    annotated[train] = True
    forest = bl.SimbaForest(n_estimators=40, fps=10.0, min_bout_s="cv", random_state=0)
    forest.fit(x, y & annotated[:, :, None], annotated, ["behave"])
    proba = forest.predict_proba(x)
    assert proba.shape == (t, 1, 1) and ((proba >= 0) & (proba <= 1)).all()
    pred = forest.predict(x, proba)
    table = bl.f1_table(y[test], pred[test], ["behave"])
    assert table.loc[0, "f1"] > 0.95
    assert 0 < forest.thresholds_[0] < 1 and forest.inner_f1_[0] > 0.9
    # Same seed, same data: same probabilities.
    again = bl.SimbaForest(n_estimators=40, fps=10.0, min_bout_s="cv", random_state=0).fit(
        x, y & annotated[:, :, None], annotated)
    np.testing.assert_array_equal(again.predict_proba(x), proba)


def test_forest_graceful_without_positives():
    x, y = separable_data()
    t = x.shape[0]
    y = y.copy()
    y[600:] = False  # the last fold holds no positive frame
    train, test = bl.blocked_folds(t, 4, fps=10.0)[3]
    annotated = np.zeros((t, 1), dtype=bool)
    annotated[train] = True
    # Second behavior never happens in training: constant model, no crash.
    present = np.concatenate([y, np.zeros_like(y)], axis=2) & annotated[:, :, None]
    forest = bl.SimbaForest(n_estimators=20, fps=10.0).fit(x, present, annotated, ["behave", "never"])
    proba = forest.predict_proba(x)
    assert (proba[..., 1] == 0).all()
    truth = np.concatenate([y, np.zeros_like(y)], axis=2)
    table = bl.f1_table(truth[test], forest.predict(x, proba)[test], ["behave", "never"])
    assert len(table) == 3  # both behaviors and the macro row are reported
    assert np.isnan(table.loc[1, "f1"])  # no positives, none predicted: undefined, not a crash
    assert table.loc[0, "f1"] in (0.0,) or np.isnan(table.loc[0, "f1"])


def test_speed_threshold_finds_immobility():
    rng = np.random.default_rng(2)
    t, fps = 600, 20.0
    still = (np.arange(t) // 50) % 2 == 0  # 2.5 s still, 2.5 s moving
    step = np.where(still, 0.0, 4.0)[:, None] * np.array([1.0, 0.0])
    path = np.cumsum(step, axis=0)
    body = np.array([[0.0, 0.0], [20.0, 0.0], [10.0, 8.0]])
    kp = body[None, None] + path[:, None, None] + rng.normal(0, 0.3, size=(t, 1, 3, 2))
    rec = make_record(kp, fps)
    train = np.arange(t) < 400
    rule = bl.speed_threshold_baseline(rec, still[:, None] & train[:, None], train[:, None])
    pred = rule.predict(rec)[:, 0]
    assert rule.threshold_ > 0
    table = bl.f1_table(still[400:], pred[400:], ["freeze"])
    assert table.loc[0, "f1"] > 0.9
    proba = rule.predict_proba(rec)[:, 0]
    np.testing.assert_array_equal(proba >= 0.5, pred)


# ----------------------------------------------------------------------------------------------
# real_labels plumbing
# ----------------------------------------------------------------------------------------------


def test_real_labels_exits_cleanly_without_data(tmp_path):
    env = dict(os.environ, DLC_LOOKAGAIN_SHARED=str(tmp_path / "absent"))
    out = subprocess.run([sys.executable, str(BENCHMARKS / "real_labels.py")], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert "shared data not found" in out.stdout


@pytest.mark.shared
def test_real_labels_run_accepts_custom_method(shared):
    seen = {}

    def always_no(fold):
        # Test labels must be hidden from the method.
        assert not fold.train_annotated[fold.test].any()
        seen[fold.index] = fold.features.shape
        return np.zeros(fold.train_present.shape)

    df = real_labels.run({"no": always_no, "speed-threshold": real_labels.speed_threshold_method},
                         datasets=["behaviordepot-demo1"], shared=shared, k=3)
    assert len(seen) == 3
    assert list(df["method"]) == ["no", "speed-threshold"]
    no = df.iloc[0]
    assert no["n_positive"] == 1368 and no["n_annotated"] == 6000
    assert no["f1_pooled"] == 0 and no["recall"] == 0
    assert 0 < df.iloc[1]["f1"] <= 1
