"""The LookAgain model: motion encoder + RVQ + gate + fusion + heads, and its saved form.

Reading order of one window (one animal, T frames):

    pose tokens --MotionEncoder--> z (T, d) --MotionQuantizer--> q, codes (T, L)
    z, codes, body features, keypoint-only probabilities --Gate--> scores (T,)   [choose frames]
    frozen vision features of the chosen frames --VisualFusion(z)--> f (T, d)
    f --BehaviorHead--> behavior logits (T, C)         f --MotifSegmenter--> motifs (T,)

Self-supervised pretraining adds three small decoders that exist only to train the encoder:
masked keypoint prediction (from z), motion reconstruction (from the quantized q alone) and the
cross-modal prediction of the frozen vision features of the animal crop (from z), plus a head that
predicts the cross-modal error, which the gate later uses as "ambiguity".
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dlc_lookagain.model.fusion import VisualFusion
from dlc_lookagain.model.gate import Gate
from dlc_lookagain.model.heads import BehaviorHead
from dlc_lookagain.model.motion_encoder import FourierFeatures, MotionEncoder
from dlc_lookagain.model.pose_tokens import ANIMAL_FEATURES, TOKEN_FEATURES
from dlc_lookagain.model.quantizer import MotionQuantizer

logger = logging.getLogger(__name__)

__all__ = ["ModelConfig", "LookAgainModel", "save_model", "load_model", "MODEL_FORMAT_VERSION",
           "is_builtin_vision_encoder", "vision_encoder_spec", "use_vision_encoder"]

MODEL_FORMAT_VERSION = 1


@dataclass
class ModelConfig:
    """Hyper-parameters of :class:`LookAgainModel` (saved with the weights)."""

    dim: int = 96
    depth: int = 3
    heads: int = 4
    dropout: float = 0.1
    window: int = 128
    rvq_levels: int = 4
    codebook_size: int = 128
    vision_encoder: str = "efficientnet-lite0"
    vision_input: int = 128
    # Crop side in body sizes (2 x RMS keypoint radius): the animal fills the crop, so paws and
    # head details get enough of the encoder's 128 pixels.
    crop_scale: float = 1.2
    crop_dim: int = 1280
    context_dim: int = 1280
    gate_window_s: float = 2.0
    visual_pca: int = 32
    behaviors: list[str] = field(default_factory=list)

    @property
    def visual_dim(self) -> int:
        return self.crop_dim + self.context_dim


class KeypointDecoder(nn.Module):
    """Predict the egocentric position of every keypoint from a frame vector and its identity."""

    def __init__(self, dim: int):
        super().__init__()
        self.identity = FourierFeatures(2)
        self.net = nn.Sequential(nn.Linear(dim + self.identity.out_dim, dim), nn.GELU(), nn.Linear(dim, dim),
                                 nn.GELU(), nn.Linear(dim, 2))

    def forward(self, h: Tensor, identity: Tensor) -> Tensor:
        # h (N, T, d), identity (N, B, 2) -> (N, T, B, 2)
        n, t, d = h.shape
        b = identity.shape[1]
        ident = self.identity(identity)[:, None].expand(n, t, b, -1)
        return self.net(torch.cat([h[:, :, None].expand(n, t, b, d), ident], -1))


class LookAgainModel(nn.Module):
    """All trainable parts of LookAgain (the vision encoder is frozen and lives outside)."""

    def __init__(self, config: ModelConfig | None = None):
        super().__init__()
        self.config = cfg = config or ModelConfig()
        self.encoder = MotionEncoder(len(TOKEN_FEATURES), len(ANIMAL_FEATURES), cfg.dim, cfg.depth, cfg.heads,
                                     cfg.dropout)
        self.quantizer = MotionQuantizer(cfg.dim, cfg.rvq_levels, cfg.codebook_size)
        self.fusion = VisualFusion(cfg.dim, cfg.visual_pca, cfg.heads, cfg.dropout)
        self.gate = Gate()
        self.head: BehaviorHead | None = BehaviorHead(cfg.dim, len(cfg.behaviors)) if cfg.behaviors else None
        # Auxiliary vision-only probe (training only): behaviors from a looked-at frame's visual
        # features alone, so the visual pathway of the fusion carries behavior evidence instead of
        # being ignored in favour of memorized keypoint patterns.
        self.visual_head: nn.Linear | None = nn.Linear(cfg.dim, len(cfg.behaviors)) if cfg.behaviors else None
        # Pretraining decoders.
        self.masked_decoder = KeypointDecoder(cfg.dim)
        self.reconstruction_decoder = KeypointDecoder(cfg.dim)
        self.body_decoder = nn.Linear(cfg.dim, len(ANIMAL_FEATURES))
        self.crossmodal = nn.Sequential(nn.Linear(cfg.dim, 2 * cfg.dim), nn.GELU(), nn.Linear(2 * cfg.dim, cfg.crop_dim))
        self.crossmodal_error = nn.Linear(cfg.dim, 1)
        # Thresholds per behavior for budgets 0, 0.1, 0.25, 0.5, 1 (calibrated after training).
        self.register_buffer("threshold_budgets", torch.tensor([0.0, 0.1, 0.25, 0.5, 1.0]))
        self.register_buffer("thresholds", torch.full((5, max(1, len(cfg.behaviors))), 0.5))
        self.register_buffer("temperature", torch.ones(max(1, len(cfg.behaviors))))
        # Frozen vision features are standardized, then projected on their first principal
        # components (whitened) fitted on training frames: 2,560 generic ImageNet dimensions let the
        # head memorize training frames; 64 components keep what varies between frames.
        self.register_buffer("visual_mean", torch.zeros(cfg.visual_dim))
        self.register_buffer("visual_std", torch.ones(cfg.visual_dim))
        self.register_buffer("visual_components", torch.eye(cfg.visual_dim, cfg.visual_pca))
        self.register_buffer("visual_fitted", torch.zeros((), dtype=torch.bool))
        # Decision layer over fused features (boosted trees, model/decision.py), set by
        # dlc_lookagain.train; when present it, not `head`, decides the behaviors.
        self.decision = None

    # -- behavior classes ------------------------------------------------------------------
    def set_behaviors(self, behaviors: list[str]) -> None:
        """(Re)create the behavior head for a new list of classes (keeps everything else)."""
        self.config.behaviors = list(behaviors)
        self.head = BehaviorHead(self.config.dim, len(behaviors))
        self.visual_head = nn.Linear(self.config.dim, len(behaviors))
        self.thresholds = torch.full((5, len(behaviors)), 0.5)
        self.temperature = torch.ones(len(behaviors))

    def thresholds_at(self, budget: float) -> Tensor:
        """Decision thresholds (C,) interpolated at a look budget."""
        b = self.threshold_budgets
        x = float(min(max(budget, 0.0), 1.0))
        j = int(torch.searchsorted(b, torch.tensor(x)).clamp(1, len(b) - 1))
        w = (x - float(b[j - 1])) / float(b[j] - b[j - 1])
        return (1 - w) * self.thresholds[j - 1] + w * self.thresholds[j]

    # -- forward pieces --------------------------------------------------------------------
    def motion(self, batch: dict[str, Tensor]) -> Tensor:
        """z (N, T, d) from a batch of token windows (see :func:`dlc_lookagain.model.windows.collate`)."""
        return self.encoder(batch["tokens"], batch["identity"], batch["present"], batch["animal"], batch["visible"])

    def normalize_visual(self, visual: Tensor) -> Tensor:
        """Standardized vision features (..., Dv)."""
        return (visual - self.visual_mean) / self.visual_std

    def project_visual(self, visual: Tensor) -> Tensor:
        """Whitened principal components of the vision features (..., P)."""
        return self.normalize_visual(visual) @ self.visual_components

    def classify(self, z: Tensor, visual: Tensor, looked: Tensor, fps: float | Tensor) -> Tensor:
        """Behavior logits (N, T, C) from motion features and the looked-at visual features."""
        if self.head is None:
            raise RuntimeError("this model has no behavior classes; train it on labels first")
        f = self.fusion(z, self.project_visual(visual), looked, fps)
        return self.head(f)

    def visual_logits(self, visual: Tensor) -> Tensor:
        """Behavior logits (N, T, C) of the auxiliary probe from each frame's vision features alone."""
        if self.visual_head is None:
            raise RuntimeError("this model has no behavior classes; train it on labels first")
        return self.visual_head(self.fusion.visual(self.project_visual(visual)))

    def fused(self, z: Tensor, visual: Tensor, looked: Tensor, fps: float | Tensor) -> Tensor:
        return self.fusion(z, self.project_visual(visual), looked, fps)

    def predict_crossmodal(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """Predicted crop features (N, T, crop_dim) and predicted log cross-modal error (N, T)."""
        return self.crossmodal(z), self.crossmodal_error(z)[..., 0]

    # -- self-supervised pretraining -------------------------------------------------------
    def pretrain_losses(self, batch: dict[str, Tensor], mask_rate: float = 0.2,
                        generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """The four pretraining losses on a batch of windows (no behavior labels needed).

        * ``masked``: 1 - mask_rate of present keypoints are kept, plus whole frames are hidden;
          the egocentric position of every hidden keypoint is predicted from z.
        * ``crossmodal``: cosine distance between the predicted and the frozen vision features of
          the animal crop, where they were computed (``batch["visual_available"]``).
        * ``reconstruction``: every present keypoint and the body features rebuilt from q alone.
        * ``commitment``: RVQ commitment.
        """
        present = batch["present"]  # (N, T, B)
        n, t, b = present.shape
        dev = present.device
        drop_token = torch.rand(n, t, b, generator=generator, device=dev) < mask_rate
        drop_frame = torch.rand(n, t, 1, generator=generator, device=dev) < mask_rate / 2
        hidden = present & (drop_token | drop_frame)
        kept = present & ~hidden
        masked_batch = dict(batch)
        masked_batch["tokens"] = batch["tokens"] * kept[..., None]
        masked_batch["present"] = kept
        masked_batch["visible"] = batch["visible"] & kept.any(-1)
        z = self.motion(masked_batch)  # (N, T, d)
        target = batch["tokens"][..., :2]  # egocentric x, y
        pred = self.masked_decoder(z, batch["identity"])
        masked = _masked_mean(((pred - target) ** 2).sum(-1), hidden)

        q, _, commit = self.quantizer(z, mask=batch["visible"])
        recon_kp = self.reconstruction_decoder(q, batch["identity"])
        recon = _masked_mean(((recon_kp - target) ** 2).sum(-1), present)
        recon = recon + _masked_mean(((self.body_decoder(q) - batch["animal"]) ** 2).mean(-1), batch["visible"])

        losses = {"masked": masked, "reconstruction": recon, "commitment": commit}
        avail = batch.get("visual_available")
        if avail is not None and bool(avail.any()):
            crop = self.normalize_visual(batch["visual"])[..., : self.config.crop_dim]
            pred_v, pred_err = self.predict_crossmodal(z)
            err = 1 - F.cosine_similarity(pred_v, crop, dim=-1)  # (N, T)
            sel = avail & batch["visible"]
            losses["crossmodal"] = _masked_mean(err, sel)
            losses["crossmodal_error"] = _masked_mean((pred_err - torch.log(err.detach() + 1e-3)) ** 2, sel)
        return losses


def _masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    m = mask.float()
    return (x * m).sum() / m.sum().clamp(min=1.0)


# ----------------------------------------------------------------------------------------------
# Saving and loading
# ----------------------------------------------------------------------------------------------


def save_model(model: LookAgainModel, path: str | Path, *, extra: dict | None = None) -> Path:
    """Save weights, config and a manifest atomically.

    Writes ``path`` (a ``.pt`` file with ``config``, ``state_dict``, ``manifest``) and
    ``<path>.manifest.json`` beside it, so a person can see what a model is without torch.
    """
    from dlc_lookagain import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    digest = hashlib.sha256()
    for k in sorted(state):
        digest.update(k.encode())
        digest.update(state[k].numpy().tobytes())
    manifest = {
        "format_version": MODEL_FORMAT_VERSION,
        "package_version": __version__,
        "behaviors": list(model.config.behaviors),
        "weights_sha256": digest.hexdigest(),
        "vision_encoder": model.config.vision_encoder,
        "parameters": sum(p.numel() for p in model.parameters()),
        **(extra or {}),
    }
    # Plain JSON types only: numpy scalars or Paths in `extra` would make load_model's
    # torch.load(weights_only=True) refuse the file.
    manifest = json.loads(json.dumps(manifest, default=_json_default))
    blob = {"config": dataclasses.asdict(model.config), "state_dict": state, "manifest": manifest}
    if getattr(model, "decision", None) is not None:
        # Plain JSON types and LightGBM text: torch.load(weights_only=True) reads it, nothing unpickles.
        blob["decision"] = model.decision.to_dict()
    _atomic_torch_save(blob, path)
    man_path = path.with_name(path.name + ".manifest.json")
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as fh:
        json.dump(manifest, fh, indent=2)
    os.chmod(fh.name, 0o644)
    os.replace(fh.name, man_path)
    return path


def _json_default(obj):
    return obj.tolist() if hasattr(obj, "tolist") else str(obj)


def _atomic_torch_save(obj, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def is_builtin_vision_encoder(spec: str) -> bool:
    """True for a vision encoder spec a model file may name: a registered backbone, no file argument."""
    from dlc_lookagain.model.vision import known_vision_encoders

    return ":" not in spec and spec in known_vision_encoders() and spec not in ("torchscript", "timm", "hf")


def vision_encoder_spec(model: LookAgainModel) -> str:
    """The vision encoder spec to load for ``model``; raises if its file named one we refuse to load."""
    refused = getattr(model, "refused_vision_encoder", None)
    if refused is not None:
        from dlc_lookagain.errors import PoseFormatError

        path, spec = refused
        raise PoseFormatError(
            path, f"names the vision encoder {spec!r}; a model file may only name a built-in backbone "
            f"(a file could otherwise run code on your machine). If you trust it, name it yourself: "
            f"analyze(..., vision_encoder={spec!r}) or --vision-encoder '{spec}', or "
            f"load_model(path, vision_encoder=...); or analyze with top_k=0 (keypoints only).")
    return model.config.vision_encoder


def use_vision_encoder(model: LookAgainModel, spec: str) -> LookAgainModel:
    """Make ``model`` look with the vision encoder ``spec`` (the caller's choice, so trusted)."""
    model.config.vision_encoder = spec
    model.refused_vision_encoder = None
    return model


def load_model(path: str | Path, *, vision_encoder: str | None = None) -> tuple[LookAgainModel, dict]:
    """Load a model saved by :func:`save_model`; returns ``(model, manifest)`` (eval mode).

    Parameters
    ----------
    path : str or Path
        The model file. Nothing in it can name code to run: its tensors load with
        ``weights_only``, its decision layer is LightGBM text, and a vision encoder it names must be
        a built-in backbone (``efficientnet-lite0``). A file naming a file-based backbone
        (``"torchscript:/path"``, ``"timm:..."``, ``"hf:..."``) loads, but looking at video with it
        raises :class:`PoseFormatError` until you name the backbone yourself.
    vision_encoder : str, optional
        The vision encoder spec to use with this model (:func:`dlc_lookagain.model.vision.load_vision_encoder`),
        e.g. the TorchScript file the model was trained with. Your call, not the file, names it.
    """
    from dlc_lookagain.errors import PoseFormatError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling problem means a bad file
        raise PoseFormatError(path, f"not a dlc_lookagain model file ({exc})") from exc
    if not isinstance(blob, dict) or "state_dict" not in blob or "config" not in blob:
        raise PoseFormatError(path, "not a dlc_lookagain model file (no config/state_dict)")
    version = blob.get("manifest", {}).get("format_version")
    if version != MODEL_FORMAT_VERSION:
        raise PoseFormatError(path, f"model format {version}, this version of dlc_lookagain reads "
                                    f"{MODEL_FORMAT_VERSION}")
    config = dict(blob["config"])
    named = str(config.get("vision_encoder") or "")
    refused = None
    if vision_encoder is not None:
        config["vision_encoder"] = vision_encoder
    elif named and not is_builtin_vision_encoder(named):
        # A model file is data: it may not choose a file of code to load (issue 14).
        refused = named
        logger.warning("%s: names the vision encoder %r, which is not a built-in backbone; keypoint-only "
                       "analysis works, looking at video needs vision_encoder= (or --vision-encoder)", path, named)
    try:
        model = LookAgainModel(ModelConfig(**config))
    except TypeError as exc:
        raise PoseFormatError(path, f"not a dlc_lookagain model file (config: {exc})") from exc
    model.refused_vision_encoder = None if refused is None else (str(path), refused)
    state = blob["state_dict"]
    result = model.load_state_dict(state, strict=False)
    # Files written before the auxiliary vision probe existed lack only its (training-time) weights.
    missing = [k for k in result.missing_keys if not k.startswith("visual_head.")]
    if missing or result.unexpected_keys:
        raise PoseFormatError(path, f"weights do not match the model (missing {missing[:3]}, unexpected "
                                    f"{result.unexpected_keys[:3]})")
    if blob.get("decision") is not None:
        from dlc_lookagain.model.decision import DecisionLayer

        try:
            model.decision = DecisionLayer.from_dict(blob["decision"])
        except (KeyError, TypeError, ValueError) as exc:
            raise PoseFormatError(path, f"its decision layer is damaged ({exc})") from exc
        if model.decision.behaviors != list(model.config.behaviors):
            raise PoseFormatError(path, "its decision layer and its config name different behaviors")
    model.eval()
    # "bundled" makes analyze check each recording against the training data (model/domain.py).
    model.kind = str(blob["manifest"].get("kind", ""))
    return model, blob["manifest"]
