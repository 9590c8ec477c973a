"""Tests of dlc_lookagain.sleap_hook: the SLEAP export core, the File-menu action and the launcher.

The core runs on copies of the sample project's SLEAP files (keypoints only, no figures, so each
export takes about a second). The menu action is tested on a fake window without Qt and, when
qtpy and a Qt binding are installed, on a real QMainWindow under the offscreen platform.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pandas as pd
import pytest
import sleap_io as sio

from dlc_lookagain import sleap_hook
from dlc_lookagain.errors import PoseFormatError
from dlc_lookagain.sleap_hook import (
    ACTION_TEXT, MENU_KEY, add_export_action, export_analysis_h5, export_from_labels,
)

SAMPLE = Path(__file__).resolve().parents[1] / "sample_project" / "videos"

pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _fast() -> dict:
    """Keypoints only, no progress bars and no figures: about a second per export."""
    from dlc_lookagain.pipeline import analyze

    options = {"top_k": 0.0, "progress": False}
    params = inspect.signature(analyze).parameters
    for name in ("figures", "plots"):
        if name in params:
            options[name] = False
    return options


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _copy_sample(folder: Path, n: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in (f"sample_00{n}.mp4", f"sample_00{n}.mp4.predictions.slp"):
        shutil.copy2(SAMPLE / name, folder / name)
    return folder / f"sample_00{n}.mp4.predictions.slp"


@pytest.fixture
def project(tmp_path) -> Path:
    """A copy of sample_000's predictions .slp beside a copy of its video."""
    return _copy_sample(tmp_path / "project")


@pytest.fixture
def two_videos(tmp_path) -> Path:
    """``two.slp``: one project holding both sample videos and their predictions."""
    folder = tmp_path / "two"
    l0 = sio.load_slp(str(_copy_sample(folder, 0)), open_videos=False)
    l1 = sio.load_slp(str(_copy_sample(folder, 1)), open_videos=False)
    tracks = {t.name: t for t in l0.tracks}
    for lf in l1.labeled_frames:
        for inst in lf.instances:
            inst.skeleton = l0.skeleton
            inst.track = tracks[inst.track.name] if inst.track is not None else None
    both = sio.Labels(labeled_frames=[*l0.labeled_frames, *l1.labeled_frames], videos=[l0.video, l1.video],
                      skeletons=[l0.skeleton], tracks=list(l0.tracks))
    sio.save_slp(both, str(folder / "two.slp"), embed=False, verbose=False)
    return folder / "two.slp"


def _events(path: Path) -> list:
    labels = sio.load_slp(str(path), open_videos=False)
    return [ev for ev in labels.events if isinstance(ev, sio.PredictedEvent)]


# --------------------------------------------------------------------------- GUI-free core


def test_path_writes_beside_the_copy_and_never_writes_the_slp(project):
    before = _sha(project)
    summaries = export_from_labels(project, **_fast())
    assert len(summaries) == 1
    s = summaries[0]
    stem = "sample_000.mp4.predictions"
    assert s.pose_file == project and s.annotations_written and not s.error
    assert {k: p.name for k, p in s.outputs.items()} == {
        "behaviors_csv": f"{stem}_behaviors.csv", "behaviors_h5": f"{stem}_behaviors.h5",
        "bouts_csv": f"{stem}_bouts.csv", "slp": f"{stem}.behaviors.slp",
    }
    assert all(p.parent == project.parent and p.is_file() for p in s.outputs.values())
    bouts = pd.read_csv(s.outputs["bouts_csv"])
    events = _events(s.outputs["slp"])
    assert len(bouts) > 0 and len(events) == len(bouts)
    assert {ev.source for ev in events} == {"dlc_lookagain"}
    assert _sha(project) == before
    # Nothing else (no temporary copy) is left beside the project.
    leftovers = {p.name for p in project.parent.iterdir()} - {p.name for p in s.outputs.values()}
    assert leftovers <= {project.name, "sample_000.mp4", "lookagain"}
    again = export_from_labels(project, **_fast())
    assert again[0].skipped and not again[0].annotations_written
    assert _sha(project) == before


