"""Small path helpers shared by readers and writers: finding moved files, atomic writes."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath, PureWindowsPath

from dlc_lookagain.errors import option_text

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".mpg", ".mpeg", ".m4v", ".wmv", ".webm", ".h264")


def absolute_path(path: str | os.PathLike) -> Path:
    """Absolute, normalized path that keeps symlinks as the user made them (unlike ``resolve``).

    Videos are often symlinked into a project; following the link would change the
    name we match pose files and outputs against.
    """
    return Path(os.path.abspath(os.fspath(path)))


def _path_parts(stored: str) -> list[str]:
    """Split a stored path written on any OS (``C:\\data\\v.avi`` or ``/Users/x/v.mp4``)."""
    if "\\" in stored and "/" not in stored:
        return list(PureWindowsPath(stored).parts)
    return list(PurePosixPath(stored).parts)


def resolve_moved_path(stored: str | os.PathLike, *anchors: str | os.PathLike) -> Path | None:
    """Find a file whose stored path may be stale because a project folder moved.

    Tried in order: a file of the same name in the first anchor folder (a copied
    project or a pose file moved with its video must use the copy beside it, even
    while the original's absolute path still exists); the stored path as it is; the
    stored path relative to each anchor folder and each of its ancestors (a path
    stored relative to a repository root); then the longest tail of the stored path
    (``videos/x.mp4``, then ``x.mp4``) under each anchor.

    Parameters
    ----------
    stored : str or path-like
        The path as written in a config or pose file (absolute, relative, Windows or POSIX).
    *anchors : path-like
        Folders to search from, most specific first (e.g. the pose file's folder,
        then the project folder).

    Returns
    -------
    Path or None
        The first existing file, or None when nothing matches.
    """
    stored = str(stored).strip()
    if not stored:
        return None
    parts = [p for p in _path_parts(stored) if p not in ("/", "\\") and not p.endswith((":", ":\\"))]
    anchor_dirs = [absolute_path(Path(a).expanduser()) for a in anchors if a is not None]
    if anchor_dirs and parts and (anchor_dirs[0] / parts[-1]).is_file():
        return anchor_dirs[0] / parts[-1]
    direct = Path(stored).expanduser()
    if direct.is_file():
        return absolute_path(direct)
    if not direct.is_absolute():
        for anchor in anchor_dirs:
            for base in (anchor, *anchor.parents):
                cand = base / direct
                if cand.is_file():
                    return absolute_path(cand)
    for n in range(len(parts), 0, -1):
        tail = Path(*parts[-n:])
        for anchor in anchor_dirs:
            cand = anchor / tail
            if cand.is_file():
                return absolute_path(cand)
    return None


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it onto ``final`` on success.

    A crash or exception leaves any existing ``final`` untouched and removes the
    temporary file, so readers never see a half-written output.

    Parameters
    ----------
    final : path-like
        Where the file should end up.
    overwrite : bool
        Replace an existing ``final``. When False and it exists,
        :class:`FileExistsError` is raised before anything is written.
    """
    final = Path(final)
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final}: output exists; pass {option_text('overwrite', True)} to replace it")
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp" + final.suffix, dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
            # mkstemp makes owner-only files; outputs should be readable by the lab like any other file.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp_path, 0o666 & ~umask)
            # On disk before the rename: after a power cut the name never points at a hole.
            _fsync(tmp_path)
            os.replace(tmp_path, final)
            _fsync(final.parent)
        except OSError as exc:
            explained = _explained(exc, final)
            if explained is exc:
                raise
            raise explained from exc
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


#: Below this much free space an OSError while writing is reported as a full disk.
FULL_DISK_BYTES = 64 << 20


def _fsync(path: Path) -> None:
    """fsync a file or (best effort: not every OS/file system allows it) a folder."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        if path.is_dir():
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not path.is_dir():
            raise
    finally:
        os.close(fd)


def _explained(exc: OSError, final: Path) -> OSError:
    """The OSError a writer raised, said plainly when the disk is full (numpy, for one, only says
    "57600 requested and 32704 written")."""
    import errno
    import shutil

    try:
        free = shutil.disk_usage(final.parent).free
    except OSError:
        return exc
    if exc.errno in (errno.ENOSPC, errno.EDQUOT) or free < FULL_DISK_BYTES:
        return OSError(errno.ENOSPC, f"no space left on {final.parent} ({free / 2**20:.0f} MB free) while "
                       f"writing {final.name}; nothing was replaced. Free some space and run again "
                       f"({exc})", str(final))
    return exc


def stale_temporaries(final: str | os.PathLike) -> list[Path]:
    """Temporary files :func:`atomic_path` left beside ``final`` when its process was killed."""
    final = Path(final)
    if not final.parent.is_dir():
        return []
    prefix, suffix = f".{final.name}.", ".tmp" + final.suffix
    return sorted(p for p in final.parent.iterdir()
                  if p.name.startswith(prefix) and p.name.endswith(suffix) and p.is_file()
                  and len(p.name) > len(prefix) + len(suffix))
