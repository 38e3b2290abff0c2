"""Metrics: analytic and constructed motions with known answers, then real mocap."""

from __future__ import annotations

import numpy as np
import pytest

from engine import metrics as M
from engine import metrics_features as F

# A standing SMPL-24 pose, metres, Z up, facing -Y, left = +X, arms down.
# Ankles 7 cm and toes 2 cm above the floor: both feet are in contact.
STANDING = np.array([
    [0.0, 0.0, 0.95],     # 0 pelvis
    [0.08, 0.0, 0.88],    # 1 L_hip
    [-0.08, 0.0, 0.88],   # 2 R_hip
    [0.0, 0.0, 1.05],     # 3 spine1
    [0.08, 0.0, 0.50],    # 4 L_knee
    [-0.08, 0.0, 0.50],   # 5 R_knee
    [0.0, 0.0, 1.18],     # 6 spine2
    [0.08, 0.0, 0.07],    # 7 L_ankle
    [-0.08, 0.0, 0.07],   # 8 R_ankle
    [0.0, 0.0, 1.24],     # 9 spine3
    [0.08, -0.12, 0.02],  # 10 L_foot (toe)
    [-0.08, -0.12, 0.02],  # 11 R_foot (toe)
    [0.0, 0.0, 1.45],     # 12 neck
    [0.07, 0.0, 1.38],    # 13 L_collar
    [-0.07, 0.0, 1.38],   # 14 R_collar
    [0.0, 0.0, 1.55],     # 15 head
    [0.18, 0.0, 1.40],    # 16 L_shoulder
    [-0.18, 0.0, 1.40],   # 17 R_shoulder
    [0.18, 0.0, 1.12],    # 18 L_elbow
    [-0.18, 0.0, 1.12],   # 19 R_elbow
    [0.18, 0.0, 0.87],    # 20 L_wrist
    [-0.18, 0.0, 0.87],   # 21 R_wrist
    [0.18, 0.0, 0.79],    # 22 L_hand
    [-0.18, 0.0, 0.79],   # 23 R_hand
])
FEET = [7, 8, 10, 11]


def still(n: int) -> np.ndarray:
    return np.repeat(STANDING[None], n, axis=0)


def translated(offsets: np.ndarray) -> np.ndarray:
    """The standing pose carried rigidly along (T, 3) offsets."""
    return STANDING[None] + offsets[:, None, :]


def pulsing(t: np.ndarray, t0: float, period: float) -> np.ndarray:
    """Rigid walk along x whose speed 0.02 + 0.6 (1 - cos(2 pi (t - t0) / P)) m/s
    has its minima exactly at t0 + k P."""
    phase = 2 * np.pi * (t - t0) / period
    x = 0.62 * t - 0.6 * period / (2 * np.pi) * np.sin(phase)
    return translated(np.stack([x, 0 * t, 0 * t], axis=-1))


# ------------------------------------------------------------------ resampling


@pytest.mark.parametrize("fps_in, fps_out", [(30, 60), (60, 30), (24, 60), (60, 25)])
def test_resampling_keeps_a_linear_trajectory(fps_in, fps_out):
    velocity = np.array([0.4, -0.2, 0.1])
    t_in = np.arange(50) / fps_in
    motion = translated(t_in[:, None] * velocity)
    out = M.resample_positions(motion, fps_in, fps_out)
    t_out = np.arange(len(out)) / fps_out
    assert t_out[-1] <= t_in[-1] + 1e-9 < t_out[-1] + 1 / fps_out
    np.testing.assert_allclose(out, translated(t_out[:, None] * velocity), atol=1e-12)


def test_resampling_60_to_30_keeps_every_other_frame():
    motion = np.random.default_rng(0).normal(size=(41, 24, 3))
    np.testing.assert_array_equal(M.resample_positions(motion, 60, 30), motion[::2])


# ------------------------------------------------------------------------ BAS

T0, PERIOD = 15.5 / 60, 0.5  # speed minima on 60 fps speed samples 15, 45, 75, ...


def test_kinetic_beats_are_the_speed_minima():
    motion = pulsing(np.arange(241) / 60, T0, PERIOD)
    beats = M.kinetic_beats(motion, 60)
    # Bailando stamps speed sample k (frames k..k+1) at frame k: half a frame early.
    np.testing.assert_allclose(beats, T0 - 0.5 / 60 + PERIOD * np.arange(8), atol=1e-9)
    assert M.kinetic_beat_rate(motion, 60) == pytest.approx(8 / 4.0)


