"""Beat markers on the scene's timeline.

Time 0 of the beat times is ``frame_start`` (the sound strip's start, where the
dance starts); a beat at t seconds lands on the nearest whole frame to
``frame_start + t * fps`` (timeline markers sit on whole frames). Names carry a
prefix so that they can be removed again without touching the artist's own
markers: ``"<prefix>:<n>"`` for beat n (counted from 1) and ``"<prefix>:bar<m>"``
for the downbeat that opens bar m.
"""

from __future__ import annotations

import math
from typing import Iterable

import bpy


def _is_ours(name: str, prefix: str) -> bool:
    return name.startswith(prefix + ":")


def add_beat_markers(scene: bpy.types.Scene, beat_times_seconds: Iterable[float], frame_start: float,
                     fps: float, downbeats: Iterable[float] | None = None,
                     prefix: str = "beat") -> list:
    """Add a timeline marker per beat; returns the new markers in time order.

    ``downbeats`` are times in seconds (normally a subset of the beats); a beat
    within half a frame of a downbeat is named as a downbeat. Beats that fall on
    the same frame get one marker (the downbeat if either is one). ``fps`` is
    the exact scene rate, ``fps / fps_base``.
    """
    if not (math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be positive, got {fps}")
    half_frame = 0.5 / fps
    beats = sorted(float(t) for t in beat_times_seconds if math.isfinite(t))
    downs = sorted(float(t) for t in (downbeats or ()) if math.isfinite(t))
    is_down = {}
    for t in beats:
        is_down[t] = False
    for d in downs:  # mark the nearest beat, or add the downbeat if no beat is near
        near = min(beats, key=lambda t: abs(t - d), default=None)
        if near is not None and abs(near - d) <= half_frame:
            is_down[near] = True
        else:
            is_down[d] = True
    by_frame: dict[int, bool] = {}
    for t in sorted(is_down):
        frame = int(math.floor(frame_start + t * fps + 0.5))
        by_frame[frame] = by_frame.get(frame, False) or is_down[t]
    markers = []
    beat_number = bar_number = 0
    for frame in sorted(by_frame):
        beat_number += 1
        if by_frame[frame]:
            bar_number += 1
            name = f"{prefix}:bar{bar_number}"
        else:
            name = f"{prefix}:{beat_number}"
        marker = scene.timeline_markers.new(name, frame=frame)
        marker.select = False
        markers.append(marker)
    return markers


def remove_beat_markers(scene: bpy.types.Scene, prefix: str = "beat") -> int:
    """Remove the markers :func:`add_beat_markers` made with ``prefix``; returns how many."""
    ours = [m for m in scene.timeline_markers if _is_ours(m.name, prefix)]
    for marker in ours:
        scene.timeline_markers.remove(marker)
    return len(ours)
