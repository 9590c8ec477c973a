"""Per-video figures drawn from the written behavior files: an ethogram and a time budget.

Both figures are drawn from the files :func:`dlc_lookagain.io.annotations.write_annotations`
writes (or the same tables in memory): the bars come from the bouts table, so
what you see is exactly what was written; the per-frame table gives the frames
each animal was tracked and the frames the vision encoder looked at.

Files written by :func:`write_figures` beside ``<stem>_behaviors.csv``:

``<stem>_ethogram.png``
    One panel per animal, one row per behavior, a bar for every bout; grey
    background where the animal was not tracked; a strip under each panel with a
    tick for every frame the vision encoder looked at (a density strip when the
    ticks would be denser than the pixels).
``<stem>_time_budget.png``
    For each animal, the share of its tracked time spent in each behavior.
    Behaviors are multi-label, so the shares need not add up to 100 %.

Colours are fixed per behavior position (the order of the ``p_<behavior>``
columns), so figures of one project and :mod:`dlc_lookagain.io.labeled_video`
agree. Figures are drawn with matplotlib's Agg renderer through
:class:`matplotlib.figure.Figure` (no pyplot, no display) with matplotlib's
default style, and the PNG carries no software tag: the same tables give the same
bytes.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dlc_lookagain.errors import PoseFormatError, option_text
from dlc_lookagain.io.annotations import PROBABILITY_PREFIX, read_behaviors, read_bouts
from dlc_lookagain.io.paths import atomic_path

logger = logging.getLogger(__name__)

__all__ = [
    "BEHAVIOR_PALETTE",
    "behavior_colors",
    "figure_paths",
    "plot_ethogram",
    "plot_time_budget",
    "time_budget",
    "write_figures",
]

#: Colours given to behaviors by their position in the table (cycled past the end).
#: matplotlib's tab10 and the light half of tab20 without their greys, then five
#: darker tones; grey is kept for "not tracked" and the looked-at ticks.
BEHAVIOR_PALETTE: tuple[str, ...] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5",
    "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173",
)
UNTRACKED_COLOR = "#e3e3e3"
LOOKED_COLOR = "#333333"

_BEHAVIOR_REQUIRED = ("frame", "time_s", "individual", "looked")
_BOUT_REQUIRED = ("individual", "behavior", "start_frame", "end_frame")
_DPI = 100
_ETHOGRAM_WIDTH_IN = 12.0
# Above this many looked-at frames per panel, single ticks would merge into a solid
# bar (the panel is about 1,000 px wide): draw the share of looked-at frames instead.
_MAX_LOOKED_TICKS = 1500
_DENSITY_BINS = 1000
# Recordings longer than this are labelled in minutes.
_MINUTES_ABOVE_S = 30 * 60


def behavior_colors(behaviors) -> dict[str, str]:
    """Colour of each behavior, by its position in ``behaviors``.

    Parameters
    ----------
    behaviors : sequence of str
        Behavior names in table order (the order of the ``p_<behavior>`` columns).

    Returns
    -------
    dict of str to str
        Behavior name to ``"#rrggbb"``; the same position always gets the same colour.
    """
    return {b: BEHAVIOR_PALETTE[i % len(BEHAVIOR_PALETTE)] for i, b in enumerate(behaviors)}


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------
@dataclass
class _Tables:
    """What the figures need from a behaviors table and its bouts, on dense arrays."""

    behaviors: list[str]
    individuals: list[str]
    n_frames: int
    fps: float | None
    tracked: np.ndarray  # bool (I, T)
    looked: np.ndarray  # bool (I, T)
    present: np.ndarray  # bool (I, C, T), from the bouts
    bouts: pd.DataFrame
    name: str


def _where(df: pd.DataFrame, what: str) -> tuple[Path | None, str]:
    path = df.attrs.get("path")
    return (Path(path) if path else None), (f"{what} table" if path else f"{what} table (DataFrame)")


def _load(obj, reader, what: str) -> pd.DataFrame:
    if isinstance(obj, pd.DataFrame):
        return obj
    if isinstance(obj, (str, os.PathLike)):
        return reader(obj)
    raise TypeError(f"{what} must be a pandas DataFrame or a path, got {type(obj).__name__}")


def _require(df: pd.DataFrame, columns, what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        path, desc = _where(df, what)
        raise PoseFormatError(path, f"{desc} lacks column(s) {missing} (has {list(df.columns)})")


def _infer_fps(df: pd.DataFrame) -> float | None:
    """fps from the .h5 metadata, else from ``time_s = frame / fps``; None when unknown."""
    fps = df.attrs.get("fps")
    if fps:
        return float(fps)
    frame = df["frame"].to_numpy(dtype=np.float64)
    time_s = pd.to_numeric(df["time_s"], errors="coerce").to_numpy(dtype=np.float64)
    ok = np.isfinite(time_s) & (frame > 0) & (time_s > 0)
    if not ok.any():
        return None
    return float(np.median(frame[ok] / time_s[ok]))


def _tables(behaviors, bouts) -> _Tables:
    df = _load(behaviors, read_behaviors, "behaviors")
    bt = _load(bouts, read_bouts, "bouts")
    _require(df, _BEHAVIOR_REQUIRED, "behaviors")
    pcols = [c for c in df.columns if str(c).startswith(PROBABILITY_PREFIX)]
    if not pcols:
        path, desc = _where(df, "behaviors")
        raise PoseFormatError(
            path, f"{desc} has no probability column ('{PROBABILITY_PREFIX}<behavior>'): {list(df.columns)}"
        )
    _require(bt, _BOUT_REQUIRED, "bouts")
    names = [c[len(PROBABILITY_PREFIX):] for c in pcols]
    path, desc = _where(df, "behaviors")
    if len(df) == 0:
        raise PoseFormatError(path, f"{desc} has no rows")

    frame = pd.to_numeric(df["frame"], errors="coerce").to_numpy(dtype=np.float64)
    if not (np.isfinite(frame).all() and (frame >= 0).all() and (np.mod(frame, 1) == 0).all()):
        raise PoseFormatError(path, f"{desc}: column 'frame' must hold whole numbers >= 0")
    frame = frame.astype(np.int64)
    individuals = [str(i) for i in pd.unique(df["individual"].astype(str))]
    ind = pd.Categorical(df["individual"].astype(str), categories=individuals).codes.astype(np.int64)
    n_frames, n_ind = int(frame.max()) + 1, len(individuals)
    flat = frame * n_ind + ind
    if np.unique(flat).size != len(flat):
        raise PoseFormatError(path, f"{desc} holds some (frame, individual) pair more than once")

    probs = df[pcols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    tracked = np.zeros((n_ind, n_frames), dtype=bool)
    tracked[ind, frame] = ~np.isnan(probs).all(axis=1)
    looked_col = pd.to_numeric(df["looked"], errors="coerce").to_numpy(dtype=np.float64)
    if not np.isin(looked_col, (0, 1)).all():
        raise PoseFormatError(path, f"{desc}: column 'looked' must be 0 or 1")
    looked = np.zeros((n_ind, n_frames), dtype=bool)
    looked[ind, frame] = looked_col == 1

    bpath, bdesc = _where(bt, "bouts")
    start = pd.to_numeric(bt["start_frame"], errors="coerce").to_numpy(dtype=np.float64)
    end = pd.to_numeric(bt["end_frame"], errors="coerce").to_numpy(dtype=np.float64)
    if not (np.isfinite(start).all() and np.isfinite(end).all()):
        raise PoseFormatError(bpath, f"{bdesc}: start_frame/end_frame must hold numbers")
    start, end = start.astype(np.int64), end.astype(np.int64)
    bad = (start < 0) | (end < start) | (end >= n_frames)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise PoseFormatError(
            bpath,
            f"{bdesc}: bout at row {row} (frames {start[row]}..{end[row]}) lies outside the behaviors "
            f"table's frames 0..{n_frames - 1} or ends before it starts; are the files from the same run?",
        )
    b_ind = bt["individual"].astype(str).to_numpy()
    b_beh = bt["behavior"].astype(str).to_numpy()
    unknown_ind = sorted(set(b_ind) - set(individuals))
    unknown_beh = sorted(set(b_beh) - set(names))
    if unknown_ind or unknown_beh:
        raise PoseFormatError(
            bpath,
            f"{bdesc} names individual(s) {unknown_ind} / behavior(s) {unknown_beh} that the behaviors "
            f"table does not have (individuals {individuals}, behaviors {names}); are the files from "
            "the same run?",
        )
    i_code = pd.Categorical(b_ind, categories=individuals).codes.astype(np.int64)
    c_code = pd.Categorical(b_beh, categories=names).codes.astype(np.int64)
    edges = np.zeros((n_ind, len(names), n_frames + 1), dtype=np.int32)
    np.add.at(edges, (i_code, c_code, start), 1)
    np.add.at(edges, (i_code, c_code, end + 1), -1)
    present = np.cumsum(edges, axis=2)[..., :n_frames] > 0

    bouts_clean = pd.DataFrame(
        {"individual": b_ind, "behavior": b_beh, "start_frame": start, "end_frame": end}
    )
    src = df.attrs.get("path")
    name = Path(src).name if src else ""
    for suffix in ("_behaviors.csv", "_behaviors.h5"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    return _Tables(
        names, individuals, n_frames, _infer_fps(df), tracked, looked, present, bouts_clean, name
    )


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and exclusive ends of the runs of True in a 1-D mask."""
    d = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def _time_axis(n_frames: int, fps: float | None) -> tuple[float, str]:
    """Factor from frames to x units, and the axis label."""
    if not fps:
        return 1.0, "frame (fps unknown)"
    if n_frames / fps > _MINUTES_ABOVE_S:
        return 1.0 / (60.0 * fps), "time (min)"
    return 1.0 / fps, "time (s)"


