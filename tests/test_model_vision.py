"""Tests of the frozen vision encoder, crops, per-frame extraction and the feature cache."""

from __future__ import annotations

import importlib.util
import math

import cv2
import numpy as np
import pytest
import torch

from dlc_lookagain.io.video import VideoReader, VideoWarning
from dlc_lookagain.model.crops import PAD_GRAY, animal_crops, context_view
from dlc_lookagain.model.feature_cache import FeatureCache
from dlc_lookagain.model.vision import VisionEncoder, known_vision_encoders, load_vision_encoder
from dlc_lookagain.model.visual_features import FrameFeatureExtractor, VisualFeatures

skimage_data = pytest.importorskip("skimage.data")

N_FRAMES, WIDTH, HEIGHT = 40, 160, 120
SQUARE = 20  # side of the moving square, pixels


@pytest.fixture(scope="module")
def encoder() -> VisionEncoder:
    return load_vision_encoder()


def _center_square(img: np.ndarray, size: int, shift: int = 0) -> np.ndarray:
    h, w = img.shape[:2]
    s = min(h, w)
    y0, x0 = (h - s) // 2, (w - s) // 2 + shift
    return cv2.resize(img[y0 : y0 + s, x0 : x0 + s], (size, size), interpolation=cv2.INTER_AREA)


# --------------------------------------------------------------------------------------------
# Encoder: the weights are the real ImageNet ones
# --------------------------------------------------------------------------------------------
def test_imagenet_classifier_from_the_same_weights_recognises_real_photos(encoder):
    net = encoder.module.net  # the full EfficientNet-Lite0 behind the features, with its _fc head
    imgs = np.stack([_center_square(skimage_data.coffee(), 224), _center_square(skimage_data.chelsea(), 224)])
    x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float()
    x = (x - torch.tensor(encoder.mean).view(1, 3, 1, 1)) / torch.tensor(encoder.std).view(1, 3, 1, 1)
    with torch.inference_mode():
        top5 = net(x).topk(5).indices.tolist()
    assert {967, 968} & set(top5[0]), f"coffee top-5 {top5[0]} has neither espresso nor cup"
    assert set(range(281, 286)) & set(top5[1]), f"chelsea top-5 {top5[1]} has no cat class"


def test_encode_features_are_finite_deterministic_and_discriminative(encoder):
    size = encoder.input_size
    coffee = _center_square(skimage_data.coffee(), size)
    shifted = _center_square(skimage_data.coffee(), size, shift=12)
    cat = _center_square(skimage_data.chelsea(), size)
    images = np.stack([coffee, shifted, cat])
    a = encoder.encode(images)
    b = encoder.encode(images)
    assert a.shape == (3, 1280) and a.dtype == np.float32 and encoder.feature_dim == 1280
    assert np.isfinite(a).all()
    np.testing.assert_array_equal(a, b)

    def cos_dist(u, v):
        return 1 - float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))

    assert cos_dist(a[0], a[2]) > cos_dist(a[0], a[1]) + 0.05
    # Other sizes are resized; an empty batch is fine.
    assert encoder.encode(np.stack([coffee[:100, :90]] * 2)).shape == (2, 1280)
    assert encoder.encode(np.zeros((0, size, size, 3), np.uint8)).shape == (0, 1280)
    with pytest.raises(TypeError):
        encoder.encode(images.astype(np.float32))


def test_default_encoder_is_loaded_once(encoder):
    assert load_vision_encoder() is encoder
    assert load_vision_encoder("efficientnet-lite0") is encoder


# --------------------------------------------------------------------------------------------
# Crops
# --------------------------------------------------------------------------------------------
def _marker_frame(center, heading, length=40.0) -> np.ndarray:
    """Dark frame with a white bar along ``heading`` and a red dot at its head end."""
    frame = np.full((160, 200, 3), 30, np.uint8)
    c = np.asarray(center, float)
    d = np.array([math.cos(heading), math.sin(heading)])
    tail, head = c - d * length / 2, c + d * length / 2
    cv2.line(frame, tuple(np.round(tail).astype(int)), tuple(np.round(head).astype(int)), (255, 255, 255), 6)
    cv2.circle(frame, tuple(np.round(c + d * 16).astype(int)), 5, (255, 0, 0), -1)  # RGB red
    return frame


