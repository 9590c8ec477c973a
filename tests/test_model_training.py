"""Training procedures of LookAgain (dlc_lookagain.model.training) on a tiny synthetic problem.

The problem: one mouse random-walks with identical keypoint statistics whether it behaves or not;
the behavior shows only in the frozen vision feature (crop dim 0 is +1 during the behavior, -1
otherwise). Recordings alternate "ambiguous" stretches (keypoint confidence 0.35, where the behavior
happens) and "clear" stretches (confidence 1, never the behavior), so keypoints tell *where* vision
is needed but not *what* it will show. A model that fuses vision must beat keypoints alone, and a
gate trained on the benefit of vision must prefer the ambiguous stretches.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from dlc_lookagain.io.record import PoseRecord
from dlc_lookagain.model.heads import calibrate_thresholds, f1_per_class
from dlc_lookagain.model.inference import choose_frames, fused_pass, motion_pass, uniform_frames
from dlc_lookagain.model.lookagain import LookAgainModel, ModelConfig
from dlc_lookagain.model.pose_tokens import tokenize
from dlc_lookagain.model.training import (
    TrainConfig,
    calibrate,
    fine_tune_with_gate,
    fit_behavior,
    fit_gate,
    pretrain,
    validation_f1,
)
from dlc_lookagain.model.windows import Sequence

FPS = 5.0
NAMES = ["nose", "left_ear", "right_ear", "body_center", "tail_base"]
TEMPLATE = np.array([[1.0, 0.0], [0.5, 0.3], [0.5, -0.3], [0.0, 0.0], [-1.0, 0.0]]) * 15
TINY = dict(dim=32, depth=1, heads=2, window=32, codebook_size=16, crop_dim=8, context_dim=8)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def make_sequence(seed: int, n_frames: int = 200, stretch: int = 40, absent: slice | None = None
                  ) -> tuple[Sequence, np.ndarray]:
    """A synthetic recording and its bool (T,) mask of ambiguous frames (``absent``: no keypoints)."""
    rng = np.random.default_rng(seed)
    pos = np.cumsum(rng.normal(0, 2, (n_frames, 2)), 0) + 200
    th = np.cumsum(rng.normal(0, 0.1, n_frames))
    rot = np.stack([np.stack([np.cos(th), -np.sin(th)], -1), np.stack([np.sin(th), np.cos(th)], -1)], -2)
    kp = np.einsum("tij,bj->tbi", rot, TEMPLATE) + pos[:, None] + rng.normal(0, 0.5, (n_frames, 5, 2))
    ambiguous = (np.arange(n_frames) // stretch) % 2 == seed % 2
    conf = np.where(ambiguous, 0.35, 1.0)[:, None, None] * np.ones((n_frames, 1, 5))
    behavior = np.zeros(n_frames, bool)
    t = 0
    while t < n_frames:
        t += int(rng.integers(10, 20))
        n = int(rng.integers(8, 16))
        behavior[t: t + n] = True
        t += n
    behavior &= ambiguous
    if absent is not None:
        kp[absent] = np.nan
    crop = rng.normal(0, 0.3, (n_frames, 1, 8))
    crop[:, 0, 0] = np.where(behavior, 1.0, -1.0)
    context = rng.normal(0, 0.3, (n_frames, 8))
    rec = PoseRecord(kp[:, None].astype(np.float32), conf.astype(np.float32), ["mouse"], NAMES, FPS,
                     Path(f"synthetic{seed}.h5"))
    targets = behavior[:, None, None].astype(np.float32)
    crop, context = crop.astype(np.float16), context.astype(np.float16)
    seq = Sequence(f"synthetic{seed}", tokenize(rec), FPS, crop, context,
                   np.ones(n_frames, bool), targets)
    return seq, ambiguous


def new_model(seed: int = 0) -> LookAgainModel:
    torch.manual_seed(seed)
    return LookAgainModel(ModelConfig(**TINY, behaviors=["behavior"]))


def best_f1(model: LookAgainModel, seqs: list[Sequence], looked: list[np.ndarray]) -> float:
    """F1 at the best threshold (so keypoints-only is not penalised by a miscalibrated threshold)."""
    probs, _ = fused_pass(model, seqs, looked)
    p = np.concatenate([pr[:, 0] for pr in probs])
    y = np.concatenate([s.targets[:, 0] for s in seqs])
    th = calibrate_thresholds(p, y)
    return float(f1_per_class(p >= th, y)[0])


@dataclass
class Trained:
    model: LookAgainModel
    cfg: TrainConfig
    train: list[Sequence]
    holdout: list[Sequence]
    test: list[Sequence]
    test_ambiguous: list[np.ndarray]
    pretrain_history: list[dict]
    behavior_history: list[float]


@pytest.fixture(scope="module")
def trained() -> Trained:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    train = [make_sequence(i)[0] for i in range(4)]
    holdout = [make_sequence(50 + i)[0] for i in range(2)]
    test, amb = zip(*[make_sequence(100 + i) for i in range(2)])
    model = new_model()
    # 20 pretraining steps make a poor frozen encoder: let the toy model train it.
    cfg = TrainConfig(batch_size=16, lr=2e-3, seed=0, train_encoder=True)
    ph = pretrain(model, train, cfg, steps=20, progress=False)
    bh = fit_behavior(model, train, cfg, steps=300, progress=False)
    torch.set_num_threads(before)
    return Trained(model, cfg, train, holdout, list(test), list(amb), ph, bh)


# ------------------------------------------------------------------------------------------------


def test_pretrain_and_behavior_histories(trained):
    (h,) = trained.pretrain_history
    assert h["step"] == 20
    assert {"masked", "reconstruction", "commitment", "crossmodal", "crossmodal_error"} <= set(h)
    assert all(np.isfinite(v) for v in h.values())
    bh = trained.behavior_history
    assert len(bh) == 6 and np.all(np.isfinite(bh)) and bh[-1] < bh[0]
    # Vision statistics were fitted on the available frames: crop dim 0 is +-1 with mean ~ -0.5.
    assert bool(trained.model.visual_fitted) and trained.model.visual_std[0] > 0.5


def test_vision_decides_behavior_that_keypoints_cannot(trained):
    seqs = trained.test
    every = best_f1(trained.model, seqs, [np.ones(s.n_frames, bool) for s in seqs])
    none = best_f1(trained.model, seqs, [np.zeros(s.n_frames, bool) for s in seqs])
    assert every > 0.8, (every, none)
    assert none < 0.7, (every, none)
    assert every - none > 0.2, (every, none)


def test_no_look_means_no_vision_leak(trained):
    seqs = trained.test
    none = [np.zeros(0, np.int64) for _ in seqs]
    p0, f0 = fused_pass(trained.model, seqs, none, want_fused=True)
    scrambled = []
    for s in seqs:
        s2 = copy.copy(s)
        s2.crop = -s.crop
        s2.context = np.zeros_like(s.context)
        scrambled.append(s2)
    p1, f1 = fused_pass(trained.model, scrambled, none, want_fused=True)
    for a, b, fa, fb in zip(p0, p1, f0, f1):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(fa, fb)
        assert fa.shape == (200, 1, 32) and a.shape == (200, 1, 1)
    # Index arrays and bool masks are the same request; flipped crops change looked-at frames.
    idx = [np.arange(0, s.n_frames, 4) for s in seqs]
    masks = [np.isin(np.arange(s.n_frames), i) for s, i in zip(seqs, idx)]
    pi, _ = fused_pass(trained.model, seqs, idx)
    pm, _ = fused_pass(trained.model, seqs, masks)
    ps, _ = fused_pass(trained.model, scrambled, masks)
    for a, b, c in zip(pi, pm, ps):
        np.testing.assert_array_equal(a, b)
        assert np.abs(a - c).max() > 1e-3


def test_motion_pass_outputs_and_invisible_frames(trained):
    gone, _ = make_sequence(7, absent=slice(100, 160))  # the mouse leaves for 12 s
    keep = np.ones(200, bool)
    keep[100:160] = False
    assert not gone.pose.visible[100:160].any()
    (mp,) = motion_pass(trained.model, [gone])
    assert mp.z.shape == (200, 1, 32) and mp.codes.shape == (200, 1, 4) and mp.components.shape == (200, 1, 8)
    assert mp.codes.min() >= 0 and mp.codes.max() < 16
    assert mp.probs.shape == (200, 1, 1) and np.all((mp.probs >= 0) & (mp.probs <= 1))
    assert np.isfinite(mp.z).all() and np.isfinite(mp.scores).all() and np.isfinite(mp.components).all()
    assert np.all(mp.frame_scores[100:160] == -np.inf) and np.isfinite(mp.frame_scores[keep]).all()
    chosen = choose_frames(trained.model, gone, mp, 0.25)
    assert chosen.size > 0 and gone.pose.visible[chosen, 0].all()
    assert choose_frames(trained.model, gone, mp, 0.0).size == 0


def test_fit_gate_prefers_frames_where_vision_matters(trained):
    model = copy.deepcopy(trained.model)
    summary = fit_gate(model, trained.holdout, trained.cfg, steps=100, progress=False)
    assert set(summary) == {"spearman", "frames", "benefit_mean"}
    assert summary["frames"] == 400 and summary["benefit_mean"] > 0
    assert summary["spearman"] > 0.3, summary
    # The gate was the only part trained.
    for (k, v), v0 in zip(model.state_dict().items(), trained.model.state_dict().values()):
        if not k.startswith("gate."):
            assert torch.equal(v, v0), k
    mps = motion_pass(model, trained.test)
    scores = np.concatenate([mp.scores[:, 0] for mp in mps])
    amb = np.concatenate(trained.test_ambiguous)
    assert np.isfinite(scores).all()
    assert scores[amb].mean() > scores[~amb].mean()
    # The budget is spent per gate window (2 s = 10 frames here, inside one stretch): only a window
    # spanning both kinds of stretch lets the gate move looks to the ambiguous ones.
    model.config.gate_window_s = 40.0
    chosen = [choose_frames(model, s, mp, 0.25, coverage=0.0) for s, mp in zip(trained.test, mps)]
    assert all(c.size == 50 for c in chosen)
    share = np.mean(np.concatenate([a[c] for a, c in zip(trained.test_ambiguous, chosen)]))
    assert share > 0.7, share

    model.config.gate_window_s = 2.0
    th = calibrate(model, trained.holdout)
    assert th.shape == (5, 1) and th.dtype == np.float32
    assert np.all((th >= 0) & (th <= 1))
    np.testing.assert_array_equal(model.thresholds.numpy(), th)
    th_u = calibrate(model, trained.holdout, selector="uniform")
    assert th_u.shape == (5, 1) and np.all((th_u >= 0) & (th_u <= 1))


def test_fit_gate_with_too_few_frames_is_skipped(trained):
    model = copy.deepcopy(trained.model)
    short, _ = make_sequence(3, n_frames=60)
    summary = fit_gate(model, [short], trained.cfg, steps=5, progress=False)
    assert summary["frames"] == 0 and np.isnan(summary["spearman"])
    for k, v in model.gate.state_dict().items():
        assert torch.equal(v, trained.model.gate.state_dict()[k])


def test_fine_tune_with_gate_trains_only_fusion_and_heads(trained):
    model = copy.deepcopy(trained.model)
    fine_tune_with_gate(model, trained.train, trained.cfg, steps=5, progress=False)
    changed = {k.split(".")[0] for k, v in model.state_dict().items()
               if not torch.equal(v, trained.model.state_dict()[k])}
    assert changed and changed <= {"fusion", "head", "visual_head"}, changed
    assert not model.training
    probs, _ = fused_pass(model, trained.test, [np.arange(0, 200, 10) for _ in trained.test])
    assert all(np.isfinite(p).all() for p in probs)


def test_fit_behavior_needs_classes():
    torch.manual_seed(0)
    model = LookAgainModel(ModelConfig(**TINY))
    seq, _ = make_sequence(0, n_frames=60)
    with pytest.raises(ValueError, match="set_behaviors"):
        fit_behavior(model, [seq], TrainConfig(batch_size=2), steps=1, progress=False)


def _pipeline(seqs, holdout):
    model = new_model(seed=3)
    cfg = TrainConfig(batch_size=4, seed=5, token_dropout=0.1, encoder_lr_scale=0.5)
    pretrain(model, seqs, cfg, steps=4, progress=False)
    fit_behavior(model, seqs, cfg, steps=8, progress=False)
    gate = fit_gate(model, holdout, cfg, steps=4, progress=False)
    fine_tune_with_gate(model, seqs, cfg, steps=3, progress=False)
    th = calibrate(model, holdout)
    probs, _ = fused_pass(model, holdout, [np.arange(0, s.n_frames, 3) for s in holdout])
    return model, gate, th, probs


def test_pipeline_is_deterministic_with_a_seed():
    seqs = [make_sequence(i, n_frames=80)[0] for i in range(2)]
    holdout = [make_sequence(60, n_frames=120)[0]]
    m1, g1, th1, p1 = _pipeline(seqs, holdout)
    torch.manual_seed(12345)  # global RNG state in between must not matter
    np.random.seed(12345)
    m2, g2, th2, p2 = _pipeline(seqs, holdout)
    s1, s2 = m1.state_dict(), m2.state_dict()
    assert s1.keys() == s2.keys()
    different = [k for k in s1 if not torch.equal(s1[k], s2[k])]
    assert not different, different
    assert g1 == g2 or (np.isnan(g1["spearman"]) and np.isnan(g2["spearman"]))
    np.testing.assert_array_equal(th1, th2)
    for a, b in zip(p1, p2):
        np.testing.assert_array_equal(a, b)
    assert g1["frames"] == 120


def test_validation_f1_ranks_a_trained_model_above_an_untrained_one(trained):
    f1_trained = validation_f1(trained.model, trained.holdout)
    f1_new = validation_f1(new_model(seed=1), trained.holdout)
    assert 0.0 <= f1_new <= 1.0 and 0.0 <= f1_trained <= 1.0
    assert f1_trained > f1_new + 0.1


def test_encoder_lr_scale_zero_freezes_the_encoder_only():
    seqs = [make_sequence(i, n_frames=80)[0] for i in range(2)]
    model = new_model(seed=2)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    fit_behavior(model, seqs, TrainConfig(batch_size=4, seed=0, encoder_lr_scale=0.0, weight_decay=0.0),
                 steps=5, progress=False)
    changed = {k for k, v in model.named_parameters() if not torch.equal(before[k], v)}
    assert changed and all(k.startswith(("fusion.", "head.", "visual_head.")) for k in changed), sorted(changed)[:5]
    assert any(k.startswith("head.") for k in changed)


def test_early_stopping_keeps_the_best_checked_weights(trained, monkeypatch):
    import dlc_lookagain.model.training as training

    model = copy.deepcopy(trained.model)
    seqs = trained.train[:2]
    # Scripted held-out objective: the check after step 2 is the best one.
    objective = iter([0.5, 0.1, 0.7, 0.9])
    snapshots = []

    def fake(m, val, select_by):
        snapshots.append(copy.deepcopy(m.state_dict()))
        return next(objective)

    monkeypatch.setattr(training, "_held_out_objective", fake)
    fit_behavior(model, seqs, TrainConfig(batch_size=4, seed=0), steps=4, progress=False,
                 val=trained.holdout, eval_every=1)
    assert len(snapshots) == 4
    best = snapshots[1]
    assert all(torch.equal(best[k], v) for k, v in model.state_dict().items())


def test_unknown_checkpoint_criterion_is_refused(trained):
    with pytest.raises(ValueError, match="select_by"):
        fit_behavior(copy.deepcopy(trained.model), trained.train[:1], TrainConfig(batch_size=2, select_by="auc"),
                     steps=1, progress=False, val=trained.holdout)


def test_calibrate_fits_temperatures_without_changing_decisions_or_gate(trained):
    model = copy.deepcopy(trained.model)
    model.temperature.fill_(1.0)
    gate_before = [mp.components for mp in motion_pass(model, trained.test)]
    th = calibrate(model, trained.holdout, selector="uniform")
    temps = model.temperature.numpy()
    assert th.shape == (5, 1) and np.all((th > 0) & (th < 1))
    assert np.all(np.isfinite(temps)) and not np.allclose(temps, 1.0)
    # The gate sees the same evidence whatever the temperature.
    for a, b in zip(gate_before, [mp.components for mp in motion_pass(model, trained.test)]):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # Calibrated probabilities: held-out NLL over the calibration budgets not worse than with T = 1.
    def nll():
        ps, ys = [], []
        for budget in (0.0, 0.1, 0.25, 0.5, 1.0):
            looked = [uniform_frames(s.n_frames, budget) for s in trained.holdout]
            probs, _ = fused_pass(model, trained.holdout, looked)
            ps += [x[:, 0, 0] for x in probs]
            ys += [s.targets[:, 0, 0] for s in trained.holdout]
        p, y = np.clip(np.concatenate(ps), 1e-6, 1 - 1e-6), np.concatenate(ys)
        return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))

    calibrated = nll()
    model.temperature.fill_(1.0)
    assert calibrated <= nll() + 1e-6


def test_visual_probe_learns_the_behavior_from_vision_alone():
    from dlc_lookagain.model.windows import Window, collate

    train = [make_sequence(i)[0] for i in range(3)]
    test = make_sequence(100)[0]
    model = new_model(seed=4)
    probe_before = {k: v.detach().clone() for k, v in model.visual_head.named_parameters()}
    fit_behavior(model, train, TrainConfig(batch_size=16, lr=2e-3, seed=0, visual_aux_weight=1.0),
                 steps=60, progress=False)
    assert any(not torch.equal(probe_before[k], v) for k, v in model.visual_head.named_parameters())
    batch = collate([test], [Window(0, 0, 0, test.n_frames)], (8, 8))
    with torch.no_grad():
        score = model.visual_logits(batch["visual"])[0, :, 0].numpy()
    y = test.targets[:, 0, 0] > 0.5
    # AUC of the vision-only probe: the behavior shows only in crop dimension 0.
    auc = (score[y][:, None] > score[~y][None, :]).mean()
    assert auc > 0.9, auc


def test_models_saved_without_the_visual_probe_still_load(tmp_path):
    from dlc_lookagain.errors import PoseFormatError
    from dlc_lookagain.model.lookagain import load_model, save_model

    model = new_model(seed=5)
    path = save_model(model, tmp_path / "m.pt")
    blob = torch.load(path, weights_only=True)
    blob["state_dict"] = {k: v for k, v in blob["state_dict"].items() if not k.startswith("visual_head.")}
    torch.save(blob, path)
    loaded, _ = load_model(path)
    for k, v in loaded.state_dict().items():
        if not k.startswith("visual_head."):
            assert torch.equal(v, model.state_dict()[k]), k
    # Any other missing weight is a broken file.
    blob["state_dict"].pop("head.net.1.weight")
    torch.save(blob, path)
    with pytest.raises(PoseFormatError, match="missing"):
        load_model(path)
