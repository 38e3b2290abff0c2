"""Training the dance GAN on unpaired mocap (``python -m engine train``).

The mocap has no music, so the conditioning is the motion's own rhythm
(engine.rhythm: kinematic beat phase, beat pulse, motion energy, tempo). At
generation time the same columns come from the music (engine.audio). The
sync loss ties kinematic beats to the conditioning beats.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from engine import losses as L
from engine.augment import mirror_motion, time_stretch
from engine.calibrate import style_energy_offsets
from engine.checkpoint import load_generator, restore_training, save_model
from engine.corpus import load_corpus
from engine.energy_map import style_energy_reference
from engine.features import ROOT_VELOCITY, joint_positions, motion_to_features
from engine.model import POSE_FEATURES, Discriminator, Generator, ModelConfig
from engine.rhythm import (COND_DIM, ENERGY_PERCENTILE, conditioning, half_time, motion_rhythm,
                           normalise_energy)

WINDOW = 128
# Two seeds' dances to one song should differ by at least this much (metres, mean
# joint distance in the body frame): half of what two unrelated windows of a
# style's takes differ by (0.15-0.26 m).
SEED_MARGIN = 0.08
STRETCH_FACTORS = (0.8, 1.25)  # the takes pulse near 90 BPM; songs run faster
# Clips pulsing this fast are also given at half time, as engine.generate feeds
# music above 115 BPM: the dancer keeps its pace while the count halves.
HALF_TIME_FROM_BPM = 100.0


@dataclass
class TrainConfig:
    steps: int = 6000
    batch: int = 16
    lr_g: float = 2e-4
    lr_d: float = 1e-4
    seed: int = 0
    minutes: float | None = None  # wall-clock cap
    save_every: int = 250
    sync: bool = True
    attention: bool = True
    structure: bool = True
    width: int = 64
    average: float = 0.999  # decay of the generator's moving average, the model shipped
    noise_hold: int = 1  # coarse frames each noise draw is held for (engine.model.Generator.noise)
    weights: dict = field(default_factory=lambda: {
        "adv": 1.0, "fm": 1.0, "rec": 2.0, "sync": 1.5, "energy": 0.2,
        "smooth": 0.5, "range": 1.0, "contact": 0.5, "speed": 2.0, "travel": 1.0,
        "clearance": 1.0, "pose": 1.0, "diverse": 1.0})


@dataclass
class TrainingSet:
    feats: list[np.ndarray]  # per clip (T, 151), unnormalised
    cond: list[np.ndarray]  # per clip (T, C)
    heading: list[np.ndarray]  # per clip (T,) pelvis heading, radians
    style: list[int]
    styles: list[str]
    as_recorded: list[bool]  # per clip: the take itself (not mirrored, stretched or half-time)


def _heading(feats: np.ndarray) -> np.ndarray:
    """Pelvis heading from its 6D rotation: angle of its left (x) axis."""
    return np.arctan2(feats[:, 1], feats[:, 0])


def build_training_set(data_dir, styles_file=None, augment=True, log=print) -> TrainingSet:
    corpus = load_corpus(data_dir, fps=30.0, styles_file=styles_file, log=log)
    out = TrainingSet([], [], [], [], corpus.styles, [])
    rhythms = []
    for motion, style in zip(corpus.motions, corpus.style_ids):
        variants = [motion]
        if augment:
            variants.append(mirror_motion(motion))
            variants += [time_stretch(v, f) for v in list(variants) for f in STRETCH_FACTORS]
        for v in variants:
            if v.frames < WINDOW:
                continue
            feats = motion_to_features(v)
            rhythm = motion_rhythm(v)
            counts = [rhythm] + ([half_time(rhythm)] if augment and rhythm.tempo >= HALF_TIME_FROM_BPM else [])
            for r in counts:
                out.as_recorded.append(v is motion and r is rhythm)
                rhythms.append(r)
                out.feats.append(feats)
                out.heading.append(_heading(feats))
                out.style.append(style)
    out.cond = [conditioning(r) for r in style_level_energy(rhythms, out.style)]
    log(f"training set: {len(corpus.motions)} takes, {len(out.feats)} clips with augmentation, "
        f"{sum(len(f) for f in out.feats) / 30 / 60:.1f} min, styles {corpus.styles}")
    return out


def style_level_energy(rhythms: list, style: list[int]) -> list:
    """The rhythms with their energy measured against their style's 99th-percentile
    speed rather than each clip's own: a fast take then has more energy than a slow
    one, so the generator can tell them apart (with a per-clip scale both span
    [0, 1], and its speed losses could only fit the style's median level). At
    generation the music's energy is mapped onto this distribution (engine.energy_map)."""
    style = np.asarray(style)
    out = list(rhythms)
    for s in np.unique(style):
        members = np.flatnonzero(style == s)
        ref = np.percentile(np.concatenate([rhythms[i].speed for i in members]), ENERGY_PERCENTILE)
        for i in members:
            out[i] = replace(rhythms[i], energy=normalise_energy(rhythms[i].speed, ref))
    return out


def cached_training_set(data_dir, styles_file=None, cache: Path | None = None, log=print) -> TrainingSet:
    """build_training_set, stored in ``cache`` (.npz, no pickle) and reused when
    the same folder and styles file are asked for again."""
    key = f"{Path(data_dir).resolve()}|{styles_file}|{STRETCH_FACTORS}|{WINDOW}|contacts=metrics.planted|half>={HALF_TIME_FROM_BPM}|energy=style|as_recorded"
    if cache is not None and Path(cache).exists():
        with np.load(cache, allow_pickle=False) as z:
            if str(z["key"]) == key:
                bounds = np.cumsum(z["lengths"])[:-1]
                log(f"training set from cache {cache}")
                return TrainingSet(np.split(z["feats"], bounds), np.split(z["cond"], bounds),
                                   np.split(z["heading"], bounds), z["style"].tolist(),
                                   z["styles"].tolist(), z["as_recorded"].tolist())
    data = build_training_set(data_dir, styles_file, log=log)
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, key=key, lengths=[len(f) for f in data.feats], feats=np.concatenate(data.feats),
                 cond=np.concatenate(data.cond), heading=np.concatenate(data.heading),
                 style=data.style, styles=data.styles, as_recorded=data.as_recorded)
    return data


