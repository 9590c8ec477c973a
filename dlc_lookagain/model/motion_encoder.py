"""Motion encoder: keypoint tokens of one animal over a window of frames -> one motion vector per frame.

Method
------
1. **Keypoint set embedding.** Each present keypoint token (egocentric position, velocity,
   confidence; see :mod:`dlc_lookagain.model.pose_tokens`) is concatenated with a Fourier
   embedding of its skeleton-free identity p_b (where the keypoint sits on the body) and mapped by
   an MLP to a d-dimensional vector. A frame is the *set* of its present keypoints: it is pooled by
   attention (a learned score per token and head, softmax over the present tokens) plus a masked mean, so the encoder accepts any number of
   bodyparts in any order, and absent keypoints simply do not take part (never zero-filled). A frame
   with no keypoint at all gets a learned "not seen" vector.
2. **Whole-body features** (speed, turning, elongation, neighbour, arena position) are projected to
   d and added.
3. **Temporal model.** A pre-norm Transformer encoder over the window (sinusoidal positions) turns
   the per-frame vectors into motion features z_t that see the frames around t, which is what
   behaviour is made of.

Shapes: N windows (one animal each), T frames per window, B keypoints, d model width.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["MotionEncoder", "FourierFeatures", "sinusoidal_positions"]


class FourierFeatures(nn.Module):
    """Fixed Fourier features of low-dimensional coordinates, so MLPs resolve small differences."""

    def __init__(self, in_dim: int = 2, n_freqs: int = 6, max_freq: float = 8.0):
        super().__init__()
        freqs = torch.exp(torch.linspace(0.0, math.log(max_freq), n_freqs)) * math.pi
        self.register_buffer("freqs", freqs, persistent=False)
        self.out_dim = in_dim * (2 * n_freqs + 1)

    def forward(self, x: Tensor) -> Tensor:  # (..., in_dim) -> (..., out_dim)
        xf = x[..., None] * self.freqs  # (..., in_dim, F)
        return torch.cat([x, torch.sin(xf).flatten(-2), torch.cos(xf).flatten(-2)], -1)


def sinusoidal_positions(n: int, dim: int, device=None) -> Tensor:
    """Standard sinusoidal position table ``(n, dim)``."""
    pos = torch.arange(n, device=device, dtype=torch.float32)[:, None]
    i = torch.arange(0, dim, 2, device=device, dtype=torch.float32)
    angle = pos / (10000 ** (i / dim))
    table = torch.zeros(n, dim, device=device)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle[:, : dim // 2])
    return table


class KeypointSetEmbedding(nn.Module):
    """Pool the present keypoint tokens of each frame into one vector (any skeleton)."""

    def __init__(self, token_dim: int, dim: int, n_heads: int = 4):
        super().__init__()
        self.identity_features = FourierFeatures(2)
        self.token_mlp = nn.Sequential(
            nn.Linear(token_dim + self.identity_features.out_dim, dim), nn.GELU(), nn.Linear(dim, dim)
        )
        # Attention pooling with a learned query per head: one logit per (token, head).
        self.heads = n_heads
        self.score = nn.Linear(dim, n_heads)
        self.not_seen = nn.Parameter(torch.zeros(dim))
        self.out = nn.Linear(2 * dim, dim)

    def forward(self, tokens: Tensor, identity: Tensor, present: Tensor) -> Tensor:
        # tokens (N, T, B, Ft), identity (N, B, 2), present (N, T, B) bool -> (N, T, d)
        n, t, b, _ = tokens.shape
        ident = self.identity_features(identity)[:, None].expand(n, t, b, -1)  # (N, T, B, Fi)
        h = self.token_mlp(torch.cat([tokens, ident], -1)).reshape(n * t, b, -1)  # (N*T, B, d)
        mask = present.reshape(n * t, b)
        seen = mask.any(-1)  # (N*T,)
        # Attention pooling over present tokens only (softmax of a per-head score).
        logits = self.score(h).masked_fill(~mask[..., None], float("-inf"))  # (N*T, B, heads)
        attn = torch.softmax(logits, dim=1).nan_to_num(0.0)  # frames with nothing present: all 0
        hv = h.reshape(n * t, b, self.heads, -1)  # (N*T, B, heads, d/heads)
        pooled = (attn[..., None] * hv).sum(1).reshape(n * t, -1)  # (N*T, d)
        w = mask.float()[..., None]
        mean = (h * w).sum(1) / w.sum(1).clamp(min=1.0)  # (N*T, d)
        frame = self.out(torch.cat([pooled, mean], -1))
        frame = torch.where(seen[:, None], frame, self.not_seen.expand_as(frame))
        return frame.reshape(n, t, -1)


class MotionEncoder(nn.Module):
    """Keypoint tokens of a window -> per-frame motion features z (see the module docstring).

    Parameters
    ----------
    token_dim, animal_dim : int
        Widths of the keypoint tokens and of the whole-body features.
    dim : int
        Model width d.
    depth, heads : int
        Transformer layers and attention heads.
    dropout : float
        Dropout inside the Transformer.
    """

    def __init__(self, token_dim: int = 6, animal_dim: int = 21, dim: int = 96, depth: int = 3,
                 heads: int = 4, dropout: float = 0.1):
        super().__init__()
        self.dim = dim
        self.keypoints = KeypointSetEmbedding(token_dim, dim, heads)
        self.body = nn.Sequential(nn.Linear(animal_dim, dim), nn.GELU(), nn.Linear(dim, dim))
        self.visible_embedding = nn.Embedding(2, dim)
        layer = nn.TransformerEncoderLayer(dim, heads, dim_feedforward=2 * dim, dropout=dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.temporal = nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)

    def forward(self, tokens: Tensor, identity: Tensor, present: Tensor, animal: Tensor,
                visible: Tensor) -> Tensor:
        # tokens (N, T, B, 6), identity (N, B, 2), present (N, T, B), animal (N, T, F), visible (N, T)
        x = self.keypoints(tokens, identity, present) + self.body(animal)  # (N, T, d)
        x = x + self.visible_embedding(visible.long())
        x = x + sinusoidal_positions(x.shape[1], self.dim, x.device)[None]
        return self.norm(self.temporal(x))  # z: (N, T, d)
