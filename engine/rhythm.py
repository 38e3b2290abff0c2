"""Rhythm derived from motion: the same quantities engine.audio derives from music.

The shared mocap has no music, so a generator is trained on rhythm computed from
the motion itself and, at generation time, fed the same quantities computed from
the song (engine.audio.MusicFeatures). :func:`conditioning` builds one per-frame
array from either source, with identical columns.

Definitions (T frames at ``fps``; frame i is at time i / fps):

- **speed**: mean over joints of the joint speed (central differences, m/s),
  Gaussian-smoothed with sigma = 5 frames at 60 fps (1/12 s, Bailando's
  smoothing, scaled to ``fps``).
- **energy** (the analogue of ``MusicFeatures.rms``): the smoothed speed divided
  by its 99th percentile over the clip and clipped to [0, 1], exactly as
  engine.audio normalises RMS (a still clip is all zeros). The training set
  rescales it by the style's 99th percentile instead
  (engine.train.style_level_energy).
- **kinematic beats**: strict local minima of the smoothed speed (Bailando's
  kinetic beats; here with central differences, so a minimum sits on its frame
  rather than half a frame early as in engine.metrics).
- **beats, tempo**: the raw minima are irregular (interval CV about 0.45 on the
  shared mocap), so they are turned into a pulse the way music is. The "onset
  envelope" is an impulse at each minimum weighted by its depth (the highest
  smoothed speed within +-0.25 s minus the minimum), slightly blurred; the
  global tempo comes from engine.audio's own estimator (tempogram, log-normal
  prior at 120 BPM, half tempo above 160 BPM), and ``librosa.beat.beat_track``
  places beats on that envelope with the frame as the hop (sr = fps * 512,
  hop 512). The tracker's tightness is 10 rather than music's 100: the pulse
  may follow the dancer's timing (interval CV about 0.15 instead of 0.07),
  which puts more beats on a kinematic minimum (precision 0.65-0.75 instead of
  0.5-0.7 at +-70 ms, recall 0.8-0.9). Beats are not trimmed at the clip's ends
  (``trim=False``): the dancer dances throughout, so the pulse covers the whole
  clip. ``tempo`` is then computed from the beats as engine.audio does (median
  period over spans of 4 beats).
- **beat_phase**, **beat_onehot**: engine.audio's definitions, from the beat
  frames (phase: fraction of the way from the previous beat to the next,
  extrapolated with the nearest period outside the beats; one-hot: 1 on each
  beat's frame).

Measured on the shared real mocap (SMPL-24 via engine.convert, 30 fps): the
salsa takes give a kinematic pulse of 88 BPM (lead, median; takes 79-97) and
94 BPM (follow; 80-111), with 1.2-1.3 speed minima per second. The feet step
about twice a second, in a 3-steps-and-a-pause cycle of about 1.48 s (four
counts of salsa music at about 160 BPM), so the pulse is the dancer's
half-tempo count, which is also what engine.audio reports for music above 160
BPM. Modern (CMU 05) gives a median of 110 BPM (55-153), pop (CMU 131) 93
(77-113).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import librosa
import numpy as np
from scipy.ndimage import gaussian_filter1d, maximum_filter1d
from scipy.signal import argrelextrema

# Definitions shared with the music side: imported, not copied, so they cannot drift.
from engine.audio import HOP, beat_phase_curve, estimate_bpm, onehot

SMOOTH_SIGMA_S = 5.0 / 60.0  # Bailando: sigma 5 frames at 60 fps
DEPTH_WINDOW_S = 0.25  # a minimum's depth: highest speed within +-0.25 s minus its own
ENVELOPE_SIGMA_S = 1.0 / 30.0  # blur of the minima impulses
TIGHTNESS = 10.0  # librosa beat_track tightness (music uses 100)
ENERGY_PERCENTILE = 99.0  # as engine.audio's RMS normalisation
STILL_SPEED = 1e-3  # m/s: below this (99th percentile) the clip counts as still

# conditioning() layout
COND_COLUMNS = ("phase_sin", "phase_cos", "beat_pulse", "energy", "tempo")
COND_DIM = len(COND_COLUMNS)
TEMPO_SCALE = 200.0  # tempo column = bpm / 200
PULSE_SIGMA_S = 0.05  # beat_pulse: Gaussian bump of sigma 50 ms around each beat


@dataclass
class MotionRhythm:
    """Per-frame rhythm of one motion clip (same fields and meanings as MusicFeatures).

    Per-frame (T,) float32: ``speed`` (m/s, smoothed), ``energy`` in [0, 1],
    ``beat_phase`` in [0, 1), ``beat_onehot``. ``kinematic_beats``: frame indices
    of the raw speed minima. ``beat_frames``: the tracked pulse (frames);
    ``beats``: the same in seconds from the clip's first frame. ``tempo``: BPM
    (0.0 without beats). ``start`` is always 0 (MusicFeatures' file offset).
    """

    fps: float
    speed: np.ndarray
    energy: np.ndarray
    kinematic_beats: np.ndarray
    beat_frames: np.ndarray
    beats: np.ndarray
    tempo: float
    beat_phase: np.ndarray
    beat_onehot: np.ndarray
    start: float = 0.0

    @property
    def n_frames(self) -> int:
        return len(self.energy)

    @property
    def rms(self) -> np.ndarray:
        """Alias of ``energy``, the field's name on MusicFeatures."""
        return self.energy


def joint_speed(positions, fps: float) -> np.ndarray:
    """(T,) mean joint speed in m/s (central differences), unsmoothed."""
    p = np.asarray(positions, dtype=np.float64)
    if len(p) < 2:
        return np.zeros(len(p))
    return np.linalg.norm(np.gradient(p, axis=0), axis=-1).mean(axis=1) * fps


def normalise_energy(speed: np.ndarray, ref: float | None = None) -> np.ndarray:
    """Divide by ``ref`` (by default the 99th percentile of ``speed``, engine.audio's
    RMS rule) and clip to [0, 1]; all zeros when ``ref`` is a still speed."""
    if ref is None:
        ref = np.percentile(speed, ENERGY_PERCENTILE) if len(speed) else 0.0
    if ref < STILL_SPEED:
        return np.zeros(len(speed), dtype=np.float32)
    return np.clip(speed / ref, 0.0, 1.0).astype(np.float32)


def minima_envelope(speed: np.ndarray, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """(kinematic beat frames, onset-like envelope peaking at the speed minima)."""
    minima = argrelextrema(speed, np.less)[0]
    half = max(1, int(round(DEPTH_WINDOW_S * fps)))
    depth = maximum_filter1d(speed, 2 * half + 1, mode="nearest") - speed
    env = np.zeros_like(speed)
    env[minima] = depth[minima]
    return minima, gaussian_filter1d(env, ENVELOPE_SIGMA_S * fps)


def track_pulse(env: np.ndarray, fps: float) -> np.ndarray:
    """Beat frames of a regular pulse on the envelope (empty when there is none)."""
    if len(env) < 4 or not np.any(env > 0):
        return np.zeros(0, dtype=int)
    sr = fps * HOP
    bpm = estimate_bpm(env, sr, fps)
    _, frames = librosa.beat.beat_track(onset_envelope=env, sr=sr, hop_length=HOP,
                                        bpm=bpm, tightness=TIGHTNESS, trim=False)
    frames = np.asarray(frames, dtype=int)
    return frames if len(frames) >= 2 else np.zeros(0, dtype=int)


def tempo_from_beats(frames: np.ndarray, fps: float) -> float:
    """BPM of a pulse from the median interval between its beat frames (0 if none)."""
    if len(frames) < 2:
        return 0.0
    return float(60.0 * fps / np.median(np.diff(frames)))


def motion_rhythm(positions, fps: float | None = None) -> MotionRhythm:
    """Rhythm of a motion: ``positions`` (T, J, 3) in metres, or a Motion (fps optional)."""
    if hasattr(positions, "positions") and hasattr(positions, "fps"):
        fps = positions.fps if fps is None else fps
        positions = positions.positions
    if fps is None or not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    fps = float(fps)
    speed = gaussian_filter1d(joint_speed(positions, fps), SMOOTH_SIGMA_S * fps)
    minima, env = minima_envelope(speed, fps)
    frames = track_pulse(env, fps)
    n = len(speed)
    return MotionRhythm(
        fps=fps,
        speed=speed.astype(np.float32),
        energy=normalise_energy(speed),
        kinematic_beats=minima,
        beat_frames=frames,
        beats=frames / fps,
        tempo=tempo_from_beats(frames, fps),
        beat_phase=beat_phase_curve(frames, n),
        beat_onehot=onehot(frames, n),
    )


def half_time(rhythm: MotionRhythm) -> MotionRhythm:
    """The same rhythm counted at half time: every other pulse beat kept, tempo
    halved (what engine.generate.fold_tempo does to fast music)."""
    frames, n = rhythm.beat_frames[::2], rhythm.n_frames
    return replace(rhythm, beat_frames=frames, beats=frames / rhythm.fps, tempo=rhythm.tempo / 2,
                   beat_phase=beat_phase_curve(frames, n), beat_onehot=onehot(frames, n))


def _nearest_distance(frames: np.ndarray, n: int) -> np.ndarray:
    """(n,) distance in frames from each frame to the nearest of ``frames`` (inf if none)."""
    t = np.arange(n, dtype=float)
    if len(frames) == 0:
        return np.full(n, np.inf)
    frames = np.sort(np.asarray(frames, dtype=float))
    i = np.clip(np.searchsorted(frames, t), 1, max(1, len(frames) - 1))
    left = frames[np.clip(i - 1, 0, len(frames) - 1)]
    right = frames[np.clip(i, 0, len(frames) - 1)]
    return np.minimum(np.abs(t - left), np.abs(t - right))


def conditioning(source, fps: float | None = None) -> np.ndarray:
    """(T, 5) float32 generator conditioning from a MotionRhythm or a MusicFeatures.

    Columns (:data:`COND_COLUMNS`):
      0 ``phase_sin`` = sin(2 pi beat_phase)
      1 ``phase_cos`` = cos(2 pi beat_phase)   (phase 0, on the beat: (0, 1))
      2 ``beat_pulse`` = exp(-d^2 / (2 * (0.05 s)^2)), d the time to the nearest
        beat: the beat one-hot smoothed a little, 1 on each beat
      3 ``energy``: motion energy or music RMS, in [0, 1]
      4 ``tempo`` = tempo / 200 (BPM), constant over the clip
    ``fps`` defaults to the source's; another value resamples onto that frame
    rate (frame i at time i / fps, ``ceil(duration * fps)`` frames; phase and
    pulse are recomputed from the beat times, energy interpolated).
    """
    src_fps = float(source.fps)
    fps = src_fps if fps is None else float(fps)
    energy = np.asarray(source.rms, dtype=np.float64)  # MotionRhythm.rms is its energy
    n_src = len(energy)
    start = float(getattr(source, "start", 0.0))
    beats_s = np.asarray(source.beats, dtype=np.float64) - start
    if np.isclose(fps, src_fps):
        n = n_src
        phase = np.asarray(source.beat_phase, dtype=np.float64)
        beat_frames = np.flatnonzero(np.asarray(source.beat_onehot) > 0.5).astype(float)
    else:
        n = int(np.ceil(n_src / src_fps * fps - 1e-9))
        energy = np.interp(np.arange(n) / fps, np.arange(n_src) / src_fps, energy)
        beat_frames = beats_s * fps
        phase = beat_phase_curve(beat_frames, n).astype(np.float64)
    d = _nearest_distance(beat_frames, n) / fps
    out = np.empty((n, COND_DIM), dtype=np.float32)
    out[:, 0] = np.sin(2 * np.pi * phase)
    out[:, 1] = np.cos(2 * np.pi * phase)
    out[:, 2] = np.exp(-0.5 * (d / PULSE_SIGMA_S) ** 2)
    out[:, 3] = energy
    out[:, 4] = float(source.tempo) / TEMPO_SCALE
    return out
