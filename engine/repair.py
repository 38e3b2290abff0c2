"""Repair what the validator finds, without breaking the motion's rhythm.

``repair(motion, music_beats=None) -> (fixed Motion, before Report, after Report)``.

In order:
1. **Flips**: a joint whose local rotation jumps (about 180 degrees) and comes back
   has its bad frames replaced by a slerp between the good neighbours; a jump that does
   not come back is spread over a short window around it.
2. **Pops**: frames whose joint positions break the acceleration or jerk error limit
   (engine.validate) are replaced, whole pose and root, by interpolation between the
   good frames around them; repeated with a one-frame wider window while errors remain.
3. **Joint limits**: rotations past a hard limit are clamped back inside it in
   rotation space (engine.joint_limits.clamp).
4. **Ground**: where a joint sinks into the floor beyond the warning tolerance, the
   root is raised so that the lowest joint's surface is on the floor, through a smooth
   envelope (never lower than needed).
5. **Foot skating**: in each floor contact where a foot slides past the warning
   distance, the ankle is pinned at its mean contact position with analytic two-bone
   IK (engine.ik: hip-knee-ankle, the knee keeps its bend plane, the foot keeps its
   world orientation). The foot eases onto and off each pin over FADE_S with its own
   velocity cancelled at the pin (a displacement map, no snap); where the leg cannot
   reach, the root is moved by a smooth envelope of the shortfall. The ground step
   runs again after it.

Then the result is validated again. Kinetic beats (metrics.kinetic_beats) are
compared before and after; the largest shift, in input frames, is in
``after.summary["repairs"]["kinetic_beat_shift_frames"]``.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d, maximum_filter1d

from engine import ik
from engine import joint_limits as JL
from engine import metrics as M
from engine import validate as V
from engine.motion import Motion
from engine.rotations import quat_slerp

# A foot lock eases in and out over this. At 0.2 s the knees and ankles of faster
# dances spiked as their feet reached their pins (the salsa follow: 5.4 validator
# errors per minute on the dev music against 0.9 at 0.4 s, skate 4.1% against 2.8%).
FADE_S = 0.4
POP_PASSES = 4
POP_KINDS = ("acceleration", "jerk", "velocity")
JUMP_SPREAD_S = 0.05  # half-width over which a one-way rotation jump is spread
LIFT_WINDOW_S, LIFT_SIGMA_S = 0.3, 0.08


def _refresh(P: np.ndarray, q: np.ndarray, root: np.ndarray, frames) -> np.ndarray:
    """Recompute the positions of ``frames`` (bool mask or indices) in place: forward
    kinematics is per frame, so only frames whose pose changed need it."""
    idx = np.flatnonzero(frames) if np.asarray(frames).dtype == bool else np.asarray(frames)
    if len(idx):
        P[idx] = V.forward_kinematics(q[idx], root[idx], False)[0]
    return P


def interp_frames(q: np.ndarray, root: np.ndarray, s: int, e: int, joints=None, mask=None):
    """Replace frames s..e (inclusive) by slerp/lerp between s-1 and e+1 (in place).
    At the clip's ends the one good neighbour is held. ``mask`` (T,) bool records them."""
    T = len(q)
    if mask is not None:
        mask[max(0, s):e + 1] = True
    a, b = s - 1, e + 1
    if a < 0 and b >= T:
        return
    if a < 0:
        a = b
    if b >= T:
        b = a
    n = e - s + 1
    t = (np.arange(1, n + 1) / (n + 1)) if a != b else np.zeros(n)
    js = np.arange(q.shape[1]) if joints is None else np.atleast_1d(joints)
    qa = np.broadcast_to(q[a, js], (n, len(js), 4))
    qb = np.broadcast_to(q[b, js], (n, len(js), 4))
    q[s:e + 1, js] = quat_slerp(qa, qb, np.broadcast_to(t[:, None], (n, len(js))))
    if joints is None:
        root[s:e + 1] = root[a] * (1 - t[:, None]) + root[b] * t[:, None]


