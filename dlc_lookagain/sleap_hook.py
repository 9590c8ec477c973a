"""Export behaviors from SLEAP: a GUI-free core, a File-menu action for SLEAP's GUI, and a launcher.

SLEAP has no plugin mechanism; its File menu is built in ``sleap/gui/app.py``. This module gives

- :func:`export_from_labels`: label behaviors in a SLEAP project given as a file or as the labels
  object open in Python or in SLEAP's GUI (``sleap_io.Labels`` in SLEAP >= 1.5, ``sleap.Labels``
  in SLEAP 1.3/1.4), writing ``<name>_behaviors.csv/.h5``, ``<name>_bouts.csv`` and
  ``<name>.behaviors.slp`` (the labels with one ``PredictedEvent`` per bout) beside the project;
- :func:`add_export_action`: adds File > "Export behaviors (LookAgain)..." to a SLEAP
  ``MainWindow``;
- :func:`launch`: ``dlc-lookagain-sleap [labels.slp]`` starts SLEAP's labeling GUI exactly as
  ``sleap-label`` does, with that menu item;
- :func:`export_analysis_h5`: the same for an ``.analysis.h5`` exported from SLEAP.

The user's labels file is only ever read. Labels that are unsaved or have unsaved changes are
saved to a temporary ``.slp`` first (the behavior files still go beside the user's file, or into
``destfolder``). Qt is imported only when the menu action is wired, and SLEAP only by
:func:`launch`, so this module imports without either.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import inspect
import logging
import os
import sys
import tempfile
from pathlib import Path

from dlc_lookagain.errors import PoseFormatError

logger = logging.getLogger(__name__)

#: Default fraction of frames looked at (the same as ``dlc_lookagain.pipeline.DEFAULT_TOP_K``).
DEFAULT_TOP_K = 0.25
#: Text of the File-menu item.
ACTION_TEXT = "Export behaviors (LookAgain)..."
#: Qt object name of the menu item (finds it again, so wiring a window twice adds it once).
ACTION_NAME = "lookagain_export_behaviors"
#: Key of the menu item in SLEAP's ``MainWindow._menu_actions``.
MENU_KEY = "lookagain export behaviors"
#: What to install when SLEAP or Qt is missing.
INSTALL_HINT = 'pip install "dlc_lookagain[sleap]"'
_TITLE = "Export behaviors (LookAgain)"


# --------------------------------------------------------------------------- GUI-free core


@dataclasses.dataclass
class _Input:
    """One pose file handed to ``analyze``: the user's own file, or a temporary one."""

    path: Path
    temporary: bool


def _labels_filename(labels) -> str | None:
    """Where a labels object was loaded from, if it says (sleap-io and SLEAP record it in provenance)."""
    provenance = getattr(labels, "provenance", None)
    filename = provenance.get("filename") if isinstance(provenance, dict) else None
    if not filename:
        filename = getattr(labels, "filename", None)
    return str(filename) if isinstance(filename, (str, os.PathLike)) and str(filename) else None


def _video_filename(video) -> str:
    """File name of a sleap-io or SLEAP video (the first image of an image sequence)."""
    filename = getattr(video, "filename", None)
    if filename is None and getattr(video, "backend", None) is not None:
        filename = getattr(video.backend, "filename", None)
    if isinstance(filename, (list, tuple)):
        filename = filename[0] if filename else ""
    return "" if filename is None else str(filename)


def _video_stem(video) -> str:
    from dlc_lookagain.io.sleap import _stored_name

    name = _stored_name(_video_filename(video)) or "video"
    return Path(name).stem or "video"


def _as_source(labels_or_path, labels_path) -> tuple[Path | None, object | None]:
    """``(where the labels live, the in-memory labels or None)``."""
    from dlc_lookagain.io.paths import absolute_path

    if isinstance(labels_or_path, (str, os.PathLike)):
        return absolute_path(Path(labels_or_path).expanduser()), None
    labels = labels_or_path
    if not (hasattr(labels, "videos") and hasattr(labels, "labeled_frames")):
        raise TypeError(
            "export_from_labels needs the path of a SLEAP .slp or .analysis.h5 file, a sleap_io.Labels "
            f"or the labels of SLEAP's GUI (window.labels); got {type(labels).__name__}"
        )
    where = labels_path if labels_path is not None else _labels_filename(labels)
    if where is None:
        return None, labels
    where = absolute_path(Path(where).expanduser())
    if not where.parent.is_dir():
        logger.warning("%s: the folder these labels were loaded from no longer exists", where)
        return None, labels
    return where, labels


