"""Read Caltech Behavior Annotator annotation files (``*_annot.txt``).

The Caltech Behavior Annotator (Piotr Dollár's MATLAB ``behaviorAnnotator``,
also written by Bento) saves a plain-text file::

    Caltech Behavior Annotator - Annotation File

    Configuration file:
    base\tz
    social\ts
    aggression\ta
    bite\tb

    S1:\tstart\tend\ttype
    -----------------------------
       \t1\t535\tbase
       \t536\t961\tsocial
       ...
    S2:\tstart\tend\ttype
    -----------------------------
       \t1\t1528\tbase
       ...

The configuration block lists the behavior names and their keyboard keys. Each
stream (``S1``, ``S2``, ...) is an independent track that gives every frame
exactly one type; its rows are ``start end type`` with **1-based, inclusive**
frame numbers. ``base`` is the annotator's "nothing selected" type.

How the streams become :class:`~dlc_lookagain.io.labels.BehaviorLabels`
(0-based frames, like every reader of :mod:`dlc_lookagain.io.labels`):

* ``behaviors`` are the configuration names except ``base``, in the file's
  order, including names that never occur in a stream (so every session of a
  project gives the same behavior list).
* ``present[f, :, b]`` is True where any stream has type ``b`` at frame ``f``.
* ``annotated`` is one mask per (frame, individual) in ``BehaviorLabels``, so
  one stream has to define it: the **first stream (S1)**. A frame is annotated
  where S1 holds a type other than ``base``; there every behavior is a 0/1 label,
  and a later stream's ``base`` means "none of its behaviors". In the rat
  aggression data S1 is social / nonsocial / aggression (mutually exclusive) and
  S2 the aggression sub-types, so S2 ``base`` inside the scored part of S1 is a
  true negative for the sub-types. Where S1 is ``base`` the frame is unlabeled for
  *all* behaviors; a later stream's bouts there are dropped with a warning
  (``present`` is never True on an unannotated frame).
* The labels are per session (dyadic), not per animal: the only individual is
  ``"all"``, which :meth:`BehaviorLabels.align` spreads over every animal of the
  pose file.
* The file has no frame rate: ``fps`` is whatever the caller passes.

Bouts that run past ``n_frames`` are clipped with a warning; frames after the
file's last bout are unlabeled. Every malformed line raises
:class:`~dlc_lookagain.errors.PoseFormatError` naming the file and the line.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import numpy as np
import pandas as pd

from dlc_lookagain.errors import PoseFormatError
from dlc_lookagain.io.behavior_labels import ALL_INDIVIDUALS, BehaviorLabels

logger = logging.getLogger(__name__)

#: First line of every Caltech Behavior Annotator annotation file.
CALTECH_HEADER = "Caltech Behavior Annotator - Annotation File"
#: The annotator's "no behavior selected" type.
BASE = "base"
#: ``source_format`` of the labels read here.
SOURCE_FORMAT = "caltech"

_CONFIG_LINE = "configuration file:"
_STREAM_HEADER = re.compile(r"^\s*(S\d+)\s*:(.*)$")
_DASHES = re.compile(r"^\s*-{3,}\s*$")
_INT = re.compile(r"^[+-]?\d+$")


@dataclass
class CaltechAnnotation:
    """The content of one annotation file, as written (1-based, inclusive frames).

    Attributes
    ----------
    path : Path
        The file.
    config : list of str
        Type names of the configuration block in file order (``base`` included).
    keys : dict of str to str
        Keyboard key of each type (``""`` when the line has none).
    bouts : pandas.DataFrame
        One row per bout: ``stream`` (``"S1"``, ...), ``start``, ``end`` (1-based,
        inclusive), ``type`` and ``line`` (1-based line number in the file), in
        file order.
    streams : list of str
        Stream names in file order.
    """

    path: Path
    config: list[str]
    keys: dict[str, str]
    bouts: pd.DataFrame
    streams: list[str]

    @property
    def behaviors(self) -> list[str]:
        """Configuration names without ``base``, in file order."""
        return [c for c in self.config if c != BASE]

    @property
    def last_frame(self) -> int:
        """Last (1-based) frame covered by any stream."""
        return int(self.bouts["end"].max())


def is_caltech_annotation(head: bytes) -> bool:
    """Whether a file's first bytes are a Caltech Behavior Annotator annotation file.

    Parameters
    ----------
    head : bytes
        The start of the file (a few hundred bytes are enough).

    Returns
    -------
    bool
        True when the first non-blank line starts with "Caltech Behavior
        Annotator" (case and surrounding spaces ignored; a UTF-8 BOM is allowed).
    """
    text = head.decode("latin-1").lstrip("\ufeff\xef\xbb\xbf \t\r\n")
    return text.lower().startswith("caltech behavior annotator")


def _decode(path: Path) -> list[str]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    if raw and not raw.endswith((b"\n", b"\r")):
        logger.warning("%s: file does not end with a line break; check that it is not truncated", path)
    # Split on line breaks only (str.splitlines also splits on form feeds etc., which would shift line numbers).
    return [ln.rstrip("\r") for ln in text.split("\n")]


def parse_caltech_annotation(path) -> CaltechAnnotation:
    """Parse an annotation file into its configuration and bout table, checking every line.

    Parameters
    ----------
    path : str or Path
        A Caltech Behavior Annotator ``*_annot.txt`` file.

    Returns
    -------
    CaltechAnnotation
        Frames as in the file (1-based, inclusive).

    Raises
    ------
    PoseFormatError
        Wrong header, missing or duplicated configuration names, a stream with no
        rows, a row that is not ``start end type``, a non-integer frame, a start
        below 1, an end before its start, overlapping bouts within a stream, a type
        missing from the configuration, or streams that stop at different frames
        (a truncated file). The message gives the file and the line number.
    """
    path = Path(path)
    lines = _decode(path)

    def fail(lineno: int, problem: str) -> NoReturn:
        raise PoseFormatError(path, f"line {lineno}: {problem}")

    i = next((k for k, ln in enumerate(lines) if ln.strip()), None)
    if i is None:
        raise PoseFormatError(path, "label file is empty")
    if lines[i].strip().lower() != CALTECH_HEADER.lower():
        fail(i + 1, f"expected the header {CALTECH_HEADER!r}, found {lines[i].strip()!r}")

    # Configuration block: "name<TAB>key" lines up to a blank line or the first stream.
    i += 1
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i >= len(lines) or lines[i].strip().lower() != _CONFIG_LINE:
        fail(min(i + 1, len(lines)), "expected 'Configuration file:' after the header (file truncated?)")
    config_line = i + 1
    config: list[str] = []
    keys: dict[str, str] = {}
    i += 1
    while i < len(lines) and lines[i].strip() and not _STREAM_HEADER.match(lines[i]):
        cells = [c.strip() for c in (lines[i].split("\t") if "\t" in lines[i] else lines[i].split())]
        while len(cells) > 1 and not cells[-1]:  # trailing tabs
            cells.pop()
        name = cells[0]
        if len(cells) > 2 or not name:
            fail(i + 1, f"configuration lines are 'behavior<TAB>key', found {lines[i].strip()!r}")
        if name in keys:
            fail(i + 1, f"behavior {name!r} is listed twice in the configuration")
        config.append(name)
        keys[name] = cells[1] if len(cells) > 1 else ""
        i += 1
    if not config:
        fail(config_line, "the configuration block lists no behaviors")
    known = set(config) | {BASE}

    # Stream blocks.
    rows: list[tuple[str, int, int, str, int]] = []
    streams: list[str] = []
    stream_first_line: dict[str, int] = {}
    current = None
    for k in range(i, len(lines)):
        line = lines[k]
        lineno = k + 1
        if not line.strip():
            current = None
            continue
        m = _STREAM_HEADER.match(line)
        if m:
            current = m.group(1)
            if current in streams:
                fail(lineno, f"stream {current} appears twice")
            streams.append(current)
            stream_first_line[current] = lineno
            continue
        if _DASHES.match(line):
            if current is None:
                fail(lineno, "dashed line outside a stream block")
            continue
        if current is None:
            fail(lineno, f"expected a stream header such as 'S1:\\tstart\\tend\\ttype', found {line.strip()!r}")
        cells = line.split(None, 2)
        if len(cells) != 3:
            fail(lineno, f"stream {current}: expected 'start end type', found {line.strip()!r} (file truncated?)")
        start_s, end_s, kind = cells[0], cells[1], cells[2].strip()
        for what, value in (("start", start_s), ("end", end_s)):
            if not _INT.match(value):
                fail(lineno, f"stream {current}: {what} frame {value!r} is not a whole number")
        start, end = int(start_s), int(end_s)
        if start < 1:
            fail(lineno, f"stream {current}: start frame {start} (frames are 1-based)")
        if end < start:
            fail(lineno, f"stream {current}: bout of {kind!r} ends (frame {end}) before it starts (frame {start})")
        if kind not in known:
            fail(lineno, f"stream {current}: type {kind!r} is not in the configuration {config}")
        rows.append((current, start, end, kind, lineno))

    if not streams:
        raise PoseFormatError(path, f"no stream block ('S1:' ...) after the configuration (file truncated?); "
                                    f"{len(lines)} lines")
    bouts = pd.DataFrame(rows, columns=["stream", "start", "end", "type", "line"])
    bouts = bouts.astype({"start": np.int64, "end": np.int64, "line": np.int64})
    for name in streams:
        if not (bouts["stream"] == name).any():
            fail(stream_first_line[name], f"stream {name} has no rows (file truncated?)")

    # Bouts of one stream may not overlap: a stream gives each frame one type.
    ends = {}
    for name, grp in bouts.groupby("stream", sort=False):
        g = grp.sort_values(["start", "line"], kind="stable")
        prev_end = g["end"].cummax().shift(1)
        clash = (g["start"] <= prev_end).to_numpy()
        if clash.any():
            r = g.iloc[int(np.argmax(clash))]
            fail(int(r["line"]), f"stream {name}: bout {r['start']}-{r['end']} ({r['type']}) overlaps an "
                                 f"earlier bout of the same stream")
        ends[name] = int(g["end"].max())
    last = max(ends.values())
    for name in streams:
        if ends[name] != last:
            last_line = int(bouts.loc[bouts["stream"] == name, "line"].max())
            fail(last_line, f"stream {name} stops at frame {ends[name]} but another stream runs to frame {last}; "
                            f"each stream covers the whole video (file truncated?)")
    return CaltechAnnotation(path=path, config=config, keys=keys, bouts=bouts, streams=streams)


def read_caltech_labels(path, *, n_frames: int | None = None, fps: float | None = None) -> BehaviorLabels:
    """Read a Caltech Behavior Annotator file as per-frame labels.

    Parameters
    ----------
    path : str or Path
        A ``*_annot.txt`` file (see the module docstring for the layout).
    n_frames : int, optional
        Number of frames of the recording (the pose file's length). Bouts past it
        are clipped with a warning; frames after the file's last bout are
        unlabeled. None: the labels end at the file's last frame.
    fps : float, optional
        Frames per second, stored on the result (the file has none).

    Returns
    -------
    BehaviorLabels
        0-based frames; individuals ``["all"]``; behaviors = configuration names
        without ``base``; ``annotated`` = frames where the first stream (S1) is not
        ``base``, on which every behavior (of every stream) is a 0/1 label;
        ``source_format`` ``"caltech"``.

    Raises
    ------
    PoseFormatError
        For a malformed file (see :func:`parse_caltech_annotation`) or a negative ``n_frames``.
    """
    ann = parse_caltech_annotation(path)
    path = ann.path
    behaviors = ann.behaviors
    if not behaviors:
        raise PoseFormatError(path, "the configuration lists only 'base', no behavior")
    file_frames = ann.last_frame
    if n_frames is None:
        t = file_frames
    else:
        t = int(n_frames)
        if t < 0:
            raise PoseFormatError(path, f"n_frames must be >= 0, got {n_frames}")

    bouts = ann.bouts
    # 1-based inclusive -> 0-based inclusive.
    start = bouts["start"].to_numpy() - 1
    end = bouts["end"].to_numpy() - 1
    beyond = end >= t
    if beyond.any():
        labeled = beyond & (bouts["type"] != BASE).to_numpy()
        dropped = int((end[labeled] - np.maximum(start[labeled], t) + 1).sum())
        logger.warning("%s: %d bout(s) run past the last frame (%d; the file runs to frame %d, 0-based); "
                       "cropped, %d labeled (frame, stream) pair(s) dropped", path, int(beyond.sum()), t - 1,
                       file_frames - 1, dropped)
    keep = start < t
    start, end = start[keep], np.minimum(end[keep], t - 1)
    kinds = bouts["type"].to_numpy()[keep]
    stream = bouts["stream"].to_numpy()[keep]

    present = np.zeros((t, 1, len(behaviors)), dtype=bool)
    annotated = np.zeros((t, 1), dtype=bool)
    first = ann.streams[0]
    beh_index = {b: j for j, b in enumerate(behaviors)}
    for s, e, kind, st in zip(start, end, kinds, stream):
        if kind == BASE:
            continue
        present[s:e + 1, 0, beh_index[kind]] = True
        if st == first:
            annotated[s:e + 1, 0] = True
    outside = present & ~annotated[:, :, None]
    if outside.any():
        per_beh = {b: int(n) for b, n in zip(behaviors, outside.sum(axis=(0, 1))) if n}
        logger.warning("%s: %d frame(s) hold a behavior in a later stream where %s is 'base' (unlabeled); "
                       "those labels are dropped: %s", path, int(outside.any(axis=2).sum()), first, per_beh)
        present &= annotated[:, :, None]
    logger.debug("%s: Caltech annotation, streams %s, %d of %d frames annotated", path, ann.streams,
                 int(annotated.sum()), t)
    return BehaviorLabels(behaviors, [ALL_INDIVIDUALS], present, annotated, fps, path, SOURCE_FORMAT)


__all__ = [
    "CALTECH_HEADER",
    "CaltechAnnotation",
    "is_caltech_annotation",
    "parse_caltech_annotation",
    "read_caltech_labels",
]
