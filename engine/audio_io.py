"""Decoding audio files into mono float32 samples (soundfile / libsndfile).

Reads whatever libsndfile reads: wav, ogg (Vorbis, Opus), flac, mp3, aiff and more,
mono or multi-channel, at any sample rate. A time range is read by seeking, so only
that span is decoded. Every failure is a :class:`ChoreoError` with one clear sentence.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from engine.errors import ChoreoError

MIN_DURATION = 1.0  # seconds; shorter audio carries no usable rhythm or structure
_OGG_TAIL = 65536  # an Ogg page is at most 65307 bytes, so the last one starts in here
_SHORTFALL = 0.05  # seconds a decoder may fall short of the header's length (mp3 estimates)


def load_audio(
    path: str | os.PathLike,
    start: float | None = None,
    end: float | None = None,
    sr: int | float | None = None,
) -> tuple[np.ndarray, int | float]:
    """Decode ``path`` (or only ``[start, end)`` seconds of it) to mono float32.

    Channels are averaged. ``sr=None`` keeps the file's rate, otherwise the samples
    are resampled (soxr, high quality, as ``librosa.load`` does). An ``end`` past the
    end of the file is clipped to it. Returns ``(samples, sample_rate)``.
    """
    path = Path(path)
    with _open(path) as snd:
        native_sr = snd.samplerate
        first, last = _frame_range(snd, start, end)
        try:
            snd.seek(first)
            data = snd.read(last - first, dtype="float32", always_2d=True)
        except sf.LibsndfileError as exc:
            raise ChoreoError(f"cannot decode {path.name}: the file is corrupt ({exc.error_string})") from exc
        _check_complete(path, snd, len(data), last - first)
    samples = data.mean(axis=1, dtype=np.float32)
    _check_duration(len(samples) / native_sr, ranged=start is not None or end is not None)
    if sr is None or sr == native_sr:
        return samples, native_sr
    import librosa  # deferred: decoding alone should not pay librosa's import time

    return librosa.resample(samples, orig_sr=native_sr, target_sr=sr, res_type="soxr_hq"), sr


def _open(path: Path) -> sf.SoundFile:
    if not path.exists():
        raise ChoreoError(f"audio file not found: {path}")
    if path.is_dir():
        raise ChoreoError(f"expected an audio file but got a folder: {path}")
    try:
        snd = sf.SoundFile(path)
    except sf.LibsndfileError as exc:
        raise ChoreoError(
            f"cannot decode {path.name}: it is not a readable audio file ({exc.error_string}); "
            "use wav, ogg, flac or mp3"
        ) from exc
    if snd.frames <= 0:
        snd.close()
        raise ChoreoError(f"cannot decode {path.name}: the file holds no audio samples")
    return snd


def _frame_range(snd: sf.SoundFile, start: float | None, end: float | None) -> tuple[int, int]:
    """Validate the requested seconds and turn them into sample indices."""
    total = snd.frames / snd.samplerate
    t0 = 0.0 if start is None else float(start)
    t1 = total if end is None else min(float(end), total)
    if not (math.isfinite(t0) and math.isfinite(t1)):
        raise ChoreoError("the time range must be finite numbers of seconds")
    if t0 < 0:
        raise ChoreoError(f"the range starts at {t0:g} s; it must start at 0 s or later")
    if t0 >= total:
        raise ChoreoError(f"the range starts at {t0:g} s, past the end of the audio ({total:.1f} s)")
    if t1 <= t0:
        raise ChoreoError(f"the range is empty: it ends at {t1:g} s, not after its start at {t0:g} s")
    return round(t0 * snd.samplerate), round(t1 * snd.samplerate)


def _check_complete(path: Path, snd: sf.SoundFile, got: int, wanted: int) -> None:
    """Refuse files whose audio stops before their header says it should."""
    if wanted - got > _SHORTFALL * snd.samplerate:
        raise ChoreoError(
            f"cannot decode {path.name}: the file is truncated or corrupt "
            f"(it decodes {got / snd.samplerate:.1f} s of the {snd.frames / snd.samplerate:.1f} s it announces)"
        )
    if snd.format == "OGG" and not _ogg_has_end_page(path):
        raise ChoreoError(
            f"cannot decode {path.name}: the Ogg file is truncated (its last page is missing); "
            "download or export it again"
        )


def _ogg_has_end_page(path: Path) -> bool:
    """True when the file's last Ogg page carries the end-of-stream flag."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(max(0, size - _OGG_TAIL))
        tail = fh.read()
    at = tail.rfind(b"OggS\x00")
    return at >= 0 and len(tail) >= at + 27 and bool(tail[at + 5] & 0x04)


def _check_duration(seconds: float, ranged: bool) -> None:
    if seconds < MIN_DURATION:
        what = "the selected range" if ranged else "audio"
        raise ChoreoError(f"{what} is {seconds:.1f} s long; Choreo needs at least {MIN_DURATION:g} s")
