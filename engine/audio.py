"""Music analysis: per-frame features at the motion frame rate (librosa, no bpy/torch).

Everything is computed at ``sr = fps * 512`` with a hop of 512 samples, so there is
exactly one feature frame per motion frame (the FACT/EDGE convention).

Frame convention: ``T = ceil(duration * fps)`` frames; frame ``i`` covers the time
``start + i / fps`` of the file. Every per-frame array has length ``T``.

Time convention: ``beats``, ``downbeats`` and ``sections`` are in seconds of the FILE
timeline. With a range (``start=12``) the first beat may be at 12.3 s, and frame 0 is
at 12.0 s; ``(t - start) * fps`` turns a time into a frame index.

Silence: a silent file (or one with no rhythm) is analysed without error. It gets
no beats or downbeats, tempo 0.0, zero beat phase, one section, and the warning
``NO_BEATS`` in ``MusicFeatures.warnings``. Bad input (missing, corrupt, truncated,
shorter than 1 s, empty range) raises :class:`ChoreoError` from :func:`load_audio`.

Cost grows linearly with the length: every step is a fixed-window transform or a
filter, and sections use a cumulative-sum novelty over 1 s blocks, never a
self-similarity matrix over the whole song.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass, field

import librosa
import numpy as np
from scipy.ndimage import uniform_filter1d
from scipy.signal import find_peaks

from engine.audio_io import load_audio
from engine.errors import ChoreoError

__all__ = ["MusicFeatures", "analyze", "load_audio", "features_from_samples"]

HOP = 512
N_FFT = 2048
TEMPO_PRIOR_BPM = 120.0  # centre of the log-normal tempo prior (sigma: one octave)
DANCE_MAX_BPM = 160.0  # above this, the half tempo is preferred when the music allows
ENERGY_WEIGHT = 3.0  # weight of log energy among the z-scored section features
SILENCE_RMS = 1e-4  # -80 dBFS: the whole signal is silent
QUIET_RMS = 1e-3  # -60 dBFS: no beat is placed in frames this quiet
NO_BEATS = "no beats found: the audio is silent or has no rhythm"

# Krumhansl-Kessler key profiles, C major / C minor.
_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
_PITCHES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


@dataclass
class MusicFeatures:
    """Music features of one song (or one range of it) at the motion frame rate.

    Per-frame arrays (length ``T``, float32):
      ``standard35`` (T, 35): FACT/EDGE set: onset envelope, MFCC 20, chroma CENS 12,
      onset-peak one-hot, beat one-hot.
      ``rms``: RMS energy divided by the song's 99th percentile and clipped to [0, 1]
      (a few transients do not flatten the rest; silence is all zeros).
      ``beat_phase``: in [0, 1), the fraction of the way from the previous beat to the
      next (extrapolated with the nearest beat period before the first and after the
      last beat; zeros when there are no beats).
      ``beat_onehot``: 1 on the frame of each beat.
      ``arousal``, ``valence``: in [0, 1], see :func:`_arousal` and :func:`_valence`.
    Song-level: ``tempo`` (BPM, 0.0 without beats), ``beats`` and ``downbeats``
    (seconds, file timeline), ``sections`` (``{start, end, label}``, covering
    ``[start, start + duration]`` without gaps), ``mood`` (see :func:`_mood`),
    ``warnings`` (sentences for the user), ``duration`` (s), ``fps``, ``start`` (s).
    """

    fps: float
    start: float
    duration: float
    standard35: np.ndarray
    rms: np.ndarray
    tempo: float
    beats: np.ndarray
    downbeats: np.ndarray
    beat_phase: np.ndarray
    beat_onehot: np.ndarray
    sections: list[dict]
    arousal: np.ndarray
    valence: np.ndarray
    mood: dict
    warnings: list[str] = field(default_factory=list)

    @property
    def n_frames(self) -> int:
        return len(self.rms)

    def summary(self) -> dict:
        """JSON-ready song-level results (no per-frame arrays)."""
        return {
            "start": self.start,
            "duration": self.duration,
            "fps": self.fps,
            "frames": self.n_frames,
            "tempo": self.tempo,
            "beats": [round(float(t), 4) for t in self.beats],
            "downbeats": [round(float(t), 4) for t in self.downbeats],
            "sections": self.sections,
            "mood": self.mood,
            "warnings": self.warnings,
        }


def analyze(path: str | os.PathLike, fps: float = 30, start: float | None = None, end: float | None = None) -> MusicFeatures:
    """Decode ``path`` (optionally only ``[start, end)`` seconds of it) and analyse it.

    Features are at ``fps`` frames per second (``sr = fps * 512``). An ``end`` past
    the end of the file is clipped to it, with a warning.
    """
    if not fps > 0:
        raise ChoreoError(f"fps must be positive, got {fps}")
    y, sr = load_audio(path, start, end, sr=fps * HOP)
    offset = 0.0 if start is None else float(start)
    features = features_from_samples(y, fps, offset)
    if end is not None and end - offset > features.duration + 1.0 / fps:
        features.warnings.append(
            f"the range ends at {end:g} s but the audio ends at {offset + features.duration:.2f} s; "
            "analysed up to the end of the audio"
        )
    return features


def features_from_samples(y: np.ndarray, fps: float, offset: float = 0.0) -> MusicFeatures:
    """Analyse mono samples already at ``fps * 512`` Hz; ``offset`` is their file time."""
    sr = fps * HOP
    n_frames = -(-len(y) // HOP)  # ceil(duration * fps)
    notes: list[str] = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="librosa")  # silence-related noise; we report our own
        spec = _spectra(y, sr)
        env = librosa.onset.onset_strength(S=spec["log_mel"], sr=sr, hop_length=HOP)
        mfcc = librosa.feature.mfcc(S=spec["log_mel"], sr=sr, n_mfcc=20)
        # tuning=None estimates the tuning, as chroma_cens(y=...) does (cqt's default is 0.0)
        cqt = np.abs(librosa.cqt(y, sr=sr, hop_length=HOP, n_bins=7 * 36, bins_per_octave=36, tuning=None))
        cens = librosa.feature.chroma_cens(C=cqt, sr=sr, hop_length=HOP, n_chroma=12)
        chroma = librosa.feature.chroma_cqt(C=cqt, sr=sr, hop_length=HOP, norm=None)
        peaks = librosa.onset.onset_detect(onset_envelope=env, sr=sr, hop_length=HOP)
        tempo, beat_frames = _track_beats(env, sr, fps, spec["rms"])
    if spec["rms"].max() < SILENCE_RMS:
        notes.append("the audio is silent")
    if len(beat_frames) == 0:
        notes.append(NO_BEATS)
    beat_frames = beat_frames[beat_frames < n_frames]
    peak_onehot = onehot(peaks, len(env))
    beat_onehot = onehot(beat_frames, len(env))
    standard35 = np.concatenate(
        [env[:, None], mfcc.T, cens.T, peak_onehot[:, None], beat_onehot[:, None]], axis=1
    )[:n_frames].astype(np.float32)

    duration = len(y) / sr
    rms = _normalise_rms(spec["rms"][:n_frames])
    down = _downbeat_frames(beat_frames, env, spec["bass_env"])
    arousal = _arousal(spec["rms"][:n_frames], rms, peak_onehot[:n_frames], tempo, fps)
    valence = _valence(chroma[:, :n_frames], spec["centroid"][:n_frames], fps)
    block = _block_features(standard35, spec["rms"][:n_frames], fps)
    return MusicFeatures(
        fps=fps,
        start=offset,
        duration=duration,
        standard35=standard35,
        rms=rms,
        tempo=tempo,
        beats=offset + beat_frames / fps,
        downbeats=offset + down / fps,
        beat_phase=beat_phase_curve(beat_frames, n_frames),
        beat_onehot=beat_onehot[:n_frames],
        sections=_sections(block, duration, offset, offset + down / fps, fps),
        arousal=arousal,
        valence=valence,
        mood=_mood(arousal, valence, chroma),
        warnings=notes,
    )


def _spectra(y: np.ndarray, sr: float) -> dict:
    """One STFT shared by the mel features, RMS, bass onsets and brightness.

    ``log_mel`` equals what ``onset_strength(y=...)`` and ``mfcc(y=...)`` compute
    internally (n_fft 2048, hop 512, 128 mel bands, power in dB).
    """
    mag = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP))
    mel = librosa.feature.melspectrogram(S=mag**2, sr=sr)
    log_mel = librosa.power_to_db(mel)
    centres = librosa.mel_frequencies(n_mels=mel.shape[0] + 2, fmax=sr / 2)[1:-1]
    low = max(2, int(np.sum(centres < 150.0)))
    return {
        "log_mel": log_mel,
        "rms": librosa.feature.rms(S=mag, frame_length=N_FFT)[0],
        "bass_env": librosa.onset.onset_strength(S=log_mel[:low], sr=sr, hop_length=HOP),
        "centroid": _centroid(mag, sr),
    }


def _centroid(mag: np.ndarray, sr: float) -> np.ndarray:
    """Spectral centroid in Hz per frame (0 for silent frames); cheaper than librosa's."""
    freqs = librosa.fft_frequencies(sr=sr, n_fft=N_FFT)
    total = mag.sum(axis=0)
    return np.divide(freqs @ mag, total, out=np.zeros_like(total), where=total > 0)


