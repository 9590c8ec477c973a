"""The look schedule: which frames the decision layer looks at (model/look_schedule.py), and the
cross-validation cache that lets training choose them from out-of-fold probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from dlc_lookagain.features.appearance import uniform_frames
from dlc_lookagain.model.decision import DecisionLayer, LabeledFeatures, fit_decision_layer
from dlc_lookagain.model.look_schedule import ambiguity, gated_frames, look_frames


def test_ambiguity_is_one_at_a_threshold_and_falls_in_log_odds():
    thresholds = np.array([0.5, 0.05])
    p = np.array([[[0.5, 0.0]], [[0.73106, 0.0]], [[0.0, 0.05]], [[0.0, 0.5]], [[np.nan, np.nan]]], np.float32)
    a = ambiguity(p, thresholds)
    assert a[0] == pytest.approx(1.0, abs=1e-3) and a[2] == pytest.approx(1.0, abs=1e-3)
    assert a[1] == pytest.approx(np.exp(-1.0), abs=1e-3)  # one log-odds unit from 0.5
    assert a[3] == pytest.approx(np.exp(-np.log(19.0)), abs=1e-3)  # 0.5 vs a 0.05 threshold
    assert a[4] == 0.0  # an untracked animal gives no reason to look
    # The frame's score is its most open decision over animals and behaviors; a behavior mask restricts it.
    two = np.array([[[0.99, 0.99], [0.5, 0.99]]], np.float32)
    assert ambiguity(two, np.array([0.5, 0.5]))[0] == pytest.approx(1.0, abs=1e-3)
    assert ambiguity(two, np.array([0.5, 0.5]), behaviors=np.array([False, True]))[0] < 0.02


def test_gate_spends_the_budget_where_decisions_are_open():
    t = 3000
    score = np.full(t, 0.01)
    score[1200:1260] = 1.0  # 2 s in doubt, e.g. an animal still at the water spout
    budget = uniform_frames(t, 0.03).size
    frames = gated_frames(score, budget)
    assert frames.size == budget and np.all(np.diff(frames) > 0)
    inside = ((frames >= 1200) & (frames < 1260)).sum()
    evenly = ((uniform_frames(t, 0.03) >= 1200) & (uniform_frames(t, 0.03) < 1260)).sum()
    # Half the budget moves into the 2 % of the recording in doubt (density there: 25x the rest).
    assert evenly <= 2 and inside >= 0.4 * budget
    # ... and the floor still spreads a quarter of it: no long stretch goes unseen.
    outside = frames[(frames < 1200) | (frames >= 1260)]
    assert outside.size >= 0.2 * budget and np.diff(np.r_[0, outside, t]).max() < 0.2 * t
    # Without any doubt (or floor 1) the gate looks evenly.
    flat = gated_frames(np.zeros(t), budget)
    assert np.ptp(np.diff(flat)) <= 1
    np.testing.assert_array_equal(gated_frames(score, budget, floor=1.0), flat)


def test_gate_never_repeats_a_frame_even_when_one_frame_holds_all_doubt():
    score = np.zeros(100)
    score[50] = 1.0
    frames = gated_frames(score, 10, floor=0.0)
    assert frames.size == 10 and np.unique(frames).size == 10 and 50 in frames
    assert gated_frames(score, 500).size == 100 and gated_frames(score, 0).size == 0


def test_look_frames_same_budget_for_both_policies():
    rng = np.random.default_rng(0)
    proba = rng.uniform(0, 1, (900, 2, 3)).astype(np.float32)
    th = np.array([0.3, 0.5, 0.05])
    for k in (0.03, 0.1, 0.25):
        uniform = look_frames("uniform", 900, k)
        gate = look_frames("gate", 900, k, proba=proba, thresholds=th)
        assert uniform.size == gate.size > 0
    assert look_frames("gate", 900, 1.0, proba=proba, thresholds=th).size == 900
    assert look_frames("gate", 900, 0.0, proba=proba, thresholds=th).size == 0
    with pytest.raises(ValueError, match="look policy"):
        look_frames("random", 900, 0.1)
    with pytest.raises(ValueError, match="frames of probabilities"):
        look_frames("gate", 800, 0.1, proba=proba, thresholds=th)


def _samples(seed: int, extra: float = 0.0):
    rng = np.random.default_rng(seed)
    out = []
    for r in range(3):
        y = np.zeros((600, 1, 1), bool)
        for start in rng.choice(np.arange(0, 580, 20), 8, replace=False):
            y[start:start + 15] = True
        x = rng.normal(0, 1, (600, 1, 4)).astype(np.float32)
        x[..., 0] += 1.5 * y[..., 0]
        x[..., 3] += extra * y[..., 0]  # the "vision" column
        out.append(LabeledFeatures(x, y, np.ones((600, 1), bool), 30.0, f"r{r}"))
    return out


def test_cache_reuses_cross_validation_only_for_the_same_data(monkeypatch):
    import dlc_lookagain.model.decision as decision

    trainings = []
    real_train = decision._train
    monkeypatch.setattr(decision, "_train", lambda *a, **k: trainings.append(1) or real_train(*a, **k))
    groups = {"bank": [0, 1, 2], "vision": [3]}
    cache: dict = {}
    fit = dict(k=3, rounds=20, threads=1, cache=cache)
    kp = fit_decision_layer(_samples(0), ["b"], list("abcd"), groups={"bank": [0, 1, 2]}, **fit)
    assert len(kp.oof_proba) == 3 and kp.oof_proba[0].shape == (600, 1, 1)
    scored = ~np.isnan(kp.oof_proba[0])
    assert scored.all()  # every labeled frame of a held-out recording is scored out of fold
    n_entries, n_trained = len(cache), len(trainings)
    assert n_trained > 0
    again = fit_decision_layer(_samples(0), ["b"], list("abcd"), groups={"bank": [0, 1, 2]}, **fit)
    assert len(cache) == n_entries and len(trainings) == n_trained  # nothing trained again
    assert again.models == kp.models and again.thresholds.tolist() == kp.thresholds.tolist()
    # Vision columns that tell the behavior apart: only the new candidate is cross-validated, and it wins.
    full = fit_decision_layer(_samples(0, extra=4.0), ["b"], list("abcd"), groups=groups, **fit)
    assert full.uses_vision and full.without_vision.models == kp.models
    # Other data in the same columns is never served from the cache.
    other = fit_decision_layer(_samples(1), ["b"], list("abcd"), groups={"bank": [0, 1, 2]}, **fit)
    assert other.models != kp.models


def test_look_policy_is_stored_and_checked():
    layer = fit_decision_layer(_samples(0), ["b"], list("abcd"), groups={"bank": [0, 1, 2]}, k=3, rounds=10,
                               threads=1)
    layer.look_policy = "gate"
    blob = layer.to_dict()
    assert DecisionLayer.from_dict(blob).look_policy == "gate"
    assert DecisionLayer.from_dict({k: v for k, v in blob.items() if k != "look_policy"}).look_policy == "uniform"
    with pytest.raises(ValueError, match="look policy"):
        DecisionLayer.from_dict({**blob, "look_policy": "os.system"})


def test_training_chooses_gate_frames_from_out_of_fold_probabilities():
    """train(look_policy="gate"): each labeled recording's frames come from the keypoint-only layer's
    out-of-fold probabilities (what the gate sees on a recording it was not trained on), with the
    same budget as evenly spaced frames; the full fit then reuses that cross-validation."""
    from dlc_lookagain.model.look_schedule import frames_for_layer, training_frames

    samples = _samples(0)
    cache: dict = {}
    fit = dict(k=3, rounds=20, threads=1, cache=cache)
    looks = training_frames("gate", samples, ["b"], list("abc"), {"bank": [0, 1, 2]}, 0.1, **fit)
    kp = fit_decision_layer(samples, ["b"], list("abc"), groups={"bank": [0, 1, 2]}, **fit)  # from the cache
    for frames, oof, s in zip(looks, kp.oof_proba, samples):
        np.testing.assert_array_equal(frames, frames_for_layer("gate", kp, oof, 0.1, 30.0))
        assert frames.size == uniform_frames(600, 0.1).size
        # More looks land on the behavior's edges and bouts (where the decision is open) than evenly.
        y = s.present[:, 0, 0]
        edge = np.convolve(np.abs(np.diff(y.astype(int), prepend=0)), np.ones(9), "same") > 0
        assert edge[frames].mean() >= edge[uniform_frames(600, 0.1)].mean()
    uniform = training_frames("uniform", samples, ["b"], list("abc"), {"bank": [0, 1, 2]}, 0.1, **fit)
    assert all(np.array_equal(u, uniform_frames(600, 0.1)) for u in uniform)
