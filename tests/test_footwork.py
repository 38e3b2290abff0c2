"""Generation-time footwork (engine.footwork) on real mocap and on the shipped model."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import binary_dilation

from engine import metrics as M
from engine import validate as V
from engine import repair
from engine.audio import analyze
from engine.checkpoint import DEFAULT_MODEL, load_model
from engine import joint_limits as JL
from engine.footwork import (HEEL_RISE_ABOVE, LIFTED_OFF, PIN_CLEAR, _widen_gaps, anchor_root, feet_on_floor,
                             foot_flags, leg_clearance, lift_swings, min_step_frames, plant_feet, rest_on_floor,
                             rise_heels, separate_shins, support_foot, swivel_knees, swivel_leg)
from engine.generate import generate_from_conditioning, music_conditioning
from engine.motion import Motion, load_motion
from engine.normalize import resample
from engine.repair import STEP_LIFT, _hermite, _lock_targets
from engine.rhythm import conditioning, motion_rhythm
from engine.validate import validate
from limb_sweeps import SWEPT, UNTOUCHED, assert_taken_apart, sweep_into

SALSA = "mocap/cmu_salsa/60_01_scaled.bvh.gz"


@pytest.fixture(scope="module")
def salsa(shared_data) -> Motion:
    return resample(load_motion(shared_data / SALSA), 30.0).slice(0, 600)


def _skating(positions) -> int:
    """Skating foot-steps, the floor at the motion's own resting foot level."""
    return M.foot_skate_steps(positions, 30.0, ground=M.contact_ground(positions))[0]


def _slide_in_contact(motion: Motion, feet: np.ndarray, edge: int | None = None) -> float:
    """Mean horizontal ankle speed (m/frame) inside the contact runs, their blend
    edges (by default two thirds of repair.FADE_S) left out."""
    edge = 2 * repair.fade_frames(motion.fps) // 3 if edge is None else edge
    P = motion.positions
    speeds = []
    for f, ankle in enumerate((M.L_ANKLE, M.R_ANKLE)):
        step = np.linalg.norm(np.diff(P[:, ankle, :2], axis=0), axis=-1)
        inner = feet[:, f].copy()
        for _ in range(edge):  # erode: leave the ramps out
            inner[1:-1] &= inner[:-2] & inner[2:]
        both = inner[1:] & inner[:-1]
        speeds.append(step[both])
    return float(np.concatenate(speeds).mean())


def test_anchor_root_removes_drift_and_keeps_sway(salsa):
    t = np.arange(salsa.frames) / 30.0
    root = salsa.root_translation.copy()
    sway = 0.1 * np.sin(2 * np.pi * 1.5 * t)
    root[:, 0] = 0.5 * t + sway  # half a metre per second off stage, and a 1.5 Hz sway
    root[:, 1] = 0.0
    out = anchor_root(Motion(salsa.rotations, root, 30.0))
    x = out.root_translation[:, 0]
    assert abs(x[-1] - x[0]) < 0.3  # was 10 m
    inner = slice(60, -60)
    assert np.corrcoef(x[inner] - x[inner].mean(), sway[inner])[0, 1] > 0.95
    assert np.array_equal(out.root_translation[:, 2], root[:, 2])
    assert np.array_equal(out.rotations, salsa.rotations)


def test_foot_flags_clean_flicker():
    c = np.zeros((30, 4), dtype=bool)
    c[2:12, 0] = True
    c[6, 0] = False  # a one-frame gap inside a contact
    c[20, 3] = True  # a one-frame blip
    feet = foot_flags(c)
    assert feet[2:12, 0].all() and not feet[:2, 0].any() and not feet[12:, 0].any()
    assert not feet[:, 1].any()


