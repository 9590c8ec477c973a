"""Residual vector quantization of motion features into discrete motion tokens.

Method
------
z_t is approximated by a sum of L codewords, each chosen from its own codebook to quantize what
the previous levels left over (residual vector quantization, RVQ):
q_t = sum_l C_l[c_tl], with c_tl = argmin_j || (z_t - sum_{m<l} C_m[c_tm]) - C_l[j] ||.
The codes c_t (L small integers per frame) are a compact, discrete description of motion used by
the motion-reconstruction loss (the decoder must rebuild the pose from q_t alone), by the gate's
saliency (frames where the codes change) and by behavior search. Codebooks are updated by
exponential moving averages with k-means initialisation and a commitment loss
|| z_t - sg(q_t) ||^2 pulls the encoder towards its codes. We use the maintained implementation of
``vector-quantize-pytorch`` rather than our own.
"""

from __future__ import annotations

import logging

from torch import Tensor, nn

__all__ = ["MotionQuantizer"]

logger = logging.getLogger(__name__)


def _silence_loguru() -> None:
    # vector-quantize-pytorch logs k-means warnings through loguru straight to stderr.
    try:
        from loguru import logger as loguru_logger

        loguru_logger.disable("vector_quantize_pytorch")
    except ImportError:  # pragma: no cover - loguru is a dependency of vector-quantize-pytorch
        pass


class MotionQuantizer(nn.Module):
    """RVQ over motion features.

    Parameters
    ----------
    dim : int
        Width of z.
    levels : int
        Number of residual codebooks L.
    codebook_size : int
        Codewords per codebook.
    """

    def __init__(self, dim: int = 96, levels: int = 4, codebook_size: int = 128):
        super().__init__()
        _silence_loguru()
        from vector_quantize_pytorch import ResidualVQ

        self.levels = levels
        self.codebook_size = codebook_size
        self.rvq = ResidualVQ(dim=dim, num_quantizers=levels, codebook_size=codebook_size,
                              decay=0.95, kmeans_init=True, kmeans_iters=10, threshold_ema_dead_code=2,
                              commitment_weight=1.0)

    def forward(self, z: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Quantize.

        Parameters
        ----------
        z : Tensor (N, T, d)
        mask : bool Tensor (N, T), optional
            Frames that count for codebook updates and the commitment loss.

        Returns
        -------
        q : Tensor (N, T, d)
            Quantized features (straight-through gradient to z).
        codes : long Tensor (N, T, L)
        commitment : Tensor ()
            Commitment loss summed over levels.
        """
        q, codes, commit = self.rvq(z, mask=mask)
        return q, codes, commit.sum()
