"""Which files did we write? Never write over or move one we did not.

``analyze`` writes its outputs beside the user's pose files, under names derived from them. A file
already at one of those names may be ours (an earlier run), ours but edited by hand (a corrected
``_bouts.csv``), or someone else's. Only the first may be replaced or moved.

The ledger records, per recording, the SHA-256 of every file ``analyze`` wrote, in
``<project>/lookagain/written/<recording key>.json`` (paths relative to the project folder, so a
copied project keeps its ledger). A file counts as ours when its current hash is the one we
recorded. Outputs of versions that kept no ledger are recognised once, by the metadata our own
``_behaviors.h5`` carries: the files written beside it are taken as ours, with a log line.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from dlc_lookagain.errors import PoseFormatError, option_text
from dlc_lookagain.io.paths import atomic_path

logger = logging.getLogger(__name__)

__all__ = ["OutputLedger", "NotOurFileError", "file_sha256"]


class NotOurFileError(PoseFormatError):
    """A file at one of our output names was not written by us, or was changed since."""


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file's content (read in 4 MB chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


class OutputLedger:
    """The files ``analyze`` wrote for one recording, with their hashes.

    Parameters
    ----------
    project_folder : Path
        The project (or workspace) folder; the ledger lives in its ``lookagain/written/``.
    pose_file : Path
        The recording's pose file (names the ledger).
    """

    def __init__(self, project_folder: Path, pose_file: Path):
        self.project_folder = Path(project_folder)
        self.pose_file = Path(pose_file)
        self.path = self.project_folder / "lookagain" / "written" / f"{self._key()}.json"
        self.lock_path = self.lock_path_for(self.project_folder, self.pose_file)
        self.files: dict[str, str] = {}
        self.exists = self.path.is_file()
        if self.exists:
            try:
                blob = json.loads(self.path.read_text(encoding="utf-8"))
                self.files = {str(k): str(v) for k, v in dict(blob.get("files", {})).items()}
            except (OSError, ValueError, TypeError, AttributeError) as exc:
                # A damaged ledger vouches for nothing: every existing output is then left alone.
                logger.warning("%s: unreadable (%s); treating no existing output as ours", self.path, exc)
                self.files, self.exists = {}, True

    def _key(self) -> str:
        digest = hashlib.sha256(self._name(self.pose_file).encode("utf-8")).hexdigest()[:16]
        return f"{self.pose_file.stem[:80]}.{digest}"

    @classmethod
    def lock_path_for(cls, project_folder: Path, pose_file: Path) -> Path:
        """Lock file of a recording (:class:`dlc_lookagain.io.lock.RecordingLock`), named like its ledger."""
        named = cls.__new__(cls)
        named.project_folder, named.pose_file = Path(project_folder), Path(pose_file)
        return named.project_folder / "lookagain" / "locks" / f"{named._key()}.lock"

    def _name(self, path: Path) -> str:
        """``path`` relative to the project folder where it lies inside it, else absolute."""
        path = Path(os.path.abspath(path))
        try:
            return path.relative_to(Path(os.path.abspath(self.project_folder))).as_posix()
        except ValueError:
            return path.as_posix()

    def owns(self, path: Path) -> bool:
        """True when ``path`` holds exactly what we wrote there."""
        recorded = self.files.get(self._name(path))
        return recorded is not None and Path(path).is_file() and file_sha256(path) == recorded

    def adopt_legacy(self, paths, metadata_ok: bool) -> None:
        """Outputs of a version without a ledger: take the existing ``paths`` as ours when our own
        ``_behaviors.h5`` beside them carries our metadata (``metadata_ok``)."""
        if self.exists or not metadata_ok:
            return
        existing = [Path(p) for p in paths if Path(p).is_file()]
        for p in existing:
            self.files[self._name(p)] = file_sha256(p)
        if existing:
            logger.info("%s: outputs of an earlier version (no record of written files); taking %d as ours",
                        self.pose_file.name, len(existing))

    def check_replaceable(self, paths) -> None:
        """Raise :class:`NotOurFileError` for the first existing path that is not ours."""
        for p in paths:
            p = Path(p)
            if p.exists() and not self.owns(p):
                raise NotOurFileError(
                    p, "is at a name dlc_lookagain writes to, but it was not written by dlc_lookagain or was "
                    "changed since (edited by hand?); it is left as it is and this recording is skipped. "
                    f"Rename or move it to keep it, then run again (or write elsewhere with {option_text('destfolder')}).")

    def record(self, paths) -> None:
        """Remember the current content of ``paths`` as ours and save the ledger atomically."""
        for p in paths:
            p = Path(p)
            if p.is_file():
                self.files[self._name(p)] = file_sha256(p)
        self.save()

    def forget(self, paths) -> None:
        """Drop ``paths`` (moved away or replaced) from the ledger and save it."""
        for p in paths:
            self.files.pop(self._name(Path(p)), None)
        self.save()

    def save(self) -> None:
        blob = {"pose_file": self._name(self.pose_file), "files": dict(sorted(self.files.items()))}
        with atomic_path(self.path, overwrite=True) as tmp:
            tmp.write_text(json.dumps(blob, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        self.exists = True