# --------------------------------------------------------------------------------------------
# Drawing
# --------------------------------------------------------------------------------------------
def _new_figure(width_in: float, height_in: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=_DPI)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path, overwrite: bool) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"{path}: figures are written as PNG; give a path ending in .png")
    with atomic_path(path, overwrite=overwrite) as tmp:
        # No "Software" tag (it names the matplotlib version): same tables, same bytes.
        fig.savefig(tmp, format="png", dpi=_DPI, metadata={"Software": None})
    return path


def _style():
    import matplotlib.style

    # matplotlib's defaults, not the user's matplotlibrc: a figure looks (and hashes)
    # the same on every machine with the same matplotlib.
    return matplotlib.style.context("default")


def plot_ethogram(behaviors, bouts, path, *, title: str | None = None, overwrite: bool = False) -> Path:
    """Draw the ethogram of one recording into a PNG.

    One panel per individual with one row per behavior and a bar for every bout
    (the decisions written to the bouts table); a grey background where the
    individual was not tracked (all probabilities NaN); under each panel a strip
    with a tick for every frame the vision encoder looked at, or, when there are
    more than 1,500 such frames, the share of looked-at frames per 1/1000 of the
    recording.

    Parameters
    ----------
    behaviors : pandas.DataFrame or path-like
        The tidy ``_behaviors.csv``/``.h5`` table (see
        :func:`dlc_lookagain.io.annotations.read_behaviors`). Needs ``frame``,
        ``time_s``, ``individual``, ``looked`` and ``p_<behavior>`` columns.
    bouts : pandas.DataFrame or path-like
        The ``_bouts.csv`` table; needs ``individual``, ``behavior``,
        ``start_frame``, ``end_frame`` (inclusive).
    path : path-like
        Output ``.png``.
    title : str or None
        Figure title; default the file stem of the behaviors table.
    overwrite : bool
        Replace an existing ``path``.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    PoseFormatError
        A table lacks columns, or the bouts do not fit the behaviors table.
    FileExistsError
        ``path`` exists and ``overwrite`` is False.
    ValueError
        ``path`` does not end in ``.png``.

    Notes
    -----
    The x axis is in seconds (minutes beyond 30 min) from ``fps`` (the .h5
    metadata, or ``time_s``), in frames when fps is unknown. Bars span
    ``start_frame`` to ``end_frame + 1``.
    """
    tables = _tables(behaviors, bouts)
    colors = behavior_colors(tables.behaviors)
    n_beh, n_ind, n_frames = len(tables.behaviors), len(tables.individuals), tables.n_frames
    scale, xlabel = _time_axis(n_frames, tables.fps)
    x_end = n_frames * scale

    # Layout in inches, then in figure fractions (exact and deterministic).
    row_in, strip_in, gap_in = 0.24, 0.28, 0.55
    panel_in = max(row_in * n_beh, 0.5)
    top_in, bottom_in = 0.95, 0.6
    height_in = top_in + bottom_in + n_ind * (panel_in + 0.04 + strip_in) + (n_ind - 1) * gap_in
    label_len = max(len(b) for b in tables.behaviors)
    left_in = min(max(1.0, 0.075 * label_len + 0.35), 3.5)
    width_in = _ETHOGRAM_WIDTH_IN
    left, right = left_in / width_in, 1 - 0.3 / width_in

    with _style():
        fig = _new_figure(width_in, height_in)
        y_top = height_in - top_in
        strips = []
        first_ax = None
        for i, ind in enumerate(tables.individuals):
            y_panel = y_top - panel_in
            ax = fig.add_axes(
                (left, y_panel / height_in, right - left, panel_in / height_in), sharex=first_ax
            )
            first_ax = first_ax or ax
            y_strip = y_panel - 0.04 - strip_in
            sx = fig.add_axes(
                (left, y_strip / height_in, right - left, strip_in / height_in), sharex=first_ax
            )
            strips.append(sx)
            y_top = y_strip - gap_in

            # Not-tracked background.
            s, e = _runs(~tables.tracked[i])
            if len(s):
                ax.broken_barh(
                    list(zip(s * scale, (e - s) * scale)), (-0.5, n_beh),
                    facecolors=UNTRACKED_COLOR, edgecolor="none", zorder=0,
                )
            # A bout narrower than a pixel would vanish in a long recording: give it a hairline edge.
            frames_per_px = n_frames / ((right - left) * width_in * _DPI)
            edge = 0.6 if frames_per_px > 1 else 0.0
            for c, beh in enumerate(tables.behaviors):
                s, e = _runs(tables.present[i, c])
                if len(s):
                    ax.broken_barh(
                        list(zip(s * scale, (e - s) * scale)), (c - 0.4, 0.8),
                        facecolors=colors[beh], edgecolor=colors[beh] if edge else "none",
                        linewidth=edge, zorder=2,
                    )
            ax.set_ylim(n_beh - 0.5, -0.5)  # first behavior on top
            ax.set_yticks(range(n_beh), tables.behaviors, fontsize=9)
            ax.tick_params(axis="y", length=0)
            for c in range(n_beh - 1):
                ax.axhline(c + 0.5, color="#f2f2f2", linewidth=0.6, zorder=1)
            ax.set_title(ind, loc="left", fontsize=10, fontweight="bold")
            ax.tick_params(axis="x", labelbottom=False)

            looked_frames = np.flatnonzero(tables.looked[i])
            share = looked_frames.size / n_frames
            if looked_frames.size <= _MAX_LOOKED_TICKS:
                if looked_frames.size:
                    sx.vlines(
                        (looked_frames + 0.5) * scale, 0, 1, colors=LOOKED_COLOR, linewidth=0.6
                    )
                strip_label = "looked"
            else:
                bins = np.linspace(0, n_frames, _DENSITY_BINS + 1)
                counts, _ = np.histogram(looked_frames + 0.5, bins=bins)
                widths = np.diff(bins)
                sx.stairs(counts / widths, bins * scale, fill=True, color=LOOKED_COLOR, linewidth=0)
                strip_label = "looked\n(share)"
            sx.set_ylim(0, 1)
            sx.set_yticks([])
            sx.set_ylabel(strip_label, rotation=0, ha="right", va="center", fontsize=8)
            ax.set_title(
                f"vision looked at {looked_frames.size} of {n_frames} frames ({100 * share:.0f}%)",
                loc="right", fontsize=8, color="#555555",
            )
            if i < n_ind - 1:
                sx.tick_params(axis="x", labelbottom=False)
        first_ax.set_xlim(0, x_end)
        strips[-1].set_xlabel(xlabel, fontsize=9)
        head = title if title is not None else (tables.name or "ethogram")
        fig.text(0.5 / width_in, 1 - 0.2 / height_in, head, ha="left", va="top", fontsize=12)
        fig.text(
            0.5 / width_in, 1 - 0.45 / height_in,
            "bars: bouts written to the bouts table; grey: animal not tracked; "
            "strip: frames the vision encoder looked at",
            ha="left", va="top", fontsize=8, color="#555555",
        )
        out = _save(fig, path, overwrite)
    logger.info("wrote ethogram %s (%d individuals, %d behaviors)", out, n_ind, n_beh)
    return out