def test_plant_feet_pins_contacts_of_a_gliding_take(salsa):
    contacts = M.planted(salsa.positions, 30.0)
    root = salsa.root_translation.copy()
    root[:, 1] += 0.4 * np.arange(salsa.frames) / 30.0  # glide: every planted foot slides
    glide = Motion(salsa.rotations, root, 30.0)
    feet = foot_flags(contacts)
    before = _slide_in_contact(glide, feet)
    out = plant_feet(glide, contacts)
    after = _slide_in_contact(out, feet)
    assert before > 0.012  # 0.4 m/s
    assert after < 0.1 * before
    assert M.bone_length_variation(out.positions) < 1e-10
    pinned = out.contacts[:, [0, 2]]
    assert np.array_equal(out.contacts, np.repeat(pinned, 2, axis=1))
    # every given contact is pinned, but for the ends taken to widen a gap under MIN_STEP_S
    assert (pinned | ~_widen_gaps(feet, min_step_frames(30.0))).all()
    assert _slide_in_contact(out, pinned) < 0.1 * before


def test_hermite_meets_both_ends_with_their_slopes():
    p0, m0, p1, m1 = np.array([0.0, 0, 0]), np.array([0.01, 0, 0]), np.array([0.3, 0.1, 0]), np.zeros(3)
    n = 12
    path = np.vstack([p0, _hermite(p0, m0, p1, m1, n), p1])
    assert path.shape == (n + 1, 3)
    step = np.diff(path, axis=0)
    assert np.allclose(step[0], m0, atol=0.01) and np.allclose(step[-1], m1, atol=0.01)
    assert np.abs(np.diff(step, axis=0)).max() < 0.01  # no jump anywhere on the way


def test_hermite_slopes_act_over_their_span_only():
    p0, m0, p1, m1 = np.array([0.0, 0, 0]), np.array([0.05, 0, 0]), np.array([0.3, 0.1, 0]), np.array([0, 0.05, 0])
    n, span = 24, 6
    path = np.vstack([p0, _hermite(p0, m0, p1, m1, n, span), p1])
    step = np.diff(path, axis=0)
    assert np.allclose(step[0], m0, atol=0.015) and np.allclose(step[-1], m1, atol=0.015)
    blend = np.vstack([p0, _hermite(p0, 0 * m0, p1, 0 * m1, n), p1])
    assert np.allclose(path[span:n - span + 1], blend[span:n - span + 1])  # the slopes' bumps end there
    bump = np.linalg.norm(path - blend, axis=1).max()
    assert bump == pytest.approx(4 / 27 * span * 0.05, rel=0.05)  # the cubic bump's peak
    assert np.allclose(_hermite(p0, m0, p1, m1, n, n), _hermite(p0, m0, p1, m1, n))


def test_a_fast_foot_between_two_pins_keeps_its_own_swing():
    """Where a foot leaves its pin fast, the displacement map cancels its velocity
    over SLOPE_S only. Cancelled over the whole gap, the same cubic had swung the
    target 18 cm against the foot's own way: a pop kick became a leg thrown behind
    the body, its hip past its hard limit."""
    T, v = 43, 0.05
    P = np.zeros((T, 24, 3))
    ankle = P[:, M.L_ANKLE]
    ankle[:, 1] = v * np.arange(T)  # the generated foot never stops: 5 cm per frame
    ankle[:, 2] = 0.08
    ankle[10:33, 2] += 0.4 * np.sin(np.pi * np.arange(1, 24) / 24)  # a kick between two contacts
    intervals = [[(0, 9, np.inf), (33, 42, np.inf)], []]  # 0.8 s apart: one curve (2 FADE_S)
    (target, _), _ = _lock_targets(P, 30.0, intervals, np.ones((T, 4), dtype=bool), 0.0)[0]
    shift = target - ankle
    assert np.allclose(target[:10], target[0]) and np.allclose(target[33:], target[33])  # pinned
    assert np.linalg.norm(target[10, :2] - target[9, :2]) < 0.5 * v  # leaves with no snap
    blend = _hermite(shift[9], 0 * shift[9], shift[33], 0 * shift[33], 24)
    span = round(repair.SLOPE_S * 30.0)
    assert np.abs(shift[10:33, :2] - blend[:, :2]).max() <= 4 / 27 * span * v + 1e-9
    assert (target[10:33, 2] >= ankle[10:33, 2] - 1e-12).all()  # the kick keeps its height


