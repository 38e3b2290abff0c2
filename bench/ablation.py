"""Ablation of the music-sync loss, self-attention and the structure constraints.

    python bench/dev_tracks.py          # once: the dev music
    python bench/ablation.py [--steps 2000] [--out .cache/ablation] [--init MODEL]

As the seed paper's ablation table, on what this machine can afford: each
variant fine-tunes the shipped generator for ``--steps`` with the same seed and
data (``python -m engine train --init``; the discriminator starts afresh), one
with everything on ("full", the control) and one per switch off. Each is then
scored on the dev tracks by bench/quality_report.py. Not a from-scratch run: it
shows how far each term holds the model where it is, in the same number of
steps. A variant already trained or scored in ``--out`` is reused. Writes
OUT/ablation.md and prints it (about 6 minutes per variant on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from quality_report import targets  # noqa: E402  (bench/, beside this file)

VARIANTS = {"full": [], "no-sync": ["--no-sync"], "no-attention": ["--no-attention"],
            "no-structure": ["--no-structure"]}


def run_variant(name: str, out: Path, init: Path, steps: int) -> dict:
    """Fine-tune (unless done) and score (unless done) one variant; its dev results."""
    model, report = out / f"{name}.safetensors", out / name / "quality.json"
    if not model.exists():
        subprocess.run([sys.executable, "-m", "engine", "train", "--data", str(ROOT / "tests" / "data" / "mocap"),
                        "--styles", str(ROOT / "engine" / "assets" / "shipped_styles.json"), "--out", str(model),
                        "--steps", str(steps), "--threads", "2", "--init", str(init), *VARIANTS[name]],
                       cwd=ROOT, check=True)
    if not report.exists():
        subprocess.run([sys.executable, str(ROOT / "bench" / "quality_report.py"), "--sets", "dev",
                        "--model", str(model), "--out", str(out / name)], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    return json.loads(report.read_text())["dev"]


def row(name: str, res: dict) -> str:
    """One table row: targets met and the figures each switch is meant to move."""
    styles = res["styles"].values()
    met = targets(res)
    bas = np.mean([s["bas"]["model"] for s in styles])
    gap = np.mean([s["bas"]["model"] - s["bas"]["model_chance"] for s in styles])
    speed = np.mean([s["model"]["speed_mean"] / s["real"]["speed_mean"] for s in styles])
    pick = lambda key: np.mean([s["model"][key] for s in styles])  # noqa: E731
    d = res["distribution"]["model"]
    return (f"| {name} | {sum(ok for *_, ok in met)} of {len(met)} | {bas:.3f} | {gap:.3f} | "
            f"{d['fid_k']:.1f} | {d['fid_g']:.1f} | {speed:.2f} | {pick('jitter'):.1f} | {pick('pfc'):.3f} | "
            f"{pick('foot_skate'):.3f} | {pick('validator_errors'):.1f} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=ROOT / ".cache" / "ablation")
    parser.add_argument("--init", type=Path, default=ROOT / "engine" / "assets" / "choreo_dance_gan.safetensors")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    lines = [f"Fine-tuned {args.steps} steps from {args.init.name}, scored on the dev tracks "
             "(means over the four styles; speed as a ratio to the held-out takes').", "",
             "| variant | targets met | BAS | BAS - chance | FID_k | FID_g | mean speed / real | jitter | PFC "
             "| foot skate | validator errors/min |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [row(name, run_variant(name, args.out, args.init, args.steps)) for name in VARIANTS]
    text = "\n".join(lines) + "\n"
    (args.out / "ablation.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