def feature_stats(data: TrainingSet) -> dict[str, torch.Tensor]:
    """Mean/std for normalisation, per-style ranges of the normalised features
    and per-style mean features (the style's composed pose)."""
    allf = np.concatenate(data.feats)
    mean, std = allf.mean(0), allf.std(0) + 1e-4
    mean[147:], std[147:] = 0.0, 1.0  # contact flags stay 0/1 (targets of logits)
    low, high, style_mean = [], [], []
    for s in range(len(data.styles)):
        sf = np.concatenate([f for f, st in zip(data.feats, data.style) if st == s])
        z = (sf - mean) / std
        low.append(np.percentile(z, 0.5, axis=0))
        high.append(np.percentile(z, 99.5, axis=0))
        style_mean.append(sf.mean(0))
    return {k: torch.tensor(np.asarray(v), dtype=torch.float32) for k, v in
            {"mean": mean, "std": std, "low": low, "high": high, "style_mean": style_mean}.items()}


def _rotate_windows(feats: torch.Tensor, angle: torch.Tensor) -> torch.Tensor:
    """Turn windows about Z by -angle: the pelvis 6D columns and root velocity."""
    c, s = torch.cos(-angle)[:, None], torch.sin(-angle)[:, None]
    out = feats.clone()
    for cols in ((0, 1), (3, 4), (145, 146)):
        x, y = feats[..., cols[0]], feats[..., cols[1]]
        out[..., cols[0]] = c * x - s * y
        out[..., cols[1]] = s * x + c * y
    return out


