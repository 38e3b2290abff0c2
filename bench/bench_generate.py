"""Generation speed and memory, against an EDGE-class model timed in the same run.

    python bench/bench_generate.py [--model M] [--minutes 10]

1. Choreo's generator on the conditioning of a real song tiled to ``--minutes``
   (audio analysis excluded), in seconds of compute per second of dance.
2. An EDGE-class baseline built here: a 47M-parameter transformer denoiser
   (EDGE's size) over a 5 s window, one forward pass timed and multiplied by
   50 DDIM steps x 2 (classifier-free guidance). DESIGN.md's anchor for EDGE on
   2 cores is about 2.3 s per second of dance.
3. Peak RSS of the whole ``python -m engine generate`` command on a
   ``--minutes`` long audio file (analysis included), in a child process.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.audio import analyze  # noqa: E402
from engine.checkpoint import load_model  # noqa: E402
from engine.generate import generate_from_conditioning, music_conditioning, pick_device  # noqa: E402

SONG = ROOT.parent / "shared" / "data" / "music" / "Kevin_MacLeod_-_Vibe_Ace.hq.ogg"


def edge_class_seconds_per_second(device: str) -> tuple[float, int]:
    """Seconds of compute per second of dance for a 47M-param, 50-step guided denoiser."""
    layer = torch.nn.TransformerEncoderLayer(512, 8, 2048, batch_first=True)
    net = torch.nn.Sequential(torch.nn.Linear(151, 512),
                              torch.nn.TransformerEncoder(layer, 14, enable_nested_tensor=False),
                              torch.nn.Linear(512, 151)).to(device).eval()
    params = sum(p.numel() for p in net.parameters())
    x = torch.randn(2, 150, 151, device=device)  # guided: conditional + unconditional
    with torch.no_grad():
        net(x)
        start = time.perf_counter()
        net(x)
        step = time.perf_counter() - start
    return step * 50 / 5.0, params


def peak_rss_mb(minutes: float) -> float:
    y, sr = sf.read(SONG, dtype="float32")
    reps = int(np.ceil(minutes * 60 * sr / len(y)))
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "long.wav"
        sf.write(wav, np.concatenate([y] * reps)[: int(minutes * 60 * sr)], sr)
        subprocess.run([sys.executable, "-m", "engine", "generate", str(wav), "--out",
                        str(Path(tmp) / "out.npz")], cwd=ROOT, check=True, capture_output=True)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--model")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    device = pick_device(args.device)
    model = load_model(args.model, device)
    music = analyze(SONG)
    cond = music_conditioning(music, model, model[2][0])
    reps = int(np.ceil(args.minutes * 60 * 30 / len(cond)))
    long_cond = np.concatenate([cond] * reps)[: int(args.minutes * 60 * 30)]
    generate_from_conditioning(cond[:300], model[2][0], 0, model, device=device)  # warm-up
    start = time.perf_counter()
    motion = generate_from_conditioning(long_cond, model[2][0], 0, model, device=device)
    choreo = (time.perf_counter() - start) / motion.duration
    edge, params = edge_class_seconds_per_second(device)
    print(f"device: {device}, torch threads: {torch.get_num_threads()}")
    print(f"choreo generator: {motion.duration / 60:.1f} min of dance, "
          f"{choreo:.4f} s compute per s of dance (target <= 0.01)")
    print(f"EDGE-class denoiser ({params / 1e6:.0f}M params, 50 guided steps): "
          f"{edge:.3f} s per s of dance (DESIGN anchor: ~2.3)")
    print(f"ratio EDGE-class / choreo: {edge / choreo:.0f}x")
    print(f"peak RSS of `python -m engine generate` on {args.minutes:.0f} min of audio: "
          f"{peak_rss_mb(args.minutes):.0f} MB (target <= 1536)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
