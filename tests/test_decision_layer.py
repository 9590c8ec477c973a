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
from dlc_lookagain.features.skeleton import (
    impute_missing_parts,
    match_bodyparts,
    part_dropout_copy,
    rename_to_training,
    skeleton_profile,
    training_skeleton,
)
from dlc_lookagain.io.record import PoseRecord, resolve_fps
from dlc_lookagain.model.decision import DecisionLayer, LabeledFeatures, _rows, cv_folds, fit_decision_layer
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
    rec, walking = _walker(seed=11)
    x, _ = feature_bank(rec)
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
    """A part dropped, a part added or parts renamed: a dropped part is placed from the others, an
    extra one left out, never a crash, and the behavior is still found."""
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
    assert "placed right_ear where the training skeleton has them" in caplog.text  # the dropped part
    assert "not used: tail_tip" in caplog.text  # the extra part
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
    # Unmatched training parts are placed from the others; the far point is left out.
    assert kept.bodyparts == list(trained) and kept.keypoints.shape[2] == len(trained)


def test_unnamed_parts_are_matched_with_every_part_tried_as_the_head():
    """Every bodypart renamed to a meaningless name and the order reversed: no head is named, so the
    body frame is unknown; trying each part as the head recovers the training names."""
    rec, _ = _walker(t=300, seed=6)
    trained = skeleton_profile(rec)
    order = [4, 3, 2, 1, 0]
    anon = dataclasses.replace(rec, keypoints=rec.keypoints[:, :, order], confidence=rec.confidence[:, :, order],
                               bodyparts=["a", "b", "c", "d", "e"])
    back = rename_to_training(anon, trained)
    assert back.bodyparts == list(trained)
    np.testing.assert_allclose(back.keypoints[:, :, [0, 3, 4]], rec.keypoints[:, :, [0, 3, 4]])  # ears: either way


def test_a_missing_part_is_placed_where_training_had_it():
    rec, _ = _walker(t=300, seed=7)
    trained = skeleton_profile(rec)
    keep = [1, 2, 3, 4]  # the nose (the head) is not tracked here
    dropped = dataclasses.replace(rec, keypoints=rec.keypoints[:, :, keep], confidence=rec.confidence[:, :, keep],
                                  bodyparts=[PARTS[k] for k in keep])
    placed, added = impute_missing_parts(dropped, trained)
    assert added == ["nose"] and placed.bodyparts[-1] == "nose" and np.isnan(placed.confidence[..., -1]).all()
    err = np.hypot(*(placed.keypoints[:, :, -1] - rec.keypoints[:, :, 0]).transpose(2, 0, 1))
    body = np.hypot(*(rec.keypoints[:, :, 0] - rec.keypoints[:, :, 4]).transpose(2, 0, 1))
    assert np.nanmedian(err / body) < 0.2  # within a fifth of a body length of where it really was
    assert rename_to_training(dropped, trained).bodyparts == list(trained)


def test_part_dropout_copy_replaces_one_part_per_block_by_its_guess():
    rec, _ = _walker(t=600, seed=3)
    trained = skeleton_profile(rec)
    copy = part_dropout_copy(rec, trained, block_s=2.0, seed=1)
    assert copy.bodyparts == rec.bodyparts and copy.keypoints.shape == rec.keypoints.shape
    changed = np.isnan(copy.confidence).all(axis=1)  # (T, K): the placed part of each frame
    assert (changed.sum(axis=1) == 1).all()  # exactly one part per frame
    blocks = changed.reshape(10, 60, 5)
    assert (blocks == blocks[:, :1]).all()  # the same part through a 2 s block
    assert set(np.nonzero(blocks[:, 0])[1]) == set(range(5))  # every part takes its turn
    moved = np.hypot(*(copy.keypoints - rec.keypoints).transpose(3, 0, 1, 2))  # (T, I, K)
    assert (moved[~np.broadcast_to(changed[:, None], moved.shape)] == 0).all()  # the others untouched
    body = np.hypot(*(rec.keypoints[:, :, 0] - rec.keypoints[:, :, 4]).transpose(2, 0, 1))
    assert np.nanmedian(moved.max(axis=2) / body) < 0.2  # guesses near where the part really was
    again = part_dropout_copy(rec, trained, block_s=2.0, seed=1)
    np.testing.assert_array_equal(again.keypoints, copy.keypoints)  # deterministic
    assert part_dropout_copy(rec, {b: trained[b] for b in PARTS[:2]}) is rec  # too few parts to drop one


def test_augmented_rows_only_train():
    t = 10
    x = np.arange(t, dtype=np.float32).reshape(t, 1, 1)
    rec = LabeledFeatures(x, np.zeros((t, 1, 1), bool), np.ones((t, 1), bool), 30.0, augmented=-x)
    frames = np.ones(t, bool)
    plain = _rows(rec, frames, None, 2)[0].ravel()
    assert plain.tolist() == [0, 2, 4, 6, 8]  # scored rows: the features as tracked
    cv = _rows(rec, frames, None, 2, augmented=True)[0].ravel()
    assert sorted(cv.tolist()) == [-9, -7, -5, -3, -1, 0, 2, 4, 6, 8]  # odd frames from the copy
    final = _rows(rec, frames, None, 1, augmented=True)[0].ravel()
    assert sorted(final.tolist()) == sorted([*range(t), *(-v for v in range(t))])


