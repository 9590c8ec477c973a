"""The feature bank and the boosted decision layer: what they compute, how they are chosen, stored and
read back, and how they behave on another skeleton."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pytest

from dlc_lookagain.errors import PoseFormatError
from dlc_lookagain.features import feature_bank
from dlc_lookagain.features.skeleton import match_bodyparts, rename_to_training, skeleton_profile, training_skeleton
from dlc_lookagain.io.record import PoseRecord, resolve_fps
from dlc_lookagain.model.decision import DecisionLayer, LabeledFeatures, cv_folds, fit_decision_layer
from dlc_lookagain.model.frame_features import align_columns

PARTS = ["nose", "left_ear", "right_ear", "body_center", "tail_base"]


def _walker(t: int = 900, n_ind: int = 2, fps: float = 30.0, seed: int = 0):
    """Animals that alternate between resting and walking bouts; labels say which.

    Returns the record and ``walking (T, I)``.
    """
    rng = np.random.default_rng(seed)
    walking = np.zeros((t, n_ind), bool)
    for i in range(n_ind):
        k = 0
        while k < t:
            length = int(rng.integers(int(0.5 * fps), int(3 * fps)))
            walking[k:k + length, i] = rng.random() < 0.5
            k += length
    heading = np.cumsum(rng.normal(0, 0.05, (t, n_ind)), axis=0)
    step = np.where(walking, 3.0, 0.0) * 30.0 / fps
    dx, dy = step * np.cos(heading), step * np.sin(heading)
    center = np.stack([np.cumsum(dx, 0), np.cumsum(dy, 0)], -1) + rng.uniform(100, 300, (1, n_ind, 2))
    body = np.array([[20, 0], [14, 5], [14, -5], [0, 0], [-18, 0]], float)  # nose ahead along heading
    rot = np.stack([np.stack([np.cos(heading), -np.sin(heading)], -1),
                    np.stack([np.sin(heading), np.cos(heading)], -1)], -2)  # (T, I, 2, 2)
    kp = center[:, :, None, :] + np.einsum("tiab,kb->tika", rot, body) + rng.normal(0, 0.7, (t, n_ind, 5, 2))
    rec = PoseRecord(keypoints=kp.astype(np.float32), confidence=np.full((t, n_ind, 5), 0.95, np.float32),
                     individuals=[f"m{i}" for i in range(n_ind)], bodyparts=list(PARTS), fps=fps,
                     source=Path(f"walker{seed}.h5"))
    return rec, walking


def test_feature_bank_shapes_names_and_invariances():
    rec, _ = _walker()
    x, names = feature_bank(rec)
    assert x.dtype == np.float32 and x.shape == (rec.n_frames, 2, len(names))
    assert len(set(names)) == len(names)
    assert not any("_px" in n for n in names)  # lengths in body lengths only
    assert {"centroid_speed_bl_s", "head_speed_bl_s", "soc_other_speed_bl_s", "soc_facing_rad",
            "centroid_speed_bl_s__w3s_change", "ego_x_bl__tail_base"} <= set(names)
    assert np.isfinite(x).mean() > 0.99
    # Scaling every coordinate (another camera resolution) changes nothing.
    scaled = dataclasses.replace(rec, keypoints=rec.keypoints * 2.5)
    x2, names2 = feature_bank(scaled)
    assert names2 == names
    np.testing.assert_allclose(np.nan_to_num(x2), np.nan_to_num(x), rtol=2e-3, atol=2e-3)
    # Same names for another recording of the skeleton (the columns a model stores).
    assert feature_bank(_walker(seed=3)[0])[1] == names


def test_feature_bank_windows_are_in_seconds():
    """The same movement at 30 and at 60 fps gives the same speed and 1 s window statistics."""
    rec30, _ = _walker(t=600, n_ind=1, fps=30.0, seed=1)
    kp60 = np.repeat(rec30.keypoints, 2, axis=0)
    kp60[1::2] = (rec30.keypoints + np.roll(rec30.keypoints, -1, axis=0)) / 2  # interpolate in between
    kp60[-1] = rec30.keypoints[-1]
    rec60 = dataclasses.replace(rec30, keypoints=kp60, confidence=np.repeat(rec30.confidence, 2, 0), fps=60.0)
    x30, names = feature_bank(rec30)
    x60, _ = feature_bank(rec60)
    for name in ("centroid_speed_bl_s__w1s_mean", "head_speed_bl_s__w3s_max"):
        k = names.index(name)
        a, b = x30[20:-20, 0, k], x60[40:-40:2, 0, k]
        assert np.corrcoef(a, b)[0, 1] > 0.97, name
        assert np.median(np.abs(a - b)) < 0.15 * np.median(np.abs(a)) + 1e-3, name


def test_feature_bank_marks_untracked_animals_missing():
    rec, _ = _walker(t=300)
    kp = rec.keypoints.copy()
    kp[100:200, 1] = np.nan  # the second animal leaves for 100 frames (longer than gap filling)
    x, names = feature_bank(dataclasses.replace(rec, keypoints=kp))
    assert np.isnan(x[120:180, 1]).all()
    # The first animal has no partner there: partner features missing, its own still there.
    assert np.isnan(x[150, 0, names.index("soc_centroid_dist_bl")])
    assert np.isfinite(x[150, 0, names.index("centroid_speed_bl_s")])


def test_cv_folds_hold_out_recordings_or_blocks_with_gaps():
    recs = [LabeledFeatures(np.zeros((n, 1, 2), np.float32), np.zeros((n, 1, 1), bool), np.ones((n, 1), bool),
                            30.0) for n in (100, 120, 90)]
    folds = cv_folds(recs, k=5)
    assert len(folds) == 3
    for f, fold in enumerate(folds):
        for r, (train, test) in enumerate(fold):
            assert test.all() == (r == f) and train.all() == (r != f) and not (train & test).any()
    one = cv_folds(recs[:1], k=4, gap_s=1.0)
    assert len(one) == 4
    covered = np.zeros(100, int)
    for [(train, test)] in one:
        covered += test
        idx_test = np.nonzero(test)[0]
        idx_train = np.nonzero(train)[0]
        assert np.abs(idx_train[:, None] - idx_test[None, :]).min() > 30  # 1 s gap at 30 fps
    assert (covered == 1).all()


@pytest.fixture(scope="module")
def walkers():
    out = []
    for seed in range(3):
        rec, walking = _walker(seed=seed)
        x, names = feature_bank(rec)
        present = np.stack([walking, ~walking], -1)
        out.append((rec, x, names, present))
    return out


@pytest.fixture(scope="module")
def layer(walkers):
    samples = [LabeledFeatures(x, present, np.ones(present.shape[:2], bool), 30.0, rec.source.name)
               for rec, x, _, present in walkers]
    return fit_decision_layer(samples, ["walk", "rest"], walkers[0][2], k=3, rounds=40, threads=1)


def test_decision_layer_learns_and_reports_out_of_fold_f1(layer, walkers):
    assert "leave-recording-out over 3 recordings" in layer.cv
    assert layer.cv_f1.shape == (2,) and (layer.cv_f1 > 0.9).all(), layer.cv_f1
    assert ((layer.thresholds > 0) & (layer.thresholds < 1)).all()
    rec, x, _, present = _walker(seed=11)[0], *feature_bank(_walker(seed=11)[0]), None
    walking = _walker(seed=11)[1]
    proba = layer.predict_proba(x)
    assert proba.shape == (rec.n_frames, 2, 2) and np.nanmin(proba) >= 0 and np.nanmax(proba) <= 1
    dec = layer.decide(proba, 30.0)
    f1 = 2 * (dec[..., 0] & walking).sum() / (dec[..., 0].sum() + walking.sum())
    assert f1 > 0.9


def test_decision_layer_round_trips_as_plain_data(layer, walkers):
    import json

    blob = json.loads(json.dumps(layer.to_dict()))  # nothing but JSON types
    again = DecisionLayer.from_dict(blob)
    x = walkers[0][1]
    np.testing.assert_array_equal(again.predict_proba(x), layer.predict_proba(x))
    for bad in ({**blob, "kind": "pickle"}, {**blob, "columns": [[10 ** 6]] * 2},
                {**blob, "models": [{"__reduce__": 1}] * 2}, {**blob, "thresholds": [0.5]}):
        with pytest.raises(ValueError):
            DecisionLayer.from_dict(bad)


def test_model_file_keeps_the_decision_layer(tmp_path, layer, walkers):
    torch = pytest.importorskip("torch")
    from dlc_lookagain.model.lookagain import LookAgainModel, ModelConfig, load_model, save_model

    net = LookAgainModel(ModelConfig(dim=16, depth=1, heads=2, behaviors=["walk", "rest"]))
    net.decision = layer
    path = save_model(net, tmp_path / "m.pt")
    loaded, manifest = load_model(path)
    x = walkers[1][1]
    np.testing.assert_array_equal(loaded.decision.predict_proba(x), layer.predict_proba(x))
    # A damaged decision layer is refused with the file's name, not run.
    blob = torch.load(path, weights_only=True)
    blob["decision"]["columns"] = [[-1]] * 2
    torch.save(blob, tmp_path / "bad.pt")
    with pytest.raises(PoseFormatError, match="bad.pt.*decision layer"):
        load_model(tmp_path / "bad.pt")


def test_another_skeleton_degrades_with_a_warning(layer, caplog):
    """A part dropped, a part added or parts renamed: missing columns are NaN, never a crash, and
    the body-level features still carry the behavior."""
    rec, walking = _walker(seed=21)
    dropped = dataclasses.replace(rec, keypoints=rec.keypoints[:, :, [0, 1, 3, 4]],
                                  confidence=rec.confidence[:, :, [0, 1, 3, 4]],
                                  bodyparts=["nose", "left_ear", "body_center", "tail_base"])
    renamed = dataclasses.replace(rec, bodyparts=["snout", "earL", "earR", "centre", "tailbase"])
    added = dataclasses.replace(
        rec, keypoints=np.concatenate([rec.keypoints, rec.keypoints[:, :, 4:5] - 5], axis=2),
        confidence=np.concatenate([rec.confidence, rec.confidence[:, :, :1]], axis=2), bodyparts=PARTS + ["tail_tip"])
    layer.skeleton = training_skeleton([rec])
    for variant in (dropped, renamed, added):
        with caplog.at_level(logging.INFO):
            matched = rename_to_training(variant, layer.skeleton)
            x, names = feature_bank(matched)
            aligned = align_columns(x, names, layer.feature_names, "variant.h5")
        assert aligned.shape[-1] == len(layer.feature_names)
        dec = layer.decide(layer.predict_proba(aligned), 30.0)
        f1 = 2 * (dec[..., 0] & walking).sum() / (dec[..., 0].sum() + walking.sum())
        assert f1 > 0.8, (variant.bodyparts, f1)
    assert "variant.h5" in caplog.text and "skeleton differs" in caplog.text  # the dropped part
    assert "snout->nose" in caplog.text and "earL->left_ear" in caplog.text and "centre->body_center" in caplog.text


def test_bodyparts_are_matched_by_name_then_by_place():
    rec, _ = _walker(t=300, seed=5)
    trained = skeleton_profile(rec)
    assert trained["nose"][0] > 0.3 > trained["tail_base"][0] and abs(trained["nose"][1]) < 0.05
    # Names no synonym covers, order shuffled: matched by where the points sit on the body.
    odd = dataclasses.replace(rec, keypoints=rec.keypoints[:, :, [4, 3, 0, 2, 1]],
                              confidence=rec.confidence[:, :, [4, 3, 0, 2, 1]], bodyparts=["p", "q", "head", "s", "t"])
    mapping = match_bodyparts(list(odd.bodyparts), skeleton_profile(odd), trained)
    assert mapping["p"] == "tail_base" and mapping["q"] == "body_center" and mapping["head"] == "nose"
    assert {mapping["s"], mapping["t"]} == {"left_ear", "right_ear"}  # mirror images: either way round
    # A point nowhere near any training point is not forced onto one.
    far = dataclasses.replace(rec, keypoints=np.concatenate([rec.keypoints, rec.keypoints[:, :, 4:5] - 60], 2),
                              confidence=np.concatenate([rec.confidence, rec.confidence[:, :, :1]], 2),
                              bodyparts=["nose", "left_ear", "right_ear", "body_center", "x", "y"])
    mapping = match_bodyparts(list(far.bodyparts), skeleton_profile(far), trained)
    assert "y" not in mapping and all(mapping[b] == b for b in ("nose", "left_ear", "right_ear", "body_center"))
    kept = rename_to_training(far, trained)
    assert kept.bodyparts == [mapping[b] for b in far.bodyparts if b in mapping] and kept.keypoints.shape[2] == len(mapping)


def test_resolve_fps_says_when_it_guesses(caplog):
    rec, _ = _walker(t=10)
    assert resolve_fps(rec) == 30.0
    none = dataclasses.replace(rec, fps=None)
    assert resolve_fps(none, 50) == 50.0
    assert resolve_fps(none, label_fps=25.0) == 25.0
    with caplog.at_level(logging.WARNING):
        assert resolve_fps(none) == 30.0
    assert "ASSUMING 30 fps" in caplog.text and "--fps" in caplog.text
    with pytest.raises(ValueError, match="positive"):
        resolve_fps(none, -1)
