"""The Blender add-on against the real bpy and a real engine process.

Runs under bpy 4.5 (with the engine in-process Python) and, as Blender-facing
tests, under 4.2 and 5.0 with the dev environment's Python as the engine
Python (the preferences' "another interpreter" path). The bpy 4.2 wheel has
no Audaspace, so the tests that need sound strips skip there.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")

import blender_addon  # noqa: E402
from blender_addon import compat, engine_process, generation, keying, sound  # noqa: E402
from tests.addon_helpers import (AUDASPACE, ROOT, SONG, STRIP_START, SONG_OFFSET, add_song, dancer,  # noqa: E402
                                 fresh_scene, generation_available, key_range, needs_audaspace,
                                 needs_generation, snapshot, use_engine)

pytestmark = pytest.mark.blender


@pytest.fixture
def addon():
    fresh_scene()
    blender_addon.register()
    yield blender_addon
    blender_addon.unregister()


@pytest.fixture(scope="module", autouse=True)
def _end_engine():
    yield
    engine_process.shutdown()


# --------------------------------------------------------------------------- registration

def _leftovers() -> list[str]:
    found = [n for n in dir(bpy.types) if n.startswith(("CHOREO_", "ChoreoSettings", "ChoreoJob", "ChoreoViolation"))]
    found += [n for n in ("choreo",) if hasattr(bpy.types.Scene, n)]
    found += [n for n in ("choreo_job",) if hasattr(bpy.types.WindowManager, n)]
    found += [h.__name__ for h in bpy.app.handlers.load_post if h.__module__.startswith("blender_addon")]
    found += [op for op in dir(bpy.ops.choreo) if hasattr(getattr(bpy.ops.choreo, op), "poll")
              and _op_registered(op)]
    return found


def _classes_registered() -> list[str]:
    from blender_addon import operators, panel, preferences, properties

    classes = (*properties.CLASSES, *preferences.CLASSES, *operators.CLASSES, *panel.CLASSES)
    return [cls.__name__ for cls in classes if cls.is_registered]


def _op_registered(op: str) -> bool:
    try:
        getattr(bpy.ops.choreo, op).get_rna_type()
    except KeyError:
        return False
    return True


def test_register_unregister_twice_leaves_nothing():
    fresh_scene()
    assert _leftovers() == []
    for _ in range(2):
        blender_addon.register()
        assert bpy.context.scene.choreo.style == "salsa_lead"
        assert bpy.ops.choreo.generate.poll()
        assert {"REGISTER", "UNDO"} <= set(bpy.types.CHOREO_OT_generate.bl_options)
        assert len(_classes_registered()) >= 12
        blender_addon.unregister()
        assert _leftovers() == [] and _classes_registered() == []
        assert engine_process.warm_process() is None


# --------------------------------------------------------------------------- sound strip timing

@needs_audaspace
def test_sound_span_follows_the_strip_timing_and_packed_sounds(tmp_path):
    scene = fresh_scene(fps=24)
    scene.render.fps_base = 1.001  # 23.976
    strip = add_song(scene, seconds=6.0)
    scene = strip.id_data
    fps = compat.scene_fps(scene)  # 24 / float32(1.001)
    delay = 0.25 if hasattr(strip, "sound_offset") else 0.0  # Strip.sound_offset: 4.3+
    if delay:
        strip.sound_offset = delay
    span = sound.sound_span(scene, strip)
    assert span.frame_start == STRIP_START and span.frame_end == strip.frame_final_end
    expected = (STRIP_START - strip.frame_start + strip.animation_offset_start) / fps - delay
    assert span.start == pytest.approx(expected, abs=1e-4)
    assert span.start == pytest.approx(SONG_OFFSET - delay, abs=1.0 / fps)  # frame_start is whole frames
    assert span.end - span.start == pytest.approx((strip.frame_final_end - STRIP_START) / fps, abs=1e-6)
    assert sound.frame_at_file_time(strip, span.start, fps) == pytest.approx(STRIP_START)
    # a hard trim (animation_offset_start) shifts the file time, a sub-range clips it
    strip.animation_offset_start = 48
    span2 = sound.sound_span(scene, strip, frame_range=(STRIP_START + 24, STRIP_START + 72))
    assert span2.start == pytest.approx(span.start + (48 + 24) / fps, abs=1e-4)
    assert span2.frame_start == STRIP_START + 24 and span2.frame_end == STRIP_START + 72
    # a packed sound is written to a temporary file with the same bytes
    strip.sound.pack()
    packed = sound.sound_span(scene, strip, temp_dir=str(tmp_path))
    assert packed.packed and open(packed.path, "rb").read() == SONG.read_bytes()
    # relative paths resolve against the .blend
    strip.sound.unpack(method="REMOVE") if hasattr(strip.sound, "unpack") else None
    assert sound.find_sound_strip(scene) == strip


# --------------------------------------------------------------------------- the engine process

def test_engine_process_streams_progress_and_cancels(tmp_path):
    """Progress lines parsed from a real engine process; Cancel ends it at once."""
    python = use_engine()
    env = engine_process.child_env()
    request = {"mode": "beats", "audio": str(SONG), "start": 0.0, "end": 12.0, "out_dir": str(tmp_path / "a")}
    job = engine_process.start_job(request, python, env, reuse=True)
    seen = []
    deadline = time.monotonic() + 240
    while not job.finished and time.monotonic() < deadline:
        seen += job.poll()  # never blocks
        time.sleep(0.05)
    assert job.result is not None, job.error
    progress = [e["progress"] for e in seen if "progress" in e]
    assert progress and all(0.0 <= p <= 1.0 for p in progress) and progress == sorted(progress)
    assert {e["stage"] for e in seen if "stage" in e} >= {"analyze", "done"}
    beats = json.loads(open(job.result["beats"]).read())
    assert 100 < job.result["tempo"] < 160 and len(beats["beats"]) > 15
    warm = engine_process.warm_process()
    assert warm is job.process  # kept warm for the next request

    # cancel in mid-request: the process ends, the job says cancelled, no result
    job = engine_process.start_job({**request, "end": 60.0, "out_dir": str(tmp_path / "b")}, python, env)
    assert job.process is warm
    while not job.events:
        job.poll()
        time.sleep(0.01)
    job.cancel()
    engine_process.finish(job)
    assert job.cancelled and job.result is None and not warm.alive
    assert engine_process.warm_process() is None
    assert not (tmp_path / "b" / "beats.json").exists()


# --------------------------------------------------------------------------- operators

def _setup_dance_scene(seconds=6.0):
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0
    strip = add_song(scene, seconds=seconds)
    scene = strip.id_data
    obj = dancer(scene)
    scene.choreo.armature = obj
    return scene, strip, obj


@needs_audaspace
@pytest.mark.skipif(not (ROOT / "blender_addon" / "rest_pose.py").exists(), reason="needs rest_pose.py")
def test_cancel_mid_generation_leaves_the_scene_unchanged(addon):
    """The modal path's loop (step on each timer tick), cancelled after the engine has started."""
    use_engine()
    scene, _strip, obj = _setup_dance_scene()
    before = snapshot(scene)
    from blender_addon.operators import options_from

    plan = generation.plan_generation(scene, [obj], options_from(bpy.context))
    run = generation.Run(plan)
    # cancel once the generator is at work (with no model yet, once the engine has started)
    wanted = "generate" if generation_available() else None
    states: list[str] = []
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and run.step() == "running":
        states.append(run.state)
        if run.job.events and (wanted is None or run.job.stage == wanted):
            break
        time.sleep(0.01)
    assert set(states) == {"running"} and run.job.events, run.job.error
    run.cancel()
    assert run.state == "cancelled"
    assert snapshot(scene) == before


