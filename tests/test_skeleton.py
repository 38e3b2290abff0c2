"""Canonical skeleton, rotation conversions, FK and mirroring."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine import rotations as R
from engine import skeleton as S


def _random_quats(n, seed=0):
    rng = np.random.default_rng(seed)
    return R.quat_normalize(rng.normal(size=(n, 4)))


def test_conversions_round_trip():
    q = _random_quats(500)
    m = R.quat_to_matrix(q)
    assert np.allclose(m @ np.swapaxes(m, -1, -2), np.eye(3), atol=1e-10)
    assert np.allclose(np.linalg.det(m), 1.0)
    assert np.allclose(R.matrix_to_quat(m), q, atol=1e-9)
    assert np.allclose(R.axis_angle_to_matrix(R.matrix_to_axis_angle(m)), m, atol=1e-9)
    assert np.allclose(R.sixd_to_matrix(R.matrix_to_sixd(m)), m, atol=1e-9)
    assert np.allclose(R.quat_to_axis_angle(R.axis_angle_to_quat(np.zeros((2, 3)))), 0)


def test_conversions_agree_with_scipy():
    from scipy.spatial.transform import Rotation

    q = _random_quats(50, seed=1)
    scipy_m = Rotation.from_quat(q[:, [1, 2, 3, 0]]).as_matrix()
    assert np.allclose(R.quat_to_matrix(q), scipy_m, atol=1e-10)
    aa = Rotation.from_matrix(scipy_m).as_rotvec()
    assert np.allclose(R.axis_angle_to_matrix(aa), scipy_m, atol=1e-10)


def test_quat_multiply_matches_matrices():
    a, b = _random_quats(20, 2), _random_quats(20, 3)
    assert np.allclose(R.quat_to_matrix(R.quat_multiply(a, b)),
                       R.quat_to_matrix(a) @ R.quat_to_matrix(b), atol=1e-10)


def test_slerp_endpoints_and_midpoint():
    a, b = _random_quats(10, 4), _random_quats(10, 5)
    assert np.allclose(np.abs(np.sum(R.quat_slerp(a, b, 0.0) * a, -1)), 1)
    assert np.allclose(np.abs(np.sum(R.quat_slerp(a, b, 1.0) * b, -1)), 1)
    mid = R.quat_slerp(a, b, 0.5)
    ang = lambda x, y: 2 * np.arccos(np.clip(np.abs(np.sum(x * y, -1)), 0, 1))  # noqa: E731
    assert np.allclose(ang(a, mid), ang(mid, b), atol=1e-7)


def test_rotation_between_including_opposite():
    u = np.array([[1.0, 0, 0], [0, 0, 1], [0, 1, 0]])
    v = np.array([[0.0, 1, 0], [0, 0, -1], [0, 1, 0]])
    m = R.rotation_between(u, v)
    assert np.allclose(np.einsum("nij,nj->ni", m, u), v, atol=1e-9)


def test_rest_skeleton_matches_smpl22_source(shared_data):
    """Offsets are the shared SMPL-22 rest BVH's, Z-up, up to symmetrisation."""
    text = (shared_data / "skeletons" / "smpl22_rest.bvh").read_text()
    offsets = [list(map(float, line.split()[1:])) for line in text.splitlines()
               if line.strip().startswith("OFFSET")]
    nonzero = [o for o in offsets if any(o)]  # drop the root and End Sites
    assert len(nonzero) == 21
    lengths = sorted(np.linalg.norm(nonzero, axis=1))
    ours = sorted(np.linalg.norm(S.REST_OFFSETS[1:22], axis=1))
    assert np.allclose(lengths, ours, atol=0.01)


def test_rest_pose_conventions():
    pos = S.rest_positions()
    assert pos[S.JOINT["L_hip"], 0] > 0 and pos[S.JOINT["R_hip"], 0] < 0  # left is +x
    assert pos[S.JOINT["L_foot"], 1] < pos[S.JOINT["L_ankle"], 1]  # toes point to -y
    assert pos[S.JOINT["head"], 2] > 1.5  # z up
    assert np.isclose(pos[[10, 11], 2], S.TOE_HEIGHT).all()
    assert np.allclose(pos[S.LEFT] * [-1, 1, 1], pos[S.RIGHT])  # symmetric
    assert 1.6 < S.REST_HEIGHT < 1.8


def test_fk_identity_is_rest_and_keeps_bone_lengths():
    torch.manual_seed(0)
    t = 64
    rot = R.axis_angle_to_matrix(torch.randn(t, 24, 3, dtype=torch.float64))
    root = torch.randn(t, 3, dtype=torch.float64)
    pos, glob = S.forward_kinematics(rot, root)
    bones = np.linalg.norm((pos - pos[:, S.SMPL_PARENTS.clip(0)]).numpy()[:, 1:], axis=-1)
    assert np.allclose(bones, np.linalg.norm(S.REST_OFFSETS[1:], axis=-1), atol=1e-12)
    rest, _ = S.forward_kinematics(torch.eye(3, dtype=torch.float64).expand(1, 24, 3, 3),
                                   torch.from_numpy(S.REST_OFFSETS[:1].copy()))
    assert np.allclose(rest[0].numpy(), S.rest_positions())
    assert torch.allclose(glob[:, 4], glob[:, 1] @ rot[:, 4])


def test_fk_is_differentiable_and_batched():
    rot = R.sixd_to_matrix(torch.randn(2, 5, 24, 6, requires_grad=True))
    pos, _ = S.forward_kinematics(rot, torch.zeros(2, 5, 3))
    pos.sum().backward()
    assert pos.shape == (2, 5, 24, 3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_fk_on_gpu_matches_cpu():
    rot = R.axis_angle_to_matrix(torch.randn(8, 24, 3))
    root = torch.randn(8, 3)
    cpu, _ = S.forward_kinematics(rot, root)
    gpu, _ = S.forward_kinematics(rot.cuda(), root.cuda())
    assert torch.allclose(cpu, gpu.cpu(), atol=1e-5)


def test_mirror_twice_is_identity_and_reflects_positions():
    rng = np.random.default_rng(3)
    rot = R.axis_angle_to_matrix(rng.normal(size=(30, 24, 3)))
    root = rng.normal(size=(30, 3))
    m_rot, m_root = S.mirror(rot, root)
    back_rot, back_root = S.mirror(m_rot, m_root)
    assert np.allclose(back_rot, rot) and np.allclose(back_root, root)
    pos = S.forward_kinematics_np(rot, root)
    m_pos = S.forward_kinematics_np(m_rot, m_root)
    assert np.allclose(m_pos, pos[:, S.MIRROR_INDEX] * [-1, 1, 1], atol=1e-10)
    assert np.allclose(np.linalg.det(m_rot), 1.0)