def test_bas_against_aligned_shifted_and_offbeat_music():
    motion = pulsing(np.arange(241) / 60, T0, PERIOD)
    beats = M.kinetic_beats(motion, 60)
    assert M.bas(motion, 60, beats) == pytest.approx(1.0)
    assert M.bas(motion, 60, beats + 3 / 60) == pytest.approx(np.exp(-0.5))
    assert M.bas(motion, 60, beats + PERIOD / 2) < 1e-4
    # Beats at the true minima are half a frame off: exp(-0.5^2 / 18).
    assert M.bas(motion, 60, T0 + PERIOD * np.arange(8)) == pytest.approx(np.exp(-0.25 / 18))


def test_bas_drops_beats_outside_the_motion_and_handles_edge_cases():
    motion = pulsing(np.arange(241) / 60, T0, PERIOD)
    beats = M.kinetic_beats(motion, 60)
    assert M.bas(motion, 60, np.concatenate([[-1.0], beats, [10.0, 60.0]])) == pytest.approx(1.0)
    assert np.isnan(M.bas(motion, 60, [12.0, 30.0]))
    assert np.isnan(M.bas(motion, 60, []))
    assert M.bas(still(120), 60, beats[:3]) == 0.0  # no kinetic beat at all


def test_beat_offsets_are_signed_seconds_to_the_nearest_kinetic_beat():
    motion = pulsing(np.arange(241) / 60, T0, PERIOD)
    beats = M.kinetic_beats(motion, 60)
    music = np.array([beats[1] + 0.05, beats[2] - 0.1, 99.0])
    np.testing.assert_allclose(M.beat_offsets(motion, 60, music)[:2], [-0.05, 0.1], atol=1e-9)
    assert np.isnan(M.beat_offsets(motion, 60, music)[2])


def test_bas_chance_uses_other_songs():
    motion = pulsing(np.arange(241) / 60, T0, PERIOD)
    beats = M.kinetic_beats(motion, 60)
    others = [beats + 3 / 60, beats + PERIOD / 2, [50.0]]
    assert M.bas_chance(motion, 60, others) == pytest.approx(np.exp(-0.5) / 2, rel=1e-3)


def test_bas_is_close_across_frame_rates():
    music = T0 + PERIOD * np.arange(8)
    at60 = M.bas(pulsing(np.arange(241) / 60, T0, PERIOD), 60, music)
    at30 = M.bas(pulsing(np.arange(121) / 30, T0, PERIOD), 30, music)
    at120 = M.bas(pulsing(np.arange(481) / 120, T0, PERIOD), 120, music)
    assert abs(at30 - at60) < 0.1 and abs(at120 - at60) < 0.1


# ------------------------------------------------------------------------ PFC


def circling_root_sliding_feet(fps: float, seconds: float = 2.0, vertical_accel: float = 0.0):
    """Root on a horizontal circle (constant |a|, optional constant vertical
    acceleration) while both feet slide along x at 0.3 m/s = 1 cm per 30 fps frame."""
    t = np.arange(int(round(seconds * fps)) + 1) / fps
    motion = still(len(t))
    motion[:, 0] += np.stack([0.1 * np.cos(3 * t), 0.1 * np.sin(3 * t),
                              0.5 * vertical_accel * t**2], axis=-1)
    motion[:, FEET, 0] += 0.3 * t[:, None]
    return motion


def test_pfc_is_zero_when_the_feet_never_slide():
    motion = circling_root_sliding_feet(30)
    motion[:, FEET] = STANDING[FEET]
    motion[:, FEET, 2] += 0.2 * np.sin(np.arange(len(motion)))[:, None]  # feet lift, never slide
    assert M.pfc(motion, 30) == 0.0


def test_pfc_of_sliding_feet_under_an_accelerating_root_is_analytic():
    # a_hat = 1 everywhere and each foot slides 0.01 m per frame: 1e4 * 0.01^2 = 1.
    assert M.pfc(circling_root_sliding_feet(30), 30) == pytest.approx(1.0)


def test_pfc_clamps_downward_root_acceleration():
    falling = circling_root_sliding_feet(30)
    falling[:, 0] = STANDING[0] - [0, 0, 1.0] * (np.arange(len(falling)) / 30)[:, None] ** 2
    assert M.pfc(falling, 30) == 0.0
    rising = falling.copy()
    rising[:, 0, 2] = 2 * STANDING[0, 2] - falling[:, 0, 2]
    assert M.pfc(rising, 30) == pytest.approx(1.0)


