"""Decode speed: OpenCV grab/retrieve (what VideoReader uses) vs PyAV, sparse and dense.

Usage::

    python benchmarks/video_decode.py [VIDEO] [--repeats N]

Default video: ``../shared/data/deeplabcut/examples/openfield-Pranav-2018-10-30/videos/m3v1mp4.mp4``
(2330 frames, 640x480 H.264). Both backends deliver RGB uint8 frames. "frames/s" counts
*video* frames passed through per second (so a 25 % read of a 2330-frame video that takes
1 s scores 2330 frames/s), which makes sparse and dense rows comparable. PyAV is optional
(``pip install av``); without it only OpenCV is measured. A per-frame seek baseline
(``CAP_PROP_POS_FRAMES``) is timed on a small sample to show why VideoReader never seeks.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from dlc_lookagain.io.video import VideoReader

DEFAULT = (
    Path(__file__).resolve().parents[1].parent
    / "shared/data/deeplabcut/examples/openfield-Pranav-2018-10-30/videos/m3v1mp4.mp4"
)


def opencv_reader(path: Path, wanted: np.ndarray) -> int:
    with VideoReader(path) as reader:
        return sum(1 for _ in reader.read_frames(wanted, color="rgb"))


def pyav_reader(path: Path, wanted: np.ndarray) -> int:
    import av

    wanted_set = set(wanted.tolist())
    last = int(wanted.max())
    n = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame + slice threading, PyAV's fastest setting
        for i, frame in enumerate(container.decode(stream)):
            if i in wanted_set:
                frame.to_ndarray(format="rgb24")
                n += 1
            if i >= last:
                break
    return n


def opencv_seek(path: Path, wanted: np.ndarray) -> int:
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    n = 0
    for i in wanted.tolist():
        cap.set(cv2.CAP_PROP_POS_FRAMES, i)
        ok, frame = cap.read()
        n += ok
    cap.release()
    return n


def best_time(fn, path: Path, wanted: np.ndarray, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        got = fn(path, wanted)
        times.append(time.perf_counter() - t0)
        if got != len(wanted):
            raise RuntimeError(f"{fn.__name__} returned {got} frames, expected {len(wanted)}")
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("video", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    cap = cv2.VideoCapture(str(args.video))
    n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    w, h = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    cap.release()
    rng = np.random.default_rng(0)
    sets = {
        "25% random": np.sort(rng.choice(n, n // 4, replace=False)),
        "all frames": np.arange(n),
    }
    try:
        import av

        have_av = True
        av_version = av.__version__
    except ImportError:
        have_av, av_version = False, "not installed"

    print(f"{args.video.name}: {n} frames {w}x{h}; OpenCV {cv2.__version__}, PyAV {av_version}; "
          f"best of {args.repeats}; frames/s = video frames passed per second")
    print(f"{'read':<12} {'OpenCV fr/s':>12} {'PyAV fr/s':>12} {'OpenCV/PyAV':>12}")
    for name, wanted in sets.items():
        t_cv = best_time(opencv_reader, args.video, wanted, args.repeats)
        fps_cv = n / t_cv
        if have_av:
            t_av = best_time(pyav_reader, args.video, wanted, args.repeats)
            fps_av = n / t_av
            print(f"{name:<12} {fps_cv:>12.0f} {fps_av:>12.0f} {fps_cv / fps_av:>12.2f}")
        else:
            print(f"{name:<12} {fps_cv:>12.0f} {'-':>12} {'-':>12}")

    # Seeking per chosen frame, timed on a 40-frame sample (it is slow) and extrapolated to the 25 % set.
    sample = np.sort(rng.choice(n, 40, replace=False))
    seek_rate = len(sample) / best_time(opencv_seek, args.video, sample, 1)
    n_sparse = len(sets["25% random"])
    t_sparse = best_time(opencv_reader, args.video, sets["25% random"], 1)
    print(f"OpenCV seek per frame: {seek_rate:.1f} delivered fr/s, so the 25% set would take "
          f"{n_sparse / seek_rate:.1f} s vs {t_sparse:.1f} s in one pass "
          f"({n_sparse / seek_rate / t_sparse:.0f}x slower)")

if __name__ == "__main__":
    main()
