"""A hostile HDF5 file must not run code when we read it (issue 14, item 1).

pandas reads HDF5 through PyTables, which unpickles attributes ending in ``.`` and object arrays.
Each test plants a pickle that would create a marker file, checks in a subprocess that plain pandas
really runs it (so the test would fail without our check), then checks that our readers refuse the
file with a clear error and that the marker never appears.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from dlc_lookagain.cli import main as cli_main
from dlc_lookagain.errors import PoseFormatError
from dlc_lookagain.io import load_pose
from dlc_lookagain.io.annotations import read_behaviors, write_annotations
from dlc_lookagain.io.hdf5_safety import check_hdf5_pickles

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


class _Touch:
    """Unpickling calls ``os.system("touch <marker>")`` (a stand-in for anything worse)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def _dlc_h5(path: Path, n: int = 20) -> Path:
    columns = pd.MultiIndex.from_product([["DLC_resnet50_demo"], ["nose", "tail"], ["x", "y", "likelihood"]],
                                         names=["scorer", "bodyparts", "coords"])
    rng = np.random.default_rng(0)
    values = rng.uniform(10, 100, (n, 6))
    values[:, 2::3] = 0.9
    pd.DataFrame(values, columns=columns).to_hdf(path, key="df_with_missing", format="table", mode="w")
    return path


def _pandas_runs_it(path: Path, marker: Path) -> bool:
    """Read the file with plain pandas in a subprocess: does the planted pickle run?"""
    code = (f"import pandas as pd\nwith pd.HDFStore({str(path)!r}, mode='r') as store:\n"
            "    for key in store.keys():\n"
            "        try:\n            store.get(key)\n        except Exception:\n            pass\n")
    subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, timeout=120)
    return marker.exists()


def test_genuine_dlc_h5_passes_the_check(tmp_path):
    path = _dlc_h5(tmp_path / "videoDLC_resnet50_demo.h5")
    check_hdf5_pickles(path)  # pandas' own pickles (layout lists and dicts) are harmless
    rec = load_pose(path, video=False)
    assert rec.bodyparts == ["nose", "tail"] and rec.n_frames == 20


def test_dlc_h5_with_code_in_an_attribute_is_refused(tmp_path):
    marker = tmp_path / "ran"
    path = _dlc_h5(tmp_path / "videoDLC_resnet50_demo.h5")
    with h5py.File(path, "r+") as h5:
        h5["df_with_missing/table"].attrs["non_index_axes"] = np.bytes_(pickle.dumps(_Touch(marker), protocol=0))
        h5["df_with_missing"].attrs["non_index_axes"] = np.bytes_(pickle.dumps(_Touch(marker), protocol=0))
    assert _pandas_runs_it(path, marker), "the planted pickle should run under plain pandas"
    marker.unlink()
    with pytest.raises(PoseFormatError) as err:
        load_pose(path, video=False)
    message = str(err.value)
    assert str(path) in message and "non_index_axes" in message and "system" in message
    assert not marker.exists()
    # The CLI says the same and runs nothing.
    assert cli_main(["inspect", str(path)]) != 0
    assert not marker.exists()


def test_our_behaviors_h5_with_code_in_an_object_array_is_refused(tmp_path):
    from test_io_annotations import make_prediction, make_record

    rec = make_record(tmp_path)
    out = write_annotations(rec, make_prediction())
    h5_path = out["behaviors_h5"]
    assert len(read_behaviors(h5_path)) > 0  # our own file reads
    marker = tmp_path / "ran"
    payload = np.frombuffer(pickle.dumps(_Touch(marker), protocol=2), np.uint8)
    with h5py.File(h5_path, "r+") as h5:
        objects = []
        h5.visititems(lambda name, node: objects.append(name) if isinstance(node, h5py.Dataset)
                      and node.attrs.get("PSEUDOATOM") == b"object" else None)
        assert objects, "pandas' fixed format stores string columns as pickled object arrays"
        for name in objects:
            h5[name][0] = payload
    assert _pandas_runs_it(h5_path, marker)
    marker.unlink()
    with pytest.raises(PoseFormatError, match="object array"):
        read_behaviors(h5_path)
    assert not marker.exists()


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data (real DLC files) not present")
def test_every_real_dlc_h5_passes_the_check():
    files = sorted(p for p in SHARED.rglob("*.h5") if "analysis" not in p.name)
    assert len(files) >= 10
    for path in files:
        check_hdf5_pickles(path)
