"""Unsupervised behavior segmentation: per-frame features -> motifs -> bouts.

Method
------
Without annotations, behavior can still be segmented into recurring *motifs*: stretches of
frames whose fused motion+vision feature vectors are alike. The segmenter follows the usual
cluster-then-smooth recipe (as in B-SOiD or the k-means/HMM baselines of VAME), in four steps.

1. **Standardise** every feature dimension with the mean and standard deviation of the valid
   training frames, so no dimension dominates by its unit.
2. **PCA-whiten** to ``pca_dim`` components (sklearn PCA): correlated features collapse onto a
   few axes, and whitening gives each retained axis unit variance, so that Euclidean distance
   weighs every retained mode of variation equally.
3. **Cluster** with k-means (``n_init=4``; MiniBatchKMeans above 200k frames). The K centres are
   the motifs. Each frame gets a soft assignment

       q_t(k) = softmax_k( -||y_t - mu_k||^2 / tau ),

   where the temperature tau is the mean squared distance of the training frames to their
   nearest centre (the within-motif spread). For an isotropic Gaussian mixture the exact
   posterior would use tau = 2 sigma^2 = 2 tau / d (d retained dimensions); the larger tau used
   here tempers the per-frame evidence by d/2. Consecutive frames are strongly correlated (they
   are not independent samples), and the untempered likelihood would let a single odd frame
   outweigh any temporal prior.
4. **Smooth in time** with a sticky hidden Markov model whose states are the motifs: the state
   stays with probability ``stickiness`` and otherwise jumps to any other motif uniformly, i.e. a
   prior expected dwell time of 1 / (1 - stickiness) frames. The emission log-likelihood of
   frame t in state k is log q_t(k); the most likely state sequence (Viterbi) gives the labels.
   Because all off-diagonal transitions are equal, the max over predecessors is
   ``max(delta_k + log p, max_j delta_j + log q)`` (exact when p >= 1/K), so each time step is
   O(K) vectorised NumPy work instead of O(K^2).

Invalid frames (masked out, or with non-finite features) are skipped when fitting; in ``predict``
they carry no evidence (uniform emission, the chain bridges them) and are labelled -1.

The number of motifs is a modelling choice; ``choose_n_motifs`` offers a simple data-driven default
(highest silhouette score on a subsample). ``summarize_motifs`` turns labels into a table of time
budget, bout counts and durations, mean kinematics and the supervised behavior each motif "looks
like". A fitted segmenter is stored as plain arrays (``to_dict``/``from_dict``), e.g. inside a
torch checkpoint or an ``.npz`` file.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits

logger = logging.getLogger(__name__)

__all__ = ["MotifSegmenter", "choose_n_motifs", "summarize_motifs", "viterbi_sticky"]

MINIBATCH_ABOVE = 200_000  # frames; above this k-means runs in mini-batches
TEMPERATURE_SAMPLE = 200_000  # frames used to estimate the soft-assignment temperature
FORMAT_VERSION = 1


# --------------------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------------------


def _as_list(features, mask) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Normalise (array | list of arrays, mask) into lists of (T_i, D) float arrays and (T_i,) masks.

    A frame is valid when its mask is True and all of its features are finite.
    """
    if isinstance(features, np.ndarray) and features.ndim == 2:
        feats = [features]
        masks = [mask] if mask is not None else [None]
    else:
        feats = list(features)
        masks = list(mask) if mask is not None else [None] * len(feats)
    if len(masks) != len(feats):
        raise ValueError(f"{len(feats)} feature arrays but {len(masks)} masks")
    out_f, out_m = [], []
    for f, m in zip(feats, masks):
        f = np.asarray(f, dtype=np.float64)
        if f.ndim != 2:
            raise ValueError(f"features must be (T, D) arrays, got shape {f.shape}")
        valid = np.isfinite(f).all(axis=1)  # (T,)
        if m is not None:
            m = np.asarray(m, dtype=bool)
            if m.shape != (f.shape[0],):
                raise ValueError(f"mask shape {m.shape} does not match {f.shape[0]} frames")
            valid &= m
        out_f.append(f)
        out_m.append(valid)
    dims = {f.shape[1] for f in out_f}
    if len(dims) > 1:
        raise ValueError(f"feature arrays have different dimensions {sorted(dims)}")
    return out_f, out_m


