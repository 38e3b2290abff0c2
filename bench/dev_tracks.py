"""The dev tracks: real music that development choices are made on.

    python bench/dev_tracks.py [--out .cache/dev_tracks]
    python bench/quality_report.py --sets dev --out /tmp/dev_report

Twenty game-music tracks from Debian's hyperrogue-music and asc-music packages
(GPL-2+, Zeno Rogue and Michael Kievernagel; not committed), each written as its
first 90 s, mono 22.05 kHz Ogg. Whole openings, intros and section changes
included: those are what drive a style's Div_k and its quiet-passage speed.
Choices are made on these; the shared and held-out songs are then measured once
(engine/assets/MODEL_CARD.md). Needs a Debian or Ubuntu host with package
access (``apt-get download``, ``dpkg-deb``); nothing in the tests or the engine
uses it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import librosa
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
DEV_DIR = ROOT / ".cache" / "dev_tracks"
PACKAGES = ("hyperrogue-music", "asc-music")
SECONDS = 90.0
RATE = 22050


def fetch(out: Path = DEV_DIR) -> list[Path]:
    """Download and unpack the packages, write each track's opening into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["apt-get", "download", *PACKAGES], cwd=tmp, check=True)
        for deb in Path(tmp).glob("*.deb"):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(Path(tmp) / "x")], check=True)
        music = [p for p in (Path(tmp) / "x").rglob("*") if p.parent.name == "music"]  # not the sound effects
        tracks = sorted(p for p in music if p.suffix == ".ogg") + sorted(p for p in music if p.suffix == ".mp3")
        written = []
        for track in tracks:
            y, _ = librosa.load(track, sr=RATE, mono=True, duration=SECONDS)
            target = out / f"{track.stem}.ogg"
            sf.write(target, y, RATE)
            written.append(target)
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEV_DIR)
    written = fetch(parser.parse_args().out)
    print(f"{len(written)} dev tracks in {written[0].parent if written else '-'}")
    return 0 if written else 1


if __name__ == "__main__":
    sys.exit(main())