def onehot(frames: np.ndarray, length: int) -> np.ndarray:
    """(length,) float32: 1 on each of ``frames``, 0 elsewhere."""
    out = np.zeros(length, dtype=np.float32)
    out[frames] = 1.0
    return out


# --- tempo and beats -------------------------------------------------------------


def _track_beats(env: np.ndarray, sr: float, fps: float, rms: np.ndarray) -> tuple[float, np.ndarray]:
    """Tempo (BPM) and beat frames from ``librosa.beat.beat_track`` (tightness 100, as EDGE).

    The tracker gets our own tempo estimate (:func:`estimate_bpm`) and trims its
    weak beats at the ends, as EDGE does. The pulse is then carried on to both ends
    of the audio at the local beat period (:func:`_extend_beats`): a dancer keeps
    counting through a sustained note or a quiet bar. Beats where the audio is
    silent (RMS under -60 dBFS) are dropped. Fewer than two beats means none, and
    a tempo of 0.0. Beats sit on motion frames and may trail the attack by a frame.
    """
    if rms.max() < SILENCE_RMS or not env.any():
        return 0.0, np.zeros(0, dtype=int)
    bpm = estimate_bpm(env, sr, fps)
    _, frames = librosa.beat.beat_track(onset_envelope=env, sr=sr, hop_length=HOP, bpm=bpm, tightness=100)
    frames = _extend_beats(np.asarray(frames, dtype=int), len(env))
    frames = frames[rms[np.minimum(frames, len(rms) - 1)] >= QUIET_RMS]
    if len(frames) < 2:
        return 0.0, np.zeros(0, dtype=int)
    return round(bpm, 2), frames


