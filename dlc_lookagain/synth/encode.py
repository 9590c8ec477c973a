"""Writing frames to an .mp4, streaming (one frame in memory at a time).

Backends, in the order ``"auto"`` tries them:

``opencv-h264``
    OpenCV's own writer with fourcc ``avc1``/``H264``. pip wheels of OpenCV usually
    lack an H.264 encoder, so this often fails (and then only the fallback is used).
``ffmpeg-h264``
    libx264 through the ffmpeg binary that the ``imageio-ffmpeg`` wheel ships, fed
    raw frames over a pipe. The only backend that honors the per-video CRF.
``opencv-mp4v``
    MPEG-4 part 2 (``mp4v``), always available, larger files, less like lab videos.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import subprocess
import tempfile
from pathlib import Path

import cv2
import numpy as np

logger = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ("opencv-h264", "ffmpeg-h264", "opencv-mp4v")
#: x264 speed preset: the encoder, not the drawing, is the bottleneck of generation.
X264_PRESET = "veryfast"


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C-level stderr: OpenCV's ffmpeg prints errors for every codec it fails to open."""
    try:
        fd = os.dup(2)
    except OSError:  # no stderr at all
        yield
        return
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(fd, 2)
        os.close(fd)


def _ffmpeg_exe() -> str | None:
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:
        return None


def _probe_opencv(fourcc: str) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "probe.mp4")
        with _quiet_stderr():
            writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), 30.0, (64, 48))
            ok = writer.isOpened()
            if ok:
                for value in (0, 128):
                    writer.write(np.full((48, 64, 3), value, np.uint8))
            writer.release()
            if not ok or not os.path.getsize(path):
                return False
            cap = cv2.VideoCapture(path)
            frames = 0
            while cap.read()[0]:
                frames += 1
            cap.release()
        return frames == 2


def _probe_ffmpeg() -> bool:
    exe = _ffmpeg_exe()
    if exe is None:
        return False
    try:
        out = subprocess.run(
            [exe, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return "libx264" in out.stdout


@functools.cache
def backend_available(backend: str) -> bool:
    """Whether a backend works on this machine (probed once per process)."""
    if backend == "opencv-h264":
        return any(_probe_opencv(code) for code in ("avc1", "H264"))
    if backend == "ffmpeg-h264":
        return _probe_ffmpeg()
    if backend == "opencv-mp4v":
        return _probe_opencv("mp4v")
    raise ValueError(f"unknown video backend {backend!r}; choose from {BACKENDS}")


def choose_backend(preference: str = "auto") -> str:
    """The backend to use: ``preference`` itself, or the first available for ``"auto"``.

    Raises
    ------
    RuntimeError
        If the requested backend (or, for ``"auto"``, every backend) is unavailable.
    """
    candidates = BACKENDS if preference == "auto" else (preference,)
    for backend in candidates:
        if backend_available(backend):
            if backend == "opencv-mp4v" and preference == "auto":
                logger.warning(
                    "no H.264 encoder found (OpenCV lacks one and imageio-ffmpeg is missing); "
                    "writing MPEG-4 part 2 (mp4v) videos instead"
                )
            return backend
    raise RuntimeError(f"video backend {preference!r} is not available on this machine")


class VideoEncoder:
    """Streams BGR frames into an .mp4 file.

    The file appears under its final name only after :meth:`close` succeeded, so an
    interrupted run leaves no truncated video that looks complete.

    Parameters
    ----------
    path : str or Path
        Output ``.mp4``.
    width, height : int
        Frame size.
    fps : float
        Frame rate written into the container.
    crf : int
        H.264 constant-rate factor (``ffmpeg-h264`` only).
    backend : str
        One of :data:`BACKENDS` or ``"auto"``.
    """

    def __init__(
        self, path: str | Path, width: int, height: int, fps: float, crf: int = 23, backend: str = "auto"
    ):
        self.path = Path(path)
        self.width, self.height, self.fps = int(width), int(height), float(fps)
        self.backend = choose_backend(backend)
        self.frames_written = 0
        self._tmp = self.path.with_name(self.path.stem + ".partial.mp4")
        self._proc: subprocess.Popen | None = None
        self._writer: cv2.VideoWriter | None = None
        if self.backend == "ffmpeg-h264":
            # Kept open for the encoder's lifetime (closed in close/abort): ffmpeg's stderr goes
            # to a file, not a pipe, so that a chatty ffmpeg can never block on a full pipe.
            self._log = tempfile.TemporaryFile()  # noqa: SIM115
            w, h = self.width, self.height
            cmd = [_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y"]
            cmd += ["-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{w}x{h}", "-framerate", f"{self.fps:g}"]
            cmd += ["-i", "pipe:0", "-an", "-c:v", "libx264", "-preset", X264_PRESET, "-crf", str(int(crf))]
            cmd += ["-pix_fmt", "yuv420p", "-movflags", "+faststart"]
            # No encoder version or creation time in the file: same input, same bytes.
            cmd += ["-fflags", "+bitexact", "-flags:v", "+bitexact", "-map_metadata", "-1", str(self._tmp)]
            self._proc = subprocess.Popen(
                cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log
            )
        else:
            codes = ("avc1", "H264") if self.backend == "opencv-h264" else ("mp4v",)
            for code in codes:
                with _quiet_stderr():
                    writer = cv2.VideoWriter(
                        str(self._tmp), cv2.VideoWriter_fourcc(*code), self.fps, (self.width, self.height)
                    )
                if writer.isOpened():
                    self._writer = writer
                    break
            if self._writer is None:
                raise RuntimeError(f"{self.path}: OpenCV could not open a {self.backend} writer")

    def write(self, frame: np.ndarray) -> None:
        """Append one uint8 ``(height, width, 3)`` BGR frame."""
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(
                f"{self.path}: frame must be uint8 {(self.height, self.width, 3)}, "
                f"got {frame.dtype} {frame.shape}"
            )
        if self._proc is not None:
            try:
                self._proc.stdin.write(np.ascontiguousarray(frame).tobytes())
            except BrokenPipeError:
                raise RuntimeError(f"{self.path}: ffmpeg stopped: {self._ffmpeg_error()}") from None
        else:
            self._writer.write(frame)
        self.frames_written += 1

    def _ffmpeg_error(self) -> str:
        self._log.seek(0)
        return self._log.read().decode(errors="replace").strip()[-2000:]

    def close(self) -> None:
        """Finish the file and move it to its final name."""
        if self._proc is not None:
            self._proc.stdin.close()
            code = self._proc.wait()
            message = self._ffmpeg_error()
            self._log.close()
            self._proc = None
            if code != 0:
                raise RuntimeError(f"{self.path}: ffmpeg exited with {code}: {message}")
        elif self._writer is not None:
            self._writer.release()
            self._writer = None
        else:
            return
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        """Stop writing and delete the partial file."""
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait()
            self._log.close()
            self._proc = None
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoEncoder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
