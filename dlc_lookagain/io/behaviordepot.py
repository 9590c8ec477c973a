"""BehaviorDEPOT label files: the ``hBehavior`` struct of an ``hB_*.mat`` (MATLAB v7.3/HDF5 via h5py,
older v5 files via scipy), read into :class:`~dlc_lookagain.io.behavior_labels.BehaviorLabels`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
import numpy as np
import scipy.io

from dlc_lookagain.errors import PoseFormatError
from dlc_lookagain.io.behavior_labels import _ACCEPTED, ALL_INDIVIDUALS, BehaviorLabels, _bouts_to_mask

logger = logging.getLogger(__name__)


def _read_behaviordepot(
    path: Path, head: bytes, *, n_frames: int | None, fps: float | None
) -> BehaviorLabels:
    """Read a BehaviorDEPOT ``hBehavior`` struct (v7.3 via h5py, older .mat via scipy)."""
    if h5py.is_hdf5(path):
        behs, meta = _hbehavior_from_hdf5(path)
    elif head.startswith(b"MATLAB"):
        behs, meta = _hbehavior_from_mat5(path)
    else:
        raise PoseFormatError(path, "looks like HDF5 but h5py cannot open it. " + _ACCEPTED)
    if not behs:
        raise PoseFormatError(path, "no behavior struct with 'Vector' or 'Bouts' found (expected a "
                                    "BehaviorDEPOT hBehavior file). " + _ACCEPTED)
    total = meta.get("TotalFrames")
    if fps is None and meta.get("FrameRate"):
        fps = float(meta["FrameRate"])
    if fps is None:
        fps = _behaviordepot_frame_rate(path)

    names, columns = [], []
    for name, parts in behs.items():
        vector, bouts = parts.get("Vector"), parts.get("Bouts")
        if bouts is not None:
            if bouts.size and (bouts.ndim != 2 or bouts.shape[1] != 2):
                raise PoseFormatError(path, f"{name}/Bouts has shape {bouts.shape}; "
                                            f"expected [start stop] pairs")
            bouts = bouts.reshape(-1, 2)
            if bouts.size and (np.any(bouts != np.round(bouts)) or bouts.min() < 1):
                raise PoseFormatError(path, f"{name}/Bouts must hold 1-based frame numbers")
        if vector is not None:
            v = vector.ravel()
            if not np.isin(v, (0, 1)).all():
                raise PoseFormatError(path, f"{name}/Vector holds values other than 0/1")
            vec = v.astype(bool)
            if bouts is not None:
                # BehaviorDEPOT bouts are 1-based and inclusive: frames s-1 .. e-1 in Python.
                t_chk = max(len(vec), int(bouts[:, 1].max()) if bouts.size else 0)
                from_bouts = _bouts_to_mask(np.zeros(len(bouts), dtype=np.int64), bouts[:, 0] - 1,
                                            bouts[:, 1] - 1, 1, t_chk)[0]
                diff = int((np.pad(vec, (0, t_chk - len(vec))) != from_bouts).sum())
                if diff:
                    logger.warning("%s: %s Vector and Bouts disagree on %d frame(s); using Vector", path,
                                   name, diff)
        elif bouts is not None:
            t_b = int(total or n_frames or (bouts[:, 1].max() if bouts.size else 0))
            b = bouts[bouts[:, 0] <= t_b].astype(np.int64)
            vec = _bouts_to_mask(np.zeros(len(b), dtype=np.int64), b[:, 0] - 1, np.minimum(b[:, 1], t_b) - 1,
                                 1, t_b)[0]
        else:
            continue
        names.append(name)
        columns.append(vec)

    if not names:
        raise PoseFormatError(path, "no behavior holds a 'Vector' or 'Bouts'")
    lengths = {len(c) for c in columns}
    t = max(lengths)
    if len(lengths) > 1:
        logger.warning("%s: behavior vectors have different lengths %s; shorter ones padded with 0", path,
                       sorted(lengths))
    if total is not None and int(total) != t:
        logger.warning("%s: TotalFrames is %d but the behavior vectors have %d frames", path, int(total), t)
    present = np.zeros((t, 1, len(names)), dtype=bool)
    for j, c in enumerate(columns):
        present[: len(c), 0, j] = c
    annotated = np.ones((t, 1), dtype=bool)
    return BehaviorLabels(names, [ALL_INDIVIDUALS], present, annotated, fps, path, "behaviordepot")


def _behaviordepot_frame_rate(path: Path) -> float | None:
    """Frame rate from BehaviorDEPOT's ``<video>_analyzed/Params.mat`` beside the label file, if any.

    The hB label file itself stores no fps; BehaviorDEPOT's analysis folder of the
    same session records the video's (``Params.Video.frameRate``).
    """
    params = sorted(path.parent.glob("*_analyzed/Params.mat"))
    if len(params) != 1:
        return None
    try:
        mat = scipy.io.loadmat(params[0], squeeze_me=True, struct_as_record=False)
        rate = float(mat["Params"].Video.frameRate)
    except Exception as exc:  # any unreadable Params.mat just means "fps unknown"
        logger.debug("%s: no frame rate read from %s: %s", path, params[0], exc)
        return None
    if not np.isfinite(rate) or rate <= 0:
        return None
    logger.info("%s: fps %.6g taken from %s", path, rate, params[0])
    return rate


def _hbehavior_from_hdf5(path: Path) -> tuple[dict, dict]:
    def read(ds) -> np.ndarray:
        if ds.attrs.get("MATLAB_empty", 0):
            return np.zeros((0, 2))
        return np.asarray(ds[()], dtype=float)

    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise PoseFormatError(path, f"cannot open as HDF5/MATLAB v7.3: {exc}") from exc
    with f:
        # hBehavior from convertHumanAnnotations; any other top-level struct of the same shape
        # (BehaviorDEPOT's own Behavior.mat) is accepted too.
        tops = ["hBehavior"] + [k for k in f.keys() if k != "hBehavior" and not k.startswith("#")]
        for top in tops:
            grp = f.get(top)
            if not isinstance(grp, h5py.Group):
                continue
            behs, meta = {}, {}
            # h5py lists members alphabetically; MATLAB keeps the struct's field order in an attribute.
            order = [k for k in _matlab_field_order(grp) if k in grp] or list(grp.keys())
            for key in order:
                obj = grp[key]
                if isinstance(obj, h5py.Group) and ("Vector" in obj or "Bouts" in obj):
                    parts = {}
                    if "Vector" in obj:
                        parts["Vector"] = read(obj["Vector"]).ravel()
                    if "Bouts" in obj:
                        b = read(obj["Bouts"])
                        # MATLAB is column-major: an n-by-2 matrix is stored as (2, n).
                        parts["Bouts"] = b.T if b.ndim == 2 and b.size else np.zeros((0, 2))
                    behs[key] = parts
                elif isinstance(obj, h5py.Dataset) and key in ("TotalFrames", "FrameRate") and obj.size == 1:
                    meta[key] = float(np.asarray(obj[()]).ravel()[0])
            if behs:
                return behs, meta
    return {}, {}


def _matlab_field_order(grp) -> list[str]:
    """Field names of a MATLAB v7.3 struct in their MATLAB order (``MATLAB_fields`` attribute), or []."""
    fields = grp.attrs.get("MATLAB_fields")
    if fields is None:
        return []
    out = []
    for f in np.atleast_1d(fields):
        chars = np.atleast_1d(f)
        raw = b"".join(c if isinstance(c, bytes) else bytes(c) for c in chars)
        out.append(raw.decode("utf-8", "replace"))
    return out


def _hbehavior_from_mat5(path: Path) -> tuple[dict, dict]:
    from scipy.io import loadmat

    try:
        mat = loadmat(path, simplify_cells=True)
    except Exception as exc:  # scipy raises several types for corrupt files
        raise PoseFormatError(path, f"cannot read MATLAB file: {exc}") from exc
    tops = ["hBehavior"] + [k for k in mat if k != "hBehavior" and not k.startswith("__")]
    for top in tops:
        st = mat.get(top)
        if not isinstance(st, dict):
            continue
        behs, meta = {}, {}
        for key, val in st.items():
            if isinstance(val, dict) and ("Vector" in val or "Bouts" in val):
                parts = {}
                if "Vector" in val:
                    parts["Vector"] = np.asarray(val["Vector"], dtype=float).ravel()
                if "Bouts" in val:
                    b = np.asarray(val["Bouts"], dtype=float)
                    parts["Bouts"] = b.reshape(-1, 2) if b.size else np.zeros((0, 2))
                behs[key] = parts
            elif key in ("TotalFrames", "FrameRate") and np.size(val) == 1:
                meta[key] = float(np.asarray(val).ravel()[0])
        if behs:
            return behs, meta
    return {}, {}
