"""Generation-time footwork: keep the dancer on its mark and its planted feet still.

Seven steps after decoding (engine.generate):

1. ``anchor_root``: the generator integrates a predicted root velocity, and a small
   bias in it adds up to metres of drift over a song (a straight glide across the
   stage while the legs step on the spot). The slow part of the root's horizontal
   path (Gaussian low-pass, ``DRIFT_SECONDS``) is removed; sway, steps and turns
   within a few seconds are kept.
2. ``plant_feet``: every run of the generator's predicted foot contacts (per foot:
   ankle or toe flag, runs cleaned of one- and two-frame flickers), and every run of
   a foot resting on the floor, pins the ankle at its mean contact position by
   two-bone IK, with the root moved where a leg cannot reach
   (engine.repair.lock_feet). This is the structure constraint "no skating while a
   predicted contact flag is set", enforced exactly. A foot low but moving faster
   than a skate is not resting: it steps across the floor, and gets a swing between
   its pins, not a pin at its mean place. The foot leaves and reaches
   each pin with continuous velocity (a displacement map, engine.repair), lifting
   off the floor on its way if it moves faster than a skate (engine.repair's step
   arc), a move between two pins takes at least MIN_STEP_S, and a pin that would
   bring one leg into the other (closer than the validator's self-penetration
   warning, and closer than the motion had them) is let go around that moment.
3. ``lift_swings``: a foot that moves along the floor faster than a skate (free, or
   flagged but let go) is raised just clear of it, its heel rising at the ends of
   the pins beside (a foot in motion is in the air).
4. ``rise_heels``: where a pin keeps a foot flat under a knee bent far over it, the
   ankle would bend up past its normal range; the foot turns down about its toe
   instead (the heel rises, the legs follow by two-bone IK).
5. ``separate_shins``: where the shins would pass through each other, the legs are
   moved apart sideways by two-bone IK, so a leg steps past the other.
6. ``swivel_knees``: where the thighs would pass through each other, each leg turns
   about its hip-ankle line, knee outwards; the feet stay where they are.
7. ``rest_on_floor``: the floor goes under the feet's resting level
   (engine.normalize.floor_offset), and the root is lifted smoothly wherever a
   joint would still sink into it past the validator's warning depth
   (engine.repair.lift_ground).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import binary_closing, binary_opening, gaussian_filter1d

from engine import ik
from engine import joint_limits as JL
from engine import metrics as M
from engine import rotations as R
from engine import validate as V
from engine.motion import Motion
from engine.normalize import floor_offset, pelvis_left
from engine.repair import fade_frames, lift_ground, lock_feet, smooth_envelope, solve_legs
from engine.skeleton import JOINT, REST_HEIGHT, SMPL_PARENTS

DRIFT_SECONDS = 2.0  # sigma of the low-pass whose path is removed
FLICKER_FRAMES = 2  # contact gaps and blips this short are cleaned
FLOOR_FRAMES = 4  # a foot low and slow for fewer frames is passing over the floor, not resting
SUPPORT_HEIGHT = 0.15  # metres: a lower foot's toe within this carries the weight


def _low_pass(x: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian low-pass along time, padded by point reflection at both ends so that
    a steady glide is followed to the last frame (plain padding would lag there)."""
    pad = min(len(x) - 1, int(4 * sigma))
    ext = np.concatenate([2 * x[:1] - x[pad:0:-1], x, 2 * x[-1:] - x[-2:-pad - 2:-1]])
    return gaussian_filter1d(ext, sigma, axis=0, mode="nearest")[pad:pad + len(x)]


def anchor_root(motion: Motion, seconds: float = DRIFT_SECONDS) -> Motion:
    """The motion with the slow drift of its root's horizontal path removed (the
    first frame keeps its place)."""
    root = motion.root_translation.copy()
    sigma = seconds * motion.fps
    if motion.frames < 2 or sigma <= 0:
        return motion
    slow = _low_pass(root[:, :2], sigma)
    root[:, :2] -= slow - slow[:1]
    return Motion(motion.rotations, root, motion.fps, motion.contacts, motion.name)


def _lasting(mask: np.ndarray, frames: int) -> np.ndarray:
    """(T, 2) ``mask`` with the runs shorter than ``frames`` removed."""
    return binary_opening(mask, np.ones((frames, 1), dtype=bool), border_value=0)