def _save_snapshot(labels, path: Path, where: Path | None) -> None:
    """Save in-memory labels to ``path`` with sleap-io, or with the object's own ``save`` (SLEAP 1.x)."""
    import sleap_io as sio

    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        if isinstance(labels, sio.Labels):
            if labels.is_lazy:
                # sleap-io's fast path for lazy labels can write an unreadable file from old .slp formats.
                labels = labels.materialize()
            sio.save_slp(labels, str(path), embed=False, verbose=False)
        elif callable(getattr(labels, "save", None)):
            labels.save(str(path))  # SLEAP 1.x: Labels.save(filename, with_images=False, ...)
        elif callable(getattr(type(labels), "save_file", None)):
            type(labels).save_file(labels, str(path))
        else:
            raise TypeError(f"{type(labels).__name__} has no save method")
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RuntimeError) as exc:
        raise PoseFormatError(where, f"could not save a temporary copy of the open labels to {path} "
                                     f"({type(exc).__name__}: {exc})") from exc
    if not path.is_file():
        raise PoseFormatError(where, f"saving a temporary copy of the open labels wrote no file at {path}")


def _load_slp(path: Path, shown: Path | None, *, lazy: bool = False):
    import sleap_io as sio

    try:
        return sio.load_slp(str(path), open_videos=False, lazy=lazy)
    except Exception as exc:  # sleap-io raises many kinds (KeyError, ValueError, OSError) for bad files
        problem = f"not a readable SLEAP .slp ({type(exc).__name__}: {exc})"
        raise PoseFormatError(shown or path, problem) from exc


def _video_indices(video, listing, labels_obj, where: Path | None) -> list[int]:
    """Indices into ``listing.videos`` chosen by ``video`` (None: all)."""
    import numpy as np

    from dlc_lookagain.io.sleap import _select_video

    n = len(listing.videos)
    if video is None:
        return list(range(n))
    selectors = list(video) if isinstance(video, (list, tuple)) else [video]
    chosen: list[int] = []
    for sel in selectors:
        if isinstance(sel, bool):
            raise TypeError(f"video must be an index, a file name or a video object, got {sel!r}")
        if isinstance(sel, (int, np.integer, str, os.PathLike)):
            index = _select_video(listing, sel, where)
        else:
            index = _index_of_video_object(sel, listing, labels_obj, where)
        if index not in chosen:
            chosen.append(index)
    return chosen


def _index_of_video_object(video, listing, labels_obj, where: Path | None) -> int:
    """Index of a video object: itself in the open labels, else the video with its file name."""
    from dlc_lookagain.io.sleap import _select_video

    if labels_obj is not None:
        for i, candidate in enumerate(labels_obj.videos):
            if candidate is video:
                return i
    filename = _video_filename(video)
    if not filename:
        raise PoseFormatError(where, f"video {video!r} has no file name and is not one of the project's "
                                     "videos")
    try:
        return _select_video(listing, filename, where)
    except PoseFormatError:
        # A full path that matches by name only in another folder is still this project's video.
        return _select_video(listing, Path(filename.replace("\\", "/")).name, where)


def _keep_only_video(labels, index: int) -> None:
    """Reduce freshly loaded sleap-io labels to one video (its frames, suggestions and events)."""
    video = labels.videos[index]
    labels.labeled_frames = [lf for lf in labels.labeled_frames if lf.video is video]
    labels.suggestions = [sf for sf in labels.suggestions if sf.video is video]
    if hasattr(labels, "events"):
        labels.events = [ev for ev in labels.events if getattr(ev, "video", None) is video]
    labels.sessions = []  # multi-camera sessions refer to several videos
    labels.videos = [video]


