"""Validate and repair a 10-minute dance, against the dance's own duration.

Run: ``python bench/bench_validate.py [--minutes 10] [--fps 30]``.

The dance is real mocap: salsa lead and follow, pop and modern takes converted to
SMPL-24 (engine.motion.load_motion), resampled to 30 fps and laid end to end (each
take's root continues from where the previous one ended) until 10 minutes are
reached. The seams are real discontinuities, so the repair has pops to fix as well as
the takes' own defects. Prints the seconds for validate, repair (which validates the
result again) and both, with their ratio to the dance's duration. No time limits are
asserted; the machine's load shows in the numbers.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.motion import Motion, load_motion  # noqa: E402
from engine.normalize import resample  # noqa: E402
from engine.repair import repair  # noqa: E402
from engine.validate import validate  # noqa: E402

MOCAP = REPO.parent / "shared" / "data" / "mocap"
TAKES = ("cmu_salsa/60_01_scaled.bvh.gz", "cmu_salsa/61_02_scaled.bvh.gz",
         "cmu_pop_131/131_03.bvh.gz", "cmu_modern_05/005_02.bvh.gz",
         "cmu_modern_05/005_05.bvh.gz", "cmu_salsa/60_10_scaled.bvh.gz")


def build_dance(minutes: float, fps: float) -> Motion:
    clips = [resample(load_motion(MOCAP / t), fps) for t in TAKES]
    need = int(round(minutes * 60 * fps))
    rots, roots, total, i = [], [], 0, 0
    offset = np.zeros(3)
    while total < need:
        clip = clips[i % len(clips)]
        root = clip.root_translation.copy()
        root[:, :2] += offset[:2] - root[0, :2]
        offset = root[-1]
        rots.append(clip.rotations)
        roots.append(root)
        total += clip.frames
        i += 1
    return Motion(np.concatenate(rots)[:need], np.concatenate(roots)[:need], fps, name="bench")


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--repeat", type=int, default=3, help="runs; the fastest is reported")
    args = parser.parse_args()
    dance = build_dance(args.minutes, args.fps)
    duration = dance.duration
    print(f"dance: {dance.frames} frames at {dance.fps:g} fps = {duration:.0f} s "
          f"({len(TAKES)} real takes tiled)")

    def fresh():
        return Motion(dance.rotations, dance.root_translation, dance.fps, name="bench")

    best = None
    for _ in range(max(1, args.repeat)):
        report, tv, cv = _timed(lambda: validate(fresh()))
        (fixed, before, after), tr, cr = _timed(lambda: repair(fresh(), before=report))
        run = (tv + tr, tv, tr, cv, cr)
        best = run if best is None or run[0] < best[0] else best
    total, tv, tr, cv, cr = best
    s = report.summary
    print(f"validate : {tv:6.2f} s wall ({cv:5.2f} s CPU)  {tv / duration:.5f} s per s of dance "
          f"({duration / tv:.0f}x real time); {s['errors']} errors, {s['warnings']} warnings, "
          f"score {s['score']}")
    print(f"repair   : {tr:6.2f} s wall ({cr:5.2f} s CPU)  {tr / duration:.5f} s per s of dance "
          f"(fixes + re-validation); after: {after.summary['errors']} errors, "
          f"score {after.summary['score']}")
    print(f"total    : {total:6.2f} s wall ({cv + cr:5.2f} s CPU)  {total / duration:.5f} s per s of "
          f"dance ({duration / total:.0f}x real time; target: under 2 s); best of {args.repeat}")
    print(f"repairs  : {after.summary['repairs']}")


if __name__ == "__main__":
    main()