def fix_flips(q: np.ndarray, root: np.ndarray, fps: float, mask=None, threshold: float | None = None) -> int:
    """Slerp over flip segments and spread one-way jumps (in place; steps over
    ``threshold`` degrees a frame, by default the validator's). Returns the count."""
    found = V.find_flips(q, fps, threshold)
    half = max(1, int(round(JUMP_SPREAD_S * fps)))
    for j, s, e, _, returned in found:
        if returned:
            interp_frames(q, root, s, e, joints=j, mask=mask)
        else:  # frames s and s+1 straddle the jump: spread it over a window
            lo, hi = max(0, s - half + 1), min(len(q) - 1, e + half - 1)
            interp_frames(q, root, lo, hi, joints=j, mask=mask)
    return len(found)


def pop_joints(P: np.ndarray, fps: float, height: float, kinds=POP_KINDS) -> np.ndarray:
    """(T, 24) where each joint breaks the validator's error limit of one of ``kinds``."""
    vals = V.dynamics(P, fps, height)
    bad = np.zeros(P.shape[:2], dtype=bool)
    for kind, val in zip(("velocity", "acceleration", "jerk"), vals):
        if kind in kinds:
            ref, _, fe = V.DYNAMIC_FACTORS[kind]
            bad |= val / ref > fe
    return bad


def fix_pops(q: np.ndarray, root: np.ndarray, fps: float, height: float, mask=None, P=None):
    """Interpolate over frames that break the dynamic error limits (in place).
    ``P``: the positions of (q, root), updated in place (computed when None).
    Returns (number of frames replaced, positions)."""
    k = V._stride(fps)
    ref = V.DYNAMIC_FACTORS["acceleration"][0]
    fe = V.DYNAMIC_FACTORS["acceleration"][2]
    replaced = np.zeros(len(q), dtype=bool)
    if P is None:
        P = V.forward_kinematics(q, root, False)[0]
    for grow in range(POP_PASSES):
        bad = pop_joints(P, fps, height).any(1)
        if not bad.any():
            break
        # native-rate accelerations pin a spike to its own frames
        acc1 = np.zeros(len(P))
        if len(P) > 2:
            d2 = V.norm3(P[2:] - 2 * P[1:-1] + P[:-2]) * fps**2 / height
            acc1[1:-1] = (d2 / ref).max(1)
        now = np.zeros(len(q), dtype=bool)
        for s, e in V.runs(bad, gap=k):
            lo, hi = max(0, s - k), min(len(q) - 1, e + k)
            spikes = np.flatnonzero(acc1[lo:hi + 1] > fe) + lo
            if grow == 0 and len(spikes):
                s2, e2 = int(spikes.min()), int(spikes.max())
            else:
                s2, e2 = max(0, lo - grow), min(len(q) - 1, hi + grow)
            interp_frames(q, root, s2, e2, mask=mask)
            now[s2:e2 + 1] = True
        replaced |= now
        _refresh(P, q, root, now)
    return int(replaced.sum()), P


def fade_frames(fps: float) -> int:
    """FADE_S in frames (at least 2)."""
    return max(2, int(round(FADE_S * fps)))


def smooth_envelope(need: np.ndarray, window: int, sigma: float, mode: str = "nearest") -> np.ndarray:
    """(T,) a smooth curve over ``need`` that is never below it: a maximum filter of
    ``window`` frames, then a Gaussian of ``sigma`` frames (both padded by ``mode``)."""
    wide = maximum_filter1d(need, window, mode=mode)
    return np.maximum(gaussian_filter1d(wide, sigma, mode=mode), need)


def lift_ground(P: np.ndarray, root: np.ndarray, fps: float, height: float) -> int:
    """Raise the root where a joint is in the floor past the warning depth (root and
    the positions ``P`` of the same motion, in place). Returns the frames raised."""
    scale = height / V.REST_HEIGHT
    depth = (V.JOINT_RADIUS * scale)[None] - P[:, :, 2]
    worst = depth.max(1)
    need = np.where(worst > V.GROUND_WARN * scale, worst, 0.0)
    if not need.any():
        return 0
    lift = smooth_envelope(need, max(1, int(round(LIFT_WINDOW_S * fps))), max(0.5, LIFT_SIGMA_S * fps))
    root[:, 2] += lift
    P[:, :, 2] += lift[:, None]
    return int((lift > 1e-6).sum())


