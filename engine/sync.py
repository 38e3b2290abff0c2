"""Beat warping: a monotone piecewise-cubic time warp that lands kinetic beats on music beats.

DESIGN.md calls this a strong baseline for sync and a fair post-process (the
seed paper's Algorithm 2 "synchronizes movement speed with music tempo"). It
changes local speed, so it is judged together with naturalness metrics.
"""

from __future__ import annotations

import numpy as np
from scipy.interpolate import PchipInterpolator

from engine.metrics import kinetic_beats
from engine.motion import Motion
from engine.normalize import resample_at


def match_beats(kinetic: np.ndarray, music: np.ndarray, max_shift: float) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (kinetic time, music time), strictly increasing on both sides,
    each kinetic beat taking its nearest music beat within ``max_shift`` s."""
    if len(kinetic) == 0 or len(music) == 0:
        return np.zeros(0), np.zeros(0)
    nearest = music[np.clip(np.searchsorted(music, kinetic), 1, len(music) - 1) - 1]
    upper = music[np.clip(np.searchsorted(music, kinetic), 0, len(music) - 1)]
    target = np.where(np.abs(upper - kinetic) < np.abs(nearest - kinetic), upper, nearest)
    keep = np.abs(target - kinetic) <= max_shift
    src, dst = kinetic[keep], target[keep]
    order = np.concatenate([[True], np.diff(dst) > 0])  # one kinetic beat per music beat
    return src[order], dst[order]


def beat_warp(motion: Motion, music_beats, strength: float = 1.0, max_shift: float | None = None,
              passes: int = 3) -> Motion:
    """:func:`warp_once` repeated: each warp changes local speed and so nudges the
    smoothed speed minima; a few passes settle them on the beats."""
    for _ in range(passes):
        motion = warp_once(motion, music_beats, strength, max_shift)
    return motion


def warp_once(motion: Motion, music_beats, strength: float = 1.0, max_shift: float | None = None) -> Motion:
    """Time-warp ``motion`` (same length and fps) so kinetic beats fall on music beats.

    ``music_beats`` are seconds on the motion's timeline. ``strength`` in [0, 1]
    moves each kinetic beat that fraction of the way. Beats further than
    ``max_shift`` (default: half the median music beat period, so every
    kinetic beat moves to its nearest music beat) stay put.
    """
    music = np.asarray(music_beats, dtype=float)
    if len(music) < 2 or motion.frames < 4:
        return motion
    if max_shift is None:
        max_shift = float(np.median(np.diff(music))) / 2
    src, dst = match_beats(kinetic_beats(motion.positions, motion.fps), music, max_shift)
    if len(src) == 0:
        return motion
    dst = src + strength * (dst - src)
    end = (motion.frames - 1) / motion.fps
    out_knots = np.concatenate([[0.0], dst, [end]])
    in_knots = np.concatenate([[0.0], src, [end]])
    keep = np.concatenate([[True], np.diff(out_knots) > 1e-6]) & (out_knots <= end)
    times = np.arange(motion.frames) / motion.fps
    # a monotone cubic warp: its slope (the local speed factor) has no jumps,
    # which would move the smoothed speed minima off the knots
    source_times = PchipInterpolator(out_knots[keep], in_knots[keep])(times)
    return resample_at(motion, source_times * motion.fps)