class _Embedding:
    """Standardise + (optionally) PCA-whiten, stored as plain arrays so it round-trips exactly."""

    def __init__(self, mean, scale, pca_mean, components, pca_scale) -> None:
        self.mean = np.asarray(mean, dtype=np.float64)  # (D,)
        self.scale = np.asarray(scale, dtype=np.float64)  # (D,)
        self.pca_mean = np.asarray(pca_mean, dtype=np.float64)  # (D,) or (0,)
        self.components = np.asarray(components, dtype=np.float64)  # (d, D) or (0, D)
        self.pca_scale = np.asarray(pca_scale, dtype=np.float64)  # (d,) or (0,)

    @classmethod
    def fit(cls, x: np.ndarray, pca_dim: int | None, random_state: int) -> _Embedding:
        """Fit on valid frames x (N, D)."""
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale = np.where(scale > 1e-8, scale, 1.0)  # constant dimensions stay at 0
        z = (x - mean) / scale  # (N, D)
        if pca_dim is None:
            d = x.shape[1]
            return cls(mean, scale, np.zeros(0), np.zeros((0, d)), np.zeros(0))
        n_comp = int(min(pca_dim, z.shape[0], z.shape[1]))
        pca = PCA(n_components=n_comp, whiten=True, random_state=random_state).fit(z)
        # sklearn's whitening: (z - mean_) @ components_.T / sqrt(explained_variance_)
        pca_scale = np.sqrt(np.maximum(pca.explained_variance_, 1e-12))
        return cls(mean, scale, pca.mean_, pca.components_, pca_scale)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean) / self.scale  # (T, D)
        if self.components.shape[0] == 0:
            return z
        return (z - self.pca_mean) @ self.components.T / self.pca_scale  # (T, d)


