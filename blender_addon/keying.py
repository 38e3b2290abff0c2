"""Write retargeted curves onto an armature as a new Action in its own NLA track.

The input is what ``engine.retarget`` produces (a ``RetargetResult`` or the .npz
written by ``engine.retarget.save_curves``): per-bone (T, 4) wxyz quaternions in
pose-bone local space, optional per-bone (T, 3) pose-space locations, sampled
from motion frame 0 at the motion's fps. The .npz is read here with numpy only
(keys ``rot:<bone>``, ``loc:<bone>``, ``fps``), so Blender never imports the
engine (torch).

Choices, and why:

* **Resampled to the scene's frame grid** (``resample=True``, the default). Motion
  frame i plays at scene frame ``frame_start + i * scene_fps / motion_fps``; the
  curves are resampled so that there is one key per scene frame, at
  ``frame_start + k`` (integer frames when ``frame_start`` is an integer, which is
  what artists expect to edit), with slerp for rotations and linear interpolation
  for locations. The first key is exactly at ``frame_start`` and equals motion
  frame 0; when the rates match (30 fps motion, 30 fps scene) the keys are the
  motion frames unchanged. The last key is the last scene frame inside the
  motion (the motion's final fraction of a scene frame is dropped).
  ``resample=False`` keys the motion frames as they are, at fractional scene
  frames.
* **LINEAR interpolation** (default). With a key on every frame, linear
  reproduces the curve exactly on frames and never overshoots between them
  (motion-blur sub-frames), where Bezier auto handles can; it is also cheaper.
  ``interpolation="BEZIER"`` is available for artists who prefer it.
* **Keys written in bulk**: ``keyframe_points.add(n)`` + ``foreach_set("co")`` +
  ``foreach_set("interpolation")`` + ``fcurve.update()``; never
  ``keyframe_insert`` (about 80x slower, see bench/bench_keying.py).
* **Rotation modes**: each pose bone is keyed in its own rotation mode:
  QUATERNION -> ``rotation_quaternion`` (made hemisphere-continuous so that
  interpolation never takes the long way round), Euler orders ->
  ``rotation_euler`` in that order (Blender's conversion formulas in numpy,
  each frame the solution nearest the previous one, as
  ``Quaternion.to_euler(order, compat)`` does: no 360-degree or gimbal
  flips), AXIS_ANGLE ->
  ``rotation_axis_angle`` (axis kept continuous, angle unwrapped).
* **Never touches existing animation**: every call makes a new Action, placed in
  a new NLA track and strip (both named after the action) that starts at
  ``frame_start``. Action time equals scene time (the strip maps identically),
  so the keys sit on the scene frames they play at. The armature's active
  action, its other tracks and its drivers are left as they were. Note that
  Blender evaluates an active action *above* the NLA stack: channels it keys
  hide the generated strip's channels.
* **Undo**: ``remove_generation(obj, action)`` removes the track/strip and the
  action, and the AnimData if this module created it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from os import PathLike
from typing import Callable, Iterable, Mapping

import bpy
import numpy as np

from . import compat

EULER_ORDERS = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX")
ROTATION_MODES = ("QUATERNION", "AXIS_ANGLE", *EULER_ORDERS)
INTERPOLATIONS = ("LINEAR", "BEZIER", "CONSTANT")
EXTRAPOLATIONS = ("HOLD_FORWARD", "HOLD", "NOTHING")  # NLA strip; HOLD_FORWARD keeps the last pose

# Custom properties on the Action that remove_generation() relies on.
_TAG = "choreo_generation"
_TAG_CREATED_ANIMDATA = "choreo_created_animation_data"


class KeyingError(ValueError):
    """Bad input to keying; raised before anything in the file is changed."""


@dataclass
class Curves:
    """Retargeted curves as plain numpy arrays (the shape of ``RetargetResult``)."""

    fps: float
    rotations: dict[str, np.ndarray] = field(default_factory=dict)  # bone -> (T, 4) wxyz
    locations: dict[str, np.ndarray] = field(default_factory=dict)  # bone -> (T, 3)

    @property
    def frames(self) -> int:
        for arr in (*self.rotations.values(), *self.locations.values()):
            return len(arr)
        return 0


def load_curves(path: str | PathLike) -> Curves:
    """Read the .npz written by ``engine.retarget.save_curves`` (numpy only)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            if "fps" not in data.files:
                raise KeyingError(f"{path}: not a Choreo curves file (no 'fps')")
            curves = Curves(fps=float(np.asarray(data["fps"]).reshape(-1)[0]))
            for key in data.files:
                if key.startswith("rot:"):
                    curves.rotations[key[4:]] = np.asarray(data[key], dtype=np.float64)
                elif key.startswith("loc:"):
                    curves.locations[key[4:]] = np.asarray(data[key], dtype=np.float64)
    except (OSError, ValueError) as exc:
        if isinstance(exc, KeyingError):
            raise
        raise KeyingError(f"cannot read curves from {path}: {exc}") from exc
    return curves


