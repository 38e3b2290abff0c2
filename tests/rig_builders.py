"""Real armatures for tests, built with the real bpy (no engine imports: usable from
the Blender-only environments too).

Each builder takes a name and returns the armature object, linked into the
current scene, in Object Mode, with its pose at rest:

* ``build_rigify_metarig`` / ``build_rigify_rig``: Rigify's Human meta-rig (the
  add-on's own operator) and the rig Rigify generates from it (face removed,
  which generation would otherwise spend most of its time on);
* ``build_mixamo`` / ``build_ue5`` / ``build_vrm``: armatures with those rigs'
  bone names and conventions, built from edit bones at plausible humanoid joint
  positions with A-pose arms. Mixamo is a Y-up, centimetre FBX-style import
  (object rotated 90 degrees about X and scaled by 0.01); UE5 has five spine
  bones, two neck bones, twist and IK bones, and its own bone rolls; VRM has no
  shoulder (collar) bones;
* ``build_smpl_bvh``: an armature imported from the shared ``smpl22_rest.bvh``
  with Blender's BVH importer (its animation removed);
* ``build_cmu_bvh``: the real CMU salsa skeleton (Daz-style names: hip, abdomen,
  chest, lCollar, lShldr, lThigh ...), imported the same way from the shared
  take's hierarchy.

Rigify note (bpy 4.5): anything that keeps the ``bpy`` module alive through
interpreter shutdown makes the process hang on exit (bpy's static destructor
waits on its own sound thread, which only bpy's module cleanup stops). Rigify
generation leaves two such references: the classes its ``rig_ui.py`` script
registers, and typing generics of Rigify classes in ``typing``'s caches (once
torch is imported too). ``build_rigify_rig`` unregisters the former right
after generation (the rig's sidebar UI is not needed headless) and clears the
typing caches at exit. Under the bpy 4.2 wheel merely enabling Rigify makes the
interpreter segfault at exit, so the Rigify builders are for bpy 4.5+ (see
``rigify_usable``).
"""

from __future__ import annotations

import atexit
import gc
import math
import typing
from pathlib import Path

import bpy
from mathutils import Matrix, Vector

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SMPL22_BVH = SHARED / "skeletons" / "smpl22_rest.bvh"
CMU_SALSA_BVH = SHARED / "mocap" / "cmu_salsa" / "60_01_scaled.bvh.gz"


# --------------------------------------------------------------------------- helpers

def object_mode() -> None:
    if bpy.context.object is not None and bpy.context.object.mode != "OBJECT":
        bpy.ops.object.mode_set(mode="OBJECT")


def _activate(obj) -> None:
    object_mode()
    for other in bpy.context.view_layer.objects:
        other.select_set(False)
    bpy.context.view_layer.objects.active = obj
    obj.select_set(True)


def _new_armature(name: str):
    object_mode()
    data = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, data)
    bpy.context.scene.collection.objects.link(obj)
    _activate(obj)
    return obj


def reset_pose(obj) -> None:
    """Rest pose: identity rotations (in every rotation mode), zero locations."""
    for pb in obj.pose.bones:
        pb.location = (0.0, 0.0, 0.0)
        pb.rotation_quaternion = (1.0, 0.0, 0.0, 0.0)
        pb.rotation_euler = (0.0, 0.0, 0.0)
        pb.rotation_axis_angle = (0.0, 0.0, 1.0, 0.0)
        pb.scale = (1.0, 1.0, 1.0)


