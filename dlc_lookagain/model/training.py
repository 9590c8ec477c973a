"""Training procedures: self-supervised pretraining, behavior training, gate training, calibration.

1. :func:`pretrain` (no labels): masked keypoint prediction + cross-modal prediction of frozen
   vision features + motion reconstruction from RVQ tokens + RVQ commitment, summed with weights.
2. :func:`fit_behavior` (labels): motion encoder, fusion and behavior head trained together on
   windows whose looked-at frames are sampled at random budgets (0 to 100 %), uniformly or at
   random, so one model serves every budget and the keypoint-only case (budget 0).
3. :func:`fit_gate` (labels, dense vision on held-out frames): the gate regresses the benefit of
   vision, the drop of the per-frame behavior loss from keypoints alone to every frame seen,
   smoothed over +-7 frames because a looked-at frame also informs its neighbours.
4. :func:`fine_tune_with_gate`: a short behavior training round in which looked-at frames are the
   gate's choices, so fusion sees the frame distribution it will see at inference.
5. :func:`calibrate`: per-behavior decision thresholds maximizing F1 on held-out frames, for
   budgets 0, 10, 25, 50 and 100 % (interpolated in between).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
from scipy.ndimage import uniform_filter1d

from dlc_lookagain.model.gate import gate_loss
from dlc_lookagain.model.heads import (apply_temperature, calibrate_thresholds, class_weights, f1_per_class,
                                        multilabel_loss, temperature_scale)
from dlc_lookagain.model.inference import choose_frames, fused_pass, looked_frames, motion_pass
from dlc_lookagain.model.lookagain import LookAgainModel
from dlc_lookagain.model.windows import Sequence, collate, random_windows, visual_means

logger = logging.getLogger(__name__)

__all__ = ["TrainConfig", "pretrain", "fit_behavior", "fit_gate", "fine_tune_with_gate", "calibrate",
           "fit_visual_normalization"]

#: Parameters trained on behavior labels besides the encoder: fusion, behavior head, vision probe.
BEHAVIOR_PARTS = ("fusion.", "head.", "visual_head.")

PRETRAIN_WEIGHTS = {"masked": 1.0, "crossmodal": 1.0, "reconstruction": 1.0, "commitment": 0.25,
                    "crossmodal_error": 0.1}


@dataclass
class TrainConfig:
    """Optimisation settings (defaults sized for 2 CPU cores)."""

    pretrain_steps: int = 1200
    behavior_steps: int = 1500
    gate_steps: int = 400
    gate_finetune_steps: int = 300
    batch_size: int = 24
    lr: float = 1e-3
    weight_decay: float = 0.05
    budgets: tuple[float, ...] = (0.0, 0.05, 0.1, 0.25, 0.5, 1.0)
    seed: int = 0
    #: Train the motion encoder during behavior training. Measured on 2026-11-22 (accuracy
    #: benchmark): freezing the pretrained encoder and training fusion + head only was worse
    #: (test macro F1 0.226-0.255 vs 0.271-0.357), so the encoder is trained, with early stopping.
    train_encoder: bool = True
    #: Learning-rate factor of the (pretrained) motion encoder during behavior training: a lower
    #: rate keeps what pretraining learned while head and fusion adapt to the labels.
    encoder_lr_scale: float = 1.0
    #: Fraction of present keypoint tokens hidden at random in each behavior-training window
    #: (augmentation: trackers drop keypoints, and a few minutes of labels are quickly memorized).
    token_dropout: float = 0.0
    #: How early stopping picks the checkpoint on held-out frames: ``"f1"``, the macro F1 at the
    #: best threshold per behavior averaged over budgets 0, 25 % and 100 % (what is reported), or
    #: ``"loss"``, the mean per-frame BCE. The BCE of frequent ambiguous behaviors rises long
    #: before rare, easy ones (run, chase) are learned, so it stops too early.
    select_by: str = "f1"
    #: Weight of the auxiliary vision-only behavior loss on looked-at frames (0 = off). Accuracy
    #: benchmark of 2026-12-01, ablation "no vision probe": test vision F1 at gate 25 % / every frame
    #: 0.347 / 0.362 with weight 1, 0.283 / 0.277 without; test_shifted unchanged.
    visual_aux_weight: float = 1.0


def _progress(iterable, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, unit="step")


def _optimizer(params, cfg: TrainConfig, steps: int):
    """AdamW with linear warm-up and cosine decay; ``params`` may be a list of parameter groups."""
    params = list(params)
    if params and isinstance(params[0], dict):
        groups = [{"params": [p for p in g["params"] if p.requires_grad], "lr": cfg.lr * g.get("lr_scale", 1.0)}
                  for g in params]
        groups = [g for g in groups if g["params"]]
    else:
        groups = [{"params": [p for p in params if p.requires_grad], "lr": cfg.lr}]
    opt = torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + np.cos(np.pi * min(1.0, s / max(1, steps)))))
    return opt, sched


def fit_visual_normalization(model: LookAgainModel, seqs: list[Sequence], max_frames: int = 12000,
                             seed: int = 0) -> None:
    """Standardize the frozen vision features and fit their whitened principal components."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in seqs:
        idx = np.flatnonzero(s.visual_available)
        if idx.size == 0 or s.crop is None:
            continue
        idx = rng.choice(idx, size=min(idx.size, max_frames // max(1, len(seqs))), replace=False)
        crop_mean, ctx_mean = visual_means(s)
        for a in range(s.n_individuals):
            ok = s.pose.visible[idx, a]
            crop = s.crop[idx[ok], a].astype(np.float32) - crop_mean[a]
            ctx = (s.context[idx[ok]].astype(np.float32) - ctx_mean if s.context is not None
                   else np.zeros((ok.sum(), 0)))
            rows.append(np.concatenate([crop, ctx], 1))
    if not rows:
        logger.warning("no vision features available: visual normalization left at identity")
        return
    x = np.concatenate(rows).astype(np.float64)
    mean, std = x.mean(0), x.std(0) + 1e-3
    xs = (x - mean) / std
    # Principal components, whitened so each has unit variance on the training frames.
    _, sv, vt = np.linalg.svd(xs - xs.mean(0), full_matrices=False)
    p = model.config.visual_pca
    k = min(p, vt.shape[0])
    comps = np.zeros((xs.shape[1], p))  # (Dv, P); columns beyond the data's rank stay zero
    comps[:, :k] = vt[:k].T / (sv[:k] / np.sqrt(max(1, xs.shape[0] - 1)) + 1e-6)
    model.visual_mean.copy_(torch.from_numpy(mean.astype(np.float32)))
    model.visual_std.copy_(torch.from_numpy(std.astype(np.float32)))
    model.visual_components.copy_(torch.from_numpy(comps.astype(np.float32)))
    model.visual_fitted.fill_(True)


def pretrain(model: LookAgainModel, seqs: list[Sequence], cfg: TrainConfig | None = None, *,
             steps: int | None = None, progress: bool = True) -> list[dict[str, float]]:
    """Self-supervised pretraining of the motion encoder and quantizer (no labels).

    Returns the loss history (one dict per 50 steps).
    """
    cfg = cfg or TrainConfig()
    steps = cfg.pretrain_steps if steps is None else steps
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    if any(s.visual_available.any() for s in seqs) and not bool(model.visual_fitted):
        fit_visual_normalization(model, seqs, seed=cfg.seed)
    params = [p for name, p in model.named_parameters()
              if not name.startswith(("head.", "fusion.", "gate."))]
    opt, sched = _optimizer(params, cfg, steps)
    model.train()
    history, running, t0 = [], {}, time.perf_counter()
    mc = model.config
    for step in _progress(range(steps), "pretrain", progress):
        ws = random_windows(seqs, cfg.batch_size, mc.window, rng)
        batch = collate(seqs, ws, (mc.crop_dim, mc.context_dim))
        losses = model.pretrain_losses(batch, generator=gen)
        total = sum(PRETRAIN_WEIGHTS[k] * v for k, v in losses.items())
        opt.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        for k, v in losses.items():
            running[k] = running.get(k, 0.0) + float(v.detach())
        if (step + 1) % 50 == 0 or step + 1 == steps:
            n = 50 if (step + 1) % 50 == 0 else (step + 1) % 50
            history.append({"step": step + 1, **{k: v / n for k, v in running.items()}})
            logger.debug("pretrain %d: %s", step + 1, history[-1])
            running = {}
    model.eval()
    logger.info("pretrained %d steps in %.0f s: %s", steps, time.perf_counter() - t0,
                {k: round(v, 4) for k, v in history[-1].items() if k != "step"} if history else {})
    return history


def _sample_looked(seq: Sequence, budget: float, rng: np.random.Generator) -> np.ndarray:
    """A looked-at mask for training: uniform with a random phase, or a random subset."""
    t = seq.n_frames
    m = np.zeros(t, bool)
    if budget <= 0:
        return m
    if budget >= 1:
        return seq.visual_available.copy()
    if rng.random() < 0.5:
        step = max(1, int(round(1 / budget)))
        m[int(rng.integers(0, step)):: step] = True
    else:
        m[rng.random(t) < budget] = True
    return m & seq.visual_available


def _behavior_step(model, seqs, cfg, rng, pos_weight, looked_fn) -> torch.Tensor:
    mc = model.config
    ws = random_windows(seqs, cfg.batch_size, mc.window, rng, need_labels=True)
    looked = [looked_fn(si) for si in range(len(seqs))]
    batch = collate(seqs, ws, (mc.crop_dim, mc.context_dim), looked=looked)
    fps = batch["fps"]
    mask = batch["valid"] & batch["visible"]
    if cfg.token_dropout > 0:
        kept = batch["present"] & (torch.rand(batch["present"].shape) >= cfg.token_dropout)
        batch = {**batch, "tokens": batch["tokens"] * kept[..., None], "present": kept,
                 "visible": batch["visible"] & kept.any(-1)}
    z = model.motion(batch)
    logits = model.classify(z, batch["visual"], batch["visual_available"], fps)
    loss = multilabel_loss(logits, batch["targets"], mask[..., None], pos_weight)
    if cfg.visual_aux_weight > 0 and model.visual_head is not None and bool(batch["visual_available"].any()):
        seen = (mask & batch["visual_available"])[..., None]
        loss = loss + cfg.visual_aux_weight * multilabel_loss(model.visual_logits(batch["visual"]),
                                                              batch["targets"], seen, pos_weight)
    return loss


def _has_vision(seqs: list[Sequence]) -> bool:
    return any(s.visual_available.any() for s in seqs)


def _distinct_budgets(seqs: list[Sequence], budgets) -> tuple[float, ...]:
    """Without any vision feature every budget is keypoints only: one pass is enough."""
    return tuple(budgets) if _has_vision(seqs) else (0.0,)


def _visible_rows(probs: list[np.ndarray], seqs: list[Sequence]) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and targets (N, C) of the visible animal-frames of all sequences."""
    p = np.concatenate([pr[s.pose.visible] for pr, s in zip(probs, seqs)])
    y = np.concatenate([s.targets[s.pose.visible] for s in seqs])
    return p, y


def validation_loss(model: LookAgainModel, seqs: list[Sequence], budgets=(0.0, 0.25, 1.0)) -> float:
    """Mean per-frame behavior BCE on held-out sequences, averaged over look budgets (uniform choice)."""
    losses = []
    for b in _distinct_budgets(seqs, budgets):
        probs, _ = fused_pass(model, seqs, looked_frames(model, seqs, [], b, "uniform"))
        num = sum(float(_per_frame_bce(p, s.targets)[s.pose.visible].sum()) for p, s in zip(probs, seqs))
        den = sum(int((np.isfinite(s.targets).all(-1) & s.pose.visible).sum()) for s in seqs)
        losses.append(num / max(1, den))
    return float(np.mean(losses))


def validation_f1(model: LookAgainModel, seqs: list[Sequence], budgets=(0.0, 0.25, 1.0)) -> float:
    """Held-out macro F1 at the best threshold per behavior, averaged over look budgets (uniform choice).

    Behaviors with no held-out positive are left out of the mean (their F1 is undefined).
    """
    scores = []
    for b in _distinct_budgets(seqs, budgets):
        probs, _ = fused_pass(model, seqs, looked_frames(model, seqs, [], b, "uniform"))
        p, y = _visible_rows(probs, seqs)
        th = calibrate_thresholds(p, y)
        f1 = f1_per_class(p >= th, y)
        has_pos = (np.nan_to_num(y) > 0.5).any(0)
        scores.append(float(np.nanmean(np.where(has_pos, f1, np.nan))) if has_pos.any() else 0.0)
    return float(np.mean(scores))


def _held_out_objective(model: LookAgainModel, seqs: list[Sequence], select_by: str) -> float:
    """Lower is better: the negative held-out F1, or the held-out loss."""
    if select_by == "f1":
        return -validation_f1(model, seqs)
    if select_by == "loss":
        return validation_loss(model, seqs)
    raise ValueError(f"select_by must be 'f1' or 'loss', got {select_by!r}")


def fit_behavior(model: LookAgainModel, seqs: list[Sequence], cfg: TrainConfig | None = None, *,
                 steps: int | None = None, progress: bool = True, val: list[Sequence] | None = None,
                 eval_every: int = 100) -> list[float]:
    """Train encoder, fusion and behavior head on labeled sequences at random look budgets.

    With ``val`` (held-out labeled sequences), the held-out loss is measured every ``eval_every``
    steps and the weights of the best check are kept (early stopping): a few minutes of labeled
    video are quickly memorized.
    """
    cfg = cfg or TrainConfig()
    steps = cfg.behavior_steps if steps is None else steps
    if model.head is None:
        raise ValueError("set the behavior classes first (model.set_behaviors)")
    torch.manual_seed(cfg.seed + 1)
    rng = np.random.default_rng(cfg.seed + 1)
    if not bool(model.visual_fitted):
        fit_visual_normalization(model, seqs, seed=cfg.seed)
    params = [{"params": [p for name, p in model.named_parameters() if name.startswith(BEHAVIOR_PARTS)]}]
    if cfg.train_encoder:
        params.append({"params": [p for name, p in model.named_parameters() if name.startswith("encoder.")],
                       "lr_scale": cfg.encoder_lr_scale})
    t0 = time.perf_counter()
    history = _behavior_loop(model, seqs, cfg, params, steps, rng,
                             lambda budgets: lambda si: _sample_looked(seqs[si], budgets[si], rng),
                             cfg.budgets,
                             "train", progress, val, eval_every, check_start=False)
    logger.info("behavior training %d steps in %.0f s, final training loss %.4f", steps, time.perf_counter() - t0,
                history[-1] if history else float("nan"))
    return history


def _behavior_loop(model, seqs, cfg, params, steps, rng, looked_for, budget_choices, desc, progress,
                   val, eval_every, *, check_start: bool) -> list[float]:
    """Optimise ``params`` on the behavior loss.

    Each step draws one budget per sequence from ``budget_choices``; ``looked_for(budgets)`` gives
    the function ``sequence index -> looked-at mask`` used for that step's batch.

    With ``val``, the held-out loss is checked every ``eval_every`` steps (and before the first step
    when ``check_start``) and the weights of the best check are kept.
    """
    targets = np.concatenate([s.targets.reshape(-1, s.targets.shape[-1]) for s in seqs])
    pos_weight = torch.from_numpy(class_weights(targets).astype(np.float32))
    opt, sched = _optimizer(params, cfg, steps)
    history, running = [], 0.0
    best: tuple[float, int, dict | None] = (float("inf"), 0, None)
    if val and check_start:
        best = (_held_out_objective(model, val, cfg.select_by), 0,
                {k: t.detach().clone() for k, t in model.state_dict().items()})
    model.train()
    for step in _progress(range(steps), desc, progress):
        budgets = rng.choice(budget_choices, size=len(seqs))
        loss = _behavior_step(model, seqs, cfg, rng, pos_weight, looked_for(budgets))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], 1.0)
        opt.step()
        sched.step()
        running += loss.item()
        if (step + 1) % 50 == 0:
            history.append(running / 50)
            running = 0.0
        if val and ((step + 1) % eval_every == 0 or step + 1 == steps):
            v = _held_out_objective(model, val, cfg.select_by)
            model.train()
            if v < best[0]:
                best = (v, step + 1, {k: t.detach().clone() for k, t in model.state_dict().items()})
            logger.debug("%s step %d: held-out loss %.4f", desc, step + 1, v)
    model.eval()
    if val and best[2] is not None:
        model.load_state_dict(best[2])
        logger.info("%s: best held-out %s %.4f at step %d of %d", desc,
                    "macro F1" if cfg.select_by == "f1" else "loss",
                    -best[0] if cfg.select_by == "f1" else best[0], best[1], steps)
    return history


def _per_frame_bce(probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    p = np.clip(probs, 1e-4, 1 - 1e-4)
    ok = np.isfinite(targets)
    t = np.nan_to_num(targets)
    bce = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    return np.where(ok, bce, 0.0).sum(-1)  # (T, I)


def gate_targets(model: LookAgainModel, seqs: list[Sequence], smooth: int = 15) -> list[np.ndarray]:
    """Benefit of vision per frame and animal: loss(keypoints only) - loss(every frame seen), smoothed."""
    none = [np.zeros(s.n_frames, bool) for s in seqs]
    dense = [s.visual_available.copy() for s in seqs]
    p0, _ = fused_pass(model, seqs, none)
    p1, _ = fused_pass(model, seqs, dense)
    out = []
    for s, a, b in zip(seqs, p0, p1):
        benefit = _per_frame_bce(a, s.targets) - _per_frame_bce(b, s.targets)  # (T, I)
        benefit = uniform_filter1d(benefit, size=smooth, axis=0, mode="nearest")
        out.append(np.where(s.visual_available[:, None], benefit, np.nan))
    return out


def fit_gate(model: LookAgainModel, seqs: list[Sequence], cfg: TrainConfig | None = None, *,
             steps: int | None = None, progress: bool = True) -> dict[str, float]:
    """Train the gate on held-out labeled sequences with dense vision features.

    Returns a summary with the rank correlation between gate scores and benefit on these frames.
    """
    from scipy.stats import spearmanr

    cfg = cfg or TrainConfig()
    steps = cfg.gate_steps if steps is None else steps
    torch.manual_seed(cfg.seed + 2)
    rng = np.random.default_rng(cfg.seed + 2)
    benefit = gate_targets(model, seqs)
    mps = motion_pass(model, seqs)
    comps = [mp.components for mp in mps]  # (T, I, 8)
    ok = [np.isfinite(b) & s.pose.visible for b, s in zip(benefit, seqs)]
    if sum(int(m.sum()) for m in ok) < 100:
        logger.warning("gate not trained: fewer than 100 held-out animal-frames with vision features and labels")
        return {"spearman": float("nan"), "frames": 0, "benefit_mean": float("nan")}
    flat_b = np.concatenate([b[m] for b, m in zip(benefit, ok)])
    mu, sd = float(flat_b.mean()), float(flat_b.std() + 1e-6)
    flat_c = np.concatenate([c[m] for c, m in zip(comps, ok)])
    model.gate.fit_normalization(torch.from_numpy(flat_c))
    opt, sched = _optimizer(model.gate.parameters(), cfg, steps)
    window = model.config.window
    model.gate.train()
    for _ in _progress(range(steps), "gate", progress):
        xs, ys, ms = [], [], []
        for _ in range(cfg.batch_size):
            si = int(rng.integers(len(seqs)))
            s = seqs[si]
            a = int(rng.integers(s.n_individuals))
            length = min(window, s.n_frames)
            st = int(rng.integers(0, s.n_frames - length + 1))
            xs.append(comps[si][st : st + length, a])
            ys.append(np.nan_to_num((benefit[si][st : st + length, a] - mu) / sd))
            ms.append(ok[si][st : st + length, a])
        length = min(len(x) for x in xs)
        x = torch.from_numpy(np.stack([v[:length] for v in xs]).astype(np.float32))
        y = torch.from_numpy(np.stack([v[:length] for v in ys]).astype(np.float32))
        m = torch.from_numpy(np.stack([v[:length] for v in ms]))
        loss = gate_loss(model.gate(x), y, m)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    model.gate.eval()
    mps = motion_pass(model, seqs)
    scores = np.concatenate([mp.scores[m] for mp, m in zip(mps, ok)])
    rho = float(spearmanr(scores, flat_b).correlation) if flat_b.size > 2 else float("nan")
    logger.info("gate: Spearman rho(score, benefit of vision) = %.3f on %d held-out animal-frames", rho,
                flat_b.size)
    return {"spearman": rho, "frames": int(flat_b.size), "benefit_mean": mu}


def fine_tune_with_gate(model: LookAgainModel, seqs: list[Sequence], cfg: TrainConfig | None = None, *,
                        steps: int | None = None, progress: bool = True, val: list[Sequence] | None = None,
                        eval_every: int = 100) -> None:
    """Short behavior training in which looked-at frames are chosen by the (trained) gate.

    With ``val``, the held-out loss before and every ``eval_every`` steps decides which weights
    are kept (fine-tuning may also make things worse).
    """
    cfg = cfg or TrainConfig()
    steps = cfg.gate_finetune_steps if steps is None else steps
    if steps <= 0:
        return
    rng = np.random.default_rng(cfg.seed + 3)
    mps = motion_pass(model, seqs)
    budgets = [b for b in cfg.budgets if 0 < b < 1]
    choices = {(si, b): np.isin(np.arange(s.n_frames), choose_frames(model, s, mp, b))
               for si, (s, mp) in enumerate(zip(seqs, mps)) for b in budgets}
    params = [p for name, p in model.named_parameters() if name.startswith(BEHAVIOR_PARTS)]
    cfg_ft = TrainConfig(**{**cfg.__dict__, "lr": cfg.lr * 0.3})
    _behavior_loop(model, seqs, cfg_ft, params, steps, rng,
                   lambda pick: lambda si: choices[(si, pick[si])] & seqs[si].visual_available, budgets,
                   "gate fine-tuning", progress, val, eval_every, check_start=True)


def calibrate(model: LookAgainModel, seqs: list[Sequence], *, selector: str = "gate") -> np.ndarray:
    """Temperatures and per-behavior thresholds at budgets 0, 0.1, 0.25, 0.5, 1 on held-out sequences.

    One temperature per behavior (minimum held-out NLL over all budgets pooled) makes the written
    probabilities calibrated; the thresholds, chosen for best F1 per budget, apply to the
    temperature-scaled probabilities. Returns the thresholds (5, C).
    """
    has_vision = _has_vision(seqs)
    mps = motion_pass(model, seqs) if has_vision and selector == "gate" else []
    model.temperature.fill_(1.0)
    logits, labels = [], []
    for budget in model.threshold_budgets.tolist():
        if logits and not has_vision:  # every budget is keypoints only
            logits.append(logits[-1])
            labels.append(labels[-1])
            continue
        probs, _ = fused_pass(model, seqs, looked_frames(model, seqs, mps, budget, selector))
        p, y = _visible_rows(probs, seqs)
        p = p.astype(np.float64)
        keep = np.isfinite(y).all(1)
        p = np.clip(p[keep], 1e-7, 1 - 1e-7)
        logits.append(np.log(p) - np.log1p(-p))
        labels.append(y[keep])
    temps = temperature_scale(np.concatenate(logits), np.concatenate(labels))
    table = [calibrate_thresholds(apply_temperature(z, temps), y) for z, y in zip(logits, labels)]
    th = np.stack(table).astype(np.float32)
    model.temperature.copy_(torch.from_numpy(temps.astype(np.float32)))
    model.thresholds.copy_(torch.from_numpy(th))
    return th
