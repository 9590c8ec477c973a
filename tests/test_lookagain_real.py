"""The LookAgain keypoint path of the real-label benchmark (benchmarks/lookagain_real.py).

The data tests run the method on one fold of BehaviorDEPOT demo 1 (``../shared/data``, skipped
when absent) with a handful of training steps.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

import baselines  # noqa: E402
import lookagain_real as la  # noqa: E402
import real_labels  # noqa: E402

#: Few steps: a run takes a few seconds; enough for the warm-started model to separate freezing.
TINY = la.Settings(steps=6, eval_every=3)
FOLD = 2  # a middle test block: the training frames are two segments


# ----------------------------------------------------------------------------------------------
# Without data
# ----------------------------------------------------------------------------------------------


def test_training_ranges_middle_fold():
    train = np.ones(1000, bool)
    train[400:600] = False  # test block and its gaps
    fit, hold = la.training_ranges(train, 0.2, gap=10)
    assert hold == (840, 1000)  # last 20 % of the 800 training frames, from the last segment
    assert fit == [(0, 400), (600, 830)]  # 10-frame gap before the held-out block


def test_training_ranges_falls_back_to_longest_segment():
    train = np.ones(1000, bool)
    train[850:950] = False  # the last segment (50 frames) is shorter than the 180-frame block
    fit, hold = la.training_ranges(train, 0.2, gap=5, min_frames=20)
    assert hold == (670, 850)
    assert fit == [(0, 665), (950, 1000)]
    # A held-out block must be strictly shorter than the segment it is taken from.
    with pytest.raises(ValueError):
        la.training_ranges(np.ones(10, bool), 1.0, gap=0)


def test_fold_targets_nan_outside_annotated_training_frames():
    t, n_ind = 8, 2
    train = np.array([1, 1, 1, 0, 0, 1, 1, 1], bool)
    annotated = np.zeros((t, n_ind), bool)
    annotated[:, 0] = train  # animal 1 never annotated
    annotated[1, 0] = False  # one unannotated training frame
    present = np.zeros((t, n_ind, 1), bool)
    present[[0, 6], 0, 0] = True
    fold = SimpleNamespace(train=train, train_annotated=annotated, train_present=present)
    y = la.fold_targets(fold)
    assert y.shape == (t, n_ind, 1) and y.dtype == np.float32
    assert np.isnan(y[~train]).all() and np.isnan(y[:, 1]).all() and np.isnan(y[1, 0]).all()
    np.testing.assert_array_equal(y[[0, 2, 5, 6, 7], 0, 0], [1, 0, 0, 1, 0])


# ----------------------------------------------------------------------------------------------
# One fold of BehaviorDEPOT demo 1
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(shared):
    data = real_labels.load_dataset("behaviordepot-demo1", shared)
    features, names = baselines.keypoint_features(data.record)
    fold = real_labels.make_folds(data, features, names, k=5)[FOLD]
    return data, fold


@pytest.fixture(scope="module")
def tiny_run(demo):
    """The method run once with spies on its data preparation, training and calibration."""
    import torch

    _, fold = demo
    calls = {}
    real_prepare, real_fit, real_calibrate = la.prepare_fold, la.fit_behavior, la.calibrate

    def prepare(*args, **kwargs):
        calls["seqs"] = real_prepare(*args, **kwargs)
        return calls["seqs"]

    def fit(model, seqs, cfg, **kwargs):
        calls["fit"] = (seqs, kwargs.get("val"), cfg)
        return real_fit(model, seqs, cfg, **kwargs)

    def calibrate(model, seqs, **kwargs):
        calls["calibrate"] = (seqs, kwargs, model.thresholds_at(0.0).numpy().copy())
        out = real_calibrate(model, seqs, **kwargs)
        calls["threshold"] = model.thresholds_at(0.0).numpy().copy()
        return out

    threads = torch.get_num_threads()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(la, "prepare_fold", prepare)
        mp.setattr(la, "fit_behavior", fit)
        mp.setattr(la, "calibrate", calibrate)
        pred = la.lookagain_method(fold, TINY)
    calls["threads_after"] = (threads, torch.get_num_threads())
    return pred, calls


@pytest.mark.shared
def test_training_pieces_exclude_test_frames(demo):
    data, fold = demo
    seqs = la.prepare_fold(fold, TINY)
    t = data.record.n_frames
    # Targets given to training: labels on training frames, NaN on the test block and its gaps.
    assert np.isnan(seqs.full.targets[~fold.train]).all()
    assert fold.test.sum() == 1200 and np.isnan(seqs.full.targets[fold.test]).all()
    np.testing.assert_array_equal(seqs.full.targets[fold.train], data.labels.present[fold.train])
    # Fitted segments and the held-out block lie in training frames, apart from each other.
    covered = np.zeros(t, int)
    for a, b in seqs.fit_ranges + [seqs.hold_range]:
        covered[a:b] += 1
    assert covered.max() == 1 and not covered[~fold.train].any()
    assert len(seqs.fit_ranges) == 2  # before and after the middle test block
    a, b = seqs.hold_range
    assert b == t and abs((b - a) - 0.2 * fold.train.sum()) <= 1
    assert a - seqs.fit_ranges[-1][1] == 50  # 1 s at 50 fps between fitted and held-out frames
    # The pieces are those frames of the recording, with their labels.
    for seq, (a, b) in zip(seqs.fit + seqs.hold, seqs.fit_ranges + [seqs.hold_range]):
        assert seq.n_frames == b - a
        np.testing.assert_array_equal(seq.pose.tokens, seqs.full.pose.tokens[a:b])
        np.testing.assert_array_equal(seq.targets, data.labels.present[a:b].astype(np.float32))


@pytest.mark.shared
@pytest.mark.slow
def test_method_trains_on_training_pieces_only(tiny_run):
    _, calls = tiny_run
    seqs = calls["seqs"]
    fit_seqs, val, cfg = calls["fit"]
    assert fit_seqs is seqs.fit and val is seqs.hold  # never the whole recording
    assert cfg.behavior_steps == TINY.steps and cfg.seed == TINY.seed + FOLD
    cal_seqs, cal_kwargs, before = calls["calibrate"]
    assert cal_seqs is seqs.hold and cal_kwargs == {"selector": "uniform"}
    assert not np.allclose(calls["threshold"], before)  # calibration moved the 0.5 default
    before_threads, after_threads = calls["threads_after"]
    assert before_threads == after_threads


@pytest.mark.shared
@pytest.mark.slow
def test_predictions_shape_range_and_signal(demo, tiny_run):
    data, fold = demo
    pred, calls = tiny_run
    assert isinstance(pred, real_labels.Prediction)
    assert pred.proba.shape == pred.decision.shape == data.labels.present.shape == (6000, 1, 1)
    assert pred.decision.dtype == bool
    assert np.isfinite(pred.proba).all() and pred.proba.min() >= 0 and pred.proba.max() <= 1
    np.testing.assert_array_equal(pred.decision, pred.proba >= calls["threshold"])
    p, y = pred.proba[fold.test, 0, 0], data.labels.present[fold.test, 0, 0]
    assert p.std() > 0.01 and 0 < pred.decision[fold.test].mean() < 1  # not constant
    # Freezing is separable from keypoints after a few steps from the bundled weights (~0.85).
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y, p) > 0.7


@pytest.mark.shared
@pytest.mark.slow
def test_deterministic_and_blind_to_test_labels(demo, tiny_run):
    _, fold = demo
    pred, _ = tiny_run
    again = la.lookagain_method(fold, TINY)
    np.testing.assert_array_equal(again.proba, pred.proba)
    np.testing.assert_array_equal(again.decision, pred.decision)
    # "Present" on every frame that is not an annotated training frame (test block, gaps): a
    # method that read train_present without train_annotated would train on those as freezing.
    outside = ~fold.train_annotated[..., None]
    assert outside[fold.test].all() and not fold.train_present[outside].any()
    leaky = dataclasses.replace(fold, train_present=fold.train_present | outside)
    blind = la.lookagain_method(leaky, TINY)
    np.testing.assert_array_equal(blind.proba, pred.proba)
