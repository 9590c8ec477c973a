"""A project lacking a training bodypart: the part is placed and the decision thresholds chosen again
from the training poses the model keeps (model/refit.py); the poses survive saving and a damaged
copy is refused."""

from __future__ import annotations

import dataclasses
import logging
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dlc_lookagain.errors import PoseFormatError
from dlc_lookagain.features import feature_bank
from dlc_lookagain.features.skeleton import training_skeleton
from dlc_lookagain.model.decision import LabeledFeatures, fit_decision_layer
from dlc_lookagain.model.frame_features import decide_recording
from dlc_lookagain.model.refit import TrainingPoses

from test_decision_layer import _walker


def _f1(pred: np.ndarray, truth: np.ndarray) -> float:
    return 2 * (pred & truth).sum() / max(1, pred.sum() + truth.sum())


@pytest.fixture()
def trained():
    recs, samples, present = [], [], []
    for seed in range(3):
        rec, walking = _walker(seed=seed)
        x, names = feature_bank(rec)
        p = np.stack([walking, ~walking], -1)
        samples.append(LabeledFeatures(x, p, np.ones(p.shape[:2], bool), 30.0, rec.source.name))
        recs.append(rec)
        present.append(p)
    layer = fit_decision_layer(samples, ["walk", "rest"], names, k=3, rounds=40, threads=1)
    layer.skeleton = training_skeleton(recs)
    layer.training_poses = TrainingPoses(recs, present, [np.ones(p.shape[:2], bool) for p in present], folds=3,
                                          rounds=40)
    return layer


def _without(rec, part: str):
    keep = [k for k, b in enumerate(rec.bodyparts) if b != part]
    return dataclasses.replace(rec, keypoints=rec.keypoints[:, :, keep], confidence=rec.confidence[:, :, keep],
                               bodyparts=[rec.bodyparts[k] for k in keep])


def test_a_missing_part_is_placed_with_thresholds_chosen_again_once_per_skeleton(trained, caplog):
    rec, walking = _walker(seed=21)
    net = SimpleNamespace(decision=trained)
    with caplog.at_level(logging.WARNING):
        proba, present, _, _ = decide_recording(_without(rec, "right_ear"), net, 30.0)
    assert "the model was trained with right_ear, which this project lacks" in caplog.text
    assert "placed right_ear where the training skeleton has them" in caplog.text
    assert "cross-validated F1 on this skeleton: walk" in caplog.text
    assert proba.shape == (rec.n_frames, 2, 2) and np.nanmin(proba) >= 0 and np.nanmax(proba) <= 1
    assert _f1(present[..., 0], walking) > 0.8
    [again] = trained.training_poses._refits.values()
    assert again is not trained and again.feature_names == trained.feature_names
    assert again.skeleton == trained.skeleton and np.isfinite(again.cv_f1).all()
    # A second recording with the same skeleton reuses it (no second fit, no second notice).
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        decide_recording(_without(_walker(seed=22)[0], "right_ear"), net, 30.0)
    assert "lacks" not in caplog.text
    # The full skeleton is read by the trained layer itself.
    decide_recording(rec, net, 30.0)
    assert len(trained.training_poses._refits) == 1


def test_recalibration_scores_held_out_frames_from_the_placed_pose(trained, monkeypatch):
    """The held-out frames of the recalibration come from the pose with the part removed and placed."""
    import dlc_lookagain.model.decision as decision
    from dlc_lookagain.model.refit import recalibrate_for_bodyparts

    seen = []
    real_fit = decision.fit_decision_layer

    def spy(samples, *args, **kwargs):
        seen.extend(samples)
        return real_fit(samples, *args, **kwargs)

    monkeypatch.setattr(decision, "fit_decision_layer", spy)
    parts = [b for b in trained.skeleton if b != "right_ear"]
    recalibrate_for_bodyparts(trained, trained.training_poses, parts)
    names = trained.feature_names
    k = names.index("ego_y_bl__right_ear")
    for sample in seen:
        assert sample.scored is not None and sample.scored.shape == sample.features.shape
        # Placed: the right ear sits where the profile puts it, its own jitter gone.
        assert np.nanstd(sample.scored[..., k]) < 0.5 * np.nanstd(sample.features[..., k])


def test_without_training_poses_a_missing_part_is_placed(trained, caplog):
    trained.training_poses = None
    rec, walking = _walker(seed=21)
    with caplog.at_level(logging.WARNING):
        _, present, _, _ = decide_recording(_without(rec, "right_ear"), SimpleNamespace(decision=trained), 30.0)
    assert "placed right_ear where the training skeleton has them" in caplog.text
    assert _f1(present[..., 0], walking) > 0.8


def test_held_out_frames_are_scored_from_the_scored_features():
    """``LabeledFeatures.scored``: out-of-fold F1 and thresholds are those of the inputs the layer
    will meet, not of the training features."""
    samples, noisy = [], []
    rng = np.random.default_rng(0)
    for seed in range(3):
        rec, walking = _walker(seed=seed)
        x, names = feature_bank(rec)
        p = np.stack([walking, ~walking], -1)
        samples.append(LabeledFeatures(x, p, np.ones(p.shape[:2], bool), 30.0))
        noisy.append(dataclasses.replace(samples[-1], scored=x[rng.permutation(x.shape[0])]))
    clean = fit_decision_layer(samples, ["walk", "rest"], names, k=3, rounds=20, threads=1)
    shuffled = fit_decision_layer(noisy, ["walk", "rest"], names, k=3, rounds=20, threads=1)
    assert clean.cv_f1[0] > 0.9 and shuffled.cv_f1[0] < 0.8, (clean.cv_f1, shuffled.cv_f1)


def test_training_poses_survive_saving_and_a_damaged_copy_is_refused(trained, tmp_path):
    from dlc_lookagain.model.lookagain import LookAgainModel, ModelConfig, load_model, save_model

    net = LookAgainModel(ModelConfig(dim=16, depth=1, heads=2, behaviors=["walk", "rest"]))
    net.decision = trained
    path = save_model(net, tmp_path / "m.pt")
    loaded, _ = load_model(path)
    poses = loaded.decision.training_poses
    assert poses is not None and poses.folds == 3 and poses.rounds == 40 and poses.bodyparts == trained.training_poses.bodyparts
    for a, b in zip(poses.records, trained.training_poses.records):
        np.testing.assert_array_equal(a.keypoints, b.keypoints)
        assert a.fps == b.fps and a.individuals == b.individuals
    for a, b in zip(poses.present, trained.training_poses.present):
        np.testing.assert_array_equal(a, b)
    blob = torch.load(path, weights_only=True)
    blob["decision"]["training_poses"]["recordings"][0]["present"] = torch.zeros(5, 2, 2, dtype=torch.uint8)
    torch.save(blob, tmp_path / "bad.pt")
    with pytest.raises(PoseFormatError, match="damaged"):
        load_model(tmp_path / "bad.pt")