def as_curves(result_or_path) -> Curves:
    """A ``RetargetResult`` (or anything with fps/rotations/locations), a mapping
    with those keys, or a path to a .npz, as validated ``Curves``."""
    if isinstance(result_or_path, (str, PathLike)):
        curves = load_curves(result_or_path)
    elif isinstance(result_or_path, Mapping):
        curves = Curves(float(result_or_path["fps"]), dict(result_or_path.get("rotations") or {}),
                        dict(result_or_path.get("locations") or {}))
    else:
        curves = Curves(float(result_or_path.fps), dict(result_or_path.rotations or {}),
                        dict(getattr(result_or_path, "locations", None) or {}))
    rotations = {name: np.asarray(q, dtype=np.float64) for name, q in curves.rotations.items()}
    locations = {name: np.asarray(x, dtype=np.float64) for name, x in curves.locations.items()}
    if not math.isfinite(curves.fps) or curves.fps <= 0:
        raise KeyingError(f"motion fps must be positive, got {curves.fps}")
    lengths = set()
    for kind, arrays, width in (("rotation", rotations, 4), ("location", locations, 3)):
        for name, arr in arrays.items():
            if arr.ndim != 2 or arr.shape[1] != width:
                raise KeyingError(f"{kind} curve of bone {name!r} has shape {arr.shape}, "
                                  f"expected (frames, {width})")
            if not np.isfinite(arr).all():
                raise KeyingError(f"{kind} curve of bone {name!r} has non-finite values")
            lengths.add(len(arr))
    if len(lengths) > 1:
        raise KeyingError(f"curves have different lengths: {sorted(lengths)}")
    if lengths == {0}:
        raise KeyingError("curves have no frames")
    for name, q in rotations.items():
        norm = np.linalg.norm(q, axis=1)
        if (norm < 1e-8).any():
            raise KeyingError(f"rotation curve of bone {name!r} has zero quaternions")
        rotations[name] = q / norm[:, None]
    return Curves(curves.fps, rotations, locations)


# --------------------------------------------------------------------------- math (numpy)