def time_budget(behaviors, bouts) -> pd.DataFrame:
    """Share of each individual's tracked time spent in each behavior.

    Parameters
    ----------
    behaviors : pandas.DataFrame or path-like
        The tidy behaviors table (see :func:`plot_ethogram`).
    bouts : pandas.DataFrame or path-like
        The bouts table.

    Returns
    -------
    pandas.DataFrame
        One row per individual and behavior (table orders), columns
        ``individual``, ``behavior``, ``frames`` (tracked frames inside a bout),
        ``tracked_frames`` (rows whose probabilities are not all NaN),
        ``fraction`` (``frames / tracked_frames``, NaN when never tracked) and
        ``seconds`` (NaN without fps). Behaviors are multi-label, so fractions of
        one individual can add up to more than 1.

    Raises
    ------
    PoseFormatError
        As :func:`plot_ethogram`.
    """
    return _budget(_tables(behaviors, bouts))


def _budget(tables: _Tables) -> pd.DataFrame:
    rows = []
    for i, ind in enumerate(tables.individuals):
        tracked = tables.tracked[i]
        n_tracked = int(tracked.sum())
        for c, beh in enumerate(tables.behaviors):
            n = int((tables.present[i, c] & tracked).sum())
            rows.append(
                (
                    ind, beh, n, n_tracked, n / n_tracked if n_tracked else np.nan,
                    n / tables.fps if tables.fps else np.nan,
                )
            )
    columns = ["individual", "behavior", "frames", "tracked_frames", "fraction", "seconds"]
    return pd.DataFrame(rows, columns=columns)


