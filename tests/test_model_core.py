"""Tests of the LookAgain model's building blocks (dlc_lookagain.model): pose tokens, motion encoder,
RVQ, gate selection, fusion, windows and the saved model. Small, CPU-only, seeded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dlc_lookagain.errors import PoseFormatError
from dlc_lookagain.io.record import PoseRecord
from dlc_lookagain.model.fusion import VisualFusion, frames_to_nearest
from dlc_lookagain.model.gate import COMPONENT_GROUPS, COMPONENT_NAMES, Gate, gate_components, select_frames
from dlc_lookagain.model.lookagain import LookAgainModel, ModelConfig, load_model, save_model
from dlc_lookagain.model.motion_encoder import MotionEncoder
from dlc_lookagain.model.pose_tokens import ANIMAL_FEATURES, TOKEN_FEATURES, front_back_parts, tokenize
from dlc_lookagain.model.quantizer import MotionQuantizer
from dlc_lookagain.model.windows import Sequence, Window, collate, random_windows, stitch, tile

FPS = 30.0
NAMES = ["nose", "left_ear", "right_ear", "neck", "body_center", "tail_base"]
# Where each keypoint sits on the body (x forward, y left), in pixels for a body about 40 px long.
TEMPLATE = np.array([[20.0, 0.0], [12.0, 6.0], [12.0, -6.0], [6.0, 1.0], [-4.0, -1.0], [-20.0, 0.0]])
ARENA_FEATURES = {"arena_x": 14, "arena_y": 15}  # absolute-position features (not rotation invariant)


pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _template(n_bodyparts: int) -> np.ndarray:
    if n_bodyparts == len(TEMPLATE):
        return TEMPLATE
    x = np.linspace(20.0, -20.0, n_bodyparts)
    y = 4.0 * np.sin(np.arange(n_bodyparts) * 1.7)  # not collinear
    return np.stack([x, y], -1) if n_bodyparts > 1 else np.zeros((1, 2))


def make_keypoints(n_frames=60, n_animals=2, n_bodyparts=6, seed=0, noise=0.5) -> np.ndarray:
    """Animals random-walking and turning in an arena: float64 (T, I, B, 2)."""
    rng = np.random.default_rng(seed)
    tpl = _template(n_bodyparts)
    kp = np.zeros((n_frames, n_animals, n_bodyparts, 2))
    for i in range(n_animals):
        pos = np.cumsum(rng.normal(0, 1.5, (n_frames, 2)), 0) + [100.0 + 90.0 * i, 120.0 + 30.0 * i]
        th = np.cumsum(rng.normal(0, 0.08, n_frames)) + rng.uniform(-np.pi, np.pi)
        rot = np.stack([np.stack([np.cos(th), -np.sin(th)], -1), np.stack([np.sin(th), np.cos(th)], -1)], -2)
        jitter = rng.normal(0, noise, (n_frames, n_bodyparts, 2))
        kp[:, i] = np.einsum("tij,bj->tbi", rot, tpl) + pos[:, None] + jitter
    return kp


def make_record(kp, names=None, confidence=None, fps=FPS) -> PoseRecord:
    t, i, b, _ = kp.shape
    names = names if names is not None else (NAMES if b == len(NAMES) else [f"p{k + 1}" for k in range(b)])
    conf = np.ones((t, i, b)) if confidence is None else confidence
    return PoseRecord(np.asarray(kp, np.float32), np.asarray(conf, np.float32),
                      [f"mouse{k}" for k in range(i)], list(names), fps, Path("synthetic.h5"))


def similarity(kp, angle, scale, shift):
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return scale * kp @ rot.T + np.asarray(shift)


def _wrap(a):
    return np.angle(np.exp(1j * a))


# ------------------------------------------------------------------------------------------------
# Pose tokens
# ------------------------------------------------------------------------------------------------


def test_tokens_shapes_and_body_frame():
    kp = make_keypoints()
    p = tokenize(make_record(kp))
    t, i, b = 60, 2, 6
    assert p.tokens.shape == (t, i, b, len(TOKEN_FEATURES)) and p.tokens.dtype == np.float32
    assert p.present.shape == (t, i, b) and p.present.all()
    assert p.identity.shape == (b, 2)
    assert p.animal.shape == (t, i, len(ANIMAL_FEATURES)) and np.isfinite(p.animal).all()
    assert p.visible.all() and np.isfinite(p.center).all() and np.isfinite(p.heading).all()
    assert np.all(p.body_size > 0)
    # Identity = where the keypoint sits on the body: the nose is farthest in front, tail base behind.
    assert p.identity[0, 0] == p.identity[:, 0].max() and p.identity[0, 0] > 0.3
    assert p.identity[5, 0] == p.identity[:, 0].min() and p.identity[5, 0] < -0.5
    assert p.identity[1, 1] > 0 > p.identity[2, 1]  # left ear at +y, right ear at -y (animal's frame)
    # The heading follows the generated body axis (front minus back).
    axis = kp[:, :, :3].mean(2) - kp[:, :, 5]
    assert np.abs(_wrap(p.heading - np.arctan2(axis[..., 1], axis[..., 0]))).max() < 1e-4
    assert np.all(p.tokens[..., 5] == 1.0) and np.allclose(p.tokens[..., 4], 1.0)


@pytest.mark.parametrize("angle", [np.pi / 2, np.pi, -np.pi / 2])
def test_tokens_invariant_to_translation_scale_and_quarter_turns(angle):
    kp = make_keypoints()
    p0 = tokenize(make_record(kp))
    p1 = tokenize(make_record(similarity(kp, angle, 2.5, (300.0, -40.0))))
    np.testing.assert_allclose(p1.tokens[..., :2], p0.tokens[..., :2], atol=1e-4)  # ego x, y
    np.testing.assert_allclose(p1.tokens[..., 2:4], p0.tokens[..., 2:4], atol=1e-3)  # ego velocity
    np.testing.assert_array_equal(p1.present, p0.present)
    np.testing.assert_array_equal(p1.visible, p0.visible)
    np.testing.assert_allclose(p1.identity, p0.identity, atol=1e-4)
    assert np.abs(_wrap(p1.heading - p0.heading - angle)).max() < 1e-4
    np.testing.assert_allclose(p1.body_size, 2.5 * p0.body_size, rtol=1e-4)
    keep = [k for k in range(len(ANIMAL_FEATURES)) if k not in ARENA_FEATURES.values()]
    np.testing.assert_allclose(p1.animal[..., keep], p0.animal[..., keep], atol=1e-3)


@pytest.mark.xfail(strict=True, reason=(
    "pose_tokens.tokenize takes the centre as a per-coordinate median (np.nanmedian over x and y "
    "separately), which is not rotation-equivariant: ego tokens change by ~0.1 body lengths (and ego "
    "velocities by ~2 in slog units) when the whole recording is rotated by 0.7 rad. Fix: a "
    "rotation-equivariant centre (e.g. geometric median, or the median taken in the heading frame)."))
def test_tokens_invariant_to_arbitrary_rotation():
    kp = make_keypoints()
    p0 = tokenize(make_record(kp))
    p1 = tokenize(make_record(similarity(kp, 0.7, 1.7, (25.0, 60.0))))
    assert np.abs(_wrap(p1.heading - p0.heading - 0.7)).max() < 1e-4  # the heading itself is fine
    np.testing.assert_allclose(p1.identity, p0.identity, atol=1e-3)
    np.testing.assert_allclose(p1.tokens[..., :4], p0.tokens[..., :4], atol=1e-2)


def test_tokens_follow_a_permutation_and_renaming_of_bodyparts():
    kp = make_keypoints(seed=3)
    p0 = tokenize(make_record(kp))
    perm = np.array([4, 0, 5, 2, 3, 1])
    renamed = {"nose": "Snout", "left_ear": "earL", "right_ear": "earR", "neck": "neck", "body_center": "mid",
               "tail_base": "TailBase"}
    names = [renamed[NAMES[k]] for k in perm]
    p1 = tokenize(make_record(kp[:, :, perm], names=names))
    np.testing.assert_allclose(p1.tokens, p0.tokens[:, :, perm], atol=1e-5)
    np.testing.assert_array_equal(p1.present, p0.present[:, :, perm])
    np.testing.assert_allclose(p1.identity, p0.identity[perm], atol=1e-5)
    np.testing.assert_allclose(p1.heading, p0.heading, atol=1e-5)
    np.testing.assert_allclose(p1.animal, p0.animal, atol=1e-4)


def test_missing_and_low_confidence_keypoints_are_masked():
    kp = make_keypoints(seed=1)
    conf = np.ones(kp.shape[:3])
    kp_nan = kp.copy()
    kp_nan[5, 0, 2] = np.nan
    kp_nan[7, 1, 0] = np.nan
    p_nan = tokenize(make_record(kp_nan, confidence=conf))
    # Same, but the point at (7, 1, 0) is a wild low-confidence detection instead of NaN.
    kp_low = kp_nan.copy()
    kp_low[7, 1, 0] = [5000.0, -3000.0]
    conf_low = conf.copy()
    conf_low[7, 1, 0] = 0.05
    p_low = tokenize(make_record(kp_low, confidence=conf_low))
    for p in (p_nan, p_low):
        assert not p.present[5, 0, 2] and not p.present[7, 1, 0]
        assert p.present.sum() == p.present.size - 2
        assert np.all(p.tokens[5, 0, 2] == 0) and np.all(p.tokens[7, 1, 0] == 0)
        assert p.visible.all() and np.isfinite(p.animal).all()
    # A masked wild point moves nothing: centre, heading, tokens as if it were NaN.
    np.testing.assert_allclose(p_low.center, p_nan.center, atol=1e-4)
    np.testing.assert_allclose(p_low.heading, p_nan.heading, atol=1e-5)
    np.testing.assert_allclose(p_low.tokens, p_nan.tokens, atol=1e-4)
    # Confidence feature = the detection's confidence.
    conf_mid = conf.copy()
    conf_mid[3, 0, 1] = 0.6
    assert tokenize(make_record(kp, confidence=conf_mid)).tokens[3, 0, 1, 4] == pytest.approx(0.6)


def test_long_absence_is_not_visible_and_short_gaps_are_bridged():
    kp = make_keypoints(n_frames=90, seed=2)
    kp[30:70, 1] = np.nan  # 40 frames = 1.33 s > max_gap_s 0.5
    kp[10:14, 0] = np.nan  # 4 frames: bridged
    p = tokenize(make_record(kp))
    assert not p.visible[30:70, 1].any() and p.visible[:30, 1].all() and p.visible[70:, 1].all()
    assert np.isnan(p.center[30:70, 1]).all() and np.isnan(p.heading[30:70, 1]).all()
    assert np.all(p.tokens[30:70, 1] == 0) and not p.present[30:70, 1].any()
    assert np.all(p.animal[30:70, 1] == 0)  # no motion information (present fraction is 0 too)
    assert np.isfinite(p.animal).all()
    # Short gap: not visible (nothing detected) but centre and heading interpolated.
    assert not p.visible[10:14, 0].any()
    assert np.isfinite(p.center[10:14, 0]).all() and np.isfinite(p.heading[10:14, 0]).all()
    lo, hi = np.minimum(p.center[9, 0], p.center[14, 0]), np.maximum(p.center[9, 0], p.center[14, 0])
    assert np.all((p.center[10:14, 0] >= lo - 1e-3) & (p.center[10:14, 0] <= hi + 1e-3))
    # While animal 1 is gone, animal 0 has no neighbour.
    assert np.all(p.animal[30:70, 0, ANIMAL_FEATURES.index("has_neighbor")] == 0)
    seen = np.r_[0:10, 14:30]  # animal 0 is itself not visible in 10:14 (features zeroed there)
    assert np.all(p.animal[seen, 0, ANIMAL_FEATURES.index("has_neighbor")] == 1)


@pytest.mark.parametrize("names, front, back", [
    (["nose", "left_ear", "right_ear", "neck", "body_center", "tail_base", "tail_tip"], [0, 1, 2], [5]),
    ([f"p{k}" for k in range(1, 10)], [0, 1, 2], [6, 7, 8]),
    (["Snout", "TailBase"], [0], [1]),
    (["head", "spine1", "spine2", "spine3", "tail_end"], [0], [3]),
    (["nose", "a", "b", "c", "d", "e"], [0, 1], [4, 5]),  # no back name: thirds
    (["a", "b"], [0], [1]),
    (["centroid"], [0], []),
])
def test_front_back_parts(names, front, back):
    assert front_back_parts(names) == (front, back)


@pytest.mark.parametrize("n_animals, n_bodyparts, nan_confidence", [
    (1, 1, False), (2, 1, False), (1, 6, False), (3, 6, False), (2, 4, True), (3, 9, True),
])
def test_tokenize_configurations(n_animals, n_bodyparts, nan_confidence):
    kp = make_keypoints(n_frames=40, n_animals=n_animals, n_bodyparts=n_bodyparts, seed=n_bodyparts)
    kp[3, 0, 0] = np.nan
    conf = np.full(kp.shape[:3], np.nan) if nan_confidence else None
    p = tokenize(make_record(kp, confidence=conf))
    assert p.tokens.shape == (40, n_animals, n_bodyparts, 6) and p.animal.shape == (40, n_animals, len(ANIMAL_FEATURES))
    for arr in (p.tokens, p.identity, p.animal, p.body_size):
        assert np.isfinite(arr).all()
    assert np.all(p.body_size > 0)
    assert not p.present[3, 0, 0] and p.present.sum() == p.present.size - 1
    assert np.all(p.tokens[p.present][:, 4] == 1.0)  # no scores: every detected point counts fully
    assert p.visible[~np.isin(np.arange(40), [3])].all()
    # The animal's motion is seen (speed not identically zero, no spurious jump everywhere).
    speed = p.animal[1:, :, ANIMAL_FEATURES.index("speed")]
    assert np.all(np.abs(speed).max(0) > 0)
    if n_bodyparts > 1:  # one keypoint: body size falls back to a fraction of the (here tiny) extent
        assert p.animal[..., ANIMAL_FEATURES.index("jump")].mean() < 0.2


# ------------------------------------------------------------------------------------------------
# Motion encoder
# ------------------------------------------------------------------------------------------------


def _encoder_inputs(n=2, t=12, b=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randn(n, t, b, 6, generator=g)
    identity = torch.randn(n, b, 2, generator=g)
    present = torch.rand(n, t, b, generator=g) < 0.7
    present[:, :, 0] = True
    tokens = tokens * present[..., None]
    animal = torch.randn(n, t, len(ANIMAL_FEATURES), generator=g)
    visible = torch.ones(n, t, dtype=torch.bool)
    return tokens, identity, present, animal, visible


@pytest.fixture()
def encoder():
    torch.manual_seed(0)
    return MotionEncoder(dim=32, depth=1, heads=2).eval()


def test_encoder_shape_and_absent_keypoints_are_ignored(encoder):
    tokens, identity, present, animal, visible = _encoder_inputs()
    with torch.no_grad():
        z = encoder(tokens, identity, present, animal, visible)
        assert z.shape == (2, 12, 32) and torch.isfinite(z).all()
        # Garbage in absent tokens changes nothing (masked, not zero-filled).
        noisy = torch.where(present[..., None], tokens, 100 * torch.randn_like(tokens))
        torch.testing.assert_close(encoder(noisy, identity, present, animal, visible), z, atol=1e-5, rtol=0)
        # ... whereas a present token does change the output.
        moved = tokens.clone()
        moved[0, 4, 0] += 1.0
        assert (encoder(moved, identity, present, animal, visible) - z).abs().max() > 1e-4


def test_encoder_accepts_any_skeleton_size_and_order(encoder):
    with torch.no_grad():
        for b in (5, 12):
            tokens, identity, present, animal, visible = _encoder_inputs(b=b, seed=b)
            z = encoder(tokens, identity, present, animal, visible)
            assert z.shape == (2, 12, 32) and torch.isfinite(z).all()
            # A set: keypoint order does not matter.
            perm = torch.randperm(b, generator=torch.Generator().manual_seed(1))
            zp = encoder(tokens[:, :, perm], identity[:, perm], present[:, :, perm], animal, visible)
            torch.testing.assert_close(zp, z, atol=1e-5, rtol=0)
        # Padding a 5-keypoint skeleton to 12 with absent keypoints (as collate does) changes nothing.
        tokens, identity, present, animal, visible = _encoder_inputs(b=5, seed=5)
        z5 = encoder(tokens, identity, present, animal, visible)
        pad = 7
        z12 = encoder(torch.cat([tokens, torch.randn(2, 12, pad, 6)], 2),
                      torch.cat([identity, torch.randn(2, pad, 2)], 1),
                      torch.cat([present, torch.zeros(2, 12, pad, dtype=torch.bool)], 2), animal, visible)
        torch.testing.assert_close(z12, z5, atol=1e-5, rtol=0)


def test_encoder_frame_without_keypoints_is_finite(encoder):
    tokens, identity, present, animal, visible = _encoder_inputs()
    present[:, 3] = False
    tokens[:, 3] = 0.0
    visible[:, 3] = False
    with torch.no_grad():
        z = encoder(tokens, identity, present, animal, visible)
        assert torch.isfinite(z).all()
        garbage = torch.where(present[..., None], tokens, torch.randn_like(tokens))
        z2 = encoder(garbage, identity, present, animal, visible)
        torch.testing.assert_close(z2, z, atol=1e-5, rtol=0)
        present[:] = False
        assert torch.isfinite(encoder(tokens, identity, present, animal, visible & False)).all()


# ------------------------------------------------------------------------------------------------
# Quantizer
# ------------------------------------------------------------------------------------------------


def test_quantizer_codes_and_reconstruction_of_clustered_features():
    torch.manual_seed(0)
    quant = MotionQuantizer(dim=8, levels=3, codebook_size=16)
    centres = torch.randn(4, 8) * 3
    cluster = torch.randint(0, 4, (4, 32))
    z = centres[cluster] + 0.05 * torch.randn(4, 32, 8)
    quant.train()
    for _ in range(3):
        q, codes, commit = quant(z)
    assert q.shape == z.shape and codes.shape == (4, 32, 3) and codes.dtype == torch.long
    assert torch.isfinite(commit) and commit.ndim == 0 and commit >= 0
    quant.eval()
    with torch.no_grad():
        q, codes, commit = quant(z)
        q2, codes2, _ = quant(z)
    assert torch.equal(codes, codes2) and torch.equal(q, q2)
    assert codes.min() >= 0 and codes.max() < 16
    rel = ((q - z) ** 2).sum() / ((z - z.mean((0, 1))) ** 2).sum()
    assert rel < 0.05, rel
    # A first-level code never mixes two clusters.
    first = codes[..., 0].flatten()
    for c in first.unique():
        assert cluster.flatten()[first == c].unique().numel() == 1


def test_quantizer_mask_limits_commitment():
    torch.manual_seed(1)
    quant = MotionQuantizer(dim=8, levels=2, codebook_size=16).train()
    z = torch.randn(2, 20, 8)
    mask = torch.ones(2, 20, dtype=torch.bool)
    mask[:, 10:] = False
    quant(z, mask=mask)  # k-means init
    quant.eval()
    with torch.no_grad():
        _, _, c1 = quant(z, mask=mask)
        z2 = z.clone()
        z2[:, 10:] += 50.0  # far from every code, but masked out
        _, _, c2 = quant(z2, mask=mask)
    assert torch.isfinite(c1) and torch.allclose(c1, c2)


# ------------------------------------------------------------------------------------------------
# Fusion
# ------------------------------------------------------------------------------------------------


@pytest.fixture()
def fusion():
    torch.manual_seed(0)
    return VisualFusion(dim=16, visual_dim=8, heads=2).eval()


def test_fusion_without_looks_ignores_visual(fusion):
    z = torch.randn(2, 20, 16)
    looked = torch.zeros(2, 20, dtype=torch.bool)
    with torch.no_grad():
        a = fusion(z, torch.randn(2, 20, 8), looked)
        b = fusion(z, 100 * torch.randn(2, 20, 8), looked)
        c = fusion(z, torch.full((2, 20, 8), float("nan")), looked)
    assert a.shape == (2, 20, 16) and torch.isfinite(a).all()
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    torch.testing.assert_close(a, c, atol=1e-6, rtol=0)


def test_fusion_uses_only_looked_frames(fusion):
    z = torch.randn(1, 20, 16)
    visual = torch.randn(1, 20, 8)
    looked = torch.zeros(1, 20, dtype=torch.bool)
    looked[0, 7] = True
    with torch.no_grad():
        base = fusion(z, visual, looked)
        v2 = visual.clone()
        v2[0, 3] += 5.0  # not looked at
        v2[0, 15] = float("nan")
        torch.testing.assert_close(fusion(z, v2, looked), base, atol=1e-6, rtol=0)
        v3 = visual.clone()
        v3[0, 7] += 3.0 * torch.randn(8)  # looked at (not a constant shift: LayerNorm removes that)
        diff = (fusion(z, v3, looked) - base).abs().amax(-1)[0]
    assert diff[7] > 1e-3 and diff[6] > 1e-3 and diff[8] > 1e-3
    # A look changes the output compared to no look at all.
    with torch.no_grad():
        none = fusion(z, visual, torch.zeros_like(looked))
    assert (none - base).abs().max() > 1e-3


def test_frames_to_nearest():
    looked = torch.tensor([[0, 0, 1, 0, 0, 0, 1, 0], [0] * 8, [1, 0, 0, 0, 0, 0, 0, 1]], dtype=torch.bool)
    d = frames_to_nearest(looked)
    assert d.dtype == torch.float32
    assert d[0].tolist() == [2, 1, 0, 1, 2, 1, 0, 1]
    assert torch.all(d[1] >= 1e3)
    assert d[2].tolist() == [0, 1, 2, 3, 3, 2, 1, 0]


# ------------------------------------------------------------------------------------------------
# Gate
# ------------------------------------------------------------------------------------------------


def test_select_frames_budgets():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=240)
    valid = rng.random(240) < 0.8
    assert select_frames(scores, 0.0, window=60).size == 0
    np.testing.assert_array_equal(select_frames(scores, 1.0, window=60, valid=valid), np.flatnonzero(valid))
    chosen = select_frames(scores, 0.25, window=60, valid=valid)
    assert chosen.dtype == np.int64 and np.all(np.diff(chosen) > 0)
    assert np.bincount(chosen // 60, minlength=4).tolist() == [15, 15, 15, 15]
    assert valid[chosen].all()
    # A last, shorter window gets its share: 250 frames -> 4 x 15 + ceil(0.25 * 10).
    assert select_frames(rng.normal(size=250), 0.25, window=60).size == 63
    # Window longer than the recording.
    assert select_frames(scores[:20], 0.25, window=60).size == 5


def test_select_frames_threshold_and_plain_top_k():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=120)
    valid = rng.random(120) < 0.7
    np.testing.assert_array_equal(select_frames(scores, threshold=0.5, valid=valid),
                                  np.flatnonzero((scores >= 0.5) & valid))
    chosen = select_frames(scores, 0.1, window=60, coverage=0.0)
    expected = np.sort(np.concatenate([np.argsort(-scores[:60])[:6], 60 + np.argsort(-scores[60:])[:6]]))
    np.testing.assert_array_equal(chosen, expected)


def test_select_frames_coverage_spreads_picks():
    t = np.arange(60)
    scores = np.exp(-0.5 * ((t - 30) / 6.0) ** 2) + 1e-4 * np.random.default_rng(2).random(60)
    plain = select_frames(scores, 0.1, window=60, coverage=0.0)
    spread = select_frames(scores, 0.1, window=60, coverage=0.9)
    assert plain.size == spread.size == 6
    assert np.diff(plain).min() == 1
    assert np.diff(spread).min() > np.diff(plain).min()
    assert 30 in spread  # the best frame is always taken first


def test_select_frames_non_finite_scores():
    rng = np.random.default_rng(3)
    scores = rng.normal(size=120)
    scores[:10] = -np.inf  # e.g. MotionPass.frame_scores where no animal is visible
    valid = np.ones(120, bool)
    valid[:10] = False
    chosen = select_frames(scores, 0.25, window=60, valid=valid)
    assert chosen.size == 30 and valid[chosen].all()
    scores[50] = np.nan
    chosen = select_frames(scores, 0.25, window=60, valid=valid)
    assert chosen.size == 30 and valid[chosen].all() and 50 not in chosen


@pytest.mark.parametrize("kwargs", [dict(budget=1.5), dict(budget=-0.1), dict(budget=float("nan")),
                                    dict(budget=0.2, threshold=0.1), dict()])
def test_select_frames_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        select_frames(np.zeros(30), **kwargs)


def test_gate_components_and_group_removal():
    torch.manual_seed(0)
    n, t = 2, 30
    z = torch.randn(n, t, 16)
    codes = torch.randint(0, 4, (n, t, 3))
    animal = torch.rand(n, t, len(ANIMAL_FEATURES))
    comp = gate_components(z, codes, animal, torch.rand(n, t, 2), torch.randn(n, t))
    assert comp.shape == (n, t, len(COMPONENT_NAMES)) and torch.isfinite(comp).all()
    assert torch.all(comp[:, 0, :2] == 0)  # no change before the first frame
    assert torch.all((comp[..., 1] >= 0) & (comp[..., 1] <= 1)) and torch.all(comp[..., 6] <= 1 + 1e-6)
    comp0 = gate_components(z, codes, animal, None, None)
    assert torch.all(comp0[..., 6:] == 0)
    gate = Gate().eval()
    with torch.no_grad():
        s = gate(comp)
        assert s.shape == (n, t)
        gate.remove("motion")
        s1 = gate(comp)
        other = comp.clone()
        other[..., list(COMPONENT_GROUPS["motion"])] = torch.randn(n, t, 2) * 10
        torch.testing.assert_close(gate(other), s1)
        other[..., 2] += 1.0  # an uncertainty component still counts
        assert (gate(other) - s1).abs().max() > 0


# ------------------------------------------------------------------------------------------------
# Windows
# ------------------------------------------------------------------------------------------------


def _sequence(n_frames, n_animals=2, n_bodyparts=6, seed=0, dc=4, dx=3, targets=True):
    pose = tokenize(make_record(make_keypoints(n_frames, n_animals, n_bodyparts, seed=seed)))
    rng = np.random.default_rng(seed)
    crop = (rng.random((n_frames, n_animals, dc)) + 1).astype(np.float16)
    ctx = (rng.random((n_frames, dx)) + 1).astype(np.float16)
    tg = (rng.random((n_frames, n_animals, 2)) < 0.3).astype(np.float32) if targets else None
    return Sequence(f"seq{seed}", pose, FPS, crop, ctx, np.ones(n_frames, bool), tg)


@pytest.mark.parametrize("n_frames", [1, 20, 32, 33, 100, 113])
def test_tile_covers_every_frame(n_frames):
    seqs = [_sequence(n_frames, 2, seed=1), _sequence(57, 1, seed=2)]
    windows = tile(seqs, 32)
    for si, s in enumerate(seqs):
        for a in range(s.n_individuals):
            covered = np.zeros(s.n_frames, int)
            for w in windows:
                if w.seq == si and w.animal == a:
                    assert 0 <= w.start and w.start + w.length <= s.n_frames and 0 < w.length <= 32
                    covered[w.start: w.start + w.length] += 1
            assert covered.min() >= 1


def test_stitch_puts_every_frame_back_in_place():
    seqs = [_sequence(100, 2, seed=1), _sequence(45, 1, seed=2)]
    windows = tile(seqs, 32)
    # Outputs padded to the window length (as in a batch), with garbage in the padding.
    outs = [np.concatenate([np.arange(w.start, w.start + w.length) + 1000.0 * w.animal,
                            np.full(32 - w.length, -1.0)])[:, None] for w in windows]
    result = stitch(windows, outs, seqs)
    for s, r in zip(seqs, result):
        assert r.shape == (s.n_frames, s.n_individuals, 1)
        expected = np.arange(s.n_frames)[:, None] + 1000.0 * np.arange(s.n_individuals)[None]
        np.testing.assert_array_equal(r[..., 0], expected)
    # Each frame comes from the window where it is farthest from an inner edge.
    ids = stitch(windows, [np.full(w.length, k) for k, w in enumerate(windows)], seqs)
    for si, s in enumerate(seqs):
        for a in range(s.n_individuals):
            for t in range(s.n_frames):
                def centrality(w):
                    left = t - w.start if w.start > 0 else 10**6
                    right = w.start + w.length - 1 - t if w.start + w.length < s.n_frames else 10**6
                    return min(left, right)
                cands = [w for w in windows
                         if w.seq == si and w.animal == a and w.start <= t < w.start + w.length]
                assert centrality(windows[ids[si][t, a]]) == max(centrality(w) for w in cands)


def test_collate_zeroes_vision_outside_looked_and_pads():
    s0 = _sequence(40, 2, n_bodyparts=6, seed=1)
    s1 = _sequence(40, 1, n_bodyparts=4, seed=2)
    s1.visual_available[30:] = False
    looked = [np.zeros(40, bool), np.zeros(40, bool)]
    looked[0][[5, 12, 20]] = True
    looked[1][[3, 31]] = True  # 31 has no computed features
    windows = [Window(0, 1, 4, 20), Window(1, 0, 0, 32), Window(1, 0, 20, 10)]
    batch = collate([s0, s1], windows, (4, 3), looked=looked)
    assert batch["tokens"].shape == (3, 32, 6, 6) and batch["visual"].shape == (3, 32, 7)
    avail = batch["visual_available"]
    assert torch.nonzero(avail[0]).flatten().tolist() == [1, 8, 16]  # frames 5, 12, 20 of the window at 4
    assert torch.nonzero(avail[1]).flatten().tolist() == [3]
    assert not avail[2].any()
    nonzero = batch["visual"].abs().sum(-1) > 0
    assert not nonzero[~avail].any()  # nothing outside the looked-at frames
    # Features are centred on the animal's (context: the recording's) mean over looked-at frames.
    seen = [f for f in (5, 12, 20) if s0.pose.visible[f, 1]]
    crop_mean = s0.crop[seen, 1].astype(np.float32).mean(0)
    ctx_mean = s0.context[[5, 12, 20]].astype(np.float32).mean(0)
    np.testing.assert_allclose(batch["visual"][0, 1, :4].numpy(), s0.crop[5, 1].astype(np.float32) - crop_mean,
                               atol=1e-6)
    np.testing.assert_allclose(batch["visual"][0, 1, 4:].numpy(), s0.context[5].astype(np.float32) - ctx_mean,
                               atol=1e-6)
    # Padding: frames past a window's length, and keypoints past a smaller skeleton.
    assert batch["valid"][0, :20].all() and not batch["valid"][0, 20:].any()
    assert not batch["present"][1, :, 4:].any() and torch.all(batch["tokens"][1, :, 4:] == 0)
    assert torch.isnan(batch["targets"][0, 20:]).all() and torch.isfinite(batch["targets"][0, :20]).all()
    # Without a looked mask, every computed frame is available.
    assert collate([s0, s1], windows, (4, 3))["visual_available"][1].sum() == 30


def test_random_windows_respect_labels_and_bounds():
    s = _sequence(50, 2, seed=4)
    s.targets[:, 1] = np.nan  # animal 1 unlabeled
    rng = np.random.default_rng(0)
    ws = random_windows([s], 40, 32, rng, need_labels=True)
    assert len(ws) == 40 and all(w.animal == 0 for w in ws)
    assert all(0 <= w.start and w.start + w.length <= 50 and w.length == 32 for w in ws)
    assert {w.animal for w in random_windows([s], 40, 32, rng)} == {0, 1}
    s.targets[:] = np.nan
    with pytest.raises(ValueError):
        random_windows([s], 4, 32, rng, need_labels=True)


def test_random_windows_cover_the_few_labeled_frames_of_a_long_recording():
    # One labeled bout (frames 700-719) in a 1000-frame recording: every training window must
    # contain labeled frames, wherever the bout is.
    s = _sequence(1000, 1, seed=5)
    s.targets[:] = np.nan
    s.targets[700:720] = 0.0
    ws = random_windows([s], 200, 64, np.random.default_rng(1), need_labels=True)
    assert all(w.start <= 719 and w.start + w.length > 700 for w in ws)
    assert all(0 <= w.start and w.start + w.length <= 1000 and w.length == 64 for w in ws)
    # The bout's position inside the windows varies (random offsets, not one fixed window).
    assert len({w.start for w in ws}) > 20


# ------------------------------------------------------------------------------------------------
# Model: save / load, thresholds
# ------------------------------------------------------------------------------------------------


TINY = dict(dim=32, depth=1, heads=2, window=32, codebook_size=16, crop_dim=4, context_dim=3)


def _tiny_model(behaviors=("groom", "rear")) -> LookAgainModel:
    torch.manual_seed(0)
    return LookAgainModel(ModelConfig(**TINY, behaviors=list(behaviors)))


def test_save_load_round_trip(tmp_path):
    model = _tiny_model()
    seqs = [_sequence(40, 2, seed=1)]
    batch = collate(seqs, tile(seqs, 32), (4, 3))
    model.train()
    model.pretrain_losses(batch)  # initialises the RVQ codebooks (k-means)
    model.eval()
    model.thresholds.copy_(torch.rand(5, 2))
    path = save_model(model, tmp_path / "sub" / "model.pt",
                      extra={"kind": "test", "score": np.float32(0.75), "source": Path("a/b.h5")})
    man_path = tmp_path / "sub" / "model.pt.manifest.json"
    assert path.is_file() and man_path.is_file()
    manifest_json = json.loads(man_path.read_text())
    loaded, manifest = load_model(path)
    assert manifest == manifest_json
    assert manifest["behaviors"] == ["groom", "rear"] and manifest["kind"] == "test"
    assert manifest["score"] == pytest.approx(0.75) and manifest["source"] == str(Path("a/b.h5"))
    assert not loaded.training and loaded.config == model.config
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k
    with torch.no_grad():
        z, z2 = model.motion(batch), loaded.motion(batch)
        torch.testing.assert_close(z2, z, atol=0, rtol=0)
        looked = batch["visual_available"].clone()
        looked[:, ::2] = False
        torch.testing.assert_close(loaded.classify(z2, batch["visual"], looked, FPS),
                                   model.classify(z, batch["visual"], looked, FPS), atol=0, rtol=0)
        assert torch.equal(loaded.quantizer(z)[1], model.quantizer(z)[1])


def test_load_rejects_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.pt")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"this is not a model\x00\x01")
    with pytest.raises(PoseFormatError, match="garbage.pt"):
        load_model(garbage)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(PoseFormatError, match="other.pt"):
        load_model(other)
    path = save_model(_tiny_model(), tmp_path / "m.pt")
    blob = torch.load(path, weights_only=True)
    blob["manifest"]["format_version"] = 999
    future = tmp_path / "future.pt"
    torch.save(blob, future)
    with pytest.raises(PoseFormatError, match="future.pt.*999"):
        load_model(future)


def test_thresholds_at_interpolates_between_budget_points():
    model = _tiny_model()
    model.thresholds.copy_(torch.tensor([[0.1, 0.9], [0.2, 0.8], [0.3, 0.7], [0.4, 0.6], [0.5, 0.5]]))
    cases = {0.0: [0.1, 0.9], 0.05: [0.15, 0.85], 0.1: [0.2, 0.8], 0.175: [0.25, 0.75], 0.25: [0.3, 0.7],
             0.3: [0.32, 0.68], 0.75: [0.45, 0.55], 1.0: [0.5, 0.5], -1.0: [0.1, 0.9], 3.0: [0.5, 0.5]}
    for budget, expected in cases.items():
        np.testing.assert_allclose(model.thresholds_at(budget).numpy(), expected, atol=1e-5,
                                   err_msg=str(budget))


def test_set_behaviors_resizes_head_and_thresholds():
    model = _tiny_model(())
    assert model.head is None
    with pytest.raises(RuntimeError):
        model.classify(torch.zeros(1, 4, 32), torch.zeros(1, 4, 7), torch.zeros(1, 4, dtype=torch.bool),
                       FPS)
    model.set_behaviors(["a", "b", "c"])
    assert model.thresholds.shape == (5, 3) and model.temperature.shape == (3,)
    assert "thresholds" in dict(model.named_buffers())
    none = torch.zeros(1, 4, dtype=torch.bool)
    out = model.classify(torch.zeros(1, 4, 32), torch.zeros(1, 4, 7), none, FPS)
    assert out.shape == (1, 4, 3)


def test_sparse_frames_read_like_the_dense_array():
    from dlc_lookagain.model.windows import SparseFrames

    rng = np.random.default_rng(3)
    t, i, d = 50, 3, 4
    dense = np.zeros((t, i, d), np.float16)
    sparse = SparseFrames(t, (i, d), np.float16)
    for frames in (np.array([3, 10, 11]), np.array([10, 40]), np.array([49])):  # 10 set twice: last wins
        values = rng.normal(size=(frames.size, i, d)).astype(np.float16)
        dense[frames] = values
        sparse[frames] = values
    assert sparse.n_stored == 5 and sparse.shape == dense.shape
    mask = rng.random(t) < 0.4
    mask[10] = True
    for key in (slice(None), slice(5, 20), slice(40, 60), mask, np.array([0, 10, 49, 10]), 10, 7,
                (slice(2, 30), 1), (mask, 2), (np.array([3, 4]), 0), (11, 2)):
        np.testing.assert_array_equal(sparse[key], dense[key], err_msg=str(key))
    np.testing.assert_array_equal(sparse.toarray(), dense)
    ctx = SparseFrames(t, (d,))
    ctx[np.array([1, 2])] = np.ones((2, d))
    assert ctx[0:3].tolist() == [[0] * d, [1] * d, [1] * d]
    assert sparse.nbytes < dense.nbytes


def test_inference_with_sparse_features_equals_dense(torch_one_thread):
    """analyze keeps only the looked-at rows; the probabilities must be those of the dense arrays."""
    from pathlib import Path

    from dlc_lookagain.io import load_pose
    from dlc_lookagain.model.inference import fused_pass, uniform_frames
    from dlc_lookagain.model.look import attach_visual
    from dlc_lookagain.model.pose_tokens import tokenize
    from dlc_lookagain.model.visual_features import VisualFeatures
    from dlc_lookagain.model.windows import Sequence, SparseFrames
    from dlc_lookagain.project_training import load_default_model

    net, _ = load_default_model()
    videos = Path(__file__).resolve().parents[1] / "sample_project" / "videos"
    rec = load_pose(videos / "sample_000DLC_dlcrnetms5_synthmiceMay06shuffle1_200000_el.h5", video=False)
    frames = uniform_frames(rec.n_frames, 0.25)
    d = net.config.crop_dim
    rng = np.random.default_rng(0)
    feats = VisualFeatures(frames=frames, animal=rng.normal(size=(frames.size, rec.n_individuals, d)).astype(
        np.float16), valid=np.ones((frames.size, rec.n_individuals), bool),
        context=rng.normal(size=(frames.size, d)).astype(np.float16), seen=np.ones(frames.size, bool),
        encoder=net.config.vision_encoder)
    out = []
    for sparse in (False, True):
        seq = Sequence("s", tokenize(rec), 30.0)
        attach_visual(seq, feats, sparse=sparse)
        assert isinstance(seq.crop, SparseFrames) == sparse
        out.append(fused_pass(net, [seq], [frames])[0][0])
    np.testing.assert_array_equal(out[0], out[1])