def test_pfc_is_the_same_at_any_capture_rate():
    reference = M.pfc(circling_root_sliding_feet(30, vertical_accel=2.0), 30)
    for fps in (60, 120):
        motion = circling_root_sliding_feet(fps, vertical_accel=2.0)
        assert M.pfc(motion, fps) == pytest.approx(reference)


# ---------------------------------------------------------------- foot contact


def sliding_feet(n: int, step: float, lift: float = 0.0) -> np.ndarray:
    motion = still(n)
    motion[:, FEET, 0] += step * np.arange(n)[:, None]
    motion[:, :, 2] += lift
    return motion


def test_foot_skate_ratio_planted_sliding_and_airborne():
    assert M.foot_skate_ratio(still(30), 30) == 0.0
    assert M.foot_skate_ratio(sliding_feet(30, 0.02), 30) == 1.0
    assert M.foot_skate_ratio(sliding_feet(30, 0.005), 30) == 0.0
    assert M.foot_skate_ratio(sliding_feet(30, 0.02, lift=0.5), 30) == 0.0  # no contact


def test_foot_skate_ratio_counts_feet_separately():
    motion = still(30)
    motion[:, [7, 10], 0] += 0.02 * np.arange(30)[:, None]  # left foot slides, right planted
    assert M.foot_skate_ratio(motion, 30) == pytest.approx(0.5)
    assert M.foot_skate_steps(motion, 30) == (29, 58)  # pooled over sets: skating, contact steps
    assert M.foot_skate_steps(sliding_feet(30, 0.02, lift=0.5), 30) == (0, 0)


def test_foot_skate_threshold_is_per_30fps_frame():
    # 1.2 cm per 60 fps frame is 2.4 cm per 30 fps frame; 0.4 cm is 0.8 cm.
    assert M.foot_skate_ratio(sliding_feet(60, 0.012), 60) == 1.0
    assert M.foot_skate_ratio(sliding_feet(60, 0.004), 60) == 0.0


def test_foot_skate_thresholds_scale_with_body_height():
    motion = sliding_feet(30, 0.008)
    assert M.foot_skate_ratio(motion, 30) == 0.0
    # For a 0.85 m figure, the ankle (7 cm) is above its 4 cm contact height.
    assert M.foot_skate_ratio(motion, 30, height=0.85) == 0.0
    motion[:, FEET, 2] *= 0.5  # scaled feet: in contact, and 0.8 cm > 0.5 cm per frame
    assert M.foot_skate_ratio(motion, 30, height=0.85) == 1.0


def test_foot_skate_ground_can_be_estimated():
    raised = sliding_feet(30, 0.02, lift=0.3)
    assert M.foot_skate_ratio(raised, 30) == 0.0
    assert M.estimate_ground(raised) == pytest.approx(0.32)
    assert M.foot_skate_ratio(raised, 30, ground=None) == 1.0
    assert M.foot_skate_ratio(raised, 30, ground=0.3) == 1.0


def test_contacts_from_positions():
    assert M.contacts_from_positions(still(10), 30).all()
    assert not M.contacts_from_positions(sliding_feet(10, 0.02), 30).any()
    assert not M.contacts_from_positions(sliding_feet(10, 0.0, lift=0.1), 30).any()
    ankle_high = still(10)
    ankle_high[:, [7, 8], 2] = 0.09  # toes down, heels up
    np.testing.assert_array_equal(M.contacts_from_positions(ankle_high, 30)[0],
                                  [False, True, False, True])


# ----------------------------------------------------------- AIST++ features


def test_kinetic_features_of_uniform_and_accelerated_motion():
    t = np.arange(61) / 60
    uniform = translated(t[:, None] * np.array([0.3, 0.4, -0.2]))
    feats = F.kinetic_features(uniform, 60).reshape(24, 3)
    np.testing.assert_allclose(feats, np.tile([0.25, 0.04, 0.0], (24, 1)), atol=1e-9)
    np.testing.assert_allclose(F.kinetic_features(uniform[::2], 30), feats.reshape(-1), atol=1e-9)
    falling = translated(np.stack([0 * t, 0 * t, -4.9 * t**2], axis=-1))
    np.testing.assert_allclose(F.kinetic_features(falling, 60).reshape(24, 3)[:, 2], 9.8)


