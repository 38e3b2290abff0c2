"""Export an armature's rest pose as plain lists: the only rig data the engine sees.

``export_rest(obj)`` returns a JSON-ready dict that ``engine.retarget.TargetRest``
reads (``TargetRest.from_dict``):

* ``names``: bone names, in ``armature.bones`` order (parents before children);
* ``parents``: index of each bone's parent, -1 for root bones;
* ``rest_matrices``: ``bone.matrix_local`` (4x4, armature space, rows), which
  carries the bone's roll: a Blender bone points along its local +Y;
* ``lengths``: ``bone.length``; ``inherit_rotation``: ``bone.use_inherit_rotation``;
* ``object_matrix``: the armature object's ``matrix_world`` (it may be scaled,
  rotated, translated or Y-up: the engine works in armature space and takes
  only "up" from it);
* ``rotation_modes``: each pose bone's ``rotation_mode``;
* ``custom_properties``: {pose bone: [custom property names]} for the pose bones
  that have any (Rigify's IK/FK switches), so the engine asks only for what exists;
* ``mapping`` / ``preset``: a custom bone map (JSON text in the object's
  ``choreo_bone_map`` custom property) and a preset name (``choreo_rig_preset``)
  when the artist set them.

No engine import happens here (Blender's Python never imports torch).
"""

from __future__ import annotations

import json

import bpy

from .errors import ChoreoUserError

BONE_MAP_PROP = "choreo_bone_map"
PRESET_PROP = "choreo_rig_preset"
FORMAT = "choreo.rest_pose"


def _rows(matrix) -> list[list[float]]:
    return [[float(v) for v in row] for row in matrix]


def check_armature(obj) -> None:
    """Raise ChoreoUserError unless ``obj`` is an armature object with bones."""
    if obj is None:
        raise ChoreoUserError("No armature given: select the character's armature")
    if getattr(obj, "type", None) != "ARMATURE":
        kind = getattr(obj, "type", type(obj).__name__)
        name = getattr(obj, "name", "?")
        raise ChoreoUserError(f"{name!r} is a {str(kind).lower()}, not an armature: pick the character's armature")
    if len(obj.data.bones) == 0:
        raise ChoreoUserError(f"armature {obj.name!r} has no bones")


def stored_mapping(obj) -> dict | None:
    """The custom bone map stored on the armature (object, else its data), or None."""
    for holder in (obj, obj.data):
        text = holder.get(BONE_MAP_PROP)
        if text:
            try:
                data = json.loads(str(text))
            except ValueError as exc:
                raise ChoreoUserError(f"the bone map stored on {obj.name!r} is not valid JSON ({exc}): "
                                      "assign it again in the Choreo panel") from exc
            if isinstance(data, dict) and "mapping" in data:
                data = data["mapping"]
            if not isinstance(data, dict):
                raise ChoreoUserError(f"the bone map stored on {obj.name!r} is not a {{joint: bone}} map")
            return data
    return None


def store_mapping(obj, mapping_json: str, preset: str | None = None) -> None:
    """Store a bone map (``engine.rigs.mapping_to_json`` text) on the armature object."""
    check_armature(obj)
    json.loads(mapping_json)  # must be valid JSON
    obj[BONE_MAP_PROP] = mapping_json
    if preset:
        obj[PRESET_PROP] = preset


def export_rest(armature_obj) -> dict:
    """The armature's rest pose as plain lists (see the module notes)."""
    check_armature(armature_obj)
    obj = armature_obj
    if obj.mode == "EDIT":
        obj.update_from_editmode()  # edit bones -> bones, staying in Edit Mode
    bones = obj.data.bones
    index = {b.name: i for i, b in enumerate(bones)}
    pose = obj.pose
    modes = []
    for b in bones:
        pb = pose.bones.get(b.name) if pose is not None else None
        modes.append(pb.rotation_mode if pb is not None else "QUATERNION")
    preset = obj.get(PRESET_PROP)
    props = {}
    for pb in (pose.bones if pose is not None else ()):
        keys = [k for k in pb.keys() if not k.startswith("_")]
        if keys:
            props[pb.name] = keys
    return {
        "format": FORMAT,
        "version": 1,
        "armature": obj.name,
        "blender_version": ".".join(str(v) for v in bpy.app.version),
        "names": [b.name for b in bones],
        "parents": [index[b.parent.name] if b.parent else -1 for b in bones],
        "rest_matrices": [_rows(b.matrix_local) for b in bones],
        "lengths": [float(b.length) for b in bones],
        "inherit_rotation": [bool(b.use_inherit_rotation) for b in bones],
        "object_matrix": _rows(obj.matrix_world),
        "rotation_modes": modes,
        "custom_properties": props,
        "mapping": stored_mapping(obj),
        "preset": str(preset) if preset else None,
    }
