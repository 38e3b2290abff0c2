"""The training losses that shape how the generated joints move."""

from __future__ import annotations

import pytest
import torch

from engine import losses as L
from engine.features import ROOT_VELOCITY
from engine.model import FEATURES
from engine.train import _without_travel


def _wave(frames=128, amplitude=0.05, axis=0, joints=(20, 21)):
    """(1, T, 24, 3) positions: the given joints sway along ``axis``, the rest stand."""
    t = torch.arange(frames, dtype=torch.float32)
    pos = torch.zeros(1, frames, 24, 3)
    pos[..., 2] = torch.linspace(0, 1.6, 24)  # a standing column of joints
    for j in joints:
        pos[0, :, j, axis] += amplitude * torch.sin(2 * torch.pi * t / 30)
    return pos


def test_travel_loss_is_the_net_glide_in_metres_per_second():
    glide = torch.full((2, 128, 2), 0.01)  # 1 cm per frame along x and y
    assert L.travel_loss(glide).item() == pytest.approx(0.3 * 2 ** 0.5, rel=1e-5)
    t = torch.arange(128, dtype=torch.float32)
    sway = torch.stack([0.01 * torch.sin(2 * torch.pi * t / 32), torch.zeros(128)], -1)[None]
    assert L.travel_loss(sway).item() < 1e-6  # four whole sways: no net travel


def test_without_travel_takes_out_only_the_mean_root_velocity():
    feats = torch.randn(3, 64, FEATURES)
    out = _without_travel(feats)
    assert out[..., ROOT_VELOCITY].mean(1).abs().max() < 1e-6
    keep = torch.ones(FEATURES, dtype=torch.bool)
    keep[ROOT_VELOCITY] = False
    assert torch.equal(out[..., keep], feats[..., keep])
    sway = out[..., ROOT_VELOCITY] - out[..., ROOT_VELOCITY].mean(1, keepdim=True)
    assert torch.allclose(sway, feats[..., ROOT_VELOCITY] - feats[..., ROOT_VELOCITY].mean(1, keepdim=True),
                          atol=1e-6)


def test_speed_statistics_loss():
    real = _wave(axis=0)  # hands sway sideways
    assert L.speed_stats_loss(real, real).item() == pytest.approx(0.0, abs=1e-6)
    damped = _wave(axis=0, amplitude=0.025)
    flapping = _wave(axis=2)  # same speeds, but up and down
    assert L.speed_stats_loss(damped, real).item() > 0.3
    assert L.speed_stats_loss(flapping, real).item() > 0.1
    # flapping keeps the whole-body statistics: only the per-joint split sees it
    busy = _wave(axis=0, joints=(20, 21, 22, 23))
    assert L.speed_stats_loss(busy, real).item() > L.speed_stats_loss(flapping, real).item() > 0


def _legs(frames=32, gap=0.2):
    """(1, T, 24, 3) standing legs, hips ``gap`` apart, straight down."""
    pos = torch.zeros(1, frames, 24, 3)
    for side, x in ((1, -gap / 2), (2, gap / 2)):  # hip, knee, ankle: SMPL 1/4/7 and 2/5/8
        for k, z in enumerate((0.9, 0.5, 0.1)):
            pos[0, :, side + 3 * k] = torch.tensor([x, 0.0, z])
    return pos


def test_leg_clearance_loss():
    assert L.leg_clearance_loss(_legs(gap=0.2)).item() == 0.0
    crossed = _legs(gap=0.2)
    crossed[0, :, 4, 0], crossed[0, :, 7, 0] = 0.1, 0.3  # the left knee and ankle swing across
    assert L.leg_clearance_loss(crossed).item() == pytest.approx(1.0, abs=1e-5)  # axes intersect
    close = _legs(gap=0.04)
    assert L.leg_clearance_loss(close).item() == pytest.approx(0.5, abs=1e-5)


def test_smoothness_loss_sees_acceleration_peaks():
    real = _wave(frames=128)
    assert L.smoothness_loss(real, real).item() == pytest.approx(0.0, abs=1e-6)
    spiky = real.clone()
    spiky[0, 60:63, 20, 0] += 0.05  # one hand jumps 5 cm for three frames
    assert L.smoothness_loss(spiky, real).item() > 1.0


def _modern_windows(shared_data, frames=128, count=4):
    """(count, T, 24, 3) windows of a real modern take (CMU 05_02) at 30 fps."""
    from engine.motion import load_motion
    from engine.normalize import resample

    p = resample(load_motion(shared_data / "mocap/cmu_modern_05/005_02.bvh.gz"), 30.0).positions
    starts = torch.linspace(0, len(p) - frames, count).long()
    return torch.stack([torch.as_tensor(p[s:s + frames], dtype=torch.float32) for s in starts])


def test_pose_statistics_loss_sees_arms_held_in_one_pose(shared_data):
    real = _modern_windows(shared_data)
    style = torch.zeros(len(real), dtype=torch.long)
    assert L.pose_stats_loss(real, real, style).item() == pytest.approx(0.0, abs=1e-6)
    # the same pose facing another way, and other legs: nothing to see
    c, s = torch.cos(torch.tensor(1.0)), torch.sin(torch.tensor(1.0))
    turned = real @ torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]).T
    assert L.pose_stats_loss(turned, real, style).item() == pytest.approx(0.0, abs=1e-3)
    legs = real.clone()
    legs[..., [4, 5, 7, 8, 10, 11], 2] += 0.1
    assert L.pose_stats_loss(legs, real, style).item() == pytest.approx(0.0, abs=1e-6)
    # the arms frozen where they are on the first frame (relative to the shoulders)
    frozen = real.clone()
    for shoulder, chain in ((16, (18, 20, 22)), (17, (19, 21, 23))):
        offset = real[:, :1, chain] - real[:, :1, shoulder, None]
        frozen[:, :, chain] = real[:, :, shoulder, None] + offset
    assert L.pose_stats_loss(frozen, real, style).item() > 0.2
    # statistics are per style: two styles' windows are not pooled
    mixed = torch.tensor([0, 0, 1, 1])
    swapped = torch.cat([real[2:], real[:2]])
    assert L.pose_stats_loss(swapped, real, mixed).item() > 0.05


def test_seed_diversity_loss_wants_noise_draws_apart(shared_data):
    real = _modern_windows(shared_data)
    assert L.seed_diversity_loss(real, real, 0.08).item() == pytest.approx(1.0)  # clones
    # the same dance turned to face elsewhere or moved across the floor is no other dance
    c, s = torch.cos(torch.tensor(1.0)), torch.sin(torch.tensor(1.0))
    turned = real @ torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]).T + 0.5
    assert L.seed_diversity_loss(turned, real, 0.08).item() == pytest.approx(1.0, abs=1e-3)
    # other windows of the takes (another dance) clear the margin
    other = torch.cat([real[1:], real[:1]])
    assert L.seed_diversity_loss(other, real, 0.08).item() == pytest.approx(0.0, abs=0.05)
    # an arm raised 4 cm more (its mean joint gap is a fraction of that) falls short
    raised = real.clone()
    raised[..., [18, 20, 22], 2] += 0.04
    assert 0.9 < L.seed_diversity_loss(raised, real, 0.08).item() < 1.0
