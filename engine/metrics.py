"""Standard dance metrics on world joint positions (numpy/scipy only).

Input motion: ``positions`` (T, 24, 3) in metres, Z up, SMPL-24 joint order,
sampled at ``fps``. Each metric resamples to the frame rate of its reference
protocol first (BAS at 60 fps as in Bailando, PFC and foot skating at 30 fps as
in EDGE), so clips at any fps are comparable. The exact variants, units and
published values are in docs/metrics.md. The distribution metrics (AIST++
kinetic/geometric features, FID, diversity) are in ``engine.metrics_features``.

The constants are local rather than imported from ``engine.skeleton`` because
that module imports torch, which the metrics must not need.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import argrelextrema

SMPL_PARENTS = np.array(
    [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]
)
PELVIS = 0
L_HIP, R_HIP = 1, 2
L_ANKLE, R_ANKLE, L_TOE, R_TOE = 7, 8, 10, 11
FOOT_JOINTS = np.array([L_ANKLE, L_TOE, R_ANKLE, R_TOE])  # order of the contact flags
UP = 2  # z
HORIZONTAL = [0, 1]

BAS_FPS = 60
BAS_SMOOTH_SIGMA = 5.0  # frames at 60 fps, smoothing of the speed curve
BAS_SIGMA = 3.0  # frames at 60 fps (50 ms), width of the alignment kernel

PFC_FPS = 30
PFC_SCALE = 1e4

SKATE_FPS = 30
CONTACT_HEIGHTS = np.array([0.08, 0.05, 0.08, 0.05])  # ankle, toe, ankle, toe (m)
SKATE_SPEED = 0.01  # metres per frame at 30 fps
REFERENCE_HEIGHT = 1.7  # body height the thresholds above are stated for (m)
GROUND_PERCENTILE = 2.0
ANKLE_MARGIN = 0.02  # a foot is down while its ankle is within 2 cm of its resting level

JITTER_FPS = 30


def _motion(positions) -> np.ndarray:
    p = np.asarray(positions, dtype=np.float64)
    if p.ndim != 3 or p.shape[-1] != 3 or len(p) == 0:
        raise ValueError(f"positions must be (T, J, 3) with T >= 1, got {p.shape}")
    return p


def resample_positions(positions, fps_in: float, fps_out: float) -> np.ndarray:
    """Linearly interpolate (T, ...) samples from ``fps_in`` onto the ``fps_out`` grid.

    Output frame k is at time k / fps_out, for every k with k / fps_out not after
    the last input frame, (T - 1) / fps_in. Both clocks start at t = 0, so 60 -> 30
    fps keeps every other frame exactly and a linear trajectory stays exact.
    """
    p = np.asarray(positions, dtype=np.float64)
    if fps_in <= 0 or fps_out <= 0:
        raise ValueError("fps must be positive")
    if fps_in == fps_out or len(p) < 2:
        return p.copy()
    n = int(np.floor((len(p) - 1) * fps_out / fps_in + 1e-9)) + 1
    x = np.arange(n) * (fps_in / fps_out)
    i0 = np.minimum(np.floor(x).astype(int), len(p) - 2)
    w = (x - i0).reshape((n,) + (1,) * (p.ndim - 1))
    return (1.0 - w) * p[i0] + w * p[i0 + 1]


# --------------------------------------------------------------------------- BAS


def _kinetic_speed(positions, fps: float) -> np.ndarray:
    """Smoothed mean joint speed at 60 fps, metres per frame; sample k spans frames k..k+1."""
    p = resample_positions(_motion(positions), fps, BAS_FPS)
    speed = np.linalg.norm(np.diff(p, axis=0), axis=-1).mean(axis=1)
    return gaussian_filter1d(speed, BAS_SMOOTH_SIGMA) if len(speed) else speed


def _minima(speed: np.ndarray) -> np.ndarray:
    return argrelextrema(speed, np.less)[0]


def _music_frames(music_beats, n_speed: int) -> tuple[np.ndarray, np.ndarray]:
    """Music beats in 60 fps frames, and the mask of those inside the motion span."""
    frames = np.asarray(music_beats, dtype=np.float64).reshape(-1) * BAS_FPS
    return frames, (frames >= 0) & (frames <= n_speed - 1)


def _nearest(beats: np.ndarray, kinetic: np.ndarray) -> np.ndarray:
    """For each beat, the signed offset (kinetic - beat) to its nearest kinetic beat."""
    diff = kinetic[None, :] - beats[:, None]
    return diff[np.arange(len(beats)), np.argmin(np.abs(diff), axis=1)]


def kinetic_beats(positions, fps: float) -> np.ndarray:
    """Kinetic beats (s): strict local minima of the smoothed 60 fps speed curve.

    As in Bailando, speed sample k (the step from frame k to k + 1) is stamped
    at frame k, so a minimum is reported half a 60 fps frame (8.3 ms) early.
    """
    return _minima(_kinetic_speed(positions, fps)) / BAS_FPS


def bas(positions, fps: float, music_beats) -> float:
    """Beat Align Score, Bailando protocol (music beats -> nearest kinetic beat).

    mean over music beats b of exp(-min_k (k - b)^2 / (2 * 3^2)), in 60 fps frames.
    Music beats (seconds) outside [0, last speed sample] are dropped; nan if none
    remain; 0 if the motion has no kinetic beat.
    """
    speed = _kinetic_speed(positions, fps)
    frames, inside = _music_frames(music_beats, len(speed))
    if not inside.any():
        return float("nan")
    kinetic = _minima(speed)
    if kinetic.size == 0:
        return 0.0
    offsets = _nearest(frames[inside], kinetic)
    return float(np.mean(np.exp(-offsets**2 / (2 * BAS_SIGMA**2))))


def bas_chance(positions, fps: float, other_songs_beats: Sequence) -> float:
    """BAS chance level: mean BAS of the motion against other songs' beats (seconds)."""
    scores = [bas(positions, fps, beats) for beats in other_songs_beats]
    scores = [s for s in scores if not np.isnan(s)]
    return float(np.mean(scores)) if scores else float("nan")


