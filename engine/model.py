"""The dance GAN: a temporal DCNN generator with self-attention, and a CNN discriminator.

Motion features per frame (``FEATURES`` = 151): 24 local rotations in 6D,
root height, root velocity in x and y (metres per frame) and four foot
contact logits. Both networks are fully convolutional in time and the
attention is local (blocks of ``ATTN_BLOCK`` coarse frames, two shifted
partitions), so a song of any length costs linear time in one pass.

Generator: conditioning (music or motion rhythm, per frame) and a style
embedding are encoded by strided convolutions to 1/8 of the frame rate;
noise joins there (one draw per ``noise_hold`` coarse frames); self-attention
mixes context; transposed convolutions with batch norm and ReLU decode back to
the frame rate, with skip connections from the encoder so beat timing survives
at full resolution.
Discriminator: spectrally normalised temporal convolutions with LeakyReLU
over motion features, joint velocities and the conditioning; it scores
overlapping patches (PatchGAN), so it also works at any length.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.parametrizations import spectral_norm

ROT_DIMS = 24 * 6
FEATURES = ROT_DIMS + 1 + 2 + 4
POSE_FEATURES = FEATURES - 4  # what the discriminator sees: no contact flags
DOWN = 8  # generator's temporal downsampling factor
ATTN_BLOCK = 16  # coarse frames per attention block (16 * 8 = 128 frames)


@dataclass
class ModelConfig:
    cond_dims: int
    styles: int
    width: int = 96
    noise_dims: int = 32
    style_dims: int = 16
    heads: int = 4
    attention: bool = True
    noise_hold: int = 1  # coarse frames each noise draw is held for (the shipped file: 1)

    def to_dict(self) -> dict:
        return asdict(self)


class LocalSelfAttention(nn.Module):
    """Multi-head self-attention inside blocks of coarse frames, on two
    partitions shifted by half a block and averaged, with a residual."""

    def __init__(self, channels: int, heads: int, block: int = ATTN_BLOCK):
        super().__init__()
        self.block = block
        self.norm = nn.LayerNorm(channels)
        self.attn = nn.MultiheadAttention(channels, heads, batch_first=True)

    def _blocks(self, x: torch.Tensor, shift: int) -> torch.Tensor:
        b, t, c = x.shape
        pad_front = shift
        pad_back = (-(t + shift)) % self.block
        xp = F.pad(x, (0, 0, pad_front, pad_back))
        n = xp.shape[1] // self.block
        blocks = xp.reshape(b * n, self.block, c)
        mask = torch.zeros(xp.shape[1], dtype=torch.bool, device=x.device)
        mask[:pad_front] = True
        if pad_back:
            mask[-pad_back:] = True
        key_mask = mask.reshape(n, self.block).repeat(b, 1)
        key_mask[key_mask.all(1)] = False  # an all-padding block attends to itself
        out, _ = self.attn(blocks, blocks, blocks, key_padding_mask=key_mask, need_weights=False)
        return out.reshape(b, n * self.block, c)[:, pad_front:pad_front + t]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, C, T)
        h = self.norm(x.transpose(1, 2))
        t = h.shape[1]
        if t <= self.block:
            out = self.attn(h, h, h, need_weights=False)[0]
        else:
            out = 0.5 * (self._blocks(h, 0) + self._blocks(h, self.block // 2))
        return x + out.transpose(1, 2)


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv1d(cin, cout, 4, stride=2, padding=1), nn.BatchNorm1d(cout), nn.ReLU())


def _up(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.ConvTranspose1d(cin, cout, 4, stride=2, padding=1),
                         nn.BatchNorm1d(cout), nn.ReLU())


class Generator(nn.Module):
    """(conditioning, noise, style) -> normalised motion features."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.style = nn.Embedding(cfg.styles, cfg.style_dims)
        self.inp = nn.Sequential(nn.Conv1d(cfg.cond_dims + cfg.style_dims, w, 5, padding=2), nn.ReLU())
        self.d1, self.d2, self.d3 = _down(w, w), _down(w, 2 * w), _down(2 * w, 2 * w)
        self.mix = nn.Sequential(nn.Conv1d(2 * w + cfg.noise_dims + cfg.style_dims, 2 * w, 3, padding=1),
                                 nn.BatchNorm1d(2 * w), nn.ReLU())
        self.attn = LocalSelfAttention(2 * w, cfg.heads) if cfg.attention else nn.Identity()
        self.u3, self.u2, self.u1 = _up(2 * w, 2 * w), _up(4 * w, w), _up(2 * w, w)
        self.out = nn.Sequential(nn.Conv1d(2 * w, w, 5, padding=2), nn.ReLU(),
                                 nn.Conv1d(w, FEATURES, 5, padding=2))

    def noise_length(self, frames: int) -> int:
        return -(-frames // DOWN)

    def noise(self, batch: int, frames: int, generator: torch.Generator | None = None, device=None) -> torch.Tensor:
        """(batch, noise_length(frames), noise_dims) standard normal noise, each draw held
        for ``cfg.noise_hold`` coarse frames: one choice per phrase, which the convolutions
        and the attention do not average away as they do independent draws per coarse frame."""
        length, hold = self.noise_length(frames), self.cfg.noise_hold
        draws = torch.randn(batch, -(-length // hold), self.cfg.noise_dims, generator=generator)
        return draws.repeat_interleave(hold, 1)[:, :length].to(device)

    def forward(self, cond: torch.Tensor, noise: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        """cond (B,T,C), noise (B,ceil(T/8),Z), style (B,) -> (B,T,FEATURES)."""
        b, t, _ = cond.shape
        pad = (-t) % DOWN
        x = F.pad(cond.transpose(1, 2), (0, pad), mode="replicate")
        s = self.style(style)[:, :, None]
        x0 = self.inp(torch.cat([x, s.expand(-1, -1, x.shape[2])], 1))
        x1 = self.d1(x0)
        x2 = self.d2(x1)
        x3 = self.d3(x2)
        z = noise.transpose(1, 2)[:, :, : x3.shape[2]]
        h = self.mix(torch.cat([x3, z, s.expand(-1, -1, x3.shape[2])], 1))
        h = self.attn(h)
        h = self.u3(h)
        h = self.u2(torch.cat([h, x2], 1))
        h = self.u1(torch.cat([h, x1], 1))
        out = self.out(torch.cat([h, x0], 1))
        return out[:, :, :t].transpose(1, 2)


class Discriminator(nn.Module):
    """PatchGAN critic over motion features, joint velocities and conditioning."""

    def __init__(self, cfg: ModelConfig, velocity_dims: int = 72):
        super().__init__()
        w = cfg.width
        self.style = nn.Embedding(cfg.styles, cfg.style_dims)
        cin = POSE_FEATURES + velocity_dims + cfg.cond_dims + cfg.style_dims
        act = nn.LeakyReLU(0.2)
        self.net = nn.Sequential(
            spectral_norm(nn.Conv1d(cin, w, 5, padding=2)), act,
            spectral_norm(nn.Conv1d(w, 2 * w, 4, stride=2, padding=1)), act,
            spectral_norm(nn.Conv1d(2 * w, 2 * w, 4, stride=2, padding=1)), act,
            spectral_norm(nn.Conv1d(2 * w, 2 * w, 3, padding=1)), act,
        )
        self.head = spectral_norm(nn.Conv1d(2 * w, 1, 3, padding=1))

    def forward(self, feats, velocity, cond, style):
        """All inputs (B,T,·); returns patch scores (B,T/4) and hidden features."""
        s = self.style(style)[:, None, :].expand(-1, feats.shape[1], -1)
        x = torch.cat([feats, velocity, cond, s], -1).transpose(1, 2)
        h = self.net(x)
        return self.head(h).squeeze(1), h
