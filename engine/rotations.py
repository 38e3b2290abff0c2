"""Rotation conversions in torch, batched over any leading shape, on CPU or GPU.

Conventions: quaternions are (w, x, y, z); matrices act on column vectors;
the 6D representation is the first two *columns* of the matrix (Zhou et al.
2019), flattened as (c0x, c0y, c0z, c1x, c1y, c1z). Functions that take
numpy arrays return numpy arrays, so data preparation can use them directly.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F


def _numpy_in_numpy_out(fn):
    """Let a torch conversion accept and return numpy arrays too."""

    @functools.wraps(fn)
    def wrapper(x, *args, **kwargs):
        if isinstance(x, np.ndarray):
            out = fn(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)), *args, **kwargs)
            return out.numpy()
        return fn(x, *args, **kwargs)

    return wrapper


@_numpy_in_numpy_out
def quat_normalize(q: torch.Tensor) -> torch.Tensor:
    """Unit quaternions with a non-negative w (one canonical sign)."""
    q = F.normalize(q, dim=-1)
    return torch.where(q[..., :1] < 0, -q, q)


@_numpy_in_numpy_out
def quat_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) wxyz quaternions to (..., 3, 3) rotation matrices."""
    w, x, y, z = F.normalize(q, dim=-1).unbind(-1)
    rows = (
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    )
    return torch.stack(rows, -1).reshape(q.shape[:-1] + (3, 3))


@_numpy_in_numpy_out
def matrix_to_quat(m: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices to (..., 4) wxyz quaternions, w >= 0.

    Uses the numerically stable branch choice (largest diagonal term).
    """
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    candidates = torch.stack(
        [
            torch.stack([1 + m00 + m11 + m22, m[..., 2, 1] - m[..., 1, 2],
                         m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1),
            torch.stack([m[..., 2, 1] - m[..., 1, 2], 1 + m00 - m11 - m22,
                         m[..., 1, 0] + m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0]], -1),
            torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] + m[..., 0, 1],
                         1 - m00 + m11 - m22, m[..., 2, 1] + m[..., 1, 2]], -1),
            torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0],
                         m[..., 2, 1] + m[..., 1, 2], 1 - m00 - m11 + m22], -1),
        ],
        -2,
    )
    best = torch.stack([m00 + m11 + m22, m00, m11, m22], -1).argmax(-1)
    index = best[..., None, None].expand(best.shape + (1, 4))
    q = torch.gather(candidates, -2, index).squeeze(-2)
    return quat_normalize(q)


@_numpy_in_numpy_out
def axis_angle_to_matrix(aa: torch.Tensor) -> torch.Tensor:
    """(..., 3) axis-angle vectors (angle = norm, radians) to matrices."""
    return quat_to_matrix(axis_angle_to_quat(aa))


@_numpy_in_numpy_out
def axis_angle_to_quat(aa: torch.Tensor) -> torch.Tensor:
    """(..., 3) axis-angle vectors to (..., 4) wxyz quaternions."""
    angle = aa.norm(dim=-1, keepdim=True)
    half = 0.5 * angle
    # sin(half)/angle, with its limit 0.5 near zero
    scale = torch.where(angle > 1e-8, torch.sin(half) / angle.clamp_min(1e-8), 0.5 - angle**2 / 48)
    return torch.cat([torch.cos(half), aa * scale], -1)


@_numpy_in_numpy_out
def quat_to_axis_angle(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) wxyz quaternions to (..., 3) axis-angle, angle in [0, pi]."""
    q = quat_normalize(q)
    sin_half = q[..., 1:].norm(dim=-1, keepdim=True)
    angle = 2 * torch.atan2(sin_half, q[..., :1])
    scale = torch.where(sin_half > 1e-8, angle / sin_half.clamp_min(1e-8), 2.0 + angle**2 / 12)
    return q[..., 1:] * scale


@_numpy_in_numpy_out
def matrix_to_axis_angle(m: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) matrices to (..., 3) axis-angle."""
    return quat_to_axis_angle(matrix_to_quat(m))


@_numpy_in_numpy_out
def sixd_to_matrix(d6: torch.Tensor) -> torch.Tensor:
    """(..., 6) first two columns to (..., 3, 3) via Gram-Schmidt."""
    a1, a2 = d6[..., :3], d6[..., 3:]
    b1 = F.normalize(a1, dim=-1)
    b2 = F.normalize(a2 - (b1 * a2).sum(-1, keepdim=True) * b1, dim=-1)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], -1)


@_numpy_in_numpy_out
def matrix_to_sixd(m: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) matrices to their first two columns, (..., 6)."""
    return torch.cat([m[..., :, 0], m[..., :, 1]], -1)


@_numpy_in_numpy_out
def quat_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product a * b of wxyz quaternions (b applied first)."""
    if isinstance(b, np.ndarray):
        b = torch.from_numpy(np.asarray(b, dtype=np.float64)).to(a)
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        -1,
    )


@_numpy_in_numpy_out
def quat_conjugate(q: torch.Tensor) -> torch.Tensor:
    """Inverse of a unit quaternion."""
    return torch.cat([q[..., :1], -q[..., 1:]], -1)


def quat_slerp(a, b, t):
    """Spherical interpolation between unit wxyz quaternions (numpy).

    ``a`` and ``b`` have shape (..., 4); ``t`` broadcasts against (...,).
    Takes the short way round.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)[..., None]
    dot = np.sum(a * b, -1, keepdims=True)
    b = np.where(dot < 0, -b, b)
    dot = np.clip(np.abs(dot), -1.0, 1.0)
    theta = np.arccos(dot)
    sin_theta = np.sin(theta)
    near = sin_theta < 1e-6
    safe = np.where(near, 1.0, sin_theta)
    wa = np.where(near, 1 - t, np.sin((1 - t) * theta) / safe)
    wb = np.where(near, t, np.sin(t * theta) / safe)
    out = wa * a + wb * b
    return out / np.linalg.norm(out, axis=-1, keepdims=True)


def rotation_between(u, v):
    """Smallest rotation matrices taking unit vectors ``u`` to ``v`` (numpy, (...,3))."""
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    u = u / np.linalg.norm(u, axis=-1, keepdims=True)
    v = v / np.linalg.norm(v, axis=-1, keepdims=True)
    axis = np.cross(u, v)
    cos = np.sum(u * v, -1, keepdims=True)
    sin = np.linalg.norm(axis, axis=-1, keepdims=True)
    # opposite vectors: any axis perpendicular to u
    fallback = np.cross(u, np.where(np.abs(u[..., :1]) < 0.9, [1.0, 0, 0], [0, 1.0, 0]))
    axis = np.where(sin < 1e-9, fallback, axis)
    axis = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
    angle = np.arctan2(sin, cos)
    return axis_angle_to_matrix(axis * angle)
