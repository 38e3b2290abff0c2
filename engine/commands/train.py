"""``python -m engine train --data DIR --out MODEL.safetensors``: train the dance GAN."""

from __future__ import annotations

HELP = "train the dance GAN on a folder of BVH files or AIST++ pkls"


def add_arguments(parser) -> None:
    parser.add_argument("--data", required=True, help="folder of .bvh/.bvh.gz/AIST++ .pkl files")
    parser.add_argument("--out", required=True, help="model file to write (.safetensors)")
    parser.add_argument("--styles", help="JSON {style: [glob, ...]} (default: DATA/styles.json, "
                                         "else each file's folder name)")
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--minutes", type=float, help="stop after this much wall-clock time")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise-hold", type=int, default=1, metavar="N",
                        help="hold each noise draw for N coarse frames of 8 frames (8: about 2 s, one choice "
                             "per phrase; see the model card, \"Why the last stage: seeds\")")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--resume", action="store_true", help="continue from OUT.ckpt if present")
    parser.add_argument("--init", help="model file whose generator starts the run (fine-tuning; "
                                       "same width and number of styles; with --no-attention its attention layers are left out)")
    parser.add_argument("--weight", action="append", default=[], metavar="LOSS=W",
                        help="override one loss weight, e.g. --weight rec=0.5 (repeatable)")
    parser.add_argument("--no-sync", action="store_true", help="ablation: no music-sync loss")
    parser.add_argument("--no-attention", action="store_true", help="ablation: no self-attention")
    parser.add_argument("--no-structure", action="store_true", help="ablation: no structure constraints")


def run(args) -> int:
    import torch

    from engine.errors import ChoreoError
    from engine.generate import pick_device
    from engine.train import TrainConfig, train

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = TrainConfig(steps=args.steps, batch=args.batch, seed=args.seed, minutes=args.minutes,
                      sync=not args.no_sync, attention=not args.no_attention,
                      structure=not args.no_structure, noise_hold=args.noise_hold)
    for item in args.weight:
        name, _, value = item.partition("=")
        if name not in cfg.weights:
            raise ChoreoError(f"--weight {item}: unknown loss {name!r}; losses: {', '.join(cfg.weights)}")
        try:
            cfg.weights[name] = float(value)
        except ValueError:
            raise ChoreoError(f"--weight {item}: {value!r} is not a number") from None
    step = train(args.data, args.out, cfg, styles_file=args.styles, device=pick_device(args.device),
                 resume=args.resume, init=args.init)
    print(f"wrote {args.out} after {step} steps")
    return 0