def _absolute_videos(labels, folder: Path | None) -> None:
    """Point every video of a copy saved elsewhere at its file as seen from the user's labels folder.

    A relative or stale stored path is resolved the way :func:`dlc_lookagain.io.sleap.read_slp`
    resolves it for the user's file; the stored frame count, size and fps are kept.
    """
    from dlc_lookagain.io.paths import absolute_path, resolve_moved_path

    for video in labels.videos:
        stored = video.filename
        if not isinstance(stored, str) or not stored:
            continue  # image sequences: read_slp attaches no video to them anyway
        meta = video.backend_metadata or {}
        if meta.get("filename") == "." or meta.get("has_embedded_images"):
            continue
        if folder is not None:
            found = resolve_moved_path(stored, folder, folder.parent)
        else:
            found = absolute_path(stored) if Path(stored).is_file() else None
        if found is None:
            logger.info("video %s not found; its behaviors come from keypoints only", stored)
            continue
        found = str(absolute_path(found))
        if found != stored:
            keep = {k: meta[k] for k in ("shape", "grayscale", "fps") if k in meta}
            video.replace_filename(found, open=False)  # drops the stored shape/fps ...
            video.backend_metadata.update(keep)  # ... which still describe this same video


def _prepare_inputs(where: Path | None, labels_obj, video, has_changes, tmp: Path) -> list[_Input]:
    """The pose files to analyze: the user's file itself, or temporary copies (one per video)."""
    use_file = labels_obj is None or (
        has_changes is False and where is not None and where.suffix.lower() == ".slp" and where.is_file()
    )
    if use_file:
        source = where
    else:
        source = tmp / "snapshot" / "labels.slp"
        _save_snapshot(labels_obj, source, where)
    listing = _load_slp(source, where, lazy=True)
    n_videos = len(listing.videos)
    if n_videos == 0:
        raise PoseFormatError(where, "the labels list no video, so there is nothing to analyze; "
                                     "add the video in SLEAP first")
    indices = _video_indices(video, listing, labels_obj, where)
    videos = list(listing.videos)
    listing_close = getattr(listing, "close", None)
    if callable(listing_close):
        listing_close()
    if use_file and n_videos == 1:
        return [_Input(where, temporary=False)]  # read as it is, never written

    if where is not None:
        base = where.name[: -len(".slp")] if where.name.lower().endswith(".slp") else where.stem
    else:
        base = _video_stem(videos[0]) if n_videos == 1 else "untitled"
    inputs = []
    for index in indices:
        # SLEAP's own per-video export names: <labels>.<NNN>_<video stem>.analysis.h5
        name = base if n_videos == 1 else f"{base}.{index:03d}_{_video_stem(videos[index])}"
        labels = _load_slp(source, where)
        if n_videos > 1:
            _keep_only_video(labels, index)
        _absolute_videos(labels, where.parent if where is not None else None)
        # A fixed provenance keeps the copy byte-identical between exports of unchanged labels, so
        # analyze sees unchanged inputs and skips the recording.
        labels.provenance = {k: v for k, v in dict(labels.provenance or {}).items() if k != "filename"}
        if where is not None:
            labels.provenance["filename"] = str(where)
        path = tmp / f"{name}.slp"
        _save_snapshot(labels, path, where)
        inputs.append(_Input(path, temporary=True))
    return inputs