def beat_offsets(positions, fps: float, music_beats) -> np.ndarray:
    """Per music beat, signed seconds to the nearest kinetic beat (+ = motion late).

    Same beats and kinetic beats as ``bas``; nan for a beat outside the motion
    span or when the motion has no kinetic beat.
    """
    speed = _kinetic_speed(positions, fps)
    frames, inside = _music_frames(music_beats, len(speed))
    out = np.full(len(frames), np.nan)
    kinetic = _minima(speed)
    if kinetic.size and inside.any():
        out[inside] = _nearest(frames[inside], kinetic) / BAS_FPS
    return out


def kinetic_beat_rate(positions, fps: float) -> float:
    """Kinetic beats per second of motion, counted as ``bas`` counts them."""
    speed = _kinetic_speed(positions, fps)
    return float(len(_minima(speed)) * BAS_FPS / len(speed)) if len(speed) else float("nan")


# --------------------------------------------------------------------------- PFC


def pfc(positions, fps: float) -> float:
    """Physical Foot Contact score, EDGE protocol, for one clip (average clips yourself).

    At 30 fps: root acceleration a_t = (r_{t+2} - 2 r_{t+1} + r_t) / dt^2 with its
    up part clamped at >= 0, a_hat = |a| / max|a|; foot speeds are horizontal
    displacements per 30 fps frame (m/frame) from t+1 to t+2;
    PFC = 1e4 * mean_t[min(v_Lankle, v_Ltoe) * min(v_Rankle, v_Rtoe) * a_hat_t].
    nan under 3 frames; 0 when the root never accelerates (EDGE would divide by 0).
    """
    p = resample_positions(_motion(positions), fps, PFC_FPS)
    if len(p) < 3:
        return float("nan")
    acc = np.diff(p[:, PELVIS], n=2, axis=0) * PFC_FPS**2
    acc[:, UP] = np.maximum(acc[:, UP], 0.0)
    acc = np.linalg.norm(acc, axis=-1)
    peak = acc.max()
    if peak == 0:
        return 0.0
    feet = p[:, FOOT_JOINTS][:, :, HORIZONTAL]
    speed = np.linalg.norm(feet[2:] - feet[1:-1], axis=-1)
    left = np.minimum(speed[:, 0], speed[:, 1])
    right = np.minimum(speed[:, 2], speed[:, 3])
    return float(PFC_SCALE * np.mean(left * right * acc / peak))