def scene_key_times(n_frames: int, motion_fps: float, scene_fps: float, frame_start: float,
                    resample: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Scene frames of the keys and the (fractional) motion frame each one samples.

    With ``resample`` the keys are at ``frame_start + k`` for every scene frame k
    inside the motion; without, at ``frame_start + i * scene_fps / motion_fps``.
    """
    if not resample:
        i = np.arange(n_frames, dtype=np.float64)
        return frame_start + i * (scene_fps / motion_fps), i
    ratio = motion_fps / scene_fps  # motion frames per scene frame
    n_keys = int(math.floor((n_frames - 1) / ratio + 1e-9)) + 1
    k = np.arange(n_keys, dtype=np.float64)
    u = k * ratio
    nearest = np.rint(u)
    u = np.where(np.abs(u - nearest) < 1e-9, nearest, u)  # exact on shared frames
    return frame_start + k, np.minimum(u, n_frames - 1)


def quat_continuous(q: np.ndarray) -> np.ndarray:
    """Flip signs so consecutive quaternions lie in the same hemisphere."""
    if len(q) < 2:
        return q.copy()
    dots = np.einsum("ij,ij->i", q[1:], q[:-1])
    sign = np.concatenate([[1.0], np.cumprod(np.where(dots < 0, -1.0, 1.0))])
    return q * sign[:, None]


def slerp_resample(q: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Sample continuous unit quaternions q (T, 4) at fractional frames u by slerp."""
    if len(q) == 1 or (u == np.floor(u)).all():  # same rate, or one frame: no interpolation
        return q[np.clip(u.astype(np.int64), 0, len(q) - 1)]
    i0 = np.clip(np.floor(u).astype(np.int64), 0, len(q) - 2)
    f = (u - i0)[:, None]
    q0, q1 = q[i0], q[i0 + 1]
    dot = np.clip(np.einsum("ij,ij->i", q0, q1), -1.0, 1.0)[:, None]
    theta = np.arccos(np.abs(dot))
    sin_theta = np.sin(theta)
    small = sin_theta < 1e-6
    safe = np.where(small, 1.0, sin_theta)
    w0 = np.where(small, 1.0 - f, np.sin((1.0 - f) * theta) / safe)
    w1 = np.where(small, f, np.sin(f * theta) / safe) * np.where(dot < 0, -1.0, 1.0)
    out = w0 * q0 + w1 * q1
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def linear_resample(x: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Sample x (T, C) at fractional frames u by linear interpolation."""
    if len(x) == 1 or (u == np.floor(u)).all():
        return x[np.clip(u.astype(np.int64), 0, len(x) - 1)]
    i0 = np.clip(np.floor(u).astype(np.int64), 0, len(x) - 2)
    f = (u - i0)[:, None]
    return x[i0] * (1.0 - f) + x[i0 + 1] * f


def quat_to_axis_angle(q: np.ndarray) -> np.ndarray:
    """(T, 4) continuous quaternions -> (T, 4) (angle, x, y, z), axis and angle continuous."""
    w, v = q[:, 0], q[:, 1:]
    s = np.linalg.norm(v, axis=1)
    angle = 2.0 * np.arctan2(s, w)
    valid = s > 1e-9
    axis = np.zeros_like(v)
    axis[valid] = v[valid] / s[valid, None]
    # Where the rotation is (nearly) identity the axis is arbitrary: carry the last one.
    idx = np.where(valid, np.arange(len(q)), -1)
    idx = np.maximum.accumulate(idx)
    first = np.argmax(valid) if valid.any() else len(q)
    default = axis[first] if valid.any() else np.array([0.0, 1.0, 0.0])  # Blender's default axis
    axis = np.where((idx >= 0)[:, None], axis[np.maximum(idx, 0)], default)
    # (axis, angle) == (-axis, -angle): keep the axis from flipping between frames.
    if len(q) > 1:
        dots = np.einsum("ij,ij->i", axis[1:], axis[:-1])
        sign = np.concatenate([[1.0], np.cumprod(np.where(dots < 0, -1.0, 1.0))])
        axis *= sign[:, None]
        angle *= sign
    angle = np.unwrap(angle)
    return np.concatenate([angle[:, None], axis], axis=1)


# Blender's rotation-order table (BLI_math_rotation): the axes i, j, k and the parity.
_EULER_AXES = {"XYZ": ((0, 1, 2), False), "XZY": ((0, 2, 1), True), "YXZ": ((1, 0, 2), True),
               "YZX": ((1, 2, 0), False), "ZXY": ((2, 0, 1), False), "ZYX": ((2, 1, 0), True)}


def _quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) unit wxyz quaternions -> (..., 3, 3) rotation matrices (column vectors)."""
    w, x, y, z = np.moveaxis(q, -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def _euler_candidates(q: np.ndarray, order: str) -> tuple[np.ndarray, np.ndarray]:
    """The two Euler solutions of each rotation, as Blender's mat3_normalized_to_eulo2
    computes them (``Quaternion.to_euler(order)`` returns the one with smaller angles)."""
    (i, j, k), parity = _EULER_AXES[order]
    m = _quat_to_matrix(q)
    mat = lambda a, b: m[..., b, a]  # noqa: E731  Blender's mat[column][row]
    cy = np.hypot(mat(i, i), mat(i, j))
    regular = cy > 16 * np.finfo(np.float32).eps
    e1 = np.empty(q.shape[:-1] + (3,))
    e2 = np.empty_like(e1)
    e1[..., i] = np.where(regular, np.arctan2(mat(j, k), mat(k, k)), np.arctan2(-mat(k, j), mat(j, j)))
    e1[..., j] = np.arctan2(-mat(i, k), cy)
    e1[..., k] = np.where(regular, np.arctan2(mat(i, j), mat(i, i)), 0.0)
    e2[..., i] = np.where(regular, np.arctan2(-mat(j, k), -mat(k, k)), e1[..., i])
    e2[..., j] = np.where(regular, np.arctan2(-mat(i, k), -cy), e1[..., j])
    e2[..., k] = np.where(regular, np.arctan2(-mat(i, j), -mat(i, i)), e1[..., k])
    if parity:
        e1, e2 = -e1, -e2
    return e1, e2


def quat_to_euler(q: np.ndarray, order: str) -> np.ndarray:
    """(..., T, 4) quaternions -> (..., T, 3) Euler angles in ``order``, continuous in time.

    Frame 0 is Blender's own ``Quaternion.to_euler(order)``; every later frame is
    the solution (of the two, plus multiples of 2*pi per axis) nearest the
    previous frame, as ``to_euler(order, compat)`` picks it for continuous motion.
    Vectorised over the leading axes (bones); only the time loop is in Python.
    """
    e1, e2 = _euler_candidates(np.asarray(q, dtype=np.float64), order)
    out = np.empty_like(e1)
    # Frame 0: the solution with the smaller angles (mat3_normalized_to_eulO).
    first = (np.abs(e1[..., 0, :]).sum(-1) <= np.abs(e2[..., 0, :]).sum(-1))[..., None]
    prev = out[..., 0, :] = np.where(first, e1[..., 0, :], e2[..., 0, :])
    two_pi = 2 * np.pi
    for t in range(1, e1.shape[-2]):
        d1 = e1[..., t, :] - prev
        d1 -= two_pi * np.round(d1 / two_pi)
        d2 = e2[..., t, :] - prev
        d2 -= two_pi * np.round(d2 / two_pi)
        first = (np.abs(d1).sum(-1) <= np.abs(d2).sum(-1))[..., None]
        prev = out[..., t, :] = prev + np.where(first, d1, d2)
    return out


# --------------------------------------------------------------------------- keying

def _enum_value(prop_owner, prop: str, item: str) -> int:
    return prop_owner.bl_rna.properties[prop].enum_items[item].value


def _write_fcurve(channels: compat.ActionChannels, data_path: str, index: int, group: str,
                  times: np.ndarray, values: np.ndarray, interpolation: int) -> bpy.types.FCurve:
    fcurve = channels.new(data_path, index, group)
    n = len(times)
    points = fcurve.keyframe_points
    points.add(n)
    co = np.empty(2 * n, dtype=np.float32)
    co[0::2] = times
    co[1::2] = values
    points.foreach_set("co", co)
    points.foreach_set("interpolation", np.full(n, interpolation, dtype=np.int32))
    fcurve.update()
    return fcurve


def _bone_selected(bone_filter, name: str) -> bool:
    if bone_filter is None:
        return True
    if callable(bone_filter):
        return bool(bone_filter(name))
    return name in bone_filter


def _custom_property_path(pose_bone, prop: str) -> str:
    return f'{pose_bone.path_from_id()}["{bpy.utils.escape_identifier(prop)}"]'


def key_curves(armature_obj: bpy.types.Object, result_or_path, frame_start: float, scene_fps: float,
               action_name: str | None = None,
               bone_filter: Callable[[str], bool] | Iterable[str] | None = None,
               rotation_modes: Mapping[str, str] | None = None,
               set_properties: Mapping[str, Mapping[str, object]] | None = None,
               *, resample: bool = True, interpolation: str = "LINEAR",
               extrapolation: str = "HOLD_FORWARD") -> bpy.types.Action:
    """Key retargeted curves onto ``armature_obj`` as a new Action in a new NLA track.

    ``result_or_path``: a ``RetargetResult``, a mapping with fps/rotations/locations,
    or a .npz path from ``engine.retarget.save_curves``. ``frame_start``: the scene
    frame where motion frame 0 plays (the sound strip's start). ``scene_fps``: exact
    scene rate, ``compat.scene_fps(scene)``. ``bone_filter``: names, or a predicate on
    names, of the bones to key (default all in the curves). ``rotation_modes``:
    {bone: mode} to key a bone in another mode than its pose bone's current
    ``rotation_mode``. ``set_properties``: {pose_bone: {property: value}} keyed once
    at ``frame_start`` in the same action, e.g. Rigify IK/FK switches set to FK.
    ``resample``/``interpolation``: see the module notes. ``extrapolation``: the NLA
    strip's (HOLD_FORWARD: the last pose holds after the dance, nothing before it).

    Everything is validated before anything is created; a :class:`KeyingError`
    leaves the file unchanged. Returns the new Action; its track and strip are
    named after it (``action.name``).
    """
    # ---- validate (nothing is changed until all of it passes)
    if armature_obj is None or armature_obj.type != "ARMATURE":
        kind = "nothing" if armature_obj is None else f"{armature_obj.name!r} ({armature_obj.type})"
        raise KeyingError(f"keying needs an armature object, got {kind}")
    if not (math.isfinite(frame_start) and math.isfinite(scene_fps) and scene_fps > 0):
        raise KeyingError(f"bad timing: frame_start={frame_start}, scene_fps={scene_fps}")
    if interpolation not in INTERPOLATIONS:
        raise KeyingError(f"interpolation must be one of {INTERPOLATIONS}, got {interpolation!r}")
    if extrapolation not in EXTRAPOLATIONS:
        raise KeyingError(f"extrapolation must be one of {EXTRAPOLATIONS}, got {extrapolation!r}")
    anim = armature_obj.animation_data
    if anim is not None and anim.use_tweak_mode:
        raise KeyingError(f"{armature_obj.name!r} is in NLA tweak mode; leave it first")
    curves = as_curves(result_or_path)
    pose_bones = armature_obj.pose.bones
    rotations = {n: q for n, q in curves.rotations.items() if _bone_selected(bone_filter, n)}
    locations = {n: x for n, x in curves.locations.items() if _bone_selected(bone_filter, n)}
    missing = sorted(n for n in {*rotations, *locations} if n not in pose_bones)
    if missing:
        shown = ", ".join(repr(n) for n in missing[:8]) + (" ..." if len(missing) > 8 else "")
        raise KeyingError(f"{len(missing)} bone(s) in the curves are not in armature "
                          f"{armature_obj.name!r}: {shown}")
    modes = {}
    for name in rotations:
        mode = (rotation_modes or {}).get(name) or pose_bones[name].rotation_mode
        if mode not in ROTATION_MODES:
            raise KeyingError(f"bone {name!r}: unknown rotation mode {mode!r}")
        modes[name] = mode
    properties = []  # (group, data path, values)
    for bone_name, props in (set_properties or {}).items():
        if bone_name not in pose_bones:
            raise KeyingError(f"set_properties: no pose bone {bone_name!r} in {armature_obj.name!r}")
        pose_bone = pose_bones[bone_name]
        for prop, value in props.items():
            if prop in pose_bone.keys():
                path = _custom_property_path(pose_bone, prop)
            elif prop in pose_bone.bl_rna.properties and prop != "rna_type":
                path = pose_bone.path_from_id(prop)
            else:
                raise KeyingError(f"set_properties: pose bone {bone_name!r} has no property {prop!r}")
            try:
                values = np.atleast_1d(np.asarray(value, dtype=np.float64))
            except (TypeError, ValueError) as exc:
                raise KeyingError(f"set_properties: {bone_name}[{prop!r}] = {value!r} is not numeric") from exc
            properties.append((bone_name, path, values))
    if not rotations and not locations and not properties:
        raise KeyingError("nothing to key: no curves for the selected bones")

    # ---- compute all channels (still nothing changed)
    times, u = scene_key_times(curves.frames, curves.fps, scene_fps, frame_start, resample)
    channels: list[tuple[str, str, int, np.ndarray]] = []  # (group, data path, index, values)
    ordered = [pb.name for pb in pose_bones if pb.name in rotations or pb.name in locations]
    quats = {}
    for name, q in rotations.items():
        q = quat_continuous(q)
        quats[name] = slerp_resample(q, u) if resample else q
    eulers: dict[str, np.ndarray] = {}
    for order in EULER_ORDERS:  # all bones of one order in one batch
        names = [n for n in rotations if modes[n] == order]
        if names:
            eulers.update(zip(names, quat_to_euler(np.stack([quats[n] for n in names]), order)))
    for name in ordered:
        pose_bone = pose_bones[name]
        if name in locations:
            values = linear_resample(locations[name], u) if resample else locations[name]
            path = pose_bone.path_from_id("location")
            channels += [(name, path, i, values[:, i]) for i in range(3)]
        if name in rotations:
            mode = modes[name]
            if mode == "QUATERNION":
                path, values = pose_bone.path_from_id("rotation_quaternion"), quats[name]
            elif mode == "AXIS_ANGLE":
                path, values = pose_bone.path_from_id("rotation_axis_angle"), quat_to_axis_angle(quats[name])
            else:
                path, values = pose_bone.path_from_id("rotation_euler"), eulers[name]
            channels += [(name, path, i, values[:, i]) for i in range(3 if mode in EULER_ORDERS else 4)]

    # ---- create: action, slot, F-Curves, NLA track and strip
    interp = _enum_value(bpy.types.Keyframe, "interpolation", interpolation)
    action = bpy.data.actions.new(action_name or "Choreo")
    created_anim = anim is None
    track = None
    try:
        action[_TAG] = True
        action[_TAG_CREATED_ANIMDATA] = created_anim
        slot = compat.new_action_slot(action, armature_obj)
        fcurves = compat.action_fcurves(action, slot)
        for group, path, index, values in channels:
            _write_fcurve(fcurves, path, index, group, times, values, interp)
        key_time = np.array([float(frame_start)])
        for group, path, values in properties:
            for index, value in enumerate(values):
                _write_fcurve(fcurves, path, index, group, key_time, np.array([value]), interp)

        if anim is None:
            anim = armature_obj.animation_data_create()
        track = anim.nla_tracks.new()
        track.name = action.name
        start = math.floor(frame_start)
        strip = track.strips.new(action.name, int(start), action)
        compat.set_strip_slot(strip, slot)
        if start != frame_start:
            # Fractional start: keep the identity mapping (action time == scene time);
            # the strip begins on the frame before the first key, which holds.
            strip.action_frame_start = start
            strip.frame_start_ui = start
        strip.name = action.name
        strip.blend_type = "REPLACE"
        strip.extrapolation = extrapolation  # type: ignore[assignment]  # validated by the caller
    except Exception:
        _remove(armature_obj, action, track)
        raise
    return action


# --------------------------------------------------------------------------- undo

def generation_strips(obj: bpy.types.Object, action: bpy.types.Action) -> list:
    """(track, strip) pairs of ``obj``'s NLA that play ``action``."""
    anim = obj.animation_data
    if anim is None:
        return []
    return [(track, strip) for track in anim.nla_tracks for strip in track.strips
            if strip.action == action]


def _remove(obj, action, track=None) -> None:
    created_anim = bool(action.get(_TAG_CREATED_ANIMDATA, False))
    anim = obj.animation_data
    if anim is not None:
        owners = [] if track is None else [track]
        for owner, strip in generation_strips(obj, action):
            owner.strips.remove(strip)
            owners.append(owner)
        removed = set()
        for owner in owners:  # tracks left empty by this removal (never the artist's empty ones)
            if owner.as_pointer() not in removed and len(owner.strips) == 0:
                removed.add(owner.as_pointer())
                anim.nla_tracks.remove(owner)
        if anim.action == action:
            anim.action = None
    bpy.data.actions.remove(action)
    anim = obj.animation_data
    if (created_anim and anim is not None and anim.action is None and len(anim.nla_tracks) == 0
            and len(anim.drivers) == 0):
        obj.animation_data_clear()


def remove_generation(obj: bpy.types.Object, action: bpy.types.Action) -> None:
    """Undo :func:`key_curves`: remove the action's NLA strip (and its track, once
    empty), the action itself, and the AnimData if keying created it and nothing
    else uses it. Everything else on ``obj`` is left as it was."""
    try:
        if action is None or bpy.data.actions.get(action.name) != action:
            return  # already gone
    except ReferenceError:  # the action was deleted
        return
    _remove(obj, action)