def _hermite(p0, m0, p1, m1, n: int, span: int | None = None) -> np.ndarray:
    """Cubic Hermite from (p0, slope m0) to (p1, slope m1), slopes per frame, over n
    frames: the (n - 1, 3) values strictly between the two ends. With ``span``, each
    slope acts over at most that many frames from its end (the same cubic bump,
    shortened), so a fast slope over a long gap does not swing the curve far out."""
    k = np.arange(1, n)[:, None]
    u = k / n
    s = n if span is None else min(n, span)
    x, y = np.minimum(k / s, 1.0), np.minimum((n - k) / s, 1.0)
    return ((2 * u**3 - 3 * u**2 + 1) * p0 + x * (1 - x) ** 2 * s * m0
            + (-2 * u**3 + 3 * u**2) * p1 - y * (1 - y) ** 2 * s * m1)


SLOPE_S = 0.3  # a pinned foot takes up (or gives back) its own velocity over this
STEP_LIFT = 0.02  # metres: a foot sliding from one pin to the next clears the floor by this


def _step_arc(path: np.ndarray, start: np.ndarray, end: np.ndarray, fps: float) -> np.ndarray:
    """(n,) the least ankle height along ``path`` (n, 3), the ankle's way between
    ``start`` and ``end`` (the frames either side, at ``fps``): where it would move
    faster than a skate (metrics.SKATE_SPEED) it lifts, by STEP_LIFT at the middle of a
    squared-sine arc between the two ends' heights (leaving and landing with no
    vertical speed), so a step does not slide along the floor."""
    u = np.arange(1, len(path) + 1) / (len(path) + 1)
    way = np.concatenate([start[None], path, end[None]])[:, :2]
    fast = np.linalg.norm(np.diff(way, axis=0), axis=1).max() * fps > M.SKATE_SPEED * M.SKATE_FPS
    return start[2] + (end[2] - start[2]) * u + (STEP_LIFT if fast else 0.0) * np.sin(np.pi * u) ** 2


def _lock_targets(P, fps, intervals, contacts, min_slide: float, release=None):
    """Per foot (T, 3) ankle targets and (T,) weights for the contacts in
    ``intervals`` (per foot, (start, end, slid) with end inclusive) that slid more
    than ``min_slide`` metres; ``release`` (T, 2) in [0, 1] scales each foot's
    displacement down (1: the foot keeps its own path).

    A displacement map: over a contact the ankle is moved onto its pin (its mean
    position on the frames flagged planted); between contacts the displacement
    follows a cubic Hermite curve that leaves and joins each contact with the
    ankle's own velocity there cancelled, so the pinned foot lifts off and lands with
    continuous velocity (no snap), and never slides along the floor on its way
    (_step_arc). Gaps longer than two FADE_S windows return to the original path in
    between. Where the foot goes free (before the first pin, after the last, within a
    long gap) its weight eases to 0, so that it joins the body's path smoothly even
    where lock_feet moves the root (the foot jumped by the root's move before)."""
    T = len(P)
    fade = fade_frames(fps)
    slope_frames = max(2, int(round(SLOPE_S * fps)))
    out = []
    count = 0
    for f, foot in enumerate(intervals):
        ankle = P[:, (M.L_ANKLE, M.R_ANKLE)[f]]
        vel = np.gradient(ankle, axis=0) if T > 1 else np.zeros_like(ankle)
        shift = np.zeros_like(ankle)
        weight = np.zeros(T)
        runs = []
        for s, e, slid in foot:
            if slid <= min_slide:
                continue
            count += 1
            planted = contacts[s:e + 1, 2 * f] | contacts[s:e + 1, 2 * f + 1]
            frames = np.arange(s, e + 1)[planted] if planted.sum() >= 2 else np.arange(s, e + 1)
            shift[s:e + 1] = ankle[frames].mean(0) - ankle[s:e + 1]
            weight[s:e + 1] = 1.0
            runs.append((s, e))
        zero = np.zeros(3)
        gaps = list(zip([None] + [e for _, e in runs], [s for s, _ in runs] + [None])) if runs else []
        for a, b in gaps:  # from the end of a contact (frame a) to the start of the next (b)
            leave = (shift[a], -vel[a]) if a is not None else None
            land = (shift[b], -vel[b]) if b is not None else None
            a = b - fade if a is None else a
            b = a + fade if b is None else b
            pieces = [(a, b, leave, land)]
            if leave and land and b - a > 2 * fade:
                pieces = [(a, a + fade, leave, None), (b - fade, b, None, land)]
            for lo, hi, start, end in pieces:
                frames = np.arange(lo + 1, hi)
                keep = (frames >= 0) & (frames < T)
                (p0, m0), (p1, m1) = start or (zero, zero), end or (zero, zero)
                curve = _hermite(p0, m0, p1, m1, hi - lo, slope_frames)
                # cancelling the foot's own lift would hold it low while it already
                # moves across: a swing is never lowered past the ends' shifts
                curve[:, 2] = np.maximum(curve[:, 2], min(p0[2], p1[2]))
                if lo >= 0 and hi < T:
                    arc = _step_arc(ankle[lo + 1:hi] + curve, ankle[lo] + shift[lo], ankle[hi] + shift[hi], fps)
                    curve[:, 2] = np.maximum(curve[:, 2], arc - ankle[lo + 1:hi, 2])
                shift[frames[keep]] = curve[keep]
                ease = 0.5 + 0.5 * np.cos(np.pi * (frames - lo) / (hi - lo))  # 1 at lo, 0 at hi
                ramp = ease if end is None else 1.0 - ease if start is None else np.ones_like(ease)
                weight[frames[keep]] = ramp[keep]
        if release is not None:
            shift *= 1.0 - release[:, f, None]
        out.append((ankle + shift, weight))
    return out, count


