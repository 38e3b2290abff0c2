"""Keying curves onto a real armature with the real bpy (4.2 LTS, 4.5 LTS and 5.0).

The curves are built with numpy only: this file also runs in the Blender-only
environments (.venv-bpy42, .venv-bpy50), which have no torch.
"""

from __future__ import annotations

import math
import wave

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
import mathutils  # noqa: E402  (comes with bpy)

from blender_addon import compat, keying, markers  # noqa: E402

pytestmark = pytest.mark.blender

MOTION_FPS = 30.0
N_FRAMES = 61  # 2 s of motion
FRAME_START = 101
# (fps, fps_base) as Blender stores them: 23.976, 24, 25, 29.97, 30, 50, 60.
SCENE_RATES = [(24, 1.001), (24, 1.0), (25, 1.0), (30, 1.001), (30, 1.0), (50, 1.0), (60, 1.0)]
BONES = [  # name, parent, rotation mode
    ("root", None, "QUATERNION"),
    ("spine", "root", "XYZ"),
    ("arm", "spine", "ZXY"),
    ("hand", "arm", "AXIS_ANGLE"),
    ("extra", "root", "QUATERNION"),  # never in the curves
]
KEYED = ["root", "spine", "arm", "hand"]


# --------------------------------------------------------------------------- builders

def _make_armature(name: str = "Dancer") -> bpy.types.Object:
    arm = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, arm)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    edit = {}
    for i, (bone, parent, _mode) in enumerate(BONES):
        eb = arm.edit_bones.new(bone)
        eb.head = (0.1 * i, 0.0, 0.3 * i)
        eb.tail = (0.1 * i, 0.05, 0.3 * i + 0.25)
        eb.roll = 0.3 * i
        if parent:
            eb.parent = edit[parent]
        edit[bone] = eb
    bpy.ops.object.mode_set(mode="OBJECT")
    for bone, _parent, mode in BONES:
        obj.pose.bones[bone].rotation_mode = mode
    return obj


def _delete(obj: bpy.types.Object) -> None:
    data = obj.data
    bpy.data.objects.remove(obj)
    bpy.data.armatures.remove(data)


def _axis_angle_quats(t: np.ndarray, axis0, axis1, turns: float) -> np.ndarray:
    """wxyz quaternions for a rotation whose axis drifts and whose angle sweeps
    ``turns`` full turns over t in [0, 1] (so it crosses the hemisphere boundary)."""
    axis = np.outer(1 - t, axis0) + np.outer(t, axis1)
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    angle = 2 * np.pi * turns * (t - 0.2) ** 2 + 0.3
    return np.concatenate([np.cos(angle / 2)[:, None], np.sin(angle / 2)[:, None] * axis], axis=1)


def _synthetic_curves(n: int = N_FRAMES, fps: float = MOTION_FPS) -> dict:
    t = np.linspace(0.0, 1.0, n)
    rng = np.random.default_rng(7)
    rotations = {
        "root": _axis_angle_quats(t, (0, 0, 1), (0.3, 0.2, 1), 1.2),
        "spine": _axis_angle_quats(t, (1, 0.2, 0), (0.5, 1, 0.2), 0.9),
        "arm": _axis_angle_quats(t, (0.2, 1, 0.4), (1, 0.1, 0.3), 1.1),
        "hand": _axis_angle_quats(t, (0, 1, 0), (0.4, 0.6, 0.7), 0.8),
    }
    for q in rotations.values():  # random signs: the keyer must make them continuous
        q *= rng.choice([-1.0, 1.0], size=(n, 1))
    locations = {"root": np.stack([0.5 * np.sin(3 * t), 0.2 * t, 0.1 * np.cos(5 * t)], axis=1)}
    return {"fps": fps, "rotations": rotations, "locations": locations}


# --------------------------------------------------------------------------- helpers

@pytest.fixture
def scene():
    scene = bpy.context.scene
    saved = scene.render.fps, scene.render.fps_base, scene.frame_current
    yield scene
    scene.render.fps, scene.render.fps_base = saved[:2]
    scene.frame_set(saved[2])