def test_open_labels_with_unsaved_changes_are_exported_as_they_are(project):
    before = _sha(project)
    labels = sio.load_slp(str(project), open_videos=False)
    stored_video = labels.video.filename
    labels.labeled_frames = [lf for lf in labels.labeled_frames if lf.frame_idx < 300]  # edited, not saved

    first = export_from_labels(labels, **_fast())[0]
    assert first.pose_file == project and first.annotations_written
    assert all(p.parent == project.parent for p in first.outputs.values())
    exported = sio.load_slp(str(first.outputs["slp"]), open_videos=False)
    assert len(exported.labeled_frames) == 300  # the open labels, not the file (600 frames)
    assert pd.read_csv(first.outputs["bouts_csv"])["end_frame"].max() < 300
    assert Path(exported.video.filename) == project.parent / "sample_000.mp4"
    # The open labels are left as they were, and the user's file was never written.
    assert len(labels.labeled_frames) == 300 and labels.video.filename == stored_video
    assert labels.provenance["filename"] == str(project)
    assert _sha(project) == before

    # Unchanged open labels give a byte-identical copy: the second export finds its outputs up to date.
    assert export_from_labels(labels, **_fast())[0].skipped

    # The file itself (has_changes=False) has other content: recomputed, the earlier files kept.
    from_file = export_from_labels(labels, has_changes=False, **_fast())[0]
    assert from_file.annotations_written
    assert len(sio.load_slp(str(from_file.outputs["slp"]), open_videos=False).labeled_frames) == 600
    kept = list((project.parent / "lookagain" / "replaced").glob("*/sample_000.mp4.predictions_bouts.csv"))
    assert len(kept) == 1 and pd.read_csv(kept[0])["end_frame"].max() < 300
    assert _sha(project) == before


def test_open_labels_that_were_never_saved_need_a_destfolder(project, tmp_path):
    labels = sio.load_slp(str(project), open_videos=False)
    labels.provenance.pop("filename")
    with pytest.raises(PoseFormatError, match="never saved.*destfolder"):
        export_from_labels(labels, **_fast())
    out = tmp_path / "out"
    s = export_from_labels(labels, destfolder=out, **_fast())[0]
    assert sorted(p.name for p in s.outputs.values()) == [
        "sample_000.behaviors.slp", "sample_000_behaviors.csv", "sample_000_behaviors.h5",
        "sample_000_bouts.csv"]
    assert all(p.parent == out and p.is_file() for p in s.outputs.values())
    assert s.pose_file == out / "sample_000.behaviors.slp"


def test_sleap1_labels_are_saved_with_their_own_save_method(project, monkeypatch):
    class Sleap1Labels:
        """Duck-typed like SLEAP 1.3/1.4's sleap.Labels: videos, labeled_frames, save(filename)."""

        def __init__(self, labels):
            self._labels = labels
            self.videos = labels.videos
            self.labeled_frames = labels.labeled_frames
            self.provenance = {}
            self.saved = []

        def save(self, filename, with_images=False):
            self.saved.append(filename)
            sio.save_slp(self._labels, filename, embed=False, verbose=False)

    labels = Sleap1Labels(sio.load_slp(str(project), open_videos=False))
    monkeypatch.chdir(project.parent)  # SLEAP's state["filename"] may be relative to where it started
    s = export_from_labels(labels, labels.videos[0], labels_path=project.name, **_fast())[0]
    assert len(labels.saved) == 1 and Path(labels.saved[0]).parent != project.parent
    assert s.pose_file == project and s.outputs["slp"].parent == project.parent
    assert len(_events(s.outputs["slp"])) == len(pd.read_csv(s.outputs["bouts_csv"]))


