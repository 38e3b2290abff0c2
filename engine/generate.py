"""Generating a dance for a song (``python -m engine generate``).

The music's rhythm (beat phase, beat pulse, energy, tempo) conditions the
generator in one fully convolutional pass, so any length costs linear time
and has no window seams; the music's energy is first re-expressed as the
style's own motion energy (engine.energy_map). A joint the generator turns more
than GLITCH_DEG in one frame is mended (engine.repair.fix_flips: slerped over where
it comes back, the jump spread where it does not). The music's arousal and the
``energy`` knob scale movement amplitude around the style's composed pose (every joint then pulled
back inside its hard limit, engine.joint_limits), and the dance eases
in from and out to that pose over half a second at each end. Then engine.footwork
keeps the dancer on its mark and pins its feet over the predicted contacts, and
engine.arms keeps the hands out of the legs, the trunk and each other and
calms an arm's snaps.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from engine import joint_limits as JL
from engine import rotations as R
from engine.arms import calm_arm_snaps, separate_arms
from engine.audio import beat_phase_curve, onehot
from engine.checkpoint import load_model
from engine.energy_map import as_motion_energy
from engine.errors import ChoreoError
from engine.features import features_to_motion
from engine.footwork import (anchor_root, lift_swings, plant_feet, rest_on_floor, rise_heels, separate_shins,
                             swivel_knees)
from engine.motion import Motion
from engine.repair import fix_flips
from engine.rhythm import conditioning

FPS = 30.0
EASE_SECONDS = 0.5
FOLD_ABOVE_BPM = 115.0  # the training takes pulse at 79-111 BPM (engine.rhythm)


def pick_device(device: str = "auto") -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ChoreoError("--device cuda was asked for but no CUDA device is available")
    if device not in ("cpu", "cuda"):
        raise ChoreoError(f"unknown device {device!r}: use auto, cpu or cuda")
    return device


def fold_tempo(music):
    """Half-time conditioning for fast music, as dancers count it.

    The generator learnt from takes whose pulse runs at 79-111 BPM, with about
    0.85 kinetic beats per pulse beat. Fed a 130 BPM pulse it would dip on every
    beat, far more often than real dancers do. Above FOLD_ABOVE_BPM every other
    beat is kept (the set holding more downbeats) and the tempo halved.
    """
    beats = np.asarray(music.beats, dtype=float)
    if music.tempo <= FOLD_ABOVE_BPM or len(beats) < 4:
        return music
    on_downbeat = np.isin(np.round(beats, 3), np.round(np.asarray(music.downbeats, float), 3))
    offset = int(on_downbeat[1::2].sum() > on_downbeat[0::2].sum())
    kept = beats[offset::2]
    frames = np.round((kept - music.start) * music.fps).astype(int)
    frames = frames[(frames >= 0) & (frames < music.n_frames)]
    folded = replace(music, beats=kept, tempo=music.tempo / 2, beat_onehot=onehot(frames, music.n_frames),
                     beat_phase=beat_phase_curve(frames, music.n_frames))
    return fold_tempo(folded)


def music_conditioning(music, model=None, style: str | None = None) -> np.ndarray:
    """The generator's per-frame conditioning for analysed music (fast tempos folded).

    Given a model and one of its styles, the music's energy is re-expressed as that
    style's motion energy (engine.energy_map) when the model file carries the reference.
    """
    cond = conditioning(fold_tempo(music))
    if model is None or style is None or "energy_quantiles" not in model[1]:
        return cond
    sid, stats = style_index(model, style), model[1]
    ratio, offset = stats.get("energy_section_ratio"), stats.get("style_energy_offset")
    return as_motion_energy(cond, stats["energy_quantiles"][sid].cpu().numpy(),
                            stats["energy_beat_dip"][sid].cpu().numpy(), music.fps,
                            None if ratio is None else float(ratio[sid]),
                            0.0 if offset is None else float(offset[sid]))


def style_index(model, style: str) -> int:
    """The style's index in the model, or a clear error listing the available ones."""
    styles = model[2]
    if style not in styles:
        raise ChoreoError(f"unknown style {style!r}; available styles: {', '.join(styles)}")
    return styles.index(style)


