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

Before the ranking, where the envelope's section-scale part (slower than
:data:`SECTION_S`) weighs more against the rest than in the style's takes, it
is weakened so that, once mapped, the two stand in the takes' ratio
(``energy_section_ratio``). A song's loudness moves mostly from section to
section; the takes' energy moves more from phrase to phrase. Ranked as it is,
a song held its quiet sections still and its loud ones at the takes' peak,
which made every 5 s stretch of the dance unlike the next (Div_k far above
real) where real dancers vary within a stretch. Quiet sections still dance
the quietest at that scale.

The reference is measured from the training conditioning when a model is
trained and stored in the model file (``stats.energy_quantiles``,
``stats.energy_beat_dip``, ``stats.energy_section_ratio``); a model file
without it gets the music's RMS as it is (without the ratio, the ranking of
the envelope as it is).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import gaussian_filter1d
from scipy.stats import rankdata

from engine.bisection import bisect

SMOOTH_S = 0.3  # about half a beat at the takes' 80-110 BPM pulse
SECTION_S = 5.0  # Gaussian sigma of the section-scale part: periods longer than about 30 s
WEIGHT_DECADES = 2.0  # the section weight is looked for between 1/100 and 1
BALANCE_STEPS = 11  # bisection steps: the weight to 0.2%
QUANTILES = np.linspace(0.0, 1.0, 101)
PHASE_BINS = 20
ENERGY = 3  # engine.rhythm.COND_COLUMNS


def _phase_bins(cond: np.ndarray) -> np.ndarray:
    """Beat-phase bin of each frame, from the phase_sin / phase_cos columns."""
    phase = (np.arctan2(cond[:, 0], cond[:, 1]) / (2 * np.pi)) % 1.0
    return np.minimum((phase * PHASE_BINS).astype(int), PHASE_BINS - 1)


def _split(envelope: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """(section-scale part, the rest) of an energy envelope."""
    sections = gaussian_filter1d(envelope, SECTION_S * fps, mode="nearest")
    return sections, envelope - sections


def _section_ratio(envelopes: list[np.ndarray], fps: float) -> float:
    """Std of the section-scale part over std of the rest, the envelopes pooled
    (so a style's slow takes against its fast ones count as sections)."""
    parts = [_split(e, fps) for e in envelopes]
    rest = np.concatenate([p[1] for p in parts]).std()
    return float(np.concatenate([p[0] for p in parts]).std() / rest) if rest > 0 else 0.0


def style_energy_reference(data, fps: float = 30.0) -> dict[str, torch.Tensor]:
    """Per style of an engine.train.TrainingSet: quantiles of the smoothed energy
    (S, 101), in each beat-phase bin the energy over its smoothed value (S, 20),
    and the section-scale ratio of the smoothed energy of the takes as recorded
    (S,): their time-stretched copies would add levels no dancer chose."""
    quantiles, dips, ratios = [], [], []
    for s in range(len(data.styles)):
        members = [i for i, st in enumerate(data.style) if st == s]
        conds = [np.asarray(data.cond[i], np.float64) for i in members]
        smooth = [gaussian_filter1d(c[:, ENERGY], SMOOTH_S * fps) for c in conds]
        quantiles.append(np.quantile(np.concatenate(smooth), QUANTILES))
        recorded = [e for e, i in zip(smooth, members) if data.as_recorded[i]]
        ratios.append(_section_ratio(recorded or smooth, fps))  # stretched copies add levels
        energy, level = np.zeros(PHASE_BINS), np.zeros(PHASE_BINS)
        for c, sm in zip(conds, smooth):
            bins = _phase_bins(c)
            np.add.at(energy, bins, c[:, ENERGY])
            np.add.at(level, bins, sm)
        dips.append(energy / np.maximum(level, 1e-9))
    return {"energy_quantiles": torch.tensor(np.array(quantiles), dtype=torch.float32),
            "energy_beat_dip": torch.tensor(np.array(dips), dtype=torch.float32),
            "energy_section_ratio": torch.tensor(ratios, dtype=torch.float32)}


def _ranked(envelope: np.ndarray, quantiles: np.ndarray) -> np.ndarray:
    """The envelope mapped by rank onto the quantiles."""
    return np.interp((rankdata(envelope) - 0.5) / len(envelope), QUANTILES, quantiles)


def _balanced(smooth: np.ndarray, quantiles: np.ndarray, section_ratio: float, fps: float) -> np.ndarray:
    """The smoothed envelope mapped by rank, its section-scale part weakened so
    that the mapped energy's section ratio is ``section_ratio``: a bisection on
    the weight's log (the ratio grows with the weight). Never strengthened: a
    steady song, or a clip too short to have sections, is not made to build."""
    mapped = _ranked(smooth, quantiles)
    if _section_ratio([mapped], fps) <= section_ratio:
        return mapped
    sections, rest = _split(smooth, fps)
    log_weight = bisect(lambda x: _section_ratio([_ranked(10.0**x * sections + rest, quantiles)], fps) < section_ratio,
                        -WEIGHT_DECADES, 0.0, BALANCE_STEPS)
    return _ranked(10.0**log_weight * sections + rest, quantiles)


def raised(energy: np.ndarray, offset: float) -> np.ndarray:
    """An energy column raised by a style's calibrated offset (engine.calibrate), kept in [0, 1]."""
    return np.clip(energy + offset, 0.0, 1.0)


def as_motion_energy(cond: np.ndarray, quantiles, beat_dip, fps: float = 30.0,
                     section_ratio: float | None = None, offset: float = 0.0) -> np.ndarray:
    """A copy of music conditioning (T, 5) with its energy column re-expressed
    against one style's reference (``quantiles`` (101,), ``beat_dip`` (20,),
    ``section_ratio``; without it the envelope is ranked as it is) and raised by
    the style's ``offset``."""
    out = np.array(cond, dtype=np.float32, copy=True)
    energy = out[:, ENERGY].astype(np.float64)
    if len(energy) == 0 or not energy.any():  # silence stays still
        return out
    smooth = gaussian_filter1d(energy, SMOOTH_S * fps)
    quantiles = np.asarray(quantiles, np.float64)
    mapped = (_ranked(smooth, quantiles) if section_ratio is None
              else _balanced(smooth, quantiles, float(section_ratio), fps))
    out[:, ENERGY] = raised(mapped * np.asarray(beat_dip, np.float64)[_phase_bins(out)], offset)
    return out
