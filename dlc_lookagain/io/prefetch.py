"""Decode ahead: a reader thread produces items (decoded video frames) while the caller works on
the ones already produced, so the slower stage, not the sum of both, sets the pace.

Why a thread and not a process: OpenCV's decoder and the image operations that describe a looked-at
frame (resize, HOG, colour statistics) release the GIL, so two threads use two cores, and frames
pass between them without a copy or pickling. The queue is bounded (``depth`` items), so memory
stays a few frames whatever the video's length.

The items come out in the order the iterator makes them, exactly as without the thread; an
exception in the reader is raised in the caller at the point where its item would have come;
closing early (``close``, leaving the ``with`` block, or garbage collection) stops the reader and
runs its ``finally`` clauses (the video file is released).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

__all__ = ["Prefetched", "frames_ahead"]

T = TypeVar("T")
_DONE = object()
_POLL_S = 0.05  # how often a blocked reader checks whether it was asked to stop


class _Failed:
    def __init__(self, error: BaseException):
        self.error = error


class Prefetched(Generic[T]):
    """Iterate ``make()`` in a reader thread, ``depth`` items ahead of the caller.

    Parameters
    ----------
    make : callable
        Returns the iterable to run; it is called in the reader thread, so resources it opens
        (a video reader) live there and are released there.
    depth : int
        Items held ready at most.
    name : str
        Thread name (for debugging).

    Examples
    --------
    >>> with Prefetched(lambda: iter(range(3)), depth=2) as items:
    ...     list(items)
    [0, 1, 2]
    """

    def __init__(self, make: Callable[[], Iterable[T]], depth: int = 8, name: str = "lookagain-reader"):
        if depth < 1:
            raise ValueError(f"depth must be >= 1, got {depth}")
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._run, args=(make,), name=name, daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, make) -> None:
        iterator = None
        try:
            iterator = iter(make())
            for item in iterator:
                if not self._put(item):
                    return
            self._put(_DONE)
        except BaseException as error:  # handed to the caller, raised there
            self._put(_Failed(error))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()  # a generator's finally (the reader's with-block) runs now, in this thread

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        item = self._queue.get()
        if item is _DONE or isinstance(item, _Failed):
            self._finished = True
            self._thread.join()
            if isinstance(item, _Failed):
                raise item.error
            raise StopIteration
        return item

    def close(self) -> None:
        """Stop the reader (if still running) and wait for it to release what it opened."""
        self._finished = True
        self._stop.set()
        while self._thread.is_alive():
            try:  # unblock a reader waiting on a full queue
                self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                pass
        self._thread.join()

    def __enter__(self) -> Prefetched[T]:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self._stop.set()
        except AttributeError:  # failed in __init__
            pass


def frames_ahead(path, indices, depth: int = 8, **read_options) -> Prefetched:
    """:meth:`VideoReader.read_frames` of ``path`` in a reader thread, ``depth`` frames ahead.

    The reader is opened and closed in that thread; ``read_options`` are those of
    :meth:`~dlc_lookagain.io.video.VideoReader.read_frames`. Use it as a context manager so that
    stopping early releases the video.
    """
    from dlc_lookagain.io.video import VideoReader

    def decode():
        with VideoReader(path) as reader:
            yield from reader.read_frames(indices, **read_options)

    return Prefetched(decode, depth=depth)