@pytest.mark.parametrize("heading", [0.0, math.pi / 2, math.pi, -math.pi / 2, 1.0])
def test_crop_turns_the_heading_up(heading):
    center = (95.0, 70.0)
    frame = _marker_frame(center, heading)
    size = 64
    crops, valid = animal_crops(
        frame, np.array([center, [np.nan, np.nan]]), np.array([heading, 0.0]), np.array([40.0, 40.0]), size=size
    )
    assert crops.shape == (2, size, size, 3) and crops.dtype == np.uint8
    assert valid.tolist() == [True, False]
    assert not crops[1].any()
    red = (crops[0, :, :, 0] > 180) & (crops[0, :, :, 1] < 90) & (crops[0, :, :, 2] < 90)
    ys, xs = np.nonzero(red)
    assert len(ys) > 10
    mid = (size - 1) / 2
    # Red dot 16 px ahead of the centre, side 2 x 40 = 80 px -> 64 px: 12.8 px above the centre.
    assert ys.mean() < size / 2
    assert abs(ys.mean() - (mid - 12.8)) < 2.5
    assert abs(xs.mean() - mid) < 2.5


def test_crop_validity_scale_and_border():
    frame = np.full((100, 100, 3), 200, np.uint8)
    centers = np.array([[50, 50], [0, 0], [500, 500], [50, 50], [50, 50]], float)
    headings = np.array([np.nan, np.nan, 0.0, 0.0, 0.0])
    sizes = np.array([20.0, 20.0, 20.0, 0.0, np.nan])
    crops, valid = animal_crops(frame, centers, headings, sizes, size=32)
    assert valid.tolist() == [True, True, False, False, False]
    assert (crops[0] == 200).all()  # inside the frame
    assert (crops[1, 0, 0] == PAD_GRAY).all() and (crops[1, -1, -1] == 200).all()  # corner: outside is gray
    assert not crops[2:].any()
    # A large animal (strong shrink) is sampled from the pyramid and stays centred.
    big = _marker_frame((100.0, 80.0), -math.pi / 2, length=40.0)
    big = cv2.resize(big, None, fx=4, fy=4, interpolation=cv2.INTER_NEAREST)  # 800 x 640, bar 160 px
    crop, ok = animal_crops(big, np.array([[401.5, 321.5]]), np.array([-math.pi / 2]), np.array([160.0]), size=32)
    assert ok.all()
    red = (crop[0, :, :, 0] > 150) & (crop[0, :, :, 1] < 110)
    ys, xs = np.nonzero(red)
    assert len(ys) and ys.mean() < 16 and abs(xs.mean() - 15.5) < 2


def test_context_view_letterboxes():
    frame = np.zeros((50, 200, 3), np.uint8)
    frame[:, :100] = 255
    view = context_view(frame, size=64)
    assert view.shape == (64, 64, 3) and view.dtype == np.uint8
    assert (view[:20] == PAD_GRAY).all() and (view[-20:] == PAD_GRAY).all()  # 16 rows of image, centred
    assert (view[32, :30] == 255).all() and (view[32, 34:] == 0).all()


# --------------------------------------------------------------------------------------------
# Extraction from a real video, and the cache
# --------------------------------------------------------------------------------------------
def _square_center(t: int) -> tuple[float, float]:
    return 20.0 + 2.5 * t, 40.0 + 1.0 * t


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> dict:
    path = tmp_path_factory.mktemp("video") / "moving.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (WIDTH, HEIGHT))
    assert writer.isOpened()
    for t in range(N_FRAMES):
        img = np.full((HEIGHT, WIDTH, 3), 60, np.uint8)
        cx, cy = _square_center(t)
        x0, y0 = int(round(cx - SQUARE / 2)), int(round(cy - SQUARE / 2))
        img[y0 : y0 + SQUARE, x0 : x0 + SQUARE] = (0, 200, 255)  # BGR orange
        img[y0 : y0 + 5, x0 : x0 + SQUARE] = (255, 255, 255)
        writer.write(img)
    writer.release()
    centers = np.full((N_FRAMES, 2, 2), np.nan)  # animal 1 is never tracked
    centers[:, 0] = [_square_center(t) for t in range(N_FRAMES)]
    headings = np.full((N_FRAMES, 2), -math.pi / 2)
    body_sizes = np.array([SQUARE, SQUARE], float)
    return {"path": path, "centers": centers, "headings": headings, "body_sizes": body_sizes}