def humanoid_joints(arm_down_deg: float = 45.0, height: float = 1.75, spine: int = 3,
                    neck: int = 1) -> dict[str, Vector]:
    """Joint positions (metres, Z up, facing -Y, left = +X) of a plausible adult.

    Keys: hips, spine_1..spine_n, neck_1..neck_m, head, head_end, and for side
    s in L/R: collar_s, shoulder_s, elbow_s, wrist_s, hand_end_s, hip_s, knee_s,
    ankle_s, toe_s, toe_end_s. Arms hang ``arm_down_deg`` below horizontal.
    """
    k = height / 1.75
    j = {"hips": Vector((0.0, 0.01, 0.99))}
    bottom, top = Vector((0.0, 0.02, 1.07)), Vector((0.0, 0.0, 1.44))
    for i in range(spine):
        j[f"spine_{i + 1}"] = bottom.lerp(top, i / spine)
    neck_bottom, head = Vector((0.0, 0.01, 1.46)), Vector((0.0, -0.01, 1.60))
    for i in range(neck):
        j[f"neck_{i + 1}"] = neck_bottom.lerp(head, i / neck)
    j["head"] = head
    j["head_end"] = Vector((0.0, -0.01, 1.75))
    a = math.radians(arm_down_deg)
    arm_dir = Vector((math.cos(a), 0.0, -math.sin(a)))
    for s, x in (("L", 1.0), ("R", -1.0)):
        shoulder = Vector((x * 0.185, 0.03, 1.43))
        d = Vector((x * arm_dir.x, 0.0, arm_dir.z))
        j[f"collar_{s}"] = Vector((x * 0.035, 0.0, 1.41))
        j[f"shoulder_{s}"] = shoulder
        j[f"elbow_{s}"] = shoulder + d * 0.275 + Vector((0.0, 0.02, 0.0))
        j[f"wrist_{s}"] = j[f"elbow_{s}"] + d * 0.26
        j[f"hand_end_{s}"] = j[f"wrist_{s}"] + d * 0.09
        j[f"hip_{s}"] = Vector((x * 0.09, 0.01, 0.92))
        j[f"knee_{s}"] = Vector((x * 0.10, -0.01, 0.51))
        j[f"ankle_{s}"] = Vector((x * 0.105, 0.03, 0.08))
        j[f"toe_{s}"] = Vector((x * 0.115, -0.10, 0.02))
        j[f"toe_end_{s}"] = Vector((x * 0.12, -0.17, 0.02))
    return {key: v * k for key, v in j.items()}


def _build(name: str, bones: list[tuple], roll_deg: float | dict = 0.0):
    """bones: (name, head, tail, parent or None, connect); roll per bone (degrees)."""
    obj = _new_armature(name)
    bpy.ops.object.mode_set(mode="EDIT")
    eb = obj.data.edit_bones
    made = {}
    for bname, head, tail, parent, connect in bones:
        b = eb.new(bname)
        b.head, b.tail = Vector(head), Vector(tail)
        roll = roll_deg.get(bname, 0.0) if isinstance(roll_deg, dict) else roll_deg
        b.roll = math.radians(roll)
        if parent is not None:
            b.parent = made[parent]
            b.use_connect = bool(connect) and (made[parent].tail - b.head).length < 1e-6
        made[bname] = b
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj


def _chain(names: list[str], points: list[Vector], parent: str | None, end: Vector) -> list[tuple]:
    """Bones along points; each bone's tail is the next point (the last ends at ``end``)."""
    out = []
    tails = points[1:] + [end]
    for i, (n, h, t) in enumerate(zip(names, points, tails)):
        out.append((n, h, t, parent if i == 0 else names[i - 1], i > 0))
    return out


def _humanoid(names: dict[str, str], joints: dict[str, Vector], spine: int, neck: int,
              collar: bool = True, extras: list[tuple] = ()) -> list[tuple]:
    """Bone list from role names: hips, spine_i, neck_i, head, collar_s, upperarm_s,
    forearm_s, hand_s, thigh_s, shin_s, foot_s, toe_s (+ optional 'head_end')."""
    j = joints
    bones = [(names["hips"], j["hips"], j["spine_1"], None, False)]
    spine_names = [names[f"spine_{i + 1}"] for i in range(spine)]
    spine_pts = [j[f"spine_{i + 1}"] for i in range(spine)]
    bones += _chain(spine_names, spine_pts, names["hips"], j["neck_1"])
    neck_names = [names[f"neck_{i + 1}"] for i in range(neck)]
    bones += _chain(neck_names, [j[f"neck_{i + 1}"] for i in range(neck)], spine_names[-1], j["head"])
    bones.append((names["head"], j["head"], j["head_end"], neck_names[-1], True))
    if "head_end" in names:
        bones.append((names["head_end"], j["head_end"], j["head_end"] + Vector((0, 0, 0.05)), names["head"], True))
    for s in "LR":
        arm_parent = spine_names[-1]
        if collar:
            bones.append((names[f"collar_{s}"], j[f"collar_{s}"], j[f"shoulder_{s}"], spine_names[-1], False))
            arm_parent = names[f"collar_{s}"]
        bones.append((names[f"upperarm_{s}"], j[f"shoulder_{s}"], j[f"elbow_{s}"], arm_parent, True))
        bones.append((names[f"forearm_{s}"], j[f"elbow_{s}"], j[f"wrist_{s}"], names[f"upperarm_{s}"], True))
        bones.append((names[f"hand_{s}"], j[f"wrist_{s}"], j[f"hand_end_{s}"], names[f"forearm_{s}"], True))
        bones.append((names[f"thigh_{s}"], j[f"hip_{s}"], j[f"knee_{s}"], names["hips"], False))
        bones.append((names[f"shin_{s}"], j[f"knee_{s}"], j[f"ankle_{s}"], names[f"thigh_{s}"], True))
        bones.append((names[f"foot_{s}"], j[f"ankle_{s}"], j[f"toe_{s}"], names[f"shin_{s}"], True))
        bones.append((names[f"toe_{s}"], j[f"toe_{s}"], j[f"toe_end_{s}"], names[f"foot_{s}"], True))
    return bones + list(extras)


