"""Per-style energy offset: generated joint speed matched to the real takes'.

A generator trained with a reconstruction term moves less than the dancers it
learnt from (it hedges towards the mean pose), and the footwork's pins take some
of its legs' movement. After training, each style gets one offset on the energy
column of its conditioning, so that, fed the conditioning of real takes raised by
it, its mean joint speed matches theirs (both kept on their mark,
engine.footwork). More energy asks the generator for the movement its dancers
make when they move more. (A gain on the pose's amplitude, used before, scaled
the arms up with the slow legs: see the model card.) Stored in the model file as
``stats.style_energy_offset``; engine.generate.music_conditioning adds it.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.bisection import bisect
from engine.energy_map import ENERGY, raised
from engine.features import features_to_motion
from engine.footwork import anchor_root
from engine.metrics import joint_speed_stats

FRAMES = 300
CLIPS = 8  # spread over the style's takes and their augmented copies
OFFSET_RANGE = (-0.3, 0.5)  # energy column units (the takes' smoothed speed over the style's 99th percentile)
BISECTION_STEPS = 10  # the offset to 0.001


def calibration_clips(data, style: int) -> list[int]:
    """Up to CLIPS of the style's clips at least FRAMES long, spread over its takes."""
    long_enough = [c for c, st in enumerate(data.style) if st == style and len(data.feats[c]) >= FRAMES]
    if not long_enough:
        return []
    return [long_enough[i] for i in np.unique(np.linspace(0, len(long_enough) - 1, CLIPS).astype(int))]


def real_speed(data, clips) -> float:
    """Mean joint speed of the clips' takes, kept on their mark."""
    return float(np.mean([joint_speed_stats(anchor_root(features_to_motion(data.feats[c][:FRAMES], 30.0))
                                            .positions, 30.0)[0] for c in clips]))


def generated_speed(model, data, clips, style: str, offset: float) -> float:
    """Mean joint speed of the generator fed the clips' own conditioning, raised by ``offset``."""
    from engine.generate import generate_from_conditioning

    speeds = []
    for c in clips:
        cond = np.array(data.cond[c][:FRAMES], dtype=np.float32)
        cond[:, ENERGY] = raised(cond[:, ENERGY], offset)
        motion = generate_from_conditioning(cond, style, c, model)
        speeds.append(joint_speed_stats(motion.positions[15:-15], 30.0)[0])  # past the eases
    return float(np.mean(speeds))


def style_energy_offsets(model, data) -> torch.Tensor:
    """(S,) offsets (0 for a style without a clip FRAMES long); ``data`` is the
    engine.train.TrainingSet the model learnt from. Generated speed grows with the
    offset, so a bisection finds it."""
    offsets = torch.zeros(len(model[2]))
    for s, style in enumerate(model[2]):
        clips = calibration_clips(data, s)
        if not clips:
            continue
        target = real_speed(data, clips)
        offsets[s] = bisect(lambda x: generated_speed(model, data, clips, style, x) < target,
                            *OFFSET_RANGE, BISECTION_STEPS)
    return offsets