@needs_audaspace
@needs_generation
def test_generate_keys_a_new_action_at_the_strip_and_undo_removes_it(addon):
    use_engine()
    scene, strip, obj = _setup_dance_scene()
    # the artist's own animation must survive
    own = bpy.data.actions.new("Own")
    obj.animation_data_create().action = own
    settings = scene.choreo
    settings.seed = 3
    before = snapshot(scene)
    assert bpy.ops.choreo.generate("EXEC_DEFAULT") == {"FINISHED"}
    new = [a for a in bpy.data.actions if a.get("choreo_curves")]
    assert len(new) == 1
    action = new[0]
    first, last = key_range(action)
    assert first == strip.frame_final_start and last == strip.frame_final_end - 1
    assert obj.animation_data.action == own
    assert [m for m in scene.timeline_markers if m.name.startswith("beat:")]
    assert settings.report_summary
    assert bpy.context.window_manager.choreo_job.running is False
    curves = keying.load_curves(action["choreo_curves"])
    assert int(action["choreo_seed"]) == 3

    # Undo: one step removes the whole generation. Background bpy has no undo stack for
    # operators called from Python (ed.undo needs a window), so check what Blender relies
    # on, the UNDO flag, and that removing the generation restores the scene.
    assert {"REGISTER", "UNDO"} <= set(bpy.types.CHOREO_OT_generate.bl_options)
    try:
        bpy.ops.ed.undo_push(message="after")
        bpy.ops.ed.undo()
        undone = snapshot(bpy.context.scene)
    except RuntimeError:
        undone = None
    if undone is not None and undone["actions"] == before["actions"]:
        return
    keying.remove_generation(obj, action)
    for marker in [m for m in scene.timeline_markers if m.name.startswith("beat:")]:
        scene.timeline_markers.remove(marker)
    after = snapshot(scene)
    assert after["actions"] == before["actions"] and after["objects"] == before["objects"]
    assert curves.frames > 0


