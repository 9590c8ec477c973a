"""DeepLabCut's ``_meta.pickle`` beside a pose file: fps, frame count and frame size.

The file is a pickle from the user's folder, so it is read by a restricted unpickler that builds
only plain data (:class:`_MetaUnpickler`: the containers and NumPy arrays that the HDF5 pickle
check allows, and plain stand-ins for ruamel.yaml scalars); every other class is refused and
nothing in the file can run code.
"""

from __future__ import annotations

import logging
import math
import pickle
import re
from pathlib import Path

import numpy as np

from dlc_lookagain.io.dlc_names import TRACK_METHOD_PREFERENCE, DLCOutputName
from dlc_lookagain.io.hdf5_safety import ALLOWED_GLOBALS

logger = logging.getLogger("dlc_lookagain.io.dlc")  # one logger for the DLC reader, as before the split


class _YamlFloat(float):
    """Stand-in for ruamel.yaml's ScalarFloat (DLC copies config values into the meta file)."""


class _YamlInt(int):
    """Stand-in for ruamel.yaml's integer scalars."""


class _YamlStr(str):
    """Stand-in for ruamel.yaml's string scalars."""


class _YamlDict(dict):
    """Stand-in for ruamel.yaml's CommentedMap."""


class _YamlList(list):
    """Stand-in for ruamel.yaml's CommentedSeq."""


_RUAMEL_STAND_INS = {
    "ScalarFloat": _YamlFloat, "ExponentialFloat": _YamlFloat, "ExponentialCapsFloat": _YamlFloat,
    "ScalarInt": _YamlInt, "BinaryInt": _YamlInt, "OctalInt": _YamlInt, "HexInt": _YamlInt,
    "HexCapsInt": _YamlInt, "DecimalInt": _YamlInt, "ScalarBoolean": _YamlInt,
    "ScalarString": _YamlStr, "PlainScalarString": _YamlStr, "LiteralScalarString": _YamlStr,
    "FoldedScalarString": _YamlStr, "SingleQuotedScalarString": _YamlStr,
    "DoubleQuotedScalarString": _YamlStr,
    "CommentedMap": _YamlDict, "CommentedOrderedMap": _YamlDict, "CommentedSeq": _YamlList,
}


class _MetaUnpickler(pickle.Unpickler):
    """Unpickler for DLC meta files that builds only plain data.

    DLC's ``_meta.pickle`` holds dicts, lists, numbers, strings, numpy values and
    ruamel.yaml scalars copied from the project config. The ruamel types are replaced by
    plain subclasses (so ruamel need not be installed) and every other class is refused,
    which keeps a stray or hostile pickle from running code.
    """

    _ALLOWED = ALLOWED_GLOBALS  # the same containers and NumPy arrays as pandas' HDF5 pickles

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        if module.startswith("ruamel.yaml") and name in _RUAMEL_STAND_INS:
            return _RUAMEL_STAND_INS[name]
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a DLC meta file")


def _meta_pickle_path(path: Path, name_info: DLCOutputName | None) -> Path | None:
    """Find DLC's ``_meta.pickle`` for a pose file (it lacks the ``_el``/``_filtered`` suffixes)."""
    candidates = []
    if name_info is not None:
        candidates.append(path.with_name(name_info.meta_pickle_name))
    candidates.append(path.with_name(f"{path.stem}_meta.pickle"))
    tracker = "|".join(TRACK_METHOD_PREFERENCE)
    bare = re.sub(rf"(?:_(?:{tracker}))?(?:_filtered)?$", "", path.stem)
    candidates.append(path.with_name(f"{bare}_meta.pickle"))
    return next((c for c in candidates if c.is_file()), None)


def _read_meta_fps(path: Path, name_info: DLCOutputName | None, metadata: dict, n_rows: int) -> float | None:
    """fps from DLC's meta pickle (and nframes/frame_dimensions into ``metadata``); None if unavailable."""
    meta_path = _meta_pickle_path(path, name_info)
    if meta_path is None:
        return None
    try:
        with open(meta_path, "rb") as handle:
            content = _MetaUnpickler(handle).load()
    except Exception as exc:  # a broken side file must not stop reading the pose itself
        logger.warning("%s: cannot read %s (%s: %s); continuing without fps",
                       path.name, meta_path.name, type(exc).__name__, exc)
        return None
    data = content.get("data") if isinstance(content, dict) else None
    if not isinstance(data, dict):
        logger.warning("%s: %s has no 'data' dictionary; continuing without fps", path.name, meta_path.name)
        return None
    metadata["meta_file"] = str(meta_path)
    nframes = data.get("nframes")
    if isinstance(nframes, (int, np.integer)) and not isinstance(nframes, bool):
        metadata["nframes"] = int(nframes)
        if int(nframes) != n_rows:
            logger.warning("%s: meta file says the video has %d frames, the pose table has %d rows",
                           path.name, int(nframes), n_rows)
    dims = data.get("frame_dimensions")
    if isinstance(dims, (tuple, list)) and len(dims) == 2:
        try:
            metadata["frame_dimensions"] = (int(dims[0]), int(dims[1]))  # (height, width), as DLC stores it
        except (TypeError, ValueError):
            logger.warning("%s: unusable frame_dimensions %r in %s", path.name, dims, meta_path.name)
    fps = data.get("fps")
    try:
        fps = float(fps)
    except (TypeError, ValueError):
        logger.warning("%s: %s has no usable fps (%r)", path.name, meta_path.name, fps)
        return None
    if not (math.isfinite(fps) and fps > 0):
        logger.warning("%s: %s has invalid fps %r", path.name, meta_path.name, fps)
        return None
    return fps