def export_from_labels(
    labels_or_path,
    video=None,
    *,
    top_k: float = DEFAULT_TOP_K,
    model=None,
    destfolder: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: bool = True,
    labels_path: str | os.PathLike | None = None,
    has_changes: bool | None = None,
    **analyze_options,
) -> list:
    """Label behaviors in a SLEAP project and write them beside it, as PredictedEvents and tables.

    Parameters
    ----------
    labels_or_path : str, path-like, sleap_io.Labels or sleap.Labels
        A SLEAP ``.slp`` (or ``.analysis.h5``, see :func:`export_analysis_h5`), or labels open in
        Python or in SLEAP's GUI (``window.labels``; any object with ``videos``,
        ``labeled_frames`` and a ``save`` method is accepted). Open labels are saved to a
        temporary ``.slp`` and analyzed from there, so unsaved changes are included; the user's
        file is never written.
    video : int, str, path-like, video object or list of these, optional
        Which videos of a multi-video project: an index, a video file name / stem / path, or a
        video object of ``labels_or_path`` (``window.state["video"]``). Default: every video.
    top_k : float
        Fraction of frames the vision encoder looks at (0 = keypoints only, 1 = every frame).
    model : path or LookAgainModel, optional
        Default: the newest model trained for this project (``<project>/lookagain/models``),
        else the bundled one.
    destfolder : path-like, optional
        Where the behavior files go; default the folder of the labels file. Required for labels
        that were never saved.
    overwrite : bool
        Recompute even when the behavior files are up to date.
    progress : bool
        Show progress bars.
    labels_path : path-like, optional
        Where open labels are saved (SLEAP's ``window.state["filename"]``); default the
        ``filename`` in their provenance.
    has_changes : bool, optional
        Whether open labels differ from ``labels_path`` (``window.state["has_changes"]``).
        False lets the file itself be read; None (default, unknown) or True saves a temporary
        copy of the open labels.
    **analyze_options
        Passed on to :func:`dlc_lookagain.pipeline.analyze` (``min_bout_s``, ``figures``,
        ``exports`` ...).

    Returns
    -------
    list of RecordingSummary
        One per video, ``outputs`` holding the written files. ``pose_file`` is the user's labels
        file (for never-saved labels: the ``.behaviors.slp`` written).

    Raises
    ------
    PoseFormatError
        The file cannot be read, is not a SLEAP file, ``video`` matches no video, the labels
        were never saved and no ``destfolder`` is given, or every selected video failed (the
        message names the file).
    TypeError
        ``labels_or_path`` is neither a path nor a labels object.

    Notes
    -----
    A project with one video gives ``<name>_behaviors.csv``, ``<name>_behaviors.h5``,
    ``<name>_bouts.csv`` and ``<name>.behaviors.slp`` (``<name>`` = the labels file name without
    ``.slp``; for never-saved labels the video's stem). With several videos each selected video
    gets its own set, named like SLEAP's per-video analysis exports:
    ``<name>.<NNN>_<video stem>_behaviors.csv`` ..., whose ``.behaviors.slp`` holds that video's
    labels and events.
    """
    from dlc_lookagain.pipeline import RecordingSummary, analyze, check_top_k

    check_top_k(top_k)  # before a temporary copy of the labels is written
    where, labels_obj = _as_source(labels_or_path, labels_path)
    if labels_obj is None:
        from dlc_lookagain.io.main import detect_pose_format

        fmt = detect_pose_format(where)  # missing file, folder, unknown type: PoseFormatError
        if fmt == "sleap-analysis-h5":
            return export_analysis_h5(where, video, top_k=top_k, model=model, destfolder=destfolder,
                                      overwrite=overwrite, progress=progress, **analyze_options)
        if fmt != "sleap-slp":
            raise PoseFormatError(where, "is not a SLEAP file (.slp or .analysis.h5); for DeepLabCut "
                                         "files use dlc_lookagain.analyze or `dlc-lookagain analyze`")
    if destfolder is not None:
        from dlc_lookagain.io.paths import absolute_path

        dest = absolute_path(Path(destfolder).expanduser())
        dest.mkdir(parents=True, exist_ok=True)
    elif where is not None:
        dest = where.parent
    else:
        raise PoseFormatError(None, "these labels were never saved, so there is no folder to write the "
                                    "behavior files to: pass destfolder= (or save the project first)")
    anchor = where.parent if where is not None else dest  # where <project>/lookagain/ lives

    with tempfile.TemporaryDirectory(prefix="lookagain-sleap-", ignore_cleanup_errors=True) as tmp_name:
        tmp = Path(tmp_name)
        inputs = _prepare_inputs(where, labels_obj, video, has_changes, tmp)
        summaries = []
        for item in inputs:
            shown = where if where is not None else dest / f"{item.path.stem}.behaviors.slp"
            try:
                # workspace: models, the vision cache and replaced outputs live in the user's project,
                # not beside the temporary copy.
                result = analyze(item.path, destfolder=dest, top_k=top_k, model=model, overwrite=overwrite,
                                 workspace=anchor, progress=progress, **analyze_options)
            except PoseFormatError as exc:
                if not item.temporary:
                    raise
                problem = exc.problem.replace(str(item.path), item.path.name)
                if len(inputs) == 1:
                    raise PoseFormatError(shown, problem) from exc
                error = PoseFormatError(shown, f"{item.path.stem}: {problem}")
                logger.error("%s (skipped)", error)
                summaries.append(RecordingSummary.failed(shown, str(error)))
                continue
            for summary in result:
                if item.temporary:
                    summary.error = summary.error.replace(str(item.path), str(shown))
                    summary.pose_file = shown
                summaries.append(summary)
    if summaries and all(s.error for s in summaries):
        raise PoseFormatError(summaries[0].pose_file, f"no video could be analyzed: {summaries[0].error}")
    return summaries