@needs_audaspace
@needs_generation
def test_crowd_variations_distinct_seeds_same_timing_and_regenerate_range(addon):
    use_engine()
    scene, strip, obj = _setup_dance_scene(seconds=5.0)
    other = dancer(scene, "Dancer.B", x=1.5)
    for o in (obj, other):
        o.select_set(True)
    s = scene.choreo
    s.use_selected, s.variations, s.seed, s.add_markers = True, 2, 10, False
    assert bpy.ops.choreo.generate("EXEC_DEFAULT") == {"FINISHED"}
    made = [a for a in bpy.data.actions if a.get("choreo_curves")]
    assert sorted(int(a["choreo_seed"]) for a in made) == [10, 11, 12, 13]
    assert {key_range(a) for a in made} == {(strip.frame_final_start, strip.frame_final_end - 1)}
    for o in (obj, other):
        tracks = o.animation_data.nla_tracks
        assert len(tracks) == 2 and [t.mute for t in tracks] == [False, True]
    a0, b0 = (generation.latest_generation(o) for o in (obj, other))
    rot = lambda a: keying.load_curves(a["choreo_curves"]).rotations  # noqa: E731
    assert not np.allclose(rot(a0)["L_hip"], rot(b0)["L_hip"])

    # Regenerate range: frames outside are kept, the inside changes, seams are blended
    s.use_selected = False
    lo, hi = strip.frame_final_start + 45, strip.frame_final_start + 105
    s.regen_start, s.regen_end, s.seed = lo, hi, 99
    assert bpy.ops.choreo.regenerate_range("EXEC_DEFAULT") == {"FINISHED"}
    new = generation.latest_generation(obj)
    assert new != a0 and key_range(new) == key_range(a0)
    old_r, new_r = keying.load_curves(a0["choreo_curves"]), keying.load_curves(new["choreo_curves"])
    first = int(strip.frame_final_start)
    for bone, q in old_r.rotations.items():
        np.testing.assert_allclose(new_r.rotations[bone][: lo - first], q[: lo - first], atol=1e-6)
        np.testing.assert_allclose(new_r.rotations[bone][hi + 1 - first:], q[hi + 1 - first:], atol=1e-6)
    inside = slice(lo - first + 15, hi - first - 15)
    assert max(np.abs(new_r.rotations[b][inside] - q[inside]).max() for b, q in old_r.rotations.items()) > 0.05


@needs_audaspace
def test_beat_markers_operators(addon):
    use_engine()
    scene, strip, _obj = _setup_dance_scene(seconds=8.0)
    mine = scene.timeline_markers.new("my marker", frame=5)
    assert bpy.ops.choreo.add_beat_markers("EXEC_DEFAULT") == {"FINISHED"}
    beats = [m for m in scene.timeline_markers if m.name.startswith("beat:")]
    assert 12 <= len(beats) <= 24  # about 131 BPM over 8 s
    assert all(strip.frame_final_start <= m.frame < strip.frame_final_end for m in beats)
    assert any(":bar" in m.name for m in beats)
    assert bpy.ops.choreo.remove_beat_markers("EXEC_DEFAULT") == {"FINISHED"}
    assert list(scene.timeline_markers) == [mine]


