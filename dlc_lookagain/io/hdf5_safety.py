"""Refuse HDF5 files whose pickles would run code when pandas reads them.

pandas reads HDF5 through PyTables, and PyTables unpickles two things on the way:

* node attributes stored as a byte string that ends with ``.`` (pickle's STOP opcode): pandas keeps
  its table layout there (``non_index_axes``, ``info``, ``values_block_0_kind``, ...), so every DLC
  ``.h5`` has a few of them;
* ``VLArray`` datasets of Python objects (``PSEUDOATOM = object``): pandas' fixed format stores
  string columns that way (our own ``_behaviors.h5`` does).

A pickle can name any importable function and call it (``posix.system``): a pose file shared
between labs or downloaded with a paper must not be able to do that. :func:`check_hdf5_pickles`
opens the file with h5py (which unpickles nothing), loads every such pickle with an unpickler that
only knows the builtins and NumPy array reconstruction, and raises :class:`PoseFormatError` naming
the file, the node and the code it names if any pickle needs more. Only then may pandas read it:
what PyTables will unpickle is exactly what was checked.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from dlc_lookagain.errors import PoseFormatError

__all__ = ["check_hdf5_pickles"]

#: What a pickle written by pandas/PyTables for a pose or behavior table needs: containers and
#: NumPy arrays. Everything else is refused.
ALLOWED_GLOBALS = frozenset({
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "complex"), ("builtins", "slice"),
    ("collections", "OrderedDict"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
})


class _Refused(pickle.UnpicklingError):
    """A pickle names a global outside :data:`ALLOWED_GLOBALS`."""


class _CheckingUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise _Refused(f"{module}.{name}")

    def persistent_load(self, pid):
        raise _Refused(f"persistent id {pid!r}")


def _refusal(data: bytes) -> str | None:
    """What a pickle would call that we do not allow, or None when it is harmless.

    Any other failure (not a pickle at all, truncated, a bad opcode) happens at the same byte in
    the real unpickler before it reaches a disallowed global, so it can run nothing either.
    """
    try:
        _CheckingUnpickler(io.BytesIO(data)).load()
    except _Refused as exc:
        return str(exc)
    except Exception:  # not a pickle, or a broken one: PyTables keeps the raw value / fails itself
        return None
    return None


def _attribute_pickles(value):
    """Byte strings in an attribute value that PyTables may unpickle (those ending in ``.``)."""
    if isinstance(value, str):
        value = value.encode("utf-8", "surrogateescape")
    if isinstance(value, (bytes, np.bytes_)):
        if bytes(value).endswith(b"."):
            yield bytes(value)
    elif isinstance(value, np.ndarray) and value.dtype.kind in "SOU":
        for item in value.ravel():
            yield from _attribute_pickles(item)


def check_hdf5_pickles(path: str | Path) -> None:
    """Raise :class:`PoseFormatError` if reading ``path`` with pandas could run code.

    Parameters
    ----------
    path : str or Path
        An HDF5 file about to be read with ``pandas.HDFStore``.

    Raises
    ------
    PoseFormatError
        The file holds a pickle naming a function or class outside the builtins and NumPy
        arrays (a pose or behavior table never does), or it cannot be opened as HDF5.
    """
    import h5py

    path = Path(path)
    try:
        h5 = h5py.File(path, "r")
    except Exception as exc:  # h5py raises OSError and a few others for damaged files
        raise PoseFormatError(path, f"cannot be opened as HDF5 (truncated or corrupt file?): {exc}") from exc

    def refuse(where: str, what: str):
        raise PoseFormatError(
            path, f"{where} holds a pickle that would run {what} when read; refusing to read this file "
            "(a pose or behavior table never needs code). If it comes from someone else, ask them for "
            "the CSV export; if it is yours, re-export it from DeepLabCut/SLEAP.")

    def visit(name: str, node) -> None:
        where = f"HDF5 node '/{name}'" if name else "HDF5 root"
        for key in node.attrs.keys():
            try:
                value = node.attrs[key]
            except Exception:  # an attribute type h5py cannot read; PyTables reads none of those as pickles
                continue
            for data in _attribute_pickles(value):
                what = _refusal(data)
                if what is not None:
                    refuse(f"attribute '{key}' of {where}", what)
        if isinstance(node, h5py.Dataset) and _attr_text(node, "PSEUDOATOM") == "object":
            for row in node:
                what = _refusal(np.asarray(row, dtype=np.uint8).tobytes())
                if what is not None:
                    refuse(f"object array {where}", what)

    with h5:
        visit("", h5)
        h5.visititems(visit)


def _attr_text(node, key: str) -> str | None:
    value = node.attrs.get(key)
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("ascii", "replace")
    return value if isinstance(value, str) else None
