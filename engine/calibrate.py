"""Per-style amplitude gain: generated joint speed matched to the real takes'.

A generator trained with a reconstruction term moves less than the dancers it
learnt from (it hedges towards the mean pose). After training, each style gets
one gain on movement amplitude (engine.generate scales rotations about the
style's composed pose by it) so that, fed the conditioning of real takes, its
mean joint speed matches theirs (both kept on their mark, engine.footwork). Stored in the model file as ``stats.style_gain``.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.features import features_to_motion
from engine.footwork import anchor_root
from engine.metrics import joint_speed_stats

FRAMES = 300
CLIPS = 8  # spread over the style's takes and their augmented copies
GAIN_RANGE = (0.5, 3.0)


def style_gains(model, data, rounds: int = 2) -> torch.Tensor:
    """(S,) gains; ``data`` is the engine.train.TrainingSet the model learnt from."""
    from engine.generate import generate_from_conditioning

    generator, stats, styles, meta = model
    gains = torch.ones(len(styles))
    for s, style in enumerate(styles):
        long_enough = [c for c, st in enumerate(data.style) if st == s and len(data.feats[c]) >= FRAMES]
        if not long_enough:
            continue
        clips = [long_enough[i] for i in np.unique(np.linspace(0, len(long_enough) - 1, CLIPS).astype(int))]
        real = np.mean([joint_speed_stats(anchor_root(features_to_motion(data.feats[c][:FRAMES], 30.0))
                                          .positions, 30.0)[0] for c in clips])
        for _ in range(rounds):
            trial = (generator, dict(stats, style_gain=gains), styles, meta)
            fake = np.mean([joint_speed_stats(generate_from_conditioning(
                data.cond[c][:FRAMES], style, c, trial).positions[15:-15], 30.0)[0] for c in clips])
            gains[s] = float(np.clip(gains[s] * real / max(fake, 1e-6), *GAIN_RANGE))
    return gains
