"""Decoding ahead in a reader thread (io/prefetch.py): same items in the same order, errors raised
where they happen, bounded look-ahead, and an early stop that releases what the reader opened."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from dlc_lookagain.io.prefetch import Prefetched


def test_items_come_in_order_and_from_another_thread():
    threads = []

    def make():
        for i in range(100):
            threads.append(threading.current_thread().name)
            yield i

    with Prefetched(make, depth=3) as items:
        assert list(items) == list(range(100))
        assert next(items, "end") == "end"  # exhausted stays exhausted
    assert set(threads) == {"lookagain-reader"}
    assert list(Prefetched(lambda: iter(()))) == []


def test_reader_error_is_raised_in_the_caller_after_the_items_before_it():
    def make():
        yield 1
        yield 2
        raise OSError("frame 3: corrupt packet")

    got = []
    with pytest.raises(OSError, match="frame 3"):
        for item in Prefetched(make, depth=8):
            got.append(item)
    assert got == [1, 2]
    with pytest.raises(ValueError, match="depth"):
        Prefetched(lambda: iter(()), depth=0)


def test_look_ahead_is_bounded_and_early_stop_releases_the_reader():
    made, released = [], threading.Event()

    def make():
        try:
            for i in range(10_000):
                made.append(i)
                yield i
        finally:
            released.set()  # a VideoReader's with-block closes here

    items = Prefetched(make, depth=4)
    assert next(items) == 0
    time.sleep(0.3)  # the reader fills the queue, then waits
    assert len(made) <= 1 + 4 + 1  # taken + queued + the one waiting to be queued
    items.close()
    assert released.wait(5) and not items._thread.is_alive()
    assert next(items, "end") == "end"


def test_decoding_ahead_gives_the_same_features(tmp_path):
    """appearance.extract reads through the prefetching reader: the same rows as decoding in the
    caller's thread, frame by frame."""
    from test_features_appearance import _paw_recording

    from dlc_lookagain.features import appearance
    from dlc_lookagain.io.video import VideoReader

    rec, _ = _paw_recording(tmp_path, 0, n=90)
    frames = np.arange(1, rec.n_frames, 3)
    cfg = appearance.AppearanceConfig()
    ahead = appearance.extract(rec, frames, cfg)
    geometry, hog = appearance.crop_geometry(rec, cfg), appearance._hog(cfg.size)
    with VideoReader(rec.video_path) as reader:
        inline = np.stack([appearance.frame_features(f, i, geometry, cfg, hog)
                           for i, f in reader.read_frames(frames.tolist(), color="rgb")])
    assert np.isfinite(ahead).any()
    np.testing.assert_array_equal(ahead, inline)