def foot_flags(contacts: np.ndarray) -> np.ndarray:
    """(T, 4) ankle/toe flags -> (T, 2) left/right foot contact, flickers cleaned."""
    c = np.asarray(contacts, dtype=bool)
    feet = np.stack([c[:, 0] | c[:, 1], c[:, 2] | c[:, 3]], 1)
    structure = np.ones((FLICKER_FRAMES + 1, 1), dtype=bool)
    feet = binary_closing(feet, structure, border_value=0) | feet
    return _lasting(feet, FLICKER_FRAMES + 1)


def feet_on_floor(motion: Motion) -> np.ndarray:
    """(T, 2) left/right foot resting on the floor for at least FLOOR_FRAMES: its heel
    (ankle) or toe low and no faster than a skate, at the motion's own resting foot
    level (metrics.planted, the training contact targets' test).

    A low foot moving faster is stepping across the floor (the generator's steps
    often glide): pinned at its mean place, the step was lost (on the dev tracks
    salsa lead's feet were pinned on 80% of frames against its takes' 63%, and
    stepped 37 times a minute each against their 50)."""
    resting = M.planted(motion.positions, motion.fps, REST_HEIGHT)
    return _lasting(resting[:, [0, 2]] | resting[:, [1, 3]], FLOOR_FRAMES)  # on its heel, ball or sole


def support_foot(motion: Motion, feet: np.ndarray) -> np.ndarray:
    """(T, 2) the lower foot, where neither foot is down and that foot's toe is within
    SUPPORT_HEIGHT of the floor: a dancer stands on one foot between steps (only a
    jump, both feet high, has none)."""
    P = motion.positions
    toe = P[:, [M.L_TOE, M.R_TOE], 2] - M.contact_ground(P, REST_HEIGHT)
    lower = np.eye(2, dtype=bool)[toe.argmin(1)]
    free = ~feet.any(1, keepdims=True)
    near = toe.min(1, keepdims=True) <= SUPPORT_HEIGHT
    return _lasting(lower & free & near, FLOOR_FRAMES)


LEG_PAIRS = (("L_thigh", "R_thigh"), ("L_shin", "R_shin"), ("L_shin", "R_thigh"), ("R_shin", "L_thigh"))
MIN_STEP_S = 0.2  # shorter gaps between two contacts of a foot are widened to this (the takes' 10th percentile)
CLEAR_PASSES = 5  # lock, release a pin by half where the legs cross, lock again
LEG_CLEAR = 0.1  # leg capsule axes closer than this fraction of their radii: crossed
# (the validator's error is below 0.03)
PIN_CLEAR = V.PENETRATION_WARN  # a pin bringing the legs closer than the validator's warning is let go
# (let go only at LEG_CLEAR, the follow's legs touched 8.3 times a minute on the dev tracks after the footwork; 0.4 now)


def leg_clearance(P: np.ndarray) -> np.ndarray:
    """(T,) the closest the two legs' capsules come, as a fraction of their radii
    (positions at REST_HEIGHT, as generated)."""
    return V.capsule_ratios(P, 1.0, LEG_PAIRS).min(1)


def _ease_around(mask: np.ndarray, fps: float) -> np.ndarray:
    """(T,) 1 on ``mask`` and easing to 0 over FADE_S either side of it."""
    fade = fade_frames(fps)
    return smooth_envelope(mask.astype(float), 2 * fade + 1, fade / 2.0, mode="constant")


