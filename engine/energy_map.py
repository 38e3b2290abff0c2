"""Music energy re-expressed as the dancer's own motion energy.

The generator learnt its energy column from the motion itself: the dancer's
smoothed joint speed over its style's 99th percentile (engine.rhythm,
engine.train.style_level_energy), so a fast take sits higher in it than a slow
one. Music RMS, put in
the same column, differs in two ways the generator never saw. Its level
depends on how the track was mixed (loud, compressed songs sit near 1 for
minutes, so a style dances near its takes' peak speed throughout), and it
peaks on the beat, where a dancer's speed dips. So, per style, the music's
envelope is smoothed to the beat's time scale (:data:`SMOOTH_S`), mapped by
rank onto that style's training energy smoothed the same way (quiet passages
stay the quietest, loud ones the loudest), and given the style's dip around
its beats: by beat phase, the takes' energy over their smoothed energy, as a
ratio of sums, so the dip keeps the takes' mean level. Song-level
loudness still scales the dance through engine.generate.amplitude_curve.

The reference is measured from the training conditioning when a model is
trained and stored in the model file (``stats.energy_quantiles``,
``stats.energy_beat_dip``); a model file without it gets the music's RMS as it is.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d
from scipy.stats import rankdata

SMOOTH_S = 0.3  # about half a beat at the takes' 80-110 BPM pulse
QUANTILES = np.linspace(0.0, 1.0, 101)
PHASE_BINS = 20
ENERGY = 3  # engine.rhythm.COND_COLUMNS


def _phase_bins(cond: np.ndarray) -> np.ndarray:
    """Beat-phase bin of each frame, from the phase_sin / phase_cos columns."""
    phase = (np.arctan2(cond[:, 0], cond[:, 1]) / (2 * np.pi)) % 1.0
    return np.minimum((phase * PHASE_BINS).astype(int), PHASE_BINS - 1)


def style_energy_reference(data, fps: float = 30.0) -> dict[str, torch.Tensor]:
    """Per style of an engine.train.TrainingSet: quantiles of the smoothed energy
    (S, 101) and, in each beat-phase bin, the energy over its smoothed value (S, 20)."""
    quantiles, dips = [], []
    for s in range(len(data.styles)):
        conds = [np.asarray(c, np.float64) for c, st in zip(data.cond, data.style) if st == s]
        smooth = [gaussian_filter1d(c[:, ENERGY], SMOOTH_S * fps) for c in conds]
        quantiles.append(np.quantile(np.concatenate(smooth), QUANTILES))
        energy, level = np.zeros(PHASE_BINS), np.zeros(PHASE_BINS)
        for c, sm in zip(conds, smooth):
            bins = _phase_bins(c)
            np.add.at(energy, bins, c[:, ENERGY])
            np.add.at(level, bins, sm)
        dips.append(energy / np.maximum(level, 1e-9))
    return {"energy_quantiles": torch.tensor(np.array(quantiles), dtype=torch.float32),
            "energy_beat_dip": torch.tensor(np.array(dips), dtype=torch.float32)}


def as_motion_energy(cond: np.ndarray, quantiles, beat_dip, fps: float = 30.0) -> np.ndarray:
    """A copy of music conditioning (T, 5) with its energy column re-expressed
    against one style's reference (``quantiles`` (101,), ``beat_dip`` (20,))."""
    out = np.array(cond, dtype=np.float32, copy=True)
    energy = out[:, ENERGY].astype(np.float64)
    if len(energy) == 0 or not energy.any():  # silence stays still
        return out
    smooth = gaussian_filter1d(energy, SMOOTH_S * fps)
    ranks = (rankdata(smooth) - 0.5) / len(smooth)
    mapped = np.interp(ranks, QUANTILES, np.asarray(quantiles, np.float64))
    out[:, ENERGY] = np.clip(mapped * np.asarray(beat_dip, np.float64)[_phase_bins(out)], 0.0, 1.0)
    return out