def _extend_beats(frames: np.ndarray, n_frames: int) -> np.ndarray:
    """Carry the pulse on from both ends to the edges ``[0, n_frames)``.

    The tracker's outermost beats are its least sure: an end beat whose interval is
    more than 20% off the median period is dropped first. New beats follow the mean
    period of the (up to) 4 intervals nearest to each end.
    """
    while len(frames) >= 3:
        period = np.median(np.diff(frames))
        if abs(frames[1] - frames[0] - period) > 0.2 * period:
            frames = frames[1:]
        elif abs(frames[-1] - frames[-2] - period) > 0.2 * period:
            frames = frames[:-1]
        else:
            break
    if len(frames) < 2:
        return frames
    k = min(4, len(frames) - 1)
    head = (frames[k] - frames[0]) / k
    tail = (frames[-1] - frames[-1 - k]) / k
    before = frames[0] - head * np.arange(int(frames[0] // head), 0, -1)
    after = frames[-1] + tail * np.arange(1, int((n_frames - 1 - frames[-1]) // tail) + 1)
    return np.concatenate([np.round(before), frames, np.round(after)]).astype(int)


def estimate_bpm(env: np.ndarray, sr: float, fps: float) -> float:
    """Global tempo from the mean local autocorrelation (tempogram) of the onsets.

    Each candidate beat period ``L`` scores ``ac(L) + (ac(2L) + ac(L/2)) / 2``: a
    real beat is backed by its bar and sub-beat levels, while an off-metre period
    (e.g. 5 sixteenths) is not. Scores are weighted by a log-normal prior around
    120 BPM (sigma one octave). Above 160 BPM the half tempo is taken when it scores
    at least half as well: a dancer counts 90 rather than 180.
    """
    win = max(16, round(8.0 * fps))  # 8 s of autocorrelation, like librosa.feature.tempo
    ac = librosa.feature.tempogram(onset_envelope=env, sr=sr, hop_length=HOP, win_length=win).mean(axis=1)
    lags = np.arange(60.0 * fps / 300.0, min(60.0 * fps / 30.0, (win - 1) / 2), 0.25)
    bpm = 60.0 * fps / lags

    def at(x: np.ndarray) -> np.ndarray:
        return np.interp(x, np.arange(len(ac)), ac, right=0.0)

    prior = np.exp(-0.5 * np.log2(bpm / TEMPO_PRIOR_BPM) ** 2)
    score = (at(lags) + 0.5 * (at(2 * lags) + at(lags / 2))) * prior
    best = int(np.argmax(score))
    if bpm[best] > DANCE_MAX_BPM:
        half = int(np.argmin(np.abs(lags - 2 * lags[best])))
        if score[half] >= 0.5 * score[best]:
            best = half
    return 60.0 * fps / _refine_lag(ac, lags[best])


def _refine_lag(ac: np.ndarray, lag: float) -> float:
    """Sub-frame beat period from the sharpest of the half-, one- and two-beat peaks.

    A parabola through the autocorrelation peak gives its sub-frame position; the
    metrical level with the highest peak is measured, then scaled back to one beat.
    """
    levels = [m for m in (0.5, 1.0, 2.0) if 2 <= round(m * lag) < len(ac) - 2]
    if not levels:
        return lag
    scale = max(levels, key=lambda m: ac[round(m * lag)])
    k = round(scale * lag)
    k += int(np.argmax(ac[k - 1 : k + 2])) - 1  # climb to the local peak
    left, mid, right = ac[k - 1], ac[k], ac[k + 1]
    curve = left - 2 * mid + right
    peak = k + 0.5 * (left - right) / curve if curve < 0 else float(k)
    return peak / scale


def _downbeat_frames(beats: np.ndarray, env: np.ndarray, bass_env: np.ndarray) -> np.ndarray:
    """Every 4th beat, at the phase whose beats carry the strongest onsets.

    Assumes 4/4. Each of the 4 phases is scored by the mean of the onset envelope
    plus the bass (< 150 Hz) onset envelope, each scaled to max 1, on its beats:
    bars tend to start with a kick or bass note.
    """
    if len(beats) == 0:
        return beats
    strength = env / max(env.max(), 1e-9) + bass_env / max(bass_env.max(), 1e-9)
    scores = [strength[beats[k::4]].mean() for k in range(min(4, len(beats)))]
    return beats[int(np.argmax(scores)) :: 4]


def beat_phase_curve(beats: np.ndarray, n_frames: int) -> np.ndarray:
    """Fraction of the way from the previous beat to the next, per frame.

    A gap of about n beat periods (a silent break has no beats) counts as n equal
    beats, and the first and last periods carry on before and after the beats.
    """
    if len(beats) < 2:
        return np.zeros(n_frames, dtype=np.float32)
    gaps = np.diff(beats).astype(float)
    periods = gaps / np.maximum(1.0, np.round(gaps / np.median(gaps)))
    t = np.arange(n_frames, dtype=float)
    i = np.clip(np.searchsorted(beats, t, side="right") - 1, 0, len(beats) - 2)
    return np.mod((t - beats[i]) / periods[i], 1.0).astype(np.float32)


# --- energy and emotion ----------------------------------------------------------


def _normalise_rms(rms: np.ndarray) -> np.ndarray:
    ref = np.percentile(rms, 99)
    if ref < SILENCE_RMS:
        return np.zeros_like(rms, dtype=np.float32)
    return np.clip(rms / ref, 0.0, 1.0).astype(np.float32)


def _smooth(x: np.ndarray, seconds: float, fps: float) -> np.ndarray:
    return uniform_filter1d(np.asarray(x, dtype=float), max(1, round(seconds * fps)), axis=-1, mode="nearest")


def _arousal(rms: np.ndarray, rms_norm: np.ndarray, peaks: np.ndarray, tempo: float, fps: float) -> np.ndarray:
    """Arousal in [0, 1]: 0.45 energy + 0.25 onset density + 0.30 tempo.

    Energy is half absolute loudness (-50..-10 dBFS mapped to 0..1) and half the
    song-relative RMS, both smoothed over 2 s. Onset density is onsets per second
    over 4 s, 8/s or more counting as 1. Tempo maps 60..160 BPM to 0..1.
    """
    loud = np.clip((20 * np.log10(_smooth(rms, 2.0, fps) + 1e-10) + 50.0) / 40.0, 0.0, 1.0)
    energy = 0.5 * loud + 0.5 * _smooth(rms_norm, 2.0, fps)
    density = np.clip(_smooth(peaks, 4.0, fps) * fps / 8.0, 0.0, 1.0)
    pace = float(np.clip((tempo - 60.0) / 100.0, 0.0, 1.0))
    return np.clip(0.45 * energy + 0.25 * density + 0.30 * pace, 0.0, 1.0).astype(np.float32)


def _key_correlations(chroma: np.ndarray) -> np.ndarray:
    """Pearson correlation of chroma columns with the 24 keys, shape (24, n).

    Rows 0-11 are C..B major, rows 12-23 C..B minor. Flat columns give 0.
    """
    profiles = np.stack([np.roll(p, k) for p in (_MAJOR, _MINOR) for k in range(12)])
    profiles = (profiles - profiles.mean(1, keepdims=True)) / profiles.std(1, keepdims=True)
    centred = chroma - chroma.mean(0, keepdims=True)
    spread = centred.std(0, keepdims=True)
    z = np.divide(centred, spread, out=np.zeros_like(centred), where=spread > 1e-12)
    return profiles @ z / 12.0


def _valence(chroma: np.ndarray, centroid: np.ndarray, fps: float) -> np.ndarray:
    """Valence in [0, 1]: 0.65 mode + 0.35 brightness.

    Mode: over an 8 s window, the best major-key correlation minus the best
    minor-key correlation (Krumhansl-Kessler), mapped as 0.5 + 2.5 * difference.
    Brightness: the spectral centroid over 2 s, 500 Hz..4 kHz mapped (log) to 0..1.
    """
    corr = _key_correlations(_smooth(chroma, 8.0, fps))
    mode = np.clip(0.5 + 2.5 * (corr[:12].max(0) - corr[12:].max(0)), 0.0, 1.0)
    bright = np.clip(np.log2(np.maximum(_smooth(centroid, 2.0, fps), 1.0) / 500.0) / 3.0, 0.0, 1.0)
    return (0.65 * mode + 0.35 * bright).astype(np.float32)


def _mood(arousal: np.ndarray, valence: np.ndarray, chroma: np.ndarray) -> dict:
    """Song-level mood: mean arousal and valence, key, and a circumplex label.

    The key is the best Krumhansl-Kessler match of the whole song's chroma (None
    when there is no pitched content). The label is the quadrant around (0.5, 0.5):
    excited (high arousal, high valence), tense (high, low), calm (low, high),
    sad (low, low).
    """
    a, v = float(arousal.mean()), float(valence.mean())
    corr = _key_correlations(chroma.sum(axis=1, keepdims=True))[:, 0]
    key = None
    if np.any(corr):
        best = int(np.argmax(corr))
        key = f"{_PITCHES[best % 12]} {'major' if best < 12 else 'minor'}"
    label = ("excited" if v >= 0.5 else "tense") if a >= 0.5 else ("calm" if v >= 0.5 else "sad")
    return {"arousal": round(a, 3), "valence": round(v, 3), "key": key, "label": label}


# --- sections --------------------------------------------------------------------


def _block_features(standard35: np.ndarray, rms: np.ndarray, fps: float) -> np.ndarray:
    """One row per second: mean MFCC 1-19, chroma CENS, and 3x-weighted log energy.

    Each column is z-scored over the song, so timbre, harmony and energy changes all
    count; energy is weighted up because sections are mostly heard as energy.
    """
    per = max(1, round(fps))
    n = len(rms) // per
    loud = np.log10(rms[: n * per] + 1e-6)[:, None]
    cols = np.concatenate([standard35[: n * per, 2:33], loud], axis=1)
    block = cols.reshape(n, per, -1).mean(axis=1)
    std = block.std(axis=0)
    block = (block - block.mean(axis=0)) / np.where(std > 1e-9, std, 1.0)
    block[:, -1] *= ENERGY_WEIGHT
    return block


def _novelty(block: np.ndarray, half: int) -> np.ndarray:
    """Distance between the means of the ``half`` blocks before and after each block.

    A box-kernel Foote novelty computed with cumulative sums: linear in the song's
    length (no self-similarity matrix).
    """
    n = len(block)
    csum = np.vstack([np.zeros((1, block.shape[1])), np.cumsum(block, axis=0)])
    nov = np.zeros(n)
    i = np.arange(half, n - half + 1)
    before = (csum[i] - csum[i - half]) / half
    after = (csum[i + half] - csum[i]) / half
    nov[i] = np.linalg.norm(after - before, axis=1) / math.sqrt(block.shape[1])
    return nov


def _sections(block: np.ndarray, duration: float, offset: float, downbeats: np.ndarray, fps: float) -> list[dict]:
    """Split the song where the music changes most, then label by energy.

    The minimum section length is ``clip(duration / 12, 4, 16)`` whole seconds.
    Boundaries are novelty peaks (:func:`_novelty` over that many 1 s blocks) that
    stand above the song's typical novelty (median + one standard deviation, at
    least 0.5), snapped to a downbeat within 2 s. Songs shorter than two minimum
    lengths are one section. Neighbours that get the same label are merged.
    """
    half = int(np.clip(duration / 12.0, 4.0, 16.0))
    bounds: list[float] = []
    if len(block) > 2 * half:
        nov = _novelty(block, half)
        valid = nov[half : len(nov) - half]
        floor = max(0.5, float(np.median(valid) + valid.std()))
        peaks, _ = find_peaks(nov, height=floor, distance=half)
        bounds = _snap(peaks * round(fps) / fps, downbeats - offset, half, duration)
    edges = [0.0, *bounds, duration]
    energy = [float(block[int(a) : max(int(a) + 1, int(b)), -1].mean()) for a, b in zip(edges[:-1], edges[1:])]
    merged: list[dict] = []
    for a, b, label in zip(edges[:-1], edges[1:], _labels(energy)):
        if merged and merged[-1]["label"] == label:
            merged[-1]["end"] = round(offset + b, 3)
        else:
            merged.append({"start": round(offset + a, 3), "end": round(offset + b, 3), "label": label})
    return merged


def _snap(times: np.ndarray, downbeats: np.ndarray, min_len: float, duration: float) -> list[float]:
    """Move boundaries onto the nearest downbeat within 2 s that keeps every section
    at least ``min_len`` long (else keep them as they are); drop those that cannot."""
    out: list[float] = []
    for t in times:
        previous = out[-1] if out else 0.0
        near = downbeats[np.abs(downbeats - t) <= 2.0]
        options = [*near[np.argsort(np.abs(near - t))], t]
        fits = [c for c in options if c - previous >= min_len and duration - c >= min_len]
        if fits:
            out.append(float(fits[0]))
    return out


def _labels(energy: list[float]) -> list[str]:
    """intro / development / climax / outro from each section's mean energy.

    One section: development. Two: intro, then climax if louder, else development.
    Three or more: first intro, last outro; the loudest middle section is a climax,
    and so is any middle section within 0.1 standard deviations of song energy of
    it; the other middle sections are development.
    """
    n = len(energy)
    if n == 1:
        return ["development"]
    if n == 2:
        return ["intro", "climax" if energy[1] > energy[0] else "development"]
    middle = energy[1:-1]
    top = max(middle)
    inner = ["climax" if e >= top - 0.1 * ENERGY_WEIGHT else "development" for e in middle]
    return ["intro", *inner, "outro"]
