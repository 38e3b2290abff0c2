"""Throughput of engine.bvh.read_bvh on all shared mocap, against a naive parser.

Run: ``python bench/bench_bvh.py``. Both sides read the same gzip'd files; the
naive baseline gunzips, then parses the MOTION block line by line with Python's
float() into a list of lists and one numpy array, and builds no rotations, so
the ratio understates read_bvh's lead. No time limits are asserted.
"""

from __future__ import annotations

import gzip
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.bvh import read_bvh  # noqa: E402

MOCAP = REPO.parent / "shared" / "data" / "mocap"


def naive_motion(path: Path) -> np.ndarray:
    """The MOTION block parsed the straightforward way: one line, one list of floats."""
    lines = gzip.decompress(path.read_bytes()).decode("utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "MOTION") + 3
    return np.array([[float(x) for x in line.split()] for line in lines[start:] if line.strip()])


def timed(fn, paths) -> tuple[float, list]:
    start = time.perf_counter()
    results = [fn(p) for p in paths]
    return time.perf_counter() - start, results


def main() -> int:
    paths = sorted(MOCAP.glob("*/*.bvh.gz"))
    if not paths:
        print(f"no mocap found under {MOCAP}")
        return 1
    megabytes = sum(len(gzip.decompress(p.read_bytes())) for p in paths) / 1e6
    naive_s, arrays = timed(naive_motion, paths)
    fast_s, motions = timed(read_bvh, paths)
    frames = sum(m.n_frames for m in motions)
    assert frames == sum(len(a) for a in arrays)
    print(f"{len(paths)} files, {frames} frames, {megabytes:.1f} MB of BVH text")
    for label, seconds in (("read_bvh (parse + rotation matrices)", fast_s), ("naive line-by-line float parse", naive_s)):
        print(f"{label:38s} {seconds:6.2f} s  {frames / seconds:9.0f} frames/s  {megabytes / seconds:6.1f} MB/s")
    print(f"speed-up of read_bvh over the naive parse: {naive_s / fast_s:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
