"""Real scenes for the add-on tests: the bundled song in the Sequencer, the demo rig.

No engine imports here (the Blender-only environments have no torch): the
engine runs in a child process, the dev environment's Python when this one
lacks torch (``CHOREO_ENGINE_PYTHON``, the same hook pipelines use).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import bpy
import pytest

from blender_addon import compat, demo, engine_process

ROOT = Path(__file__).resolve().parents[1]
SONG = ROOT / "blender_addon" / "assets" / "Kevin_MacLeod_-_Vibe_Ace.hq.ogg"
FPS = 30
STRIP_START = 11  # scene frame of the strip's first visible frame
SONG_OFFSET = 20.0  # seconds of the song cut off before it (left handle)


def audaspace() -> bool:
    """Whether this bpy can make sound strips (the bpy 4.2 wheel is built without Audaspace)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    try:
        demo.add_sound_strip(scene, SONG)
    except RuntimeError:
        return False
    return True


AUDASPACE = audaspace()
DEV_PYTHON = ROOT / ".venv" / "bin" / "python"  # bpy 4.5: makes sound strips for the 4.2 wheel
needs_audaspace = pytest.mark.skipif(not AUDASPACE and not DEV_PYTHON.exists(),
                                     reason="this bpy wheel is built without Audaspace (no sound strips "
                                     "can be made) and there is no bpy 4.5 environment to make them")


def engine_python() -> str | None:
    """A Python that runs the engine: ours, else the dev environment's."""
    env = engine_process.child_env()
    if engine_process.has_engine_deps(sys.executable, env):
        return sys.executable
    dev = ROOT / ".venv" / "bin" / "python"
    if dev.exists() and engine_process.has_engine_deps(str(dev), env):
        return str(dev)
    return None


def use_engine() -> str:
    python = engine_python()
    if python is None:
        pytest.skip("no Python with the engine's dependencies")
    if python != sys.executable:
        os.environ["CHOREO_ENGINE_PYTHON"] = python
    return python


def generation_available() -> bool:
    """The generator's model, retargeting and the rest-pose export are all there."""
    return all(p.exists() for p in (ROOT / "engine" / "retarget.py", ROOT / "blender_addon" / "rest_pose.py",
                                     ROOT / "engine" / "assets" / "choreo_dance_gan.safetensors"))


needs_generation = pytest.mark.skipif(not generation_available(),
                                      reason="generation needs engine/retarget.py, blender_addon/rest_pose.py "
                                      "and the shipped model")


def fresh_scene(fps: int = FPS):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = fps, 1.0
    return scene


def add_song(scene, seconds: float = 6.0, frame: int = STRIP_START, offset: float = SONG_OFFSET, name="Music"):
    """The bundled song, cut to ``seconds`` starting ``offset`` s into it, at ``frame``.

    The bpy 4.2 wheel has no Audaspace and cannot make sound strips; there the
    dev environment's bpy 4.5 makes the strip in a .blend which is then opened
    (4.2 reads it). That replaces the session's file: call this first, and use
    the returned strip's scene (``strip.id_data``).
    """
    if not AUDASPACE:
        return _song_from_newer_blender(scene, seconds, frame, offset, name)
    strip = demo.add_sound_strip(scene, SONG, name=name)
    fps = compat.scene_fps(scene)
    strip.frame_start = frame - offset * fps
    strip.frame_final_start = frame
    strip.frame_final_end = frame + int(round(seconds * fps))
    return strip


def _song_from_newer_blender(scene, seconds, frame, offset, name):
    import hashlib
    import subprocess
    import tempfile

    fps, base = scene.render.fps, scene.render.fps_base
    # keyed on this checkout: the .blend stores the song's absolute path
    checkout = hashlib.sha1(str(ROOT).encode()).hexdigest()[:10]
    path = (Path(tempfile.gettempdir())
            / f"choreo_song_{checkout}_{fps}_{base:.4f}_{seconds}_{frame}_{offset}_{name}.blend")
    if not path.exists():
        code = (f"import sys, bpy; sys.path.insert(0, {str(ROOT)!r}); "
                "from tests.addon_helpers import fresh_scene, add_song; "
                f"scene = fresh_scene({fps}); scene.render.fps_base = {base!r}; "
                f"add_song(scene, {seconds!r}, {frame!r}, {offset!r}, {name!r}); "
                f"bpy.ops.wm.save_as_mainfile(filepath={str(path)!r})")
        subprocess.run([str(DEV_PYTHON), "-c", code], check=True, capture_output=True, timeout=300,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    bpy.ops.wm.open_mainfile(filepath=str(path))
    return bpy.context.scene.sequence_editor.sequences_all[name]


def dancer(scene, name: str = "Dancer", x: float = 0.0):
    obj = demo.build_armature(scene, name)
    obj.location.x = x
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj


def snapshot(scene) -> dict:
    """Everything a generation may touch, to compare before and after."""
    objects = {}
    for obj in bpy.data.objects:
        anim = obj.animation_data
        objects[obj.name] = None if anim is None else {
            "action": anim.action.name if anim.action else None,
            "tracks": [(t.name, t.mute, [(s.name, s.action.name if s.action else None) for s in t.strips])
                       for t in anim.nla_tracks]}
    settings = getattr(scene, "choreo", None)
    return {
        "actions": sorted(a.name for a in bpy.data.actions),
        "objects": objects,
        "markers": sorted((m.name, m.frame) for m in scene.timeline_markers),
        "frame": scene.frame_current,
        "report": None if settings is None else (len(settings.report), settings.report_summary,
                                                 settings.beats_file),
    }


def key_range(action) -> tuple[float, float]:
    frames = [p.co[0] for fc in compat.iter_action_fcurves(action) for p in fc.keyframe_points]
    return min(frames), max(frames)


def has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None
