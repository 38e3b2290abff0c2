"""Keying speed: blender_addon.keying.key_curves against per-frame keyframe_insert.

Run: ``python bench/bench_keying.py`` (any environment with bpy: .venv,
.venv-bpy42, .venv-bpy50). A 3-minute dance at 30 fps (5400 frames) is keyed
onto a 60-bone armature built here (root location + 60 quaternion rotations).

- key_curves (keyframe_points.add + foreach_set + update, plus the numpy work
  and the NLA track) on all bones, in a 30 fps scene and in a 23.976 fps scene
  (slerp resampling), and with every bone in XYZ Euler mode (numpy Euler
  conversion with continuity);
- the baseline: ``pose_bone.keyframe_insert`` per frame and channel, as a naive
  keyer would do it, on a 10-bone subset (41 F-Curves) over the first 900
  frames, per key. Blender's cost per inserted key grows with the length of the
  curve and the size of the action (about 45 us/key at 300 frames, 120 at 900,
  650 at the full 5400 on 4.5 here), so the default figure and its ratio are a
  lower bound; ``--insert-frames 5400`` measures the full length (minutes).

Prints seconds, microseconds per key and the ratio. No time limits are
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

import bpy  # noqa: E402
import mathutils  # noqa: E402

from blender_addon import compat, keying  # noqa: E402

FPS = 30.0
FRAMES = 5400  # 3 minutes at 30 fps
N_BONES = 60
INSERT_BONES = 10  # keyframe_insert subset
# Figures from DESIGN.md, measured elsewhere, for orientation only.
DESIGN_INSERT_US, DESIGN_FOREACH_US = 13.8, 0.17


def build_armature(name: str = "BenchRig", n_bones: int = N_BONES) -> bpy.types.Object:
    """A humanoid-sized tree: chains of six bones hanging off the root."""
    arm = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, arm)
    bpy.context.scene.collection.objects.link(obj)
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    bones = []
    for i in range(n_bones):
        eb = arm.edit_bones.new(f"bone_{i:02d}")
        parent = None if i == 0 else bones[i - 1 if i % 6 else 0]
        eb.head = parent.tail if parent else mathutils.Vector((0.0, 0.0, 1.0))
        eb.tail = eb.head + mathutils.Vector((0.02 * (i % 3), 0.01, 0.1))
        eb.parent = parent
        bones.append(eb)
    bpy.ops.object.mode_set(mode="OBJECT")
    for pb in obj.pose.bones:
        pb.rotation_mode = "QUATERNION"
    return obj


def dance(frames: int = FRAMES, n_bones: int = N_BONES) -> dict:
    rng = np.random.default_rng(0)
    t = np.arange(frames) / FPS
    rotations = {}
    for i in range(n_bones):
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        angle = 0.6 * np.sin(2 * np.pi * rng.uniform(0.3, 2.0) * t + rng.uniform(0, 6))
        rotations[f"bone_{i:02d}"] = np.concatenate(
            [np.cos(angle / 2)[:, None], np.sin(angle / 2)[:, None] * axis], axis=1)
    locations = {"bone_00": np.stack([np.sin(t), np.cos(t), 0.1 * np.sin(3 * t)], axis=1)}
    return {"fps": FPS, "rotations": rotations, "locations": locations}


def count_keys(action) -> int:
    return sum(len(fc.keyframe_points) for fc in compat.iter_action_fcurves(action))


def time_key_curves(obj, curves, scene_fps: float, label: str) -> tuple[float, int]:
    start = time.perf_counter()
    action = keying.key_curves(obj, curves, 1, scene_fps, action_name="bench")
    seconds = time.perf_counter() - start
    keys = count_keys(action)
    keying.remove_generation(obj, action)
    print(f"{label:52s} {seconds:7.3f} s {keys:9d} keys {1e6 * seconds / keys:7.3f} us/key")
    return seconds, keys


def time_keyframe_insert(obj, curves, frames: int) -> tuple[float, int]:
    names = [f"bone_{i:02d}" for i in range(INSERT_BONES)]
    rotations = {n: curves["rotations"][n][:frames].tolist() for n in names}
    root_loc = curves["locations"]["bone_00"][:frames].tolist()
    pose_bones = [obj.pose.bones[n] for n in names]
    start = time.perf_counter()
    for frame in range(frames):
        for name, pb in zip(names, pose_bones):
            pb.rotation_quaternion = rotations[name][frame]
            pb.keyframe_insert("rotation_quaternion", frame=frame + 1, group=name)
        pose_bones[0].location = root_loc[frame]
        pose_bones[0].keyframe_insert("location", frame=frame + 1, group=names[0])
    seconds = time.perf_counter() - start
    action = obj.animation_data.action
    keys = count_keys(action)
    obj.animation_data.action = None
    bpy.data.actions.remove(action)
    obj.animation_data_clear()
    label = f"keyframe_insert per frame ({INSERT_BONES} bones, {frames} frames)"
    print(f"{label:52s} {seconds:7.3f} s {keys:9d} keys {1e6 * seconds / keys:7.3f} us/key")
    return seconds, keys


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--insert-frames", type=int, default=900, metavar="N",
                        help=f"length of the keyframe_insert run (default 900; the full {FRAMES} "
                             "takes minutes)")
    args = parser.parse_args()
    print(f"Blender {bpy.app.version_string}; {FRAMES} frames at {FPS:g} fps, {N_BONES} bones")
    obj = build_armature()
    curves = dance()
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = 30, 1.0
    fast_s, fast_keys = time_key_curves(obj, curves, compat.scene_fps(scene), "key_curves, 30 fps scene")
    scene.render.fps, scene.render.fps_base = 24, 1.001
    time_key_curves(obj, curves, compat.scene_fps(scene), "key_curves, 23.976 fps scene (slerp resampling)")
    for pb in obj.pose.bones:
        pb.rotation_mode = "XYZ"
    scene.render.fps, scene.render.fps_base = 30, 1.0
    time_key_curves(obj, curves, compat.scene_fps(scene), "key_curves, 30 fps, all bones XYZ Euler")
    for pb in obj.pose.bones:
        pb.rotation_mode = "QUATERNION"
    slow_s, slow_keys = time_keyframe_insert(obj, curves, args.insert_frames)

    fast_us, slow_us = 1e6 * fast_s / fast_keys, 1e6 * slow_s / slow_keys
    print(f"keyframe_insert extrapolated per key to the whole dance ({fast_keys} keys): "
          f"{slow_us * fast_keys / 1e6:.1f} s (a lower bound unless --insert-frames {FRAMES})")
    print(f"ratio keyframe_insert / key_curves per key: {slow_us / fast_us:.1f}x "
          f"({slow_us:.3f} vs {fast_us:.3f} us/key)")
    print(f"DESIGN.md anchors: keyframe_insert {DESIGN_INSERT_US} us/key, foreach_set "
          f"{DESIGN_FOREACH_US} us/key ({DESIGN_INSERT_US / DESIGN_FOREACH_US:.0f}x)")
    bpy.data.objects.remove(obj)
    return 0


if __name__ == "__main__":
    sys.exit(main())