def test_a_foot_leaving_its_pin_is_not_held_low_while_it_swings():
    """The displacement map cancels the foot's own velocity where it leaves a pin; the
    vertical part of that would keep a lifting foot near the floor while it already
    moves across (a skate). The swing is never lowered."""
    T = 40
    P = np.zeros((T, 24, 3))
    ankle = P[:, M.L_ANKLE]
    ankle[:, 0] = 0.01 * np.arange(T)  # the foot slides 1 cm per frame throughout
    ankle[:, 2] = 0.08
    ankle[10:30, 2] += 0.1 * np.sin(np.pi * np.arange(1, 21) / 21)  # a step between two contacts
    intervals = [[(0, 9, np.inf), (30, 39, np.inf)], []]
    (target, _), _ = _lock_targets(P, 30.0, intervals, np.ones((T, 4), dtype=bool), 0.0)[0]
    assert np.allclose(target[:10], target[0]) and np.allclose(target[30:], target[30])  # pinned
    assert (target[10:30, 2] >= ankle[10:30, 2] - 1e-12).all()


def test_a_foot_moving_between_pins_lifts_and_one_set_down_in_place_does_not():
    """A foot that slides flat from one pin to the next is skating: on its way it
    clears the floor by STEP_LIFT at the middle, leaving and landing with no
    vertical speed. A foot that stays where it was is not lifted."""
    T = 30
    P = np.zeros((T, 24, 3))
    ankle = P[:, M.L_ANKLE]
    ankle[:, 2] = 0.08
    ankle[10:20, 0] = 0.03 * np.arange(1, 11)  # slides 30 cm flat between two contacts
    ankle[20:, 0] = 0.3
    intervals = [[(0, 9, np.inf), (20, 29, np.inf)], []]
    (target, _), _ = _lock_targets(P, 30.0, intervals, np.ones((T, 4), dtype=bool), 0.0)[0]
    lift = target[:, 2] - 0.08
    assert lift[[9, 20]] == pytest.approx(0.0) and lift[14:16].max() == pytest.approx(STEP_LIFT, rel=0.05)
    assert (lift[10:20] > 0).all() and abs(lift[10] - lift[9]) < 0.1 * STEP_LIFT  # no vertical snap
    ankle[:, 0] = 0.0  # the same contacts, the foot never moving
    (target, _), _ = _lock_targets(P, 30.0, intervals, np.ones((T, 4), dtype=bool), 0.0)[0]
    assert np.allclose(target[:, 2], 0.08)


@pytest.mark.skipif(not DEFAULT_MODEL.exists(), reason="no shipped model")
def test_the_step_lift_takes_generated_feet_off_the_floor_between_pins(shared_data, monkeypatch):
    """On a real song, the shipped model's dances skate on at most 2% of their
    contact steps with the step lift, and never more than without it (every style,
    two seeds). The lift's own effect is measured on real salsa below: the model
    shipped since the style-level energy gives it almost nothing to lift here."""
    model = load_model()
    music = analyze(shared_data / "music" / "Kevin_MacLeod_-_Vibe_Ace.hq.ogg", fps=30.0, end=40.0)

    def skating() -> tuple[int, int]:
        dances = [generate_from_conditioning(music_conditioning(music, model, style), style, seed, model).positions
                  for style in model[2] for seed in (0, 1)]
        counts = [M.foot_skate_steps(p, 30.0, ground=M.contact_ground(p)) for p in dances]
        return sum(c[0] for c in counts), sum(c[1] for c in counts)

    with_lift, steps = skating()
    monkeypatch.setattr(repair, "STEP_LIFT", 0.0)
    assert steps > 50 and with_lift <= 0.02 * steps
    assert with_lift <= skating()[0]


