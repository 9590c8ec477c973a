"""``analyze`` on a batch of videos: serial vs a Dask LocalCluster, and a re-run with nothing to do.

Usage::

    python benchmarks/analyze_batch.py [--videos 4] [--seconds 60] [--top-k 0.25] [--workers 2]

A synthetic DLC project (``--videos`` recordings of ``--seconds`` s, 480x360, 2 mice, 30 fps, H.264)
is generated once into ``benchmarks/_data/batch-<videos>x<seconds>s/``. Each configuration runs on its
own fresh copy of the project (so no outputs and no vision cache exist at its start), in its own child
process, and is timed end to end from the ``analyze`` call to its return (imports excluded):

* ``serial``: ``analyze(config, n_workers=1)``;
* ``dask N``: ``analyze(config, n_workers=N)``: a LocalCluster of N single-threaded worker processes,
  started and closed inside the timed call;
* ``dask N, Dask's default worker environment``: a ``LocalCluster`` made by the caller with Dask's
  defaults and passed as ``scheduler=`` (as a dask-jobqueue cluster would be). Dask starts its
  workers with ``MALLOC_TRIM_THRESHOLD_=65536``; ``n_workers`` unsets it for the clusters it makes,
  and inside any worker ``pipeline._undo_fixed_malloc_thresholds`` raises glibc's thresholds again;
* ``... workaround switched off``: the same, with that function replaced by a no-op on the workers;
* ``re-run``: ``analyze`` again on the serial copy (every output up to date: only the pose files are
  hashed);
* ``serial, top_k b`` (``--budgets``): serial runs at other fractions looked at, on fresh copies.

The ratios are serial wall / configuration wall, measured side by side in one run. Outputs of the
serial and the parallel copy are compared (same labels on every row; probabilities within 2e-4).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "_data"


def _no_workaround() -> None:
    """In a worker: leave glibc's thresholds as Dask's MALLOC_TRIM_THRESHOLD_ fixed them."""
    from dlc_lookagain import pipeline

    pipeline._undo_fixed_malloc_thresholds = lambda: False


def _child(config: str, workers: int, top_k: float, dask_defaults: bool = False,
           workaround: bool = True) -> dict:
    import dlc_lookagain

    t0 = time.perf_counter()
    if dask_defaults:
        # A cluster the user made with Dask's defaults, passed as scheduler= (also what a
        # dask-jobqueue cluster looks like to analyze).
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            if not workaround:
                client.run(_no_workaround)
            summaries = dlc_lookagain.analyze(config, top_k=top_k, scheduler=client, progress=False)
    else:
        summaries = dlc_lookagain.analyze(config, top_k=top_k, n_workers=workers, progress=False)
    wall = time.perf_counter() - t0
    return {"wall_s": wall, "frames": sum(s.n_frames for s in summaries),
            "analyzed": sum(s.annotations_written for s in summaries),
            "skipped": sum(bool(s.skipped) for s in summaries),
            "looked": sum(round(s.n_frames * s.looked_fraction) for s in summaries if s.annotations_written)}


def _run_child(config: Path, workers: int, top_k: float, dask_defaults: bool = False,
               workaround: bool = True) -> dict:
    code = (f"import json, sys; sys.path.insert(0, {str(HERE)!r}); import analyze_batch as b; "
            f"print('RESULT' + json.dumps(b._child({str(config)!r}, {workers}, {top_k}, {dask_defaults}, "
            f"{workaround})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads([line for line in out.splitlines() if line.startswith("RESULT")][-1][6:])


def _project(videos: int, seconds: float) -> Path:
    root = DATA / f"batch-{videos}x{int(seconds)}s"
    if not (root / "config.yaml").exists():
        subprocess.run([sys.executable, "-m", "dlc_lookagain.synth", "project", str(root), "--preset", "test",
                        "--videos", str(videos), "--animals", "2", "--seconds", str(seconds), "--seed", "7",
                        "--no-slp", "--overwrite"], check=True)
    return root


def _copy(src: Path, dst: Path) -> Path:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("lookagain", "*_behaviors*", "*_bouts.csv", "*.png"))
    return dst / "config.yaml"


def _same_outputs(a: Path, b: Path) -> tuple[int, float]:
    import numpy as np
    import pandas as pd

    files = sorted(a.rglob("*_behaviors.csv"))
    worst = 0.0
    for fa in files:
        fb = b / fa.relative_to(a)
        da, db = pd.read_csv(fa), pd.read_csv(fb)
        if not (da["label"] == db["label"]).all():
            raise SystemExit(f"labels differ between serial and parallel: {fa.name}")
        pcols = [c for c in da.columns if c.startswith("p_")]
        worst = max(worst, float(np.nanmax(np.abs(da[pcols].to_numpy() - db[pcols].to_numpy()))))
    return len(files), worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--top-k", type=float, default=0.25)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--budgets", type=float, nargs="*", default=[],
                    help="also run serial at these top_k values (time against the fraction looked at)")
    args = ap.parse_args()
    src = _project(args.videos, args.seconds)
    work = DATA / "batch-runs"
    serial_cfg = _copy(src, work / "serial")
    dask_cfg = _copy(src, work / f"dask{args.workers}")
    default_cfg = _copy(src, work / f"dask{args.workers}-defaults")
    raw_cfg = _copy(src, work / f"dask{args.workers}-defaults-raw")
    rows = {"serial": _run_child(serial_cfg, 1, args.top_k),
            f"dask {args.workers} (n_workers)": _run_child(dask_cfg, args.workers, args.top_k),
            f"dask {args.workers}, cluster with Dask's default worker environment (scheduler=)":
                _run_child(default_cfg, args.workers, args.top_k, dask_defaults=True),
            f"dask {args.workers}, the same with the malloc workaround switched off":
                _run_child(raw_cfg, args.workers, args.top_k, dask_defaults=True, workaround=False),
            "re-run (up to date)": _run_child(serial_cfg, 1, args.top_k)}
    for budget in args.budgets:
        rows[f"serial, top_k {budget:g}"] = _run_child(_copy(src, work / f"serial-{budget:g}"), 1, budget)
    n, worst = _same_outputs(serial_cfg.parent, dask_cfg.parent)
    base = rows["serial"]["wall_s"]
    load = os.getloadavg()
    print(f"\n**analyze on {args.videos} videos x {args.seconds:g} s (480x360, 2 mice, 30 fps), top_k "
          f"{args.top_k:g}; {os.cpu_count()} cores; load average {load[0]:.2f} after the run**\n")
    print("| configuration | wall s | videos analyzed / skipped | frames | frames looked at | frames/s | "
          "speed-up vs serial |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['wall_s']:.1f} | {r['analyzed']} / {r['skipped']} | {r['frames']} | {r['looked']} | "
              f"{r['frames'] / r['wall_s']:.0f} | {base / r['wall_s']:.2f}x |")
    print(f"\nSerial and dask outputs: {n} behavior tables, same label on every row, largest probability "
          f"difference {worst:.1e}.")


if __name__ == "__main__":
    main()