def _sq_dist(y: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances, (T, d) x (K, d) -> (T, K), clipped at 0."""
    d2 = (y * y).sum(axis=1)[:, None] - 2.0 * y @ centers.T + (centers * centers).sum(axis=1)[None, :]
    return np.maximum(d2, 0.0)


def _log_softmax(a: np.ndarray) -> np.ndarray:
    a = a - a.max(axis=1, keepdims=True)
    return a - np.log(np.exp(a).sum(axis=1, keepdims=True))


# --------------------------------------------------------------------------------------------------
# Sticky HMM Viterbi
# --------------------------------------------------------------------------------------------------


def viterbi_sticky(log_emission: np.ndarray, stickiness: float) -> np.ndarray:
    """Most likely state path of a sticky HMM with uniform off-diagonal transitions.

    Transition matrix: ``A[j, k] = stickiness`` if j == k else ``(1 - stickiness) / (K - 1)``;
    uniform initial distribution.

    Parameters
    ----------
    log_emission : ndarray, shape (T, K)
        Log-likelihood (up to a per-frame constant) of each frame under each state; rows of
        zeros carry no evidence.
    stickiness : float in [0, 1)
        Self-transition probability.

    Returns
    -------
    ndarray of int64, shape (T,)

    Notes
    -----
    With p = stickiness >= 1/K the best predecessor of state k is either k itself or the overall
    best state of the previous step, so one step costs O(K): an argmax, and three elementwise
    operations written into preallocated buffers. Back-pointers are a (T, K) "stayed" bit plus
    the previous step's best state. For p < 1/K (anti-sticky, unusual) the dense O(K^2) recursion
    is used.
    """
    e = np.ascontiguousarray(log_emission, dtype=np.float64)
    n_frames, k = e.shape
    if n_frames == 0:
        return np.zeros(0, dtype=np.int64)
    if k == 1:
        return np.zeros(n_frames, dtype=np.int64)
    if not 0.0 <= stickiness < 1.0:
        raise ValueError(f"stickiness must be in [0, 1), got {stickiness}")
    log_stay = np.log(stickiness) if stickiness > 0 else -np.inf
    log_jump = np.log((1.0 - stickiness) / (k - 1))
    path = np.empty(n_frames, dtype=np.int64)
    delta = e[0] - np.log(k)  # (K,)

    if log_stay >= log_jump:
        stayed = np.empty((n_frames, k), dtype=bool)  # (T, K) back-pointer: stayed in k at t
        best_prev = np.empty(n_frames, dtype=np.int64)  # (T,)  otherwise came from this state
        cand = np.empty(k)
        for t in range(1, n_frames):
            j = int(delta.argmax())
            best_prev[t] = j
            # Renormalise by the running max (delta[j]) so values stay O(1): the jump candidate
            # becomes the constant log_jump.
            np.subtract(delta, delta[j] - log_stay, out=cand)  # stay candidates
            np.greater_equal(cand, log_jump, out=stayed[t])
            np.maximum(cand, log_jump, out=cand)
            np.add(cand, e[t], out=delta)
        path[-1] = int(delta.argmax())
        for t in range(n_frames - 1, 0, -1):
            s = path[t]
            path[t - 1] = s if stayed[t, s] else best_prev[t]
        return path

    log_a = np.full((k, k), log_jump)
    np.fill_diagonal(log_a, log_stay)
    back = np.empty((n_frames, k), dtype=np.int64)
    for t in range(1, n_frames):
        scores = delta[:, None] + log_a  # (K prev, K next)
        back[t] = scores.argmax(axis=0)
        delta = scores[back[t], np.arange(k)] + e[t]
        delta -= delta.max()
    path[-1] = int(delta.argmax())
    for t in range(n_frames - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


# --------------------------------------------------------------------------------------------------
# The segmenter
# --------------------------------------------------------------------------------------------------


class MotifSegmenter:
    """Cluster-then-smooth behavior segmentation into K motifs (see the module docstring).

    Parameters
    ----------
    n_motifs : int, default 10
        Number K of motifs (k-means clusters, HMM states); see ``choose_n_motifs``.
    pca_dim : int or None, default 16
        Number of whitened principal components kept; None skips PCA (standardisation only).
    stickiness : float, default 0.9
        HMM self-transition probability; the prior expected dwell time is 1/(1 - stickiness)
        frames (0.9 -> 10 frames). Use ``predict(..., smooth=False)`` for the frame-wise most
        likely motif without smoothing.
    random_state : int, default 0
        Seed of PCA and k-means; fitting is deterministic given it.

    Attributes
    ----------
    centers_ : ndarray, shape (K, d)
        Motif centres in the whitened space.
    temperature_ : float
        Soft-assignment temperature tau (mean squared distance to the nearest centre).
    """

    def __init__(
        self,
        n_motifs: int = 10,
        *,
        pca_dim: int | None = 16,
        stickiness: float = 0.9,
        random_state: int = 0,
    ) -> None:
        if n_motifs < 1:
            raise ValueError(f"n_motifs must be >= 1, got {n_motifs}")
        if not 0.0 <= stickiness < 1.0:
            raise ValueError(f"stickiness must be in [0, 1), got {stickiness}")
        self.n_motifs = int(n_motifs)
        self.pca_dim = None if pca_dim is None else int(pca_dim)
        self.stickiness = float(stickiness)
        self.random_state = int(random_state)
        self._embed: _Embedding | None = None
        self.centers_: np.ndarray | None = None
        self.temperature_: float | None = None

    # ----------------------------------------------------------------------------------------- fit
    @property
    def is_fitted(self) -> bool:
        return self.centers_ is not None

    def fit(
        self,
        features: np.ndarray | Sequence[np.ndarray],
        mask: np.ndarray | Sequence[np.ndarray] | None = None,
    ) -> MotifSegmenter:
        """Fit standardisation, PCA whitening, motif centres and the temperature.

        Parameters
        ----------
        features : ndarray (T, D) or list of ndarray (T_i, D)
            Per-frame features of one or several recordings/animals.
        mask : ndarray of bool (T,) or list of (T_i,), optional
            True for valid frames. Frames with non-finite features are invalid regardless.

        Returns
        -------
        MotifSegmenter
            ``self``.
        """
        feats, masks = _as_list(features, mask)
        x = np.concatenate([f[m] for f, m in zip(feats, masks)], axis=0)  # (N, D) valid frames
        if x.shape[0] < self.n_motifs:
            raise ValueError(f"{x.shape[0]} valid frames cannot make {self.n_motifs} motifs")
        self._embed = _Embedding.fit(x, self.pca_dim, self.random_state)
        y = self._embed(x)  # (N, d)
        if y.shape[0] > MINIBATCH_ABOVE:
            km = MiniBatchKMeans(
                n_clusters=self.n_motifs, batch_size=4096, n_init=3, random_state=self.random_state
            )
        else:
            km = KMeans(n_clusters=self.n_motifs, n_init=4, random_state=self.random_state)
        km.fit(y)
        self.centers_ = np.asarray(km.cluster_centers_, dtype=np.float64)  # (K, d)
        sample = y
        if y.shape[0] > TEMPERATURE_SAMPLE:
            rng = np.random.default_rng(self.random_state)
            sample = y[rng.choice(y.shape[0], TEMPERATURE_SAMPLE, replace=False)]
        spread = float(_sq_dist(sample, self.centers_).min(axis=1).mean())
        self.temperature_ = max(spread, 1e-8)
        logger.info(
            "motifs: K=%d on %d frames, %d dims -> %d, temperature %.3g",
            self.n_motifs, x.shape[0], x.shape[1], y.shape[1], self.temperature_,
        )
        return self

    # ------------------------------------------------------------------------------------- predict
    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise RuntimeError("MotifSegmenter is not fitted; call fit() or from_dict() first")

    def posterior(self, features: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Frame-wise soft assignments (no temporal smoothing).

        Parameters
        ----------
        features : ndarray, shape (T, D)
        mask : ndarray of bool, shape (T,), optional

        Returns
        -------
        ndarray, shape (T, K)
            Rows sum to 1; NaN rows for invalid frames.
        """
        return np.exp(self._log_posterior(features, mask)[0])

    def _log_posterior(self, features, mask) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        feats, masks = _as_list(np.asarray(features, dtype=np.float64), mask)
        x, valid = feats[0], masks[0]  # (T, D), (T,)
        logq = np.full((x.shape[0], self.n_motifs), np.nan)  # (T, K)
        if valid.any():
            d2 = _sq_dist(self._embed(x[valid]), self.centers_)  # (T_valid, K)
            logq[valid] = _log_softmax(-d2 / self.temperature_)
        return logq, valid

    def predict(
        self, features: np.ndarray, mask: np.ndarray | None = None, *, smooth: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Segment one sequence into motifs.

        Parameters
        ----------
        features : ndarray, shape (T, D)
            Consecutive frames of one animal.
        mask : ndarray of bool, shape (T,), optional
            True for valid frames.
        smooth : bool, default True
            Sticky-HMM Viterbi smoothing; False gives the frame-wise most likely motif.

        Returns
        -------
        labels : ndarray of int64, shape (T,)
            Motif per frame, -1 for invalid frames.
        posterior : ndarray, shape (T, K)
            Frame-wise soft assignments q_t(k) (before smoothing); NaN rows for invalid frames.
        """
        logq, valid = self._log_posterior(features, mask)
        if smooth:
            emission = np.where(valid[:, None], logq, 0.0)  # invalid frames: no evidence
            labels = viterbi_sticky(emission, self.stickiness)
        else:
            labels = np.where(valid, np.nan_to_num(logq, nan=-np.inf).argmax(axis=1), -1)
        labels = np.where(valid, labels, -1).astype(np.int64)
        return labels, np.exp(logq)

    def fit_predict(self, features, mask=None, *, smooth: bool = True):
        """``fit`` then ``predict`` on the same data.

        Returns
        -------
        (labels, posterior) for a single (T, D) array, or a list of such pairs for a list input.
        """
        self.fit(features, mask)
        if isinstance(features, np.ndarray) and features.ndim == 2:
            return self.predict(features, mask, smooth=smooth)
        masks = list(mask) if mask is not None else [None] * len(features)
        return [self.predict(f, m, smooth=smooth) for f, m in zip(features, masks)]

    # ---------------------------------------------------------------------------------- save/load
    def to_dict(self, *, plain: bool = False) -> dict:
        """The fitted state as a flat dict of NumPy arrays and Python scalars.

        Parameters
        ----------
        plain : bool, default False
            Convert arrays to (nested) Python lists, which ``torch.load(weights_only=True)`` accepts
            without allow-listing NumPy. The default arrays suit ``np.savez`` directly.

        Returns
        -------
        dict
            ``pca_dim`` is stored as 0 when PCA is disabled (keeps ``np.savez`` free of objects).
        """
        self._check_fitted()
        e = self._embed
        state = {
            "format_version": FORMAT_VERSION,
            "n_motifs": self.n_motifs,
            "pca_dim": 0 if self.pca_dim is None else self.pca_dim,
            "stickiness": self.stickiness,
            "random_state": self.random_state,
            "temperature": float(self.temperature_),
            "centers": self.centers_.copy(),
            "mean": e.mean.copy(),
            "scale": e.scale.copy(),
            "pca_mean": e.pca_mean.copy(),
            "components": e.components.copy(),
            "pca_scale": e.pca_scale.copy(),
        }
        if plain:
            state = {k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in state.items()}
        return state

    @classmethod
    def from_dict(cls, state: dict) -> MotifSegmenter:
        """Rebuild a fitted segmenter from ``to_dict`` output (or a loaded ``.npz``).

        Parameters
        ----------
        state : dict or mapping
            Values may be arrays, 0-d arrays (from ``np.load``) or lists.

        Returns
        -------
        MotifSegmenter
        """
        version = int(np.asarray(state.get("format_version", FORMAT_VERSION)))
        if version > FORMAT_VERSION:
            raise ValueError(f"motif segmenter format {version} is newer than supported {FORMAT_VERSION}")
        pca_dim = int(np.asarray(state["pca_dim"]))
        seg = cls(
            int(np.asarray(state["n_motifs"])),
            pca_dim=pca_dim if pca_dim > 0 else None,
            stickiness=float(np.asarray(state["stickiness"])),
            random_state=int(np.asarray(state["random_state"])),
        )
        d = np.asarray(state["mean"]).shape[0]
        components = np.asarray(state["components"], dtype=np.float64).reshape(-1, d)
        seg._embed = _Embedding(
            state["mean"], state["scale"], state["pca_mean"], components, state["pca_scale"]
        )
        seg.centers_ = np.asarray(state["centers"], dtype=np.float64).reshape(seg.n_motifs, -1)
        seg.temperature_ = float(np.asarray(state["temperature"]))
        return seg


# --------------------------------------------------------------------------------------------------
# Choosing K
# --------------------------------------------------------------------------------------------------


def choose_n_motifs(
    features: np.ndarray | Sequence[np.ndarray],
    candidates: Sequence[int] = (4, 6, 8, 10, 12, 16),
    *,
    mask: np.ndarray | Sequence[np.ndarray] | None = None,
    pca_dim: int | None = 16,
    sample: int = 5000,
    random_state: int = 0,
) -> int:
    """Pick the number of motifs by the silhouette criterion.

    The features are embedded exactly as ``MotifSegmenter.fit`` does (standardise, PCA-whiten),
    a random subsample of ``sample`` valid frames is drawn (silhouette is O(n^2)), k-means is
    fitted for each candidate K on that subsample, and the K with the highest mean silhouette
    coefficient wins (ties: the smaller K). The silhouette compares each frame's mean distance
    to its own motif with that to the nearest other motif, so it rewards motifs that are compact
    *and* separated, and unlike the k-means inertia it does not decrease monotonically with K.

    Parameters
    ----------
    features : ndarray (T, D) or list of ndarray (T_i, D)
    candidates : sequence of int
        Candidate numbers of motifs (each >= 2).
    mask : ndarray of bool or list, optional
        Valid frames.
    pca_dim : int or None, default 16
        As in ``MotifSegmenter``.
    sample : int, default 5000
        Maximum number of frames used.
    random_state : int, default 0

    Returns
    -------
    int
        The chosen number of motifs.
    """
    feats, masks = _as_list(features, mask)
    x = np.concatenate([f[m] for f, m in zip(feats, masks)], axis=0)  # (N, D)
    rng = np.random.default_rng(random_state)
    if x.shape[0] > sample:
        x = x[np.sort(rng.choice(x.shape[0], sample, replace=False))]
    y = _Embedding.fit(x, pca_dim, random_state)(x)  # (n, d)
    best_k, best_score = None, -np.inf
    for k in sorted(set(int(c) for c in candidates)):
        if k < 2 or k >= y.shape[0]:
            continue
        # A few thousand frames gain nothing from threads, and OpenMP threads spinning next to
        # torch's own OpenMP pool (or on a busy machine) can slow k-means down by 10x or more.
        with threadpool_limits(1):
            labels = KMeans(n_clusters=k, n_init=4, random_state=random_state).fit_predict(y)
            score = float(silhouette_score(y, labels))
        logger.info("choose_n_motifs: K=%d silhouette %.4f", k, score)
        if score > best_score + 1e-12:
            best_k, best_score = k, score
    if best_k is None:
        raise ValueError(f"no usable candidate in {list(candidates)} for {y.shape[0]} frames")
    return best_k


# --------------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------------


def summarize_motifs(
    labels: np.ndarray,
    fps: float,
    *,
    per_frame: dict[str, np.ndarray] | None = None,
    behavior_probs: np.ndarray | None = None,
    behavior_names: list[str] | None = None,
    n_motifs: int | None = None,
) -> pd.DataFrame:
    """One row per motif: time budget, bouts, durations, mean descriptors, look-alike behavior.

    A *bout* is a maximal run of consecutive frames with the same motif; an invalid frame (-1)
    ends a bout. Fractions are of the valid (labelled >= 0) frames.

    Parameters
    ----------
    labels : ndarray of int, shape (T,)
        Motif per frame, -1 for invalid frames (``MotifSegmenter.predict``).
    fps : float
        Frame rate, to express durations in seconds.
    per_frame : dict of str -> ndarray (T,), optional
        Per-frame descriptors (e.g. ``{"speed": ..., "body_length": ...}``); each gives a column
        ``mean_<name>`` (NaN-aware mean over the motif's frames).
    behavior_probs : ndarray, shape (T, C), optional
        Per-frame probabilities of the supervised behaviors. Adds ``looks_like`` (the behavior
        with the highest mean probability over the motif's frames) and ``looks_like_prob``.
    behavior_names : list of str, optional
        Names of the C behaviors (default ``behavior_0`` ...).
    n_motifs : int, optional
        Report motifs 0..n_motifs-1 even if some never occur; default: the motifs present.

    Returns
    -------
    pandas.DataFrame
        Columns ``motif, frames, fraction, n_bouts, mean_bout_s, median_bout_s``, then
        ``mean_<descriptor>`` ..., then ``looks_like, looks_like_prob`` if probabilities are given.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    labels = np.asarray(labels).astype(np.int64).ravel()  # (T,)
    n_frames = labels.size
    valid = labels >= 0
    n_valid = int(valid.sum())
    motifs = np.arange(n_motifs) if n_motifs is not None else np.unique(labels[valid])
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    run_start = np.r_[0, change] if n_frames else np.zeros(0, dtype=np.int64)
    run_len = np.diff(np.r_[run_start, n_frames])  # (R,) run-length encoding of the labels
    run_val = labels[run_start]  # (R,)

    probs = None
    if behavior_probs is not None:
        probs = np.asarray(behavior_probs, dtype=np.float64).reshape(n_frames, -1)  # (T, C)
        if behavior_names is None:
            behavior_names = [f"behavior_{c}" for c in range(probs.shape[1])]
        if len(behavior_names) != probs.shape[1]:
            raise ValueError(f"{len(behavior_names)} behavior names for {probs.shape[1]} columns")
    descriptors = {}
    for name, values in (per_frame or {}).items():
        v = np.asarray(values, dtype=np.float64).ravel()
        if v.size != n_frames:
            raise ValueError(f"per_frame[{name!r}] has {v.size} values for {n_frames} frames")
        descriptors[name] = v

    rows = []
    for m in motifs:
        sel = labels == m  # (T,)
        bouts = run_len[run_val == m] / float(fps)  # (n_bouts,) seconds
        n = int(sel.sum())
        row = {
            "motif": int(m),
            "frames": n,
            "fraction": n / n_valid if n_valid else np.nan,
            "n_bouts": int(bouts.size),
            "mean_bout_s": float(bouts.mean()) if bouts.size else np.nan,
            "median_bout_s": float(np.median(bouts)) if bouts.size else np.nan,
        }
        for name, v in descriptors.items():
            vals = v[sel]
            vals = vals[np.isfinite(vals)]
            row[f"mean_{name}"] = float(vals.mean()) if vals.size else np.nan
        if probs is not None:
            with warnings.catch_warnings():  # all-NaN columns: mean NaN, no warning
                warnings.simplefilter("ignore", RuntimeWarning)
                mean_p = np.nanmean(probs[sel], axis=0) if n else np.full(probs.shape[1], np.nan)
            if np.isfinite(mean_p).any():
                c = int(np.nanargmax(mean_p))
                row["looks_like"], row["looks_like_prob"] = behavior_names[c], float(mean_p[c])
            else:
                row["looks_like"], row["looks_like_prob"] = None, np.nan
        rows.append(row)
    columns = ["motif", "frames", "fraction", "n_bouts", "mean_bout_s", "median_bout_s"]
    columns += [f"mean_{name}" for name in descriptors]
    if probs is not None:
        columns += ["looks_like", "looks_like_prob"]
    return pd.DataFrame(rows, columns=columns)