@pytest.mark.parametrize("take", [SALSA, "mocap/cmu_salsa/61_01_scaled.bvh.gz"])
def test_a_free_foot_sliding_on_the_floor_is_lifted(shared_data, take):
    """Real salsa slides its feet along the floor (13% of its contact steps skate):
    lifted just clear of the contact band, the same feet travel the same way in the
    air, the upper body is untouched and nothing spikes."""
    motion = resample(load_motion(shared_data / take), 30.0).slice(0, 600)
    out = lift_swings(motion)
    assert _skating(out.positions) <= 0.3 * _skating(motion.positions)
    feet, upper = [M.L_ANKLE, M.R_ANKLE], [0, 3, 6, 9, 12, 15, 16, 17, 18, 19, 20, 21]
    assert np.allclose(out.positions[:, feet, :2], motion.positions[:, feet, :2], atol=1e-6)
    assert (out.positions[:, feet, 2] >= motion.positions[:, feet, 2] - 1e-6).all()
    assert np.allclose(out.positions[:, upper], motion.positions[:, upper])
    assert not validate(out).errors
    # after pinning, a pin's heel may rise at its ends; a foot lifted off loses its flags
    planted = plant_feet(motion)
    lifted = lift_swings(planted)
    rise = lifted.positions[:, feet, 2] - planted.positions[:, feet, 2]
    assert (rise > LIFTED_OFF).any() and not (lifted.contacts[:, [0, 2]] & (rise > LIFTED_OFF)).any()
    assert (lifted.contacts <= planted.contacts).all()


@pytest.mark.parametrize("take", [SALSA, "mocap/cmu_salsa/61_01_scaled.bvh.gz"])
def test_planting_a_real_take_adds_no_acceleration_spikes(shared_data, take):
    """Feet on the floor and the supporting foot are pinned; moving between pins and
    the root's catch-up where a leg cannot reach must stay as smooth as dancing."""
    motion = resample(load_motion(shared_data / take), 30.0).slice(0, 600)
    spikes = lambda m: [v for v in validate(m).errors if v.kind in ("acceleration", "jerk")]  # noqa: E731
    assert not spikes(motion)
    out = plant_feet(motion)
    assert out.contacts.any()
    assert not spikes(out), [v.message for v in spikes(out)][:3]


def test_a_pin_never_drives_one_leg_through_the_other(salsa):
    """A left foot flagged for the whole take would be pinned while the dancer steps
    around it, through the right leg; the pins are let go there instead, before the
    legs come close enough for the validator to warn."""
    contacts = np.zeros((salsa.frames, 4), dtype=bool)
    contacts[:, :2] = True
    assert leg_clearance(salsa.positions).min() > 0.5  # the real legs never touch
    out = plant_feet(salsa, contacts)
    assert leg_clearance(out.positions).min() >= PIN_CLEAR == V.PENETRATION_WARN  # the validator's legs: no warning
    assert 0.5 < out.contacts[:, 0].mean() < 1.0  # pinned, except around the crossing


def test_feet_resting_on_the_floor(salsa):
    floor = feet_on_floor(salsa)
    planted = foot_flags(M.planted(salsa.positions, 30.0))
    assert 0.3 < floor.mean() < 0.9
    assert (floor & planted).sum() > 0.95 * planted.sum()  # real planted feet are on the floor
    lifted = Motion(salsa.rotations, salsa.root_translation + [0, 0, 0.1], 30.0)
    assert not feet_on_floor(lifted).any() or feet_on_floor(lifted).mean() < 0.05


def test_a_step_gliding_along_the_floor_is_kept(salsa):
    """The take's left foot steps 33 cm in 10 frames (frames 158-167); lowered by IK
    onto the floor between its two rests, it glides there faster than a skate, as
    the generator's steps often do. It is not resting, so plant_feet neither pins
    it nor erases the step (pinned at its mean place, the foot used not to move)."""
    P = salsa.positions
    rest, land = 157, 168
    assert (foot_flags(M.planted(P, 30.0))[[rest, land], 0]).all()
    swing = np.arange(rest + 1, land)
    u = (swing - rest) / (land - rest)
    target = P[:, M.L_ANKLE].copy()
    target[swing, 2] = (1 - u) * P[rest, M.L_ANKLE, 2] + u * P[land, M.L_ANKLE, 2]
    lowered = np.zeros(salsa.frames)
    lowered[swing] = 1.0
    q, _ = repair.solve_legs(salsa.rotations, salsa.root_translation, P, [target, P[:, M.R_ANKLE]],
                             [lowered, np.zeros_like(lowered)])
    glide = Motion(q, salsa.root_translation, 30.0)
    G = glide.positions
    assert M.low_joints(G, 1.0, M.contact_ground(G))[swing, 1].all()  # the toe on the floor
    assert not feet_on_floor(glide)[swing, 0].any()
    out = plant_feet(glide, np.zeros((glide.frames, 4), dtype=bool))
    assert not out.contacts[swing, 0].any()
    step = lambda Q: np.linalg.norm(Q[land, M.L_ANKLE, :2] - Q[rest, M.L_ANKLE, :2])  # noqa: E731
    assert step(G) > 0.3 and step(out.positions) > 0.9 * step(G)