class Batches:
    """Random windows, each turned to face -Y on average, with the window's mean root
    velocity taken out (deterministic per seed). A generator that learnt the takes'
    net travel would glide across the stage: it cannot tell from the music which
    way to go, so it would go the average way, all song long."""

    def __init__(self, data: TrainingSet, batch: int, seed: int):
        self.data, self.batch = data, batch
        self.rng = np.random.default_rng(seed)
        lengths = np.array([len(f) - WINDOW + 1 for f in data.feats])
        self.p = lengths / lengths.sum()

    def __next__(self):
        clips = self.rng.choice(len(self.p), self.batch, p=self.p)
        feats, cond, angle, style = [], [], [], []
        for c in clips:
            start = self.rng.integers(0, len(self.data.feats[c]) - WINDOW + 1)
            window = slice(start, start + WINDOW)
            feats.append(self.data.feats[c][window])
            cond.append(self.data.cond[c][window])
            h = self.data.heading[c][window]
            angle.append(math.atan2(np.sin(h).mean(), np.cos(h).mean()))
            style.append(self.data.style[c])
        feats = _rotate_windows(torch.tensor(np.stack(feats)), torch.tensor(angle, dtype=torch.float32))
        feats = _without_travel(feats)  # no net travel: see footwork
        return (feats,
                torch.tensor(np.stack(cond)), torch.tensor(style))


def _progress(step, total, started, losses, stream=sys.stderr):
    done = step / total
    eta = (time.time() - started) / max(done, 1e-9) * (1 - done)
    bar = "#" * int(30 * done)
    text = " ".join(f"{k} {v:.3f}" for k, v in losses.items())
    print(f"\r[{bar:<30}] {step}/{total} eta {eta / 60:.1f} min  {text}", end="", file=stream, flush=True)


