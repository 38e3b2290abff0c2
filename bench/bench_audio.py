"""Choreo's music analysis against the plain librosa calls it is built on.

Run: ``python bench/bench_audio.py``. On 180 s of real music (Vibe Ace, tiled) at
30 fps (sr = 30 * 512), in one process, best of 3 interleaved runs each:
- baseline: the calls of EDGE's extract() alone: onset_strength, mfcc, chroma_cens,
  onset_detect and beat_track (each computing its own spectrogram, as EDGE does);
- Choreo: engine.audio.features_from_samples on the same samples (the 35-d set plus
  RMS, tempo, beats, downbeats, sections, arousal and valence), and analyze() on the
  44.1 kHz stereo wav they come from (decoding and resampling included);
and prints the times, the ratio to the baseline and the real-time factor.
DESIGN.md's anchors for the same work: 0.82 s (35-d features) + 0.6 s (beat_track).
No time limits are asserted; the machine's load shows in the numbers.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.audio import analyze, features_from_samples, load_audio  # noqa: E402

SONG = REPO.parent / "shared" / "data" / "music" / "Kevin_MacLeod_-_Vibe_Ace.hq.ogg"
FPS = 30
SR = FPS * 512
SECONDS = 180.0


def librosa_baseline(y: np.ndarray) -> None:
    """EDGE's extract() feature and beat calls, nothing else."""
    envelope = librosa.onset.onset_strength(y=y, sr=SR)
    librosa.feature.mfcc(y=y, sr=SR, n_mfcc=20)
    librosa.feature.chroma_cens(y=y, sr=SR, hop_length=512, n_chroma=12)
    librosa.onset.onset_detect(onset_envelope=envelope, sr=SR, hop_length=512)
    librosa.beat.beat_track(onset_envelope=envelope, sr=SR, hop_length=512, tightness=100)


def best_of_interleaved(runs: int, *calls) -> list[float]:
    """Best time of each (fn, *args) call, run in turn ``runs`` times (load hits both)."""
    best = [float("inf")] * len(calls)
    for _ in range(runs):
        for i, (fn, *args) in enumerate(calls):
            start = time.perf_counter()
            fn(*args)
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def tiled_wav(path: Path) -> None:
    """The song's own 44.1 kHz stereo samples, repeated to SECONDS, as 16-bit wav."""
    song, rate = sf.read(SONG, dtype="float32", always_2d=True)
    reps = int(np.ceil(SECONDS * rate / len(song)))
    sf.write(path, np.tile(song, (reps, 1))[: int(SECONDS * rate)], rate, subtype="PCM_16")


def main() -> int:
    if not SONG.is_file():
        print(f"skipped: {SONG} not found")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "bench.wav"
        tiled_wav(wav)
        y, _ = load_audio(wav, sr=SR)
        librosa_baseline(y[: 5 * SR])  # warm up: imports and numba compilation
        features_from_samples(y[: 5 * SR], FPS)
        base, ours, full = best_of_interleaved(
            3, (librosa_baseline, y), (features_from_samples, y, FPS), (analyze, wav, FPS)
        )

    print(f"audio: {SECONDS:.0f} s of {SONG.name}, features at sr {SR} ({FPS} fps)")
    print(f"librosa calls alone (EDGE extract)    {base:6.2f} s  {SECONDS / base:6.1f}x real time")
    print(f"choreo features_from_samples          {ours:6.2f} s  {SECONDS / ours:6.1f}x real time")
    print(f"choreo analyze(44.1 kHz stereo wav)   {full:6.2f} s  {SECONDS / full:6.1f}x real time")
    print(f"ratio choreo / librosa calls          {ours / base:6.2f}")
    print("DESIGN anchor for the librosa calls    1.42 s (0.82 s 35-d features + 0.6 s beat_track)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
