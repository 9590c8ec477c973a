"""Fusion: visual features of the few looked-at frames inform every frame around them.

Method
------
Only a fraction of frames is looked at. Frame t (motion feature z_t) therefore gathers vision from
the looked-at frames s of its window by temporal cross-attention:

    a_ts = softmax_s( <W_q z_t, W_k v_s> / sqrt(d_h) - lambda_h |t - s| / fps )     s looked at
    u_t  = sum_s a_ts W_v v_s    (+ a learned "nothing seen" key/value that is always available)

with v_s = P(LayerNorm(visual_s)), the projection of the frozen vision features of frame s (animal
crop and context view), and one learned decay lambda_h >= 0 per head: vision seen two seconds ago
is worth less than vision seen now. The fused feature is f_t = z_t + W_o u_t + e(delta_t), followed
by a residual MLP, where e(delta_t) embeds the time to the nearest looked-at frame (how stale the
visual evidence is). With no frame looked at, every frame attends to the "nothing seen" token and
the model falls back to keypoints alone; with every frame looked at, each frame mostly attends to
itself. The same weights serve every budget between the two (the training samples budgets).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["VisualFusion", "frames_to_nearest"]


def frames_to_nearest(looked: Tensor) -> Tensor:
    """Distance in frames from each frame to the nearest looked-at frame (large when none).

    looked: bool (N, T) -> float (N, T)
    """
    n, t = looked.shape
    idx = torch.arange(t, device=looked.device, dtype=torch.float32)[None].expand(n, t)
    big = torch.full_like(idx, 1e4)
    pos = torch.where(looked, idx, -big)
    prev = torch.cummax(pos, dim=1).values  # last looked index at or before t
    pos_r = torch.where(looked, idx, big * 2).flip(1)
    nxt = (-torch.cummax(-pos_r, dim=1).values).flip(1)  # first looked index at or after t
    return torch.minimum(idx - prev, nxt - idx).clamp(max=1e4)


class VisualFusion(nn.Module):
    """Temporal cross-attention from motion features to looked-at visual features.

    Parameters
    ----------
    dim : int
        Width d of the motion features.
    visual_dim : int
        Width of the (projected) frozen vision features of animal crop and context view.
    heads : int
        Attention heads.
    fps : float
        Frame rate the time decay is expressed in (frames are converted to seconds).
    """

    def __init__(self, dim: int = 96, visual_dim: int = 64, heads: int = 4, dropout: float = 0.1,
                 visual_dropout: float = 0.3, visual_noise: float = 0.5):
        super().__init__()
        self.heads = heads
        self.visual_noise = visual_noise
        # Strong dropout on the visual input: frozen features identify single frames too easily.
        self.visual = nn.Sequential(nn.LayerNorm(visual_dim), nn.Dropout(visual_dropout), nn.Linear(visual_dim, dim),
                                    nn.GELU(), nn.Linear(dim, dim))
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.o = nn.Linear(dim, dim)
        self.null_key = nn.Parameter(torch.randn(dim) * 0.02)
        self.null_value = nn.Parameter(torch.zeros(dim))
        # lambda_h = softplus(raw): initial decay ~0.7 / s.
        self.decay_raw = nn.Parameter(torch.zeros(heads))
        self.staleness = nn.Sequential(nn.Linear(3, dim), nn.GELU(), nn.Linear(dim, dim))
        self.norm = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(dropout), nn.Linear(2 * dim, dim))

    def forward(self, z: Tensor, visual: Tensor, looked: Tensor, fps: float | Tensor = 30.0) -> Tensor:
        # z (N, T, d), visual (N, T, Dv) (ignored where not looked), looked bool (N, T),
        # fps scalar or (N,) (windows of recordings with different frame rates) -> (N, T, d)
        n, t, d = z.shape
        h, dh = self.heads, d // self.heads
        if self.training and self.visual_noise > 0:
            # Whitened inputs: unit-variance Gaussian noise scaled by visual_noise (regularization).
            visual = visual + self.visual_noise * torch.randn_like(visual)
        v_feat = self.visual(torch.where(looked[..., None], visual, torch.zeros_like(visual)))  # (N, T, d)
        q = self.q(z).reshape(n, t, h, dh).transpose(1, 2)  # (N, h, T, dh)
        keys = torch.cat([self.null_key.expand(n, 1, d), self.k(v_feat)], 1)  # (N, 1+T, d)
        vals = torch.cat([self.null_value.expand(n, 1, d), self.v(v_feat)], 1)
        k = keys.reshape(n, 1 + t, h, dh).transpose(1, 2)  # (N, h, 1+T, dh)
        v = vals.reshape(n, 1 + t, h, dh).transpose(1, 2)
        # Additive bias: -lambda_h |t - s| / fps for looked-at s, -inf otherwise, 0 for the null token.
        pos = torch.arange(t, device=z.device, dtype=z.dtype)
        fps_n = torch.as_tensor(fps, dtype=z.dtype, device=z.device).reshape(-1, 1, 1).expand(n, 1, 1)
        dist = (pos[:, None] - pos[None, :]).abs()[None] / fps_n  # (N, T, T) seconds
        decay = F.softplus(self.decay_raw)[None, :, None, None]  # (1, h, 1, 1)
        bias = -decay * dist[:, None]  # (N, h, T, T)
        bias = bias.masked_fill(~looked[:, None, None, :], float("-inf"))
        bias = torch.cat([torch.zeros(n, h, t, 1, device=z.device, dtype=z.dtype), bias], -1)  # (N, h, T, 1+T)
        u = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)  # (N, h, T, dh)
        u = u.transpose(1, 2).reshape(n, t, d)
        gap = frames_to_nearest(looked) / fps_n[:, :, 0]  # (N, T) seconds
        stale = torch.stack([torch.log1p(gap.clamp(max=60.0)), (gap == 0).float(), looked.any(1, keepdim=True)
                             .float().expand(n, t)], -1)  # (N, T, 3)
        f = z + self.o(u) + self.staleness(stale)
        return f + self.mlp(self.norm(f))  # fused features (N, T, d)
