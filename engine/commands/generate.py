"""``python -m engine generate AUDIO --out OUT.npz|OUT.bvh``: a dance for a song."""

from __future__ import annotations

import json
import sys

HELP = "generate a dance for a music file (writes a Choreo .npz or an SMPL-24 .bvh)"


def add_arguments(parser) -> None:
    parser.add_argument("audio", help="music file: wav, ogg, mp3 or flac")
    parser.add_argument("--out", required=True, help="output .npz (Choreo motion) or .bvh")
    parser.add_argument("--style", default="salsa_lead", help="dance style (see the model card)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=float, help="start of the span, seconds into the file")
    parser.add_argument("--end", type=float, help="end of the span, seconds into the file")
    parser.add_argument("--energy", type=float, default=1.0, help="movement amplitude multiplier")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--model", help="model file (default: the shipped model)")
    parser.add_argument("--json", action="store_true", help="print a JSON summary")


def run(args) -> int:
    from engine.errors import ChoreoError
    from engine.generate import generate_dance

    if not args.out.lower().endswith((".npz", ".bvh")):
        raise ChoreoError(f"--out must end in .npz or .bvh, got {args.out}")

    def progress(fraction, message):
        print(json.dumps({"progress": round(fraction, 3), "message": message}), file=sys.stderr)

    motion = generate_dance(args.audio, args.style, args.seed, args.start, args.end, args.energy,
                            args.device, args.model, progress)
    if args.out.lower().endswith(".bvh"):
        write_smpl_bvh(args.out, motion)
    else:
        motion.save_npz(args.out)
    summary = {"out": args.out, "frames": motion.frames, "fps": motion.fps,
               "duration": motion.duration, "style": args.style, "seed": args.seed}
    print(json.dumps(summary) if args.json else f"wrote {args.out}: {motion.frames} frames")
    return 0


def write_smpl_bvh(path, motion) -> None:
    """SMPL-24 BVH, Y-up as BVH readers (Blender's importer) expect."""
    from engine import skeleton as S
    from engine.bvh import write_bvh

    c = S.Y_UP_TO_Z_UP
    offsets = S.REST_OFFSETS @ c
    offsets[0] = 0.0  # the root channels carry the pelvis position
    write_bvh(path, list(S.SMPL_NAMES), S.SMPL_PARENTS, offsets, c.T @ motion.matrices @ c,
              motion.root_translation @ c, motion.fps)
