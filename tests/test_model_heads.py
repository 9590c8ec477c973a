"""Tests of the supervised behavior head (dlc_lookagain.model.heads): small, CPU-only, seeded."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlc_lookagain.model.heads import (
    BehaviorHead,
    apply_temperature,
    calibrate_thresholds,
    class_weights,
    f1_per_class,
    min_bout_filter,
    multilabel_loss,
    run_lengths,
    temperature_scale,
)


def test_head_shapes():
    torch.manual_seed(0)
    head = BehaviorHead(12, 5, hidden=16)
    assert head(torch.randn(2, 7, 3, 12)).shape == (2, 7, 3, 5)


def test_loss_ignores_masked_and_nan_targets():
    torch.manual_seed(0)
    logits = torch.randn(4, 6, 3, requires_grad=True)  # (B, T, C)
    targets = torch.randint(0, 2, (4, 6, 3)).float()
    targets[0, 0, 1] = float("nan")
    mask = torch.ones(4, 6, 1, dtype=torch.bool)
    mask[1, 2] = False  # a whole frame out
    base = multilabel_loss(logits, targets, mask)
    assert torch.isfinite(base)

    changed = targets.clone()
    changed[1, 2] = 1.0 - changed[1, 2]  # masked frame
    assert torch.allclose(multilabel_loss(logits, changed, mask), base)

    # The NaN entry contributes nothing: equal to the loss where it is masked explicitly.
    full_mask = mask.expand(4, 6, 3).clone()
    full_mask[0, 0, 1] = False
    filled = targets.clone()
    filled[0, 0, 1] = 1.0
    assert torch.allclose(multilabel_loss(logits, filled, full_mask), base)

    base.backward()
    assert torch.isfinite(logits.grad).all()
    assert torch.all(logits.grad[1, 2] == 0) and logits.grad[0, 0, 1] == 0


def test_loss_with_nothing_labeled_is_zero_with_grad():
    logits = torch.randn(3, 2, requires_grad=True)
    loss = multilabel_loss(logits, torch.full((3, 2), float("nan")), None)
    assert loss.item() == 0.0 and loss.requires_grad
    loss.backward()
    assert torch.all(logits.grad == 0)


def test_class_weights_and_pos_weight():
    rng = np.random.default_rng(0)
    y = np.zeros((1000, 3))
    y[:10, 0] = 1  # 1 % positives
    y[:500, 1] = 1  # balanced
    y[:, 2] = 0  # no positives
    y[rng.random(1000) < 0.1, 1] = np.nan  # unlabeled entries are not counted
    w = class_weights(y)
    assert w.shape == (3,)
    assert w[0] == pytest.approx(np.sqrt(990 / 10), rel=1e-5)
    assert w[1] == pytest.approx(1.0, abs=0.15)
    assert w[2] == 1.0
    assert class_weights(y, max_weight=5.0)[0] == 5.0

    # A missed rare positive costs more with the weight than without.
    logits = torch.tensor([[-2.0, -2.0, -2.0]])
    target = torch.tensor([[1.0, 1.0, 0.0]])
    plain = multilabel_loss(logits[:, :1], target[:, :1])
    weighted = multilabel_loss(logits[:, :1], target[:, :1], pos_weight=torch.from_numpy(w[:1]))
    assert weighted.item() == pytest.approx(plain.item() * w[0], rel=1e-5)


def _probs_known_threshold(n_pos=60, n_neg=600, seed=0):
    rng = np.random.default_rng(seed)
    probs = np.r_[rng.normal(0.3, 0.03, n_pos), rng.normal(0.1, 0.03, n_neg)].clip(0, 1)
    targets = np.r_[np.ones(n_pos), np.zeros(n_neg)]
    return probs[:, None], targets[:, None]


@pytest.mark.parametrize("grid", [None, np.linspace(0.05, 0.95, 19)])
def test_calibrate_thresholds_beats_half(grid):
    probs, targets = _probs_known_threshold()
    thr = calibrate_thresholds(probs, targets, grid=grid)
    assert 0.12 < thr[0] < 0.28
    f1_cal = f1_per_class(probs >= thr, targets)[0]
    f1_half = f1_per_class(probs >= 0.5, targets)[0]
    assert f1_cal > 0.9 and f1_cal > f1_half


def test_calibrate_thresholds_few_positives_and_nan():
    probs, targets = _probs_known_threshold(n_pos=3)
    targets = targets.copy()
    targets[-50:] = np.nan
    assert calibrate_thresholds(probs, targets, min_positives=5)[0] == 0.5


def test_f1_per_class():
    pred = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 1]], dtype=bool)
    targets = np.array([[1, 0, np.nan], [0, 0, 0], [1, 0, np.nan]])
    f1 = f1_per_class(pred, targets)
    assert f1[0] == pytest.approx(0.5)  # TP 1, FP 1, FN 1
    assert np.isnan(f1[1])  # no positives, no predictions
    assert np.isnan(f1[2])  # the only prediction is on an unlabeled entry


def test_min_bout_filter_blip_and_gap():
    x = np.array([0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 0, 1, 1, 1, 1, 0, 0], dtype=bool)
    out = min_bout_filter(x, 3)
    expected = np.zeros_like(x)
    expected[7:15] = True  # 2-frame blip removed, 1-frame gap filled
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(min_bout_filter(x, 1), x)
    # Gaps touching the ends are not filled.
    np.testing.assert_array_equal(min_bout_filter(np.array([0, 1, 1, 1, 1], bool), 3), [0, 1, 1, 1, 1])
    s, n, v = run_lengths(np.array([3, 3, 1, 2, 2, 2]))
    np.testing.assert_array_equal(s, [0, 2, 3])
    np.testing.assert_array_equal(n, [2, 1, 3])
    np.testing.assert_array_equal(v, [3, 1, 2])


def test_temperature_scaling_reduces_nll():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2, (4000, 2))
    targets = (rng.random((4000, 2)) < 1 / (1 + np.exp(-true_logits))).astype(float)
    logits = true_logits * np.array([5.0, 0.5])  # overconfident, underconfident
    T = temperature_scale(logits, targets)
    assert T[0] == pytest.approx(5.0, rel=0.2) and T[1] == pytest.approx(0.5, rel=0.2)

    def nll(p, y):
        p = np.clip(p, 1e-12, 1 - 1e-12)
        return -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))

    assert nll(apply_temperature(logits, T), targets) < nll(apply_temperature(logits, np.ones(2)), targets)
    p_t = apply_temperature(torch.from_numpy(logits), torch.from_numpy(T))
    np.testing.assert_allclose(p_t.numpy(), apply_temperature(logits, T), rtol=1e-6, atol=1e-9)


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread (and do not fight other processes for cores)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_head_overfits_separable_toy_problem(one_thread):
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    y = (torch.rand(512, 3, generator=g) < torch.tensor([0.5, 0.3, 0.05])).float()  # 3rd class rare
    x = 2.0 * y @ torch.randn(3, 8, generator=g) + 0.3 * torch.randn(512, 8, generator=g)
    y_lab = y.clone()
    y_lab[::7, 1] = float("nan")  # sparse labels
    head = BehaviorHead(8, 3, hidden=32, dropout=0.0)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    pos_weight = torch.from_numpy(class_weights(y_lab.numpy()))
    for _ in range(300):
        opt.zero_grad()
        loss = multilabel_loss(head(x), y_lab, pos_weight=pos_weight)
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred = (torch.sigmoid(head(x)) >= 0.5).numpy()
    f1 = f1_per_class(pred, y.numpy())
    assert f1.min() > 0.95, f1