def _finish(obj, quaternion: bool = True):
    if quaternion:
        for pb in obj.pose.bones:
            pb.rotation_mode = "QUATERNION"
    reset_pose(obj)
    bpy.context.view_layer.update()
    return obj


# --------------------------------------------------------------------------- rigs

def build_mixamo(name: str = "Mixamo", arm_down_deg: float = 35.0):
    """Mixamo names, as Blender's FBX importer leaves them: armature data Y-up in
    centimetres, the object rotated +90 degrees about X and scaled by 0.01."""
    j = humanoid_joints(arm_down_deg, height=1.70)
    to_yup_cm = Matrix.Rotation(math.radians(-90.0), 3, "X") * 100.0
    j = {k: to_yup_cm @ v for k, v in j.items()}
    p = "mixamorig:"
    names = {"hips": p + "Hips", "spine_1": p + "Spine", "spine_2": p + "Spine1", "spine_3": p + "Spine2",
             "neck_1": p + "Neck", "head": p + "Head", "head_end": p + "HeadTop_End"}
    for s, side in (("L", "Left"), ("R", "Right")):
        names.update({f"collar_{s}": f"{p}{side}Shoulder", f"upperarm_{s}": f"{p}{side}Arm",
                      f"forearm_{s}": f"{p}{side}ForeArm", f"hand_{s}": f"{p}{side}Hand",
                      f"thigh_{s}": f"{p}{side}UpLeg", f"shin_{s}": f"{p}{side}Leg",
                      f"foot_{s}": f"{p}{side}Foot", f"toe_{s}": f"{p}{side}ToeBase"})
    extras = []
    for s, side in (("L", "Left"), ("R", "Right")):
        hand, end = j[f"wrist_{s}"], j[f"hand_end_{s}"]
        extras.append((f"{p}{side}HandIndex1", end, end + (end - hand) * 0.4, f"{p}{side}Hand", True))
        toe, toe_end = j[f"toe_{s}"], j[f"toe_end_{s}"]
        extras.append((f"{p}{side}Toe_End", toe_end, toe_end + (toe_end - toe) * 0.3, f"{p}{side}ToeBase", True))
    # the data is Y-up: point the head-top end bone along the data's +Y (world up)
    bones = _humanoid(names, j, 3, 1, extras=extras)
    bones = [(n, h, (t if n != p + "HeadTop_End" else h + Vector((0.0, 5.0, 0.0))), par, c)
             for n, h, t, par, c in bones]
    obj = _build(name, bones)
    obj.rotation_euler = (math.radians(90.0), 0.0, 0.0)
    obj.scale = (0.01, 0.01, 0.01)
    return _finish(obj)


