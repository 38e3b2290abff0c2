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
