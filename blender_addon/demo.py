"""The README's main job: a dance from the bundled song on the bundled rig.

    python -m blender_addon.demo [--out out] [--seconds 12] [--seed 0]

Builds a scene with the demo song (``assets/``, CC BY 3.0, attribution beside
it) in the Video Sequencer and a simple humanoid (an armature with SMPL joint
names and a low-poly mannequin rigidly skinned to it), then runs the headless
batch path on it. Writes ``out/demo.blend`` (the keyed dance),
``out/demo.mp4`` (a Workbench preview of ``--seconds`` of it with the song)
and ``out/demo_report.json`` (the validation report).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import typing
from pathlib import Path

import bmesh
import bpy
import mathutils

from . import batch

ASSETS = Path(__file__).resolve().parent / "assets"
DEMO_SONG = ASSETS / "Kevin_MacLeod_-_Vibe_Ace.hq.ogg"
RIG_NAME = "Dancer"

# Joint rest positions (metres, Z up, facing -Y), the canonical SMPL-24 skeleton's.
JOINTS = {
    "pelvis": (0.000, 0.000, 0.976), "L_hip": (0.059, 0.016, 0.890), "R_hip": (-0.059, 0.016, 0.890),
    "spine1": (0.000, 0.038, 1.101), "L_knee": (0.103, 0.014, 0.505), "R_knee": (-0.103, 0.014, 0.505),
    "spine2": (0.000, 0.012, 1.238), "L_ankle": (0.086, 0.050, 0.081), "R_ankle": (-0.086, 0.050, 0.081),
    "spine3": (0.000, 0.009, 1.295), "L_foot": (0.124, -0.076, 0.020), "R_foot": (-0.124, -0.076, 0.020),
    "neck": (0.000, 0.042, 1.506), "L_collar": (0.077, 0.030, 1.408), "R_collar": (-0.077, 0.030, 1.408),
    "head": (0.000, -0.008, 1.595), "L_shoulder": (0.195, 0.044, 1.454),
    "R_shoulder": (-0.195, 0.044, 1.454), "L_elbow": (0.453, 0.071, 1.439),
    "R_elbow": (-0.453, 0.071, 1.439), "L_wrist": (0.721, 0.078, 1.449), "R_wrist": (-0.721, 0.078, 1.449),
    "L_hand": (0.800, 0.080, 1.451), "R_hand": (-0.800, 0.080, 1.451),
}
PARENTS = {
    "L_hip": "pelvis", "R_hip": "pelvis", "spine1": "pelvis", "L_knee": "L_hip", "R_knee": "R_hip",
    "spine2": "spine1", "L_ankle": "L_knee", "R_ankle": "R_knee", "spine3": "spine2", "L_foot": "L_ankle",
    "R_foot": "R_ankle", "neck": "spine3", "L_collar": "spine3", "R_collar": "spine3", "head": "neck",
    "L_shoulder": "L_collar", "R_shoulder": "R_collar", "L_elbow": "L_shoulder", "R_elbow": "R_shoulder",
    "L_wrist": "L_elbow", "R_wrist": "R_elbow", "L_hand": "L_wrist", "R_hand": "R_wrist",
}
# Where each bone's tail goes: its main child joint, or an explicit offset for the ends.
TAIL_CHILD = {"pelvis": "spine1", "spine1": "spine2", "spine2": "spine3", "spine3": "neck", "neck": "head",
              "L_hip": "L_knee", "R_hip": "R_knee", "L_knee": "L_ankle", "R_knee": "R_ankle",
              "L_ankle": "L_foot", "R_ankle": "R_foot", "L_collar": "L_shoulder", "R_collar": "R_shoulder",
              "L_shoulder": "L_elbow", "R_shoulder": "R_elbow", "L_elbow": "L_wrist", "R_elbow": "R_wrist",
              "L_wrist": "L_hand", "R_wrist": "R_hand"}
TAIL_OFFSET = {"head": (0, 0, 0.2), "L_foot": (0, -0.06, 0), "R_foot": (0, -0.06, 0),
               "L_hand": (0.08, 0, 0), "R_hand": (-0.08, 0, 0)}
# Body parts: bone -> (radius at head, radius at tail, material).
PARTS = {
    "pelvis": (0.13, 0.12, "Pants"), "spine1": (0.12, 0.13, "Shirt"), "spine2": (0.13, 0.15, "Shirt"),
    "spine3": (0.15, 0.10, "Shirt"), "neck": (0.05, 0.05, "Skin"),
    "L_hip": (0.085, 0.06, "Pants"), "R_hip": (0.085, 0.06, "Pants"),
    "L_knee": (0.06, 0.045, "Pants"), "R_knee": (0.06, 0.045, "Pants"),
    "L_ankle": (0.045, 0.04, "Shoes"), "R_ankle": (0.045, 0.04, "Shoes"),
    "L_foot": (0.04, 0.035, "Shoes"), "R_foot": (0.04, 0.035, "Shoes"),
    "L_collar": (0.05, 0.05, "Shirt"), "R_collar": (0.05, 0.05, "Shirt"),
    "L_shoulder": (0.05, 0.04, "Shirt"), "R_shoulder": (0.05, 0.04, "Shirt"),
    "L_elbow": (0.04, 0.032, "Skin"), "R_elbow": (0.04, 0.032, "Skin"),
    "L_wrist": (0.032, 0.03, "Skin"), "R_wrist": (0.032, 0.03, "Skin"),
    "L_hand": (0.035, 0.025, "Skin"), "R_hand": (0.035, 0.025, "Skin"),
}
COLOURS = {"Skin": (0.85, 0.62, 0.48, 1), "Shirt": (0.15, 0.45, 0.85, 1), "Pants": (0.15, 0.15, 0.2, 1),
           "Shoes": (0.9, 0.9, 0.9, 1), "Head": (0.85, 0.62, 0.48, 1), "Floor": (0.55, 0.55, 0.5, 1),
           "Tile": (0.42, 0.42, 0.4, 1)}


def _tail(name: str) -> mathutils.Vector:
    if name in TAIL_CHILD:
        return mathutils.Vector(JOINTS[TAIL_CHILD[name]])
    return mathutils.Vector(JOINTS[name]) + mathutils.Vector(TAIL_OFFSET[name])


def _material(name: str):
    mat = bpy.data.materials.get(f"Choreo {name}") or bpy.data.materials.new(f"Choreo {name}")
    mat.diffuse_color = COLOURS[name]
    return mat


def build_armature(scene, name: str = RIG_NAME):
    """The demo armature: one bone per SMPL joint, head at the joint, in T-pose."""
    data = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, data)
    scene.collection.objects.link(obj)
    view_layer = bpy.context.view_layer
    view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    bones = {}
    for joint in JOINTS:
        bone = data.edit_bones.new(joint)
        bone.head = JOINTS[joint]
        bone.tail = _tail(joint)
        bone.roll = 0.0
        bones[joint] = bone
    for joint, parent in PARENTS.items():
        bones[joint].parent = bones[parent]
        bones[joint].use_connect = False
    bpy.ops.object.mode_set(mode="OBJECT")
    for pose_bone in obj.pose.bones:
        pose_bone.rotation_mode = "QUATERNION"
    data.display_type = "STICK"
    obj.show_in_front = True
    return obj


def _cone_matrix(head: mathutils.Vector, tail: mathutils.Vector) -> mathutils.Matrix:
    direction = tail - head
    rotation = direction.to_track_quat("Z", "Y").to_matrix().to_4x4()
    return mathutils.Matrix.Translation((head + tail) / 2) @ rotation


def build_body(scene, armature, name: str = "Mannequin"):
    """A low-poly mannequin: a tapered cylinder per bone and a head sphere, each
    rigidly weighted to its bone (Armature modifier), so it dances with the rig."""
    mesh = bpy.data.meshes.new(name)
    body = bpy.data.objects.new(name, mesh)
    scene.collection.objects.link(body)
    materials = [name for name in COLOURS if name not in ("Floor", "Tile")]
    for material in materials:
        mesh.materials.append(_material(material))
    bm = bmesh.new()
    deform = bm.verts.layers.deform.verify()
    groups = {bone: i for i, bone in enumerate(JOINTS)}
    for bone in JOINTS:
        body.vertex_groups.new(name=bone)

    def add(geom_verts, bone, material):
        for v in geom_verts:
            v[deform][groups[bone]] = 1.0
        for face in {f for v in geom_verts for f in v.link_faces}:
            face.material_index = materials.index(material)

    for bone, (r0, r1, material) in PARTS.items():
        head, tail = mathutils.Vector(JOINTS[bone]), _tail(bone)
        length = (tail - head).length
        made = bmesh.ops.create_cone(bm, cap_ends=True, segments=10, radius1=r0, radius2=r1, depth=length,
                                     matrix=_cone_matrix(head, tail))
        add(made["verts"], bone, material)
        joint = bmesh.ops.create_uvsphere(bm, u_segments=8, v_segments=6, radius=r0 * 0.95,
                                          matrix=mathutils.Matrix.Translation(head))
        add(joint["verts"], bone, material)
    centre = mathutils.Vector(JOINTS["head"]) + mathutils.Vector((0, -0.01, 0.1))
    skull = bmesh.ops.create_uvsphere(bm, u_segments=12, v_segments=8, radius=0.11,
                                      matrix=mathutils.Matrix.Translation(centre))
    add(skull["verts"], "head", "Head")
    nose = bmesh.ops.create_cone(bm, cap_ends=True, segments=6, radius1=0.025, radius2=0.0, depth=0.06,
                                 matrix=mathutils.Matrix.Translation(centre + mathutils.Vector((0, -0.12, 0)))
                                 @ mathutils.Matrix.Rotation(math.pi / 2, 4, "X"))
    add(nose["verts"], "head", "Skin")
    bm.to_mesh(mesh)
    bm.free()
    for polygon in mesh.polygons:
        polygon.use_smooth = True
    modifier = typing.cast(bpy.types.ArmatureModifier, body.modifiers.new("Armature", "ARMATURE"))
    modifier.object = armature
    body.parent = armature
    return body


def build_floor(scene, size: int = 40):
    """A checkered floor, ``size`` metres square in 1 m tiles (travel stays visible)."""
    mesh = bpy.data.meshes.new("Floor")
    bm = bmesh.new()
    bmesh.ops.create_grid(bm, x_segments=size, y_segments=size, size=size / 2)
    for face in bm.faces:
        centre = face.calc_center_median()
        face.material_index = (math.floor(centre.x) + math.floor(centre.y)) % 2
    bm.to_mesh(mesh)
    bm.free()
    mesh.materials.append(_material("Floor"))
    mesh.materials.append(_material("Tile"))
    floor = bpy.data.objects.new("Floor", mesh)
    scene.collection.objects.link(floor)
    return floor


def add_sound_strip(scene, path: Path, frame: int = 1, name: str = "Music"):
    scene.sequence_editor_create()
    editor = scene.sequence_editor
    strips = editor.strips if hasattr(editor, "strips") else editor.sequences
    return strips.new_sound(name, str(path), 1, frame)


def build_scene(song: Path = DEMO_SONG, fps: int = 30):
    """Reset to an empty file and build the demo scene; returns (scene, armature)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    scene.render.fps, scene.render.fps_base = fps, 1.0
    strip = add_sound_strip(scene, song)
    scene.frame_start, scene.frame_end = strip.frame_final_start, strip.frame_final_end - 1
    armature = build_armature(scene)
    build_body(scene, armature)
    build_floor(scene)
    world = bpy.data.worlds.new("World")
    scene.world = world
    world.color = (0.18, 0.2, 0.24)
    return scene, armature


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m blender_addon.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="out", help="output folder")
    p.add_argument("--seconds", type=float, default=12.0, help="length of the rendered preview")
    p.add_argument("--render-start", type=float, default=20.0, help="song time where the preview starts (s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--style", default="salsa_lead")
    p.add_argument("--no-render", action="store_true")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    scene, _armature = build_scene()
    scene_blend = out / "demo_scene.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(scene_blend))
    fps = scene.render.fps / scene.render.fps_base
    first = int(scene.frame_start + round(args.render_start * fps))
    last = int(min(scene.frame_end, first + round(args.seconds * fps) - 1))
    batch_args = ["--blend", str(scene_blend), "--armature", RIG_NAME, "--seed", str(args.seed),
                  "--style", args.style, "--out", str(out / "demo.blend"), "--json", "--quiet"]
    if not args.no_render:
        batch_args += ["--render", str(out / "demo.mp4"), "--render-frames", str(first), str(last)]
    parsed = batch.parse_args(batch_args)
    try:
        summary = batch.run(parsed)
    except batch.BatchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    report = out / "demo_report.json"
    if summary.get("report") and os.path.isfile(summary["report"]):
        shutil.copyfile(summary["report"], report)
        summary["report"] = str(report)
    (out / "demo_summary.json").write_text(json.dumps(summary, indent=1, default=str))
    for key in ("out", "render", "report"):
        if summary.get(key):
            print(summary[key])
    return 0


if __name__ == "__main__":
    sys.exit(main())