def build_ue5(name: str = "UE5", arm_down_deg: float = 45.0):
    """UE5 mannequin names: root, pelvis, spine_01..05, neck_01/02, head, twist and ik bones,
    with UE-style bone rolls."""
    j = humanoid_joints(arm_down_deg, height=1.80, spine=5, neck=2)
    names = {"hips": "pelvis", "head": "head", "neck_1": "neck_01", "neck_2": "neck_02"}
    names.update({f"spine_{i}": f"spine_0{i}" for i in range(1, 6)})
    for s in "LR":
        x = s.lower()
        names.update({f"collar_{s}": f"clavicle_{x}", f"upperarm_{s}": f"upperarm_{x}",
                      f"forearm_{s}": f"lowerarm_{x}", f"hand_{s}": f"hand_{x}", f"thigh_{s}": f"thigh_{x}",
                      f"shin_{s}": f"calf_{x}", f"foot_{s}": f"foot_{x}", f"toe_{s}": f"ball_{x}"})
    bones = [("root", Vector((0, 0, 0)), Vector((0, 0.25, 0)), None, False)]
    body = _humanoid(names, j, 5, 2)
    body[0] = (body[0][0], body[0][1], body[0][2], "root", False)
    bones += body
    for s in "LR":
        x = s.lower()
        for bone, a, b in (("upperarm", "shoulder", "elbow"), ("lowerarm", "elbow", "wrist"),
                           ("thigh", "hip", "knee"), ("calf", "knee", "ankle")):
            h = j[f"{a}_{s}"].lerp(j[f"{b}_{s}"], 0.5)
            t = j[f"{a}_{s}"].lerp(j[f"{b}_{s}"], 0.75)
            bones.append((f"{bone}_twist_01_{x}", h, t, f"{bone}_{x}", False))
    bones.append(("ik_foot_root", Vector((0, 0, 0)), Vector((0, 0.2, 0)), "root", False))
    for s in "LR":
        x = s.lower()
        bones.append((f"ik_foot_{x}", j[f"ankle_{s}"], j[f"ankle_{s}"] + Vector((0, -0.1, 0)), "ik_foot_root", False))
    bones.append(("ik_hand_root", Vector((0, 0, 0)), Vector((0, 0.2, 0)), "root", False))
    # UE-ish rolls: limbs rolled differently per side, spine rolled 90 degrees
    rolls = {n: (90.0 if n.startswith(("spine", "neck", "pelvis", "head")) else 0.0) for n, *_ in bones}
    rolls.update({n: (-30.0 if n.endswith("_l") else 30.0) for n, *_ in bones if n.endswith(("_l", "_r"))})
    obj = _build(name, bones, rolls)
    return _finish(obj)


def build_vrm(name: str = "VRM", arm_down_deg: float = 40.0):
    """VRoid bone names (J_Bip_C_Hips ... J_Bip_L_UpperLeg), no shoulder (collar) bones."""
    j = humanoid_joints(arm_down_deg, height=1.60)
    names = {"hips": "J_Bip_C_Hips", "spine_1": "J_Bip_C_Spine", "spine_2": "J_Bip_C_Chest",
             "spine_3": "J_Bip_C_UpperChest", "neck_1": "J_Bip_C_Neck", "head": "J_Bip_C_Head"}
    for s in "LR":
        names.update({f"upperarm_{s}": f"J_Bip_{s}_UpperArm", f"forearm_{s}": f"J_Bip_{s}_LowerArm",
                      f"hand_{s}": f"J_Bip_{s}_Hand", f"thigh_{s}": f"J_Bip_{s}_UpperLeg",
                      f"shin_{s}": f"J_Bip_{s}_LowerLeg", f"foot_{s}": f"J_Bip_{s}_Foot",
                      f"toe_{s}": f"J_Bip_{s}_ToeBase"})
    root = ("Root", Vector((0, 0, 0)), Vector((0, 0, 0.1)), None, False)
    bones = [root] + _humanoid(names, j, 3, 1, collar=False)
    bones[1] = (bones[1][0], bones[1][1], bones[1][2], "Root", False)
    obj = _build(name, bones, roll_deg=10.0)
    return _finish(obj)


def build_unrelated(name: str = "Unrelated"):
    """Two bones called Bone and Bone.001: nothing like a body."""
    bones = [("Bone", Vector((0, 0, 0)), Vector((0, 0, 1)), None, False),
             ("Bone.001", Vector((0, 0, 1)), Vector((0, 0, 2)), "Bone", True)]
    return _finish(_build(name, bones))


def build_smpl_bvh(name: str = "SMPL22", path: str | Path = SMPL22_BVH):
    """The shared SMPL-22 rest skeleton through Blender's own BVH importer."""
    object_mode()
    before = set(bpy.data.objects)
    bpy.ops.import_anim.bvh(filepath=str(path))
    obj = next(o for o in bpy.data.objects if o not in before)
    obj.name = name
    action = obj.animation_data.action if obj.animation_data else None
    obj.animation_data_clear()
    if action is not None and action.users == 0:
        bpy.data.actions.remove(action)
    obj.location = (0.0, 0.0, 0.0)
    obj.rotation_euler = (0.0, 0.0, 0.0)
    _activate(obj)
    return _finish(obj, quaternion=False)