def amplitude_curve(music, energy: float) -> np.ndarray:
    """Per-frame movement amplitude from the music's mood and the user's knob: calm
    passages (low arousal) and sad ones (low valence) move less, loud and bright ones
    more (x0.64 to x1.44 at ``energy`` 1)."""
    arousal = np.asarray(music.arousal, dtype=np.float64)  # in [0, 1]
    valence = np.asarray(music.valence, dtype=np.float64)[: len(arousal)]
    return np.clip((0.75 + 0.5 * arousal) * (0.85 + 0.3 * valence) * energy, 0.3, 1.5)


GLITCH_DEG = 90.0  # a joint of the decoded motion turning further in one frame is a glitch (repair.fix_flips)
# (the generator folded modern's elbow 104 degrees in a frame and back; exaggerated, it broke the validator's 120)


def _blend_towards(motion: Motion, pose: np.ndarray, weight: np.ndarray) -> Motion:
    """Per frame, slerp local rotations (not the root) from ``pose`` (24,4) to
    the motion by ``weight`` (0: the pose, 1: the motion, >1 exaggerates), then
    pull every joint back inside its hard limit (engine.joint_limits): an
    exaggerated elbow would otherwise fold through itself or bend backwards."""
    rot = R.quat_slerp(np.broadcast_to(pose, motion.rotations.shape), motion.rotations,
                       np.broadcast_to(weight[:, None], motion.rotations.shape[:2]))
    rot[:, 0] = motion.rotations[:, 0]  # keep the pelvis' facing and tilt
    rot, _ = JL.clamp(rot, "error")
    return Motion(rot, motion.root_translation, motion.fps, motion.contacts, motion.name)


def generate_from_conditioning(cond: np.ndarray, style: str, seed: int, model, amplitude=None,
                               device: str = "cpu") -> Motion:
    """Run the generator on per-frame conditioning (T, C) and decode a Motion."""
    generator, stats, _, _ = model
    sid = style_index(model, style)
    if len(cond) < 1:
        raise ChoreoError("the time range is empty: nothing to generate")
    rng = torch.Generator().manual_seed(int(seed))
    noise = generator.noise(1, len(cond), generator=rng, device=device)
    with torch.no_grad():
        out = generator(torch.as_tensor(cond, dtype=torch.float32, device=device)[None],
                        noise, torch.tensor([sid], device=device))
        feats = (out[0] * stats["std"] + stats["mean"]).double().cpu().numpy()
    if not np.isfinite(feats).all():
        raise ChoreoError("the generator produced NaN values (NaN guard); try another seed or model")
    motion = features_to_motion(feats, FPS, name=f"{style}_seed{seed}")
    q, root = motion.rotations.copy(), motion.root_translation.copy()
    if fix_flips(q, root, FPS, threshold=GLITCH_DEG):
        motion = Motion(q, root, motion.fps, motion.contacts, motion.name)
    composed = features_to_motion(stats["style_mean"][sid].double().cpu().numpy()[None], FPS).rotations[0]
    weight = np.ones(motion.frames) if amplitude is None else np.array(amplitude, float)[: motion.frames]
    if "style_gain" in stats:  # a file calibrated before the energy offset (engine.calibrate) keeps its gain
        weight *= float(stats["style_gain"][sid])
    ease = min(int(EASE_SECONDS * FPS), motion.frames // 2)
    if ease > 0:
        ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, ease))
        weight[:ease] *= ramp
        weight[-ease:] *= ramp[::-1]
    return rest_on_floor(calm_arm_snaps(separate_arms(swivel_knees(separate_shins(rise_heels(lift_swings(plant_feet(
        anchor_root(_blend_towards(motion, composed, weight))))))))))


def generate_dance(audio_path, style: str = "salsa_lead", seed: int = 0, start=None, end=None,
                   energy: float = 1.0, device: str = "auto", model_path=None, progress=None) -> Motion:
    """Analyse the music and generate a dance for it (frame 0 = time ``start``)."""
    from engine.audio import analyze

    report = progress or (lambda fraction, message: None)
    if not energy > 0:
        raise ChoreoError(f"energy must be positive, got {energy}")
    device = pick_device(device)
    report(0.05, "analysing the music")
    music = analyze(audio_path, fps=FPS, start=start, end=end)
    report(0.5, "generating")
    model = load_model(model_path, device)
    motion = generate_from_conditioning(music_conditioning(music, model, style), style, seed, model,
                                        amplitude_curve(music, energy), device)
    report(1.0, "done")
    return motion
