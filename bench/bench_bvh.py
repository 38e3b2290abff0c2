"""Throughput of engine.bvh on all shared mocap, against a naive parser.

Run: ``python bench/bench_bvh.py``. Prints, for the same already-gunzipped
text of every file:
- the MOTION block parsed by read_bvh's numpy parser, and by a naive
  line-by-line Python ``float()`` parse (same numbers, same array), with the ratio;
- the whole read_bvh (gunzip, hierarchy, numbers, rotation matrices) per file.
No time limits are asserted; the machine's load shows in the numbers.
"""

from __future__ import annotations

import gzip
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine import bvh  # noqa: E402

MOCAP = REPO.parent / "shared" / "data" / "mocap"


def motion_block(raw: bytes) -> tuple[bytes, int, int, int]:
    """(motion text, frames, channels, line of 'Frame Time') as read_bvh sees them."""
    header, frames, _, body, time_line = bvh._split_sections(raw)
    return body, frames, bvh._HierarchyParser(header).parse().n_channels, time_line


def naive_parse(body: bytes, frames: int) -> np.ndarray:
    """The straightforward way: one line, one list of Python floats."""
    rows = [[float(x) for x in line.split()] for line in body.decode("utf-8").splitlines() if line.strip()]
    return np.array(rows[:frames])


def timed(fn, items) -> tuple[float, list]:
    start = time.perf_counter()
    results = [fn(*item) for item in items]
    return time.perf_counter() - start, results


def report(label: str, seconds: float, frames: int, megabytes: float) -> None:
    print(f"{label:44s} {seconds:6.2f} s {frames / seconds:9.0f} frames/s {megabytes / seconds:6.1f} MB/s")


def main() -> int:
    paths = sorted(MOCAP.glob("*/*.bvh.gz"))
    if not paths:
        print(f"no mocap found under {MOCAP}")
        return 1
    raws = [gzip.decompress(p.read_bytes()) for p in paths]
    blocks = [motion_block(raw) for raw in raws]
    megabytes = sum(len(b[0]) for b in blocks) / 1e6
    frames = sum(b[1] for b in blocks)
    print(f"{len(paths)} files, {frames} frames, {megabytes:.1f} MB of MOTION text")

    naive_s, naive = timed(naive_parse, [(b[0], b[1]) for b in blocks])
    numpy_s, parsed = timed(bvh._parse_motion, blocks)
    assert all(np.array_equal(a, b) for a, b in zip(naive, parsed))
    report("MOTION parse, naive line-by-line float()", naive_s, frames, megabytes)
    report("MOTION parse, read_bvh's numpy parser", numpy_s, frames, megabytes)
    print(f"numpy parser speed-up over naive: {naive_s / numpy_s:.2f}x")

    full_s, _ = timed(bvh.read_bvh, [(p,) for p in paths])
    report("read_bvh, whole file (gzip + rotations)", full_s, frames, sum(map(len, raws)) / 1e6)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