def test_rest_on_floor_puts_the_floor_under_the_feet_and_nothing_in_it(salsa):
    """The take raised 30 cm, its root sinking 12 cm for a third of a second mid-way
    (fewer frames than the 5% the floor level ignores)."""
    root = salsa.root_translation + [0, 0, 0.3]
    dip = np.zeros(salsa.frames)
    dip[290:298] = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, 8))
    dip[298:308], dip[308:316] = 1.0, dip[290:298][::-1]
    root[:, 2] -= 0.12 * dip
    assert validate(Motion(salsa.rotations, root - [0, 0, 0.3], 30.0)).find("ground", "error")
    grounded = rest_on_floor(Motion(salsa.rotations, root, 30.0))
    assert not [v for v in validate(grounded).find("ground") if v.severity != "info"]
    assert np.allclose(grounded.positions, Motion(grounded.rotations, grounded.root_translation, 30.0).positions)
    level = rest_on_floor(Motion(salsa.rotations, salsa.root_translation.copy(), 30.0))
    outside = np.r_[0:260, 346:salsa.frames]  # away from the dip it rests as the take does
    assert np.abs(grounded.root_translation[outside] - level.root_translation[outside]).max() < 0.01


def test_a_leg_passes_beside_the_other_not_through_it(salsa):
    """The left ankle is swept onto the right one for a second (two-bone IK): the
    shins go through each other, until separate_shins moves them apart sideways."""
    crossed = sweep_into(salsa, "L_leg", M.L_ANKLE, salsa.positions[:, M.R_ANKLE])
    apart = separate_shins(crossed)
    assert_taken_apart(crossed, apart, (("L_shin", "R_shin"),))
    assert np.abs(apart.positions - crossed.positions).max() < 0.1  # a nudge aside


def test_support_foot_is_the_lower_one_between_steps(salsa):
    P = salsa.positions
    none = np.zeros((salsa.frames, 2), dtype=bool)
    support = support_foot(salsa, none)
    toe = P[:, [M.L_TOE, M.R_TOE], 2]
    both = support.all(1)
    assert not both.any()
    chosen = support.any(1)
    assert chosen.mean() > 0.8  # the salsa dancer nearly always has a foot near the floor
    side = support[chosen].argmax(1)
    assert (toe[chosen, side] <= toe[chosen, 1 - side] + 1e-9).mean() > 0.95
    assert not support_foot(salsa, np.ones((salsa.frames, 2), dtype=bool)).any()  # feet already down
    jump = Motion(salsa.rotations, salsa.root_translation + [0, 0, 0.4], 30.0)
    assert not support_foot(jump, none).any()


@pytest.mark.skipif(not DEFAULT_MODEL.exists(), reason="no shipped model")
def test_shipped_model_stays_on_its_mark_and_does_not_skate(salsa):
    model = load_model()
    cond = conditioning(motion_rhythm(salsa))
    for style in model[2]:
        m = generate_from_conditioning(cond, style, 1, model)
        assert m.contacts is not None and m.contacts.any(), style  # feet are planted
        feet = m.contacts[:, [0, 2]]
        assert _slide_in_contact(m, feet) < 0.002, style  # 2 mm per frame
        travel = np.linalg.norm(m.root_translation[:, :2] - m.root_translation[:1, :2], axis=-1)
        assert travel.max() < 2.0, style  # 20 s of dance within a couple of metres
        assert not [v for v in validate(m).find("ground") if v.severity != "info"], style


