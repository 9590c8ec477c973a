"""A copy of the recording with keypoints and behavior labels drawn on it, for checking by eye.

:func:`write_labeled_video` decodes the recording's video in one forward pass,
draws on every frame

* each animal's keypoints (and skeleton edges, if the pose file has any) in the
  animal's colour,
* the behaviors present for each animal beside its body, each behavior in its
  colour (the same colours as :mod:`dlc_lookagain.plots`),
* a legend in the top-left corner: frame number and time, and per animal its
  behaviors and a yellow square when the vision encoder looked at that frame for it,
* a yellow dot with ``looked`` in the top-right corner when the vision encoder looked
  at the frame (for any animal),

and encodes the result as H.264 ``.mp4`` (libx264 from ``imageio-ffmpeg``, see
:class:`dlc_lookagain.synth.encode.VideoEncoder`). The video is written under a
temporary name and renamed when complete; the recording itself is only read.

Text is drawn with OpenCV's built-in font, which only has ASCII: other characters
in behavior or animal names show as ``?``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from dlc_lookagain.errors import PoseFormatError, option_text
from dlc_lookagain.io.annotations import BehaviorPrediction, prediction_from_table, read_behaviors, read_bouts
from dlc_lookagain.io.paths import atomic_path
from dlc_lookagain.io.record import PoseRecord
from dlc_lookagain.io.video import VideoReader

logger = logging.getLogger(__name__)

__all__ = ["INDIVIDUAL_COLORS_BGR", "LOOKED_COLOR_BGR", "write_labeled_video"]

#: Keypoint colours of the individuals, in record order (cycled), BGR.
INDIVIDUAL_COLORS_BGR: tuple[tuple[int, int, int], ...] = (
    (255, 255, 0),  # cyan
    (255, 0, 255),  # magenta
    (0, 255, 0),  # green
    (0, 140, 255),  # orange
    (255, 128, 0),  # azure
    (128, 0, 255),  # pink-red
    (0, 255, 191),  # lime
    (255, 0, 128),  # violet
)
#: Colour of the "looked" markers, BGR (yellow).
LOOKED_COLOR_BGR: tuple[int, int, int] = (0, 230, 255)
_OUTLINE = (0, 0, 0)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_OUTLINE_SHIFTS = ((-1, -1), (0, -1), (1, -1), (-1, 0), (1, 0), (-1, 1), (0, 1), (1, 1))
_CRF = 20
_DEFAULT_FPS = 30.0


def _bgr(hex_color: str) -> tuple[int, int, int]:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[k : k + 2], 16) for k in (0, 2, 4))
    return b, g, r


def _ascii(text: str) -> str:
    return str(text).encode("ascii", "replace").decode("ascii")


def _prediction(record: PoseRecord, behaviors, bouts) -> BehaviorPrediction:
    """The prediction to draw, checked against ``record``."""
    if isinstance(behaviors, BehaviorPrediction):
        if bouts is not None:
            raise ValueError("bouts= is only used with a behaviors table; a BehaviorPrediction has its flags")
        pred = behaviors
    else:
        if isinstance(behaviors, pd.DataFrame):
            table = behaviors
        elif isinstance(behaviors, (str, os.PathLike)):
            table = read_behaviors(behaviors)
        else:
            raise TypeError(
                "behaviors must be a BehaviorPrediction, a behaviors DataFrame or the path of a "
                f"_behaviors.csv/.h5, got {type(behaviors).__name__}"
            )
        if bouts is None and table.attrs.get("path"):
            # The bouts beside the table are the decisions that were written: use them.
            src = Path(table.attrs["path"])
            for suffix in ("_behaviors.csv", "_behaviors.h5"):
                if src.name.endswith(suffix):
                    beside = src.with_name(src.name[: -len(suffix)] + "_bouts.csv")
                    if beside.is_file():
                        logger.info("%s: drawing the bouts of %s", src.name, beside.name)
                        bouts = beside
        if bouts is not None and not isinstance(bouts, pd.DataFrame):
            bouts = read_bouts(bouts)
        pred = prediction_from_table(table, record.individuals, bouts=bouts)
    pred.validate_against(record)
    return pred


def _frame_range(record: PoseRecord, start, stop) -> tuple[int, int]:
    n = record.n_frames
    if record.n_video_frames is not None:
        n = min(n, int(record.n_video_frames))
    for name, value in (("start", start), ("stop", stop)):
        if value is not None and (isinstance(value, bool) or int(value) != value):
            raise ValueError(f"{name} must be a whole frame index, got {value!r}")
    start = int(start)
    stop = n if stop is None else int(stop)
    if not 0 <= start < stop <= n:
        raise ValueError(
            f"frames start={start}, stop={stop} (stop exclusive) must satisfy 0 <= start < stop <= {n} "
            f"(frames with both pose and video in {record.source.name})"
        )
    return start, stop


class _Painter:
    """Draws one frame's overlay; sizes follow the frame size."""

    def __init__(self, record: PoseRecord, pred: BehaviorPrediction, width: int, height: int, fps):
        from dlc_lookagain.plots import behavior_colors

        self.record, self.pred, self.fps = record, pred, fps
        self.keypoints = record.keypoints_in_video_pixels()
        self.looked = pred.looked_per_individual
        self.width, self.height = width, height
        s = max(width, height) / 640.0
        self.radius = max(2, round(3 * s))
        self.font = max(0.35, 0.45 * s)
        self.thick = max(1, round(s))
        self.line = self.thick
        self.pad = max(3, round(4 * s))
        self.text_h = cv2.getTextSize("Ag", _FONT, self.font, self.thick)[0][1]
        self.row_h = self.text_h + self.pad * 2
        self.beh_colors = [_bgr(c) for c in behavior_colors(pred.behaviors).values()]
        self.beh_names = [_ascii(b) for b in pred.behaviors]
        self.ind_names = [_ascii(i) for i in record.individuals]
        n_col = len(INDIVIDUAL_COLORS_BGR)
        self.ind_colors = [INDIVIDUAL_COLORS_BGR[i % n_col] for i in range(pred.n_individuals)]
        index = {b: k for k, b in enumerate(record.bodyparts)}
        self.edges = [(index[a], index[b]) for a, b in record.skeleton if a in index and b in index]

    def _text(self, img, text, org, color) -> int:
        """Outlined text at ``org`` (baseline left); returns its width."""
        # The outline is the same text shifted, not a thicker stroke: Hershey glyphs advance
        # further with thickness, so a thick outline drifts away from the text along the line.
        x, y = org
        for dx, dy in _OUTLINE_SHIFTS:
            cv2.putText(img, text, (x + dx, y + dy), _FONT, self.font, _OUTLINE, self.thick, cv2.LINE_AA)
        cv2.putText(img, text, org, _FONT, self.font, color, self.thick, cv2.LINE_AA)
        return cv2.getTextSize(text, _FONT, self.font, self.thick)[0][0]

    def _label_parts(self, t: int, i: int) -> list[tuple[str, tuple[int, int, int]]]:
        present = np.flatnonzero(self.pred.present[t, i])
        if present.size == 0:
            return [("none", (200, 200, 200))]
        parts = []
        for k, c in enumerate(present):
            parts.append((("+" if k else "") + self.beh_names[c], self.beh_colors[c]))
        return parts

    def _parts_width(self, parts) -> int:
        return sum(cv2.getTextSize(p, _FONT, self.font, self.thick)[0][0] for p, _ in parts)

    def _place(self, x: int, y: int, width: int, placed: list) -> tuple[int, int]:
        """Baseline position for a label near (x, y) that does not cover an earlier label."""
        h, w = self.height, self.width
        x = int(np.clip(x, 2, max(2, w - width - 2)))
        for k in (0, -1, 1, -2, 2, -3, 3):
            yk = int(np.clip(y + k * self.row_h, self.text_h + 2, h - 3))
            rect = (x, yk - self.text_h - 1, x + width, yk + 3)
            if not any(r[0] < rect[2] and rect[0] < r[2] and r[1] < rect[3] and rect[1] < r[3]
                       for r in placed):
                placed.append(rect)
                return x, yk
        return x, int(np.clip(y, self.text_h + 2, h - 3))

    def draw(self, img: np.ndarray, t: int) -> None:
        """Draw the overlay of frame ``t`` onto ``img`` (BGR, in place)."""
        w = self.width
        centres = []
        for i in range(self.pred.n_individuals):
            xy = self.keypoints[t, i]
            ok = ~np.isnan(xy).any(axis=1)
            if not ok.any():
                continue
            color = self.ind_colors[i]
            pts = np.round(np.nan_to_num(xy)).astype(np.int64)  # NaN rows are skipped via ok
            for a, b in self.edges:
                if ok[a] and ok[b]:
                    cv2.line(
                        img, tuple(map(int, pts[a])), tuple(map(int, pts[b])), color, self.line, cv2.LINE_AA
                    )
            for p in pts[ok]:
                center = (int(p[0]), int(p[1]))
                cv2.circle(img, center, self.radius + 1, _OUTLINE, -1, cv2.LINE_AA)
                cv2.circle(img, center, self.radius, color, -1, cv2.LINE_AA)
            centres.append((i, *np.median(xy[ok], axis=0)))
        # Legend and labels after all keypoints, so that no animal's points cover a label;
        # labels keep off the legend and off each other.
        placed = [self._legend(img, t)]
        for i, cx, cy in centres:
            parts = [(self.ind_names[i] + ": ", self.ind_colors[i]), *self._label_parts(t, i)]
            width = self._parts_width(parts)
            # Above the body centre, kept inside the frame.
            x, y = self._place(int(cx - width / 2), int(cy - 3 * self.radius - self.pad), width, placed)
            for text, c in parts:
                x += self._text(img, text, (x, y), c)
        if self.looked[t].any():
            r = max(4, self.text_h // 2 + 2)
            label_w = cv2.getTextSize("looked", _FONT, self.font, self.thick)[0][0]
            cx, cy = w - self.pad - r, self.pad + r
            cv2.circle(img, (cx, cy), r + 1, _OUTLINE, -1, cv2.LINE_AA)
            cv2.circle(img, (cx, cy), r, LOOKED_COLOR_BGR, -1, cv2.LINE_AA)
            self._text(img, "looked", (cx - r - self.pad - label_w, cy + self.text_h // 2), LOOKED_COLOR_BGR)

    def _legend(self, img: np.ndarray, t: int) -> tuple[int, int, int, int]:
        """Draw the top-left legend of frame ``t``; returns its box (x0, y0, x1, y1)."""
        head = f"frame {t}" + (f"  {t / self.fps:.2f} s" if self.fps else "")
        box = self.row_h // 2  # looked-square size
        rows = [
            [(self.ind_names[i] + ": ", self.ind_colors[i]), *self._label_parts(t, i)]
            for i in range(self.pred.n_individuals)
        ]
        widths = [cv2.getTextSize(head, _FONT, self.font, self.thick)[0][0]]
        widths += [box + self.pad + self._parts_width(p) for p in rows]
        x0, y0 = self.pad, self.pad
        x1 = min(self.width - 1, x0 + max(widths) + 2 * self.pad)
        y1 = min(self.height - 1, y0 + self.row_h * (len(rows) + 1))
        region = img[y0:y1, x0:x1]
        # Darkened, not opaque: the arena under the legend stays visible.
        region[:] = (region.astype(np.uint16) * 2 // 5).astype(np.uint8)
        y = y0 + self.row_h - self.pad
        self._text(img, head, (x0 + self.pad, y), (255, 255, 255))
        for i, parts in enumerate(rows):
            y += self.row_h
            x = x0 + self.pad
            top = y - self.text_h
            if self.looked[t, i]:
                cv2.rectangle(img, (x, top), (x + box, top + box), LOOKED_COLOR_BGR, -1)
            else:
                cv2.rectangle(img, (x, top), (x + box, top + box), (90, 90, 90), 1)
            x += box + self.pad
            for text, c in parts:
                x += self._text(img, text, (x, y), c)
        return x0, y0, x1, y1


def write_labeled_video(
    record: PoseRecord,
    behaviors,
    path,
    *,
    bouts=None,
    start: int = 0,
    stop: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write a copy of the recording's video with keypoints and behavior labels drawn on it.

    Parameters
    ----------
    record : PoseRecord
        The recording, with its video attached (``record.video_path``, as set by
        :func:`dlc_lookagain.io.load_pose` / ``load_project``). Keypoints are
        scaled into video pixels with ``record.video_scale``.
    behaviors : BehaviorPrediction, pandas.DataFrame or path-like
        The predictions: a :class:`BehaviorPrediction`, or the tidy behaviors
        table (``_behaviors.csv``/``.h5`` or its DataFrame). Must cover exactly the
        record's frames and individuals.
    path : path-like
        Output ``.mp4``; must not be the recording's video or pose file.
    bouts : pandas.DataFrame or path-like or None
        Bouts table whose bouts decide which behaviors are drawn as present (what
        was written). With a table read from a file and no ``bouts``, the
        ``<stem>_bouts.csv`` beside that file is used when it exists; otherwise
        presence is recomputed from the probabilities and thresholds (see
        :func:`dlc_lookagain.io.annotations.prediction_from_table`). Not allowed
        with a :class:`BehaviorPrediction`, which carries its own flags.
    start, stop : int
        Render frames ``start`` to ``stop - 1`` only (a clip); ``stop`` defaults
        to the last frame that has both pose and video. The frame numbers drawn
        are those of the recording.
    overwrite : bool
        Replace an existing ``path``.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    Path
        ``path``. Frame size is the video's (padded by one black row/column when
        odd, which H.264 in yuv420p requires); frame rate is the record's fps
        (else the video's, else 30).

    Raises
    ------
    PoseFormatError
        The record has no video attached, is a manual-label table, the prediction
        does not match the record, or ``path`` is the record's own video or pose file.
    FileNotFoundError
        ``record.video_path`` does not exist.
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    ValueError
        A bad ``start``/``stop``, or ``path`` does not end in ``.mp4``.

    Notes
    -----
    The whole video up to ``stop`` is decoded (one sequential pass, no seeking),
    so a clip late in a long recording still takes time to reach.
    """
    from tqdm.auto import tqdm

    from dlc_lookagain.synth.encode import VideoEncoder

    path = Path(path)
    if record.video_path is None:
        raise PoseFormatError(
            record.source,
            "no video is attached to this pose record, so there is nothing to draw on; load it with "
            "load_pose(pose_file, video=<video file>) or keep the video beside the pose file",
        )
    if record.frame_names is not None:
        raise PoseFormatError(
            record.source, "is a table of labeled images (frame_names), not the analysis of one video"
        )
    video = Path(record.video_path)
    if not video.is_file():
        raise FileNotFoundError(f"{video}: video of {record.source} not found (moved or deleted?)")
    if path.suffix.lower() != ".mp4":
        raise ValueError(f"{path}: the labeled video is written as H.264 .mp4; give a path ending in .mp4")
    if path.exists() and path.resolve() in {video.resolve(), record.source.resolve()}:
        raise PoseFormatError(path, "is the recording's own video or pose file; choose another output path")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: output exists; pass {option_text('overwrite', True)} to replace it")
    pred = _prediction(record, behaviors, bouts)
    start, stop = _frame_range(record, start, stop)

    with VideoReader(video) as reader:
        width, height = reader.info.width, reader.info.height
        fps = record.fps or reader.info.fps or _DEFAULT_FPS
        out_w, out_h = width + width % 2, height + height % 2
        painter = _Painter(record, pred, width, height, record.fps or reader.info.fps)
        canvas = np.zeros((out_h, out_w, 3), np.uint8)
        n_written = 0
        with atomic_path(path, overwrite=overwrite) as tmp:
            with VideoEncoder(tmp, out_w, out_h, fps, crf=_CRF) as encoder:
                bar = tqdm(total=stop - start, desc=path.name, unit="frame", disable=not progress)
                try:
                    for t, frame in reader.read_frames(range(start, stop), color="bgr", allow_short=True):
                        painter.draw(frame, t)
                        canvas[:height, :width] = frame
                        encoder.write(canvas)
                        n_written += 1
                        bar.update(1)
                finally:
                    bar.close()
                if n_written == 0:
                    raise PoseFormatError(
                        video, f"ended before frame {start}; no frame of {start}..{stop - 1} could be decoded"
                    )
            backend = encoder.backend
    if n_written < stop - start:
        logger.warning(
            "%s: the video %s ended early; wrote %d of frames %d..%d", path, video, n_written, start, stop - 1
        )
    logger.info(
        "wrote labeled video %s: frames %d..%d of %s, %dx%d at %g fps (%s)",
        path, start, start + n_written - 1, video.name, out_w, out_h, fps, backend,
    )
    return path