def export_analysis_h5(
    path: str | os.PathLike,
    video: str | os.PathLike | None = None,
    *,
    top_k: float = DEFAULT_TOP_K,
    model=None,
    destfolder: str | os.PathLike | None = None,
    overwrite: bool = False,
    progress: bool = True,
    **analyze_options,
) -> list:
    """Label behaviors in a SLEAP analysis HDF5 export (File > Export Analysis HDF5... in SLEAP).

    Parameters
    ----------
    path : str or path-like
        The ``.analysis.h5`` file (one video).
    video : str or path-like, optional
        The recording's video, when the path stored in the file is stale and no video named
        like the file sits beside it. Default: found automatically.
    top_k, model, destfolder, overwrite, progress, **analyze_options
        As in :func:`dlc_lookagain.pipeline.analyze`.

    Returns
    -------
    list of RecordingSummary
        One summary; ``outputs`` holds ``<stem>_behaviors.csv``, ``<stem>_behaviors.h5`` and
        ``<stem>_bouts.csv`` (no ``.behaviors.slp``: an analysis file is not a labels project).

    Raises
    ------
    PoseFormatError
        The file is missing, unreadable, or not a SLEAP analysis export (the message names it).
    """
    from dlc_lookagain.io.main import detect_pose_format
    from dlc_lookagain.pipeline import analyze

    path = Path(path).expanduser()
    fmt = detect_pose_format(path)
    if fmt != "sleap-analysis-h5":
        what = {
            "sleap-slp": "it is a SLEAP labels project; use export_from_labels (or dlc-lookagain analyze)",
            "dlc-h5": "it has no 4-axis 'tracks' dataset (a DeepLabCut .h5?)",
            "dlc-csv": "it is a CSV table (a DeepLabCut .csv?)",
        }.get(fmt, fmt)
        raise PoseFormatError(path, f"not a SLEAP analysis HDF5 export: {what}. In SLEAP, File > Export "
                                    "Analysis HDF5... writes one")
    if video is not None and not isinstance(video, (str, os.PathLike)):
        raise TypeError(f"{path}: video must be the path of the recording's video file, got {video!r}")
    return analyze(path, videos=video, destfolder=destfolder, top_k=top_k, model=model, overwrite=overwrite,
                   progress=progress, **analyze_options)


# --------------------------------------------------------------------------- SLEAP GUI


def _qt():
    """``(QtCore, QtGui, QtWidgets)`` through qtpy, as SLEAP uses them."""
    try:
        from qtpy import QtCore, QtGui, QtWidgets
    except (ImportError, RuntimeError) as exc:  # qtpy raises QtBindingsNotFoundError without a binding
        raise ImportError("the SLEAP menu action needs Qt through qtpy (SLEAP installs both): "
                          f"{INSTALL_HINT} ({exc})") from exc
    return QtCore, QtGui, QtWidgets


def _enum(owner, group: str, name: str):
    """A Qt enum value under Qt 5 (``Qt.WaitCursor``) and Qt 6 (``Qt.CursorShape.WaitCursor``)."""
    scoped = getattr(owner, group, None)
    return getattr(scoped, name) if scoped is not None and hasattr(scoped, name) else getattr(owner, name)


