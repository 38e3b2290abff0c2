"""Bad input through the add-on: a clear message that says what to do, and the scene unchanged.

Operators called from Python raise RuntimeError with the message they reported
as an error, which is what these tests read.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

bpy = pytest.importorskip("bpy")

import blender_addon  # noqa: E402
from blender_addon import engine_process, generation  # noqa: E402
from tests.addon_helpers import (ROOT, SONG, add_song, dancer, fresh_scene, needs_audaspace,  # noqa: E402
                                 snapshot, use_engine)

pytestmark = pytest.mark.blender
HAS_REST = (ROOT / "blender_addon" / "rest_pose.py").exists()


@pytest.fixture
def addon():
    fresh_scene()
    blender_addon.register()
    yield bpy.context.scene
    blender_addon.unregister()


@pytest.fixture(scope="module", autouse=True)
def _end_engine():
    yield
    engine_process.shutdown()
    os.environ.pop("CHOREO_ENGINE_PYTHON", None)


def _fails(op, match: str, scene) -> None:
    before = snapshot(scene)
    with pytest.raises(RuntimeError, match=match):
        op("EXEC_DEFAULT")
    assert snapshot(scene) == before
    assert not bpy.context.window_manager.choreo_job.running


def test_no_sound_strip(addon):
    scene = addon
    scene.choreo.armature = dancer(scene)
    _fails(bpy.ops.choreo.generate, r"no sound strip.*Add > Sound", scene)
    _fails(bpy.ops.choreo.add_beat_markers, r"no sound strip", scene)


@needs_audaspace
def test_named_strip_missing_and_too_short(addon):
    scene = addon
    strip = add_song(scene, seconds=0.5)
    scene = strip.id_data
    scene.choreo.armature = dancer(scene)
    _fails(bpy.ops.choreo.generate, r"less than a second", scene)
    strip.frame_final_end = strip.frame_final_start + 90
    scene.choreo.strip = "Nope"
    _fails(bpy.ops.choreo.generate, r"no sound strip named 'Nope'", scene)


@needs_audaspace
def test_not_an_armature_and_edit_mode(addon):
    scene = add_song(addon).id_data
    mesh = bpy.data.objects.new("Box", bpy.data.meshes.new("Box"))
    scene.collection.objects.link(mesh)
    bpy.context.view_layer.objects.active = mesh
    _fails(bpy.ops.choreo.generate, r"'Box' is a mesh, not an armature", scene)
    obj = dancer(scene)
    scene.choreo.armature = obj
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    try:
        _fails(bpy.ops.choreo.generate, r"Edit Mode: switch to Object or Pose Mode", scene)
    finally:
        bpy.ops.object.mode_set(mode="OBJECT")


@needs_audaspace
def test_linked_armature(addon, tmp_path):
    scene = add_song(addon).id_data
    library = tmp_path / "rig_library.blend"
    rig = dancer(scene, "LinkedRig")
    bpy.data.libraries.write(str(library), {rig})
    bpy.data.objects.remove(rig)
    with bpy.data.libraries.load(str(library), link=True) as (_src, dst):
        dst.objects = ["LinkedRig"]
    linked = dst.objects[0]
    scene.collection.objects.link(linked)
    scene.choreo.armature = linked
    assert linked.library is not None
    _fails(bpy.ops.choreo.generate, r"linked from another file.*Library Override", scene)


@needs_audaspace
def test_missing_and_unreadable_audio(addon, tmp_path):
    use_engine()
    scene = addon
    song = tmp_path / "song.ogg"
    shutil.copyfile(SONG, song)
    strip = add_song(scene, seconds=4.0)
    scene = strip.id_data
    strip.sound.filepath = str(song)
    scene.choreo.armature = dancer(scene)
    song.write_bytes(b"OggS" + os.urandom(20000))  # corrupt after the strip was made
    _fails(bpy.ops.choreo.add_beat_markers, r"(?i)corrupt|cannot decode|cannot read|not.*audio", scene)
    if HAS_REST:
        _fails(bpy.ops.choreo.generate, r"(?i)corrupt|cannot decode|cannot read|not.*audio", scene)
    song.unlink()
    _fails(bpy.ops.choreo.generate, r"was not found.*Find Missing Files", scene)


@needs_audaspace
def test_engine_crash_is_reported_and_changes_nothing(addon):
    """A real engine process killed in mid-request (as a crash would end it)."""
    use_engine()
    scene = addon
    scene = add_song(scene, seconds=30.0).id_data
    before = snapshot(scene)
    plan = generation.plan_beats(scene, generation.Options(keep_warm=False))
    run = generation.Run(plan)
    while not run.job.events and run.state == "running":
        run.step()
        time.sleep(0.01)
    os.kill(run.job.process.proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while run.step() == "running" and time.monotonic() < deadline:
        time.sleep(0.02)
    run.close()
    assert run.state == "error"
    assert "stopped unexpectedly" in run.job.error and "Preferences" in run.job.error
    assert snapshot(scene) == before


@needs_audaspace
def test_bad_engine_python(addon, monkeypatch):
    scene = add_song(addon).id_data
    scene.choreo.armature = dancer(scene)
    monkeypatch.setenv("CHOREO_ENGINE_PYTHON", "/nonexistent/python3")
    _fails(bpy.ops.choreo.add_beat_markers, r"does not exist.*Preferences", scene)


# --------------------------------------------------------------------------- headless

def _batch(args: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "blender_addon.batch", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def _one_error_line(proc: subprocess.CompletedProcess, match: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and __import__("re").search(match, lines[0]), proc.stderr
    assert "Traceback" not in proc.stderr


def test_batch_bad_input_exits_non_zero_with_one_line(tmp_path):
    _one_error_line(_batch(["--blend", str(tmp_path / "nope.blend"), "--armature", "X"]), r"does not exist")
    scene = fresh_scene()
    dancer(scene)
    shot = tmp_path / "shot.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(shot))
    _one_error_line(_batch(["--blend", str(shot), "--armature", "Hero"]),
                    r"no object named 'Hero'.*armatures: Dancer")
    _one_error_line(_batch(["--blend", str(shot), "--armature", "Dancer"]), r"no sound strip")