def test_multi_video_project_exports_the_chosen_video(two_videos):
    folder = two_videos.parent
    before = _sha(two_videos)
    second = export_from_labels(two_videos, video=1, **_fast())
    assert len(second) == 1
    names = sorted(p.name for p in second[0].outputs.values())
    assert names == ["two.001_sample_001.behaviors.slp", "two.001_sample_001_behaviors.csv",
                     "two.001_sample_001_behaviors.h5", "two.001_sample_001_bouts.csv"]
    assert not list(folder.glob("two.000_*"))
    exported = sio.load_slp(str(second[0].outputs["slp"]), open_videos=False)
    assert [Path(v.filename).name for v in exported.videos] == ["sample_001.mp4"]
    assert len(exported.labeled_frames) == 600 and exported.events
    assert all(ev.video is exported.video for ev in exported.events)

    first = export_from_labels(two_videos, video="sample_000", **_fast())
    assert first[0].outputs["bouts_csv"].name == "two.000_sample_000_bouts.csv"

    # A video object of the open labels (SLEAP's window.state["video"]); all videos by default.
    labels = sio.load_slp(str(two_videos), open_videos=False)
    assert export_from_labels(labels, labels.videos[1], has_changes=False, **_fast())[0].skipped
    everything = export_from_labels(two_videos, **_fast())
    assert [s.outputs["slp"].name for s in everything] == ["two.000_sample_000.behaviors.slp",
                                                            "two.001_sample_001.behaviors.slp"]
    assert all(s.skipped for s in everything)

    with pytest.raises(PoseFormatError, match=r"two\.slp: video index 5 is out of range"):
        export_from_labels(two_videos, video=5, **_fast())
    with pytest.raises(PoseFormatError, match="no video matches 'sample_007'"):
        export_from_labels(two_videos, video="sample_007", **_fast())
    assert _sha(two_videos) == before


def test_analysis_h5_export(project):
    labels = sio.load_slp(str(project), open_videos=False)
    path = project.parent / "sample_000.analysis.h5"
    sio.save_analysis_h5(labels, str(path), labels_path=str(project))
    s = export_analysis_h5(path, **_fast())[0]
    assert sorted(p.name for p in s.outputs.values()) == [
        "sample_000.analysis_behaviors.csv", "sample_000.analysis_behaviors.h5",
        "sample_000.analysis_bouts.csv"]
    assert len(pd.read_csv(s.outputs["bouts_csv"])) > 0
    assert export_from_labels(path, **_fast())[0].skipped  # the same file through the general entry


def test_bad_inputs_give_clear_errors(tmp_path, project):
    not_slp = tmp_path / "notes.slp"
    not_slp.write_text("frame,x,y\n0,1,2\n")
    with pytest.raises(PoseFormatError, match=r"notes\.slp"):
        export_from_labels(not_slp, **_fast())
    with pytest.raises(PoseFormatError, match=r"missing\.slp: pose file not found"):
        export_from_labels(tmp_path / "missing.slp", **_fast())
    dlc_csv = next(SAMPLE.glob("sample_000DLC_*_el.csv"))
    with pytest.raises(PoseFormatError, match="is not a SLEAP file"):
        export_from_labels(dlc_csv, **_fast())
    dlc_h5 = next(SAMPLE.glob("sample_000DLC_*_el.h5"))
    with pytest.raises(PoseFormatError, match=rf"{dlc_h5.name}: not a SLEAP analysis HDF5 export"):
        export_analysis_h5(dlc_h5, **_fast())
    with pytest.raises(PoseFormatError, match="not a SLEAP analysis HDF5 export: it is a SLEAP labels"):
        export_analysis_h5(project, **_fast())
    with pytest.raises(TypeError, match="got int"):
        export_from_labels(42)
    with pytest.raises(ValueError, match="top_k"):
        export_from_labels(project, top_k=1.5)
    assert sleap_hook.DEFAULT_TOP_K == pytest.importorskip("dlc_lookagain.pipeline").DEFAULT_TOP_K