@pytest.fixture
def dancer(scene):
    obj = _make_armature()
    yield obj
    for action in [a for a in bpy.data.actions if a.get("choreo_generation")]:
        keying.remove_generation(obj, action)
    _delete(obj)


def _set_fps(scene, fps: int, base: float) -> float:
    scene.render.fps, scene.render.fps_base = fps, base
    return compat.scene_fps(scene)


def _expected_quat(q: np.ndarray, u: float) -> mathutils.Quaternion:
    """Reference: mathutils slerp of the input at fractional motion frame u."""
    i = min(int(math.floor(u)), len(q) - 2)
    a, b = mathutils.Quaternion(q[i]), mathutils.Quaternion(q[i + 1])
    if a.dot(b) < 0:
        b.negate()
    return a.slerp(b, u - i)


def _expected_loc(x: np.ndarray, u: float) -> np.ndarray:
    i = min(int(math.floor(u)), len(x) - 2)
    return x[i] * (1 - (u - i)) + x[i + 1] * (u - i)


def _evaluated_pose(obj, scene, frame: float):
    whole = math.floor(frame)
    scene.frame_set(whole, subframe=frame - whole)
    depsgraph = bpy.context.evaluated_depsgraph_get()
    return obj.evaluated_get(depsgraph).pose.bones


def _angle(q1: mathutils.Quaternion, q2: mathutils.Quaternion) -> float:
    """Angle of the rotation between q1 and q2 (q and -q are the same rotation)."""
    return 2 * math.acos(min(1.0, abs(q1.normalized().dot(q2.normalized()))))


def _fcurves_by_path(action) -> dict:
    out = {}
    for fc in compat.iter_action_fcurves(action):
        out.setdefault(fc.data_path, {})[fc.array_index] = fc
    return out


def _snapshot(action) -> dict:
    snap = {}
    for fc in compat.iter_action_fcurves(action):
        co = np.empty(2 * len(fc.keyframe_points), dtype=np.float32)
        fc.keyframe_points.foreach_get("co", co)
        snap[(fc.data_path, fc.array_index)] = co
    return snap


# --------------------------------------------------------------------------- tests

