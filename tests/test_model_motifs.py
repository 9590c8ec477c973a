"""Tests of unsupervised motif segmentation (dlc_lookagain.model.motifs): small synthetic data."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import adjusted_rand_score
from threadpoolctl import threadpool_limits

from dlc_lookagain.model.motifs import MotifSegmenter, choose_n_motifs, summarize_motifs, viterbi_sticky


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Small k-means fits are fastest single-threaded, and do not fight other processes for cores."""
    with threadpool_limits(1):
        yield


def _n_bouts(labels: np.ndarray) -> int:
    return int(1 + np.count_nonzero(labels[1:] != labels[:-1]))


def _runs_with_flicker(seed: int = 0, n_frames: int = 2000, dim: int = 8, k: int = 4, flicker: float = 0.05):
    """4 Gaussian clusters in 8-D, visited in runs of 20-80 frames; 5 % of frames flicker.

    A flicker frame is drawn from another cluster than its run's. Returns (features, run labels).
    """
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 3.0, (k, dim))
    runs, prev = [], -1
    while sum(len(r) for r in runs) < n_frames:
        state = int(rng.choice([c for c in range(k) if c != prev]))
        runs.append([state] * int(rng.integers(20, 81)))
        prev = state
    truth = np.concatenate(runs)[:n_frames]
    shown = truth.copy()
    flick = rng.random(n_frames) < flicker
    shown[flick] = (truth[flick] + rng.integers(1, k, flick.sum())) % k
    return centers[shown] + rng.normal(0.0, 1.0, (n_frames, dim)), truth


@pytest.fixture(scope="module")
def data():
    return _runs_with_flicker()


@pytest.fixture(scope="module")
def fitted(data):
    return MotifSegmenter(4, pca_dim=16, stickiness=0.9, random_state=0).fit(data[0])


def test_recovers_runs_and_smoothing_removes_flicker(data, fitted):
    x, truth = data
    labels, post = fitted.predict(x)
    raw, _ = fitted.predict(x, smooth=False)
    assert labels.shape == (len(x),) and post.shape == (len(x), 4)
    np.testing.assert_allclose(post.sum(axis=1), 1.0)
    assert adjusted_rand_score(truth, labels) > 0.9
    assert _n_bouts(labels) < _n_bouts(raw)
    assert _n_bouts(labels) <= 1.2 * _n_bouts(truth)
    assert adjusted_rand_score(truth, labels) > adjusted_rand_score(truth, raw)


def test_fit_on_list_with_masks_is_deterministic(data):
    x, _ = data
    parts = [x[:1200], x[1200:]]
    masks = [np.ones(1200, bool), np.ones(len(x) - 1200, bool)]
    a = MotifSegmenter(4, random_state=3).fit(parts, masks)
    b = MotifSegmenter(4, random_state=3).fit(parts, masks)
    np.testing.assert_array_equal(a.centers_, b.centers_)
    out = a.fit_predict(parts, masks)
    assert isinstance(out, list) and len(out) == 2 and out[1][0].shape == (len(x) - 1200,)


def test_invalid_frames_get_minus_one(data, fitted):
    x, truth = data
    x = x.copy()
    mask = np.ones(len(x), bool)
    mask[100:130] = False
    x[500] = np.nan  # non-finite features are invalid too
    labels, post = fitted.predict(x, mask)
    assert np.all(labels[100:130] == -1) and labels[500] == -1
    assert np.isnan(post[100:130]).all() and np.isnan(post[500]).all()
    valid = labels >= 0
    assert valid.sum() == len(x) - 31
    assert adjusted_rand_score(truth[valid], labels[valid]) > 0.9