def _counting(monkeypatch, enc: VisionEncoder) -> list[int]:
    calls: list[int] = []
    original = enc.encode

    def encode(images, **kwargs):
        calls.append(len(images))
        return original(images, **kwargs)

    monkeypatch.setattr(enc, "encode", encode)
    return calls


def test_extractor_on_a_real_video(encoder, video):
    ex = FrameFeatureExtractor(encoder, batch_size=3)
    feats = ex.extract(
        video["path"], [39, 5, 0, 17, 5], video["centers"], video["headings"], video["body_sizes"], progress=False
    )
    assert feats.frames.tolist() == [0, 5, 17, 39] and feats.frames.dtype == np.int64
    assert feats.animal.shape == (4, 2, 1280) and feats.animal.dtype == np.float16
    assert feats.context.shape == (4, 1280) and feats.context.dtype == np.float16
    assert feats.valid.dtype == bool and feats.valid[:, 0].all() and not feats.valid[:, 1].any()
    assert not feats.animal[:, 1].any() and feats.seen.all() and feats.encoder == "efficientnet-lite0"

    with VideoReader(video["path"]) as reader:
        (_, rgb), = list(reader.read_frames([5]))
    crops, valid, ctx = ex.images(rgb, video["centers"][5], video["headings"][5], video["body_sizes"])
    direct = encoder.encode(np.stack([crops[0], ctx]))
    np.testing.assert_allclose(feats.animal[1, 0].astype(np.float32), direct[0], rtol=1e-2, atol=1e-2)
    np.testing.assert_allclose(feats.context[1].astype(np.float32), direct[1], rtol=1e-2, atol=1e-2)
    assert not np.allclose(feats.animal[0, 0], feats.animal[3, 0], atol=1e-2)  # the square moved

    dense = feats.dense(N_FRAMES)
    assert dense.animal.shape == (N_FRAMES, 2, 1280) and dense.animal.dtype == np.float32
    assert np.flatnonzero(dense.looked).tolist() == [0, 5, 17, 39]
    assert not dense.animal[1].any() and dense.valid[17, 0] and dense.context.shape == (N_FRAMES, 1280)


def test_feature_cache_computes_each_frame_once(encoder, video, tmp_path, monkeypatch):
    calls = _counting(monkeypatch, encoder)
    ex = FrameFeatureExtractor(encoder, batch_size=4)
    cache = FeatureCache(tmp_path / "cache")
    geometry = (video["centers"], video["headings"], video["body_sizes"])
    first = cache.get_or_compute(ex, video["path"], [0, 5, 17, 39], *geometry, progress=False)
    assert sum(calls) == 8  # 4 frames x (1 valid animal + context)
    calls.clear()
    again = cache.get_or_compute(ex, video["path"], [0, 5, 17, 39], *geometry, progress=False)
    assert calls == []
    np.testing.assert_array_equal(again.animal, first.animal)
    np.testing.assert_array_equal(again.context, first.context)
    more = cache.get_or_compute(ex, video["path"], [5, 10, 39, 20], *geometry, progress=False)
    assert sum(calls) == 4  # only frames 10 and 20
    assert more.frames.tolist() == [5, 10, 20, 39]
    np.testing.assert_array_equal(more.animal[[0, 3]], first.animal[[1, 3]])
    (entry,) = [p for p in (tmp_path / "cache").iterdir()]
    assert (entry / "key.json").is_file()
    assert len(list(entry.glob("block-*"))) == 1 and not list(entry.glob(".tmp-*"))
    # Different keypoints give different crops: a new entry.
    calls.clear()
    moved = (video["centers"] + 1.0, video["headings"], video["body_sizes"])
    cache.get_or_compute(ex, video["path"], [0], *moved, progress=False)
    assert sum(calls) == 2 and len(list((tmp_path / "cache").iterdir())) == 2