# ------------------------------------------------------------------ foot contact


def _scale(height: float | None) -> float:
    return 1.0 if height is None else float(height) / REFERENCE_HEIGHT


def estimate_ground(positions) -> float:
    """Floor height estimate: the 2nd percentile of ankle and toe heights."""
    return float(np.percentile(_motion(positions)[:, FOOT_JOINTS, UP], GROUND_PERCENTILE))


def low_joints(p: np.ndarray, scale: float, ground: float | None) -> np.ndarray:
    """(T, 4) ankle/toe within their contact heights (times ``scale``) above ``ground``
    (None: estimate_ground)."""
    floor = estimate_ground(p) if ground is None else ground
    return p[:, FOOT_JOINTS, UP] - floor <= CONTACT_HEIGHTS * scale


def contact_ground(positions, height: float = REFERENCE_HEIGHT) -> float:
    """The floor height to give the contact thresholds (ankle 8 cm, toe 5 cm at
    1.7 m) so that they hold for this motion's feet.

    Converted mocap rests a flat foot's ankle at 8.5-9.5 cm and its toe at 4-6 cm (the
    sources' feet differ from SMPL's rest foot, whose ankle is at 7.6 cm), which the
    fixed thresholds miss. The ankle's resting level is its 5th percentile height; the
    returned floor puts the ankle threshold ANKLE_MARGIN above that level, clipped to
    within 3 cm of z = 0.
    """
    p = _motion(positions)
    scale = height / REFERENCE_HEIGHT
    ankles = p[:, [L_ANKLE, R_ANKLE], UP]
    level = float(np.percentile(ankles, 5)) if ankles.size else 0.0
    g = level + ANKLE_MARGIN * scale - CONTACT_HEIGHTS[0] * scale
    return float(np.clip(g, -0.03 * scale, 0.03 * scale))


def planted(positions, fps: float, height: float | None = None) -> np.ndarray:
    """(T, 4) planted flags at the motion's own resting foot level: the contact flags
    of the .npz contract, the generator's training targets and foot locking's."""
    return contacts_from_positions(positions, fps, height,
                                   ground=contact_ground(positions, height or REFERENCE_HEIGHT))


def contacts_from_positions(positions, fps: float, height: float | None = None,
                            ground: float | None = 0.0) -> np.ndarray:
    """(T, 4) bool planted flags for L ankle, L toe, R ankle, R toe.

    A joint is planted when it is within its contact height of the ground (ankle
    8 cm, toe 5 cm) and its horizontal speed (central differences) is at most
    1 cm per 30 fps frame (0.3 m/s). Thresholds scale by height / 1.7 m.
    """
    p = _motion(positions)
    scale = _scale(height)
    feet = p[:, FOOT_JOINTS][:, :, HORIZONTAL]
    if len(p) > 1:
        speed = np.linalg.norm(np.gradient(feet, axis=0), axis=-1) * fps
    else:
        speed = np.zeros((1, len(FOOT_JOINTS)))
    return low_joints(p, scale, ground) & (speed <= SKATE_SPEED * SKATE_FPS * scale)


def foot_skate_steps(positions, fps: float, height: float | None = None,
                     ground: float | None = 0.0) -> tuple[int, int]:
    """(skating foot-steps, contact foot-steps) at 30 fps; see foot_skate_ratio."""
    p = resample_positions(_motion(positions), fps, SKATE_FPS)
    scale = _scale(height)
    low = low_joints(p, scale, ground)
    contact = low[:, 0::2] & low[:, 1::2]
    steps = contact[:-1] & contact[1:]
    feet = p[:, FOOT_JOINTS][:, :, HORIZONTAL]
    speed = np.linalg.norm(np.diff(feet, axis=0), axis=-1)
    foot_speed = np.minimum(speed[:, 0::2], speed[:, 1::2])
    skating = steps & (foot_speed > SKATE_SPEED * scale)
    return int(skating.sum()), int(steps.sum())