def lock_feet(q: np.ndarray, root: np.ndarray, fps: float, height: float, P=None, feet=None,
              release=None):
    """Foot locking by IK. ``P``: positions of (q, root). ``feet``: (T, 2) left/right
    contact flags to pin every run of (at least two frames); by default the
    validator's floor contacts that slide past its warning distance are pinned.
    ``release``: see _lock_targets.
    Returns (new q, new root, number of contacts locked, positions of the result)."""
    if P is None:
        P = V.forward_kinematics(q, root, False)[0]
    ground = M.contact_ground(P, height)
    contacts = M.contacts_from_positions(P, fps, height=height, ground=ground)
    if feet is None:
        intervals = V.foot_skating(P, fps, height, V.feet_low(P, height, ground))
        min_slide = V.SKATE_WARN * height / V.REST_HEIGHT
    else:
        intervals = [[(s, e, np.inf) for s, e in V.runs(np.asarray(feet)[:, f]) if e > s] for f in range(2)]
        min_slide = 0.0
    locks, count = _lock_targets(P, fps, intervals, contacts, min_slide, release)
    if count == 0:
        return q, root, 0, P
    # root correction where a pinned leg cannot reach its target
    shift = np.zeros_like(root)
    for f, (target, weight) in enumerate(locks):
        hip, knee, ankle = (ik.JOINT[n] for n in ik.LIMBS[("L_leg", "R_leg")[f]])
        reach = 0.995 * (np.linalg.norm(P[:, knee] - P[:, hip], axis=-1)
                         + np.linalg.norm(P[:, ankle] - P[:, knee], axis=-1))
        goal = P[:, ankle] + weight[:, None] * (target - P[:, ankle])
        d = goal - P[:, hip]
        dist = np.linalg.norm(d, axis=-1)
        excess = np.maximum(0.0, dist - reach)
        need = d / np.maximum(dist, 1e-9)[:, None] * excess[:, None]
        bigger = np.linalg.norm(need, axis=-1) > np.linalg.norm(shift, axis=-1)
        shift[bigger] = need[bigger]
    if np.abs(shift).max() > 1e-6:
        # a smooth envelope of the shortfall (never less than needed), in its smoothed direction
        fade = fade_frames(fps)
        envelope = smooth_envelope(np.linalg.norm(shift, axis=-1), 2 * fade + 1, fade / 2.0, mode="reflect")
        way = gaussian_filter1d(shift, fade / 2.0, axis=0)
        way /= np.maximum(np.linalg.norm(way, axis=-1, keepdims=True), 1e-9)
        smooth = way * envelope[:, None]
        root = root + smooth
        P = P + smooth[:, None, :]  # a root translation moves every joint alike
    q_new, P = solve_legs(q, root, P, [target for target, _ in locks], [weight for _, weight in locks])
    return q_new, root, count, P