def test_resolve_fps_says_when_it_guesses(caplog):
    rec, _ = _walker(t=10)
    assert resolve_fps(rec) == 30.0
    none = dataclasses.replace(rec, fps=None)
    assert resolve_fps(none, 50) == 50.0
    assert resolve_fps(none, label_fps=25.0) == 25.0
    with caplog.at_level(logging.WARNING):
        assert resolve_fps(none) == 30.0
    assert "ASSUMING 30 fps" in caplog.text and "pass fps=" in caplog.text
    from dlc_lookagain.errors import command_line

    caplog.clear()
    with caplog.at_level(logging.WARNING), command_line():  # as dlc-lookagain runs it
        resolve_fps(none)
    assert "pass --fps" in caplog.text
    with pytest.raises(ValueError, match="positive"):
        resolve_fps(none, -1)


def test_relational_features_place_the_partner_in_the_own_body_frame():
    """Two animals nose to nose along the x axis: the partner is straight ahead (x > 0, y ~ 0) and
    heads the other way (axis cosine -1); mirroring the image changes nothing."""
    t = 60
    body = np.array([[20, 0], [14, 5], [14, -5], [0, 0], [-18, 0]], float)
    a = body + [100, 100]
    b = body * [-1, 1] + [160, 100]  # turned around, 60 px ahead of a's centroid
    kp = np.broadcast_to(np.stack([a, b])[None], (t, 2, 5, 2)).copy()
    kp += np.random.default_rng(0).normal(0, 0.2, kp.shape)
    rec = PoseRecord(keypoints=kp.astype(np.float32), confidence=np.ones((t, 2, 5), np.float32),
                     individuals=["a", "b"], bodyparts=list(PARTS), fps=30.0, source=Path("pair.h5"))
    x, names = feature_bank(rec)
    v = {n: float(np.median(x[:, 0, names.index(n)])) for n in names if n.startswith("rel_")}
    assert v["rel_partner_centroid_x"] > 1.0 and abs(v["rel_partner_centroid_y"]) < 0.05
    assert v["rel_axis_cos"] < -0.99 and v["rel_my_head_in_partner_x"] > 0  # at the partner's front
    assert v["rel_head_head_dist_bl"] < v["rel_partner_centroid_x"]
    mirrored = dataclasses.replace(rec, keypoints=kp.astype(np.float32) * [1, -1])
    xm, _ = feature_bank(mirrored)
    rel = [k for k, n in enumerate(names) if n.startswith("rel_")]
    np.testing.assert_allclose(xm[..., rel], x[..., rel], atol=1e-3)


def test_pair_labels_pool_the_animals_probabilities(layer):
    """A label given to both animals of a pair, each animal's evidence noisy on its own: averaging
    the two probabilities wins out of fold and is kept; per-animal labels (the walkers) keep theirs."""
    assert not layer._pooled().any()
    rng = np.random.default_rng(0)
    samples = []
    for _ in range(3):
        t = 1500
        together = np.repeat(rng.random(t // 30) < 0.4, 30)[:, None].repeat(2, 1)  # 1 s bouts, both animals
        x = together[..., None] * 1.0 + rng.normal(0, 1.2, (t, 2, 3))  # weak, independent evidence
        samples.append(LabeledFeatures(x.astype(np.float32), together[..., None], np.ones((t, 2), bool), 30.0))
    pair = fit_decision_layer(samples, ["together"], ["a", "b", "c"], k=3, rounds=30, threads=1,
                              smooth_candidates_s=(0.0,))
    assert pair._pooled().tolist() == [True]
    off = fit_decision_layer(samples, ["together"], ["a", "b", "c"], k=3, rounds=30, threads=1,
                             smooth_candidates_s=(0.0,), pool_animals=False)
    assert off.cv_f1[0] < pair.cv_f1[0] - 0.03
    # Stored and read back.
    again = DecisionLayer.from_dict(pair.to_dict())
    p = pair.predict_proba(samples[0].features)
    np.testing.assert_array_equal(again.decide(p, 30.0), pair.decide(p, 30.0))
    smoothed = pair.smooth(p, 30.0)
    np.testing.assert_allclose(smoothed[:, 0], smoothed[:, 1])  # both animals see the pair's probability


def test_thresholds_reach_the_probabilities_of_rare_behaviors():
    from dlc_lookagain.model.decision import _choose_threshold

    rng = np.random.default_rng(0)
    truth = np.zeros((3000, 1), bool)
    truth[1000:1030] = True  # 1 % of the frames
    # A rare behavior's probabilities stay far below 0.02 even where it happens.
    p = np.where(truth, 0.008, 0.0005) + rng.uniform(0, 0.0003, truth.shape)
    threshold, _, _, _, f1 = _choose_threshold([p], [truth], 30.0, (0.0,))
    assert threshold < 0.008 and f1 == pytest.approx(1.0)
    # No held-out positive is ever found: F1 0 everywhere; the lowest threshold, no bout filter, F1 0.
    threshold, bout, smooth, pooled, f1 = _choose_threshold([np.zeros_like(p)], [truth], 30.0, (0.0, 0.4))
    assert (threshold, bout, smooth, pooled, f1) == (0.001, 0.0, 0.0, False, 0.0)