def train(data_dir, out, cfg: TrainConfig, styles_file=None, device="cpu", resume=False, log=print,
          data: TrainingSet | None = None, init=None):
    """Train and write the generator to ``out`` (safetensors); returns the step reached.

    ``data`` is a prebuilt training set for ``data_dir`` (building it is the slow part).
    ``init`` is a model file whose generator starts the run (fine-tuning; the
    discriminator starts afresh), unless ``resume`` finds a checkpoint.
    """
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    data = data or cached_training_set(data_dir, styles_file, Path(str(out) + ".trainset.npz"), log)
    stats = {k: v.to(device) for k, v in feature_stats(data).items()}
    mcfg = ModelConfig(cond_dims=COND_DIM, styles=len(data.styles), width=cfg.width, attention=cfg.attention,
                       noise_hold=cfg.noise_hold)
    G, D = Generator(mcfg).to(device), Discriminator(mcfg).to(device)
    average = copy.deepcopy(G).eval().requires_grad_(False)
    opt_g = torch.optim.Adam(G.parameters(), cfg.lr_g, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(D.parameters(), cfg.lr_d, betas=(0.5, 0.999))
    ckpt = Path(str(out) + ".ckpt")
    step = 0
    if resume and ckpt.exists():
        step = restore_training(ckpt, G, D, {"g": opt_g, "d": opt_d}, average)
        log(f"resumed from {ckpt} at step {step}")
    elif init is not None:
        load_generator(init, G, ablated=not cfg.attention)
        average.load_state_dict(G.state_dict())
        log(f"generator initialised from {init}")
    batches = Batches(data, cfg.batch, cfg.seed + step)
    extra = {"train": {k: v for k, v in cfg.__dict__.items()}, "data": str(data_dir)}
    started = time.time()

    def save(path, with_state):
        """A checkpoint holds the live generator and the training state; the model
        file, the moving average."""
        save_model(path, G if with_state else average, {k: v.cpu() for k, v in stats.items()},
                   data.styles, extra, discriminator=D if with_state else None,
                   optimizers={"g": opt_g, "d": opt_d} if with_state else None, step=step,
                   average=average if with_state else None)

    while step < cfg.steps:
        if cfg.minutes and time.time() - started > cfg.minutes * 60:
            log(f"\nstopping at the {cfg.minutes} min limit")
            break
        real, cond, style = (t.to(device) for t in next(batches))
        losses = train_step(G, D, opt_g, opt_d, real, cond, style, stats, cfg)
        update_average(average, G, cfg.average)
        step += 1
        if step % 10 == 0 or step == cfg.steps:
            _progress(step, cfg.steps, started, losses)
        if step % cfg.save_every == 0:
            save(ckpt, True)
    print(file=sys.stderr)
    save(ckpt, True)
    stats["style_energy_offset"] = style_energy_offsets((average, stats, data.styles, {}), data).to(device)
    log(f"energy offsets per style: {dict(zip(data.styles, stats['style_energy_offset'].tolist()))}")
    stats.update({k: v.to(device) for k, v in style_energy_reference(data).items()})
    save(out, False)
    return step


@torch.no_grad()
def update_average(average: torch.nn.Module, live: torch.nn.Module, decay: float) -> None:
    """Exponential moving average of the generator's weights (batch-norm statistics
    copied): a GAN's weights swing from step to step, their average much less."""
    for a, p in zip(average.parameters(), live.parameters()):
        a.lerp_(p, 1.0 - decay)
    for a, b in zip(average.buffers(), live.buffers()):
        a.copy_(b)


def _without_travel(feats: torch.Tensor) -> torch.Tensor:
    """Windows (B, T, F) with their mean root velocity taken out, as Batches does to
    the real ones and engine.footwork.anchor_root does at generation: a glide must
    not count as movement."""
    out = feats.clone()
    out[..., ROOT_VELOCITY] -= feats[..., ROOT_VELOCITY].mean(1, keepdim=True)
    return out


def _velocity(pos: torch.Tensor) -> torch.Tensor:
    v = (pos[:, 1:] - pos[:, :-1]) * 30.0 / 2.0  # m/s, roughly unit scale
    return torch.cat([v[:, :1], v], 1).flatten(2)


def train_step(G, D, opt_g, opt_d, real, cond, style, stats, cfg: TrainConfig) -> dict:
    """One discriminator and one generator update; returns the losses."""
    mean, std, w = stats["mean"], stats["std"], cfg.weights
    real_n = (real - mean) / std
    b, t, _ = real.shape
    noise = [G.noise(b, t, device=real.device) for _ in range(2)]
    fakes_n = [G(cond, z, style) for z in noise]
    fake_n = fakes_n[0]
    pos_real = joint_positions(real)
    fake = fake_n * std + mean
    pos_fake = joint_positions(_without_travel(fake))
    pos_other = joint_positions(_without_travel(fakes_n[1] * std + mean))
    n_d = slice(0, POSE_FEATURES)

    # discriminator
    real_score, real_hidden = D(real_n[..., n_d], _velocity(pos_real), cond, style)
    fake_score, _ = D(fake_n.detach()[..., n_d], _velocity(pos_fake.detach()), cond, style)
    loss_d = L.d_hinge(real_score, fake_score)
    opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    opt_d.step()

    # generator
    fake_score, fake_hidden = D(fake_n[..., n_d], _velocity(pos_fake), cond, style)
    parts = {
        "adv": L.g_hinge(fake_score),
        "fm": L.feature_matching(real_hidden, fake_hidden),
        "rec": L.min_of_k_reconstruction(fakes_n, real_n),
        "contact": L.contact_loss(pos_fake, fake, real[..., 147:]),
        "diverse": L.seed_diversity_loss(pos_fake, pos_other, SEED_MARGIN),
    }
    if cfg.sync:
        phase = torch.atan2(cond[..., 0], cond[..., 1]) / (2 * torch.pi)
        parts["sync"] = L.sync_loss(pos_fake, phase)
    if cfg.structure:
        parts["energy"] = L.energy_loss(pos_fake, cond[..., 3])
        parts["smooth"] = L.smoothness_loss(pos_fake, pos_real)
        parts["speed"] = L.speed_stats_loss(pos_fake, pos_real)
        parts["range"] = L.range_loss(fake_n, stats["low"][style][:, None], stats["high"][style][:, None])
        parts["travel"] = L.travel_loss(fake[..., ROOT_VELOCITY])
        parts["clearance"] = L.leg_clearance_loss(pos_fake)
        parts["pose"] = L.pose_stats_loss(pos_fake, pos_real, style)
    loss_g = sum(w[k] * v for k, v in parts.items())
    if not torch.isfinite(loss_g):
        raise FloatingPointError("non-finite generator loss (NaN guard)")
    opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    torch.nn.utils.clip_grad_norm_(G.parameters(), 1.0)
    opt_g.step()
    return {"D": loss_d.item(), **{k: v.item() for k, v in parts.items()}}