def solve_legs(q: np.ndarray, root: np.ndarray, P: np.ndarray, targets, weights,
               limbs=("L_leg", "R_leg")):
    """Two limbs' two-bone IK (engine.ik.solve_limb; both legs by default) towards the
    (T, 3) end-joint ``targets`` with (T,) ``weights``, on one forward kinematics of the
    frames either limb moves on (the limbs are independent given the root). Returns
    (new q, a copy of the positions ``P`` refreshed on those frames)."""
    active = np.zeros(len(q), dtype=bool)
    for weight in weights:
        active |= weight > 0
    idx = np.flatnonzero(active)
    q_new = q.copy()
    if len(idx):
        P_a, G_a = V.forward_kinematics(q[idx], root[idx])
        for limb, target, weight in zip(limbs, targets, weights):
            if not weight.any():
                continue
            q_leg, _ = ik.solve_limb(q[idx], root[idx], limb, target[idx], weight[idx],
                                     positions=P_a, global_rot=G_a)
            joints = [ik.JOINT[n] for n in ik.LIMBS[limb]]
            q_new[idx[:, None], joints] = q_leg[:, joints]
    return q_new, _refresh(P.copy(), q_new, root, idx)


BEAT_GUARD_S = 0.35  # kinetic beats this close to a rebuilt pop/flip/clamp may move
REVERT_HALF_S, REVERT_RAMP_S = 0.35, 0.1  # window around a moved beat given back


def _guarded(kb: np.ndarray, changed, fps: float) -> np.ndarray:
    """Mask of kinetic beats (s) not within BEAT_GUARD_S of a ``changed`` frame."""
    if changed is None or not changed.any() or len(kb) == 0:
        return np.ones(len(kb), dtype=bool)
    guard = int(round(BEAT_GUARD_S * fps))
    near = maximum_filter1d(changed.astype(np.uint8), 2 * guard + 1, mode="constant") > 0
    idx = np.clip(np.rint(kb * fps).astype(int), 0, len(changed) - 1)
    return ~near[idx]


def beat_shifts(before_P, after_P, fps, changed=None):
    """(kinetic beats before (s), their shift to the nearest beat after in input frames,
    kept mask): beats within BEAT_GUARD_S of a ``changed`` frame (rebuilt over a pop,
    flip or clamp, where the speed curve had a spike) are not kept."""
    kb = M.kinetic_beats(before_P, fps)
    ka = M.kinetic_beats(after_P, fps)
    keep = _guarded(kb, changed, fps)
    if len(ka) == 0:
        return kb, np.full(len(kb), np.inf), keep
    shift = np.min(np.abs(kb[:, None] - ka[None, :]), axis=1) * fps if len(kb) else np.zeros(0)
    return kb, shift, keep


def beat_shift(before_P, after_P, fps, changed=None) -> tuple[float, int]:
    """(largest shift of a kept kinetic beat in input frames, number not kept)."""
    _, shift, keep = beat_shifts(before_P, after_P, fps, changed)
    return (float(shift[keep].max()) if keep.any() else 0.0), int((~keep).sum())


def _blend(q_a, root_a, q_b, root_b, w):
    """Per-frame blend from (q_a, root_a) at w = 0 to (q_b, root_b) at w = 1."""
    q = q_b.copy()
    root = root_b.copy()
    part = w < 1
    if part.any():
        n = int(part.sum())
        q[part] = quat_slerp(q_a[part], q_b[part], np.broadcast_to(w[part, None], (n, q.shape[1])))
        root[part] = root_a[part] + w[part, None] * (root_b[part] - root_a[part])
    return q, root


def keep_beats(before_P, q_pre, root_pre, q_fix, root_fix, fps, changed, P_fix=None,
               passes: int = 3):
    """Give back the foot-lock and ground changes around kinetic beats that moved by
    more than one frame, until none does (or ``passes`` run out). Beats near a
    ``changed`` frame (a pop, flip or clamp rebuilt, an error-level ground or skating
    fix) are left as the fix made them.
    Returns (q, root, positions, windows given back, largest kept shift, beats not kept)."""
    kb = M.kinetic_beats(before_P, fps)
    keep = _guarded(kb, changed, fps)
    w = np.ones(len(q_fix))
    half, ramp = int(round(REVERT_HALF_S * fps)), max(1, int(round(REVERT_RAMP_S * fps)))
    q, root = q_fix, root_fix
    P = V.forward_kinematics(q, root, False)[0] if P_fix is None else P_fix
    given = 0
    shift = np.zeros(len(kb))
    for n in range(passes + 1):
        ka = M.kinetic_beats(P, fps)
        if len(kb) == 0:
            break
        shift = (np.min(np.abs(kb[:, None] - ka[None, :]), axis=1) * fps if len(ka)
                 else np.full(len(kb), np.inf))
        moved = keep & (shift > 1.0 + 1e-6)
        if not moved.any() or n == passes:
            break
        for t in kb[moved]:
            c = int(round(t * fps))
            frames = np.arange(max(0, c - half - ramp), min(len(w), c + half + ramp + 1))
            dist = np.maximum(0, np.abs(frames - c) - half)
            w[frames] = np.minimum(w[frames], np.clip(dist / ramp, 0, 1))
            given += 1
        q, root = _blend(q_pre, root_pre, q_fix, root_fix, w)
        P = _refresh(P.copy(), q, root, w < 1)
    worst = float(shift[keep].max()) if keep.any() and len(shift) else 0.0
    return q, root, P, given, worst, int((~keep).sum())