class _QtDialogs:
    """The questions and messages of the menu action, as Qt dialogs over the SLEAP window.

    Qt is imported at the first question, so wiring the menu item imports nothing.
    """

    def __init__(self, window):
        self.window = window

    @property
    def QtCore(self):  # noqa: N802 - Qt module names
        return _qt()[0]

    @property
    def QtGui(self):  # noqa: N802
        return _qt()[1]

    @property
    def QtWidgets(self):  # noqa: N802
        return _qt()[2]

    def ask_top_k(self, default: float) -> float | None:
        value, ok = self.QtWidgets.QInputDialog.getDouble(
            self.window, _TITLE, "Fraction of frames to look at (0 = keypoints only, 1 = every frame):",
            float(default), 0.0, 1.0, 2,
        )
        return float(value) if ok else None

    def ask_videos(self, current: str, n_videos: int) -> str | None:
        items = [f"Current video ({current})", f"All {n_videos} videos"]
        item, ok = self.QtWidgets.QInputDialog.getItem(self.window, _TITLE, "Export behaviors of:", items, 0,
                                                       False)
        if not ok:
            return None
        return "all" if item == items[1] else "current"

    def ask_folder(self) -> str | None:
        folder = self.QtWidgets.QFileDialog.getExistingDirectory(
            self.window, "The project is not saved: folder for the behavior files")
        return folder or None

    @contextlib.contextmanager
    def busy(self, message: str):
        app = self.QtWidgets.QApplication
        app.setOverrideCursor(self.QtGui.QCursor(_enum(self.QtCore.Qt, "CursorShape", "WaitCursor")))
        status = self.window.statusBar() if callable(getattr(self.window, "statusBar", None)) else None
        if status is not None:
            status.showMessage(message)
        app.processEvents()
        try:
            yield
        finally:
            app.restoreOverrideCursor()
            if status is not None:
                status.clearMessage()

    def info(self, text: str) -> None:
        self.QtWidgets.QMessageBox.information(self.window, _TITLE, text)

    def error(self, text: str) -> None:
        self.QtWidgets.QMessageBox.critical(self.window, _TITLE, text)


def _plain(text) -> str:
    return str(text).replace("&", "").strip().rstrip(".").strip().lower()


def _file_menu(window):
    """The File menu of a window's menu bar (created if there is none)."""
    bar = window.menuBar()
    for action in bar.actions():
        menu = action.menu() if callable(getattr(action, "menu", None)) else None
        if menu is not None and _plain(action.text()) == "file":
            return menu
    return bar.addMenu("File")


def _quit_action(window, menu):
    actions = list(menu.actions())
    known = getattr(window, "_menu_actions", {}).get("close") if isinstance(
        getattr(window, "_menu_actions", None), dict) else None
    if known is not None and any(a is known or a == known for a in actions):
        return known
    for action in actions:
        if _plain(action.text()) in ("quit", "exit"):
            return action
    return None


def _state(window, key):
    state = getattr(window, "state", None)
    if state is None:
        return None
    try:
        return state[key]
    except (KeyError, TypeError, IndexError):
        return None


def _window_labels(window):
    labels = getattr(window, "labels", None)
    return labels if labels is not None else _state(window, "labels")


def _report(summaries) -> tuple[str, bool]:
    """Message text listing each video's files, and whether any video failed."""
    lines, failed = [], False
    for s in summaries:
        name = Path(s.pose_file).name
        if s.error:
            failed = True
            lines.append(f"{name}: failed: {s.error}")
            continue
        head = (f"{name}: up to date, nothing recomputed" if s.skipped
                else f"{name}: {s.n_frames} frames, looked at {100 * s.looked_fraction:.0f}% of them")
        lines.append(head)
        lines += [f"    {p}" for p in s.outputs.values()]
    return "Behavior files:\n" + "\n".join(lines), failed


def _export_from_window(window, ui) -> list | None:
    """What the menu item does: ask, export the open labels, report. Returns the summaries (None: not run)."""
    labels = _window_labels(window)
    videos = list(getattr(labels, "videos", None) or []) if labels is not None else []
    if not videos:
        ui.error("Open a SLEAP project with at least one video first.")
        return None
    filename = _state(window, "filename")
    destfolder = None
    if not filename or not Path(filename).parent.is_dir():
        destfolder = ui.ask_folder()
        if not destfolder:
            return None
    top_k = ui.ask_top_k(DEFAULT_TOP_K)
    if top_k is None:
        return None
    current = _state(window, "video")
    video = current
    if current is None:
        video = None
    elif len(videos) > 1:
        choice = ui.ask_videos(Path(_video_filename(current)).name, len(videos))
        if choice is None:
            return None
        video = None if choice == "all" else current
    has_changes = _state(window, "has_changes") if filename else None
    try:
        with ui.busy("LookAgain: labeling behaviors..."):
            summaries = export_from_labels(
                labels, video, top_k=top_k, labels_path=filename or None,
                has_changes=None if has_changes is None else bool(has_changes),
                destfolder=destfolder, progress=False,
            )
    except Exception as exc:  # noqa: BLE001 - the GUI must show any failure instead of losing it
        logger.exception("LookAgain export failed")
        ui.error(f"LookAgain could not export behaviors:\n\n{exc}")
        return None
    text, failed = _report(summaries)
    (ui.error if failed else ui.info)(text)
    return summaries


