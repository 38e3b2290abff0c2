"""Real mocap onto the canonical SMPL-24 skeleton: conversion, resampling, normalisation."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from engine import skeleton as S
from engine.bvh import read_bvh, world_transforms
from engine.convert import as_written_smpl24, choose_source_map, retarget_to_smpl
from engine.errors import ChoreoError
from engine.motion import Motion, load_motion
from engine.normalize import facing_angle, floor_offset, resample
from engine.skeleton import MAIN_CHILD

TAKES = {
    "cmu_daz": "cmu_salsa/60_01_scaled.bvh.gz",
    "cmu_asf": "cmu_pop_131/131_03.bvh.gz",
    "cc_base": "cmu_modern_05/005_02.bvh.gz",
}


@pytest.fixture(scope="module")
def salsa(shared_data) -> Motion:
    return load_motion(shared_data / "mocap" / TAKES["cmu_daz"])


@pytest.mark.parametrize("skeleton", sorted(TAKES))
def test_bones_point_where_the_source_bones_point(shared_data, skeleton):
    """Every mapped SMPL bone is parallel to its source bone in every frame."""
    bvh = read_bvh(shared_data / "mocap" / TAKES[skeleton])
    name, mapping = choose_source_map(bvh.names)
    assert name == skeleton
    pos = retarget_to_smpl(bvh, mapping).positions
    src, _ = world_transforms(bvh.parents, bvh.offsets[None] + bvh.positions_channels, bvh.local_rotations)
    src = src @ S.Y_UP_TO_Z_UP.T
    index = {n: i for i, n in enumerate(bvh.names)}
    checked = 0
    for joint, child in MAIN_CHILD.items():
        anchors = (mapping.get(joint, ":"), mapping.get(child, ":"))
        if any(":" in a for a in anchors):
            continue  # unmapped, or an End Site anchor
        a, b = (index[x] for x in anchors)
        src_dir = src[:, b] - src[:, a]
        if np.linalg.norm(src_dir, axis=-1).min() < 1e-4:
            continue  # coincident joints (CMU's lowerback sits on the root)
        cos = np.sum(_unit(pos[:, S.JOINT[child]] - pos[:, S.JOINT[joint]]) * _unit(src_dir), -1)
        assert np.degrees(np.arccos(np.clip(cos, -1, 1))).max() < 1.0, (joint, child)
        checked += 1
    assert checked >= 10


def _unit(v):
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def test_floor_and_facing_are_normalised(salsa):
    pos = salsa.positions
    assert abs(floor_offset(pos)) < 1e-6
    assert abs(facing_angle(pos[:30]).mean()) < 0.2
    assert np.allclose(pos[0, 0, :2], 0, atol=1e-9)
    assert 0.85 < np.median(pos[:, 0, 2]) < 1.05  # pelvis height of a standing adult


def test_bone_lengths_are_constant(salsa):
    pos = salsa.positions
    bones = np.linalg.norm(pos[:, 1:] - pos[:, S.SMPL_PARENTS[1:]], axis=-1)
    assert np.allclose(bones, np.linalg.norm(S.REST_OFFSETS[1:], axis=-1), atol=1e-9)


def test_resample_to_30fps_keeps_duration_and_shape(salsa):
    half = resample(salsa, 30)
    assert half.fps == 30 and abs(half.frames - (salsa.frames - 1) / 2 - 1) <= 1
    assert np.allclose(half.positions[:50], salsa.positions[:100:2], atol=1e-6)
    # between two source frames, rotations are slerped: midpoints are equidistant
    odd = resample(salsa, 120).rotations[1:200:2]
    a, b = salsa.rotations[:100], salsa.rotations[1:101]
    dist = lambda p, q: np.abs(np.sum(p * q, -1))  # noqa: E731
    assert np.allclose(dist(a, odd), dist(odd, b), atol=1e-6)


def test_unknown_joint_names_are_listed(tmp_path, shared_data):
    text = gzip.open(shared_data / "mocap" / TAKES["cmu_daz"], "rt").read()
    for name in ("lThigh", "rThigh", "lShin"):
        text = text.replace(f"JOINT {name}\n", f"JOINT mystery_{name}\n")
    path = tmp_path / "renamed.bvh"
    path.write_text(text)
    with pytest.raises(ChoreoError, match="L_hip.*R_hip.*L_knee"):
        load_motion(path)


def test_choreos_own_bvh_reads_back_as_written(salsa, tmp_path):
    """``engine generate --out X.bvh`` writes SMPL-24 with SMPL's own joint names;
    loading it (engine validate, metrics) gives back the same rotations and root,
    not a re-derivation through bone directions (which lost up to 39 deg of twist)
    nor an error (no known skeleton matched those names before)."""
    from engine.commands.generate import write_smpl_bvh

    clip = salsa.slice(0, 120)
    path = tmp_path / "dance.bvh"
    write_smpl_bvh(path, clip)
    back = load_motion(path)
    assert choose_source_map(read_bvh(path).names)[0] == "smpl24"
    assert back.frames == clip.frames
    dots = np.abs(np.einsum("tjk,tjk->tj", back.rotations, clip.rotations))
    assert np.allclose(dots, 1.0, atol=1e-9)
    assert np.abs(back.root_translation - clip.root_translation).max() < 1e-5


def test_an_smpl24_bvh_with_another_rest_pose_is_retargeted(salsa, tmp_path):
    """The same names on a skeleton whose rest offsets are not SMPL's (another tool's
    export) go through the general retarget, which follows the joint positions."""
    from engine.bvh import write_bvh

    clip = salsa.slice(0, 60)
    c = S.Y_UP_TO_Z_UP
    offsets = S.REST_OFFSETS @ c
    offsets[0] = 0.0
    offsets[S.JOINT["L_shoulder"]] *= 1.3  # a wider collar bone
    write_bvh(tmp_path / "other.bvh", list(S.SMPL_NAMES), S.SMPL_PARENTS, offsets, c.T @ clip.matrices @ c,
              clip.root_translation @ c, clip.fps)
    assert as_written_smpl24(read_bvh(tmp_path / "other.bvh")) is None
    back = load_motion(tmp_path / "other.bvh")

    def knee_bend(P):
        thigh = P[:, S.JOINT["L_knee"]] - P[:, S.JOINT["L_hip"]]
        shin = P[:, S.JOINT["L_ankle"]] - P[:, S.JOINT["L_knee"]]
        cos = np.einsum("ti,ti->t", thigh, shin) / np.linalg.norm(thigh, axis=1) / np.linalg.norm(shin, axis=1)
        return np.degrees(np.arccos(np.clip(cos, -1, 1)))

    n = back.frames  # the general path may trim a start-up snap
    assert np.abs(knee_bend(back.positions) - knee_bend(clip.positions)[-n:]).max() < 2.0