def test_a_flagged_foot_that_slides_is_lifted_too(salsa):
    """A contact flag does not hold a foot: where a flagged foot moves across the
    floor faster than a skate (its pin let go), it is lifted like a free one and
    loses its flags there; where it stands still its flags stay."""
    flagged = Motion(salsa.rotations, salsa.root_translation, salsa.fps,
                     np.ones((salsa.frames, 4), dtype=bool), salsa.name)
    out = lift_swings(flagged)
    assert _skating(out.positions) <= 0.3 * _skating(salsa.positions)
    rise = out.positions[:, [M.L_ANKLE, M.R_ANKLE], 2] - salsa.positions[:, [M.L_ANKLE, M.R_ANKLE], 2]
    assert not (out.contacts[:, [0, 2]] & (rise > LIFTED_OFF)).any()
    assert out.contacts[:, [0, 2]].mean() > 0.5  # the standing frames keep theirs


def _dorsiflexion(motion: Motion) -> np.ndarray:
    angles = JL.measure(motion.rotations)
    return np.maximum(angles["L_ankle.dorsiflexion"], angles["R_ankle.dorsiflexion"])


def test_a_deep_plie_over_flat_feet_rises_onto_the_balls_of_the_feet(salsa):
    """The real take's pelvis lowered 30 cm for two seconds with its ankles kept where
    they were (two-bone IK, the feet flat): the ankles bend up to 70 deg. rise_heels
    turns each foot down about its toe: no ankle past HEEL_RISE_ABOVE, the toes stay
    where they were on the floor, the heels rise and lose their contact flags."""
    dip = np.zeros(salsa.frames)
    dip[200:230] = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, 30))
    dip[230:290], dip[290:320] = 1.0, dip[200:230][::-1]
    root = salsa.root_translation - np.outer(0.3 * dip, [0.0, 0.0, 1.0])
    ankles = [salsa.positions[:, M.L_ANKLE], salsa.positions[:, M.R_ANKLE]]
    q, _ = repair.solve_legs(salsa.rotations, root, Motion(salsa.rotations, root, 30.0).positions,
                             ankles, [dip > 0, dip > 0])
    contacts = np.zeros((salsa.frames, 4), dtype=bool)
    contacts[230:290] = True
    plie = Motion(q, root, 30.0, contacts)
    assert _dorsiflexion(plie)[230:290].max() > 60
    out = rise_heels(plie)
    assert _dorsiflexion(out).max() < HEEL_RISE_ABOVE + 1
    assert M.bone_length_variation(out.positions) < 1e-9
    held = slice(230, 290)
    for f, (ankle, toe) in enumerate(((M.L_ANKLE, M.L_TOE), (M.R_ANKLE, M.R_TOE))):
        assert np.linalg.norm(out.positions[held, toe] - plie.positions[held, toe], axis=-1).max() < 0.005
        rise = out.positions[held, ankle, 2] - plie.positions[held, ankle, 2]
        assert rise.min() > 0.003
        assert not out.contacts[held, 2 * f][rise > LIFTED_OFF].any()
        assert out.contacts[held, 2 * f + 1].all()  # the ball of the foot stays down
    # a second away from any ankle past the limit, nothing moves
    far = ~binary_dilation(_dorsiflexion(plie) > HEEL_RISE_ABOVE, np.ones(61, dtype=bool))
    assert far.sum() > 100
    assert np.abs(out.positions[far] - plie.positions[far]).max() < 1e-3


def test_ankles_inside_the_limit_are_left_alone():
    upright = Motion(np.tile([1.0, 0.0, 0.0, 0.0], (30, 24, 1)), np.tile([0.0, 0.0, 0.95], (30, 1)), 30.0)
    assert rise_heels(upright) is upright


