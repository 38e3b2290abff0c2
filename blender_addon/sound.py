"""From a Video Sequencer sound strip to an audio file and a time range in it.

Blender plays a sound strip so that the file time at scene frame ``f`` is::

    t(f) = (f - frame_start + animation_offset_start) / fps - sound_offset

with ``fps = render.fps / render.fps_base``; ``frame_start`` is where the
strip's content begins (before its handles), ``animation_offset_start`` (an
integer number of frames) is the hard trim of the content and
``sound_offset`` (seconds) delays the sound inside the strip. This is
``BKE_sound_add_scene_sound``: the audio entry starts at the left handle and
skips ``(frame_offset_start + animation_offset_start) / fps - sound_offset``
seconds of the file. The names are the same in 4.2, 4.5 and 5.0
(``frame_offset_start`` is the soft trim, already inside ``frame_final_start``),
except that ``sound_offset`` only exists from 4.3 (read as 0 before).

The dance covers the strip's visible range ``[frame_final_start,
frame_final_end)`` unless a frame range is given; where the sound starts
later than that (a positive ``sound_offset``), it starts where the sound does.
"""

from __future__ import annotations

import hashlib
import math
import os
import tempfile
from dataclasses import dataclass

import bpy

from . import compat


class SoundError(ValueError):
    """A sound strip problem; the message says what to do."""


@dataclass
class SoundSpan:
    """What the engine needs from a strip, and where the result goes."""

    strip_name: str
    path: str  # a readable audio file
    fps: float  # exact scene rate
    frame_start: float  # scene frame where motion frame 0 plays
    frame_end: float  # scene frame where the dance ends (exclusive)
    start: float  # file time at frame_start, seconds
    end: float  # file time at frame_end, seconds
    packed: bool = False  # path is a temporary copy of a packed sound

    def frame_at(self, seconds_from_start: float) -> float:
        """Scene frame of a time measured from the span's start."""
        return self.frame_start + seconds_from_start * self.fps


def find_sound_strip(scene: bpy.types.Scene, name: str = ""):
    """The strip named ``name``; else the active strip when it is a sound; else
    the first sound strip (lowest channel, then earliest). None when there is none."""
    strips = compat.sound_strips(scene)
    if name:
        return next((s for s in strips if s.name == name), None)
    editor = scene.sequence_editor
    active = getattr(editor, "active_strip", None) if editor else None
    if active is not None and active.type == "SOUND":
        return active
    if not strips:
        return None
    return min(strips, key=lambda s: (s.channel, s.frame_final_start, s.name))


def file_time(strip, frame: float, fps: float) -> float:
    """Seconds into the sound file that play at scene ``frame``."""
    offset = float(getattr(strip, "animation_offset_start", 0) or 0)
    delay = float(getattr(strip, "sound_offset", 0.0) or 0.0)
    return (frame - strip.frame_start + offset) / fps - delay


def frame_at_file_time(strip, seconds: float, fps: float) -> float:
    """The scene frame where file time ``seconds`` plays (inverse of :func:`file_time`)."""
    offset = float(getattr(strip, "animation_offset_start", 0) or 0)
    delay = float(getattr(strip, "sound_offset", 0.0) or 0.0)
    return strip.frame_start - offset + (seconds + delay) * fps


def sound_file(strip, temp_dir: str | None = None) -> tuple[str, bool]:
    """A readable file with the strip's audio: the sound's own file (relative
    and library paths resolved), or a temporary copy of a packed sound."""
    sound = getattr(strip, "sound", None)
    if sound is None:
        raise SoundError(f"sound strip {strip.name!r} has no sound; pick another strip or re-add the audio")
    packed = getattr(sound, "packed_file", None)
    if packed is not None:
        data = bytes(packed.data)
        ext = os.path.splitext(sound.filepath)[1] or ".wav"
        folder = temp_dir or tempfile.gettempdir()
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"packed_{hashlib.sha1(data).hexdigest()[:16]}{ext}")
        if not os.path.isfile(path) or os.path.getsize(path) != len(data):
            with open(path, "wb") as handle:
                handle.write(data)
        return path, True
    path = bpy.path.abspath(sound.filepath, library=sound.library)
    path = os.path.normpath(path)
    if not sound.filepath or not os.path.isfile(path):
        raise SoundError(f"the audio file of strip {strip.name!r} was not found ({path or 'no path'}); "
                         "relink it (File > External Data > Find Missing Files) or pack it into the .blend")
    return path, False


def sound_span(scene: bpy.types.Scene, strip, frame_range: tuple[float, float] | None = None,
               temp_dir: str | None = None) -> SoundSpan:
    """The file and time range for ``strip`` over ``frame_range`` (default: the
    strip's visible range), clipped to the strip and to where the sound plays."""
    fps = compat.scene_fps(scene)
    lo, hi = float(strip.frame_final_start), float(strip.frame_final_end)
    if frame_range is not None:
        lo, hi = max(lo, float(frame_range[0])), min(hi, float(frame_range[1]))
        if hi <= lo:
            raise SoundError(f"frames {frame_range[0]:g}-{frame_range[1]:g} do not overlap strip "
                             f"{strip.name!r} ({strip.frame_final_start}-{strip.frame_final_end}); "
                             "set a frame range inside the strip")
    start, end = file_time(strip, lo, fps), file_time(strip, hi, fps)
    if start < 0:  # the sound is delayed inside the strip: start where it begins
        lo, start = frame_at_file_time(strip, 0.0, fps), 0.0
    if end - start < 1.0 or not math.isfinite(end):
        raise SoundError(f"strip {strip.name!r} plays less than a second of audio in that range; "
                         "lengthen the strip or the frame range")
    path, packed = sound_file(strip, temp_dir)
    return SoundSpan(strip.name, path, fps, lo, hi, start, end, packed)