def build_cmu_bvh(name: str = "CMU", path: str | Path = CMU_SALSA_BVH):
    """The CMU salsa skeleton: the take's hierarchy (one frame of it) through the BVH importer."""
    import gzip
    import tempfile

    opener = gzip.open if str(path).endswith(".gz") else open
    lines = []
    with opener(path, "rt") as fh:
        for line in fh:
            if line.startswith("Frames:"):
                line = "Frames: 1\n"
            lines.append(line)
            if line.startswith("Frame Time"):
                lines.append(next(fh))
                break
    with tempfile.TemporaryDirectory() as tmp:
        bvh = Path(tmp) / (Path(path).name.split(".")[0] + ".bvh")
        bvh.write_text("".join(lines))
        return build_smpl_bvh(name, bvh)


def rigify_usable() -> bool:
    """Whether the Rigify builders are safe here (bpy 4.2 crashes at exit once Rigify is enabled)."""
    return bpy.app.version >= (4, 5, 0)


def _enable_rigify() -> None:
    import addon_utils

    loaded, enabled = addon_utils.check("rigify")
    if not enabled:
        bpy.ops.preferences.addon_enable(module="rigify")


def build_rigify_metarig(name: str = "metarig", basic: bool = False):
    """Rigify's Human meta-rig (``basic``: the Basic Human one, no face or fingers)."""
    _enable_rigify()
    object_mode()
    bpy.context.scene.cursor.location = (0.0, 0.0, 0.0)
    before = set(bpy.data.objects)
    if basic:
        bpy.ops.object.armature_basic_human_metarig_add()
    else:
        bpy.ops.object.armature_human_metarig_add()
    obj = next(o for o in bpy.data.objects if o not in before)
    obj.name = name
    object_mode()
    return _finish(obj, quaternion=False)


def _registered_classes() -> set:
    out, stack = set(), [bpy.types.bpy_struct]
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub not in out:
                out.add(sub)
                stack.append(sub)
    return out


def _clear_typing_caches() -> None:
    for clear in getattr(typing, "_cleanups", ()):
        clear()
    gc.collect()


def build_rigify_rig(name: str = "rig", face: bool = False):
    """A rig generated by Rigify from the Human meta-rig (its face removed unless ``face``)."""
    meta = build_rigify_metarig(name + "_metarig")
    if not face:
        _activate(meta)
        bpy.ops.object.mode_set(mode="EDIT")
        eb = meta.data.edit_bones
        face_root = eb.get("face")
        if face_root is not None:
            for b in [face_root, *face_root.children_recursive]:
                eb.remove(b)
        bpy.ops.object.mode_set(mode="OBJECT")
    _activate(meta)
    before_objects = set(bpy.data.objects)
    before_classes = _registered_classes()
    bpy.ops.pose.rigify_generate()
    for cls in _registered_classes() - before_classes:
        if cls.__module__ == "builtins" and getattr(cls, "is_registered", False):
            bpy.utils.unregister_class(cls)
    atexit.unregister(_clear_typing_caches)
    atexit.register(_clear_typing_caches)
    rig = next(o for o in bpy.data.objects if o not in before_objects and o.type == "ARMATURE")
    rig.name = name
    object_mode()
    reset_pose(rig)
    bpy.context.view_layer.update()
    return rig


def world_heads(obj, bone_names) -> dict[str, Vector]:
    """World positions of pose-bone heads after the current pose is evaluated."""
    mw = obj.matrix_world
    return {n: mw @ obj.pose.bones[n].head for n in bone_names}


def apply_curves(obj, rotations: dict, locations: dict, frame: int,
                 set_properties: dict | None = None) -> None:
    """Pose ``obj`` from retargeted curves at one motion frame (rotation mode set to
    QUATERNION on the keyed bones) and evaluate it."""
    pose = obj.pose.bones
    for name, q in rotations.items():
        pb = pose[name]
        if pb.rotation_mode != "QUATERNION":
            pb.rotation_mode = "QUATERNION"
        pb.rotation_quaternion = [float(v) for v in q[frame]]
    for name, x in locations.items():
        pose[name].location = [float(v) for v in x[frame]]
    for name, props in (set_properties or {}).items():
        for prop, value in props.items():
            if pose[name].get(prop) != value:
                pose[name][prop] = value
                obj.update_tag()  # pose-bone ID properties drive Rigify's constraints
    bpy.context.view_layer.update()


def rest_points_world(obj) -> list[Vector]:
    """World positions of every bone's rest head and tail."""
    mw = obj.matrix_world
    return [mw @ b.head_local for b in obj.data.bones] + [mw @ b.tail_local for b in obj.data.bones]