def test_geometric_features_standing_still():
    feats = F.geometric_features(still(30), 60)
    assert feats.shape == (32,)
    assert set(np.unique(feats)) <= {0.0, 1.0}
    assert feats[[12, 13, 21, 22, 31]].sum() == 0  # nothing moves fast
    assert feats[28] == 0  # trunk upright, not horizontal
    assert feats[16] == feats[17] == 0  # ankles near the lowest joint


def test_geometric_features_see_z_up_and_left_right():
    lying = still(30) @ np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]).T  # onto the back
    assert F.geometric_features(lying, 60)[28] == 1.0
    kick = still(30)
    kick[:, [8, 11], 2] += 0.5  # right foot raised
    feats = F.geometric_features(kick, 60)
    assert feats[16] == 1.0 and feats[17] == 0.0


def test_geometric_features_root_speed_uses_the_api_frame_time():
    # The API divides 60 fps steps by 1/120 s, so its 2.3 * HL = 0.59 "m/s"
    # root threshold trips at 0.295 m/s of real speed.
    t = np.arange(61) / 60
    for speed, expected in ((0.35, 1.0), (0.25, 0.0)):
        motion = translated(t[:, None] * [speed, 0, 0])
        assert F.geometric_features(motion, 60)[31] == expected


def test_geometric_features_are_translation_invariant():
    rng = np.random.default_rng(1)
    motion = still(40) + 0.05 * np.cumsum(rng.normal(size=(40, 24, 3)), axis=0) / 6
    feats = F.geometric_features(motion, 60)
    np.testing.assert_array_equal(F.geometric_features(motion + [3.0, -2.0, 0.5], 60), feats)
    assert feats[4] == feats[5]  # the API's f_move never reads its 4th joint


def test_fid_and_diversity():
    rng = np.random.default_rng(2)
    real = rng.normal(size=(400, 6)) * [1, 2, 3, 4, 5, 6] + 10
    assert F.fid(real, real) == pytest.approx(0.0, abs=1e-6)
    shifts = [F.fid(real, real + d * real.std(axis=0)) for d in (0.5, 1.0, 2.0)]
    # Normalised by the real set, a shift of d std in all 6 dims costs 6 d^2.
    np.testing.assert_allclose(shifts, [1.5, 6.0, 24.0], rtol=1e-4)
    assert F.fid(real, rng.normal(size=(400, 6)) * [1, 2, 3, 4, 5, 6] + 10) < 0.2
    # a feature constant over the real set (a relation no held-out clip shows) is
    # left out instead of dividing by 1e-10
    flat = np.concatenate([real, np.zeros((400, 1))], 1)
    moved = np.concatenate([real + 0.5 * real.std(axis=0), np.full((400, 1), 0.01)], 1)
    assert F.fid(flat, moved) == pytest.approx(1.5, rel=1e-4)
    assert F.diversity(moved, flat) == pytest.approx(F.diversity(moved[:, :6], real))
    assert F.diversity(np.ones((5, 6))) == 0.0
    assert F.diversity([[0, 0], [3, 4]]) == 5.0
    # The real set's std is (3, 4): the normalised pair is (1, 1) apart.
    assert F.diversity([[0, 0], [3, 4]], real_feats=[[0, 0], [6, 8]]) == pytest.approx(np.sqrt(2))


# --------------------------------------------------------------------- extras


def test_jitter_speed_and_bone_lengths():
    t = np.arange(31) / 30
    quadratic = translated(np.stack([t**2, t, 0 * t], axis=-1))
    assert M.jitter(quadratic, 30) == pytest.approx(0, abs=1e-9)
    assert M.jitter(translated(np.stack([t**3, 0 * t, 0 * t], axis=-1)), 30) == pytest.approx(6.0)
    uniform = translated(t[:, None] * [0.9, 1.2, 0.0])
    assert M.joint_speed_stats(uniform, 30) == pytest.approx((1.5, 1.5))
    assert M.bone_length_variation(uniform) == pytest.approx(0, abs=1e-12)
    stretched = still(5)
    stretched[2, 20] += (STANDING[20] - STANDING[18]) * 0.1  # forearm 10% longer once
    stretched[2, 22] += (STANDING[20] - STANDING[18]) * 0.1
    assert M.bone_length_variation(stretched) == pytest.approx(0.1)