def add_export_action(window, *, ui=None):
    """Add File > "Export behaviors (LookAgain)..." to a SLEAP ``MainWindow``.

    The item asks for ``top_k`` (and, in a multi-video project, whether to export the current
    video or all), runs :func:`export_from_labels` on ``window.labels`` with
    ``window.state["video"]`` under a wait cursor, then lists the written files or shows the
    error. It goes before File > Quit, else at the end of the File menu. Wiring a window twice
    adds it once.

    Parameters
    ----------
    window : sleap.gui.app.MainWindow
        Or any Qt main window with ``labels`` and a ``state`` mapping (``"filename"``,
        ``"has_changes"``, ``"video"``), as SLEAP 1.3 to 1.6 have.
    ui : object, optional
        The dialogs (``ask_top_k``, ``ask_videos``, ``ask_folder``, ``busy``, ``info``, ``error``);
        default Qt dialogs over ``window``, imported through qtpy.

    Returns
    -------
    QAction
        The menu item.

    Notes
    -----
    Qt is imported through qtpy (as SLEAP does) only when the item is used.
    """
    menu = _file_menu(window)
    for action in menu.actions():
        if callable(getattr(action, "objectName", None)) and action.objectName() == ACTION_NAME:
            return action
    ui = ui if ui is not None else _QtDialogs(window)
    action = menu.addAction(ACTION_TEXT)
    action.setObjectName(ACTION_NAME)
    action.setStatusTip("Label behaviors in this project with LookAgain and write them beside it "
                        "(<name>.behaviors.slp, _behaviors.csv, _bouts.csv)")
    action.triggered.connect(lambda *_: _export_from_window(window, ui))
    quit_action = _quit_action(window, menu)
    if quit_action is not None:
        menu.insertAction(quit_action, action)  # moves it before Quit
        menu.insertSeparator(quit_action)
    menu_actions = getattr(window, "_menu_actions", None)
    if isinstance(menu_actions, dict):
        menu_actions[MENU_KEY] = action
    return action


def launch(argv: list[str] | None = None) -> int:
    """Start SLEAP's labeling GUI as ``sleap-label`` does, with File > "Export behaviors (LookAgain)...".

    Console script ``dlc-lookagain-sleap [labels.slp] [sleap-label options]``: the arguments go
    to ``sleap.gui.app.main`` unchanged. Every main window SLEAP opens while it runs (File > New
    Project too) gets the menu item.

    Parameters
    ----------
    argv : list of str, optional
        The arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit code (0 when the window was closed).

    Raises
    ------
    SystemExit
        SLEAP (or its Qt) is not installed; the message says what to install.
    """
    try:
        from sleap.gui import app as sleap_app
    except ImportError as exc:
        raise SystemExit(
            f"dlc-lookagain-sleap needs the SLEAP GUI, which cannot be imported here ({exc}). Install it "
            f"with {INSTALL_HINT} (SLEAP >= 1.6.4), or install SLEAP as https://sleap.ai describes into this "
            "environment."
        ) from exc
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    window_class = sleap_app.MainWindow
    # The class itself cannot be swapped for a subclass: SLEAP's methods call
    # ``super(MainWindow, self)``, which would then find the subclass again and recurse. Its
    # ``__init__`` is wrapped instead, for as long as the GUI runs.
    own_init = window_class.__dict__.get("__init__")
    original_init = window_class.__init__

    @functools.wraps(original_init)
    def init_with_export_action(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        try:
            add_export_action(self)
        except Exception:  # noqa: BLE001 - SLEAP must still open without the item
            logger.exception("could not add %r to SLEAP's File menu", ACTION_TEXT)

    args = list(sys.argv[1:] if argv is None else argv)
    window_class.__init__ = init_with_export_action
    try:
        if inspect.signature(sleap_app.main).parameters:
            result = sleap_app.main(args)
        else:  # SLEAP <= 1.2: main() parses sys.argv itself
            saved = sys.argv
            sys.argv = [saved[0] if saved else "dlc-lookagain-sleap", *args]
            try:
                result = sleap_app.main()
            finally:
                sys.argv = saved
    finally:
        if own_init is None:
            del window_class.__init__
        else:
            window_class.__init__ = own_init
    return result if isinstance(result, int) else 0
