"""One process at a time per recording: a lock file with its owner's pid and host.

Two ``analyze`` runs on the same project (two terminals, or two SLURM jobs on a shared disk) must
not both recompute one recording: one would move the old files away while the other writes over
them. Each recording is analyzed under ``<project>/lookagain/locks/<recording>.lock``, created
atomically (``O_CREAT | O_EXCL``) and holding ``{"pid", "host", "started"}``. A second run finds it
taken and skips that recording (it says by whom). A lock whose owner is gone is stale and taken
over: same host and the pid no longer runs, or another host and older than :data:`STALE_AFTER_S`
(we cannot see another machine's processes).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = ["RecordingLock", "LockedError", "STALE_AFTER_S"]

#: A lock from another host is taken over after this long (a SLURM job's wall time is rarely more).
STALE_AFTER_S = 48 * 3600.0


class LockedError(RuntimeError):
    """The recording is being analyzed by another live process."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except OSError:
        return False
    return True


class RecordingLock:
    """Context manager holding the lock file ``path`` (raises :class:`LockedError` if taken)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.held = False

    def owner(self) -> dict | None:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def _stale(self, owner: dict | None) -> bool:
        if owner is None:
            # Unreadable: a writer killed between create and write, or being written right now.
            try:
                return time.time() - self.path.stat().st_mtime > 60
            except OSError:
                return True
        if owner.get("host") == socket.gethostname():
            return not _pid_alive(int(owner.get("pid", -1)))
        return time.time() - float(owner.get("started", 0)) > STALE_AFTER_S

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self.owner()
                if not self._stale(owner):
                    who = "another process" if owner is None else f"pid {owner.get('pid')} on {owner.get('host')}"
                    since = "" if owner is None else time.strftime(" since %Y-%m-%d %H:%M:%S",
                                                                     time.localtime(owner.get("started", 0)))
                    raise LockedError(f"being analyzed by {who}{since} (lock {self.path}); skipped. If no "
                                      "such run is alive, delete the lock file") from None
                self._remove_stale(owner)
                continue
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(me, fh)
            self.held = True
            return
        raise LockedError(f"could not take the lock {self.path}; skipped")

    def _remove_stale(self, owner: dict | None) -> None:
        """Move the stale lock aside atomically; if what was moved is not the lock judged stale (a
        live process took it over in between), put it back."""
        aside = self.path.with_name(f"{self.path.name}.stale-{os.getpid()}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        try:
            moved = json.loads(aside.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            moved = None
        if owner is not None and moved != owner:
            try:
                os.link(aside, self.path)  # fails if yet another lock was created meanwhile
            except OSError:
                pass
        else:
            logger.info("%s: took over a stale lock (%s)", self.path.name, owner)
        aside.unlink(missing_ok=True)

    def release(self) -> None:
        if self.held:
            self.held = False
            try:
                self.path.unlink()
            except FileNotFoundError:
                pass

    def __enter__(self) -> RecordingLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