def test_pose_gap_ignores_place_and_facing():
    dance = still(20)
    turn = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # 90 degrees about Z
    elsewhere = dance @ turn.T + np.array([2.0, -1.0, 0.0])
    assert M.pose_gap(dance, elsewhere) == pytest.approx(0.0, abs=1e-12)
    raised = dance.copy()
    raised[:, [20, 22], 2] += 0.24  # the left forearm lifted: 2 of 24 joints 24 cm
    assert M.pose_gap(raised, dance) == pytest.approx(0.02)
    assert M.pose_gap(raised[:5], dance) == pytest.approx(0.02)  # over the common frames


def test_summary():
    motion = pulsing(np.arange(241) / 60, T0, PERIOD)
    report = M.summary(motion, 60)
    assert set(report) == {"frames", "fps", "pfc", "foot_skate", "kinetic_beat_rate", "jitter",
                           "speed_mean", "speed_p90", "bone_length_variation"}
    assert report["frames"] == 241 and report["kinetic_beat_rate"] == pytest.approx(2.0)
    with_beats = M.summary(motion, 60, music_beats=M.kinetic_beats(motion, 60))
    assert with_beats["bas"] == pytest.approx(1.0)


# ------------------------------------------------------------------ real mocap


@pytest.fixture(scope="module")
def salsa(shared_data):
    """CMU salsa take 60_01 (60 fps) as a rough SMPL-24, Z up, and its body height."""
    bvh = pytest.importorskip("engine.bvh")
    take = bvh.read_bvh(shared_data / "mocap" / "cmu_salsa" / "60_01_scaled.bvh.gz")
    assert take.fps == 60
    world = bvh.forward_kinematics(take)
    index = {name: i for i, name in enumerate(take.names)}

    def toe(side):  # the foot's End Site
        foot, chain, rot = index[side + "Foot"], [], np.eye(3)
        j = foot
        while j >= 0:
            chain.append(j)
            j = take.parents[j]
        for j in reversed(chain):
            rot = rot @ take.local_rotations[:, j]
        return world[:, foot] + np.einsum("tab,b->ta", rot, take.end_sites[foot])

    names = ["hip", "lThigh", "rThigh", "abdomen", "lShin", "rShin", "chest", "lFoot", "rFoot",
             "chest", "l", "r", "neck", "lCollar", "rCollar", "head", "lShldr", "rShldr",
             "lForeArm", "rForeArm", "lHand", "rHand", "lMid1", "rMid1"]
    joints = [toe(n) if n in "lr" else world[:, index[n]] for n in names]
    positions = np.stack(joints, axis=1) @ np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]).T
    return positions, float(np.percentile(positions[:, 15, 2], 95) + 0.1)


def test_real_salsa_against_unsynchronised_beats_scores_chance(salsa):
    positions, _ = salsa
    seconds = len(positions) / 60
    scores = [M.bas(positions, 60, np.arange(phase, seconds, 60 / bpm))
              for bpm in (90, 110, 120, 140) for phase in (0.1, 0.3)]
    assert 0.08 < np.mean(scores) < 0.22  # DESIGN.md: 0.14 +- 0.03 on real songs
    late = M.kinetic_beats(positions, 60) + 0.05
    assert M.bas(positions, 60, late) == pytest.approx(np.exp(-0.5))


def test_real_salsa_metrics_agree_at_60_and_30_fps(salsa):
    positions, height = salsa
    grid = np.arange(0.25, len(positions) / 60, 0.5)
    for metric in (lambda p, fps: M.bas(p, fps, grid), M.kinetic_beat_rate, M.pfc,
                   lambda p, fps: M.foot_skate_ratio(p, fps, height=height)):
        assert metric(positions[::2], 30) == pytest.approx(metric(positions, 60), abs=0.02)
    np.testing.assert_allclose(F.geometric_features(positions[::2], 30),
                               F.geometric_features(positions, 60), atol=0.03)
    kinetic30, kinetic60 = (F.kinetic_features(p, fps).reshape(24, 3)
                            for p, fps in ((positions[::2], 30), (positions, 60)))
    np.testing.assert_allclose(kinetic30[:, :2], kinetic60[:, :2], rtol=0.1)


def test_real_salsa_is_physically_plausible(salsa):
    positions, height = salsa
    assert 1.1 < height < 1.4  # the scaled takes are about 1.2 m tall
    assert M.bone_length_variation(positions) < 1e-9  # forward kinematics keeps bones rigid
    assert M.foot_skate_ratio(positions, 60, height=height) < 0.25
    assert 0.5 < M.kinetic_beat_rate(positions, 60) < 3.0
    contacts = M.contacts_from_positions(positions, 60, height=height)
    assert 0.15 < contacts.mean() < 0.6  # a dancer's feet are planted part of the time