def test_feature_cache_keeps_the_work_of_an_interrupted_run(encoder, video, tmp_path, monkeypatch):
    ex = FrameFeatureExtractor(encoder, batch_size=2)
    cache = FeatureCache(tmp_path, chunk_frames=2)
    geometry = (video["centers"], video["headings"], video["body_sizes"])
    original = encoder.encode
    calls: list[int] = []

    def failing(images, **kwargs):
        calls.append(len(images))
        if len(calls) == 3:  # while encoding the third frame
            raise KeyboardInterrupt
        return original(images, **kwargs)

    monkeypatch.setattr(encoder, "encode", failing)
    with pytest.raises(KeyboardInterrupt):
        cache.get_or_compute(ex, video["path"], [0, 5, 17, 39], *geometry, progress=False)
    monkeypatch.setattr(encoder, "encode", original)
    counted = _counting(monkeypatch, encoder)
    feats = cache.get_or_compute(ex, video["path"], [0, 5, 17, 39], *geometry, progress=False)
    assert sum(counted) == 4  # frames 17 and 39 only
    assert feats.frames.tolist() == [0, 5, 17, 39] and feats.valid[:, 0].all()


def test_frames_past_the_end_of_a_short_video_are_not_seen(encoder, video):
    ex = FrameFeatureExtractor(encoder, context=False)
    t = N_FRAMES + 5
    centers = np.concatenate([video["centers"], video["centers"][-5:]])
    headings = np.concatenate([video["headings"], video["headings"][-5:]])
    with pytest.warns(VideoWarning):
        feats = ex.extract(video["path"], [3, 42], centers, headings, video["body_sizes"], progress=False)
    assert feats.context is None
    assert feats.seen.tolist() == [True, False] and feats.valid.tolist() == [[True, False], [False, False]]
    assert np.flatnonzero(feats.dense(t).looked).tolist() == [3]
    with pytest.raises(ValueError, match="geometry covers only"):
        ex.extract(video["path"], [t], centers, headings, video["body_sizes"], progress=False)


def test_visual_features_select_and_concatenate():
    def part(frames):
        n = len(frames)
        return VisualFeatures(
            frames=np.array(frames),
            animal=np.arange(n * 2 * 3, dtype=np.float16).reshape(n, 2, 3) + frames[0],
            context=None,
            valid=np.ones((n, 2), bool),
            encoder="x",
        )

    merged = VisualFeatures.concatenate([part([7, 9]), part([1, 7])])
    assert merged.frames.tolist() == [1, 7, 9]
    assert merged.select([9, 1]).frames.tolist() == [1, 9]
    with pytest.raises(KeyError):
        merged.select([2])


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------
class _TinyBackbone(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, kernel_size=4, stride=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))  # (N, 8, h, w)


def test_unknown_spec_lists_the_known_names():
    with pytest.raises(ValueError) as err:
        load_vision_encoder("resnet-9000")
    for name in known_vision_encoders():
        assert name in str(err.value)
    assert {"efficientnet-lite0", "torchscript", "timm", "hf"} <= set(known_vision_encoders())


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_torchscript_encoder_end_to_end(tmp_path, video):
    torch.manual_seed(0)
    path = tmp_path / "backbone.pt"
    torch.jit.script(_TinyBackbone().eval()).save(str(path))
    enc = load_vision_encoder(f"torchscript:{path}", input_size=32)
    assert enc.feature_dim == 8 and enc.input_size == 32
    imgs = np.random.default_rng(0).integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    f = enc.encode(imgs)
    assert f.shape == (5, 8) and np.isfinite(f).all()
    np.testing.assert_array_equal(f, enc.encode(imgs))
    feats = FrameFeatureExtractor(enc).extract(
        video["path"], [1, 2], video["centers"], video["headings"], video["body_sizes"], progress=False
    )
    assert feats.animal.shape == (2, 2, 8) and feats.context.shape == (2, 8)
    with pytest.raises(FileNotFoundError, match="nothere.pt"):
        load_vision_encoder(f"torchscript:{tmp_path / 'nothere.pt'}")


@pytest.mark.skipif(importlib.util.find_spec("timm") is not None, reason="timm is installed")
def test_timm_spec_names_the_missing_package(tmp_path):
    ckpt = tmp_path / "ckpt.pth"
    ckpt.write_bytes(b"")
    with pytest.raises(ImportError, match="timm"):
        load_vision_encoder(f"timm:resnet18:{ckpt}")
    with pytest.raises(ValueError, match="timm:<model_name>"):
        load_vision_encoder("timm:resnet18")


def test_hf_spec_needs_a_local_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing_dir"):
        load_vision_encoder(f"hf:{tmp_path / 'missing_dir'}")
    if importlib.util.find_spec("transformers") is None:
        with pytest.raises(ImportError, match="transformers"):
            load_vision_encoder(f"hf:{tmp_path}")