def repair(motion: Motion, music_beats=None, *, before: V.Report | None = None):
    """Fix flips, pops, joint limits, ground penetration and foot skating.

    ``music_beats``: beat times in seconds (or MusicFeatures / a dict with beats and
    sections), used only for the before and after reports. Returns
    (repaired Motion, before Report, after Report).
    """
    if before is None:
        before = V.validate(motion, music_beats)
    before_positions = motion._positions if motion._positions is not None else \
        V.forward_kinematics(motion.rotations, motion.root_translation, False)[0]
    height = V.REST_HEIGHT
    fps = motion.fps
    q = motion.rotations.copy()
    root = motion.root_translation.copy()
    stats = {}
    changed = np.zeros(len(q), dtype=bool)
    stats["flips"] = fix_flips(q, root, fps, changed)
    P = _refresh(before_positions.copy(), q, root, changed)
    stats["pop_frames"], P = fix_pops(q, root, fps, height, changed, P)
    # clamp where the input broke a hard limit, or where a flip/pop was rebuilt
    candidates = changed.copy()
    for v in before.violations:
        if v.kind == "joint_limit" and v.severity == "error":
            candidates[max(0, v.start):v.end + 1] = True
    q, clamped = JL.clamp(q, "error", frames=candidates)
    clamped = clamped.any(1)
    changed |= clamped
    stats["clamped_frames"] = int(clamped.sum())
    _refresh(P, q, root, clamped)
    q_pre, root_pre = q.copy(), root.copy()
    lifted = lift_ground(P, root, fps, height)
    q, root, locked, P = lock_feet(q, root, fps, height, P)
    lifted += lift_ground(P, root, fps, height)
    stats["lifted_frames"] = lifted
    stats["locked_contacts"] = locked
    # fixes of error-severity ground and skating problems are kept whatever they do to
    # the beats; warning-level ones are given back around any beat they moved
    for v in before.violations:
        if v.severity == "error" and v.kind in ("ground", "foot_skate"):
            changed[max(0, v.start):v.end + 1] = True
    q, root, P, given, worst, near = keep_beats(before_positions, q_pre, root_pre, q, root, fps,
                                                changed, P)
    stats["beat_windows_given_back"] = given
    fixed = Motion(q, root, fps, None, motion.name)
    fixed._positions = P
    after = V.validate(fixed, music_beats)
    stats["kinetic_beat_shift_frames"] = round(worst, 3)
    stats["kinetic_beats_near_pop_fixes"] = near
    if _made_worse(before, after):
        # the fixes interacted badly (e.g. foot locks on flickering contacts):
        # keep the input rather than hand back new violations
        stats = {"abandoned": f"repair would have raised the erroneous joint-frames from "
                              f"{len(_error_frames(before))} to {len(_error_frames(after))}; input kept"}
        after = V.validate(motion, music_beats)
        fixed = motion
    after.summary["repairs"] = stats
    return fixed, before, after


def _error_frames(report: V.Report) -> set:
    return {(v.kind, v.joint, f) for v in report.errors for f in range(v.start, v.end + 1)}


def _made_worse(before: V.Report, after: V.Report) -> bool:
    """True when the repaired motion has an error kind the input lacked, or more
    erroneous joint-frames than it."""
    new_kinds = {v.kind for v in after.errors} - {v.kind for v in before.errors}
    return bool(new_kinds) or len(_error_frames(after)) > len(_error_frames(before))