@pytest.mark.parametrize("rate", SCENE_RATES, ids=lambda r: f"{r[0] / r[1]:.3f}fps")
def test_keys_land_on_scene_frames_and_pose_matches(scene, dancer, rate):
    scene_fps = _set_fps(scene, *rate)
    assert scene_fps == rate[0] / float(np.float32(rate[1]))  # Blender's FPS: fps_base is a float32
    assert abs(scene_fps - rate[0] / rate[1]) < 1e-5
    curves = _synthetic_curves()
    action = keying.key_curves(dancer, curves, FRAME_START, scene_fps, action_name="Choreo seed 3")

    ratio = MOTION_FPS / scene_fps
    n_keys = int(math.floor((N_FRAMES - 1) / ratio + 1e-9)) + 1
    fcurves = _fcurves_by_path(action)
    bones_keyed = {path.split('"')[1] for path in fcurves}
    assert bones_keyed == set(KEYED)  # nothing on "extra"
    modes = {
        'pose.bones["root"].rotation_quaternion': 4, 'pose.bones["root"].location': 3,
        'pose.bones["spine"].rotation_euler': 3, 'pose.bones["arm"].rotation_euler': 3,
        'pose.bones["hand"].rotation_axis_angle': 4,
    }
    assert {path: len(ch) for path, ch in fcurves.items()} == modes
    for channels in fcurves.values():
        for fc in channels.values():
            assert fc.group is not None and fc.group.name == fc.data_path.split('"')[1]
            frames = np.array([kp.co[0] for kp in fc.keyframe_points])
            np.testing.assert_array_equal(frames, FRAME_START + np.arange(n_keys))
            assert fc.keyframe_points[0].interpolation == "LINEAR"

    # Quaternion keys are hemisphere-continuous, Euler keys have no 2*pi jumps.
    quat = np.array([[fcurves['pose.bones["root"].rotation_quaternion'][i].keyframe_points[k].co[1]
                      for i in range(4)] for k in range(n_keys)])
    assert (np.einsum("ij,ij->i", quat[1:], quat[:-1]) > 0).all()
    for bone in ("spine", "arm"):
        euler = np.array([[fcurves[f'pose.bones["{bone}"].rotation_euler'][i].keyframe_points[k].co[1]
                           for i in range(3)] for k in range(n_keys)])
        assert np.abs(np.diff(euler, axis=0)).max() < 2.0  # no 2*pi wraps, no pi flips

    # The NLA strip is named after the action and starts on frame_start.
    (track, strip), = keying.generation_strips(dancer, action)
    assert track.name == strip.name == action.name == "Choreo seed 3"
    assert strip.frame_start == FRAME_START
    if compat.SLOTTED_ACTIONS:
        assert strip.action_slot == action.slots[0]
    assert dancer.animation_data.action is None

    # The evaluated pose equals the curves: at the first key, at frames the two
    # rates share (exact motion frames), and in between (slerp / lerp).
    rotations, locations = curves["rotations"], curves["locations"]
    for k in sorted({0, 1, n_keys // 3, n_keys // 2, n_keys - 1}):
        u = k * ratio
        pose = _evaluated_pose(dancer, scene, FRAME_START + k)
        for bone in KEYED:
            got = pose[bone].matrix_basis.to_quaternion()
            assert _angle(got, _expected_quat(rotations[bone], u)) < 2e-4, (bone, k)
        np.testing.assert_allclose(pose["root"].location, _expected_loc(locations["root"], u), atol=1e-5)
        assert _angle(pose["extra"].matrix_basis.to_quaternion(), mathutils.Quaternion()) < 1e-9
    pose = _evaluated_pose(dancer, scene, FRAME_START)
    got = pose["root"].rotation_quaternion
    assert _angle(got, mathutils.Quaternion(rotations["root"][0])) < 1e-5


def test_existing_animation_is_kept_and_each_call_is_a_new_action(scene, dancer):
    scene_fps = _set_fps(scene, 24, 1.0)
    # The artist's own animation: an active action with keys on two bones.
    dancer.animation_data_create()
    theirs = bpy.data.actions.new("Artist walk")
    dancer.animation_data.action = theirs
    extra = dancer.pose.bones["extra"]
    for frame, angle in ((1, 0.0), (200, 1.0)):
        extra.rotation_quaternion = mathutils.Quaternion((1, 0, 0), angle)
        extra.keyframe_insert("rotation_quaternion", frame=frame)
    dancer.pose.bones["spine"].keyframe_insert("location", frame=1)
    their_track = dancer.animation_data.nla_tracks.new()
    their_track.name = "Artist layer"
    their_track.strips.new("walk", 1, theirs)
    before = _snapshot(theirs)
    actions_before = set(bpy.data.actions)

    first = keying.key_curves(dancer, _synthetic_curves(), FRAME_START, scene_fps, action_name="Choreo seed 3")
    second = keying.key_curves(dancer, _synthetic_curves(), FRAME_START, scene_fps, action_name="Choreo seed 3")
    assert first != second and first.name != second.name
    assert set(bpy.data.actions) == actions_before | {first, second}
    assert dancer.animation_data.action == theirs
    after = _snapshot(theirs)
    assert before.keys() == after.keys()
    for key in before:
        np.testing.assert_array_equal(before[key], after[key])
    assert [t.name for t in dancer.animation_data.nla_tracks] == ["Artist layer", first.name, second.name]

    # Their action still drives its bone; the generated strip drives the others.
    pose = _evaluated_pose(dancer, scene, 150)
    theirs_at_150 = mathutils.Quaternion([fc.evaluate(150) for fc in sorted(
        _fcurves_by_path(theirs)['pose.bones["extra"].rotation_quaternion'].values(), key=lambda f: f.array_index)])
    assert _angle(mathutils.Quaternion(), theirs_at_150) > 0.3
    assert _angle(pose["extra"].rotation_quaternion, theirs_at_150) < 1e-5
    assert _angle(pose["arm"].matrix_basis.to_quaternion(), mathutils.Quaternion()) > 0.1

    keying.remove_generation(dancer, second)
    keying.remove_generation(dancer, first)
    keying.remove_generation(dancer, first)  # a second undo is harmless
    assert set(bpy.data.actions) == actions_before
    assert list(dancer.animation_data.nla_tracks) == [their_track]
    assert [s.action for s in their_track.strips] == [theirs]
    assert dancer.animation_data.action == theirs
    after = _snapshot(theirs)
    for key in before:
        np.testing.assert_array_equal(before[key], after[key])
    dancer.animation_data_clear()
    bpy.data.actions.remove(theirs)


def test_remove_generation_restores_a_rig_without_animation(scene, dancer):
    actions_before = set(bpy.data.actions)
    action = keying.key_curves(dancer, _synthetic_curves(), FRAME_START, compat.scene_fps(scene))
    assert dancer.animation_data is not None
    keying.remove_generation(dancer, action)
    assert dancer.animation_data is None
    assert set(bpy.data.actions) == actions_before
    pose = _evaluated_pose(dancer, scene, FRAME_START + 10)
    for bone, _parent, _mode in BONES:
        assert pose[bone].matrix_basis == mathutils.Matrix.Identity(4)


def test_npz_path_fractional_keys_and_properties(scene, dancer, tmp_path):
    """A .npz from save_curves, keys at the motion frames (resample=False) and an
    IK/FK-style switch keyed to FK at the start."""
    scene_fps = _set_fps(scene, 24, 1.001)
    curves = _synthetic_curves()
    path = tmp_path / "curves.npz"
    np.savez(path, fps=np.float64(MOTION_FPS),
             **{f"rot:{b}": q for b, q in curves["rotations"].items()},
             **{f"loc:{b}": x for b, x in curves["locations"].items()})
    dancer.pose.bones["arm"]["IK_FK"] = 0.0
    action = keying.key_curves(dancer, path, FRAME_START, scene_fps, bone_filter={"root", "arm"},
                               set_properties={"arm": {"IK_FK": 1.0}}, resample=False)
    fcurves = _fcurves_by_path(action)
    assert {p.split('"')[1] for p in fcurves} == {"root", "arm"}
    times = np.array([kp.co[0] for kp in fcurves['pose.bones["arm"].rotation_euler'][0].keyframe_points])
    np.testing.assert_allclose(times, FRAME_START + np.arange(N_FRAMES) * scene_fps / MOTION_FPS, atol=1e-4)
    switch = fcurves['pose.bones["arm"]["IK_FK"]'][0]
    assert [tuple(kp.co) for kp in switch.keyframe_points] == [(FRAME_START, 1.0)]
    assert dancer.pose.bones["arm"]["IK_FK"] == 0.0  # the rig itself is not edited
    pose = _evaluated_pose(dancer, scene, float(times[7]))
    assert pose["arm"]["IK_FK"] == pytest.approx(1.0)
    got = pose["arm"].matrix_basis.to_quaternion()
    assert _angle(got, mathutils.Quaternion(curves["rotations"]["arm"][7])) < 2e-4


def test_fractional_start_frame(scene, dancer):
    scene_fps = _set_fps(scene, 30, 1.0)
    curves = _synthetic_curves()
    action = keying.key_curves(dancer, curves, 100.5, scene_fps)
    fc = _fcurves_by_path(action)['pose.bones["root"].location'][0]
    assert fc.keyframe_points[0].co[0] == 100.5
    for k in (0, 10):
        pose = _evaluated_pose(dancer, scene, 100.5 + k)
        np.testing.assert_allclose(pose["root"].location, curves["locations"]["root"][k], atol=1e-5)


@pytest.mark.parametrize("order", keying.EULER_ORDERS)
def test_euler_conversion_matches_mathutils(order):
    """The numpy Euler conversion is Blender's: per frame it equals
    Quaternion.to_euler(order), and along a curve to_euler(order, previous)."""
    rng = np.random.default_rng(3)
    q = rng.normal(size=(200, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    ours = np.array([keying.quat_to_euler(row[None], order)[0] for row in q])
    theirs = np.array([mathutils.Quaternion(row).to_euler(order) for row in q])
    np.testing.assert_allclose(ours, theirs, atol=2e-5)
    # A curve through gimbal lock and several turns: compatible with the previous frame.
    curve = keying.quat_continuous(_axis_angle_quats(np.linspace(0, 1, 120), (1, 0.3, 0.2), (0.2, 1, 0.4), 1.5))
    ours = keying.quat_to_euler(curve, order)
    prev, theirs = None, []
    for row in curve:
        prev = mathutils.Quaternion(row).to_euler(order, *([prev] if prev is not None else []))
        theirs.append(prev)
    np.testing.assert_allclose(ours, np.array(theirs), atol=2e-4)


def test_bad_input_raises_and_changes_nothing(scene, dancer):
    actions_before = set(bpy.data.actions)
    curves = _synthetic_curves()
    bad_bone = dict(curves, rotations={**curves["rotations"], "tail_07": curves["rotations"]["root"]})
    with pytest.raises(keying.KeyingError, match="tail_07"):
        keying.key_curves(dancer, bad_bone, FRAME_START, 24.0)
    with pytest.raises(keying.KeyingError, match="armature"):
        keying.key_curves(bpy.data.objects.new("Empty", None), curves, FRAME_START, 24.0)
    short = dict(curves, locations={"root": curves["locations"]["root"][:10]})
    with pytest.raises(keying.KeyingError, match="lengths"):
        keying.key_curves(dancer, short, FRAME_START, 24.0)
    with pytest.raises(keying.KeyingError, match="rotation mode"):
        keying.key_curves(dancer, curves, FRAME_START, 24.0, rotation_modes={"arm": "XYZW"})
    with pytest.raises(keying.KeyingError, match="no property"):
        keying.key_curves(dancer, curves, FRAME_START, 24.0, set_properties={"arm": {"IK_FK": 1.0}})
    assert set(bpy.data.actions) == actions_before
    assert dancer.animation_data is None
    bpy.data.objects.remove(bpy.data.objects["Empty"])


def test_beat_markers(scene):
    scene_fps = _set_fps(scene, 24, 1.001)
    mine = scene.timeline_markers.new("beat drop (mine)", frame=5)
    beats = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    made = markers.add_beat_markers(scene, beats, FRAME_START, scene_fps, downbeats=[0.0, 2.0])
    frames = [m.frame for m in made]
    assert frames == [round(FRAME_START + t * 24 / 1.001) for t in beats]
    assert [m.name for m in made] == ["beat:bar1", "beat:2", "beat:3", "beat:4", "beat:bar2", "beat:6"]
    assert markers.remove_beat_markers(scene) == 6
    assert list(scene.timeline_markers) == [mine]
    scene.timeline_markers.remove(mine)


def test_sound_strips(scene, tmp_path):
    path = tmp_path / "click.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(22050)
        w.writeframes(np.zeros(2205, dtype=np.int16).tobytes())
    had_editor = scene.sequence_editor is not None
    strips = compat.editor_strips(scene.sequence_editor_create())
    duration = {"length": 10} if compat.BLENDER_VERSION >= (5, 0, 0) else {"frame_end": 11}
    made = [strips.new_effect("Backdrop", type="COLOR", channel=2, frame_start=1, **duration)]
    try:
        assert made[0] in list(compat.all_strips(scene))
        assert made[0] not in compat.sound_strips(scene)
        try:
            made.append(strips.new_sound("Music", str(path), channel=1, frame_start=FRAME_START))
        except RuntimeError as exc:  # the bpy 4.2 wheel is built without audaspace
            pytest.skip(f"cannot make a sound strip in this bpy build: {exc}")
        assert made[1] in compat.sound_strips(scene)  # (other tests may have left strips)
        assert made[0] not in compat.sound_strips(scene)
    finally:
        for strip in made:
            strips.remove(strip)
        if not had_editor:
            scene.sequence_editor_clear()