def test_save_load_round_trip(data, fitted):
    x, _ = data
    labels, post = fitted.predict(x)

    buf = io.BytesIO()
    np.savez(buf, **fitted.to_dict())
    buf.seek(0)
    with np.load(buf) as z:
        from_npz = MotifSegmenter.from_dict(dict(z))
    buf = io.BytesIO()
    torch.save({"motifs": fitted.to_dict(plain=True)}, buf)
    buf.seek(0)
    from_torch = MotifSegmenter.from_dict(torch.load(buf, weights_only=True)["motifs"])

    for seg in (from_npz, from_torch):
        l2, p2 = seg.predict(x)
        np.testing.assert_array_equal(l2, labels)
        np.testing.assert_array_equal(p2, post)
        assert seg.stickiness == fitted.stickiness and seg.pca_dim == fitted.pca_dim

    no_pca = MotifSegmenter(4, pca_dim=None).fit(x)
    again = MotifSegmenter.from_dict(no_pca.to_dict())
    assert again.pca_dim is None
    np.testing.assert_array_equal(again.predict(x)[0], no_pca.predict(x)[0])


def _viterbi_reference(log_e: np.ndarray, p: float) -> np.ndarray:
    """Dense textbook Viterbi (O(T K^2)) for comparison."""
    n, k = log_e.shape
    log_a = np.full((k, k), np.log((1 - p) / (k - 1)))
    np.fill_diagonal(log_a, np.log(p))
    delta, back = log_e[0] - np.log(k), np.zeros((n, k), int)
    for t in range(1, n):
        s = delta[:, None] + log_a
        back[t] = s.argmax(axis=0)
        delta = s.max(axis=0) + log_e[t]
    path = [int(delta.argmax())]
    for t in range(n - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    return np.array(path[::-1])


@pytest.mark.parametrize("p", [0.95, 0.6, 0.1])
def test_viterbi_matches_dense_reference(p):
    rng = np.random.default_rng(1)
    log_e = np.log(rng.dirichlet(np.full(5, 0.5), 400))
    np.testing.assert_array_equal(viterbi_sticky(log_e, p), _viterbi_reference(log_e, p))


def test_predict_labels_long_input():
    rng = np.random.default_rng(0)
    seg = MotifSegmenter(10, pca_dim=8).fit(rng.normal(size=(2000, 12)))
    x = rng.normal(size=(20_000, 12))
    labels, _ = seg.predict(x)
    assert labels.min() >= 0 and labels.max() < 10


def test_summarize_motifs_hand_made():
    fps = 10.0
    labels = np.array([0, 0, 0, 1, 1, -1, 1, 0, 0, 2, 2, 2, 2, 2])  # 14 frames, 13 valid
    speed = np.arange(14, dtype=float)
    probs = np.zeros((14, 2))
    probs[labels == 2, 1] = 0.8
    probs[labels == 0, 0] = 0.6
    df = summarize_motifs(
        labels, fps, per_frame={"speed": speed}, behavior_probs=probs, behavior_names=["rest", "groom"]
    )
    assert isinstance(df, pd.DataFrame)
    assert list(df["motif"]) == [0, 1, 2]
    assert list(df["frames"]) == [5, 3, 5]
    np.testing.assert_allclose(df["fraction"], [5 / 13, 3 / 13, 5 / 13])
    assert list(df["n_bouts"]) == [2, 2, 1]  # the invalid frame splits motif 1
    np.testing.assert_allclose(df["mean_bout_s"], [0.25, 0.15, 0.5])
    np.testing.assert_allclose(df["median_bout_s"], [0.25, 0.15, 0.5])
    np.testing.assert_allclose(df["mean_speed"], [np.mean([0, 1, 2, 7, 8]), np.mean([3, 4, 6]), 11.0])
    assert list(df["looks_like"]) == ["rest", "rest", "groom"]  # motif 1: all-zero tie -> first
    np.testing.assert_allclose(df["looks_like_prob"], [0.6, 0.0, 0.8])

    padded = summarize_motifs(labels, fps, n_motifs=4)
    assert list(padded["frames"]) == [5, 3, 5, 0] and padded["n_bouts"].iloc[3] == 0


def test_choose_n_motifs_picks_four(data):
    x, _ = data
    assert choose_n_motifs(x, candidates=(4, 6, 8, 10, 12, 16)) == 4