def test_cancel_and_jump_operators(addon):
    scene = bpy.context.scene
    job = bpy.context.window_manager.choreo_job
    assert not bpy.ops.choreo.cancel.poll()
    job.running = True
    assert not bpy.ops.choreo.generate.poll()  # one job at a time
    assert bpy.ops.choreo.cancel("EXEC_DEFAULT") == {"FINISHED"} and job.cancel_requested
    job.running = job.cancel_requested = False
    # nothing to jump to yet
    assert bpy.ops.choreo.jump_to_violation("EXEC_DEFAULT", index=0) == {"CANCELLED"}
    item = scene.choreo.report.add()
    item.kind, item.severity, item.frame_start, item.frame_end = "foot_skate", "warning", 42, 50
    assert bpy.ops.choreo.jump_to_violation("EXEC_DEFAULT", index=0) == {"FINISHED"}
    assert scene.frame_current == 42
    scene.frame_set(1)
    assert bpy.ops.choreo.jump_to_violation("EXEC_DEFAULT", kind="foot_skate") == {"FINISHED"}
    assert scene.frame_current == 42


def test_panel_registered_with_the_right_progress_widget(addon):
    """The panel lives in the Choreo tab and uses UILayout.progress where it exists (4.0+).
    (Drawing itself needs a window region, which background bpy does not have.)"""
    from blender_addon import panel

    assert panel.CHOREO_PT_panel.bl_category == "Choreo"
    assert sound.find_sound_strip(bpy.context.scene) is None
    assert hasattr(bpy.types.UILayout, "progress") == panel.HAS_PROGRESS


# --------------------------------------------------------------------------- headless end to end

def _batch(args: list[str], script: bool = False, timeout: int = 900) -> subprocess.CompletedProcess:
    entry = [str(ROOT / "blender_addon" / "batch.py"), "--"] if script else ["-m", "blender_addon.batch"]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, *entry, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def _pixels(path: str) -> np.ndarray:
    image = bpy.data.images.load(path)
    pixels = np.empty(len(image.pixels), dtype=np.float32)
    image.pixels.foreach_get(pixels)
    bpy.data.images.remove(image)
    return pixels


@needs_audaspace
@needs_generation
@pytest.mark.slow
def test_batch_end_to_end_blend_render_and_motion(tmp_path):
    use_engine()
    strip = add_song(fresh_scene(), seconds=6.0)
    scene = strip.id_data
    dancer(scene)
    shot = tmp_path / "shot.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(shot))
    out, movie = tmp_path / "out.blend", tmp_path / "out.mp4"
    first, last = strip.frame_final_start, strip.frame_final_end - 1  # strip is gone after opening out
    proc = _batch(["--blend", str(shot), "--armature", "Dancer", "--seed", "3", "--out", str(out),
                   "--render", str(movie), "--render-frames", str(first + 30), str(first + 59), "--json"],
                  script=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["frame_start"] == first and summary["frame_end"] == last
    assert movie.stat().st_size > 1000  # the shot has no mesh: the picture is empty, the audio is not
    head = movie.read_bytes()
    assert b"avc1" in head  # H.264 video
    assert b"mp4a" in head or not AUDASPACE  # AAC audio (a bpy without Audaspace mixes none)

    bpy.ops.wm.open_mainfile(filepath=str(out))
    scene = bpy.context.scene
    obj = bpy.data.objects["Dancer"]
    action = generation.latest_generation(obj)
    assert key_range(action) == (first, last)
    # two frames half a beat apart differ: the character moves
    tempo = float(summary["tempo"])
    half_beat = max(1, int(round(60.0 / tempo / 2 * compat.scene_fps(scene))))
    from blender_addon import demo, render

    demo.build_body(scene, obj)
    render.setup_preview(scene, str(tmp_path / "x.mp4"), first, first + 60)
    a = render.render_still(scene, str(tmp_path / "a.png"), first + 60)
    b = render.render_still(scene, str(tmp_path / "b.png"), first + 60 + half_beat)
    difference = np.abs(_pixels(a) - _pixels(b))
    assert (difference > 0.05).mean() > 0.002, "the two frames are (nearly) the same"


def test_detect_rig_operator(addon):
    """The rig preset is detected in the engine process (Blender never imports engine.rigs)."""
    use_engine()
    scene = bpy.context.scene
    scene.choreo.armature = dancer(scene)
    before = snapshot(scene)
    assert bpy.ops.choreo.detect_rig("EXEC_DEFAULT") == {"FINISHED"}
    assert scene.choreo.detected_rig.startswith("Dancer: smpl")
    assert snapshot(scene)["actions"] == before["actions"]