def test_module_imports_without_qt_or_sleap():
    code = ("import sys; sys.modules['qtpy'] = None; sys.modules['sleap'] = None; "
            "import dlc_lookagain.sleap_hook as h; print(h.ACTION_TEXT)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ACTION_TEXT


# --------------------------------------------------------------------------- menu action, fake window


class FakeSignal:
    def __init__(self):
        self.slots = []

    def connect(self, slot):
        self.slots.append(slot)

    def emit(self, *args):
        for slot in self.slots:
            slot(*args)


class FakeAction:
    def __init__(self, text="", menu=None):
        self._text, self._menu, self._name = text, menu, ""
        self.triggered = FakeSignal()

    def text(self):
        return self._text

    def menu(self):
        return self._menu

    def objectName(self):  # noqa: N802 - Qt API
        return self._name

    def setObjectName(self, name):  # noqa: N802
        self._name = name

    def setStatusTip(self, tip):  # noqa: N802
        self.tip = tip

    def trigger(self):
        self.triggered.emit(False)


class FakeMenu:
    def __init__(self):
        self._actions = []

    def actions(self):
        return list(self._actions)

    def addAction(self, text):  # noqa: N802
        action = FakeAction(text)
        self._actions.append(action)
        return action

    def addMenu(self, title):  # noqa: N802
        menu = FakeMenu()
        self._actions.append(FakeAction(title, menu))
        return menu

    def insertAction(self, before, action):  # noqa: N802 - like Qt, moves an action already there
        if action in self._actions:
            self._actions.remove(action)
        self._actions.insert(self._actions.index(before), action)

    def insertSeparator(self, before):  # noqa: N802
        self._actions.insert(self._actions.index(before), FakeAction(""))


class FakeSleapWindow:
    """What add_export_action uses of SLEAP's MainWindow: menuBar(), labels, state, _menu_actions."""

    def __init__(self, labels=None, filename=None, has_changes=False, video=None, **_):
        self._bar = FakeMenu()
        file_menu = self._bar.addMenu("File")
        file_menu.addAction("Open Project...")
        file_menu.addAction("Save")
        quit_action = file_menu.addAction("Quit")
        self._bar.addMenu("Go")
        self._menu_actions = {"close": quit_action}
        self.labels = labels
        self.state = {"filename": filename, "has_changes": has_changes,
                      "video": video if video is not None else (labels.videos[0] if labels else None)}

    def menuBar(self):  # noqa: N802
        return self._bar

    def file_menu(self):
        return self._bar.actions()[0].menu()


class FakeUI:
    def __init__(self, top_k=0.0, videos="current", folder=None):
        self.top_k, self.videos, self.folder = top_k, videos, folder
        self.asked, self.infos, self.errors, self.busy_count = [], [], [], 0

    def ask_top_k(self, default):
        self.asked.append(("top_k", default))
        return self.top_k

    def ask_videos(self, current, n_videos):
        self.asked.append(("videos", current, n_videos))
        return self.videos

    def ask_folder(self):
        self.asked.append(("folder",))
        return self.folder

    @contextlib.contextmanager
    def busy(self, message):
        self.busy_count += 1
        yield

    def info(self, text):
        self.infos.append(text)

    def error(self, text):
        self.errors.append(text)


def test_menu_item_goes_before_quit_once():
    window = FakeSleapWindow()
    action = add_export_action(window, ui=FakeUI())
    texts = [a.text() for a in window.file_menu().actions()]
    assert texts == ["Open Project...", "Save", ACTION_TEXT, "", "Quit"]
    assert add_export_action(window, ui=FakeUI()) is action
    assert [a.text() for a in window.file_menu().actions()].count(ACTION_TEXT) == 1
    assert window._menu_actions[MENU_KEY] is action


def test_menu_item_without_quit_goes_at_the_end():
    window = FakeSleapWindow()
    menu = window.file_menu()
    menu._actions = [a for a in menu._actions if a.text() != "Quit"]
    window._menu_actions = {}
    add_export_action(window, ui=FakeUI())
    assert [a.text() for a in menu.actions()][-1] == ACTION_TEXT


def test_menu_item_exports_the_open_project(project):
    labels = sio.load_slp(str(project), open_videos=False)
    window = FakeSleapWindow(labels, filename=str(project), has_changes=False)
    ui = FakeUI()
    add_export_action(window, ui=ui).trigger()
    assert ui.errors == [] and ui.busy_count == 1
    assert ui.asked == [("top_k", 0.25)]  # one video: no question about which
    assert "sample_000.mp4.predictions.behaviors.slp" in ui.infos[0]
    assert "sample_000.mp4.predictions_bouts.csv" in ui.infos[0]
    assert (project.parent / "sample_000.mp4.predictions.behaviors.slp").is_file()


def test_menu_item_asks_which_video_and_where_unsaved_labels_go(two_videos, tmp_path):
    labels = sio.load_slp(str(two_videos), open_videos=False)
    labels.provenance.pop("filename")
    out = tmp_path / "chosen"
    out.mkdir()
    window = FakeSleapWindow(labels, filename=None, has_changes=True, video=labels.videos[1])
    ui = FakeUI(videos="current", folder=str(out))
    add_export_action(window, ui=ui).trigger()
    assert ui.errors == []
    assert ui.asked == [("folder",), ("top_k", 0.25), ("videos", "sample_001.mp4", 2)]
    written = {p.name for p in out.iterdir() if p.is_file()}
    assert written >= {"untitled.001_sample_001.behaviors.slp", "untitled.001_sample_001_behaviors.csv",
                       "untitled.001_sample_001_behaviors.h5", "untitled.001_sample_001_bouts.csv"}
    assert all(name.startswith("untitled.001_sample_001") for name in written)  # only the current video


def test_menu_item_cancel_and_errors(project, tmp_path):
    labels = sio.load_slp(str(project), open_videos=False)
    window = FakeSleapWindow(labels, filename=str(project))
    ui = FakeUI(top_k=None)  # Cancel in the top_k dialog
    add_export_action(window, ui=ui).trigger()
    assert ui.infos == [] and ui.errors == [] and ui.busy_count == 0
    assert not list(project.parent.glob("*_behaviors.csv"))

    empty = FakeSleapWindow(sio.Labels(), filename=None)
    ui = FakeUI()
    add_export_action(empty, ui=ui).trigger()
    assert ui.errors == ["Open a SLEAP project with at least one video first."]

    broken = tmp_path / "broken.slp"
    broken.write_bytes(b"not hdf5")
    window = FakeSleapWindow(labels, filename=str(broken), has_changes=False)
    ui = FakeUI()
    add_export_action(window, ui=ui).trigger()
    assert ui.infos == [] and len(ui.errors) == 1
    assert "LookAgain could not export behaviors" in ui.errors[0] and "broken.slp" in ui.errors[0]


# --------------------------------------------------------------------------- menu action, real Qt


@pytest.fixture
def qt(monkeypatch):
    """qtpy's QtWidgets with a QApplication on the offscreen platform (skips without Qt)."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    pytest.importorskip("qtpy", reason="qtpy and a Qt binding (PySide6) are needed for the real-Qt tests")
    from qtpy import QtWidgets

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(["test"])
    return QtWidgets, app


def _qt_window(QtWidgets, labels, filename, has_changes=False):
    window = QtWidgets.QMainWindow()
    file_menu = window.menuBar().addMenu("&File")
    file_menu.addAction("Open Project...")
    file_menu.addSeparator()
    quit_action = file_menu.addAction("Quit")
    window.menuBar().addMenu("Go")
    window._menu_actions = {"close": quit_action}
    window.labels = labels
    window.state = {"filename": filename, "has_changes": has_changes,
                    "video": labels.videos[0] if labels is not None and labels.videos else None}
    return window, file_menu


def test_qt_menu_item_runs_the_export(qt, monkeypatch, project):
    QtWidgets, app = qt
    labels = sio.load_slp(str(project), open_videos=False)
    window, file_menu = _qt_window(QtWidgets, labels, str(project))
    action = add_export_action(window)
    texts = [a.text() for a in file_menu.actions()]
    assert texts[texts.index(ACTION_TEXT) + 1:] == ["", "Quit"]
    asked, shown = [], []

    def get_double(parent, title, label, value, minimum, maximum, decimals):
        asked.append((parent, value, minimum, maximum))
        return 0.0, True

    monkeypatch.setattr(QtWidgets.QInputDialog, "getDouble", staticmethod(get_double))
    monkeypatch.setattr(QtWidgets.QMessageBox, "information", staticmethod(lambda *a: shown.append(a[2])))
    monkeypatch.setattr(QtWidgets.QMessageBox, "critical",
                        staticmethod(lambda *a: pytest.fail(f"error box: {a[2]}")))
    action.trigger()
    assert asked == [(window, 0.25, 0.0, 1.0)]
    assert len(shown) == 1 and "sample_000.mp4.predictions.behaviors.slp" in shown[0]
    assert (project.parent / "sample_000.mp4.predictions_behaviors.csv").is_file()
    assert app.overrideCursor() is None  # the wait cursor was restored
    window.close()


def test_qt_menu_item_shows_errors(qt, monkeypatch, tmp_path, project):
    QtWidgets, app = qt
    broken = tmp_path / "broken.slp"
    broken.write_bytes(b"not hdf5")
    window, _ = _qt_window(QtWidgets, sio.load_slp(str(project), open_videos=False), str(broken))
    errors = []
    monkeypatch.setattr(QtWidgets.QInputDialog, "getDouble", staticmethod(lambda *a: (0.25, True)))
    monkeypatch.setattr(QtWidgets.QMessageBox, "critical", staticmethod(lambda *a: errors.append(a[2])))
    monkeypatch.setattr(QtWidgets.QMessageBox, "information",
                        staticmethod(lambda *a: pytest.fail("no success message expected")))
    add_export_action(window).trigger()
    assert len(errors) == 1 and "broken.slp" in errors[0]
    assert app.overrideCursor() is None
    window.close()


# --------------------------------------------------------------------------- launcher


@pytest.fixture
def fake_sleap(monkeypatch):
    """A stand-in ``sleap.gui.app`` whose main() builds MainWindow like sleap-label does."""
    app_module = types.ModuleType("sleap.gui.app")
    app_module.created, app_module.calls = [], []

    class MainWindow(FakeSleapWindow):
        def __init__(self, labels_path=None, **kwargs):
            # As in SLEAP: the class name is looked up when __init__ runs, so swapping the module's
            # MainWindow for a subclass would recurse here.
            super(app_module.MainWindow, self).__init__(**kwargs)
            self.labels_path = labels_path

    def main(args=None, labels=None):
        app_module.calls.append(args)
        window = app_module.MainWindow(labels_path=args[0] if args else None)
        app_module.created.append(window)

    app_module.MainWindow = MainWindow
    app_module.main = main
    gui = types.ModuleType("sleap.gui")
    gui.app = app_module
    sleap = types.ModuleType("sleap")
    sleap.gui = gui
    for name, module in (("sleap", sleap), ("sleap.gui", gui), ("sleap.gui.app", app_module)):
        monkeypatch.setitem(sys.modules, name, module)
    return app_module


def test_launch_adds_the_item_to_sleaps_window(fake_sleap):
    original, original_init = fake_sleap.MainWindow, fake_sleap.MainWindow.__dict__["__init__"]
    assert sleap_hook.launch(["project.slp", "--reset"]) == 0
    assert fake_sleap.calls == [["project.slp", "--reset"]]
    window = fake_sleap.created[0]
    assert type(window) is original and window.labels_path == "project.slp"
    assert ACTION_TEXT in [a.text() for a in window.file_menu().actions()]
    # Restored after the GUI closed: windows made later get no item.
    assert fake_sleap.MainWindow is original and original.__dict__["__init__"] is original_init
    assert ACTION_TEXT not in [a.text() for a in original().file_menu().actions()]


def test_launch_with_old_sleap_main_passes_sys_argv(fake_sleap, monkeypatch):
    seen = []

    def old_main():
        seen.append(list(sys.argv[1:]))
        fake_sleap.created.append(fake_sleap.MainWindow())

    monkeypatch.setattr(fake_sleap, "main", old_main)
    argv = list(sys.argv)
    sleap_hook.launch(["labels.slp"])
    assert seen == [["labels.slp"]] and sys.argv == argv
    assert ACTION_TEXT in [a.text() for a in fake_sleap.created[0].file_menu().actions()]


def test_launch_without_sleap_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sleap", None)
    with pytest.raises(SystemExit, match=r'pip install "dlc_lookagain\[sleap\]"'):
        sleap_hook.launch([])