def plot_time_budget(behaviors, bouts, path, *, title: str | None = None, overwrite: bool = False) -> Path:
    """Draw the time budget of one recording into a PNG.

    One panel per individual (up to four per row) with a horizontal bar per
    behavior: the percentage of the individual's tracked frames that lie inside
    a bout of that behavior (see :func:`time_budget`), labelled on the bar. The
    panel title gives the tracked time and the share with no behavior.

    Parameters
    ----------
    behaviors, bouts, path, title, overwrite
        As :func:`plot_ethogram`.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    PoseFormatError, FileExistsError, ValueError
        As :func:`plot_ethogram`.
    """
    tables = _tables(behaviors, bouts)
    budget = _budget(tables)
    colors = behavior_colors(tables.behaviors)
    n_beh, n_ind = len(tables.behaviors), len(tables.individuals)
    n_cols = min(n_ind, 4)
    n_rows = -(-n_ind // n_cols)
    panel_w, panel_h = 3.3, max(0.3 * n_beh, 0.9)
    label_len = max(len(b) for b in tables.behaviors)
    left_in = min(max(1.0, 0.075 * label_len + 0.35), 3.5)
    col_gap, row_gap, top_in, bottom_in = 0.35, 1.2, 0.9, 0.55
    width_in = left_in + n_cols * panel_w + (n_cols - 1) * col_gap + 0.3
    height_in = top_in + bottom_in + n_rows * panel_h + (n_rows - 1) * row_gap

    with _style():
        fig = _new_figure(width_in, height_in)
        for i, ind in enumerate(tables.individuals):
            r, k = divmod(i, n_cols)
            x0 = left_in + k * (panel_w + col_gap)
            y0 = height_in - top_in - (r + 1) * panel_h - r * row_gap
            ax = fig.add_axes((x0 / width_in, y0 / height_in, panel_w / width_in, panel_h / height_in))
            sub = budget[budget["individual"] == ind]
            pct = 100 * sub["fraction"].to_numpy(dtype=np.float64)
            n_tracked = int(sub["tracked_frames"].iloc[0])
            ax.barh(
                np.arange(n_beh), np.nan_to_num(pct), height=0.7,
                color=[colors[b] for b in tables.behaviors], zorder=2,
            )
            for c, value in enumerate(pct):
                text = "n/a" if np.isnan(value) else f"{value:.1f}%"
                ax.text(
                    (0 if np.isnan(value) else value) + 1.5, c, text, va="center", ha="left", fontsize=8
                )
            ax.set_xlim(0, 118)
            ax.set_xticks([0, 25, 50, 75, 100])
            ax.set_ylim(n_beh - 0.5, -0.5)
            ax.grid(axis="x", color="#eeeeee", zorder=0)
            ax.tick_params(axis="y", length=0)
            if k == 0:
                ax.set_yticks(range(n_beh), tables.behaviors, fontsize=9)
            else:
                ax.set_yticks(range(n_beh), [""] * n_beh)
            ax.set_xlabel("% of tracked time", fontsize=8)
            ax.tick_params(axis="x", labelsize=8)
            if n_tracked:
                none = tables.tracked[i] & ~tables.present[i].any(axis=0)
                none_pct = 100 * none.sum() / n_tracked
                tracked_txt = (
                    f"{n_tracked / tables.fps:.1f} s tracked" if tables.fps else f"{n_tracked} frames tracked"
                )
                sub_title = f"{tracked_txt}; no behavior {none_pct:.1f}%"
            else:
                sub_title = "never tracked"
            ax.set_title(f"{ind}\n{sub_title}", loc="left", fontsize=9)
        head = title if title is not None else (tables.name or "time budget")
        fig.text(0.3 / width_in, 1 - 0.15 / height_in, head, ha="left", va="top", fontsize=11)
        fig.text(
            0.3 / width_in, 1 - 0.4 / height_in,
            "share of tracked time inside a bout; behaviors can overlap, shares need not add to 100%",
            ha="left", va="top", fontsize=8, color="#555555",
        )
        out = _save(fig, path, overwrite)
    logger.info("wrote time budget %s (%d individuals, %d behaviors)", out, n_ind, n_beh)
    return out


def figure_paths(outputs: dict) -> dict[str, Path]:
    """Where :func:`write_figures` writes for the outputs of ``write_annotations``.

    Parameters
    ----------
    outputs : dict
        As returned by :func:`dlc_lookagain.io.annotations.write_annotations`.

    Returns
    -------
    dict of str to Path
        Keys ``ethogram`` and ``time_budget``: ``<stem>_ethogram.png`` and
        ``<stem>_time_budget.png`` beside the behaviors file.
    """
    source = _behaviors_file(outputs)
    name = source.name
    for suffix in ("_behaviors.csv", "_behaviors.h5"):
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            break
    else:
        raise ValueError(f"{source}: not a '<stem>_behaviors.csv' or '<stem>_behaviors.h5' file name")
    from dlc_lookagain.io.annotations import EXTRA_OUTPUTS

    return {key: source.parent / f"{stem}{EXTRA_OUTPUTS[key]}" for key in ("ethogram", "time_budget")}


def _behaviors_file(outputs: dict) -> Path:
    for key in ("behaviors_h5", "behaviors_csv"):
        if outputs.get(key) is not None:
            return Path(outputs[key])
    raise KeyError(f"outputs has no 'behaviors_h5' or 'behaviors_csv' entry (keys: {sorted(outputs)})")


def write_figures(outputs: dict, *, overwrite: bool = False) -> dict[str, Path]:
    """Write the ethogram and time-budget PNGs beside a recording's behavior files.

    Parameters
    ----------
    outputs : dict
        As returned by :func:`dlc_lookagain.io.annotations.write_annotations`:
        ``behaviors_h5`` (preferred, full precision) or ``behaviors_csv``, and
        ``bouts_csv``.
    overwrite : bool
        Replace existing figures. When False and either exists, nothing is
        written.

    Returns
    -------
    dict of str to Path
        ``{"ethogram": <stem>_ethogram.png, "time_budget": <stem>_time_budget.png}``.

    Raises
    ------
    FileExistsError
        A figure exists and ``overwrite`` is False (names the file).
    KeyError
        ``outputs`` lacks the behaviors or bouts entry.
    FileNotFoundError, PoseFormatError
        The behavior files are missing or not behavior tables.
    """
    if outputs.get("bouts_csv") is None:
        raise KeyError(f"outputs has no 'bouts_csv' entry (keys: {sorted(outputs)})")
    paths = figure_paths(outputs)
    if not overwrite:
        existing = [str(p) for p in paths.values() if p.exists()]
        if existing:
            raise FileExistsError(
                f"figures exist (pass {option_text('overwrite', True)} to replace them): {', '.join(existing)}"
            )
    behaviors = read_behaviors(_behaviors_file(outputs))
    bouts = read_bouts(outputs["bouts_csv"])
    plot_ethogram(behaviors, bouts, paths["ethogram"], overwrite=overwrite)
    plot_time_budget(behaviors, bouts, paths["time_budget"], overwrite=overwrite)
    return paths