def _widen_gaps(feet: np.ndarray, frames: int) -> np.ndarray:
    """(T, 2) contacts with each gap between two runs of a foot at least ``frames``
    long, taken from both runs' ends: moving from one pin to the next takes time."""
    out = feet.copy()
    for f in range(2):
        r = V.runs(feet[:, f])
        for (_, e), (s, _) in zip(r[:-1], r[1:]):
            short = frames - (s - e - 1)
            if short > 0:
                out[max(0, e + 1 - (short + 1) // 2):e + 1, f] = False
                out[s:s + short // 2 + short % 2, f] = False
    return out


def min_step_frames(fps: float) -> int:
    """MIN_STEP_S in frames (at least 2)."""
    return max(2, int(round(MIN_STEP_S * fps)))


def plant_feet(motion: Motion, contacts: np.ndarray | None = None) -> Motion:
    """Pin the feet over their contact runs: the (T, 4) ``contacts`` flags (by default
    the motion's own, the generator's prediction) and wherever a foot rests on the
    floor (feet_on_floor; a low foot moving faster steps). Where pinning would bring
    the legs closer than PIN_CLEAR (engine.validate's leg capsules) and closer than
    the motion kept them, the pins are released around it. The result's contact flags are
    the frames pinned in full (a pin let go even in part lets its foot slide)."""
    flags = motion.contacts if contacts is None else contacts
    if motion.frames < 3:
        return motion
    feet = feet_on_floor(motion)
    if flags is not None:
        feet = foot_flags(flags) | feet
    feet |= support_foot(motion, feet)
    feet = _widen_gaps(feet, min_step_frames(motion.fps))
    before = leg_clearance(motion.positions)
    release = np.zeros((motion.frames, 2))
    for _ in range(CLEAR_PASSES):
        q, root, _, P = lock_feet(motion.rotations, motion.root_translation, motion.fps, REST_HEIGHT,
                                  P=motion.positions, feet=feet, release=release)
        clearance = leg_clearance(P)
        crossed = (clearance < PIN_CLEAR) & (clearance < before)
        if not crossed.any():
            break
        # the foot whose pin moved it further is the one let go
        moved = np.linalg.norm(P[crossed][:, [M.L_ANKLE, M.R_ANKLE]]
                               - motion.positions[crossed][:, [M.L_ANKLE, M.R_ANKLE]], axis=-1).sum(0)
        f = int(moved.argmax())
        release[:, f] = np.minimum(1.0, release[:, f] + 0.5 * _ease_around(crossed, motion.fps))
    feet &= release == 0
    planted = np.repeat(feet, 2, axis=1)  # ankle and toe of each foot
    out = Motion(q, root, motion.fps, planted, motion.name)
    out._positions = P  # lock_feet's forward kinematics of (q, root)
    return out


SWING_CLEAR = 0.01  # metres above the floor's contact band that a sliding free foot is raised to
LIFTED_OFF = 0.01  # metres: a pinned foot's heel raised more than this is no longer in contact


def lift_swings(motion: Motion) -> Motion:
    """Where a foot moves across the floor faster than a skate (inside metrics'
    contact band: ankle and toe low), raise its ankle just clear of
    the band by two-bone IK, in a smooth envelope that never falls below the need: a
    foot in motion is in the air, not sliding. The envelope reaches into the ends of
    neighbouring pins (the heel rises before the foot leaves and lands after it
    arrives, straight up); frames lifted past LIFTED_OFF lose their contact flags.
    A flagged foot counts too: one that moves is not held (its pin was let go where
    the legs would cross, or the root outran it)."""
    if motion.frames < 3:
        return motion
    P = motion.positions
    scale = REST_HEIGHT / M.REFERENCE_HEIGHT
    ground = M.contact_ground(P, REST_HEIGHT)
    low = M.low_joints(P, scale, ground)
    ankle_top = ground + M.CONTACT_HEIGHTS[0] * scale
    fade = fade_frames(motion.fps)
    targets, lifts = [], []
    for f, (ankle_j, toe_j) in enumerate(((M.L_ANKLE, M.L_TOE), (M.R_ANKLE, M.R_TOE))):
        ankle = P[:, ankle_j]
        speed = np.linalg.norm(np.gradient(P[:, [ankle_j, toe_j], :2], axis=0), axis=-1).min(1)
        sliding = (low[:, 2 * f] & low[:, 2 * f + 1]
                   & (speed * motion.fps > M.SKATE_SPEED * M.SKATE_FPS * scale))
        need = np.where(sliding, ankle_top + SWING_CLEAR * scale - ankle[:, 2], 0.0)
        lifts.append(smooth_envelope(need, 2 * fade + 1, fade / 2.0, mode="constant"))
        targets.append(ankle + np.outer(lifts[-1], [0.0, 0.0, 1.0]))
    if not any((lift > 1e-6).any() for lift in lifts):
        return motion
    q, P = solve_legs(motion.rotations, motion.root_translation, P, targets,
                      [(lift > 1e-6).astype(float) for lift in lifts])
    contacts = motion.contacts
    if contacts is not None:
        contacts = np.array(contacts, dtype=bool)
        for f, lift in enumerate(lifts):
            contacts[lift > LIFTED_OFF * scale, 2 * f:2 * f + 2] = False
    out = Motion(q, motion.root_translation, motion.fps, contacts, motion.name)
    out._positions = P
    return out


THIGH_CLEAR = 0.35  # thigh axes kept this fraction of their radii apart (the validator warns below 0.3)
SWIVEL_MAX = np.radians(30.0)  # a leg is turned about its hip-ankle line at most this far
THIGH_PASSES = 3


def _legs_kept_apart(motion: Motion, q: np.ndarray) -> Motion:
    """``motion`` with the new rotations ``q``, given back towards its own by halves
    wherever they would bring the legs into each other (closer than LEG_CLEAR and than
    they were). No contact flags."""
    before, keep = leg_clearance(motion.positions), np.zeros((motion.frames, 1))
    for attempt in range(CLEAR_PASSES):
        out = Motion(R.quat_slerp(q, motion.rotations, keep), motion.root_translation, motion.fps,
                     None, motion.name)
        after = leg_clearance(out.positions)
        crossed = (after < LEG_CLEAR) & (after < before)
        if not crossed.any() or attempt == CLEAR_PASSES - 1:
            break
        keep = np.minimum(1.0, keep + 0.5 * _ease_around(crossed, motion.fps)[:, None])
    return out


def swivel_leg(q: np.ndarray, G: np.ndarray, side: str, axis: np.ndarray, angle: np.ndarray, frames) -> None:
    """``q`` (T, 24, 4; in place) with the ``side`` ("L" or "R") leg turned on
    ``frames`` by ``angle`` radians about the unit ``axis`` (both indexed like
    ``frames``), ``G`` being q's global rotations. The foot keeps its world
    orientation: about the hip-ankle line, the ankle and foot stay where they are
    and only the knee moves."""
    h, k, a = (JOINT[f"{side}_{joint}"] for joint in ("hip", "knee", "ankle"))
    turn = ik.axis_angle_matrix(axis, angle)
    q[frames, h] = ik.matrix_to_quat(np.swapaxes(G[frames, SMPL_PARENTS[h]], -1, -2) @ turn @ G[frames, h])
    q[frames, a] = ik.matrix_to_quat(np.swapaxes(turn @ G[frames, k], -1, -2) @ G[frames, a])


def swivel_knees(motion: Motion) -> Motion:
    """Where the thighs would pass through each other, turn each leg about the line
    from its hip to its ankle, knee outwards (to the pelvis' side of that leg), until
    their axes are THIGH_CLEAR apart, each leg taking half, in a smooth envelope: the
    ankles and the feet stay exactly where they are, only the knees move. Where that
    would bring the shins into each other, the turn is given back."""
    if motion.frames < 3:
        return motion
    reach = V.CAPSULES["L_thigh"][2] + V.CAPSULES["R_thigh"][2]
    fade = fade_frames(motion.fps)
    q, root = motion.rotations, motion.root_translation
    legs = (("L", 1.0), ("R", -1.0))
    changed = False
    for _ in range(THIGH_PASSES):
        P, G = V.forward_kinematics(q, root)
        close = V.capsule_ratios(P, 1.0, (("L_thigh", "R_thigh"),))[:, 0] < THIGH_CLEAR
        if not close.any():
            break
        gap, s, t = V.segment_gap(P[:, JOINT["L_hip"]], P[:, JOINT["L_knee"]],
                                  P[:, JOINT["R_hip"]], P[:, JOINT["R_knee"]])
        need = np.where(close, np.maximum(THIGH_CLEAR * reach - np.linalg.norm(gap, axis=1), 0.0), 0.0)
        left = pelvis_left(P)
        q = q.copy()
        for (leg, side), lean in zip(legs, (s, t)):
            h, k, a = (JOINT[f"{leg}_{joint}"] for joint in ("hip", "knee", "ankle"))
            axis = P[:, a] - P[:, h]
            axis /= np.maximum(np.linalg.norm(axis, axis=1, keepdims=True), 1e-9)
            offset = P[:, k] - P[:, h]
            offset -= np.einsum("ti,ti->t", offset, axis)[:, None] * axis
            out = np.einsum("ti,ti->t", np.cross(axis, offset), side * left)  # knee outwards per radian
            angle = np.minimum(0.5 * need / np.maximum(np.abs(out) * np.maximum(lean, 0.5), 0.01), SWIVEL_MAX)
            angle = smooth_envelope(angle, 2 * fade + 1, fade / 2.0, mode="constant") * np.sign(out)
            on = np.abs(angle) > 1e-6
            if not on.any():
                continue
            swivel_leg(q, G, leg, axis[on], angle[on], on)
            changed = True
    if not changed:
        return motion
    out = _legs_kept_apart(motion, q)
    out.contacts = motion.contacts
    return out


SHIN_CLEAR = 0.35  # shin axes kept this fraction of their radii apart (the validator warns below 0.3)
SHIN_MOVE_MAX = 0.08  # metres an ankle is moved aside at most
SHIN_PASSES = 3


def _largest_over_runs(shift: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(T, 3) ``shift`` with each run of ``mask`` given one shift: the run's longest,
    turned to the run's mean direction."""
    out = shift.copy()
    for s, e in V.runs(mask):
        run = shift[s:e + 1]
        way = run.mean(0)
        out[s:e + 1] = way / max(np.linalg.norm(way), 1e-9) * np.linalg.norm(run, axis=1).max()
    return out


def separate_shins(motion: Motion) -> Motion:
    """Where the shins would pass through each other, move them apart sideways (the
    left leg to the pelvis' left, the right to its right) until their axes are
    SHIN_CLEAR apart: a leg steps past the other instead of through it. The ankles
    move by two-bone IK, eased in and out (a smooth envelope); a planted foot stays
    where it is while the other is free to move, and where both are planted each
    takes half the move, by one shift over its whole contact (it lands aside, then
    stays). Sideways can be the wrong way (feet crossed under uncrossed knees, legs
    swapping sides in the air): a move that brings the shins closer anywhere along
    its run than they were is given back."""
    if motion.frames < 3:
        return motion
    shins = (("L_shin", "R_shin"),)
    reach = V.CAPSULES["L_shin"][2] + V.CAPSULES["R_shin"][2]
    feet = foot_flags(motion.contacts) if motion.contacts is not None else np.zeros((motion.frames, 2), bool)
    share = np.where(feet[:, :1] == feet[:, 1:], 0.5, np.where(feet, 0.0, 1.0))  # (T, 2)
    fade = fade_frames(motion.fps)
    q, root, P = motion.rotations, motion.root_translation, motion.positions
    ratio = V.capsule_ratios(P, 1.0, shins)[:, 0]
    for _ in range(SHIN_PASSES):
        close = ratio < SHIN_CLEAR
        if not close.any():
            break
        knees, ankles = P[:, [JOINT["L_knee"], JOINT["R_knee"]]], P[:, [JOINT["L_ankle"], JOINT["R_ankle"]]]
        gap, s, t = V.segment_gap(knees[:, 0], ankles[:, 0], knees[:, 1], ankles[:, 1])
        left = pelvis_left(P)
        need = np.where(close, np.maximum(SHIN_CLEAR * reach - np.einsum("ti,ti->t", gap, left), 0.0), 0.0)
        targets, weights = [], []
        for f, (sign, lean) in enumerate(((1.0, s), (-1.0, t))):
            move = np.minimum(need * share[:, f] / np.maximum(lean, 0.5), SHIN_MOVE_MAX)
            move = smooth_envelope(move, 2 * fade + 1, fade / 2.0, mode="constant")
            # a planted foot takes one shift for its whole contact (no slide): the run's
            # largest, the way the pelvis faces on average; eased in and out in the swing
            shift = _largest_over_runs((sign * move)[:, None] * left, feet[:, f])
            shift = gaussian_filter1d(shift, fade / 2.0, axis=0, mode="constant")
            targets.append(ankles[:, f] + shift)
            weights.append(shift.any(axis=1).astype(float))
        q_new, P_new = solve_legs(q, root, P, targets, weights)
        ratio_new = V.capsule_ratios(P_new, 1.0, shins)[:, 0]
        for a, b in V.runs((weights[0] > 0) | (weights[1] > 0)):
            if ratio_new[a:b + 1].min() < ratio[a:b + 1].min():  # a move that crosses the legs is given back
                q_new[a:b + 1], P_new[a:b + 1], ratio_new[a:b + 1] = q[a:b + 1], P[a:b + 1], ratio[a:b + 1]
        q, P, ratio = q_new, P_new, ratio_new
    out = Motion(q, root, motion.fps, motion.contacts, motion.name)
    out._positions = P
    return out


HEEL_RISE_ABOVE = 40.0  # degrees of ankle dorsiflexion kept at most (the validator warns past 45)
HEEL_PASSES = 3  # the legs' IK tilts the shin a little on each pass
TOE_NEAR, TOE_FREE = 0.10, 0.20  # metres (at 1.7 m): a foot turns about its toe up to the first
# height of the toe above the floor, about its ankle from the second, blended between


def _turn_feet_down(q: np.ndarray, root: np.ndarray, fps: float, ground: float) -> np.ndarray | None:
    """One pass of rise_heels (``ground``: the motion's metrics.contact_ground): the new
    local rotations, or None where no ankle bends past HEEL_RISE_ABOVE."""
    fade = fade_frames(fps)
    excess = np.stack([smooth_envelope(np.maximum(JL.fold_angle(q, f"{side}_ankle") - HEEL_RISE_ABOVE, 0.0),
                                       2 * fade + 1, fade / 2.0, mode="constant") for side in "LR"], 1)
    idx = np.flatnonzero((excess > 1e-6).any(1))
    if not len(idx):
        return None
    P, G = V.forward_kinematics(q[idx], root[idx])
    scale = REST_HEIGHT / M.REFERENCE_HEIGHT
    toe_height = P[:, [M.L_TOE, M.R_TOE], 2] - ground
    on_toe = np.clip((TOE_FREE - toe_height / scale) / (TOE_FREE - TOE_NEAR), 0.0, 1.0)  # (n, 2)
    legs = ((JOINT["L_knee"], M.L_ANKLE, M.L_TOE), (JOINT["R_knee"], M.R_ANKLE, M.R_TOE))
    turns, targets, weights = [], [], []
    for f, (knee, ankle, toe) in enumerate(legs):
        shin, foot = P[:, ankle] - P[:, knee], P[:, toe] - P[:, ankle]
        axis = np.cross(shin, foot)
        axis /= np.maximum(np.linalg.norm(axis, axis=-1, keepdims=True), 1e-12)
        turn = ik.axis_angle_matrix(axis, -np.radians(excess[idx, f]))  # the foot towards the shin
        raised = P[:, toe] + np.einsum("tij,tj->ti", turn, -foot)  # the ankle turned about the toe
        turns.append(turn)
        targets.append(P[:, ankle] + on_toe[:, f, None] * (raised - P[:, ankle]))
        weights.append((excess[idx, f] > 1e-6).astype(float))
    q_idx, _ = solve_legs(q[idx], root[idx], P, targets, weights)
    _, G_new = V.forward_kinematics(q_idx, root[idx])
    for f, (knee, ankle, _) in enumerate(legs):
        on = weights[f] > 0
        foot = turns[f][on] @ G[on, ankle]  # the foot's old world orientation, turned
        q_idx[on, ankle] = ik.matrix_to_quat(np.swapaxes(G_new[on, knee], -1, -2) @ foot)
    q = q.copy()
    q[idx] = q_idx
    return q


def rise_heels(motion: Motion) -> Motion:
    """Where an ankle bends up past HEEL_RISE_ABOVE (a knee bent far over a foot that a
    pin keeps flat), turn the foot down by the excess, in a smooth envelope over it,
    about the ball of the foot near the floor (the heel rises and the legs follow by
    two-bone IK; the toe stays where it was, so it neither slides nor drops into the
    floor) and about the ankle high in the air (TOE_NEAR, TOE_FREE). A heel raised
    past LIFTED_OFF loses its ankle's contact flag (the toe keeps its). Where the
    rise would bring the legs into each other, it is given back by halves until it
    does not."""
    if motion.frames < 3:
        return motion
    q, ground = motion.rotations, M.contact_ground(motion.positions, REST_HEIGHT)
    for _ in range(HEEL_PASSES):
        turned = _turn_feet_down(q, motion.root_translation, motion.fps, ground)
        if turned is None:
            break
        q = turned
    if q is motion.rotations:
        return motion
    out = _legs_kept_apart(motion, q)
    if motion.contacts is not None:
        contacts = np.array(motion.contacts, dtype=bool)
        ankles = [M.L_ANKLE, M.R_ANKLE]
        rise = out.positions[:, ankles, 2] - motion.positions[:, ankles, 2]
        contacts[:, [0, 2]] &= rise <= LIFTED_OFF * REST_HEIGHT / M.REFERENCE_HEIGHT
        out.contacts = contacts
    return out


def rest_on_floor(motion: Motion) -> Motion:
    """The motion (in place) with the floor at z = 0 under its feet and no joint in it."""
    motion.root_translation[:, 2] -= floor_offset(motion.positions)
    motion._positions = None
    positions = motion.positions.copy()
    lift_ground(positions, motion.root_translation, motion.fps, REST_HEIGHT)
    motion._positions = positions
    return motion