def test_a_foot_let_go_after_its_last_pin_joins_the_moved_body_smoothly(salsa):
    """The left foot is pinned over frames 100-199 while the dancer glides 60 cm
    away (frames 150-190): lock_feet moves the root where the leg cannot reach the
    pin. After the pin the foot goes back to the body's path, which the root has
    moved; the IK lets go of it gradually, so the ankle does not jump there (it
    jumped 14 cm in one frame when the IK let go at once)."""
    root = salsa.root_translation.copy()
    glide = np.clip((np.arange(salsa.frames) - 150) / 40.0, 0, 1)
    root[:, 0] += 0.6 * (3 * glide ** 2 - 2 * glide ** 3)
    gliding = Motion(salsa.rotations, root, 30.0)
    feet = np.zeros((salsa.frames, 2), dtype=bool)
    feet[100:200, 0] = True
    _, moved_root, _, P = repair.lock_feet(gliding.rotations, root, 30.0, 1.7, P=gliding.positions, feet=feet)
    assert np.abs(moved_root - root).max() > 0.1  # the leg could not reach: the root moved
    assert np.ptp(P[110:190, M.L_ANKLE], axis=0).max() < 0.03  # pinned
    after = slice(195, 240)
    accel = np.linalg.norm(np.diff(P[:, M.L_ANKLE], 2, axis=0), axis=-1)[after]
    own = np.linalg.norm(np.diff(gliding.positions[:, M.L_ANKLE], 2, axis=0), axis=-1)[after]
    assert accel.max() < 2 * own.max()


def _knee_turned_in(take: Motion, degrees: float) -> Motion:
    """``take`` with the left leg turned about its hip-ankle line, knee inwards, by
    up to ``degrees`` over the sweep's window (the ankle and foot stay put)."""
    P, G = V.forward_kinematics(take.rotations, take.root_translation)
    sweep = np.zeros(take.frames)
    sweep[SWEPT] = np.hanning(SWEPT.stop - SWEPT.start)
    axis = P[:, M.L_ANKLE] - P[:, V.JOINT["L_hip"]]
    q = take.rotations.copy()
    swivel_leg(q, G, "L", axis / np.linalg.norm(axis, axis=1, keepdims=True), np.radians(degrees) * sweep,
               slice(None))
    return Motion(q, take.root_translation, take.fps, take.contacts)


def test_thighs_that_pass_through_each_other_are_swivelled_apart_on_planted_feet(salsa):
    """A real take whose left knee is bent (its ankle raised 30 cm) and turned 90°
    inwards about its hip-ankle line: the left thigh sinks into the right one. Turning
    each leg about its hip-ankle line takes them apart without moving an ankle or a toe."""
    P = salsa.positions
    inwards = (P[:, M.R_ANKLE] - P[:, M.L_ANKLE]) / np.linalg.norm(P[:, M.R_ANKLE] - P[:, M.L_ANKLE], axis=1,
                                                                     keepdims=True)
    bent = sweep_into(salsa, "L_leg", M.L_ANKLE, P[:, M.L_ANKLE] + [0.0, 0.0, 0.3] + 0.1 * inwards)
    crossed = _knee_turned_in(Motion(bent.rotations, bent.root_translation, bent.fps, salsa.contacts), 90.0)
    thighs = (("L_thigh", "R_thigh"),)
    before = V.capsule_ratios(crossed.positions, 1.0, thighs)[:, 0]
    assert before.min() < 0.03 and validate(crossed).find("self_penetration", "error")
    apart = swivel_knees(crossed)
    after = V.capsule_ratios(apart.positions, 1.0, thighs)[:, 0]
    assert after.min() > 0.3
    assert not validate(apart).find("self_penetration", "error")
    feet = [M.L_ANKLE, M.R_ANKLE, M.L_TOE, M.R_TOE]
    assert np.abs(apart.positions[:, feet] - crossed.positions[:, feet]).max() < 1e-9
    assert M.bone_length_variation(apart.positions) < 1e-9
    assert np.array_equal(apart.contacts, crossed.contacts)
    still = UNTOUCHED[UNTOUCHED < salsa.frames]
    assert np.allclose(apart.positions[still], crossed.positions[still], atol=1e-3)