def foot_skate_ratio(positions, fps: float, height: float | None = None,
                     ground: float | None = 0.0) -> float:
    """Skating foot-steps / contact foot-steps, at 30 fps.

    A foot is in contact at a frame when its ankle is <= 8 cm and its toe <= 5 cm
    above ``ground`` (z = 0 by contract; None estimates it with
    ``estimate_ground``). A step t -> t+1 with the foot in contact at both ends
    skates when the foot's horizontal speed, min(ankle, toe), exceeds 1 cm per
    frame. Thresholds scale by height / 1.7 m when ``height`` is given. 0 when
    there is no contact step.
    """
    skating, steps = foot_skate_steps(positions, fps, height, ground)
    return skating / steps if steps else 0.0


# ------------------------------------------------------------------------ extras


def joint_speed_stats(positions, fps: float) -> tuple[float, float]:
    """Mean and 90th percentile of per-joint speed over all joints and steps (m/s)."""
    p = _motion(positions)
    if len(p) < 2:
        return float("nan"), float("nan")
    speed = np.linalg.norm(np.diff(p, axis=0), axis=-1) * fps
    return float(speed.mean()), float(np.percentile(speed, 90))


def jitter(positions, fps: float) -> float:
    """Mean jerk magnitude, |third difference| * 30^3, over joints and frames at 30 fps (m/s^3).

    Finite-difference jerk grows with capture noise and frame rate, so every clip
    is measured at 30 fps (the model's rate): exact for 60 or 120 fps input,
    while interpolating other rates adds some jerk of its own.
    """
    p = resample_positions(_motion(positions), fps, JITTER_FPS)
    if len(p) < 4:
        return float("nan")
    return float(np.linalg.norm(np.diff(p, n=3, axis=0), axis=-1).mean() * JITTER_FPS**3)


def body_frame(positions) -> np.ndarray:
    """(T, 24, 3) joints relative to the pelvis, turned so that the hips' line
    (right hip to left hip) is +x: a pose reads the same wherever it stands and
    whichever way it faces (engine.losses uses the same frame)."""
    p = _motion(positions)
    rel = p - p[:, PELVIS:PELVIS + 1]
    across = p[:, L_HIP, :2] - p[:, R_HIP, :2]
    angle = np.arctan2(across[:, 1], across[:, 0])[:, None]
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([rel[..., 0] * c + rel[..., 1] * s, rel[..., 1] * c - rel[..., 0] * s, rel[..., 2]], -1)


def pose_gap(a, b) -> float:
    """Mean distance (m) between two dances' joints in the body frame over their
    common frames: how different two seeds' dances to one song look, beside the
    gap between two different takes of a style."""
    n = min(len(a), len(b))
    return float(np.linalg.norm(body_frame(a[:n]) - body_frame(b[:n]), axis=-1).mean())


def bone_length_variation(positions, parents=SMPL_PARENTS) -> float:
    """Max over bones and frames of |length - median length| / median length."""
    p = _motion(positions)
    parents = np.asarray(parents)
    child = np.flatnonzero(parents >= 0)
    length = np.linalg.norm(p[:, child] - p[:, parents[child]], axis=-1)
    median = np.median(length, axis=0)
    keep = median > 1e-9
    if not keep.any():
        return float("nan")
    return float(np.max(np.abs(length[:, keep] - median[keep]) / median[keep]))


def summary(positions, fps: float, music_beats=None) -> dict:
    """The per-clip quality report used by the validator and the benchmarks."""
    p = _motion(positions)
    speed_mean, speed_p90 = joint_speed_stats(p, fps)
    out = {
        "frames": int(len(p)),
        "fps": float(fps),
        "pfc": pfc(p, fps),
        "foot_skate": foot_skate_ratio(p, fps),
        "kinetic_beat_rate": kinetic_beat_rate(p, fps),
        "jitter": jitter(p, fps),
        "speed_mean": speed_mean,
        "speed_p90": speed_p90,
        "bone_length_variation": bone_length_variation(p),
    }
    if music_beats is not None:
        out["bas"] = bas(p, fps, music_beats)
    return out
